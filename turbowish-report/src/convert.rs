//! Conversion from the live process's types (`turbowish_trace`,
//! `turbowish_alloc`) to the snapshot schema, kept apart from capture so the
//! schema stays plain data and the mapping is in one place.

use std::panic::Location;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use turbowish_alloc::Owner;
use turbowish_trace::sync::{self, ResourceInfo};
use turbowish_trace::{FramePath, TaskInfo, TaskKind};

use crate::schema;

/// Splits the task report into TurboWish task rows and buckets, keeping its
/// order (biggest live bytes first).
pub(crate) fn tasks_and_buckets(rows: &[TaskInfo]) -> (Vec<schema::Task>, Vec<schema::Bucket>) {
    let mut tasks = Vec::new();
    let mut buckets = Vec::new();
    for row in rows {
        let memory = counters(&row.memory);
        let (owner, name) = match row.kind {
            TaskKind::Traced(id) => {
                tasks.push(task(id, row));
                continue;
            }
            TaskKind::Tokio(id) => (schema::OwnerRef::TokioTask(id), format!("tokio task {id}")),
            TaskKind::Untracked => (schema::OwnerRef::Main, "main (outside tasks)".to_owned()),
            TaskKind::Internal => (
                schema::OwnerRef::Internal,
                "internal (turbowish)".to_owned(),
            ),
            TaskKind::Overflow => (schema::OwnerRef::Overflow, "overflow".to_owned()),
        };
        buckets.push(schema::Bucket {
            owner,
            name,
            memory,
        });
    }
    (tasks, buckets)
}

/// The owner a sample is charged to, in schema terms. The allocator may
/// charge a TurboWish task's allocation to its tokio id (tokio allocating for
/// it outside its polls); the task report merges those into the task's row,
/// and so does this, through `tokio_to_task`.
pub(crate) fn owner(owner: Owner, tokio_to_task: impl Fn(u64) -> Option<u64>) -> schema::OwnerRef {
    match owner {
        Owner::Untracked => schema::OwnerRef::Main,
        Owner::Internal => schema::OwnerRef::Internal,
        Owner::Overflow => schema::OwnerRef::Overflow,
        Owner::Task(id) => schema::OwnerRef::Task(id),
        Owner::TokioTask(id) => match tokio_to_task(id) {
            Some(task) => schema::OwnerRef::Task(task),
            None => schema::OwnerRef::TokioTask(id),
        },
    }
}

/// The allocator's counters in schema form.
pub(crate) fn counters(c: &turbowish_alloc::Counters) -> schema::Counters {
    schema::Counters {
        live_bytes: c.live_bytes,
        live_blocks: c.live_blocks,
        total_bytes: c.total_bytes,
        total_blocks: c.total_blocks,
        peak_live_bytes: c.peak_live_bytes,
    }
}

/// The process-wide counters as the sums of the rows, with the allocator's
/// process-wide `peak` (a sum of per-task peaks would be no peak).
pub(crate) fn totals(rows: &[TaskInfo], peak: u64) -> schema::Counters {
    let mut sum = schema::Counters::default();
    for row in rows {
        let c = &row.memory;
        sum.live_bytes = sum.live_bytes.wrapping_add(c.live_bytes);
        sum.live_blocks = sum.live_blocks.wrapping_add(c.live_blocks);
        sum.total_bytes += c.total_bytes;
        sum.total_blocks += c.total_blocks;
    }
    sum.peak_live_bytes = peak.max(sum.live_bytes);
    sum
}

/// A resource with its holders and waiters.
pub(crate) fn resource(r: &ResourceInfo) -> schema::Resource {
    schema::Resource {
        id: r.id,
        kind: match r.kind {
            sync::ResourceKind::Mutex => schema::ResourceKind::Mutex,
            sync::ResourceKind::RwLock => schema::ResourceKind::RwLock,
            sync::ResourceKind::Semaphore => schema::ResourceKind::Semaphore,
            sync::ResourceKind::Channel => schema::ResourceKind::Channel,
        },
        name: r.name.clone(),
        location: location(r.location),
        holders: r.holders.iter().map(party).collect(),
        extra_holders: r.extra_holders as u64,
        waiters: r.waiters.iter().map(party).collect(),
        permits: r.permits.map(|p| p as u64),
    }
}

