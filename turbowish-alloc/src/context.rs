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
pub fn enter(tag: &TaskTag) -> Entered<'_> {
    let (previous_slot, previous_key) = LOCAL.with(|local| {
        (
            local.context_slot.replace(tag.slot()),
            local.context_key.replace(tag.key()),
        )
    });
    Entered {
        previous_slot,
        previous_key,
        _tag: PhantomData,
    }
}

/// The tag set by the innermost live [`enter`] on this thread, if any.
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
    previous_slot: u32,
    previous_key: u64,
    _tag: PhantomData<(&'a TaskTag, *const ())>,
}

impl Drop for Entered<'_> {
    fn drop(&mut self) {
        // `try_with`: a guard may be dropped during thread teardown; the
        // thread-local has no destructor, so this always succeeds, but a
        // failure here must never panic inside a destructor.
        let _ = LOCAL.try_with(|local| {
            local.context_slot.set(self.previous_slot);
            local.context_key.set(self.previous_key);
        });
    }
}
