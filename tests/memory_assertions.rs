//! Memory assertions in tests, as a user would write them: does this task
//! keep too much, does this handler leak, are all spawned tasks gone?
//!
//! Copy the first lines into your own test file: TurboWish as the global
//! allocator, sampling every block so that a failure can name the sites.

use turbowish::testing::{self, Scope};
use turbowish::TurboWish;
use turbowish::{assert_no_leaked_tasks, assert_no_live_growth, assert_task_live_at_most};

#[global_allocator]
static ALLOC: TurboWish = TurboWish::system().sample_interval(1);

/// A handler's buffer: 100 KiB, made in a function of its own so that the
/// failure messages below can name it.
#[inline(never)]
fn fill_buffer() -> Vec<u8> {
    vec![7u8; 100 * 1024]
}

/// One leaked kibibyte per call.
#[inline(never)]
fn leak_a_kib() {
    std::mem::forget(vec![1u8; 1024]);
}

/// Spawns a task that makes a buffer and keeps it until told to go.
fn keeper(
    name: &'static str,
) -> (
    turbowish::trace::task::JoinHandle<()>,
    tokio::sync::oneshot::Sender<()>,
) {
    let (go, wait) = tokio::sync::oneshot::channel::<()>();
    let task = turbowish::trace::spawn(name, async move {
        let buffer = fill_buffer();
        let _ = wait.await;
        drop(buffer);
    });
    (task, go)
}

#[tokio::test]
async fn a_task_within_its_limit_passes() {
    let (task, go) = keeper("small-enough");
    tokio::task::yield_now().await;
    assert_task_live_at_most!(&task, 1024 * 1024);
    go.send(()).unwrap();
    task.await.unwrap();
}

#[tokio::test]
#[should_panic(
    expected = "over the limit of 65536; top sites:\n  102400 bytes in 1 block at memory_assertions::fill_buffer"
)]
async fn a_task_over_its_limit_fails_naming_the_site() {
    let (task, _go) = keeper("too-big");
    tokio::task::yield_now().await;
    assert_task_live_at_most!(&task, 64 * 1024);
}

/// The whole message, word for word: the task's live bytes are its buffer
/// and its future's root cell.
#[tokio::test]
async fn the_task_failure_message_in_full() {
    let (task, go) = keeper("exact");
    tokio::task::yield_now().await;
    let row = turbowish::trace::task::tasks()
        .into_iter()
        .find(|t| t.name == "exact")
        .unwrap();
    let cell = row.future_size.unwrap() as u64;
    assert_eq!(row.memory.live_bytes, 102_400 + cell);
    let failure = testing::check_task_live_at_most(&task, 64 * 1024).unwrap_err();
    let first = failure.0.lines().take(2).collect::<Vec<_>>().join("\n");
    assert_eq!(
        first,
        format!(
            "task \"exact\" (#{}) has {} live bytes in 2 blocks, over the limit of 65536; top sites:\n  \
             102400 bytes in 1 block at memory_assertions::fill_buffer (tests/memory_assertions.rs:18)",
            task.task_id(),
            102_400 + cell
        )
    );
    go.send(()).unwrap();
    task.await.unwrap();
}

#[test]
fn a_handler_that_reuses_its_memory_does_not_grow() {
    let mut cache: Vec<u8> = Vec::new();
    assert_no_live_growth!(10, || {
        // The first run fills the cache; later runs reuse it.
        cache.clear();
        cache.extend_from_slice(&[3u8; 4096]);
        let scratch = vec![0u8; 512];
        drop(scratch);
    });
}

#[test]
#[should_panic(
    expected = "live bytes grew by 4096 over 4 iterations after the first (1024 bytes live after iteration 1, 5120 after iteration 5); top sites:\n  5120 bytes in 5 blocks at memory_assertions::leak_a_kib"
)]
fn a_leaking_handler_grows() {
    assert_no_live_growth!(5, leak_a_kib);
}

#[tokio::test]
async fn an_async_handler_that_frees_does_not_grow() {
    assert_no_live_growth!(8, async {
        let body = fill_buffer();
        tokio::task::yield_now().await;
        drop(body);
    });
}

#[tokio::test]
#[should_panic(expected = "live bytes grew by 3072 over 3 iterations after the first")]
async fn an_async_handler_that_leaks_grows() {
    assert_no_live_growth!(4, async {
        tokio::task::yield_now().await;
        leak_a_kib();
    });
}

#[test]
fn measure_counts_what_a_block_left_live() {
    let (kept, usage) = testing::measure(|| {
        drop(vec![0u8; 4096]);
        vec![1u8; 100]
    });
    assert_eq!(
        usage,
        testing::Usage {
            allocated_bytes: 4196,
            allocated_blocks: 2,
            freed_bytes: 4096,
            freed_blocks: 1,
            live_bytes: 100,
            live_blocks: 1,
        }
    );
    drop(kept);
}

#[tokio::test]
async fn tasks_that_finished_and_freed_are_not_leaks() {
    let scope = Scope::enter();
    for i in 0..4 {
        let n = turbowish::trace::spawn("job", async move { fill_buffer().len() + i })
            .await
            .unwrap();
        assert_eq!(n, 102_400 + i);
    }
    tokio::spawn(async { drop(fill_buffer()) }).await.unwrap();
    assert_no_leaked_tasks!(scope);
}

#[tokio::test]
#[should_panic(expected = "1 task spawned in the scope is not gone:\n  task \"stuck\" (#")]
async fn a_task_still_waiting_is_a_leak() {
    let scope = Scope::enter();
    let (_task, _go) = keeper("stuck");
    tokio::task::yield_now().await;
    assert_no_leaked_tasks!(scope);
}

/// A finished task whose memory outlives it (here: its output, kept by the
/// test) is named with what it left.
#[tokio::test]
async fn a_finished_task_that_left_memory_behind_is_a_leak() {
    let scope = Scope::enter();
    let task = turbowish::trace::spawn("producer", async { fill_buffer() });
    let id = task.task_id();
    let output = task.await.unwrap();
    let failure = testing::check_no_leaked_tasks(&scope).unwrap_err();
    let first = failure.0.lines().take(3).collect::<Vec<_>>().join("\n");
    assert_eq!(
        first,
        format!(
            "1 task spawned in the scope is not gone:\n  \
             task \"producer\" (#{id}) has completed but 102400 bytes it allocated are still live; top sites:\n  \
             102400 bytes in 1 block at memory_assertions::fill_buffer (tests/memory_assertions.rs:18)"
        )
    );
    drop(output);
    assert_no_leaked_tasks!(scope);
}

#[tokio::test]
#[should_panic(expected = "tokio task ")]
async fn plain_tokio_tasks_are_checked_too() {
    let scope = Scope::enter();
    let (go, wait) = tokio::sync::oneshot::channel::<()>();
    let _task = tokio::spawn(async move {
        let buffer = fill_buffer();
        let _ = wait.await;
        drop(buffer);
    });
    tokio::task::yield_now().await;
    let _keep = go;
    assert_no_leaked_tasks!(scope);
}

#[test]
#[should_panic(
    expected = "assert_retained_at_most! needs the heap walk: build the test's allocator with TurboWish::system().heap_walk()"
)]
fn retained_needs_the_heap_walk() {
    turbowish::assert_retained_at_most!(1u64, 0);
}
