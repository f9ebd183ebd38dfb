//! `assert_retained_at_most!`: what a task's state holds, found by the heap
//! walk, which needs an allocator in heap-walk mode (one global allocator
//! per test file, so this is a file of its own).

use turbowish::{assert_retained_at_most, TurboWish};

#[global_allocator]
static ALLOC: TurboWish = TurboWish::system().heap_walk().sample_interval(1);

/// The cache a task keeps in its state: 100 KiB.
#[inline(never)]
fn fill_cache() -> Vec<u8> {
    vec![5u8; 100 * 1024]
}

/// Spawns a task whose state holds a cache until told to go.
fn cache_holder(
    name: &'static str,
) -> (
    turbowish::trace::task::JoinHandle<()>,
    tokio::sync::oneshot::Sender<()>,
) {
    let (go, wait) = tokio::sync::oneshot::channel::<()>();
    let task = turbowish::trace::spawn(name, async move {
        let cache = fill_cache();
        let _ = wait.await;
        drop(cache);
    });
    (task, go)
}

#[tokio::test]
async fn retained_within_the_limit_passes_and_over_it_fails_naming_the_site() {
    let (task, go) = cache_holder("cache-holder");
    tokio::task::yield_now().await;
    assert_retained_at_most!(&task, 1024 * 1024);

    let failure = turbowish::testing::check_retained_at_most(&task, 64 * 1024).unwrap_err();
    let lines: Vec<&str> = failure.0.lines().collect();
    assert!(
        lines[0].starts_with(&format!(
            "task \"cache-holder\" (#{}) retains ",
            task.task_id()
        )),
        "{}",
        failure
    );
    assert!(
        lines[0].ends_with(", over the limit of 65536; top sites:"),
        "{failure}"
    );
    assert_eq!(
        lines[1],
        "  102400 bytes in 1 block at retained_assertions::fill_cache (tests/retained_assertions.rs:13)"
    );
    go.send(()).unwrap();
    task.await.unwrap();
}

#[tokio::test]
#[should_panic(
    expected = "over the limit of 4096; top sites:\n  102400 bytes in 1 block at retained_assertions::fill_cache"
)]
async fn a_task_retaining_too_much_fails() {
    let (task, _go) = cache_holder("hoarder");
    tokio::task::yield_now().await;
    assert_retained_at_most!(&task, 4096);
}
