//! Heap-walk mode: the registry lists every live block exactly, frees are
//! deferred while a view lives, views survive threads allocating and
//! freeing hard, and a view of a million blocks builds and answers `find`.
//!
//! The tests take views, and only one view exists at a time, so they run one
//! after the other (`common::serial`). Each allocates inside its own task
//! context and looks only at its own task's blocks, so the test harness's
//! allocations do not disturb it.

mod common;

use std::alloc::{alloc, dealloc, realloc, Layout};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use common::{row, serial};
use turbowish_alloc::{context, heap_view, HeapView, LiveBlock, Owner, TaskTag, TurboWish};

#[global_allocator]
static A: TurboWish = TurboWish::system().heap_walk();

/// The view's blocks owned by `tag`, by start.
fn blocks_of(view: &HeapView, tag: &TaskTag) -> HashMap<usize, LiveBlock> {
    let owner = Owner::Task(tag.id());
    view.blocks()
        .iter()
        .filter(|b| b.owner == owner)
        .map(|b| (b.start, *b))
        .collect()
}

/// Blocks are sorted by start and do not overlap.
fn check_sorted(view: &HeapView) {
    for pair in view.blocks().windows(2) {
        assert!(
            pair[0].start + pair[0].size <= pair[1].start,
            "{:?} overlaps {:?}",
            pair[0],
            pair[1]
        );
    }
}

#[test]
fn every_live_block_is_in_the_view_with_its_size_and_owner() {
    let _serial = serial();
    assert!(turbowish_alloc::heap_walk_enabled());
    let tag = TaskTag::new();
    let mut blocks: Vec<(*mut u8, Layout)> = Vec::with_capacity(1000);
    {
        let _in_task = context::enter(&tag);
        for i in 0..1000usize {
            let size = [1, 8, 24, 100, 4096, 70_000][i % 6] + i;
            let align = [1, 8, 16, 64, 4096][i % 5];
            let layout = Layout::from_size_align(size, align).unwrap();
            // SAFETY: non-zero size; freed below with the same layout.
            let mut ptr = unsafe { alloc(layout) };
            assert!(!ptr.is_null());
            let mut layout = layout;
            if i % 7 == 0 {
                // Reallocated blocks are in the view at their new place
                // and size.
                // SAFETY: a live block of `layout`; the new size is valid.
                ptr = unsafe { realloc(ptr, layout, size * 3) };
                assert!(!ptr.is_null());
                layout = Layout::from_size_align(size * 3, align).unwrap();
            }
            blocks.push((ptr, layout));
        }
    }

    let view = heap_view().expect("heap-walk mode");
    assert!(heap_view().is_none(), "one view at a time");
    check_sorted(&view);
    let ours = blocks_of(&view, &tag);
    assert_eq!(ours.len(), blocks.len());
    for &(ptr, layout) in &blocks {
        let start = ptr as usize;
        let block = ours.get(&start).expect("listed");
        assert_eq!(block.size, layout.size());
        let first = view.find(start).expect("start is inside");
        assert_eq!(first, block);
        let last = view.find(start + layout.size() - 1).expect("last byte");
        assert_eq!(last, block);
        let index = view.index_of(start).unwrap();
        assert_eq!(&view.blocks()[index], block);
        if let Some(after) = view.find(start + layout.size()) {
            assert_ne!(after.start, start, "one past the end is not inside");
        }
    }
    drop(view);

    for &(ptr, layout) in &blocks {
        // SAFETY: allocated above with this layout.
        unsafe { dealloc(ptr, layout) };
    }
    let view = heap_view().expect("the first view was dropped");
    assert!(blocks_of(&view, &tag).is_empty(), "freed blocks are gone");
}

