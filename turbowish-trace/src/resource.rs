//! Instrumenting your own resources: the API TurboWish's own `Mutex`,
//! `RwLock`, `Semaphore` and channels are built on, for a library's
//! connection pool, rate limiter or scheduler to say what its users hold
//! and wait for.
//!
//! A library declares a [`Resource`] with a *kind* name of its own
//! (`"pool"`), an instance name (`"db-main"`) and a [`Class`]: exclusive
//! (one holder, or shared readers), cumulative with a capacity (units that
//! any holder may give back), or a channel. Then, against the current task
//! and frame:
//!
//! - [`Resource::hold`] records the caller as a holder until the returned
//!   [`Hold`] is dropped ([`Resource::hold_owned`]: an [`OwnedHold`] that
//!   can move into another task);
//! - [`Resource::wait`] records the caller as a waiter until the returned
//!   [`Wait`] is dropped: take it only when the caller has to wait, and
//!   keep it across the `.await`, so a cancelled wait (a lost `select!`
//!   branch) leaves no record;
//! - [`Resource::end`] makes a channel end ([`End`]), a holder of its side
//!   for as long as it lives.
//!
//! The resource then appears in [`crate::sync::resources`] under its own
//! kind and name (`pool "db-main"`), in chains and deadlock cycles, and in
//! snapshots and `turbowish chains`. Every type here implements
//! [`crate::Trace`] and carries the marks the walker looks for, so the
//! tasks whose state owns a resource, a hold or an end are named as
//! [owners](crate::ownership), as for the built-in resources.
//!
//! Two parties that each hold one unit of a two-unit resource and wait for
//! a second are a deadlock:
//!
//! ```
//! use std::sync::Barrier;
//! use turbowish_trace::resource::{Class, Resource};
//! use turbowish_trace::sync::Access;
//!
//! let slots = Resource::new("pool", "db-main", Class::Cumulative { capacity: 2 });
//! let one = Access::Permits(1);
//! // Two threads (tasks alike) hold a unit each, then wait for a second.
//! let (held, waiting, done) = (Barrier::new(2), Barrier::new(3), Barrier::new(3));
//! let graph = std::thread::scope(|s| {
//!     for _ in 0..2 {
//!         s.spawn(|| {
//!             let _first = slots.hold(one).unwrap();
//!             held.wait();
//!             let _second = slots.wait(one).unwrap();
//!             waiting.wait();
//!             done.wait(); // stands for waiting until a unit comes back
//!         });
//!     }
//!     waiting.wait();
//!     let graph = turbowish_trace::sync::resources();
//!     done.wait();
//!     graph
//! });
//! let cycles = turbowish_trace::chains::cycles(&graph);
//! assert_eq!(cycles.len(), 1);
//! assert!(cycles[0].to_string().contains("pool \"db-main\""));
//! ```
//!
//! Recording a holder never allocates (one spin lock on the resource's
//! table, a coarse clock read and a copy of the frame path); a waiter's
//! record may allocate, so it belongs on the contended path only.

use std::borrow::Cow;
use std::fmt;
use std::panic::Location;
use std::sync::Arc;

pub use crate::sync::resource::{Class, ResourceKind, TokioKind};
use crate::sync::resource::{EndMark, HolderSlot, Mark, MarkKind, Record, ResourceState};
use crate::sync::Access;

/// A resource that a library declared, whose holders and waiters TurboWish
/// records. Dropping it removes it from the wait-for graph.
///
/// ```
/// use turbowish_trace::resource::{Class, Resource};
/// use turbowish_trace::sync::Access;
///
/// let lease = Resource::new("lease", "shard-7", Class::Exclusive);
/// let held = lease.hold(Access::Exclusive).unwrap();
/// let graph = turbowish_trace::sync::resources();
/// let info = graph.iter().find(|r| r.id == lease.id()).unwrap();
/// assert_eq!(info.kind.to_string(), "lease");
/// assert_eq!(info.name, "shard-7");
/// assert_eq!(info.holders.len(), 1);
/// drop(held);
/// ```
pub struct Resource {
    state: Arc<ResourceState>,
    /// Lets the walker find the resource inside the block owning it.
    _mark: Mark,
}

