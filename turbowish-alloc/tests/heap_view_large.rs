//! Heap-walk mode with blocks of 4 GiB or more: listed with their size,
//! found from any byte (past a 4 GiB window boundary too), and freed while
//! a view lives (their deferred link is kept in their own first bytes).

mod common;

use std::alloc::{alloc, dealloc, Layout};

use common::{row, serial};
use turbowish_alloc::{context, heap_view, Owner, TaskTag, TurboWish};

#[global_allocator]
static A: TurboWish = TurboWish::system().heap_walk();

const GIB: usize = 1 << 30;

const MARK: usize = 0x5eed_0000_0000_0000;

#[test]
fn large_blocks_in_a_view_and_freed_during_one() {
    let _serial = serial();
    let tag = TaskTag::new();
    let sizes = [5 * GIB, u32::MAX as usize, 4 * GIB, 48, 4 * GIB + 8, 100];
    let mut blocks = Vec::with_capacity(sizes.len());
    {
        let _in_task = context::enter(&tag);
        for &size in &sizes {
            let layout = Layout::from_size_align(size, 8).unwrap();
            // SAFETY: non-zero size; freed below with the same layout.
            let ptr = unsafe { alloc(layout) };
            assert!(!ptr.is_null(), "{size} bytes of address space");
            blocks.push((ptr, layout));
        }
    }
    let before = row(&tag);
    let view = heap_view().expect("heap-walk mode");
    let owner = Owner::Task(tag.id());
    for &(ptr, layout) in &blocks {
        let start = ptr as usize;
        let size = layout.size();
        for addr in [start, start + size / 2, start + size - 1] {
            let found = view
                .find(addr)
                .unwrap_or_else(|| panic!("{addr:#x} in {size}"));
            assert_eq!((found.start, found.size, found.owner), (start, size, owner));
        }
        let i = view.index_of(start).unwrap();
        assert_eq!(view.compact().start(i), start);
        assert_eq!(view.compact().size(i), size);
        assert_eq!(view.compact().position(start), Some(i));
    }
    // Freed while the view lives: deferred, large and small interleaved.
    for (k, &(ptr, layout)) in blocks.iter().enumerate() {
        // (Volatile: a store just before a free is otherwise dead.)
        // SAFETY: a live block of at least 48 bytes, 8-aligned.
        unsafe { (ptr as *mut usize).write_volatile(MARK + k) };
        // SAFETY: allocated above with this layout.
        unsafe { dealloc(ptr, layout) };
    }
    // The view keeps the freed blocks readable, and a walker reads them
    // (as its scanner does, one volatile word at a time): deferring a
    // free must not write into the block's bytes.
    for (k, &(ptr, _)) in blocks.iter().enumerate() {
        // An address, as the walker has it (not the freed pointer).
        let at = std::hint::black_box(ptr as usize);
        // SAFETY: frees are deferred while the view lives: still allocated.
        let word = unsafe { std::ptr::read_volatile(at as *const usize) };
        assert_eq!(word, MARK + k, "block {k} of {} bytes", sizes[k]);
    }
    assert_eq!(row(&tag).live_bytes, before.live_bytes, "deferred");
    drop(view);
    assert_eq!(row(&tag).live_bytes, 0, "freed at the view's drop");
    assert_eq!(row(&tag).live_blocks, 0);
}
