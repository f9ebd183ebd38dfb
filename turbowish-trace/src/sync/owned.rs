//! Owned guards over borrowed ones: a guard kept beside the `Arc` that owns
//! what it borrows, so it can move into another task, as tokio's
//! `lock_owned` guards do. Wrapping our own resource in the `Arc` (rather
//! than tokio's lock in a second `Arc`) keeps the wrappers' `into_inner` and
//! `get_mut` infallible, like tokio's.

use std::mem::ManuallyDrop;
use std::ops::{Deref, DerefMut};
use std::panic::Location;
use std::sync::Arc;

use super::resource::Mark;
use super::Access;
use crate::resource::{Hold, Resource};

/// A resource whose owned guards are recorded: its [`Resource`].
pub(crate) trait Recorded {
    fn resource(&self) -> &Resource;
}

/// `guard`, which borrows from `*owner`, kept alive with it, and recorded
/// as a movable holder of the resource from creation to drop. Every owned
/// guard type is this, plus its own `Deref` and accessors.
#[derive(Debug)]
pub(crate) struct Owned<O: Recorded, G> {
    /// Dropped by hand, after the hold and before `owner`.
    guard: ManuallyDrop<G>,
    /// The holder record, borrowed from `owner`'s resource (the `Arc` here
    /// keeps it alive): dropped by hand, first.
    hold: ManuallyDrop<Hold<'static>>,
    owner: Arc<O>,
    /// Lets the heap walker find the guard in a task's opaque state.
    _mark: Mark,
}

impl<O: Recorded, G> Owned<O, G> {
    /// Records the calling task as holding `owner` with `access`.
    ///
    /// # Safety
    ///
    /// `guard` may borrow (under an erased `'static` lifetime, see
    /// [`erase`]) from nothing but `*owner`.
    pub(crate) unsafe fn new(
        owner: Arc<O>,
        guard: G,
        location: &'static Location<'static>,
        access: Access,
    ) -> Owned<O, G> {
        let resource = owner.resource();
        resource.note_owner(&*owner);
        let (hold, mark) = resource.hold_movable(access, location);
        // SAFETY: the hold is dropped in `drop` below, before `owner`,
        // which keeps the resource it borrows alive.
        let hold = unsafe { hold.erase() };
        Owned {
            hold: ManuallyDrop::new(hold),
            _mark: mark,
            guard: ManuallyDrop::new(guard),
            owner,
        }
    }

    pub(crate) fn owner(&self) -> &Arc<O> {
        &self.owner
    }
}

impl<O: Recorded, G> Deref for Owned<O, G> {
    type Target = G;
    fn deref(&self) -> &G {
        &self.guard
    }
}

impl<O: Recorded, G> DerefMut for Owned<O, G> {
    fn deref_mut(&mut self) -> &mut G {
        &mut self.guard
    }
}

impl<O: Recorded, G> Drop for Owned<O, G> {
    fn drop(&mut self) {
        // SAFETY: each dropped once, here: the record first (as a borrowed
        // guard releases it), then the guard, while `self.owner` (dropped
        // after this body) still keeps alive what both borrow.
        unsafe {
            ManuallyDrop::drop(&mut self.hold);
            ManuallyDrop::drop(&mut self.guard);
        }
    }
}

/// `value` with its lifetime erased.
///
/// # Safety
///
/// The result must not be used after `value`'s owner is dropped: callers
/// borrow from the contents of an `Arc` they keep alive for every use (the
/// future that acquires, then the [`Owned`] that holds the guard).
pub(crate) unsafe fn erase<T: ?Sized>(value: &T) -> &'static T {
    let value: *const T = value;
    // SAFETY: guaranteed by the caller.
    unsafe { &*value }
}
