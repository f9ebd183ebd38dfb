//! The prefix header: where it sits, how big the inner block is, and the tag
//! it stores. All pointer arithmetic on blocks lives here so it can be read,
//! and checked, in one place.
//!
//! ```text
//!  inner block (from A)                       user block (what the caller sees)
//!  |<------------- prefix ------------->|<------------ layout.size() ------------>|
//!  [ padding (align - 8 bytes, if any) ][ Header: one u64 word ][ user bytes ... ]
//!                                        ^ user - 8                    ^ user
//! ```
//!
//! The prefix is `max(8, align)`: a multiple of the alignment, so the user
//! pointer keeps the inner block's alignment, and never less than the 8-byte
//! header. The header word holds the tag in its low 32 bits and the flags
//! in its high 32 bits. It depends only on the layout, so `dealloc` and `realloc` recompute
//! it from the layout they are given and need no offset stored in the block.
//!
//! An 8-byte header (rather than 16) matters for speed: glibc's malloc has 8
//! spare bytes in every chunk, so 16, 64, 256 and 4096-byte requests stay in
//! their size class with the header added.

use core::alloc::Layout;
use core::mem::size_of;
use core::sync::atomic::{AtomicU64, Ordering};

/// What TurboWish stores in front of every block it hands out.
#[repr(C, align(8))]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Header {
    /// The slot index of the allocating task's record (see `record`).
    pub(crate) tag: u32,
    /// Per-block flags: [`SAMPLED`].
    pub(crate) flags: u32,
}

/// `Header::flags` bit of a block that has an entry in the sample table.
pub(crate) const SAMPLED: u32 = 1 << 31;

/// Size of [`Header`]; also the smallest prefix.
pub(crate) const HEADER_SIZE: usize = size_of::<Header>();

/// Bytes placed in front of a user block of alignment `align`.
#[inline(always)]
pub(crate) const fn prefix(align: usize) -> usize {
    if align > HEADER_SIZE {
        align
    } else {
        HEADER_SIZE
    }
}

/// The layout TurboWish asks the inner allocator for, or `None` when the
/// grown size does not fit a `Layout` (the caller then returns null, as an
/// allocator that is out of memory does).
#[inline(always)]
pub(crate) fn inner_layout(user: Layout) -> Option<Layout> {
    // The inner block must hold the 8-aligned header, so its alignment is at
    // least 8 even when the user asked for less.
    let align = user.align().max(HEADER_SIZE);
    // `Layout` guarantees `user.size() <= isize::MAX - (user.align() - 1)`,
    // so this addition cannot wrap a `usize`; the one comparison below is
    // the whole of `Layout`'s rule for the grown size (rounded up to `align`,
    // it must not exceed `isize::MAX`). Spelled out rather than calling
    // `Layout::from_size_align` because this runs on every allocation.
    let size = user.size() + prefix(user.align());
    if size > isize::MAX as usize - (align - 1) {
        return None;
    }
    // SAFETY: `align` is a power of two (the larger of two powers of two)
    // and `size` satisfies the bound checked just above.
    Some(unsafe { Layout::from_size_align_unchecked(size, align) })
}

/// The inner layout of a user block that was already allocated with
/// `user`, which `inner_layout` therefore accepted.
///
/// # Safety
///
/// `inner_layout(user)` must have returned `Some` (true for every layout a
/// block of ours was allocated with, and for a `realloc`'s new size once
/// checked with `inner_layout`).
#[inline(always)]
pub(crate) unsafe fn inner_layout_unchecked(user: Layout) -> Layout {
    let align = user.align().max(HEADER_SIZE);
    debug_assert!(inner_layout(user).is_some());
    // SAFETY: the caller guarantees `inner_layout(user)` succeeded, which
    // checked exactly this size (no overflow) and alignment (a power of two).
    unsafe { Layout::from_size_align_unchecked(user.size() + prefix(user.align()), align) }
}

/// The user pointer for an inner block of a layout with alignment `align`.
///
/// # Safety
///
/// `inner` must point to a live inner block allocated with a layout from
/// `inner_layout` for the same alignment.
#[inline(always)]
pub(crate) unsafe fn user_from_inner(inner: *mut u8, align: usize) -> *mut u8 {
    // SAFETY: the inner block is at least `prefix(align)` bytes long, so the
    // result stays inside it (or one past its end for a zero-sized request).
    unsafe { inner.add(prefix(align)) }
}

