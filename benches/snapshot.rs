//! Cost of `turbowish_capture::snapshot()` in counting mode:
//!
//! * `snapshot_100_tasks`: 100 live TurboWish tasks (each holding a few
//!   blocks), a few locks with holders and waiters, and sampling as the
//!   allocator has it.
//! * `ownership_10k_tasks`: what ownership resolution costs with 10,000
//!   live TurboWish tasks, each parked forever: 2,490 of them hold a
//!   `Sender` of one of 20 channels in their future's state (half blocked
//!   sending on the full channel), 996 hold an `Arc` of one of 100
//!   mutexes they locked once, 20 consumers hold the channels' receivers and
//!   wait for a lock that one of 20 holders keeps, and the rest hold a small
//!   buffer. Benched: `ownership::find()` (the scan of every root cell)
//!   alone; `apply()` alone (on a copy of the graph); `sync::resources()`
//!   alone and with `find()` + `apply()` (the difference is what ownership
//!   adds to reading the graph); `chains()` + `cycles()` on the graph
//!   without and with the owners; and the full `capture::snapshot()`.
//!
//! Run: `cargo bench --bench snapshot -- --warm-up-time 1
//! --measurement-time 3` (and with `TURBOWISH_SAMPLE_INTERVAL=0` for
//! counting without sampling, where a snapshot symbolises nothing). The
//! figures are in `book/src/overhead.md`.

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use turbowish::trace::ownership::{self, HandleKind};
use turbowish::trace::sync::{mpsc, Mutex};

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

const MANY: usize = 10_000;
const CHANNELS: usize = 20;
const SHARED_LOCKS: usize = 100;

/// Spawns the 10,000 tasks of `ownership_10k_tasks` (see the file's doc)
/// on the current runtime; returns how many hold a sender and how many an
/// `Arc` of a shared lock.
async fn spawn_many() -> (usize, usize) {
    let channels: Vec<_> = (0..CHANNELS)
        .map(|c| mpsc::channel_named::<usize>(format!("jobs-{c}"), 1))
        .collect();
    // Full: every `send` below waits for the consumer.
    for (tx, _) in &channels {
        tx.try_send(0).expect("room for one");
    }
    let stuck: Vec<_> = (0..CHANNELS)
        .map(|c| Arc::new(Mutex::new_named(format!("stuck-{c}"), ())))
        .collect();
    let shared: Vec<_> = (0..SHARED_LOCKS)
        .map(|l| Arc::new(Mutex::new_named(format!("shared-{l}"), 0u64)))
        .collect();
    let (mut senders, mut lockers) = (0, 0);
    let mut receivers: Vec<Option<mpsc::Receiver<usize>>> = Vec::new();
    let mut sender_of: Vec<mpsc::Sender<usize>> = Vec::new();
    for (tx, rx) in channels {
        sender_of.push(tx);
        receivers.push(Some(rx));
    }
    for i in 0..MANY {
        let c = i % CHANNELS;
        if i < CHANNELS {
            // Keeps `stuck-{c}` forever.
            let lock = stuck[c].clone();
            turbowish::trace::spawn(format!("holder-{c}"), async move {
                let _guard = lock.lock().await;
                std::future::pending::<()>().await;
            });
            // Let it take the lock before its consumer queues.
            tokio::task::yield_now().await;
        } else if i < 2 * CHANNELS {
            // Owns `jobs-{c}`'s receiver, waits for `stuck-{c}`.
            let rx = receivers[c].take().expect("one consumer per channel");
            let lock = stuck[c].clone();
            turbowish::trace::spawn(format!("consumer-{c}"), async move {
                let _rx = &rx;
                let _guard = lock.lock().await;
                std::future::pending::<()>().await;
            });
        } else if i % 4 == 0 {
            senders += 1;
            let tx = sender_of[c].clone();
            let blocked = i % 8 == 0;
            turbowish::trace::spawn(format!("producer-{c}"), async move {
                if blocked {
                    let _ = tx.send(i).await;
                } else {
                    let _keep = &tx;
                }
                std::future::pending::<()>().await;
            });
        } else if i % 10 == 1 {
            lockers += 1;
            let lock = shared[i % SHARED_LOCKS].clone();
            turbowish::trace::spawn("locker", async move {
                *lock.lock().await += 1;
                std::future::pending::<()>().await;
            });
        } else {
            turbowish::trace::spawn("idle", async move {
                let buffer = vec![0u8; 64];
                std::future::pending::<()>().await;
                drop(buffer);
            });
        }
    }
    // Every end and lock now lives in a task only.
    drop((sender_of, stuck, shared));
    (senders, lockers)
}

fn bench_ownership(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    let (senders, lockers) = runtime.block_on(async {
        let counts = spawn_many().await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        counts
    });

    // Everything is in place: every sender and every locked-once lock is
    // found, and owns its end in the graph.
    let found = ownership::find();
    let count = |kind| found.iter().filter(|f| f.handle == kind).count();
    assert!(count(HandleKind::Sender) >= senders, "{found:?}");
    assert!(count(HandleKind::Receiver) >= CHANNELS);
    assert!(count(HandleKind::Lock) >= lockers + 2 * CHANNELS);
    let mut graph = turbowish::trace::sync::resources();
    ownership::apply(&mut graph, &found);
    let owners: usize = graph.iter().map(|r| r.owners.len()).sum();
    assert!(owners >= senders + lockers, "{owners} owners");
    let rows = turbowish::capture::snapshot().tasks.len();
    assert!(rows >= MANY, "{rows} task rows");
    eprintln!(
        "ownership_10k_tasks: {} handles found ({} senders, {} locks), {} resources, {owners} owners",
        found.len(),
        count(HandleKind::Sender),
        count(HandleKind::Lock),
        graph.len(),
    );

    let mut group = c.benchmark_group("ownership_10k_tasks");
    group.bench_function("find", |b| b.iter(ownership::find));
    group.bench_function("resources", |b| b.iter(turbowish::trace::sync::resources));
    group.bench_function("resources_find_apply", |b| {
        b.iter(|| {
            let mut resources = turbowish::trace::sync::resources();
            ownership::apply(&mut resources, &ownership::find());
            resources
        })
    });
    let plain = turbowish::trace::sync::resources();
    group.bench_function("apply", |b| {
        b.iter_batched(
            || plain.clone(),
            |mut resources| {
                ownership::apply(&mut resources, &found);
                resources
            },
            BatchSize::SmallInput,
        )
    });
    group.bench_function("chains_cycles_recorded", |b| {
        b.iter(|| {
            black_box((
                turbowish::trace::chains::chains(&plain),
                turbowish::trace::chains::cycles(&plain),
            ))
        })
    });
    group.bench_function("chains_cycles_owned", |b| {
        b.iter(|| {
            black_box((
                turbowish::trace::chains::chains(&graph),
                turbowish::trace::chains::cycles(&graph),
            ))
        })
    });
    group.sample_size(20);
    group.bench_function("snapshot", |b| b.iter(turbowish::capture::snapshot));
    group.finish();
    runtime.shutdown_background();
}

criterion_group!(benches, bench_snapshot, bench_ownership);
criterion_main!(benches);
