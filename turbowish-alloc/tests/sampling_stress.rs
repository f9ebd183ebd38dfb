//! Sampling every allocation (interval 1) from many threads, some of them
//! starting and exiting all the time, for `TURBOWISH_SAMPLING_SECS` seconds
//! (default 3): no hang, no crash, and the sample table tracks the live
//! blocks exactly.
//!
//! Workers allocate, grow and shrink (`realloc`) and free blocks inside one
//! task context, so their samples are told apart from everything else by
//! owner. Each worker regularly checks that every block it holds is sampled
//! with its current size; at the end, the samples owned by the task must be
//! exactly the blocks the workers still hold, and none once those are freed.
//!
//! A single test, so that no other test's allocations run meanwhile.

use std::collections::HashMap;
use std::thread;
use std::time::{Duration, Instant};

use turbowish_alloc::{context, samples, Owner, TaskTag, TurboWish};

#[global_allocator]
static A: TurboWish = TurboWish::system().sample_interval(1);

/// Threads running at once: one long-lived, the others replaced as they exit.
const WORKERS: usize = 4;
/// Blocks a worker holds at most.
const HELD: usize = 200;

#[test]
fn the_sample_table_tracks_live_blocks_exactly_under_churn() {
    assert_eq!(turbowish_alloc::sample_interval(), 1);
    let secs = std::env::var("TURBOWISH_SAMPLING_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3.0);
    let deadline = Instant::now() + Duration::from_secs_f64(secs);
    let tag = TaskTag::new();
    let owner = Owner::Task(tag.id());

    let mut kept: Vec<Vec<u8>> = Vec::new();
    let mut threads_run = 0u64;
    thread::scope(|s| {
        let long_lived = s.spawn(|| work(&tag, 0, deadline));
        let mut seed = 1;
        // At least one wave of threads that start and exit, however slowly
        // the process runs (under valgrind the deadline may pass first).
        loop {
            // Short-lived workers: a few hundred milliseconds each.
            let wave_end = (Instant::now() + Duration::from_millis(250)).min(deadline);
            let wave: Vec<_> = (1..WORKERS)
                .map(|_| {
                    seed += 1;
                    let tag = &tag;
                    s.spawn(move || work(tag, seed, wave_end))
                })
                .collect();
            for handle in wave {
                kept.extend(handle.join().expect("worker panicked"));
                threads_run += 1;
            }
            if Instant::now() >= deadline {
                break;
            }
        }
        kept.extend(long_lived.join().expect("worker panicked"));
        threads_run += 1;
    });
    assert!(threads_run >= WORKERS as u64);

    // (A Vec shrunk to nothing holds no block.)
    kept.retain(|v| v.capacity() > 0);
    let held: HashMap<usize, usize> = kept
        .iter()
        .map(|v| (v.as_ptr() as usize, v.capacity()))
        .collect();
    assert_eq!(
        held.len(),
        kept.len(),
        "live blocks have distinct addresses"
    );
    let ours: HashMap<usize, usize> = samples()
        .into_iter()
        .filter(|s| s.owner == owner)
        .map(|s| (s.address, s.size))
        .collect();
    assert_eq!(ours, held, "samples of the task = its live blocks");

    drop(kept);
    let left = samples().into_iter().filter(|s| s.owner == owner).count();
    assert_eq!(left, 0, "freed blocks have no samples");
}

/// One worker: random allocations, reallocations and frees of 1 B to 4 KiB
/// until `until`, in `tag`'s context. Returns the blocks it still holds.
fn work(tag: &TaskTag, seed: u64, until: Instant) -> Vec<Vec<u8>> {
    // Bookkeeping is allocated outside the task, so that only the blocks
    // under test are the task's.
    let mut held: Vec<Vec<u8>> = Vec::with_capacity(HELD);
    let mut rng = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    let mut next = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    // At least one round, however late the thread started (under valgrind
    // a thread may start after its wave's deadline).
    loop {
        let entered = context::enter(tag);
        for _ in 0..500 {
            let r = next();
            let size = 1 + (r >> 32) as usize % 4096;
            match r % 8 {
                0..=3 if held.len() < HELD => held.push(Vec::with_capacity(size)),
                0..=4 if !held.is_empty() => {
                    let index = (r >> 16) as usize % held.len();
                    drop(held.swap_remove(index));
                }
                5 | 6 if !held.is_empty() => {
                    // Realloc: grow to exactly `size` more, or shrink.
                    let index = (r >> 16) as usize % held.len();
                    let block = &mut held[index];
                    if r & (1 << 40) == 0 {
                        block.reserve_exact(block.capacity() + size);
                    } else {
                        block.shrink_to(block.capacity() / 2);
                    }
                }
                _ => {}
            }
        }
        drop(entered);
        check_held(&held);
        if Instant::now() >= until {
            break;
        }
    }
    held
}

/// Every block in `held` is sampled, with its size. (Blocks it freed cannot
/// be checked here: another thread may already have been handed the same
/// address.)
fn check_held(held: &[Vec<u8>]) {
    let all = samples();
    for block in held.iter().filter(|b| b.capacity() > 0) {
        let address = block.as_ptr() as usize;
        let found = all
            .binary_search_by_key(&address, |s| s.address)
            .map(|i| &all[i])
            .unwrap_or_else(|_| panic!("live block {address:#x} has no sample"));
        assert_eq!(found.size, block.capacity());
        assert_eq!(found.weight, 1.0);
        assert!(!found.frames.is_empty());
    }
}
