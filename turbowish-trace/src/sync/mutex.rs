//! [`Mutex`]: `tokio::sync::Mutex` that records who holds it and who waits.

use std::borrow::Cow;
use std::fmt;
use std::future::Future;
use std::ops::{Deref, DerefMut};
use std::panic::Location;
use std::sync::Arc;

use super::acquire_recorded;
use super::owned::{erase, Owned, Recorded};
use super::resource::{Access, Class, ResourceKind};
use crate::resource::{Hold, Resource};

/// An async mutex with the API of `tokio::sync::Mutex`, whose holder and
/// waiters (task, frame path, location, since when) appear in
/// [`crate::sync::resources`]. Swap the import to use it.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use turbowish_trace::sync::Mutex;
///
/// let accounts = Mutex::new_named("accounts[1]", 100_u64);
/// *accounts.lock().await -= 30;
/// assert_eq!(*accounts.lock().await, 70);
/// # }
/// ```
pub struct Mutex<T> {
    /// Its record: a [`Resource`] of kind `Mutex`, exclusive.
    resource: Resource,
    inner: tokio::sync::Mutex<T>,
}

impl<T> Mutex<T> {
    /// A mutex named after the place it is created.
    #[track_caller]
    pub fn new(value: T) -> Mutex<T> {
        Mutex::with_name(None, value, Location::caller())
    }

    /// A mutex with a name for reports, such as `"accounts[1]"`.
    #[track_caller]
    pub fn new_named(name: impl Into<Cow<'static, str>>, value: T) -> Mutex<T> {
        Mutex::with_name(Some(name.into()), value, Location::caller())
    }

    fn with_name(
        name: Option<Cow<'static, str>>,
        value: T,
        location: &'static Location<'static>,
    ) -> Mutex<T> {
        Mutex {
            resource: Resource::declared(ResourceKind::Mutex, name, Class::Exclusive, location),
            inner: tokio::sync::Mutex::new(value),
        }
    }

    /// The name reports use.
    pub fn name(&self) -> Cow<'_, str> {
        self.resource.name()
    }

    /// Locks the mutex, waiting (recorded as a waiter) while another task
    /// holds it. Cancel-safe like tokio's: dropping the future removes the
    /// waiter record.
    #[track_caller]
    pub fn lock(&self) -> impl Future<Output = MutexGuard<'_, T>> + '_ {
        let location = Location::caller();
        async move {
            let guard = acquire_recorded(
                || {
                    self.resource
                        .wait_unchecked(Access::Exclusive, false, location)
                },
                &self.inner,
                |inner| inner.try_lock().ok(),
                |inner| inner.lock(),
            )
            .await;
            self.guard(guard, location)
        }
    }

    /// Locks the mutex without waiting.
    #[track_caller]
    pub fn try_lock(&self) -> Result<MutexGuard<'_, T>, tokio::sync::TryLockError> {
        let location = Location::caller();
        self.inner.try_lock().map(|g| self.guard(g, location))
    }

    /// Locks the mutex for an owned guard that can move into another task,
    /// as tokio's `lock_owned`. The record names the task that acquired it
    /// and marks it movable.
    #[track_caller]
    pub fn lock_owned(self: Arc<Self>) -> impl Future<Output = OwnedMutexGuard<T>> + 'static
    where
        T: 'static,
    {
        let location = Location::caller();
        async move {
            // SAFETY: this future owns `self`, and hands it to the guard.
            let inner = unsafe { erase(&self.inner) };
            let inner = acquire_recorded(
                || {
                    self.resource
                        .wait_unchecked(Access::Exclusive, true, location)
                },
                inner,
                |inner| inner.try_lock().ok(),
                |inner| inner.lock(),
            )
            .await;
            OwnedMutexGuard::new(self, inner, location)
        }
    }

    /// Locks the mutex for an owned guard without waiting.
    #[track_caller]
    pub fn try_lock_owned(self: Arc<Self>) -> Result<OwnedMutexGuard<T>, tokio::sync::TryLockError>
    where
        T: 'static,
    {
        let location = Location::caller();
        // SAFETY: `self` goes into the guard with the borrow.
        let inner = unsafe { erase(&self.inner) }.try_lock()?;
        Ok(OwnedMutexGuard::new(self, inner, location))
    }

    /// Locks the mutex from synchronous code (not from an async context:
    /// like tokio's, it panics there).
    #[track_caller]
    pub fn blocking_lock(&self) -> MutexGuard<'_, T> {
        let location = Location::caller();
        let guard = match self.inner.try_lock() {
            Ok(guard) => guard,
            Err(_) => {
                let _waiting = self
                    .resource
                    .wait_unchecked(Access::Exclusive, false, location);
                self.inner.blocking_lock()
            }
        };
        self.guard(guard, location)
    }

    /// The value, consuming the mutex.
    pub fn into_inner(self) -> T {
        self.inner.into_inner()
    }

    /// Mutable access without locking (the `&mut` proves exclusivity).
    pub fn get_mut(&mut self) -> &mut T {
        self.inner.get_mut()
    }

    fn guard<'a>(
        &'a self,
        inner: tokio::sync::MutexGuard<'a, T>,
        location: &'static Location<'static>,
    ) -> MutexGuard<'a, T> {
        self.resource.note_owner(self);
        MutexGuard {
            hold: self.resource.hold_unchecked(Access::Exclusive, location),
            inner,
        }
    }
}

