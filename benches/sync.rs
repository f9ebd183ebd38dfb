//! Uncontended lock + unlock of TurboWish's instrumented `Mutex` (holder
//! record: task, frame path, location, coarse time) against
//! `tokio::sync::Mutex`, inside a TurboWish task with a frame, on a
//! current-thread runtime.
//!
//! Run: `cargo bench --bench sync`
//!
//! With `RUSTFLAGS="--cfg tokio_unstable"` and `--features tokio-resources`
//! (in a target directory of its own: `CARGO_TARGET_DIR=target/tokio-unstable`)
//! it also measures the other route, plain `tokio::sync::Mutex` seen
//! through tokio's instrumentation: with no subscriber, then with
//! TurboWish's layer (`turbowish::trace::tokio_resources`) installed.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};
use turbowish::trace::TracedExt;

#[global_allocator]
static ALLOC: turbowish::TurboWish = turbowish::TurboWish::system();

fn bench_mutex(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("tokio runtime");
    let mut group = c.benchmark_group("mutex_uncontended_lock_unlock");
    group.bench_function("tokio", |b| {
        let mutex = std::sync::Arc::new(tokio::sync::Mutex::new(0u64));
        b.iter_custom(|iters| {
            let mutex = mutex.clone();
            run_in_task(&rt, async move {
                let start = Instant::now();
                for _ in 0..iters {
                    *mutex.lock().await += 1;
                }
                start.elapsed()
            })
        })
    });
    group.bench_function("turbowish", |b| {
        let mutex = std::sync::Arc::new(turbowish::trace::sync::Mutex::new_named("bench", 0u64));
        b.iter_custom(|iters| {
            let mutex = mutex.clone();
            run_in_task(&rt, async move {
                let start = Instant::now();
                for _ in 0..iters {
                    *mutex.lock().await += 1;
                }
                start.elapsed()
            })
        })
    });
    group.finish();
}

/// Runs `fut` as a TurboWish task inside a frame, as application code would.
fn run_in_task(
    rt: &tokio::runtime::Runtime,
    fut: impl std::future::Future<Output = Duration> + Send + 'static,
) -> Duration {
    rt.block_on(async {
        let task = turbowish::trace::spawn("bench", fut.traced("handle_request"));
        black_box(task.await.expect("bench task panicked"))
    })
}

/// Plain `tokio::sync::Mutex` under `--cfg tokio_unstable`: tokio's
/// instrumentation compiled in but no subscriber (its spans disabled), then
/// every lock reported to TurboWish's layer. Each mutex is made after the
/// subscriber it runs under is in place (tokio's spans are made then).
#[cfg(all(tokio_unstable, feature = "tokio-resources"))]
fn bench_tokio_resources(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("tokio runtime");
    let rt = &rt;
    let mut group = c.benchmark_group("tokio_mutex_under_tokio_unstable");
    let lock_unlock = |mutex: std::sync::Arc<tokio::sync::Mutex<u64>>| {
        move |b: &mut criterion::Bencher<'_>| {
            b.iter_custom(|iters| {
                let mutex = mutex.clone();
                run_in_task(rt, async move {
                    let start = Instant::now();
                    for _ in 0..iters {
                        *mutex.lock().await += 1;
                    }
                    start.elapsed()
                })
            })
        }
    };
    group.bench_function(
        "no_subscriber",
        lock_unlock(std::sync::Arc::new(tokio::sync::Mutex::new(0))),
    );
    turbowish::trace::tokio_resources::install().expect("the only subscriber");
    group.bench_function(
        "tokio_resources_layer",
        lock_unlock(std::sync::Arc::new(tokio::sync::Mutex::new(0))),
    );
    group.finish();
}

#[cfg(not(all(tokio_unstable, feature = "tokio-resources")))]
criterion_group!(benches, bench_mutex);
#[cfg(all(tokio_unstable, feature = "tokio-resources"))]
criterion_group!(benches, bench_mutex, bench_tokio_resources);
criterion_main!(benches);
