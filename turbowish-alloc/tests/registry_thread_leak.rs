//! Heap-walk mode: threads that never claim a shard of their own (threads
//! that only free blocks other threads allocated, and every thread while
//! tagging is disabled) give their registry entries back when they exit.
//! Otherwise each such thread takes up to two lists of entries with it, and
//! a program that spawns such threads runs the registry dry.
//!
//! A block's registry index is in its header's `flags` (the 8-byte prefix
//! before the block, `{tag: u32, flags: u32}`, low 31 bits): when entries
//! are recycled, the indices of fresh blocks stay small.

use std::alloc::{GlobalAlloc, Layout, System};

use turbowish_alloc::TurboWish;

/// `System`, exposing the provenance of every block it returns, so that
/// the test may read a header (which lies outside the user's block).
struct Exposing;

// SAFETY: forwards to `System`.
unsafe impl GlobalAlloc for Exposing {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as for this function.
        let block = unsafe { System.alloc(layout) };
        let _ = block.expose_provenance();
        block
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: as for this function.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static A: TurboWish<Exposing> = TurboWish::new(Exposing).heap_walk().sample_interval(0);

/// Threads per phase; each would keep up to 128 entries if leaked.
const THREADS: usize = 400;

/// Far above what recycling needs (a few chunks per thread alive at once),
/// far below `THREADS * 128`.
const BOUND: u32 = 8192;

/// The registry index of a block (0: not registered).
fn index_of(block: &u64) -> u32 {
    let flags_at = block as *const u64 as usize - 4;
    // SAFETY: every block of the global TurboWish allocator (align <= 8)
    // is preceded by its 8-byte header, whose second half is `flags`,
    // inside the inner block, whose provenance `Exposing` exposed.
    let flags = unsafe { std::ptr::with_exposed_provenance::<u32>(flags_at).read() };
    flags & !(1 << 31)
}

/// Highest index of fresh blocks allocated after `THREADS` threads have
/// each done `work` with 128 boxes from this thread, and exited.
fn highest_index_after(work: fn(Vec<Box<u64>>)) -> u32 {
    for _ in 0..THREADS {
        let boxes: Vec<Box<u64>> = (0..128).map(Box::new).collect();
        std::thread::spawn(move || work(boxes)).join().unwrap();
    }
    let fresh: Vec<Box<u64>> = (0..128).map(Box::new).collect();
    let highest = fresh.iter().map(|b| index_of(b)).max().unwrap();
    assert!(highest != 0, "blocks are registered");
    highest
}

#[test]
fn threads_without_a_shard_give_their_entries_back() {
    // Only frees: this thread's entries go to the spawned thread's lists.
    let highest = highest_index_after(drop);
    assert!(
        highest < BOUND,
        "free-only threads leaked entries: index {highest}"
    );

    // With tagging off no thread claims a shard for its counters.
    turbowish_alloc::set_enabled(false);
    let highest = highest_index_after(|boxes| {
        let own: Vec<Box<u64>> = (0..128).map(Box::new).collect();
        drop(boxes);
        drop(own);
    });
    turbowish_alloc::set_enabled(true);
    assert!(
        highest < BOUND,
        "untagged threads leaked entries: index {highest}"
    );
}
