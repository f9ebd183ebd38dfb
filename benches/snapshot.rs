//! Cost of `turbowish_capture::snapshot()` in a process with 100 live
//! TurboWish tasks (each holding a few blocks), a few locks with holders
//! and waiters, and sampling as the allocator has it.
//!
//! Run: `cargo bench --bench snapshot`

use std::sync::Arc;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};

#[global_allocator]
static ALLOC: turbowish::TurboWish = turbowish::TurboWish::system();

const TASKS: usize = 100;

fn bench_snapshot(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    runtime.block_on(async {
        let locks: Vec<_> = (0..10)
            .map(|i| {
                Arc::new(turbowish::trace::sync::Mutex::new_named(
                    format!("lock-{i}"),
                    0,
                ))
            })
            .collect();
        for i in 0..TASKS {
            let lock = locks[i % locks.len()].clone();
            turbowish::trace::spawn(format!("task-{}", i % 20), async move {
                let held: Vec<Vec<u8>> = (0..4).map(|k| vec![0u8; 256 << k]).collect();
                // One holder per lock, the rest wait behind it: a graph
                // with holders and waiters, never released.
                let _guard = lock.lock().await;
                std::future::pending::<()>().await;
                drop(held);
            });
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    });
    let tasks = turbowish::capture::snapshot().tasks.len();
    assert!(tasks >= TASKS, "{tasks} task rows");

    c.bench_function("snapshot_100_tasks", |b| {
        b.iter(turbowish::capture::snapshot)
    });
    runtime.shutdown_background();
}

criterion_group!(benches, bench_snapshot);
criterion_main!(benches);