/// A wait chain; `resources` is the graph it was computed from, which names
/// the resource of each link by id.
pub(crate) fn chain(c: &turbowish_trace::Chain, resources: &[ResourceInfo]) -> schema::Chain {
    schema::Chain {
        links: c.links.iter().map(|l| link(l, resources)).collect(),
        end: match c.end {
            turbowish_trace::ChainEnd::Untracked => schema::ChainEnd::Untracked,
            turbowish_trace::ChainEnd::HeldByNobody => schema::ChainEnd::HeldByNobody,
            turbowish_trace::ChainEnd::UnnamedHolders => schema::ChainEnd::UnnamedHolders,
            turbowish_trace::ChainEnd::Cycle => schema::ChainEnd::Cycle,
        },
        text: c.to_string(),
    }
}

/// A deadlock; see [`chain`] for `resources`.
pub(crate) fn cycle(c: &turbowish_trace::Cycle, resources: &[ResourceInfo]) -> schema::Cycle {
    schema::Cycle {
        links: c.links.iter().map(|l| link(l, resources)).collect(),
        text: c.to_string(),
    }
}

/// Milliseconds since the Unix epoch (0 for times before it).
pub(crate) fn epoch_ms(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

fn task(id: u64, row: &TaskInfo) -> schema::Task {
    schema::Task {
        id,
        name: row.name.clone(),
        location: row.location.map(location),
        state: row.state.map(state),
        tokio_id: row.tokio_id,
        created_at_ms: row.created_at.map(epoch_ms),
        polls: row.polls,
        busy_ns: duration_ns(row.busy),
        future_size: row.future_size.map(|s| s as u64),
        memory: counters(&row.memory),
    }
}

fn state(s: turbowish_trace::TaskState) -> schema::TaskState {
    match s {
        turbowish_trace::TaskState::Idle => schema::TaskState::Idle,
        turbowish_trace::TaskState::Running => schema::TaskState::Running,
        turbowish_trace::TaskState::Completed => schema::TaskState::Completed,
        turbowish_trace::TaskState::Panicked => schema::TaskState::Panicked,
        turbowish_trace::TaskState::Aborted => schema::TaskState::Aborted,
    }
}

/// A link names its resource by label (`Mutex "x"`); the schema by id. The
/// resource is the one whose label matches and that lists the link's
/// waiter (0 if none does, which the graph the chain came from rules out).
fn link(l: &turbowish_trace::Link, resources: &[ResourceInfo]) -> schema::Link {
    let resource = resources
        .iter()
        .find(|r| {
            r.waiters
                .iter()
                .any(|w| w.task == l.waiter.task && w.location == l.waiter.location)
                && format!("{} \"{}\"", r.kind, r.name) == l.resource
        })
        .map_or(0, |r| r.id);
    schema::Link {
        waiter: party(&l.waiter),
        resource,
        resource_label: l.resource.clone(),
        holders: l.holders.iter().map(party).collect(),
        extra_holders: l.extra_holders as u64,
    }
}

fn party(p: &sync::Party) -> schema::Party {
    schema::Party {
        task: match p.task {
            sync::TaskRef::Traced(id) => schema::TaskRef::Task(id),
            sync::TaskRef::Tokio(id) => schema::TaskRef::TokioTask(id),
            sync::TaskRef::Thread(n) => schema::TaskRef::Thread(n),
        },
        task_name: p.task_name.clone(),
        frames: frame_names(&p.frames),
        location: location(p.location),
        since_ms: p.since.as_millis() as u64,
        access: match p.access {
            sync::Access::Exclusive => schema::Access::Exclusive,
            sync::Access::Shared => schema::Access::Shared,
            sync::Access::Permits(n) => schema::Access::Permits(n),
            sync::Access::Send => schema::Access::Send,
            sync::Access::Receive => schema::Access::Receive,
        },
        movable: p.movable,
        parked_in: p
            .parked_in
            .map(|path| frame_names(&path))
            .unwrap_or_default(),
    }
}

fn frame_names(path: &FramePath) -> Vec<String> {
    path.names().iter().map(|f| (*f).to_owned()).collect()
}

fn location(l: &Location<'_>) -> String {
    format!("{}:{}:{}", l.file(), l.line(), l.column())
}

fn duration_ns(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}
