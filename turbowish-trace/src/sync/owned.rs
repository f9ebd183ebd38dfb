//! Owned guards over borrowed ones: a guard kept beside the `Arc` that owns
//! what it borrows, so it can move into another task, as tokio's
//! `lock_owned` guards do. Wrapping our own resource in the `Arc` (rather
//! than tokio's lock in a second `Arc`) keeps the wrappers' `into_inner` and
//! `get_mut` infallible, like tokio's.

use std::mem::ManuallyDrop;
use std::ops::{Deref, DerefMut};
use std::sync::Arc;

/// `guard`, which borrows from `*owner`, kept alive with it.
#[derive(Debug)]
pub(crate) struct Owned<O, G> {
    /// Dropped by hand, before `owner`.
    guard: ManuallyDrop<G>,
    owner: Arc<O>,
}

impl<O, G> Owned<O, G> {
    /// # Safety
    ///
    /// `guard` may borrow (under an erased `'static` lifetime, see
    /// [`erase`]) from nothing but `*owner`.
    pub(crate) unsafe fn new(owner: Arc<O>, guard: G) -> Owned<O, G> {
        Owned {
            guard: ManuallyDrop::new(guard),
            owner,
        }
    }

    pub(crate) fn owner(&self) -> &Arc<O> {
        &self.owner
    }
}

impl<O, G> Deref for Owned<O, G> {
    type Target = G;
    fn deref(&self) -> &G {
        &self.guard
    }
}

impl<O, G> DerefMut for Owned<O, G> {
    fn deref_mut(&mut self) -> &mut G {
        &mut self.guard
    }
}

impl<O, G> Drop for Owned<O, G> {
    fn drop(&mut self) {
        // SAFETY: dropped once, here, while `self.owner` (dropped after
        // this body) still keeps alive what the guard borrows.
        unsafe { ManuallyDrop::drop(&mut self.guard) };
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
