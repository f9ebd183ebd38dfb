//! TurboWish over an inner allocator that fails.
//!
//! The global allocator is `TurboWish::new(FailingAlloc)`, where
//! `FailingAlloc` wraps `System` but returns null for requests of 1 TiB and
//! more, and for every request made on a thread that has set its `FAIL_HERE`
//! flag. Checks, on a `TaskTag` row of each test's own, that:
//!
//! * `Vec::try_reserve` of a huge size returns `Err`, on a fresh vector (an
//!   `alloc`) and on one that holds data (a `realloc`, which must leave the
//!   old block, its contents and its counts untouched), and moves no
//!   counter; the program keeps allocating afterwards;
//! * `alloc`, `alloc_zeroed` and `realloc` that the inner allocator refuses
//!   return null and move no counter;
//! * a layout whose size plus TurboWish's header would exceed `isize::MAX`
//!   (`isize::MAX - 4`, align 1) makes `alloc`, `alloc_zeroed` and `realloc`
//!   return null without panicking and without reaching the inner allocator.
//!
//! Tests are serialised with a mutex.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicUsize, Ordering};

use turbowish_alloc::{context, Counters, TaskTag, TurboWish};

mod common;
use common::{row, serial};

/// Requests of this many bytes or more are refused.
const HUGE: usize = 1 << 40;

/// `System`, refusing huge requests and every request on a flagged thread.
struct FailingAlloc;

thread_local! {
    static FAIL_HERE: Cell<bool> = const { Cell::new(false) };
}

/// How many requests `FailingAlloc` refused, and how many it was handed that
/// were larger than `isize::MAX / 2` (none should get past TurboWish's
/// overflow check).
static REFUSED: AtomicUsize = AtomicUsize::new(0);
static ABSURD_SEEN: AtomicUsize = AtomicUsize::new(0);

impl FailingAlloc {
    fn refuse(size: usize) -> bool {
        if size > isize::MAX as usize / 2 {
            ABSURD_SEEN.fetch_add(1, Ordering::SeqCst);
        }
        let refuse = size >= HUGE || FAIL_HERE.try_with(Cell::get).unwrap_or(false);
        if refuse {
            REFUSED.fetch_add(1, Ordering::SeqCst);
        }
        refuse
    }
}

// SAFETY: every method either returns null (a valid "out of memory" answer)
// or forwards to `System` with the caller's arguments unchanged.
unsafe impl GlobalAlloc for FailingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if Self::refuse(layout.size()) {
            return std::ptr::null_mut();
        }
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if Self::refuse(layout.size()) {
            return std::ptr::null_mut();
        }
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: every block handed out came from `System`.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if Self::refuse(new_size) {
            return std::ptr::null_mut();
        }
        // SAFETY: forwarded with the caller's guarantees; the block came
        // from `System`.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static A: TurboWish<FailingAlloc> = TurboWish::new(FailingAlloc);

/// Makes every request on this thread fail while alive.
struct FailHere;

impl FailHere {
    fn new() -> FailHere {
        FAIL_HERE.with(|f| f.set(true));
        FailHere
    }
}

impl Drop for FailHere {
    fn drop(&mut self) {
        FAIL_HERE.with(|f| f.set(false));
    }
}

#[test]
fn try_reserve_fails_cleanly() {
    let _serial = serial();
    let tag = TaskTag::new();
    let _entered = context::enter(&tag);
    let refused_before = REFUSED.load(Ordering::SeqCst);

    // A fresh vector: `alloc` fails.
    let mut empty: Vec<u8> = Vec::new();
    assert!(empty.try_reserve(HUGE).is_err());
    assert_eq!(empty.capacity(), 0);
    assert_eq!(row(&tag), Counters::default(), "a failed alloc was counted");

    // A vector with data: `realloc` fails, the old block stays as it was.
    let mut data: Vec<u8> = Vec::with_capacity(100);
    data.extend(0..100);
    let before = row(&tag);
    assert_eq!(
        (before.live_bytes, before.live_blocks, before.total_blocks),
        (100, 1, 1)
    );
    assert!(data.try_reserve_exact(HUGE).is_err());
    assert_eq!(data.capacity(), 100);
    assert!(data.iter().copied().eq(0..100));
    assert_eq!(row(&tag), before, "a failed realloc moved counters");
    assert_eq!(REFUSED.load(Ordering::SeqCst), refused_before + 2);

    // The program keeps working.
    data.extend(100..=255);
    assert!(data.iter().copied().eq(0..=255));
    let c = row(&tag);
    assert_eq!((c.live_bytes, c.live_blocks), (data.capacity() as u64, 1));
    drop(data);
    let more: Vec<Box<u64>> = (0..1000).map(Box::new).collect();
    assert_eq!(row(&tag).live_blocks, 1001);
    drop(more);
    assert_eq!(row(&tag).live_blocks, 0);
}

