//! The task context: which task the current thread's allocations belong to.
//!
//! A task's poll (TurboWish's `Traced` wrapper, or any executor's own code)
//! brackets itself with [`enter`]. Outside any `enter`, and with the `tokio`
//! feature on, `tokio::task::try_id()` names the running tokio task, so tasks
//! spawned by libraries are attributed too. Outside both, allocations go to
//! the `untracked` bucket (`main`, plain threads, before `main`, thread exit).
//!
//! The context is a const-initialised thread-local, so entering costs two
//! thread-local stores and never allocates.

use core::marker::PhantomData;

use crate::record::TaskTag;
use crate::shard::LOCAL;

/// Charges this thread's allocations to `tag` until the returned guard is
/// dropped, which restores the previous context (so `enter` nests).
///
/// Works with any executor: call it around each poll of a task's future.
///
/// ```
/// use turbowish_alloc::{context, TaskTag};
///
/// let outer = TaskTag::new();
/// let inner = TaskTag::new();
/// let _a = context::enter(&outer);
/// {
///     let _b = context::enter(&inner);
///     assert_eq!(context::current(), Some(inner.tag()));
/// }
/// assert_eq!(context::current(), Some(outer.tag()));
/// ```
// `#[inline]` here and on `swap`, `restore` and the guard's `drop`: every
// poll of a traced task calls them from another crate, where they stayed
// calls (about 12 instructions a poll, and the call itself).
#[inline]
pub fn enter(tag: &TaskTag) -> Entered<'_> {
    Entered {
        saved: swap(Some(tag)),
        _tag: PhantomData,
    }
}

/// The tag set by the innermost live [`enter`] (or [`swap`]) on this thread,
/// if any. Inside [`crate::internal`] it is the `internal` bucket's tag.
pub fn current() -> Option<crate::Tag> {
    LOCAL.with(|local| (local.context_key.get() != 0).then(|| crate::Tag(local.context_slot.get())))
}

/// Guard returned by [`enter`]; restores the previous context on drop.
///
/// It borrows the [`TaskTag`], so the tag's record stays pinned for as long
/// as allocations can be charged to it. It is `!Send`: a context belongs to
/// the thread that entered it.
#[must_use = "the context ends when this guard is dropped"]
#[derive(Debug)]
pub struct Entered<'a> {
    saved: Saved,
    _tag: PhantomData<(&'a TaskTag, *const ())>,
}

impl Drop for Entered<'_> {
    #[inline]
    fn drop(&mut self) {
        restore(self.saved);
    }
}

/// A context saved by [`swap`], to hand back to [`restore`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Saved {
    slot: u32,
    key: u64,
}

/// Sets this thread's context to `tag` (or to none) without a guard and
/// returns the previous one; [`restore`] puts it back.
///
/// For executors whose enter and exit points are separate callbacks, such
/// as tokio's `on_before_task_poll` / `on_after_task_poll` hooks; prefer
/// [`enter`] elsewhere. The caller must keep `tag` alive until the matching
/// `restore`: switching to a context trusts that its tag pins its record.
/// If it does not, allocations are charged to whatever record then holds
/// the tag's slot, an unused one or another task's, whose counts go wrong
/// (even below zero) from then on: never unsound, but misattributed. The
/// same holds for an [`Entered`] guard leaked with `mem::forget`, or guards
/// dropped out of order.
///
/// ```
/// use turbowish_alloc::{context, TaskTag};
///
/// let tag = TaskTag::new();
/// let saved = context::swap(Some(&tag));
/// assert_eq!(context::current(), Some(tag.tag()));
/// context::restore(saved);
/// assert_eq!(context::current(), None);
/// ```
#[inline]
pub fn swap(tag: Option<&TaskTag>) -> Saved {
    let (slot, key) = tag.map_or((0, 0), |t| (t.slot(), t.key()));
    LOCAL.with(|local| Saved {
        slot: local.context_slot.replace(slot),
        key: local.context_key.replace(key),
    })
}

/// Restores a context saved by [`swap`].
#[inline]
pub fn restore(saved: Saved) {
    let _ = LOCAL.try_with(|local| {
        local.context_slot.set(saved.slot);
        local.context_key.set(saved.key);
    });
}