impl<T: fmt::Debug> fmt::Debug for Mutex<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Mutex")
            .field("name", &self.resource.name())
            .field("inner", &self.inner)
            .finish()
    }
}

/// Guard of a [`Mutex`]; releasing it clears the holder record.
pub struct MutexGuard<'a, T> {
    /// The holder record: released first, then tokio's guard.
    hold: Hold<'a>,
    inner: tokio::sync::MutexGuard<'a, T>,
}

impl<T> Deref for MutexGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.inner
    }
}

impl<T> DerefMut for MutexGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        &mut self.inner
    }
}

impl<T: fmt::Debug> fmt::Debug for MutexGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.inner, f)
    }
}

/// Owned guard of a [`Mutex`] (see [`Mutex::lock_owned`]): it keeps the
/// mutex alive, and can move into another task.
pub struct OwnedMutexGuard<T: 'static> {
    inner: Owned<Mutex<T>, tokio::sync::MutexGuard<'static, T>>,
}

impl<T: 'static> OwnedMutexGuard<T> {
    fn new(
        mutex: Arc<Mutex<T>>,
        inner: tokio::sync::MutexGuard<'static, T>,
        location: &'static Location<'static>,
    ) -> OwnedMutexGuard<T> {
        OwnedMutexGuard {
            // SAFETY: `inner` locks `mutex.inner`.
            inner: unsafe { Owned::new(mutex, inner, location, Access::Exclusive) },
        }
    }

    /// The mutex this guard locks.
    pub fn mutex(this: &Self) -> &Arc<Mutex<T>> {
        this.inner.owner()
    }
}

impl<T> Recorded for Mutex<T> {
    fn resource(&self) -> &Resource {
        &self.resource
    }
}

impl<T> Deref for OwnedMutexGuard<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.inner
    }
}

impl<T> DerefMut for OwnedMutexGuard<T> {
    fn deref_mut(&mut self) -> &mut T {
        &mut self.inner
    }
}

impl<T: fmt::Debug> fmt::Debug for OwnedMutexGuard<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self.inner, f)
    }
}

/// The value is traced when the mutex is free (locked for the moment with
/// a non-waiting `try_lock` that records no holder); while a task holds it,
/// the block holding the value is scanned conservatively instead, since the
/// walker must never wait for the program's locks.
impl<T: crate::Trace> crate::Trace for Mutex<T> {
    fn trace(&self, tracer: &mut crate::Tracer<'_>) {
        // Whoever owns this lock (or an `Arc` to it) may lock it next.
        self.resource.trace_resource(tracer);
        match self.inner.try_lock() {
            Ok(value) => value.trace(tracer),
            Err(_) => tracer.conservative(&self.inner),
        }
    }
}

/// Reports the held resource: the walk names the task whose state holds
/// this guard. The value is the mutex's to trace.
impl<T> crate::Trace for MutexGuard<'_, T> {
    fn trace(&self, tracer: &mut crate::Tracer<'_>) {
        crate::Trace::trace(&self.hold, tracer);
    }
}

/// Reports the held resource (the walk names the task whose state holds
/// this guard, whichever task acquired it), and traces the value, which the
/// guard co-owns.
impl<T: crate::Trace> crate::Trace for OwnedMutexGuard<T> {
    fn trace(&self, tracer: &mut crate::Tracer<'_>) {
        let mutex = self.inner.owner();
        let state = mutex.resource.state();
        tracer.guard(state.id(), &state.name());
        let value: &T = self;
        tracer.shared(
            Arc::as_ptr(mutex) as *const u8,
            std::any::type_name::<Mutex<T>>(),
            |t| {
                t.shared(
                    Arc::as_ptr(mutex.resource.state_arc()) as *const u8,
                    "turbowish_trace::sync::ResourceState",
                    |_| {},
                );
                value.trace(t)
            },
        );
    }
}