impl Resource {
    /// Declares a resource of kind `kind` (a short noun of the library's:
    /// `"pool"`, `"lease"`, `"rate limiter"`) named `name` for reports,
    /// created here (the caller's location: a constructor marked
    /// `#[track_caller]` passes its own caller's).
    #[track_caller]
    pub fn new(kind: &'static str, name: impl Into<Cow<'static, str>>, class: Class) -> Resource {
        Resource::declared(
            ResourceKind::Declared(kind),
            Some(name.into()),
            class,
            Location::caller(),
        )
    }

    /// Declares a resource named after the place it is created.
    ///
    /// ```
    /// use turbowish_trace::resource::{Class, Resource};
    ///
    /// let r = Resource::unnamed("lease", Class::Exclusive);
    /// assert!(r.name().starts_with(file!()));
    /// ```
    #[track_caller]
    pub fn unnamed(kind: &'static str, class: Class) -> Resource {
        Resource::declared(
            ResourceKind::Declared(kind),
            None,
            class,
            Location::caller(),
        )
    }

    /// The one constructor, for TurboWish's own kinds too.
    pub(crate) fn declared(
        kind: ResourceKind,
        name: Option<Cow<'static, str>>,
        class: Class,
        location: &'static Location<'static>,
    ) -> Resource {
        let state = ResourceState::new(kind, name, location, class);
        Resource {
            _mark: Mark::new(MarkKind::Lock, &state),
            state,
        }
    }

    /// Its process-unique id ([`crate::sync::ResourceInfo::id`]).
    pub fn id(&self) -> u64 {
        self.state.id()
    }

