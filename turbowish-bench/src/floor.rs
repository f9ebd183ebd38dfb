//! Knock-out allocators for the service: each does one more of the things
//! TurboWish's allocator must do, and nothing else, so that the service's
//! ratio to `System` splits into what the job costs and what TurboWish adds.
//!
//! - [`Passthrough`]: forwards every call to `System`. The cost of being a
//!   wrapping `#[global_allocator]` at all (the `__rust_alloc` shim, the
//!   inlined call).
//! - [`Header`]: a prefix header (8 bytes, more when the alignment needs
//!   it) written on every allocation and read on every free. The cost of
//!   the layout alone: bigger blocks (a 24-byte request becomes a 32-byte
//!   one, the next glibc size class), and the free's read of the word
//!   before the block.
//! - [`HeaderCounter`]: [`Header`], plus `tokio::task::try_id()` on every
//!   allocation (how plain `tokio::spawn` tasks are told apart) and a
//!   thread-local live-bytes counter on both paths. The least a per-task
//!   header design does for `tokio::spawn` tasks; no record, no batch
//!   switch, no totals, no sampling.
//!
//! All three are usable allocators (alignments above 8 are honoured by a
//! longer prefix), but [`HeaderCounter`]'s counter is never read: they
//! exist to be timed.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

/// Forwards to `System`; see the module doc.
#[derive(Debug)]
pub struct Passthrough;

// SAFETY: forwards every call to `System` unchanged.
unsafe impl GlobalAlloc for Passthrough {
    #[inline(always)]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: guaranteed by this function's caller.
        unsafe { System.alloc(layout) }
    }

    #[inline(always)]
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: guaranteed by this function's caller.
        unsafe { System.dealloc(ptr, layout) }
    }
}

/// A prefix header and nothing else; see the module doc.
#[derive(Debug)]
pub struct Header;

// SAFETY: see `prefixed_alloc` and `prefixed_dealloc`.
unsafe impl GlobalAlloc for Header {
    #[inline(always)]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: guaranteed by this function's caller.
        unsafe { prefixed_alloc(layout, 1) }
    }

    #[inline(always)]
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: guaranteed by this function's caller.
        unsafe { prefixed_dealloc(ptr, layout) };
    }
}

thread_local! {
    /// [`HeaderCounter`]'s live bytes on this thread (frees from other
    /// threads' blocks included, so it may go negative).
    static LIVE: Cell<i64> = const { Cell::new(0) };
}

/// [`Header`] plus `try_id()` and a thread-local counter; see the module
/// doc.
#[derive(Debug)]
pub struct HeaderCounter;

// SAFETY: see `prefixed_alloc` and `prefixed_dealloc`.
unsafe impl GlobalAlloc for HeaderCounter {
    #[inline(always)]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // The low 32 bits of the task's number stand in for a tag.
        let tag = tokio::task::try_id().map_or(0, turbowish::alloc::tokio_task_number);
        LIVE.with(|live| live.set(live.get() + layout.size() as i64));
        // SAFETY: guaranteed by this function's caller.
        unsafe { prefixed_alloc(layout, tag) }
    }

    #[inline(always)]
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: guaranteed by this function's caller.
        let tag = unsafe { prefixed_dealloc(ptr, layout) };
        // Use the tag as a record index would be used: it decides the
        // counter (here, whether to count at all).
        if tag != u64::MAX {
            LIVE.with(|live| live.set(live.get() - layout.size() as i64));
        }
    }
}

/// The prefix for `layout`: 8 bytes, or the alignment if it is bigger, so
/// that the user pointer keeps the caller's alignment.
#[inline(always)]
fn prefix(layout: Layout) -> usize {
    layout.align().max(8)
}

/// Allocates `layout` behind a prefix and writes `tag` in the prefix's last
/// word; null if the grown layout is invalid or `System` fails.
///
/// # Safety
///
/// As for [`GlobalAlloc::alloc`]: `layout` has a non-zero size.
#[inline(always)]
unsafe fn prefixed_alloc(layout: Layout, tag: u64) -> *mut u8 {
    let prefix = prefix(layout);
    let Some(inner) = layout
        .size()
        .checked_add(prefix)
        .and_then(|size| Layout::from_size_align(size, prefix).ok())
    else {
        return core::ptr::null_mut();
    };
    // SAFETY: `inner` has a non-zero size (it includes the prefix).
    let block = unsafe { System.alloc(inner) };
    if block.is_null() {
        return block;
    }
    // SAFETY: `block` has `prefix + size` bytes, so the user pointer at
    // `prefix` is in it and the word before it is the prefix's last, which
    // is 8-aligned because `prefix` is a multiple of 8 and `block` is
    // `prefix`-aligned.
    unsafe {
        let user = block.add(prefix);
        user.cast::<u64>().sub(1).write(tag);
        user
    }
}

/// Reads the tag [`prefixed_alloc`] wrote and frees the block.
///
/// # Safety
///
/// `ptr` came from [`prefixed_alloc`] with this `layout`, and is not used
/// again.
#[inline(always)]
unsafe fn prefixed_dealloc(ptr: *mut u8, layout: Layout) -> u64 {
    let prefix = prefix(layout);
    // SAFETY: the caller passes a block of `prefixed_alloc` with its
    // layout: the prefix is before `ptr`, its last word holds the tag, and
    // the inner block starts `prefix` bytes before `ptr` with the layout
    // `prefixed_alloc` validated.
    unsafe {
        // Volatile: the read is the point (TurboWish's free must read the
        // header), and nothing else uses its value.
        let tag = ptr.cast::<u64>().sub(1).read_volatile();
        let inner = Layout::from_size_align_unchecked(layout.size() + prefix, prefix);
        System.dealloc(ptr.sub(prefix), inner);
        tag
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every knock-out hands out blocks with the caller's alignment that
    /// hold their bytes, for alignments from 1 to a page, and frees them.
    #[test]
    fn blocks_keep_their_alignment_and_contents() {
        let allocators: [&dyn GlobalAlloc; 3] = [&Passthrough, &Header, &HeaderCounter];
        for allocator in allocators {
            for align in [1, 8, 16, 64, 128, 4096] {
                for size in [1, 24, 100, 5000] {
                    let layout = Layout::from_size_align(size, align).unwrap();
                    // SAFETY: `layout` has a non-zero size; the block is
                    // written within its size and freed once with it.
                    unsafe {
                        let block = allocator.alloc(layout);
                        assert!(!block.is_null());
                        assert_eq!(block as usize % align, 0, "{size} B at {align}");
                        block.write_bytes(0xA5, size);
                        assert_eq!(*block.add(size - 1), 0xA5);
                        allocator.dealloc(block, layout);
                    }
                }
            }
        }
    }

    /// The header holds the tag it was given, in the word before the block.
    #[test]
    fn the_header_holds_the_tag() {
        let layout = Layout::from_size_align(24, 8).unwrap();
        // SAFETY: as above; the word before the block is the prefix's last,
        // written by `prefixed_alloc`.
        unsafe {
            let block = prefixed_alloc(layout, 0x5eed);
            assert_eq!(block.cast::<u64>().sub(1).read(), 0x5eed);
            assert_eq!(prefixed_dealloc(block, layout), 0x5eed);
        }
    }

    /// A layout whose grown size would overflow gets a null, not a panic.
    #[test]
    fn an_impossible_layout_gets_null() {
        let layout = Layout::from_size_align(isize::MAX as usize - 7, 8).unwrap();
        // SAFETY: a non-zero size; nothing is allocated.
        assert!(unsafe { Header.alloc(layout) }.is_null());
    }
}
