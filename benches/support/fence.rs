//! A fixed heap layout for alloc+free pair timings.
//!
//! A loop that allocates and frees one block of a size beyond glibc's
//! thread cache (4 KiB here) takes one of two paths, depending on what lies
//! after the block: if it borders the top of the heap, every free merges it
//! back into the top and every allocation splits it off again; if anything
//! lies after it, the freed block waits in a bin and comes straight back,
//! which is faster. Which one a contender got depended on what the previous
//! contender happened to leave behind (seen: TurboWish with sampling
//! "faster than System" at 4 KiB, because a sample grew the sample table
//! right after the block). So every contender is timed with a second block
//! of the same layout held after its first one, and all take the bin path.

use std::alloc::{GlobalAlloc, Layout};

/// Runs `time` with the heap arranged so that the block of `layout` that
/// `alloc` hands out next does not border the top of the heap.
pub(crate) fn fenced<A: GlobalAlloc, R>(alloc: &A, layout: Layout, time: impl FnOnce() -> R) -> R {
    // SAFETY: `layout` has a non-zero size; each block is freed once, with
    // the allocator that made it and its layout.
    unsafe {
        // A block that comes from the top has the fence allocated right
        // after it; one that comes from a bin never borders the top.
        let block = alloc.alloc(layout);
        let fence = alloc.alloc(layout);
        alloc.dealloc(block, layout);
        let result = time();
        alloc.dealloc(fence, layout);
        result
    }
}