    /// The name reports use: the one given, or the creation location.
    pub fn name(&self) -> Cow<'_, str> {
        self.state.name()
    }

    /// Its kind: [`ResourceKind::Declared`] with the kind name given.
    pub fn kind(&self) -> ResourceKind {
        self.state.kind()
    }

    /// Its class, with the capacity now for a cumulative resource.
    pub fn class(&self) -> Class {
        self.state.class()
    }

    /// Where it was created.
    pub fn location(&self) -> &'static Location<'static> {
        self.state.location()
    }

    /// Adds `n` units to a cumulative resource (a pool that opened more
    /// connections).
    ///
    /// # Errors
    ///
    /// [`ResourceError::NotCumulative`] for an exclusive or channel
    /// resource.
    pub fn add_capacity(&self, n: usize) -> Result<(), ResourceError> {
        self.cumulative()?;
        self.state.add_permits(n);
        Ok(())
    }

    /// Takes up to `n` units out of a cumulative resource for good (a pool
    /// that closed connections); its capacity does not go below 0.
    ///
    /// # Errors
    ///
    /// [`ResourceError::NotCumulative`] for an exclusive or channel
    /// resource.
    pub fn remove_capacity(&self, n: usize) -> Result<(), ResourceError> {
        self.cumulative()?;
        self.state.remove_permits(n);
        Ok(())
    }

    fn cumulative(&self) -> Result<(), ResourceError> {
        match self.state.class() {
            Class::Cumulative { .. } => Ok(()),
            class => Err(ResourceError::NotCumulative {
                resource: self.label(),
                class,
            }),
        }
    }

    /// Notes where the value that owns this resource lives now (the
    /// library's pool, lock or limiter, usually inside an `Arc`), so that
    /// the walker names a task whose state holds a pointer to it, or to
    /// the `Arc` around it, as an owner that *may* take it (see
    /// [`crate::ownership`]). Call it where the owner is used (an acquire
    /// call): two relaxed stores. TurboWish's own locks do this on every
    /// acquisition.
    #[inline]
    pub fn note_owner<O>(&self, owner: &O) {
        self.state.note_home(owner);
    }

    /// Records the current task (and its frame path) as a holder with
    /// `access`, here, until the returned [`Hold`] is dropped.
    ///
    /// # Errors
    ///
    /// [`ResourceError::Access`] when `access` does not fit the resource's
    /// [`Class`].
    #[track_caller]
    pub fn hold(&self, access: Access) -> Result<Hold<'_>, ResourceError> {
        self.hold_at(access, Location::caller())
    }

    /// [`Resource::hold`] at `location`: for an acquisition inside a
    /// future, where `#[track_caller]` does not reach (take
    /// `Location::caller()` before the `async` block).
    ///
    /// # Errors
    ///
    /// As for [`Resource::hold`].
    pub fn hold_at(
        &self,
        access: Access,
        location: &'static Location<'static>,
    ) -> Result<Hold<'_>, ResourceError> {
        self.check(access)?;
        Ok(self.hold_unchecked(access, location))
    }

    /// A hold without the class check: TurboWish's wrappers, whose
    /// accesses fit by construction.
    #[inline]
    pub(crate) fn hold_unchecked(
        &self,
        access: Access,
        location: &'static Location<'static>,
    ) -> Hold<'_> {
        Hold {
            slot: self.state.hold(location, access, false),
            state: &self.state,
        }
    }

    /// Records the current task as a holder with `access`, here, until the
    /// returned [`OwnedHold`] is dropped. The hold keeps the resource's
    /// record alive and can move into another task (it is recorded as
    /// *movable*: the record keeps naming the task that took it, and the
    /// walker finds which task's state holds it now).
    ///
    /// # Errors
    ///
    /// [`ResourceError::Access`] when `access` does not fit the resource's
    /// [`Class`].
    #[track_caller]
    pub fn hold_owned(&self, access: Access) -> Result<OwnedHold, ResourceError> {
        self.hold_owned_at(access, Location::caller())
    }

    /// [`Resource::hold_owned`] at `location`.
    ///
    /// # Errors
    ///
    /// As for [`Resource::hold_owned`].
    pub fn hold_owned_at(
        &self,
        access: Access,
        location: &'static Location<'static>,
    ) -> Result<OwnedHold, ResourceError> {
        self.check(access)?;
        Ok(self.hold_owned_unchecked(access, location))
    }

    pub(crate) fn hold_owned_unchecked(
        &self,
        access: Access,
        location: &'static Location<'static>,
    ) -> OwnedHold {
        self.hold_owned_as(access, true, location)
    }

    /// An owned hold recorded as `movable` or not (what tokio's
    /// instrumentation reports is kept in owned holds, movable or not).
    pub(crate) fn hold_owned_as(
        &self,
        access: Access,
        movable: bool,
        location: &'static Location<'static>,
    ) -> OwnedHold {
        OwnedHold {
            _mark: Mark::new(MarkKind::Guard, &self.state),
            slot: self.state.hold(location, access, movable),
            state: Arc::clone(&self.state),
        }
    }

    /// A movable hold that borrows the record from `self`, for a guard
    /// that keeps the resource's owner alive itself (TurboWish's owned
    /// guards, which keep the `Arc` to their lock).
    pub(crate) fn hold_movable(
        &self,
        access: Access,
        location: &'static Location<'static>,
    ) -> (Hold<'_>, Mark) {
        let hold = Hold {
            slot: self.state.hold(location, access, true),
            state: &self.state,
        };
        (hold, Mark::new(MarkKind::Guard, &self.state))
    }

    /// Records the current task as waiting for `access`, here, until the
    /// returned [`Wait`] is dropped. Take it only on the contended path
    /// (after a non-waiting attempt failed), and keep it across the
    /// `.await`.
    ///
    /// ```
    /// use turbowish_trace::resource::{Class, Resource};
    /// use turbowish_trace::sync::Access;
    ///
    /// let lease = Resource::new("lease", "shard-1", Class::Exclusive);
    /// let waiting = lease.wait(Access::Exclusive).unwrap();
    /// let graph = turbowish_trace::sync::resources();
    /// let info = graph.iter().find(|r| r.id == lease.id()).unwrap();
    /// assert_eq!(info.waiters.len(), 1);
    /// drop(waiting);
    /// ```
    ///
    /// # Errors
    ///
    /// [`ResourceError::Access`] when `access` does not fit the resource's
    /// [`Class`].
    #[track_caller]
    pub fn wait(&self, access: Access) -> Result<Wait<'_>, ResourceError> {
        self.wait_at(access, Location::caller())
    }

    /// [`Resource::wait`] at `location`.
    ///
    /// # Errors
    ///
    /// As for [`Resource::wait`].
    pub fn wait_at(
        &self,
        access: Access,
        location: &'static Location<'static>,
    ) -> Result<Wait<'_>, ResourceError> {
        self.check(access)?;
        Ok(self.wait_unchecked(access, false, location))
    }

    pub(crate) fn wait_unchecked(
        &self,
        access: Access,
        movable: bool,
        location: &'static Location<'static>,
    ) -> Wait<'_> {
        Wait {
            key: self.state.wait(Record::now(location, access, movable)),
            state: &self.state,
        }
    }

    /// Records the current task as waiting for `access` until the returned
    /// [`OwnedWait`] is dropped; it keeps the resource's record alive, for
    /// a future that cannot borrow the resource.
    ///
    /// # Errors
    ///
    /// [`ResourceError::Access`] when `access` does not fit the resource's
    /// [`Class`].
    #[track_caller]
    pub fn wait_owned(&self, access: Access) -> Result<OwnedWait, ResourceError> {
        self.wait_owned_at(access, Location::caller())
    }

    /// [`Resource::wait_owned`] at `location`.
    ///
    /// # Errors
    ///
    /// As for [`Resource::wait_owned`].
    pub fn wait_owned_at(
        &self,
        access: Access,
        location: &'static Location<'static>,
    ) -> Result<OwnedWait, ResourceError> {
        self.check(access)?;
        Ok(self.wait_owned_unchecked(access, location))
    }

    pub(crate) fn wait_owned_unchecked(
        &self,
        access: Access,
        location: &'static Location<'static>,
    ) -> OwnedWait {
        OwnedWait::new(&self.state, Record::now(location, access, false))
    }

    /// A new end of a channel resource, held by the current task: a sender
    /// ([`Access::Send`]) or a receiver ([`Access::Receive`]). The end is a
    /// holder of its side until dropped; [`End::mark_held`] moves its
    /// record to the task using it.
    ///
    /// ```
    /// use turbowish_trace::resource::{Class, Resource};
    /// use turbowish_trace::sync::Access;
    ///
    /// let queue = Resource::new("job queue", "imports", Class::Channel);
    /// let producer = queue.end(Access::Send).unwrap();
    /// let consumer = queue.end(Access::Receive).unwrap();
    /// let graph = turbowish_trace::sync::resources();
    /// let info = graph.iter().find(|r| r.id == queue.id()).unwrap();
    /// assert_eq!(info.holders.len(), 2);
    /// # drop((producer, consumer));
    /// ```
    ///
    /// # Errors
    ///
    /// [`ResourceError::Access`] unless the resource is a
    /// [`Class::Channel`] and `access` is `Send` or `Receive`.
    #[track_caller]
    pub fn end(&self, access: Access) -> Result<End, ResourceError> {
        self.end_at(access, Location::caller())
    }

    /// [`Resource::end`] at `location`.
    ///
    /// # Errors
    ///
    /// As for [`Resource::end`].
    pub fn end_at(
        &self,
        access: Access,
        location: &'static Location<'static>,
    ) -> Result<End, ResourceError> {
        match access {
            Access::Send | Access::Receive => self.check(access)?,
            _ => {
                return Err(ResourceError::Access {
                    resource: self.label(),
                    class: self.class(),
                    access,
                })
            }
        }
        Ok(End::new(&self.state, location, access))
    }

    /// Whether `access` fits the class.
    #[inline]
    fn check(&self, access: Access) -> Result<(), ResourceError> {
        if self.state.class_tag().admits(access) {
            Ok(())
        } else {
            Err(ResourceError::Access {
                resource: self.label(),
                class: self.class(),
                access,
            })
        }
    }

    /// `pool "db-main"`: as chains label it.
    fn label(&self) -> String {
        format!("{} \"{}\"", self.state.kind(), self.state.name())
    }

    pub(crate) fn state(&self) -> &ResourceState {
        &self.state
    }

    pub(crate) fn state_arc(&self) -> &Arc<ResourceState> {
        &self.state
    }

    /// The record without the resource's own mark: for a handle that
    /// carries a mark of another kind (a `JoinHandle` being awaited).
    pub(crate) fn into_state(self) -> Arc<ResourceState> {
        let Resource { state, _mark } = self;
        state
    }

    /// Reports this resource to the walker: whoever owns it (or an `Arc`
    /// to what holds it) may take it next; its record block is
    /// TurboWish's.
    pub(crate) fn trace_resource(&self, tracer: &mut crate::Tracer<'_>) {
        tracer.handle(self.state.id(), None, crate::ownership::HandleKind::Lock);
        tracer.shared(
            Arc::as_ptr(&self.state) as *const u8,
            "turbowish_trace::sync::ResourceState",
            |_| {},
        );
    }
}

