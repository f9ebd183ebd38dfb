//! Cost of the live view (issue #19): building and encoding one update for
//! a viewer of a program with 10,000 live TurboWish tasks, the work each
//! connected `turbowish top` costs the program once a second.
//!
//! The program: 9,750 idle tasks each holding a 64-byte buffer, 50 tasks
//! that allocate and free 4 KiB every 10 ms (their rows change at every
//! update), 50 mutexes each held forever by one task while another
//! waits for it, and 50 channels made outside any task whose sender was
//! moved into a task blocked sending and whose receiver was moved into a
//! task that never receives (so the update scans every task's state for
//! the ends' owners). Benched, in group `live_update_10k_tasks`:
//!
//! * `tick`: an update on a connection that has had its first one (only the
//!   rows that changed are sent) plus its encoding: the steady per-second
//!   cost;
//! * `first_tick`: a new connection's first update (every row, each with its
//!   name and spawn location) plus its encoding;
//! * `tasks` and `resources`: the two reads an update makes
//!   (`turbowish::trace::task::tasks()`, `turbowish::trace::sync::resources()`);
//! * `ownership_find`: the scan of every task's root cell for handles
//!   (`turbowish::trace::ownership::find()`) that an update makes when a
//!   channel end is among the holders.
//!
//! At one update a second, a tick of T ms costs T / 10 % of one core.
//!
//! Before the benches, it prints the thread CPU time of 200 ticks and of
//! 200 ownership scans (10th percentile and median): on a shared machine
//! the wall-clock figures include the time the bench thread was not
//! running, the CPU time does not.
//!
//! Run: `cargo bench -p turbowish-bench --bench live_update -- --warm-up-time 1
//! --measurement-time 5`. The figures are in `book/src/live.md`.

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use turbowish::capture::LiveSampler;
use turbowish::snapshot::live::ServerFrame;
use turbowish::trace::sync::{mpsc, Mutex};

#[global_allocator]
static ALLOC: turbowish::TurboWish = turbowish::TurboWish::system();

const TASKS: usize = 10_000;
const BUSY: usize = 50;
const LOCKS: usize = 50;
const CHANNELS: usize = 50;

/// Spawns the program's tasks on the current runtime.
async fn spawn_program() {
    for l in 0..LOCKS {
        // Two tasks lock it and keep it: whichever comes first holds it,
        // the other waits.
        let lock = Arc::new(Mutex::new_named(format!("lock-{l}"), 0u64));
        for _ in 0..2 {
            let lock = lock.clone();
            turbowish::trace::spawn("locker", async move {
                let _guard = lock.lock().await;
                std::future::pending::<()>().await;
            });
        }
    }
    for c in 0..CHANNELS {
        // Made here, outside any task: the ends' records name this thread
        // until ownership names the tasks they were moved into.
        let (tx, rx) = mpsc::channel_named::<u64>(format!("chan-{c}"), 1);
        turbowish::trace::spawn("sender", async move {
            // The second send waits for room that never comes.
            let _ = tx.send(1).await;
            let _ = tx.send(2).await;
        });
        turbowish::trace::spawn("receiver", async move {
            let _keep = &rx;
            std::future::pending::<()>().await;
        });
    }
    for _ in 0..BUSY {
        turbowish::trace::spawn("busy", async {
            let mut tick = tokio::time::interval(Duration::from_millis(10));
            loop {
                tick.tick().await;
                black_box(vec![0u8; 4096]);
            }
        });
    }
    for _ in 0..TASKS - BUSY - 2 * LOCKS - 2 * CHANNELS {
        turbowish::trace::spawn("idle", async {
            let buffer = vec![0u8; 64];
            std::future::pending::<()>().await;
            drop(buffer);
        });
    }
}

/// This thread's CPU time, in ns.
fn thread_cpu_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; CLOCK_THREAD_CPUTIME_ID
    // is supported on every platform this bench runs on.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    assert_eq!(rc, 0, "clock_gettime(CLOCK_THREAD_CPUTIME_ID)");
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// Prints the 10th percentile and the median thread CPU time of `n` runs
/// of `f`.
fn cpu_time(label: &str, n: usize, mut f: impl FnMut()) {
    let mut times: Vec<u64> = (0..n)
        .map(|_| {
            let start = thread_cpu_ns();
            f();
            thread_cpu_ns() - start
        })
        .collect();
    times.sort_unstable();
    eprintln!(
        "live_update_10k_tasks: {label}: CPU time p10 {:.2} ms, median {:.2} ms ({n} runs)",
        times[n / 10] as f64 / 1e6,
        times[n / 2] as f64 / 1e6
    );
}

/// One update and its bytes on the wire.
fn tick(sampler: &mut LiveSampler) -> Vec<u8> {
    ServerFrame::Update(sampler.update()).encode()
}

fn bench_live_update(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    runtime.block_on(async {
        spawn_program().await;
        tokio::time::sleep(Duration::from_millis(300)).await;
    });

    // The program is in place: every task has a row, every lock a holder
    // and a waiter.
    let mut sampler = LiveSampler::new();
    let first = sampler.update();
    let first_bytes = ServerFrame::Update(first.clone()).encode().len();
    assert!(first.rows.len() >= TASKS, "{} rows", first.rows.len());
    assert_eq!(
        first
            .resources
            .iter()
            .filter(|r| r.name.starts_with("lock-") && r.holders.len() == 1 && r.waiters.len() == 1)
            .count(),
        LOCKS
    );
    assert_eq!(
        first
            .resources
            .iter()
            .filter(|r| r.name.starts_with("chan-") && r.holders.len() == 2 && r.waiters.len() == 1)
            .count(),
        CHANNELS
    );
    std::thread::sleep(Duration::from_millis(100));
    let next = sampler.update();
    let next_bytes = ServerFrame::Update(next.clone()).encode().len();
    assert!(next.rows.len() >= BUSY && next.rows.len() < TASKS / 2);
    eprintln!(
        "live_update_10k_tasks: first update {} rows, {first_bytes} bytes; later updates {} rows, {next_bytes} bytes",
        first.rows.len(),
        next.rows.len()
    );

    cpu_time("tick", 200, || {
        black_box(tick(&mut sampler));
    });
    cpu_time("ownership_find", 200, || {
        black_box(turbowish::trace::ownership::find());
    });

    let mut group = c.benchmark_group("live_update_10k_tasks");
    group.bench_function("tick", |b| b.iter(|| tick(&mut sampler)));
    group.bench_function("first_tick", |b| {
        b.iter_batched(
            LiveSampler::new,
            |mut s| tick(&mut s),
            BatchSize::SmallInput,
        )
    });
    group.bench_function("tasks", |b| b.iter(turbowish::trace::task::tasks));
    group.bench_function("stats", |b| b.iter(turbowish::alloc::stats));
    group.bench_function("resources", |b| b.iter(turbowish::trace::sync::resources));
    group.bench_function("ownership_find", |b| {
        b.iter(turbowish::trace::ownership::find)
    });
    group.finish();
    runtime.shutdown_background();
}

criterion_group!(benches, bench_live_update);
criterion_main!(benches);
