//! [`RwLock`]: `tokio::sync::RwLock` that records readers, the writer and
//! waiters.

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

/// An async reader-writer lock with the API of `tokio::sync::RwLock`, whose
/// readers, writer and waiters appear in [`crate::sync::resources`].
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let routes = turbowish_trace::sync::RwLock::new_named("routes", vec!["/"]);
/// routes.write().await.push("/health");
/// assert_eq!(routes.read().await.len(), 2);
/// # }
/// ```
pub struct RwLock<T> {
    /// Its record: a [`Resource`] of kind `RwLock`, exclusive (readers
    /// share it).
    resource: Resource,
    inner: tokio::sync::RwLock<T>,
}

impl<T> RwLock<T> {
    /// A lock named after the place it is created.
    #[track_caller]
    pub fn new(value: T) -> RwLock<T> {
        RwLock::with_name(None, value, Location::caller())
    }

    /// A lock with a name for reports.
    #[track_caller]
    pub fn new_named(name: impl Into<Cow<'static, str>>, value: T) -> RwLock<T> {
        RwLock::with_name(Some(name.into()), value, Location::caller())
    }

    fn with_name(
        name: Option<Cow<'static, str>>,
        value: T,
        location: &'static Location<'static>,
    ) -> RwLock<T> {
        RwLock {
            resource: Resource::declared(ResourceKind::RwLock, name, Class::Exclusive, location),
            inner: tokio::sync::RwLock::new(value),
        }
    }

    /// The name reports use.
    pub fn name(&self) -> Cow<'_, str> {
        self.resource.name()
    }

    /// Shared access, waiting (recorded) while a writer holds or waits.
    #[track_caller]
    pub fn read(&self) -> impl Future<Output = RwLockReadGuard<'_, T>> + '_ {
        let location = Location::caller();
        async move {
            let inner = acquire_recorded(
                || {
                    self.resource
                        .wait_unchecked(Access::Shared, false, location)
                },
                &self.inner,
                |inner| inner.try_read().ok(),
                |inner| inner.read(),
            )
            .await;
            self.read_guard(inner, location)
        }
    }

    /// Exclusive access, waiting (recorded) while others hold it.
    #[track_caller]
    pub fn write(&self) -> impl Future<Output = RwLockWriteGuard<'_, T>> + '_ {
        let location = Location::caller();
        async move {
            let inner = acquire_recorded(
                || {
                    self.resource
                        .wait_unchecked(Access::Exclusive, false, location)
                },
                &self.inner,
                |inner| inner.try_write().ok(),
                |inner| inner.write(),
            )
            .await;
            self.write_guard(inner, location)
        }
    }

    /// Shared access for an owned guard that can move into another task,
    /// as tokio's `read_owned`; recorded as the acquiring task's, movable.
    #[track_caller]
    pub fn read_owned(self: Arc<Self>) -> impl Future<Output = OwnedRwLockReadGuard<T>> + 'static
    where
        T: 'static,
    {
        let location = Location::caller();
        async move {
            // SAFETY: this future owns `self`, and hands it to the guard.
            let inner = unsafe { erase(&self.inner) };
            let inner = acquire_recorded(
                || self.resource.wait_unchecked(Access::Shared, true, location),
                inner,
                |inner| inner.try_read().ok(),
                |inner| inner.read(),
            )
            .await;
            OwnedRwLockReadGuard::new(self, inner, location)
        }
    }

    /// Exclusive access for an owned guard (see [`RwLock::read_owned`]).
    #[track_caller]
    pub fn write_owned(self: Arc<Self>) -> impl Future<Output = OwnedRwLockWriteGuard<T>> + 'static
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
                |inner| inner.try_write().ok(),
                |inner| inner.write(),
            )
            .await;
            OwnedRwLockWriteGuard::new(self, inner, location)
        }
    }

    /// Shared access for an owned guard, without waiting.
    #[track_caller]
    pub fn try_read_owned(
        self: Arc<Self>,
    ) -> Result<OwnedRwLockReadGuard<T>, tokio::sync::TryLockError>
    where
        T: 'static,
    {
        let location = Location::caller();
        // SAFETY: `self` goes into the guard with the borrow.
        let inner = unsafe { erase(&self.inner) }.try_read()?;
        Ok(OwnedRwLockReadGuard::new(self, inner, location))
    }

    /// Exclusive access for an owned guard, without waiting.
    #[track_caller]
    pub fn try_write_owned(
        self: Arc<Self>,
    ) -> Result<OwnedRwLockWriteGuard<T>, tokio::sync::TryLockError>
    where
        T: 'static,
    {
        let location = Location::caller();
        // SAFETY: `self` goes into the guard with the borrow.
        let inner = unsafe { erase(&self.inner) }.try_write()?;
        Ok(OwnedRwLockWriteGuard::new(self, inner, location))
    }

    /// Mutable access without locking.
    pub fn get_mut(&mut self) -> &mut T {
        self.inner.get_mut()
    }

    /// The value, consuming the lock.
    pub fn into_inner(self) -> T {
        self.inner.into_inner()
    }

    /// Shared access without waiting.
    #[track_caller]
    pub fn try_read(&self) -> Result<RwLockReadGuard<'_, T>, tokio::sync::TryLockError> {
        let location = Location::caller();
        Ok(self.read_guard(self.inner.try_read()?, location))
    }

    /// Exclusive access without waiting.
    #[track_caller]
    pub fn try_write(&self) -> Result<RwLockWriteGuard<'_, T>, tokio::sync::TryLockError> {
        let location = Location::caller();
        Ok(self.write_guard(self.inner.try_write()?, location))
    }

    fn read_guard<'a>(
        &'a self,
        inner: tokio::sync::RwLockReadGuard<'a, T>,
        location: &'static Location<'static>,
    ) -> RwLockReadGuard<'a, T> {
        self.resource.note_owner(self);
        RwLockReadGuard {
            hold: self.resource.hold_unchecked(Access::Shared, location),
            inner,
        }
    }

    fn write_guard<'a>(
        &'a self,
        inner: tokio::sync::RwLockWriteGuard<'a, T>,
        location: &'static Location<'static>,
    ) -> RwLockWriteGuard<'a, T> {
        self.resource.note_owner(self);
        RwLockWriteGuard {
            hold: self.resource.hold_unchecked(Access::Exclusive, location),
            inner,
        }
    }
}