#[test]
fn frees_during_a_view_wait_for_its_drop() {
    let _serial = serial();
    let tag = TaskTag::new();
    let layout = Layout::from_size_align(48, 8).unwrap();
    let mut blocks: Vec<usize> = Vec::with_capacity(100);
    {
        let _in_task = context::enter(&tag);
        for _ in 0..100 {
            // SAFETY: non-zero size; freed below.
            blocks.push(unsafe { alloc(layout) } as usize);
        }
    }
    let grown;
    {
        let view = heap_view().expect("heap-walk mode");
        assert_eq!(blocks_of(&view, &tag).len(), 100);
        let _in_task = context::enter(&tag);
        for &ptr in &blocks[1..] {
            // SAFETY: allocated above with this layout.
            unsafe { dealloc(ptr as *mut u8, layout) };
        }
        // A realloc while frees are paused moves the block by hand: the
        // contents come along, the old block waits like a free.
        let old = blocks[0] as *mut u8;
        // SAFETY: a live block of `layout`.
        unsafe { old.write_bytes(0x5a, 48) };
        // SAFETY: as above; 4000 is a valid size.
        grown = unsafe { realloc(old, layout, 4000) };
        assert!(!grown.is_null());
        assert_ne!(grown, old);
        // SAFETY: the first 48 bytes were copied.
        assert!(unsafe { std::slice::from_raw_parts(grown, 48) }
            .iter()
            .all(|&b| b == 0x5a));

        // Nothing went back to the inner allocator: it hands none of those
        // addresses out again (glibc would, at once, from its tcache), and
        // they still count as live (the 100, the grown block, the 200 and
        // the list of them).
        let again: Vec<usize> = (0..200)
            // SAFETY: non-zero size; freed below.
            .map(|_| unsafe { alloc(layout) } as usize)
            .collect();
        assert!(again.iter().all(|p| !blocks.contains(p)));
        assert_eq!(row(&tag).live_blocks, 100 + 1 + 200 + 1);
        for p in again {
            // SAFETY: allocated just above with this layout.
            unsafe { dealloc(p as *mut u8, layout) };
        }
        assert_eq!(row(&tag).live_blocks, 100 + 1 + 200 + 1, "still deferred");
        drop(view);
    }
    assert_eq!(row(&tag).live_blocks, 1, "deferred frees ran at the drop");
    // SAFETY: the grown block, live.
    unsafe { dealloc(grown, Layout::from_size_align(4000, 8).unwrap()) };
    assert_eq!(row(&tag).live_blocks, 0);
}

