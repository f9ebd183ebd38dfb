//! Registering every tokio task, library-spawned ones included, through
//! tokio's unstable runtime hooks (`--cfg tokio_unstable` and the
//! `tokio-unstable` feature).

use std::cell::Cell;
use std::sync::{Arc, LazyLock};

use dashmap::DashMap;
use turbowish_alloc::{context, TaskTag};

use crate::registry::{self, TaskEntry, TaskState};

/// Entries of tasks registered by the hooks, by tokio task id. The hooks
/// only see tokio's ids, so each poll looks its task up here.
static HOOKED: LazyLock<DashMap<u64, Arc<TaskEntry>>> = LazyLock::new(DashMap::new);

thread_local! {
    /// Set while `crate::spawn` calls `tokio::spawn`: that task registers
    /// itself, so the spawn hook leaves it alone.
    pub(crate) static SPAWNING_TRACED: Cell<bool> = const { Cell::new(false) };
    /// What `before_poll` replaced, for `after_poll` to put back. Polls of
    /// hooked tasks do not nest (tokio forbids a runtime inside a task), so
    /// one level suffices.
    static SAVED: Cell<Option<context::Saved>> = const { Cell::new(None) };
}

/// Installs TurboWish's task hooks on a tokio runtime builder, so that every
/// task the runtime spawns gets a registry entry (named after its spawn
/// location) and has its allocations charged to it, with no change to the
/// code that spawns it.
///
/// ```ignore
/// let mut builder = tokio::runtime::Builder::new_multi_thread();
/// turbowish_trace::install_hooks(&mut builder);
/// let runtime = builder.enable_all().build()?;
/// ```
pub fn install_hooks(builder: &mut tokio::runtime::Builder) -> &mut tokio::runtime::Builder {
    builder
        .on_task_spawn(|meta| spawned(tokio_id(meta.id()), meta.spawned_at()))
        .on_before_task_poll(|meta| before_poll(tokio_id(meta.id())))
        .on_after_task_poll(|meta| after_poll(tokio_id(meta.id())))
        .on_task_terminate(|meta| terminated(tokio_id(meta.id())))
}

fn tokio_id(id: tokio::task::Id) -> u64 {
    turbowish_alloc::tokio_task_number(id)
}

fn spawned(id: u64, location: &'static std::panic::Location<'static>) {
    if SPAWNING_TRACED.with(Cell::get) {
        return;
    }
    let _internal = turbowish_alloc::internal();
    let name = format!("{}:{}", location.file(), location.line());
    let entry = registry::register(name.into(), location, TaskTag::new(), None);
    entry.set_tokio_id_raw(id);
    HOOKED.insert(id, entry);
}

fn before_poll(id: u64) {
    let Some(entry) = HOOKED.get(&id).map(|e| e.value().clone()) else {
        return;
    };
    entry
        .polls
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    entry.set_state(TaskState::Running);
    // The map keeps the entry (and so its tag) alive until `terminated`,
    // which tokio calls after the last `after_poll`.
    let saved = context::swap(Some(&entry.tag));
    SAVED.with(|s| s.set(Some(saved)));
}

fn after_poll(id: u64) {
    if let Some(saved) = SAVED.with(Cell::take) {
        context::restore(saved);
    }
    if let Some(entry) = HOOKED.get(&id) {
        if entry.state() == TaskState::Running {
            entry.set_state(TaskState::Idle);
        }
    }
}

fn terminated(id: u64) {
    let _internal = turbowish_alloc::internal();
    if let Some((_, entry)) = HOOKED.remove(&id) {
        entry.set_state(TaskState::Completed);
        registry::finished(&entry);
    }
}
