//! [`Semaphore`]: `tokio::sync::Semaphore` that records permit holders and
//! waiters.

use std::borrow::Cow;
use std::future::Future;
use std::panic::Location;
use std::sync::Arc;

use super::acquire_recorded;
use super::resource::{Access, Class, ResourceKind};
use crate::resource::{Hold, OwnedHold, Resource};

/// A counting semaphore with the API of `tokio::sync::Semaphore`, whose
/// permit holders and waiters appear in [`crate::sync::resources`].
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let pool = turbowish_trace::sync::Semaphore::new_named("db-pool", 2);
/// let first = pool.acquire().await.unwrap();
/// assert_eq!(pool.available_permits(), 1);
/// drop(first);
/// # }
/// ```
#[derive(Debug)]
pub struct Semaphore {
    /// Its record: a [`Resource`] of kind `Semaphore`, cumulative with its
    /// permits as capacity.
    resource: Resource,
    inner: Arc<tokio::sync::Semaphore>,
}

impl Semaphore {
    /// A semaphore with `permits` permits, named after its creation place.
    #[track_caller]
    pub fn new(permits: usize) -> Semaphore {
        Semaphore::with_name(None, permits, Location::caller())
    }

    /// A semaphore with a name for reports.
    #[track_caller]
    pub fn new_named(name: impl Into<Cow<'static, str>>, permits: usize) -> Semaphore {
        Semaphore::with_name(Some(name.into()), permits, Location::caller())
    }

    fn with_name(
        name: Option<Cow<'static, str>>,
        permits: usize,
        location: &'static Location<'static>,
    ) -> Semaphore {
        Semaphore {
            resource: Resource::declared(
                ResourceKind::Semaphore,
                name,
                Class::Cumulative { capacity: permits },
                location,
            ),
            inner: Arc::new(tokio::sync::Semaphore::new(permits)),
        }
    }

    /// The name reports use.
    pub fn name(&self) -> Cow<'_, str> {
        self.resource.name()
    }

    /// Permits available now.
    pub fn available_permits(&self) -> usize {
        self.inner.available_permits()
    }

    /// Adds permits (they do not appear as held by anyone).
    pub fn add_permits(&self, n: usize) {
        self.inner.add_permits(n);
        self.resource.state().add_permits(n);
    }

    /// Closes the semaphore: waiters and later acquires fail.
    pub fn close(&self) {
        self.inner.close();
    }

    /// Acquires one permit, waiting (recorded) while none is free.
    #[track_caller]
    pub fn acquire(
        &self,
    ) -> impl Future<Output = Result<SemaphorePermit<'_>, tokio::sync::AcquireError>> + '_ {
        self.acquire_many_at(1, Location::caller())
    }

    /// Acquires `n` permits at once.
    #[track_caller]
    pub fn acquire_many(
        &self,
        n: u32,
    ) -> impl Future<Output = Result<SemaphorePermit<'_>, tokio::sync::AcquireError>> + '_ {
        self.acquire_many_at(n, Location::caller())
    }

    async fn acquire_many_at(
        &self,
        n: u32,
        location: &'static Location<'static>,
    ) -> Result<SemaphorePermit<'_>, tokio::sync::AcquireError> {
        // A closed semaphore also fails `try_*`: the wait then returns
        // tokio's own error value at once.
        let inner = acquire_recorded(
            || {
                self.resource
                    .wait_unchecked(Access::Permits(n), false, location)
            },
            &*self.inner,
            |inner| inner.try_acquire_many(n).ok().map(Ok),
            |inner| inner.acquire_many(n),
        )
        .await?;
        Ok(self.permit(inner, n, location))
    }

    /// Acquires one permit without waiting.
    #[track_caller]
    pub fn try_acquire(&self) -> Result<SemaphorePermit<'_>, tokio::sync::TryAcquireError> {
        let location = Location::caller();
        Ok(self.permit(self.inner.try_acquire()?, 1, location))
    }

    /// Acquires `n` permits without waiting.
    #[track_caller]
    pub fn try_acquire_many(
        &self,
        n: u32,
    ) -> Result<SemaphorePermit<'_>, tokio::sync::TryAcquireError> {
        let location = Location::caller();
        Ok(self.permit(self.inner.try_acquire_many(n)?, n, location))
    }

    fn permit<'a>(
        &'a self,
        inner: tokio::sync::SemaphorePermit<'a>,
        n: u32,
        location: &'static Location<'static>,
    ) -> SemaphorePermit<'a> {
        self.resource.note_owner(self);
        SemaphorePermit {
            hold: self.resource.hold_unchecked(Access::Permits(n), location),
            inner: Some(inner),
        }
    }

    /// Acquires one permit for an owned permit (see
    /// [`Semaphore::acquire_many_owned`]).
    #[track_caller]
    pub fn acquire_owned(
        self: Arc<Self>,
    ) -> impl Future<Output = Result<OwnedSemaphorePermit, tokio::sync::AcquireError>> + 'static
    {
        self.acquire_many_owned(1)
    }

    /// Acquires `n` permits for an owned permit that can move into another
    /// task; the record names the acquiring task and marks it movable.
    #[track_caller]
    pub fn acquire_many_owned(
        self: Arc<Self>,
        n: u32,
    ) -> impl Future<Output = Result<OwnedSemaphorePermit, tokio::sync::AcquireError>> + 'static
    {
        let location = Location::caller();
        async move {
            let permit = acquire_recorded(
                || {
                    self.resource
                        .wait_unchecked(Access::Permits(n), true, location)
                },
                Arc::clone(&self.inner),
                |inner| Arc::clone(inner).try_acquire_many_owned(n).ok().map(Ok),
                |inner| inner.acquire_many_owned(n),
            )
            .await?;
            Ok(OwnedSemaphorePermit::new(
                &self.resource,
                permit,
                n,
                location,
            ))
        }
    }

    /// Acquires one permit for an owned permit without waiting.
    #[track_caller]
    pub fn try_acquire_owned(
        self: Arc<Self>,
    ) -> Result<OwnedSemaphorePermit, tokio::sync::TryAcquireError> {
        let location = Location::caller();
        let permit = Arc::clone(&self.inner).try_acquire_owned()?;
        Ok(OwnedSemaphorePermit::new(
            &self.resource,
            permit,
            1,
            location,
        ))
    }

    /// Acquires `n` permits for an owned permit without waiting.
    #[track_caller]
    pub fn try_acquire_many_owned(
        self: Arc<Self>,
        n: u32,
    ) -> Result<OwnedSemaphorePermit, tokio::sync::TryAcquireError> {
        let location = Location::caller();
        let permit = Arc::clone(&self.inner).try_acquire_many_owned(n)?;
        Ok(OwnedSemaphorePermit::new(
            &self.resource,
            permit,
            n,
            location,
        ))
    }

    /// Whether [`Semaphore::close`] was called.
    pub fn is_closed(&self) -> bool {
        self.inner.is_closed()
    }

    /// Removes up to `n` available permits; returns how many were removed.
    pub fn forget_permits(&self, n: usize) -> usize {
        let removed = self.inner.forget_permits(n);
        self.resource.state().remove_permits(removed);
        removed
    }
}

