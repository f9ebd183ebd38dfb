//! The glue from turbowish-alloc's heap view (heap-walk mode) to the
//! walker's [`BlockIndex`].

use super::index::BlockIndex;

/// Runs `f` over an index of the live heap, with frees deferred for its
/// length; `None` when the allocator keeps no live-block registry.
pub(super) fn with_index<R>(f: impl FnOnce(&BlockIndex) -> R) -> Option<R> {
    // The view's blocks are taken over, not copied: a walk of millions of
    // blocks holds them while it runs.
    let (blocks, pause) = turbowish_alloc::heap_view()?.into_parts();
    // SAFETY: the view lists live registered blocks, which never overlap,
    // and `pause` defers every free until it is dropped, after `f`
    // returns: the blocks stay allocated while the index is used.
    let index = unsafe { BlockIndex::of_view(blocks) };
    let result = f(&index);
    drop(index);
    drop(pause);
    Some(result)
}
