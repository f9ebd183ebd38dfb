//! The conservative scanner's one memory access (see the `walk` module
//! docs for why it is sound enough and what it can get wrong).

use std::mem::{align_of, size_of};

/// Calls `each` with every aligned machine word in `[start, start + len)`.
///
/// Each word is copied out with a volatile read: the compiler may not
/// assume anything about the value (it may be changing under a concurrent
/// writer, or be bytes no one initialised), and no reference to the memory
/// is ever formed.
///
/// # Safety
///
/// `[start, start + len)` must be allocated, readable memory for the length
/// of the call.
#[inline]
pub(crate) unsafe fn words(start: usize, len: usize, mut each: impl FnMut(usize)) {
    let Some(end) = start.checked_add(len) else {
        return;
    };
    let mut at = start.next_multiple_of(align_of::<usize>());
    while at + size_of::<usize>() <= end {
        // SAFETY: `at` is aligned and `[at, at + 8)` lies inside the range
        // the caller vouches for.
        let word = unsafe { std::ptr::read_volatile(at as *const usize) };
        each(word);
        at += size_of::<usize>();
    }
}