/// The user pointer a caller hands back to `dealloc` or `realloc`, made
/// opaque to the optimiser before TurboWish steps back to its header.
///
/// Callers get their pointer from `__rust_alloc`, which LLVM knows as an
/// allocation function: a fresh object *starting* at that pointer. Where
/// LLVM also inlines our `dealloc` into the caller, it sees a load from
/// `ptr - 8`, out of that object's bounds, concludes the path is undefined
/// behaviour and may delete it (seen: a release test compiled to an endless
/// `jmp .`). Passing the pointer through an empty `asm!` block hides where
/// it came from, at the cost of no instruction.
#[inline(always)]
pub(crate) fn launder(user: *mut u8) -> *mut u8 {
    #[cfg(any(
        target_arch = "x86_64",
        target_arch = "aarch64",
        target_arch = "x86",
        target_arch = "arm",
        target_arch = "riscv64"
    ))]
    {
        let mut ptr = user;
        // SAFETY: the block is empty: it reads and writes nothing and only
        // claims that `ptr` may have changed, which keeps the value as is.
        unsafe {
            core::arch::asm!("/* {0} */", inout(reg) ptr, options(nostack, preserves_flags));
        }
        ptr
    }
    #[cfg(not(any(
        target_arch = "x86_64",
        target_arch = "aarch64",
        target_arch = "x86",
        target_arch = "arm",
        target_arch = "riscv64"
    )))]
    {
        core::hint::black_box(user)
    }
}

/// The inner block's start for a user pointer of alignment `align`.
///
/// # Safety
///
/// `user` must have come from `user_from_inner` with the same alignment.
#[inline(always)]
pub(crate) unsafe fn inner_from_user(user: *mut u8, align: usize) -> *mut u8 {
    // SAFETY: `user` is `prefix(align)` bytes past the start of its inner
    // block, so stepping back stays inside that block.
    unsafe { user.sub(prefix(align)) }
}

/// Writes the header in front of `user`.
///
/// # Safety
///
/// `user` must be a user pointer of a live block of ours; its header bytes
/// (the 8 bytes before it) are owned by TurboWish.
///
/// The header is written, and read, as one 8-byte word. Written as two
/// 4-byte fields (which the compiler does once `flags` is computed at run
/// time, as sampling made it), the free's 8-byte load of it cannot be
/// forwarded from the two pending stores and stalls: a 16-byte alloc+free
/// pair lost about 2 ns with no more instructions executed.
#[inline(always)]
pub(crate) unsafe fn write(user: *mut u8, header: Header) {
    debug_assert!((user as usize).is_multiple_of(HEADER_SIZE));
    let word = u64::from(header.tag) | u64::from(header.flags) << 32;
    // SAFETY: the prefix is at least HEADER_SIZE bytes and a multiple of 8,
    // and the inner block is at least 8-aligned, so `user - 8` is an aligned,
    // writable 8-byte slot inside the inner block.
    unsafe { user.sub(HEADER_SIZE).cast::<u64>().write(word) }
}

/// Reads the header in front of `user`.
///
/// # Safety
///
/// As for [`write()`], and the header must have been written.
#[inline(always)]
pub(crate) unsafe fn read(user: *const u8) -> Header {
    debug_assert!((user as usize).is_multiple_of(HEADER_SIZE));
    // SAFETY: see `write`; the header was written when the block was handed out.
    let word = unsafe { user.sub(HEADER_SIZE).cast::<u64>().read() };
    Header {
        tag: word as u32,
        flags: (word >> 32) as u32,
    }
}

/// The header in front of `user` as one atomic word: for the accesses that
/// may meet another thread's, a heap view's readers and a deferred free's
/// link (see `registry::defer`), which would otherwise race.
///
/// # Safety
///
/// As for [`read()`]; while the reference is used, every access to the
/// header that is not ordered with this one (happens-before) is atomic.
#[inline(always)]
pub(crate) unsafe fn shared<'a>(user: *const u8) -> &'a AtomicU64 {
    debug_assert!((user as usize).is_multiple_of(HEADER_SIZE));
    // SAFETY: see `write` for the slot (aligned, inside the inner block);
    // the caller keeps unordered accesses to it atomic.
    unsafe { AtomicU64::from_ptr(user.sub(HEADER_SIZE).cast::<u64>().cast_mut()) }
}

/// [`read()`] with one atomic load (see [`shared`]).
///
/// # Safety
///
/// As for [`shared`].
#[inline(always)]
pub(crate) unsafe fn read_shared(user: *const u8) -> Header {
    // SAFETY: guaranteed by the caller.
    let word = unsafe { shared(user) }.load(Ordering::Relaxed);
    Header {
        tag: word as u32,
        flags: (word >> 32) as u32,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_keeps_alignment_and_fits_header() {
        for shift in 0..=16 {
            let align = 1usize << shift;
            let p = prefix(align);
            assert!(p >= HEADER_SIZE);
            assert_eq!(p % align, 0, "align {align}");
            assert!(p <= align.max(HEADER_SIZE));
        }
        assert_eq!(prefix(16), 16, "16 bytes at most for alignment <= 16");
    }

    #[test]
    fn oversized_layouts_are_refused_not_wrapped() {
        let huge = Layout::from_size_align(isize::MAX as usize - 3, 1).unwrap();
        assert!(inner_layout(huge).is_none());
        let ok = Layout::from_size_align(100, 4096).unwrap();
        let inner = inner_layout(ok).unwrap();
        assert_eq!(inner.size(), 4196);
        assert_eq!(inner.align(), 4096);
    }
}
