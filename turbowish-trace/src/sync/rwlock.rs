//! [`RwLock`]: `tokio::sync::RwLock` that records readers, the writer and
//! waiters.

use std::borrow::Cow;
use std::fmt;
use std::future::Future;
use std::ops::{Deref, DerefMut};
use std::panic::Location;

use super::acquire_recorded;
use super::resource::{Access, HolderSlot, Record, ResourceKind, ResourceState};

/// An async reader-writer lock with the API of `tokio::sync::RwLock`, whose
/// readers, writer and waiters appear in [`crate::resources`].
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
    state: std::sync::Arc<ResourceState>,
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
            state: ResourceState::new(ResourceKind::RwLock, name, location, None),
            inner: tokio::sync::RwLock::new(value),
        }
    }

    /// The name reports use.
    pub fn name(&self) -> Cow<'_, str> {
        self.state.name()
    }

    /// Shared access, waiting (recorded) while a writer holds or waits.
    #[track_caller]
    pub fn read(&self) -> impl Future<Output = RwLockReadGuard<'_, T>> + '_ {
        let location = Location::caller();
        async move {
            let inner = acquire_recorded(
                &self.state,
                || Record::now(location, Access::Shared, false),
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
                &self.state,
                || Record::now(location, Access::Exclusive, false),
                &self.inner,
                |inner| inner.try_write().ok(),
                |inner| inner.write(),
            )
            .await;
            self.write_guard(inner, location)
        }
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
        RwLockReadGuard {
            inner,
            state: &self.state,
            slot: self
                .state
                .hold(Record::now(location, Access::Shared, false)),
        }
    }

    fn write_guard<'a>(
        &'a self,
        inner: tokio::sync::RwLockWriteGuard<'a, T>,
        location: &'static Location<'static>,
    ) -> RwLockWriteGuard<'a, T> {
        RwLockWriteGuard {
            inner,
            state: &self.state,
            slot: self
                .state
                .hold(Record::now(location, Access::Exclusive, false)),
        }
    }
}

impl<T: fmt::Debug> fmt::Debug for RwLock<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RwLock")
            .field("name", &self.state.name())
            .field("inner", &self.inner)
            .finish()
    }
}

/// Read guard of an [`RwLock`].
#[derive(Debug)]
pub struct RwLockReadGuard<'a, T> {
    inner: tokio::sync::RwLockReadGuard<'a, T>,
    state: &'a ResourceState,
    slot: HolderSlot,
}

impl<T> Deref for RwLockReadGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.inner
    }
}

impl<T> Drop for RwLockReadGuard<'_, T> {
    fn drop(&mut self) {
        self.state.release(self.slot);
    }
}

/// Write guard of an [`RwLock`].
#[derive(Debug)]
pub struct RwLockWriteGuard<'a, T> {
    inner: tokio::sync::RwLockWriteGuard<'a, T>,
    state: &'a ResourceState,
    slot: HolderSlot,
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

impl<T> Drop for RwLockWriteGuard<'_, T> {
    fn drop(&mut self) {
        self.state.release(self.slot);
    }
}

/// The value is traced when it can be read without waiting; while a
/// writer holds the lock it is not traced (the walker never waits for the
/// program's locks), and what it owns may show up as unattributed.
impl<T: crate::Trace> crate::Trace for RwLock<T> {
    fn trace(&self, tracer: &mut crate::Tracer<'_>) {
        tracer.shared(
            std::sync::Arc::as_ptr(&self.state) as *const u8,
            "turbowish_trace::sync::ResourceState",
            |_| {},
        );
        if let Ok(value) = self.inner.try_read() {
            value.trace(tracer);
        }
    }
}

/// Reports the held resource; the value is the lock's to trace.
impl<T> crate::Trace for RwLockReadGuard<'_, T> {
    fn trace(&self, tracer: &mut crate::Tracer<'_>) {
        tracer.guard(self.state.id(), &self.state.name());
    }
}

/// Reports the held resource; the value is the lock's to trace.
impl<T> crate::Trace for RwLockWriteGuard<'_, T> {
    fn trace(&self, tracer: &mut crate::Tracer<'_>) {
        tracer.guard(self.state.id(), &self.state.name());
    }
}