/// Permit(s) of a [`Semaphore`]; dropping returns them.
#[derive(Debug)]
pub struct SemaphorePermit<'a> {
    /// The holder record: released first, then tokio's permit.
    hold: Hold<'a>,
    /// `None` once forgotten.
    inner: Option<tokio::sync::SemaphorePermit<'a>>,
}

impl SemaphorePermit<'_> {
    /// Number of permits held.
    pub fn num_permits(&self) -> usize {
        self.inner.as_ref().map_or(0, |p| p.num_permits())
    }

    /// Keeps the permits from returning to the semaphore, which then has
    /// that many fewer in total.
    pub fn forget(mut self) {
        if let Some(inner) = self.inner.take() {
            self.hold.state().remove_permits(inner.num_permits());
            inner.forget();
        }
    }
}

/// Owned permit(s) of a [`Semaphore`].
#[derive(Debug)]
pub struct OwnedSemaphorePermit {
    /// The holder record (movable, with its mark for the walker): released
    /// first, then tokio's permit.
    hold: OwnedHold,
    /// `None` once forgotten.
    inner: Option<tokio::sync::OwnedSemaphorePermit>,
}

impl OwnedSemaphorePermit {
    fn new(
        resource: &Resource,
        inner: tokio::sync::OwnedSemaphorePermit,
        n: u32,
        location: &'static Location<'static>,
    ) -> OwnedSemaphorePermit {
        OwnedSemaphorePermit {
            hold: resource.hold_owned_unchecked(Access::Permits(n), location),
            inner: Some(inner),
        }
    }

    /// Number of permits held.
    pub fn num_permits(&self) -> usize {
        self.inner.as_ref().map_or(0, |p| p.num_permits())
    }

    /// Keeps the permits from returning to the semaphore, which then has
    /// that many fewer in total.
    pub fn forget(mut self) {
        if let Some(inner) = self.inner.take() {
            self.hold.state().remove_permits(inner.num_permits());
            inner.forget();
        }
    }
}

/// Owns its record block and tokio's semaphore (shared with its owned
/// permits).
impl crate::Trace for Semaphore {
    fn trace(&self, tracer: &mut crate::Tracer<'_>) {
        // Whoever owns this lock (or an `Arc` to it) may lock it next.
        self.resource.trace_resource(tracer);
        tracer.shared(
            Arc::as_ptr(&self.inner) as *const u8,
            "tokio::sync::Semaphore",
            |_| {},
        );
    }
}

/// Reports the held resource.
impl crate::Trace for SemaphorePermit<'_> {
    fn trace(&self, tracer: &mut crate::Tracer<'_>) {
        crate::Trace::trace(&self.hold, tracer);
    }
}

/// Reports the held resource (the walk names the task whose state holds
/// the permit, whichever task acquired it).
impl crate::Trace for OwnedSemaphorePermit {
    fn trace(&self, tracer: &mut crate::Tracer<'_>) {
        crate::Trace::trace(&self.hold, tracer);
    }
}
