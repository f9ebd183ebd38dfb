//! Regression test for a race between `TaskTag::new()` and record recycling
//! (fixed in 24fb478, "pin handle records before publishing").
//!
//! `TaskTag::new()` used to claim a record (publishing its owner key) and
//! only then pin it. In between, the record looked idle to `try_reclaim`:
//! owned by a handle, unpinned, no live block, no shard batching for it. A
//! concurrent `sweep_idle_records()` (or a tokio task probing for a record)
//! could reclaim it, so the new tag pointed at a record it did not own: every
//! allocation made in its context was charged to the `overflow` bucket, and
//! its `Drop` later unpinned whatever record then sat in that slot.
//!
//! One thread sweeps without pause while this one creates tags and allocates
//! in each; no allocation may reach `overflow` (the table is never close to
//! full here). The race window is a few instructions wide, so this is a
//! stress test with a fixed number of iterations: on the unfixed code it
//! failed in about three debug runs out of four at 3,000,000 tags (often
//! within the first 100,000), and it runs 6,000,000. It stops at the first
//! misattributed allocation it sees.

use std::hint::black_box;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use turbowish_alloc::{context, stats, sweep_idle_records, Owner, TaskTag};

#[global_allocator]
static A: turbowish_alloc::TurboWish = turbowish_alloc::TurboWish::system();

const TAGS: usize = 3_000_000;
const CHECK_EVERY: usize = 100_000;

#[test]
fn new_tags_survive_concurrent_sweeps() {
    let stop = Arc::new(AtomicBool::new(false));
    let sweeper = {
        let stop = Arc::clone(&stop);
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                black_box(sweep_idle_records());
            }
        })
    };

    let mut misattributed = None;
    for i in 1..=TAGS {
        let tag = TaskTag::new();
        {
            let _entered = context::enter(&tag);
            black_box(vec![1u8; 8]);
        }
        drop(tag);
        if i % CHECK_EVERY == 0 {
            let overflow = stats().counters(Owner::Overflow);
            if overflow.total_blocks > 0 {
                misattributed = Some((i, overflow));
                break;
            }
        }
    }
    stop.store(true, Ordering::Relaxed);
    sweeper.join().unwrap();

    if let Some((i, overflow)) = misattributed {
        panic!(
            "after {i} tags, {} allocations made inside `context::enter` of a \
             fresh TaskTag were charged to `overflow`: the tag's record was \
             reclaimed before TaskTag::new pinned it ({overflow:?})",
            overflow.total_blocks
        );
    }
    assert_eq!(stats().counters(Owner::Overflow).total_blocks, 0);
}