impl fmt::Debug for Resource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Resource")
            .field("id", &self.state.id())
            .field("kind", &self.state.kind())
            .field("name", &self.state.name())
            .field("class", &self.state.class())
            .finish()
    }
}

/// Reports the resource: the task (or root) whose state owns it, or an
/// `Arc` to it, is listed as an owner that *may* take it
/// ([`crate::ownership::HandleKind::Lock`]).
impl crate::Trace for Resource {
    fn trace(&self, tracer: &mut crate::Tracer<'_>) {
        self.trace_resource(tracer);
    }
}

/// A holder's record of a [`Resource`], from [`Resource::hold`] until
/// dropped. It borrows the resource; see [`OwnedHold`] for one that can
/// move into another task.
pub struct Hold<'a> {
    state: &'a ResourceState,
    slot: HolderSlot,
}

impl Hold<'_> {
    /// The resource held ([`Resource::id`]).
    pub fn resource_id(&self) -> u64 {
        self.state.id()
    }

    pub(crate) fn state(&self) -> &ResourceState {
        self.state
    }

    /// The hold with its borrow erased, for a guard that keeps what it
    /// borrows from alive itself.
    ///
    /// # Safety
    ///
    /// The result must be dropped while the [`Resource`] it came from is
    /// alive: callers keep the `Arc` owning the resource beside it, and
    /// drop the hold first.
    pub(crate) unsafe fn erase(self) -> Hold<'static> {
        let hold = std::mem::ManuallyDrop::new(self);
        Hold {
            // SAFETY: guaranteed by the caller.
            state: unsafe { crate::sync::erase(hold.state) },
            slot: hold.slot,
        }
    }
}

