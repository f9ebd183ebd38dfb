//! Conversion from the live process's types (`turbowish_trace`,
//! `turbowish_alloc`) to the snapshot schema, kept apart from capture so the
//! schema stays plain data and the mapping is in one place.

use std::collections::HashMap;
use std::panic::Location;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use turbowish_snapshot::schema;
use turbowish_trace::frame::FramePath;
use turbowish_trace::ownership::{HandleKind, HandleOwner};
use turbowish_trace::sync::{self, ResourceInfo};
use turbowish_trace::task::{Owner, TaskInfo};
use turbowish_trace::walk::{GuardLocation, Holder, WalkReport};

/// Splits the task report into TurboWish task rows and buckets, keeping its
/// order (biggest live bytes first).
pub(crate) fn tasks_and_buckets(rows: &[TaskInfo]) -> (Vec<schema::Task>, Vec<schema::Bucket>) {
    let mut tasks = Vec::new();
    let mut buckets = Vec::new();
    for row in rows {
        match row.owner {
            Owner::Task(id) => tasks.push(task(id, row)),
            other => buckets.push(schema::Bucket {
                owner: owner(other, |_| None),
                name: row.name.clone(),
                memory: counters(&row.memory),
            }),
        }
    }
    (tasks, buckets)
}

/// The owner a sample is charged to, in schema terms. The allocator may
/// charge a TurboWish task's allocation to its tokio id (tokio allocating for
/// it outside its polls); the task report merges those into the task's row,
/// and so does this, through `tokio_to_task`.
pub(crate) fn owner(owner: Owner, tokio_to_task: impl Fn(u64) -> Option<u64>) -> schema::Owner {
    match owner {
        Owner::Main => schema::Owner::Main,
        Owner::Internal => schema::Owner::Internal,
        Owner::Overflow => schema::Owner::Overflow,
        Owner::Task(id) => schema::Owner::Task(id),
        Owner::TokioTask(id) => match tokio_to_task(id) {
            Some(task) => schema::Owner::Task(task),
            None => schema::Owner::TokioTask(id),
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
        kind: resource_kind(r.kind),
        name: r.name.clone(),
        // tokio's resources are named by where they were created (tokio
        // reports the place as fields, not as a `Location`).
        location: match r.kind {
            sync::ResourceKind::Tokio(_) => r.name.clone(),
            _ => location(r.location),
        },
        holders: r.holders.iter().map(party).collect(),
        extra_holders: r.extra_holders as u64,
        waiters: r.waiters.iter().map(party).collect(),
        permits: r.permits.map(|p| p as u64),
        owners: r.owners.iter().map(handle_owner).collect(),
    }
}

/// A wait chain; `resources` is the graph it was computed from, which names
/// the resource of each link by id.
pub(crate) fn chain(
    c: &turbowish_trace::chains::Chain,
    resources: &[ResourceInfo],
) -> schema::Chain {
    schema::Chain {
        links: c.links.iter().map(|l| link(l, resources)).collect(),
        end: match c.end {
            turbowish_trace::chains::ChainEnd::Untracked => schema::ChainEnd::Untracked,
            turbowish_trace::chains::ChainEnd::HeldByNobody => schema::ChainEnd::HeldByNobody,
            turbowish_trace::chains::ChainEnd::UnnamedHolders => schema::ChainEnd::UnnamedHolders,
            turbowish_trace::chains::ChainEnd::Cycle => schema::ChainEnd::Cycle,
            turbowish_trace::chains::ChainEnd::SendersOutsideTasks => {
                schema::ChainEnd::SendersOutsideTasks
            }
            turbowish_trace::chains::ChainEnd::NoSenders => schema::ChainEnd::NoSenders,
            turbowish_trace::chains::ChainEnd::HolderNotReported => {
                schema::ChainEnd::HolderNotReported
            }
        },
        text: c.to_string(),
    }
}

/// A deadlock; see [`chain`] for `resources`.
pub(crate) fn cycle(
    c: &turbowish_trace::chains::Cycle,
    resources: &[ResourceInfo],
) -> schema::Cycle {
    schema::Cycle {
        links: c.links.iter().map(|l| link(l, resources)).collect(),
        text: c.to_string(),
    }
}

/// The walk's results in schema form. `site_of` gives the site
/// ([`schema::Site::id`]), weight (blocks the sample stands for) and size of
/// a sampled block by its start, so a task's retained sampled blocks sum
/// into per-site estimates.
///
/// The samples were read just before the walk: a sampled block freed in
/// between, its address reused by a block of another size, is left out (one
/// of the same size would be counted at the old sample's site, an error as
/// small as the race is rare).
pub(crate) fn walk(
    report: &WalkReport,
    owner: impl Fn(Owner) -> schema::Owner,
    site_of: impl Fn(usize) -> Option<(u32, f64, usize)>,
) -> schema::Walk {
    // Per task, per site: estimated (bytes, blocks).
    let mut sites: HashMap<u64, HashMap<u32, (f64, f64)>> = HashMap::new();
    for block in &report.located {
        let (Some(Holder::Task { id, .. }), Some((site, weight, size))) =
            (&block.holder, site_of(block.start))
        else {
            continue;
        };
        if size != block.size {
            continue;
        }
        let e = sites.entry(*id).or_default().entry(site).or_default();
        e.0 += weight * block.size as f64;
        e.1 += weight;
    }
    schema::Walk {
        tasks: report
            .tasks
            .iter()
            .map(|t| {
                let mut rows: Vec<schema::RetainedSite> = sites
                    .remove(&t.id)
                    .unwrap_or_default()
                    .into_iter()
                    .map(|(site, (bytes, blocks))| schema::RetainedSite {
                        site,
                        bytes: bytes.round() as u64,
                        blocks: blocks.round() as u64,
                    })
                    .collect();
                rows.sort_by(|a, b| b.bytes.cmp(&a.bytes).then(a.site.cmp(&b.site)));
                schema::TaskWalk {
                    id: t.id,
                    name: t.name.clone(),
                    retained: amount(t.retained),
                    shared: amount(t.shared),
                    unlocated_bytes: t.unlocated_bytes,
                    sites: rows,
                }
            })
            .collect(),
        roots: report
            .roots
            .iter()
            .map(|r| schema::RootWalk {
                name: r.name.clone(),
                retained: amount(r.retained),
                shared: amount(r.shared),
                unlocated_bytes: r.unlocated_bytes,
            })
            .collect(),
        unattributed: merged_unattributed(report, owner),
        census: report
            .census
            .iter()
            .map(|c| schema::CensusRow {
                holder: holder(&c.holder),
                type_name: c.type_name.to_owned(),
                objects: c.objects,
                bytes: c.bytes,
                slack: c.slack,
            })
            .collect(),
        guards: report
            .guards
            .iter()
            .map(|g| schema::GuardWalk {
                resource: g.resource_id,
                resource_name: g.resource_name.clone(),
                holder: holder(&g.holder),
                path: g.path.clone(),
            })
            .collect(),
        stats: schema::WalkStats {
            live_blocks: report.stats.live_blocks,
            blocks_scanned: report.stats.blocks_scanned,
            bytes_scanned: report.stats.bytes_scanned,
            blocks_traced: report.stats.blocks_traced,
            edges: report.stats.edges,
            duration_us: u64::try_from(report.stats.duration.as_micros()).unwrap_or(u64::MAX),
        },
    }
}

/// Moves each owned (movable) guard's holder record to the task the walk
/// found the guard in, so chains and cycles follow the task that can
/// actually release it.
///
/// A holder is corrected only when it is unambiguous: the resource has one
/// movable holder, recorded as A, and the walk found its guard in exactly
/// one task B ≠ A and not in A. A guard found in A and in B too (a stale
/// copy left in A's state by the move) keeps the record's A. A may also be
/// a thread or a tokio task TurboWish did not spawn (the walk sees neither's
/// state): a guard acquired in `main` and moved into a spawned task is the
/// common case. The corrected holder's `parked_in` is cleared: it was A's.
pub(crate) fn correct_guard_holders(resources: &mut [ResourceInfo], guards: &[GuardLocation]) {
    for r in resources.iter_mut() {
        let mut movable = r.holders.iter().enumerate().filter(|(_, p)| p.movable);
        let (Some((at, party)), None) = (movable.next(), movable.next()) else {
            continue;
        };
        let recorded = match party.task {
            sync::TaskRef::Task(id) => Some(id),
            sync::TaskRef::TokioTask(_) | sync::TaskRef::Thread(_) => None,
        };
        let mut found: Vec<(u64, &str)> = guards
            .iter()
            .filter(|g| g.resource_id == r.id)
            .filter_map(|g| match &g.holder {
                Holder::Task { id, name } => Some((*id, name.as_str())),
                _ => None,
            })
            .collect();
        found.sort_unstable();
        found.dedup_by_key(|f| f.0);
        if let [(id, name)] = found[..] {
            if Some(id) != recorded {
                let party = &mut r.holders[at];
                party.task = sync::TaskRef::Task(id);
                party.task_name = name.to_owned();
                party.parked_in = None;
            }
        }
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

pub(crate) fn resource_kind(k: sync::ResourceKind) -> schema::ResourceKind {
    match k {
        sync::ResourceKind::Mutex => schema::ResourceKind::Mutex,
        sync::ResourceKind::RwLock => schema::ResourceKind::RwLock,
        sync::ResourceKind::Semaphore => schema::ResourceKind::Semaphore,
        sync::ResourceKind::Channel => schema::ResourceKind::Channel,
        sync::ResourceKind::Task => schema::ResourceKind::Task,
        sync::ResourceKind::Declared(kind) => schema::ResourceKind::Declared(kind.to_owned()),
        sync::ResourceKind::Tokio(kind) => schema::ResourceKind::Tokio(kind.name().to_owned()),
    }
}

pub(crate) fn access(a: sync::Access) -> schema::Access {
    match a {
        sync::Access::Exclusive => schema::Access::Exclusive,
        sync::Access::Shared => schema::Access::Shared,
        sync::Access::Permits(n) => schema::Access::Permits(n),
        sync::Access::Send => schema::Access::Send,
        sync::Access::Receive => schema::Access::Receive,
    }
}

pub(crate) fn state(s: turbowish_trace::task::TaskState) -> schema::TaskState {
    match s {
        turbowish_trace::task::TaskState::Idle => schema::TaskState::Idle,
        turbowish_trace::task::TaskState::Running => schema::TaskState::Running,
        turbowish_trace::task::TaskState::Completed => schema::TaskState::Completed,
        turbowish_trace::task::TaskState::Panicked => schema::TaskState::Panicked,
        turbowish_trace::task::TaskState::Aborted => schema::TaskState::Aborted,
    }
}

/// A link names its resource by label (`Mutex "x"`); the schema by id. The
/// resource is the one whose label matches and that lists the link's
/// waiter (0 if none does, which the graph the chain came from rules out).
fn link(l: &turbowish_trace::chains::Link, resources: &[ResourceInfo]) -> schema::Link {
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
        unlisted_holders: l.unlisted_holders as u64,
    }
}

pub(crate) fn task_ref(t: sync::TaskRef) -> schema::TaskRef {
    match t {
        sync::TaskRef::Task(id) => schema::TaskRef::Task(id),
        sync::TaskRef::TokioTask(id) => schema::TaskRef::TokioTask(id),
        sync::TaskRef::Thread(n) => schema::TaskRef::Thread(n),
    }
}

fn handle_owner(o: &HandleOwner) -> schema::HandleOwner {
    schema::HandleOwner {
        task: o.task.map(task_ref),
        name: o.name.clone(),
        handle: match o.handle {
            HandleKind::Sender => schema::HandleKind::Sender,
            HandleKind::Receiver => schema::HandleKind::Receiver,
            HandleKind::Lock => schema::HandleKind::Lock,
            HandleKind::Guard => schema::HandleKind::Guard,
            HandleKind::Join => schema::HandleKind::Join,
        },
        path: o.path.clone(),
    }
}

fn party(p: &sync::Party) -> schema::Party {
    schema::Party {
        task: task_ref(p.task),
        task_name: p.task_name.clone(),
        frames: frame_names(&p.frames),
        // tokio says no place for what it reports.
        location: match p.provenance {
            sync::Provenance::Tokio => String::new(),
            _ => location(p.location),
        },
        since_ms: p.since.as_millis() as u64,
        access: access(p.access),
        movable: p.movable,
        parked_in: p
            .parked_in
            .map(|path| frame_names(&path))
            .unwrap_or_default(),
        provenance: provenance(&p.provenance),
    }
}

pub(crate) fn provenance(p: &sync::Provenance) -> schema::Provenance {
    match p {
        sync::Provenance::Recorded => schema::Provenance::Recorded,
        sync::Provenance::Owns { path } => schema::Provenance::Owns { path: path.clone() },
        sync::Provenance::Tokio => schema::Provenance::Tokio,
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

fn amount(a: turbowish_trace::walk::Amount) -> schema::Amount {
    schema::Amount {
        bytes: a.bytes,
        blocks: a.blocks,
    }
}

fn holder(h: &Holder) -> schema::WalkHolder {
    match h {
        Holder::Task { id, name } => schema::WalkHolder::Task {
            id: *id,
            name: name.clone(),
        },
        Holder::Root { name } => schema::WalkHolder::Root { name: name.clone() },
        Holder::Shared => schema::WalkHolder::Shared,
    }
}

/// Unattributed rows in schema terms; owners the mapping merges (a task's
/// tokio id and its TurboWish id) become one row. Biggest first.
fn merged_unattributed(
    report: &WalkReport,
    owner: impl Fn(Owner) -> schema::Owner,
) -> Vec<schema::UnattributedWalk> {
    let mut rows: Vec<schema::UnattributedWalk> = Vec::new();
    for u in &report.unattributed {
        let who = owner(u.owner);
        match rows.iter_mut().find(|r| r.owner == who) {
            Some(row) => {
                row.amount.bytes += u.amount.bytes;
                row.amount.blocks += u.amount.blocks;
            }
            None => rows.push(schema::UnattributedWalk {
                owner: who,
                amount: amount(u.amount),
            }),
        }
    }
    rows.sort_by(|a, b| {
        b.amount
            .bytes
            .cmp(&a.amount.bytes)
            .then(a.owner.cmp(&b.owner))
    });
    rows
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ledger(holder: u64, movable: bool) -> ResourceInfo {
        ResourceInfo {
            id: 9,
            kind: sync::ResourceKind::Mutex,
            name: "ledger".to_owned(),
            location: Location::caller(),
            holders: vec![sync::Party {
                task: sync::TaskRef::Task(holder),
                task_name: format!("t{holder}"),
                frames: FramePath::default(),
                location: Location::caller(),
                since: Duration::ZERO,
                access: sync::Access::Exclusive,
                movable,
                parked_in: Some(FramePath::default()),
                provenance: sync::Provenance::Recorded,
                slot: Some(0),
            }],
            extra_holders: 0,
            waiters: Vec::new(),
            permits: None,
            owners: Vec::new(),
        }
    }

    fn found_in(task: u64) -> GuardLocation {
        GuardLocation {
            resource_id: 9,
            resource_name: "ledger".to_owned(),
            holder: Holder::Task {
                id: task,
                name: format!("t{task}"),
            },
            path: format!("t{task} › (opaque state)"),
        }
    }

    fn holder_after(resource: ResourceInfo, guards: &[GuardLocation]) -> (u64, String, bool) {
        let mut resources = vec![resource];
        correct_guard_holders(&mut resources, guards);
        let party = &resources[0].holders[0];
        let sync::TaskRef::Task(id) = party.task else {
            unreachable!("holders here are tasks")
        };
        (id, party.task_name.clone(), party.parked_in.is_some())
    }

    #[test]
    fn a_moved_guard_is_credited_to_the_task_holding_it() {
        assert_eq!(
            holder_after(ledger(1, true), &[found_in(2)]),
            (2, "t2".to_owned(), false)
        );
    }

    #[test]
    fn a_guard_moved_from_a_thread_into_a_task_is_credited_to_it() {
        let mut from_main = ledger(1, true);
        from_main.holders[0].task = sync::TaskRef::Thread(1);
        assert_eq!(
            holder_after(from_main, &[found_in(2)]),
            (2, "t2".to_owned(), false)
        );
    }

    #[test]
    fn ambiguous_or_fixed_holders_are_left_alone() {
        let kept = (1, "t1".to_owned(), true);
        // A stale copy in the acquiring task too: no way to tell.
        assert_eq!(
            holder_after(ledger(1, true), &[found_in(1), found_in(2)]),
            kept
        );
        // Found in two other tasks.
        assert_eq!(
            holder_after(ledger(1, true), &[found_in(2), found_in(3)]),
            kept
        );
        // Not movable: the record is right by construction.
        assert_eq!(holder_after(ledger(1, false), &[found_in(2)]), kept);
        // Not found at all.
        assert_eq!(holder_after(ledger(1, true), &[]), kept);
    }
}
