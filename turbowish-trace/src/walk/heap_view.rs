//! The glue from turbowish-alloc's heap view (heap-walk mode) to the
//! walker's [`BlockIndex`].

use super::index::{Block, BlockIndex};

/// Runs `f` over an index of the live heap, with frees deferred for its
/// length; `None` when the allocator keeps no live-block registry.
pub(super) fn with_index<R>(f: impl FnOnce(&BlockIndex) -> R) -> Option<R> {
    let view = turbowish_alloc::heap_view()?;
    let blocks = view
        .blocks()
        .iter()
        .map(|b| Block {
            start: b.start,
            size: b.size,
            owner: b.owner,
        })
        .collect();
    // SAFETY: the view lists live blocks and defers every free until it is
    // dropped, after `f` returns: the blocks stay allocated while the index
    // is used. Blocks of the view never overlap.
    let index = unsafe { BlockIndex::new(blocks) }.ok()?;
    let result = f(&index);
    drop(view);
    Some(result)
}
