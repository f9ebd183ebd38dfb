//! Lower bounds for any tagging allocator built like TurboWish: three
//! allocators that do only the part every design of its kind must do, so
//! the bench shows how much of TurboWish's cost is its own and how much is
//! the price of the job.
//!
//! - [`Floor`]: an 8-byte prefix header holding a tag read from a
//!   thread-local, and one thread-local live-bytes counter. No task lookup,
//!   no totals, no peak, no sampling, no switch: the least a per-task
//!   header design can do.
//! - [`FloorTokio`]: the same, plus what attributing tasks a library spawned
//!   with plain `tokio::spawn` takes: asking `tokio::task::try_id()` on
//!   every allocation made outside an entered context. The call cannot be
//!   inlined across crates (without LTO), and tokio gives no cheaper way to
//!   learn the running task.
//! - [`FloorRegistry`]: [`FloorTokio`] plus the least a live-block registry
//!   (heap-walk mode) can do: an entry (address, size, tag) in a
//!   thread-local array, taken from and given back to a thread-local free
//!   list, its index in the header. Lower than any real registry, which must
//!   also take frees from other threads and be readable by a walker.
//!
//! None is a usable allocator (the counter is never read, the tag never
//! resolved, alignments above 8 are refused with a null); they exist to be
//! timed. Their methods are `#[inline(always)]`, as TurboWish's are, so
//! that both are compiled into the timed loop alike.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::{Cell, UnsafeCell};
use std::hint::black_box;

thread_local! {
    /// The tag an entered context would set (never set here: 0).
    static TAG: Cell<u32> = const { Cell::new(0) };
    /// Live bytes of this thread's allocations.
    static LIVE: Cell<i64> = const { Cell::new(0) };
    /// [`FloorRegistry`]'s entries.
    static REGISTRY: UnsafeCell<Registry> = const { UnsafeCell::new(Registry::new()) };
}

/// Header + one thread-local counter; see the module doc.
#[derive(Debug)]
pub(crate) struct Floor;

/// [`Floor`] plus `tokio::task::try_id()` where no tag is set.
#[derive(Debug)]
pub(crate) struct FloorTokio;

// SAFETY: both forward to `System` with the size grown by an 8-byte prefix
// at alignment 8, refuse (null) a layout that alignment would not serve or
// whose grown size would overflow, return `System`'s null unchanged, and
// free with the same grown layout.
unsafe impl GlobalAlloc for Floor {
    #[inline(always)]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: guaranteed by this function's caller.
        unsafe { alloc_tagged(layout, TAG.with(Cell::get), |_| 0) }
    }

    #[inline(always)]
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: guaranteed by this function's caller.
        unsafe { dealloc_tagged(ptr, layout, |_| {}) }
    }
}

// SAFETY: as for `Floor`.
unsafe impl GlobalAlloc for FloorTokio {
    #[inline(always)]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: guaranteed by this function's caller.
        unsafe { alloc_tagged(layout, tokio_tag(), |_| 0) }
    }

    #[inline(always)]
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: guaranteed by this function's caller.
        unsafe { dealloc_tagged(ptr, layout, |_| {}) }
    }
}

/// [`FloorTokio`] plus a thread-local block registry; see the module doc.
#[derive(Debug)]
pub(crate) struct FloorRegistry;

// SAFETY: as for `Floor`; the registry is only touched by the thread that
// owns it (the bench frees every block on the thread that allocated it).
unsafe impl GlobalAlloc for FloorRegistry {
    #[inline(always)]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let register = |user: *mut u8| {
            REGISTRY.with(|registry| {
                // SAFETY: the cell is this thread's, and no reference to it
                // outlives this closure.
                let registry = unsafe { &mut *registry.get() };
                let index = registry.take();
                if index != 0 {
                    let entry = &mut registry.entries[index as usize];
                    entry.start = user as usize;
                    entry.size = layout.size();
                }
                index
            })
        };
        // SAFETY: guaranteed by this function's caller.
        unsafe { alloc_tagged(layout, tokio_tag(), register) }
    }

    #[inline(always)]
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        let unregister = |header: u64| {
            // `alloc` put the entry's index (or 0) in the header's high half.
            let index = (header >> 32) as u32;
            if index != 0 {
                REGISTRY.with(|registry| {
                    // SAFETY: as in `alloc`.
                    let registry = unsafe { &mut *registry.get() };
                    registry.entries[index as usize].start = 0;
                    registry.give(index);
                });
            }
        };
        // SAFETY: guaranteed by this function's caller.
        unsafe { dealloc_tagged(ptr, layout, unregister) }
    }
}