impl Drop for Hold<'_> {
    #[inline]
    fn drop(&mut self) {
        self.state.release(self.slot);
    }
}

impl fmt::Debug for Hold<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Hold")
            .field("resource", &self.state.id())
            .finish_non_exhaustive()
    }
}

/// Reports the held resource: the walk names the root (task) whose state
/// holds this hold.
impl crate::Trace for Hold<'_> {
    fn trace(&self, tracer: &mut crate::Tracer<'_>) {
        tracer.guard(self.state.id(), &self.state.name());
    }
}

/// A holder's record of a [`Resource`] that keeps the resource's record
/// alive and can move into another task, from [`Resource::hold_owned`]
/// until dropped. It carries a mark, so the walker finds it in a task's
/// opaque state and names that task, whichever task took it.
pub struct OwnedHold {
    state: Arc<ResourceState>,
    /// Lets the walker find the hold in a task's opaque state.
    _mark: Mark,
    slot: HolderSlot,
}

impl OwnedHold {
    /// The resource held ([`Resource::id`]).
    pub fn resource_id(&self) -> u64 {
        self.state.id()
    }

    pub(crate) fn state(&self) -> &ResourceState {
        &self.state
    }
}

impl Drop for OwnedHold {
    fn drop(&mut self) {
        self.state.release(self.slot);
    }
}

impl fmt::Debug for OwnedHold {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OwnedHold")
            .field("resource", &self.state.id())
            .finish_non_exhaustive()
    }
}

/// Reports the held resource (the walk names the task whose state holds
/// it, whichever task took it) and the record block it keeps alive.
impl crate::Trace for OwnedHold {
    fn trace(&self, tracer: &mut crate::Tracer<'_>) {
        tracer.guard(self.state.id(), &self.state.name());
        tracer.shared(
            Arc::as_ptr(&self.state) as *const u8,
            "turbowish_trace::sync::ResourceState",
            |_| {},
        );
    }
}