impl<T: fmt::Debug> fmt::Debug for RwLock<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RwLock")
            .field("name", &self.resource.name())
            .field("inner", &self.inner)
            .finish()
    }
}

/// Read guard of an [`RwLock`].
#[derive(Debug)]
pub struct RwLockReadGuard<'a, T> {
    /// The holder record: released first, then tokio's guard.
    hold: Hold<'a>,
    inner: tokio::sync::RwLockReadGuard<'a, T>,
}

impl<T> Deref for RwLockReadGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.inner
    }
}

/// Write guard of an [`RwLock`].
#[derive(Debug)]
pub struct RwLockWriteGuard<'a, T> {
    /// The holder record: released first, then tokio's guard.
    hold: Hold<'a>,
    inner: tokio::sync::RwLockWriteGuard<'a, T>,
}

impl<T> Deref for RwLockWriteGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.inner
    }
}

impl<T> DerefMut for RwLockWriteGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        &mut self.inner
    }
}

impl<T> Recorded for RwLock<T> {
    fn resource(&self) -> &Resource {
        &self.resource
    }
}

/// Owned read guard of an [`RwLock`] (see [`RwLock::read_owned`]).
pub struct OwnedRwLockReadGuard<T: 'static> {
    inner: Owned<RwLock<T>, tokio::sync::RwLockReadGuard<'static, T>>,
}

impl<T: 'static> OwnedRwLockReadGuard<T> {
    fn new(
        lock: Arc<RwLock<T>>,
        inner: tokio::sync::RwLockReadGuard<'static, T>,
        location: &'static Location<'static>,
    ) -> OwnedRwLockReadGuard<T> {
        OwnedRwLockReadGuard {
            // SAFETY: `inner` reads `lock.inner`.
            inner: unsafe { Owned::new(lock, inner, location, Access::Shared) },
        }
    }

    /// The lock this guard reads.
    pub fn rwlock(this: &Self) -> &Arc<RwLock<T>> {
        this.inner.owner()
    }
}