/// Registry entries: index 0 means "not registered".
const ENTRIES: usize = 1024;

/// [`FloorRegistry`]'s per-thread entries and free list.
struct Registry {
    /// Head of the free list (0: empty).
    free: u32,
    /// Entries never handed out start here.
    bump: u32,
    entries: [Entry; ENTRIES],
}

#[derive(Clone, Copy)]
struct Entry {
    start: usize,
    size: usize,
    /// The next free entry while this one is free.
    next: u32,
}

impl Registry {
    const fn new() -> Registry {
        Registry {
            free: 0,
            bump: 1,
            entries: [Entry {
                start: 0,
                size: 0,
                next: 0,
            }; ENTRIES],
        }
    }

    /// A free entry's index, or 0 when all are taken.
    #[inline(always)]
    fn take(&mut self) -> u32 {
        let head = self.free;
        if head != 0 {
            self.free = self.entries[head as usize].next;
            return head;
        }
        if (self.bump as usize) < ENTRIES {
            self.bump += 1;
            return self.bump - 1;
        }
        0
    }

    #[inline(always)]
    fn give(&mut self, index: u32) {
        self.entries[index as usize].next = self.free;
        self.free = index;
    }
}

/// The tag of the running tokio task, or 1 outside any.
#[inline(always)]
fn tokio_tag() -> u32 {
    let tag = TAG.with(Cell::get);
    if tag != 0 {
        return tag;
    }
    // Any mapping of the id to a tag would do; this one is cheap.
    tokio::task::try_id().map_or(1, |id| turbowish_alloc::tokio_task_number(id) as u32 | 2)
}

/// Allocates `layout` plus the header and writes `tag` into it, with what
/// `high` returns for the user pointer in the header's high half (written
/// as one word, as TurboWish does: a free's 8-byte read of a header
/// written in two halves waits for both stores, about 2 ns).
///
/// # Safety
///
/// As for `GlobalAlloc::alloc`.
#[inline(always)]
unsafe fn alloc_tagged(layout: Layout, tag: u32, high: impl FnOnce(*mut u8) -> u32) -> *mut u8 {
    if layout.align() > 8 || layout.size() > isize::MAX as usize - 15 {
        return core::ptr::null_mut();
    }
    // SAFETY: the grown size, rounded up to 8, stays below `isize::MAX`
    // (checked above), and 8 is a power of two.
    let inner = unsafe { Layout::from_size_align_unchecked(layout.size() + 8, 8) };
    // SAFETY: `inner` has a non-zero size.
    let block = unsafe { System.alloc(inner) };
    if block.is_null() {
        return block;
    }
    LIVE.with(|live| live.set(live.get() + layout.size() as i64));
    // SAFETY: `block` is at least 8 bytes long; the user part starts 8
    // bytes in.
    let user = unsafe { block.add(8) };
    let word = u64::from(tag) | u64::from(high(user)) << 32;
    // SAFETY: `block` is 8-aligned and its first 8 bytes are the header's.
    unsafe { block.cast::<u64>().write(word) };
    user
}

/// Reads the header of the block at `ptr`, hands it to `header` and frees
/// the block.
///
/// # Safety
///
/// `ptr` must come from `alloc_tagged` with the same `layout`.
#[inline(always)]
unsafe fn dealloc_tagged(ptr: *mut u8, layout: Layout, header: impl FnOnce(u64)) {
    // SAFETY: `ptr` is 8 bytes into its block (see `alloc_tagged`).
    let block = unsafe { ptr.sub(8) };
    // SAFETY: the header was written by `alloc_tagged`. Read once, through
    // `black_box` so that the read is timed, as a real free must read it.
    header(black_box(unsafe { block.cast::<u64>().read() }));
    LIVE.with(|live| live.set(live.get() - layout.size() as i64));
    // SAFETY: `block` was allocated by `System` with this grown layout.
    unsafe {
        System.dealloc(
            block,
            Layout::from_size_align_unchecked(layout.size() + 8, 8),
        )
    }
}
