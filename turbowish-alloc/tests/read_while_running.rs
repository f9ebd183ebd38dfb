//! Reading counters while other threads allocate and free: rows may be off
//! by what happens during the read, but never below what a task holds
//! throughout (before the fix they went "negative", wrapping to about
//! 1.8e19).
//!
//! * `task_counters_never_read_below_what_the_task_holds`: one thread, in a
//!   task's context, keeps one 1000-byte block and churns 64-byte blocks;
//!   another reads `TaskTag::counters()` without pause. Every read must show
//!   at least the kept block. The churn never leaves the thread's batch, so
//!   no sequence number moves: a reader that read the batch's allocations
//!   before its frees used to see the frees of blocks whose allocations it
//!   had missed (about 0.4% of reads, by up to tens of KiB).
//! * `stats_rows_never_go_negative_under_cross_thread_frees`: one thread
//!   allocates 1000-byte blocks in a task's context and sends them to
//!   another, which frees them (charged straight to the task's record); the
//!   main thread reads `stats()` without pause. The task's row must never be
//!   negative. `stats()` used to read every batch first and the records up to
//!   a millisecond later, so it saw frees of blocks allocated after it had
//!   read the batch (about a third of reads, by up to 800 KB). The task's
//!   record sits far into the table, so that the gap was wide.
//!
//! Each test stops at its first bad read, or after two seconds.

use std::hint::black_box;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use turbowish_alloc::{context, stats, Counters, Owner, TaskTag};

#[global_allocator]
static A: turbowish_alloc::TurboWish = turbowish_alloc::TurboWish::system();

const RUN_FOR: Duration = Duration::from_secs(2);

/// Calls `read` until it returns a bad value or `RUN_FOR` passes; returns
/// the number of reads and the first bad value.
fn read_for(mut read: impl FnMut() -> Option<Counters>) -> (u64, Option<Counters>) {
    let started = Instant::now();
    let mut reads = 0;
    while started.elapsed() < RUN_FOR {
        reads += 1;
        if let Some(bad) = read() {
            return (reads, Some(bad));
        }
    }
    (reads, None)
}

#[test]
fn task_counters_never_read_below_what_the_task_holds() {
    const KEPT: u64 = 1000;
    let tag = Arc::new(TaskTag::new());
    let stop = Arc::new(AtomicBool::new(false));
    let (ready_tx, ready_rx) = mpsc::channel();
    let churner = {
        let (tag, stop) = (Arc::clone(&tag), Arc::clone(&stop));
        std::thread::spawn(move || {
            let _entered = context::enter(&tag);
            let kept = black_box(vec![0u8; KEPT as usize]);
            ready_tx.send(()).unwrap();
            while !stop.load(Ordering::Relaxed) {
                for _ in 0..1000 {
                    black_box(vec![1u8; 64]);
                }
            }
            drop(kept);
        })
    };
    ready_rx.recv().unwrap();

    let (reads, bad) = read_for(|| {
        let c = tag.counters();
        (c.live_bytes < KEPT || c.live_bytes >= 1 << 62 || c.live_blocks == 0).then_some(c)
    });
    stop.store(true, Ordering::Relaxed);
    churner.join().unwrap();
    assert_eq!(bad, None, "read {reads} of a task holding {KEPT} bytes");
}

#[test]
fn stats_rows_never_go_negative_under_cross_thread_frees() {
    // Push the task's record far into the table (handle records are handed
    // out in table order), so that `stats()` reaches it late in its walk.
    let padding: Vec<TaskTag> = (0..3000).map(|_| TaskTag::new()).collect();
    let tag = Arc::new(TaskTag::new());
    let owner = Owner::Task(tag.id());
    let stop = Arc::new(AtomicBool::new(false));
    let (tx, rx) = mpsc::sync_channel::<Vec<u8>>(64);
    let producer = {
        let (tag, stop) = (Arc::clone(&tag), Arc::clone(&stop));
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let block = {
                    let _entered = context::enter(&tag);
                    vec![1u8; 1000]
                };
                if tx.send(block).is_err() {
                    break;
                }
            }
        })
    };
    let consumer = std::thread::spawn(move || {
        while let Ok(block) = rx.recv() {
            drop(black_box(block));
        }
    });

    let (reads, bad) = read_for(|| {
        let c = stats().counters(owner);
        (c.live_bytes >= 1 << 62 || c.live_blocks >= 1 << 62).then_some(c)
    });
    stop.store(true, Ordering::Relaxed);
    producer.join().unwrap();
    consumer.join().unwrap();
    assert_eq!(bad, None, "stats() read {reads}");
    drop(padding);
}
