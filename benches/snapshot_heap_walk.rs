//! What ownership resolution costs in a heap-walk snapshot: 1,000 live
//! TurboWish tasks, each retaining 300 boxes of 32 bytes through a `Vec`
//! in its future's state (300,000 blocks with the buffers), parked forever.
//! 250 of them hold a `Sender` of one of 20 channels (in their future's
//! state, or for one in two of those in a heap block only they reach), 100
//! hold an `Arc` of one of 100 mutexes they locked once, and 20 consumers
//! hold the receivers and wait for a lock one of 20 holders keeps.
//!
//! The walk runs a mark scanner over every word it scans, and cannot be
//! told not to, so ownership's share of the walk is measured the only way
//! the library allows: every task then drops its TurboWish handles (the
//! heap otherwise unchanged) and the walk and the snapshot are timed again
//! with no live resource, which leaves the scanner its per-word mark test
//! but no lookups. Benched, with the handles live: `walk()` alone,
//! `ownership::find()` alone, `resources()` + `apply()` of `find()` and the
//! walk's handles, the full `capture::snapshot()`; then, released: `walk()`
//! and `snapshot()`.
//!
//! Run: `TURBOWISH_SAMPLE_INTERVAL=0 cargo bench --bench snapshot_heap_walk
//! -- --warm-up-time 1 --measurement-time 3` (without the variable the
//! snapshot also symbolises the sampled stacks). The figures are in
//! `book/src/overhead.md`.

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use turbowish::trace::ownership;
use turbowish::trace::sync::{mpsc, Mutex};

#[global_allocator]
static ALLOC: turbowish::TurboWish = turbowish::TurboWish::system().heap_walk();

const TASKS: usize = 1_000;
const BOXES: usize = 300;
const CHANNELS: usize = 20;
const SHARED_LOCKS: usize = 100;

/// The boxes a task retains: integers that point nowhere (hashes).
// Each box is one live block of its own: that is the heap being measured.
#[allow(clippy::vec_box)]
fn boxes(seed: usize) -> Vec<Box<[u64; 4]>> {
    (0..BOXES)
        .map(|k| Box::new([((seed * BOXES + k) as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15); 4]))
        .collect()
}

/// Spawns the tasks (see the file's doc); each drops its handles when
/// `release` changes and stays parked. Returns the number of handles
/// placed in tasks.
async fn spawn_tasks(release: &tokio::sync::watch::Receiver<bool>) -> usize {
    let channels: Vec<_> = (0..CHANNELS)
        .map(|c| mpsc::channel_named::<usize>(format!("jobs-{c}"), 1))
        .collect();
    let stuck: Vec<_> = (0..CHANNELS)
        .map(|c| Arc::new(Mutex::new_named(format!("stuck-{c}"), ())))
        .collect();
    let shared: Vec<_> = (0..SHARED_LOCKS)
        .map(|l| Arc::new(Mutex::new_named(format!("shared-{l}"), 0u64)))
        .collect();
    let mut handles = 0;
    let mut receivers = Vec::new();
    let mut senders = Vec::new();
    for (tx, rx) in channels {
        senders.push(tx);
        receivers.push(Some(rx));
    }
    for i in 0..TASKS {
        let c = i % CHANNELS;
        let mut release = release.clone();
        let blocks = boxes(i);
        handles += 1;
        if i < CHANNELS {
            let lock = stuck[c].clone();
            turbowish::trace::spawn(format!("holder-{c}"), async move {
                let blocks = blocks;
                let work = async move {
                    let _guard = lock.lock().await;
                    std::future::pending::<()>().await;
                };
                tokio::select! { _ = work => {}, _ = release.changed() => {} }
                std::future::pending::<()>().await;
                drop(blocks);
            });
            tokio::task::yield_now().await;
        } else if i < 2 * CHANNELS {
            let rx = receivers[c].take().expect("one consumer per channel");
            let lock = stuck[c].clone();
            turbowish::trace::spawn(format!("consumer-{c}"), async move {
                let blocks = blocks;
                let work = async move {
                    let _rx = &rx;
                    let _guard = lock.lock().await;
                    std::future::pending::<()>().await;
                };
                tokio::select! { _ = work => {}, _ = release.changed() => {} }
                std::future::pending::<()>().await;
                drop(blocks);
            });
        } else if i % 4 == 0 {
            let tx = senders[c].clone();
            // One in two keeps its sender in a heap block it alone reaches.
            let boxed = i % 8 == 4;
            turbowish::trace::spawn(format!("producer-{c}"), async move {
                let blocks = blocks;
                let work = async move {
                    if boxed {
                        let tx = vec![tx];
                        let _keep = &tx;
                        std::future::pending::<()>().await;
                    } else {
                        let _keep = &tx;
                        std::future::pending::<()>().await;
                    }
                };
                tokio::select! { _ = work => {}, _ = release.changed() => {} }
                std::future::pending::<()>().await;
                drop(blocks);
            });
        } else if i % 10 == 1 {
            let lock = shared[i % SHARED_LOCKS].clone();
            turbowish::trace::spawn("locker", async move {
                let blocks = blocks;
                let work = async move {
                    *lock.lock().await += 1;
                    std::future::pending::<()>().await;
                };
                tokio::select! { _ = work => {}, _ = release.changed() => {} }
                std::future::pending::<()>().await;
                drop(blocks);
            });
        } else {
            handles -= 1;
            turbowish::trace::spawn("idle", async move {
                let _ = release.changed().await;
                std::future::pending::<()>().await;
                drop(blocks);
            });
        }
    }
    drop((senders, stuck, shared));
    handles
}

