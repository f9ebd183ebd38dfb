//! The timed alloc+free loop every pair bench uses, and the fixed heap
//! layout it runs on.
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
use std::hint::black_box;
use std::time::{Duration, Instant};

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

/// Times `iters` alloc+free pairs of `layout` through the allocator
/// `instance` returns. Out of line, one copy per contender, so that every
/// contender's loop is compiled alike whatever surrounds it.
///
/// The allocator is reached through a closure that names its `static`, not
/// through a reference passed in: that is how the `#[global_allocator]`
/// shim (`__rust_alloc`) reaches it in a program, and it lets the compiler
/// see the allocator's `const` configuration. Through a reference, one
/// copy of the loop served every `TurboWish` static, and TurboWish's
/// configuration (sampling interval, heap-walk mode) was read and branched
/// on at run time in every pair, with heap-walk code in the loop of an
/// allocator that has it off: 0.7 ns of a 16-byte pair no program pays.
#[inline(never)]
pub(crate) fn time_pairs<A: GlobalAlloc + 'static>(
    instance: impl Fn() -> &'static A,
    layout: Layout,
    iters: u64,
) -> Duration {
    let start = Instant::now();
    for _ in 0..iters {
        let alloc = instance();
        // SAFETY: `layout` has a non-zero size; the block is freed with the
        // same allocator and layout.
        unsafe {
            let p = alloc.alloc(layout);
            black_box(p);
            alloc.dealloc(p, layout);
        }
    }
    start.elapsed()
}