impl<T> Deref for OwnedRwLockReadGuard<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.inner
    }
}

impl<T: fmt::Debug> fmt::Debug for OwnedRwLockReadGuard<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self.inner, f)
    }
}

/// Owned write guard of an [`RwLock`] (see [`RwLock::write_owned`]).
pub struct OwnedRwLockWriteGuard<T: 'static> {
    inner: Owned<RwLock<T>, tokio::sync::RwLockWriteGuard<'static, T>>,
}

impl<T: 'static> OwnedRwLockWriteGuard<T> {
    fn new(
        lock: Arc<RwLock<T>>,
        inner: tokio::sync::RwLockWriteGuard<'static, T>,
        location: &'static Location<'static>,
    ) -> OwnedRwLockWriteGuard<T> {
        OwnedRwLockWriteGuard {
            // SAFETY: `inner` writes `lock.inner`.
            inner: unsafe { Owned::new(lock, inner, location, Access::Exclusive) },
        }
    }

    /// The lock this guard writes.
    pub fn rwlock(this: &Self) -> &Arc<RwLock<T>> {
        this.inner.owner()
    }
}

impl<T> Deref for OwnedRwLockWriteGuard<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.inner
    }
}

impl<T> DerefMut for OwnedRwLockWriteGuard<T> {
    fn deref_mut(&mut self) -> &mut T {
        &mut self.inner
    }
}

impl<T: fmt::Debug> fmt::Debug for OwnedRwLockWriteGuard<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self.inner, f)
    }
}

/// The value is traced when it can be read without waiting; while a
/// writer holds the lock its bytes are scanned conservatively instead (the
/// walker never waits for the program's locks).
impl<T: crate::Trace> crate::Trace for RwLock<T> {
    fn trace(&self, tracer: &mut crate::Tracer<'_>) {
        // Whoever owns this lock (or an `Arc` to it) may lock it next.
        self.resource.trace_resource(tracer);
        match self.inner.try_read() {
            Ok(value) => value.trace(tracer),
            Err(_) => tracer.conservative(&self.inner),
        }
    }
}

/// Reports the held resource; the value is the lock's to trace.
impl<T> crate::Trace for RwLockReadGuard<'_, T> {
    fn trace(&self, tracer: &mut crate::Tracer<'_>) {
        crate::Trace::trace(&self.hold, tracer);
    }
}

/// Reports the held resource; the value is the lock's to trace.
impl<T> crate::Trace for RwLockWriteGuard<'_, T> {
    fn trace(&self, tracer: &mut crate::Tracer<'_>) {
        crate::Trace::trace(&self.hold, tracer);
    }
}

/// Reports the held resource (the walk names the task whose state holds
/// this guard, whichever task acquired it), and traces the value, which the
/// guard co-owns.
impl<T: crate::Trace> crate::Trace for OwnedRwLockReadGuard<T> {
    fn trace(&self, tracer: &mut crate::Tracer<'_>) {
        trace_owned(tracer, self.inner.owner(), self);
    }
}

/// As for [`OwnedRwLockReadGuard`].
impl<T: crate::Trace> crate::Trace for OwnedRwLockWriteGuard<T> {
    fn trace(&self, tracer: &mut crate::Tracer<'_>) {
        trace_owned(tracer, self.inner.owner(), self);
    }
}

fn trace_owned<T: crate::Trace>(tracer: &mut crate::Tracer<'_>, lock: &Arc<RwLock<T>>, value: &T) {
    let state = lock.resource.state();
    tracer.guard(state.id(), &state.name());
    tracer.shared(
        Arc::as_ptr(lock) as *const u8,
        std::any::type_name::<RwLock<T>>(),
        |t| {
            t.shared(
                Arc::as_ptr(lock.resource.state_arc()) as *const u8,
                "turbowish_trace::sync::ResourceState",
                |_| {},
            );
            value.trace(t)
        },
    );
}