fn bench_heap_walk_snapshot(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    let (release_tx, release_rx) = tokio::sync::watch::channel(false);
    let placed = runtime.block_on(async {
        let placed = spawn_tasks(&release_rx).await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        placed
    });
    assert!(turbowish::alloc::heap_walk_enabled());

    let report = turbowish::trace::walk::walk().expect("heap-walk mode");
    let found = ownership::find();
    let owners = |found: &[ownership::FoundHandle]| {
        let mut graph = turbowish::trace::sync::resources();
        ownership::apply(&mut graph, found);
        graph.iter().map(|r| r.owners.len()).sum::<usize>()
    };
    let mut all = found.clone();
    all.extend(report.handles.iter().cloned());
    assert!(owners(&all) >= placed, "{} owners", owners(&all));
    eprintln!(
        "snapshot_heap_walk: {} live blocks, {} scanned ({} MB), {} handles in root cells, {} in the walk, {} owners",
        report.stats.live_blocks,
        report.stats.blocks_scanned,
        report.stats.bytes_scanned >> 20,
        found.len(),
        report.handles.len(),
        owners(&all),
    );
    assert!(report.stats.live_blocks >= (TASKS * BOXES) as u64);

    let mut group = c.benchmark_group("snapshot_heap_walk_1k_tasks");
    group.sample_size(20);
    group.bench_function("walk", |b| {
        b.iter(|| black_box(turbowish::trace::walk::walk().expect("heap-walk mode")))
    });
    group.bench_function("find", |b| b.iter(ownership::find));
    group.bench_function("resources", |b| b.iter(turbowish::trace::sync::resources));
    group.bench_function("resources_find_apply", |b| {
        b.iter(|| {
            let mut resources = turbowish::trace::sync::resources();
            let mut handles = ownership::find();
            handles.extend(report.handles.iter().cloned());
            ownership::apply(&mut resources, &handles);
            resources
        })
    });
    group.bench_function("snapshot", |b| b.iter(turbowish::capture::snapshot));

    // Every task drops its handles; the heap keeps its boxes.
    release_tx.send(true).expect("tasks listen");
    runtime.block_on(async { tokio::time::sleep(Duration::from_millis(300)).await });
    assert!(turbowish::trace::sync::resources().is_empty());
    assert!(ownership::find().is_empty());
    let released = turbowish::trace::walk::walk().expect("heap-walk mode");
    assert!(released.handles.is_empty());
    eprintln!(
        "snapshot_heap_walk released: {} live blocks, {} scanned ({} MB)",
        released.stats.live_blocks,
        released.stats.blocks_scanned,
        released.stats.bytes_scanned >> 20,
    );
    group.bench_function("walk_released", |b| {
        b.iter(|| black_box(turbowish::trace::walk::walk().expect("heap-walk mode")))
    });
    group.bench_function("snapshot_released", |b| {
        b.iter(turbowish::capture::snapshot)
    });
    group.finish();
    runtime.shutdown_background();
}

criterion_group!(benches, bench_heap_walk_snapshot);
criterion_main!(benches);