#[test]
fn views_taken_while_two_threads_churn() {
    let _serial = serial();
    let secs: f64 = std::env::var("TURBOWISH_HEAP_WALK_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(2.0);
    let tag = TaskTag::new();
    let stop = AtomicBool::new(false);
    let mut views = 0;
    thread::scope(|s| {
        let workers: Vec<_> = (0..2u64)
            .map(|seed| {
                let (tag, stop) = (&tag, &stop);
                s.spawn(move || churn(tag, stop, seed + 1))
            })
            .collect();
        // At least `secs` and at least 20 views (slow under valgrind).
        let until = Instant::now() + Duration::from_secs_f64(secs);
        while Instant::now() < until || views < 20 {
            let view = heap_view().expect("no other view");
            check_sorted(&view);
            views += 1;
            // Frees pile up while the view lives.
            thread::sleep(Duration::from_millis(2));
            drop(view);
            thread::sleep(Duration::from_millis(1));
        }
        stop.store(true, Ordering::Relaxed);
        for worker in workers {
            worker.join().expect("worker panicked");
        }
    });
    // Every block was freed: none left in the registry or the counters.
    let view = heap_view().expect("no other view");
    assert!(blocks_of(&view, &tag).is_empty());
    drop(view);
    assert_eq!(row(&tag).live_blocks, 0);
    assert_eq!(row(&tag).live_bytes, 0);
}

/// Allocates, reallocates and frees blocks of 1 B to 2 KiB in `tag`'s
/// context until `stop`, then frees what it holds.
fn churn(tag: &TaskTag, stop: &AtomicBool, seed: u64) {
    let mut held: Vec<Vec<u8>> = Vec::with_capacity(256);
    let mut rng = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    let _in_task = context::enter(tag);
    while !stop.load(Ordering::Relaxed) {
        for _ in 0..256 {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            let size = 1 + (rng >> 40) as usize % 2048;
            match rng % 4 {
                0 | 1 if held.len() < 256 => held.push(vec![rng as u8; size]),
                2 if !held.is_empty() => {
                    let i = (rng >> 20) as usize % held.len();
                    let block = &mut held[i];
                    let fill = block.first().copied();
                    block.resize(size, 1);
                    if let Some(fill) = fill {
                        assert_eq!(block[0], fill, "realloc keeps the contents");
                    }
                }
                _ if !held.is_empty() => {
                    let i = (rng >> 20) as usize % held.len();
                    drop(held.swap_remove(i));
                }
                _ => {}
            }
        }
    }
}

/// A view big enough that its sort is shared out among threads (on a
/// machine with more than one core) lists every block once, in order.
#[test]
fn a_million_live_blocks() {
    let _serial = serial();
    const N: usize = 1_000_000;
    let tag = TaskTag::new();
    let mut boxes: Vec<Box<u64>> = Vec::with_capacity(N);
    {
        let _in_task = context::enter(&tag);
        for i in 0..N {
            boxes.push(Box::new(i as u64));
        }
    }
    let view = heap_view().expect("heap-walk mode");
    assert!(view.blocks().len() >= N);
    check_sorted(&view);
    let owner = Owner::Task(tag.id());
    assert_eq!(view.blocks().iter().filter(|b| b.owner == owner).count(), N);
    for (i, b) in boxes.iter().enumerate().step_by(97) {
        let start = &**b as *const u64 as usize;
        let found = view.find(start + 7).expect("inside a block");
        assert_eq!((found.start, found.size, found.owner), (start, 8, owner));
        assert_eq!(**b, i as u64);
    }
    drop(view);
    drop(boxes);
    assert_eq!(row(&tag).live_blocks, 0);
}

/// The sampled bit and the registry index share the header's flags: a
/// sampled block is marked in the view, and a realloc of it while frees are
/// paused moves its sample with it.
#[test]
fn sampled_blocks_in_a_view() {
    let _serial = serial();
    // 16 MiB at the default 512 KiB interval: sampled with probability
    // 1 - e^-32.
    const BIG: usize = 16 << 20;
    let tag = TaskTag::new();
    let mut big: Vec<u8> = {
        let _in_task = context::enter(&tag);
        Vec::with_capacity(BIG)
    };
    let old = big.as_ptr() as usize;
    let sampled = |address: usize| {
        turbowish_alloc::samples()
            .iter()
            .any(|s| s.address == address)
    };
    assert!(sampled(old));
    {
        let view = heap_view().expect("heap-walk mode");
        let block = view.find(old).expect("listed");
        assert_eq!((block.size, block.sampled), (BIG, true));
        let _in_task = context::enter(&tag);
        big.reserve_exact(BIG * 2);
        drop(view);
    }
    let new = big.as_ptr() as usize;
    assert_ne!(new, old, "moved by hand while frees were paused");
    assert!(!sampled(old), "the old block's sample went with its free");
    assert!(sampled(new));
    let view = heap_view().expect("heap-walk mode");
    let block = view.find(new).expect("listed");
    assert_eq!((block.size, block.sampled), (BIG * 2, true));
    assert!(view
        .find(old)
        .is_none_or(|b| b.start != old || b.owner != Owner::Task(tag.id())));
    drop(view);
    drop(big);
    assert_eq!(row(&tag).live_blocks, 0);
}

/// Resident memory of this process, in bytes (`/proc/self/statm`).
#[cfg(target_os = "linux")]
fn resident() -> usize {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap();
    let pages: usize = statm.split_whitespace().nth(1).unwrap().parse().unwrap();
    // SAFETY: sysconf has no preconditions.
    pages * unsafe { libc::sysconf(libc::_SC_PAGESIZE) } as usize
}

/// A view's drop that frees a lot at once gives the memory back: 128 MiB
/// of 64 KiB blocks, each with a small block kept after it (so nothing
/// merges into the top of the heap and glibc would keep it all), freed
/// while a view lives.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[test]
fn a_large_drain_gives_memory_back() {
    // Under valgrind (`.ci/valgrind.sh` runs this file) malloc is
    // valgrind's: glibc's trim has nothing to give back.
    let preload = std::env::var_os("LD_PRELOAD").unwrap_or_default();
    if preload.to_string_lossy().contains("vgpreload") {
        eprintln!("skipped under valgrind: its malloc is not glibc's");
        return;
    }
    let _serial = serial();
    let tag = TaskTag::new();
    let _in_task = context::enter(&tag);
    let view = heap_view().expect("heap-walk mode");
    let mut kept = Vec::with_capacity(2048);
    let mut big = Vec::with_capacity(2048);
    for i in 0..2048u64 {
        big.push(vec![i as u8 | 1; 64 << 10]);
        kept.push(Box::new(i));
    }
    drop(big);
    let before = resident();
    drop(view);
    let after = resident();
    assert!(
        before.saturating_sub(after) > 64 << 20,
        "resident {before} -> {after} bytes"
    );
    drop(kept);
}