#[test]
fn refused_requests_move_no_counter() {
    let _serial = serial();
    let tag = TaskTag::new();
    let _entered = context::enter(&tag);
    let layout = Layout::from_size_align(64, 8).unwrap();
    let aligned = Layout::from_size_align(64, 4096).unwrap();

    // SAFETY: non-zero size.
    let kept = unsafe { A.alloc(layout) };
    assert!(!kept.is_null());
    // SAFETY: fresh block of 64 bytes.
    unsafe { kept.write_bytes(0x77, 64) };
    let before = row(&tag);
    assert_eq!(
        (before.live_bytes, before.live_blocks, before.total_blocks),
        (64, 1, 1)
    );

    {
        let _fail = FailHere::new();
        for l in [layout, aligned] {
            // SAFETY: non-zero sizes.
            unsafe {
                assert!(A.alloc(l).is_null(), "{l:?}");
                assert!(A.alloc_zeroed(l).is_null(), "{l:?}");
            }
        }
        // SAFETY: `kept` is a live block of `layout`; 1000 is a valid size.
        let grown = unsafe { A.realloc(kept, layout, 1000) };
        assert!(grown.is_null());
        let mut small: Vec<u8> = Vec::new();
        assert!(small.try_reserve(10).is_err());
        // No allocation may happen while failing, so compare afterwards.
    }
    assert_eq!(row(&tag), before, "refused requests moved counters");
    // SAFETY: `kept` is still live (the failed realloc left it alone).
    let bytes = unsafe { std::slice::from_raw_parts(kept, 64) };
    assert!(bytes.iter().all(|&b| b == 0x77));

    // SAFETY: `kept` is a live block of `layout`.
    let grown = unsafe { A.realloc(kept, layout, 1000) };
    assert!(!grown.is_null());
    let c = row(&tag);
    assert_eq!((c.live_bytes, c.live_blocks, c.total_blocks), (1000, 1, 2));
    // SAFETY: live block of 1000 bytes, align 8.
    unsafe { A.dealloc(grown, Layout::from_size_align(1000, 8).unwrap()) };
    assert_eq!(row(&tag).live_blocks, 0);
}

#[test]
fn header_overflow_returns_null() {
    let _serial = serial();
    let tag = TaskTag::new();
    let _entered = context::enter(&tag);
    let absurd_before = ABSURD_SEEN.load(Ordering::SeqCst);

    // Valid layouts whose size plus the header exceeds `isize::MAX`.
    let overflowing = [
        Layout::from_size_align(isize::MAX as usize - 4, 1).unwrap(),
        Layout::from_size_align(isize::MAX as usize - 7, 8).unwrap(),
        Layout::from_size_align(isize::MAX as usize - 15, 16).unwrap(),
        Layout::from_size_align(isize::MAX as usize - 4095, 4096).unwrap(),
    ];
    for layout in overflowing {
        // SAFETY: non-zero sizes; a null answer is allowed.
        unsafe {
            assert!(A.alloc(layout).is_null(), "{layout:?}");
            assert!(A.alloc_zeroed(layout).is_null(), "{layout:?}");
        }
    }
    // The request never reached the inner allocator: TurboWish refused it.
    assert_eq!(ABSURD_SEEN.load(Ordering::SeqCst), absurd_before);

    // The same through `realloc` of a live block.
    let layout = Layout::from_size_align(32, 1).unwrap();
    // SAFETY: non-zero size.
    let p = unsafe { A.alloc(layout) };
    assert!(!p.is_null());
    // SAFETY: fresh block of 32 bytes.
    unsafe { p.write_bytes(0x42, 32) };
    // SAFETY: `p` is a live block of `layout`; the new size does not exceed
    // `isize::MAX` when rounded up to alignment 1.
    let q = unsafe { A.realloc(p, layout, isize::MAX as usize - 4) };
    assert!(q.is_null());
    assert_eq!(ABSURD_SEEN.load(Ordering::SeqCst), absurd_before);
    // SAFETY: `p` is still live after the failed realloc.
    let bytes = unsafe { std::slice::from_raw_parts(p, 32) };
    assert!(bytes.iter().all(|&b| b == 0x42));
    let c = row(&tag);
    assert_eq!(
        (c.live_bytes, c.live_blocks, c.total_bytes, c.total_blocks),
        (32, 1, 32, 1)
    );
    // SAFETY: live block of `layout`.
    unsafe { A.dealloc(p, layout) };
    assert_eq!(row(&tag).live_blocks, 0);

    // A layout just small enough for the header reaches the inner
    // allocator (which refuses it as huge) and still returns null.
    let largest = Layout::from_size_align(isize::MAX as usize - 8191, 4096).unwrap();
    // SAFETY: non-zero size.
    assert!(unsafe { A.alloc(largest) }.is_null());
    assert_eq!(ABSURD_SEEN.load(Ordering::SeqCst), absurd_before + 1);
    assert_eq!(row(&tag).total_blocks, 1);
}
