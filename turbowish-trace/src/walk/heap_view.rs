//! Where [`super::walk`] gets its [`BlockIndex`] from.
//!
//! MERGE NOTE: turbowish-alloc on this branch has no heap view yet, so this
//! module reports "not in heap-walk mode" and `walk()` returns `None`. Once
//! turbowish-alloc has `heap_view()`, replace this file's body with the
//! adapter in `heap_view_adapter.rs` (same signature, a few lines), and
//! move `turbowish-trace/merge/heap_walk_mode.rs` (end-to-end tests of
//! `walk()`) into `tests/`. Both were checked against branch `alloc`.

use super::index::BlockIndex;

/// Runs `f` over an index of the live heap, with frees deferred for its
/// length; `None` when the allocator keeps no live-block registry.
pub(super) fn with_index<R>(f: impl FnOnce(&BlockIndex) -> R) -> Option<R> {
    let _ = f;
    None
}