/// A waiter's record of a [`Resource`], from [`Resource::wait`] until
/// dropped: when the wait ends, acquired or cancelled.
pub struct Wait<'a> {
    state: &'a ResourceState,
    key: u64,
}

impl Drop for Wait<'_> {
    fn drop(&mut self) {
        self.state.stop_waiting(self.key);
    }
}

impl fmt::Debug for Wait<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Wait")
            .field("resource", &self.state.id())
            .finish_non_exhaustive()
    }
}

/// [`Wait`] that keeps the resource's record alive, from
/// [`Resource::wait_owned`], for futures that cannot borrow the resource.
pub struct OwnedWait {
    state: Arc<ResourceState>,
    key: u64,
}

impl OwnedWait {
    pub(crate) fn new(state: &Arc<ResourceState>, record: Record) -> OwnedWait {
        OwnedWait {
            key: state.wait(record),
            state: Arc::clone(state),
        }
    }
}

impl Drop for OwnedWait {
    fn drop(&mut self) {
        self.state.stop_waiting(self.key);
    }
}

impl fmt::Debug for OwnedWait {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OwnedWait")
            .field("resource", &self.state.id())
            .finish_non_exhaustive()
    }
}

/// One end of a channel [`Resource`] ([`Resource::end`]), recorded as a
/// holder of its side (`Send` or `Receive`) until dropped. It carries a
/// mark and its holder slot, so the walker names the task whose state owns
/// it, and chains follow that task rather than the one that made it.
pub struct End {
    state: Arc<ResourceState>,
    /// Lets the walker find this end in a task's opaque state.
    _mark: EndMark,
    slot: HolderSlot,
    access: Access,
}

impl End {
    pub(crate) fn new(
        state: &Arc<ResourceState>,
        location: &'static Location<'static>,
        access: Access,
    ) -> End {
        let slot = state.hold(location, access, true);
        let kind = match access {
            Access::Receive => MarkKind::Receiver,
            _ => MarkKind::Sender,
        };
        End {
            _mark: EndMark::new(kind, state, slot),
            slot,
            state: Arc::clone(state),
            access,
        }
    }

    /// The channel ([`Resource::id`]).
    pub fn resource_id(&self) -> u64 {
        self.state.id()
    }

    /// Which side: [`Access::Send`] or [`Access::Receive`].
    pub fn access(&self) -> Access {
        self.access
    }

    /// Records the current task as this end's holder, here: call it where
    /// the end is used (a send or receive), or right after moving it into
    /// a task.
    #[track_caller]
    pub fn mark_held(&self) {
        self.mark_held_at(Location::caller());
    }

    /// [`End::mark_held`] at `location`.
    pub fn mark_held_at(&self, location: &'static Location<'static>) {
        self.state
            .update(self.slot, Record::now(location, self.access, true));
    }

    /// Records the current task as waiting through this end, here, until
    /// the returned [`Wait`] is dropped: a receiver waiting for a value
    /// waits for the senders' tasks, a sender blocked on a full buffer for
    /// the receivers'. As for [`Resource::wait`], take it only when the
    /// caller has to wait.
    ///
    /// ```
    /// use turbowish_trace::resource::{Class, Resource};
    /// use turbowish_trace::sync::Access;
    ///
    /// let queue = Resource::new("job queue", "exports", Class::Channel);
    /// let consumer = queue.end(Access::Receive).unwrap();
    /// let waiting = consumer.wait();
    /// let graph = turbowish_trace::sync::resources();
    /// let info = graph.iter().find(|r| r.id == queue.id()).unwrap();
    /// assert_eq!(info.waiters[0].access, Access::Receive);
    /// drop(waiting);
    /// ```
    #[track_caller]
    pub fn wait(&self) -> Wait<'_> {
        self.wait_at(Location::caller())
    }

    /// [`End::wait`] at `location`.
    pub fn wait_at(&self, location: &'static Location<'static>) -> Wait<'_> {
        Wait {
            key: self.state.wait(Record::now(location, self.access, false)),
            state: &self.state,
        }
    }

    /// [`End::wait`] that keeps the channel's record alive, for a future
    /// that cannot borrow the end (one that owns it).
    #[track_caller]
    pub fn wait_owned(&self) -> OwnedWait {
        self.wait_owned_at(Location::caller())
    }

    /// [`End::wait_owned`] at `location`.
    pub fn wait_owned_at(&self, location: &'static Location<'static>) -> OwnedWait {
        OwnedWait::new(&self.state, Record::now(location, self.access, false))
    }

    /// A further end of the same side (a cloned sender), held by the
    /// current task, here.
    #[track_caller]
    pub fn clone_end(&self) -> End {
        self.clone_at(Location::caller())
    }

    /// [`End::clone_end`] at `location`.
    pub fn clone_at(&self, location: &'static Location<'static>) -> End {
        End::new(&self.state, location, self.access)
    }

    /// Reports this end to the walker (which resource, which side, which
    /// holder slot) at the current field path.
    pub(crate) fn trace_end(&self, tracer: &mut crate::Tracer<'_>) {
        let handle = match self.access {
            Access::Receive => crate::ownership::HandleKind::Receiver,
            _ => crate::ownership::HandleKind::Sender,
        };
        let slot = match self.slot {
            HolderSlot::Named(i) => Some(i),
            HolderSlot::Extra => None,
        };
        tracer.handle(self.state.id(), slot, handle);
    }
}

