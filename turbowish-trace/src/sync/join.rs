//! What awaiting a [`crate::task::JoinHandle`] records: the awaiting task
//! waits for a *task* resource, held by the task awaited, so a task that
//! awaits one that (directly or through other resources) waits for it is a
//! cycle like any other.

use std::borrow::Cow;
use std::panic::Location;

use std::sync::Arc;

use super::resource::{
    Access, Class, HolderSlot, Mark, MarkKind, Record, ResourceKind, ResourceState, TaskRef,
};
use crate::resource::{OwnedWait, Resource};

/// One pending await of a task: the task resource (made on the first
/// pending poll, so a handle never awaited costs nothing), its holder
/// record, and the awaiting task's wait record.
#[derive(Debug)]
pub(crate) struct Joining {
    /// Dropped before the holder is released (see `Drop`).
    waiting: Option<OwnedWait>,
    state: Arc<ResourceState>,
    slot: HolderSlot,
    /// Inside the `JoinHandle`, so the walker finds who awaits it in the
    /// awaiting task's opaque state.
    _mark: Mark,
}

impl Joining {
    /// The calling task starts waiting for task `id` (named `name`,
    /// spawned at `location`).
    pub(crate) fn start(
        id: u64,
        name: Cow<'static, str>,
        location: &'static Location<'static>,
    ) -> Joining {
        // A task resource is reached through the handle awaiting it, which
        // carries a mark of its own kind: not the resource's lock mark.
        let state = Resource::declared(ResourceKind::Task, Some(name), Class::Exclusive, location)
            .into_state();
        let slot = state.hold_for_task(TaskRef::Task(id), location);
        let waiting = OwnedWait::new(&state, Record::now(location, Access::Exclusive, false));
        Joining {
            waiting: Some(waiting),
            _mark: Mark::new(MarkKind::Join, &state),
            state,
            slot,
        }
    }

    /// Reports the handle to the walker (precise tracing through the
    /// `JoinHandle`'s `Trace` impl).
    pub(crate) fn trace(&self, tracer: &mut crate::Tracer<'_>) {
        tracer.handle(self.state.id(), None, crate::ownership::HandleKind::Join);
    }
}

impl Drop for Joining {
    fn drop(&mut self) {
        self.waiting = None;
        self.state.release(self.slot);
    }
}
