//! [`Semaphore`]: `tokio::sync::Semaphore` that records permit holders and
//! waiters.

use std::borrow::Cow;
use std::future::Future;
use std::panic::Location;
use std::sync::Arc;

use super::acquire_recorded;
use super::resource::{Access, HolderSlot, Mark, MarkKind, Record, ResourceKind, ResourceState};

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
    state: Arc<ResourceState>,
    /// Lets the walker find the semaphore inside the block owning it.
    _mark: Mark,
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
        let state = ResourceState::new(ResourceKind::Semaphore, name, location, Some(permits));
        Semaphore {
            _mark: Mark::new(MarkKind::Lock, &state),
            state,
            inner: Arc::new(tokio::sync::Semaphore::new(permits)),
        }
    }

    /// The name reports use.
    pub fn name(&self) -> Cow<'_, str> {
        self.state.name()
    }

    /// Permits available now.
    pub fn available_permits(&self) -> usize {
        self.inner.available_permits()
    }

    /// Adds permits (they do not appear as held by anyone).
    pub fn add_permits(&self, n: usize) {
        self.inner.add_permits(n);
        self.state.add_permits(n);
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
            &self.state,
            || Record::now(location, Access::Permits(n), false),
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
        self.state.note_home(self);
        SemaphorePermit {
            inner: Some(inner),
            state: &self.state,
            slot: self.state.hold(location, Access::Permits(n), false),
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
                &self.state,
                || Record::now(location, Access::Permits(n), true),
                Arc::clone(&self.inner),
                |inner| Arc::clone(inner).try_acquire_many_owned(n).ok().map(Ok),
                |inner| inner.acquire_many_owned(n),
            )
            .await?;
            Ok(OwnedSemaphorePermit::new(&self.state, permit, n, location))
        }
    }

    /// Acquires one permit for an owned permit without waiting.
    #[track_caller]
    pub fn try_acquire_owned(
        self: Arc<Self>,
    ) -> Result<OwnedSemaphorePermit, tokio::sync::TryAcquireError> {
        let location = Location::caller();
        let permit = Arc::clone(&self.inner).try_acquire_owned()?;
        Ok(OwnedSemaphorePermit::new(&self.state, permit, 1, location))
    }

    /// Acquires `n` permits for an owned permit without waiting.
    #[track_caller]
    pub fn try_acquire_many_owned(
        self: Arc<Self>,
        n: u32,
    ) -> Result<OwnedSemaphorePermit, tokio::sync::TryAcquireError> {
        let location = Location::caller();
        let permit = Arc::clone(&self.inner).try_acquire_many_owned(n)?;
        Ok(OwnedSemaphorePermit::new(&self.state, permit, n, location))
    }

    /// Whether [`Semaphore::close`] was called.
    pub fn is_closed(&self) -> bool {
        self.inner.is_closed()
    }

    /// Removes up to `n` available permits; returns how many were removed.
    pub fn forget_permits(&self, n: usize) -> usize {
        let removed = self.inner.forget_permits(n);
        self.state.remove_permits(removed);
        removed
    }
}

/// Permit(s) of a [`Semaphore`]; dropping returns them.
#[derive(Debug)]
pub struct SemaphorePermit<'a> {
    /// `None` once forgotten.
    inner: Option<tokio::sync::SemaphorePermit<'a>>,
    state: &'a ResourceState,
    slot: HolderSlot,
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
            self.state.remove_permits(inner.num_permits());
            inner.forget();
        }
    }
}

impl Drop for SemaphorePermit<'_> {
    fn drop(&mut self) {
        self.state.release(self.slot);
    }
}

/// Owned permit(s) of a [`Semaphore`].
#[derive(Debug)]
pub struct OwnedSemaphorePermit {
    /// `None` once forgotten.
    inner: Option<tokio::sync::OwnedSemaphorePermit>,
    /// Lets the heap walker find the permit in a task's opaque state.
    _mark: Mark,
    state: Arc<ResourceState>,
    slot: HolderSlot,
}

impl OwnedSemaphorePermit {
    fn new(
        state: &Arc<ResourceState>,
        inner: tokio::sync::OwnedSemaphorePermit,
        n: u32,
        location: &'static Location<'static>,
    ) -> OwnedSemaphorePermit {
        OwnedSemaphorePermit {
            _mark: Mark::new(MarkKind::Guard, state),
            slot: state.hold(location, Access::Permits(n), true),
            inner: Some(inner),
            state: Arc::clone(state),
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
            self.state.remove_permits(inner.num_permits());
            inner.forget();
        }
    }
}

impl Drop for OwnedSemaphorePermit {
    fn drop(&mut self) {
        self.state.release(self.slot);
    }
}

/// Owns its record block and tokio's semaphore (shared with its owned
/// permits).
impl crate::Trace for Semaphore {
    fn trace(&self, tracer: &mut crate::Tracer<'_>) {
        // Whoever owns this lock (or an `Arc` to it) may lock it next.
        tracer.handle(self.state.id(), None, crate::ownership::HandleKind::Lock);
        tracer.shared(
            Arc::as_ptr(&self.state) as *const u8,
            "turbowish_trace::sync::ResourceState",
            |_| {},
        );
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
        tracer.guard(self.state.id(), &self.state.name());
    }
}

/// Reports the held resource (the walk names the task whose state holds
/// the permit, whichever task acquired it).
impl crate::Trace for OwnedSemaphorePermit {
    fn trace(&self, tracer: &mut crate::Tracer<'_>) {
        tracer.guard(self.state.id(), &self.state.name());
        tracer.shared(
            Arc::as_ptr(&self.state) as *const u8,
            "turbowish_trace::sync::ResourceState",
            |_| {},
        );
    }
}