impl Drop for End {
    fn drop(&mut self) {
        self.state.release(self.slot);
    }
}

impl fmt::Debug for End {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("End")
            .field("resource", &self.state.id())
            .field("access", &self.access)
            .finish_non_exhaustive()
    }
}

/// Reports the end (see [`crate::ownership`]): the task owning it is the
/// holder of its side.
impl crate::Trace for End {
    fn trace(&self, tracer: &mut crate::Tracer<'_>) {
        self.trace_end(tracer);
    }
}

/// What the resource API refuses: mistakes in how a library uses it,
/// found when the call is made (never a wait or a lock failing).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ResourceError {
    /// `access` does not fit a resource of this class: permits of an
    /// exclusive resource, an exclusive hold of a cumulative one, a
    /// channel end of anything but a channel, `Permits(0)`.
    Access {
        /// The resource, as chains label it (`pool "db-main"`).
        resource: String,
        /// Its class.
        class: Class,
        /// The access asked for.
        access: Access,
    },
    /// Capacity changed on a resource that is not cumulative.
    NotCumulative {
        /// The resource, as chains label it.
        resource: String,
        /// Its class.
        class: Class,
    },
}

impl fmt::Display for ResourceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ResourceError::Access {
                resource,
                class,
                access,
            } => write!(
                f,
                "{resource}: {access:?} does not fit a resource of class {class:?}"
            ),
            ResourceError::NotCumulative { resource, class } => write!(
                f,
                "{resource}: only a cumulative resource has a capacity (this one is {class:?})"
            ),
        }
    }
}

impl std::error::Error for ResourceError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accesses_that_do_not_fit_the_class_are_refused() {
        let lease = Resource::new("lease", "t/lease", Class::Exclusive);
        assert!(lease.hold(Access::Shared).is_ok());
        let err = lease.hold(Access::Permits(1)).unwrap_err();
        assert_eq!(
            err.to_string(),
            "lease \"t/lease\": Permits(1) does not fit a resource of class Exclusive"
        );
        assert!(lease.end(Access::Send).is_err());
        assert!(matches!(
            lease.add_capacity(1),
            Err(ResourceError::NotCumulative { .. })
        ));

        let pool = Resource::new("pool", "t/pool", Class::Cumulative { capacity: 2 });
        assert!(pool.wait(Access::Exclusive).is_err());
        assert!(pool.hold(Access::Permits(0)).is_err());
        assert!(pool.hold_owned(Access::Permits(2)).is_ok());
        pool.add_capacity(3).unwrap();
        pool.remove_capacity(10).unwrap();
        assert_eq!(pool.class(), Class::Cumulative { capacity: 0 });

        let queue = Resource::new("queue", "t/queue", Class::Channel);
        assert!(queue.end(Access::Exclusive).is_err());
        assert!(queue.end(Access::Receive).is_ok());
        assert!(queue.hold(Access::Permits(1)).is_err());
    }
}
