//! A million short tokio tasks do not exhaust the record table.
//!
//! Spawns 1,000,000 tasks with plain `tokio::spawn` on a two-worker
//! multi-thread runtime, 10,000 at a time. Tasks allocate and free small
//! vectors (some across a yield, so many tasks hold memory at once; every
//! fourth task allocates nothing). Checks that:
//!
//! * no task was ever denied a record: the `overflow` bucket's
//!   `total_blocks` stays 0 after every batch;
//! * after `sweep_idle_records()`, `records_in_use` is small (< 1000):
//!   records of finished tasks are recycled, TurboWish's memory is bounded;
//! * a last task that keeps exactly 4 KiB is charged exactly that on its own
//!   `Owner::TokioTask` row, on a table that has recycled its records ~15
//!   times over.
//!
//! The run time is printed (`--nocapture`); it must stay well under 60 s in a
//! debug build on two cores.

use std::hint::black_box;
use std::time::Instant;

use tokio::sync::oneshot;
use turbowish_alloc::{stats, sweep_idle_records, Owner};

mod common;
use common::tokio_owner;

#[global_allocator]
static A: turbowish_alloc::TurboWish = turbowish_alloc::TurboWish::system();

const TASKS: usize = 1_000_000;
const BATCH: usize = 10_000;

async fn small_task(i: usize) {
    match i % 4 {
        // Allocates nothing at all.
        0 => {}
        // Allocates and frees within one poll.
        1 => {
            let v = vec![i as u8; 16 + i % 64];
            black_box(&v);
        }
        // Holds a block across a yield, so up to a batch of tasks hold
        // memory (and a record) at the same time.
        2 => {
            let v = vec![i as u8; 8 + i % 200];
            tokio::task::yield_now().await;
            black_box(&v);
        }
        // Grows a vector through several reallocs, across a yield.
        _ => {
            let mut v = Vec::new();
            for k in 0..5u8 {
                v.push(k);
            }
            tokio::task::yield_now().await;
            v.extend_from_slice(&[1; 40]);
            black_box(&v);
        }
    }
}

#[test]
fn a_million_tasks_recycle_their_records() {
    let started = Instant::now();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .unwrap();

    rt.block_on(async {
        let mut handles = Vec::with_capacity(BATCH);
        let mut max_in_use = 0;
        for batch in 0..TASKS / BATCH {
            for j in 0..BATCH {
                handles.push(tokio::spawn(small_task(batch * BATCH + j)));
            }
            for handle in handles.drain(..) {
                handle.await.unwrap();
            }
            let s = stats();
            assert_eq!(
                s.counters(Owner::Overflow).total_blocks,
                0,
                "batch {batch}: a task was denied a record ({} in use of {})",
                s.records_in_use,
                s.record_capacity
            );
            max_in_use = max_in_use.max(s.records_in_use);
        }
        println!("most records in use after a batch: {max_in_use}");
    });

    let recycled = sweep_idle_records();
    let s = stats();
    println!(
        "swept {recycled} records; {} in use of {}",
        s.records_in_use, s.record_capacity
    );
    assert!(
        s.records_in_use < 1000,
        "{} records in use after the sweep",
        s.records_in_use
    );
    assert_eq!(s.counters(Owner::Overflow).total_blocks, 0);
    // Every task has finished, but a task whose poll grew one of tokio's
    // per-worker buffers (the `Vec<Waker>` that `yield_now` defers into) is
    // charged for that buffer while the runtime keeps it: a handful of
    // small rows at most, never one per task.
    let holding: Vec<_> = s
        .tasks
        .iter()
        .filter(|t| matches!(t.owner, Owner::TokioTask(_)) && t.counters.live_blocks > 0)
        .collect();
    for row in &holding {
        println!("finished task still charged for a runtime buffer: {row:?}");
    }
    let held: u64 = holding.iter().map(|t| t.counters.live_bytes).sum();
    assert!(
        holding.len() <= 8 && held <= 16 * 1024,
        "{} finished tasks still hold {held} bytes",
        holding.len()
    );

    // A last task keeps 4 KiB while parked.
    let (ready_tx, ready_rx) = oneshot::channel::<()>();
    let (go_tx, go_rx) = oneshot::channel::<()>();
    rt.block_on(async move {
        let last = tokio::spawn(async move {
            let keep = Vec::<u8>::with_capacity(4096);
            ready_tx.send(()).unwrap();
            go_rx.await.unwrap();
            black_box(&keep);
        });
        let owner = tokio_owner(last.id());
        ready_rx.await.unwrap();
        let s = stats();
        let row = s.task(owner).expect("the last task has a row");
        assert_eq!(row.counters.live_bytes, 4096, "{row:?}");
        assert_eq!(row.counters.live_blocks, 1, "{row:?}");
        assert_eq!(row.counters.total_bytes, 4096, "{row:?}");
        assert_eq!(row.counters.total_blocks, 1, "{row:?}");
        assert_eq!(row.counters.peak_live_bytes, 4096, "{row:?}");
        assert_eq!(
            s.tasks.iter().filter(|t| t.owner == owner).count(),
            1,
            "one row per task"
        );
        assert_eq!(s.counters(Owner::Overflow).total_blocks, 0);
        go_tx.send(()).unwrap();
        last.await.unwrap();
    });
    drop(rt);

    println!("{TASKS} tasks in {:.1} s", started.elapsed().as_secs_f64());
}
