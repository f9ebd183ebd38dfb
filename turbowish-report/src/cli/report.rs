//! `turbowish report`: the per-task memory table with its summary, and one
//! task's top allocation sites.

use std::collections::HashMap;
use std::fmt::{self, Write as _};

use serde::Serialize;

use super::names::{percent, printable, Names};
use crate::human_bytes;
use crate::schema::{
    Amount, Counters, OwnerRef, ResourceKind, Snapshot, TaskState, TaskWalk, WalkHolder,
};

/// How the memory table orders its rows: biggest first, or by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SortKey {
    /// Live bytes.
    #[default]
    Live,
    /// Live blocks.
    Blocks,
    /// Bytes ever allocated.
    Total,
    /// Peak live bytes.
    Peak,
    /// Name, alphabetically.
    Name,
}

/// The per-task memory table of a snapshot and its summary, as `turbowish
/// report` prints it (`Display`) or serialises it (`--json`).
///
/// ```
/// # let snap: turbowish_report::Snapshot = serde_json::from_str(include_str!("../../tests/fixtures/service.json")).unwrap();
/// use turbowish_report::{MemoryReport, SortKey};
/// let report = MemoryReport::new(&snap, SortKey::Live, 10);
/// assert_eq!(report.totals.live_bytes, snap.totals.live_bytes);
/// assert!(report.to_string().starts_with("TASK"));
/// ```
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MemoryReport {
    /// The rows shown, in order.
    pub rows: Vec<MemoryRow>,
    /// The rows beyond `top`, summed into one (named `(N more)`).
    pub rest: Option<MemoryRow>,
    /// The allocator-wide counters (the snapshot's `totals`).
    pub totals: Counters,
    /// The figures of the summary paragraph.
    pub summary: Summary,
}

/// One line of the memory table: a task, tasks sharing a name merged, or a
/// bucket (memory outside named tasks).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MemoryRow {
    /// Task name or bucket name.
    pub name: String,
    /// Whether the row is a bucket rather than tasks.
    pub bucket: bool,
    /// Ids of the tasks merged into this row (empty for a bucket).
    pub task_ids: Vec<u64>,
    /// Spawn location, when all the row's tasks agree.
    pub location: Option<String>,
    /// State, when all the row's tasks agree.
    pub state: Option<TaskState>,
    /// Largest future among the row's tasks, in bytes.
    pub future_size: Option<u64>,
    /// Summed counters. For merged tasks, `peak_live_bytes` is the sum of
    /// their peaks, which they need not have reached at the same time.
    pub memory: Counters,
    /// Summed retained and shared memory, when the snapshot has a heap walk
    /// and the row is tasks (buckets retain nothing: they are no roots).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub walk: Option<RowWalk>,
}

/// A row's memory as the heap walk attributed it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct RowWalk {
    /// Reachable only from the row's task(s) (each task's alone, summed).
    pub retained: Amount,
    /// Reachable from the row's task(s) and other roots too.
    pub shared: Amount,
}

/// The figures of the report's closing paragraph.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Summary {
    /// Live bytes of the whole process (as TurboWish counted them).
    pub live_bytes: u64,
    /// Live blocks of the whole process.
    pub live_blocks: u64,
    /// Tasks in the snapshot.
    pub tasks: usize,
    /// Distinct task names.
    pub task_names: usize,
    /// Live bytes outside TurboWish tasks: `main`, tokio tasks not spawned
    /// through TurboWish, `overflow`.
    pub untracked_live_bytes: u64,
    /// Live bytes TurboWish allocated for itself.
    pub internal_live_bytes: u64,
    /// Wait chains found.
    pub chains: usize,
    /// Deadlocks (cycles) found.
    pub deadlocks: usize,
    /// Names of the tasks in a deadlock, in cycle order.
    pub deadlocked_tasks: Vec<String>,
    /// Live memory the heap walk found reachable from no task or root
    /// (statics, thread stacks, leaks), when the snapshot has a walk.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unattributed: Option<Amount>,
}

impl MemoryReport {
    /// Builds the table: same-named tasks merged, buckets that never
    /// allocated left out, rows ordered by `sort`, at most `top` shown.
    pub fn new(snap: &Snapshot, sort: SortKey, top: usize) -> MemoryReport {
        let mut rows: Vec<MemoryRow> = Vec::new();
        let mut by_name: HashMap<&str, usize> = HashMap::new();
        for task in &snap.tasks {
            match by_name.get(task.name.as_str()) {
                Some(&i) => {
                    let row = &mut rows[i];
                    row.task_ids.push(task.id);
                    add(&mut row.memory, &task.memory);
                    row.future_size = row.future_size.max(task.future_size);
                    if row.location != task.location {
                        row.location = None;
                    }
                    if row.state != task.state {
                        row.state = None;
                    }
                    if let (Some(sum), Some(w)) = (&mut row.walk, task_walk(snap, task.id)) {
                        add_walk(sum, w);
                    }
                }
                None => {
                    by_name.insert(&task.name, rows.len());
                    rows.push(MemoryRow {
                        name: task.name.clone(),
                        bucket: false,
                        task_ids: vec![task.id],
                        location: task.location.clone(),
                        state: task.state,
                        future_size: task.future_size,
                        memory: task.memory,
                        walk: snap.walk.as_ref().map(|_| {
                            let mut sum = RowWalk::default();
                            if let Some(w) = task_walk(snap, task.id) {
                                add_walk(&mut sum, w);
                            }
                            sum
                        }),
                    });
                }
            }
        }
        for bucket in &snap.buckets {
            if bucket.memory.total_blocks == 0 {
                continue;
            }
            rows.push(MemoryRow {
                name: bucket.name.clone(),
                bucket: true,
                task_ids: Vec::new(),
                location: None,
                state: None,
                future_size: None,
                memory: bucket.memory,
                walk: None,
            });
        }
        rows.sort_by(|a, b| {
            let (x, y) = (&a.memory, &b.memory);
            let key = match sort {
                SortKey::Live => y.live_bytes.cmp(&x.live_bytes),
                SortKey::Blocks => y.live_blocks.cmp(&x.live_blocks),
                SortKey::Total => y.total_bytes.cmp(&x.total_bytes),
                SortKey::Peak => y.peak_live_bytes.cmp(&x.peak_live_bytes),
                SortKey::Name => std::cmp::Ordering::Equal,
            };
            key.then_with(|| a.name.cmp(&b.name))
        });
        let hidden = rows.split_off(top.min(rows.len()));
        let rest = (!hidden.is_empty()).then(|| {
            let mut memory = Counters::default();
            for row in &hidden {
                add(&mut memory, &row.memory);
            }
            MemoryRow {
                name: format!("({} more)", hidden.len()),
                bucket: hidden.iter().all(|r| r.bucket),
                task_ids: hidden.iter().flat_map(|r| r.task_ids.clone()).collect(),
                location: None,
                state: None,
                future_size: None,
                memory,
                walk: snap.walk.as_ref().map(|_| {
                    let mut sum = RowWalk::default();
                    for w in hidden.iter().filter_map(|r| r.walk.as_ref()) {
                        add_amount(&mut sum.retained, &w.retained);
                        add_amount(&mut sum.shared, &w.shared);
                    }
                    sum
                }),
            }
        });
        MemoryReport {
            rows,
            rest,
            totals: snap.totals,
            summary: summary(snap, by_name.len()),
        }
    }
}

fn summary(snap: &Snapshot, task_names: usize) -> Summary {
    let mut untracked = 0u64;
    let mut internal = 0u64;
    for bucket in &snap.buckets {
        match bucket.owner {
            OwnerRef::Internal => internal = internal.saturating_add(bucket.memory.live_bytes),
            OwnerRef::Task(_) => {}
            _ => untracked = untracked.saturating_add(bucket.memory.live_bytes),
        }
    }
    let mut deadlocked_tasks = Vec::new();
    for cycle in &snap.cycles {
        for link in &cycle.links {
            if !deadlocked_tasks.contains(&link.waiter.task_name) {
                deadlocked_tasks.push(link.waiter.task_name.clone());
            }
        }
    }
    Summary {
        live_bytes: snap.totals.live_bytes,
        live_blocks: snap.totals.live_blocks,
        tasks: snap.tasks.len(),
        task_names,
        untracked_live_bytes: untracked,
        internal_live_bytes: internal,
        chains: snap.chains.len(),
        deadlocks: snap.cycles.len(),
        deadlocked_tasks,
        unattributed: snap.walk.as_ref().map(|w| {
            let mut sum = Amount::default();
            for u in &w.unattributed {
                add_amount(&mut sum, &u.amount);
            }
            sum
        }),
    }
}

/// A task's walk row, by TurboWish id.
fn task_walk(snap: &Snapshot, id: u64) -> Option<&TaskWalk> {
    snap.walk.as_ref()?.tasks.iter().find(|t| t.id == id)
}

fn add_walk(sum: &mut RowWalk, w: &TaskWalk) {
    add_amount(&mut sum.retained, &w.retained);
    add_amount(&mut sum.shared, &w.shared);
}

fn add_amount(sum: &mut Amount, a: &Amount) {
    sum.bytes = sum.bytes.saturating_add(a.bytes);
    sum.blocks = sum.blocks.saturating_add(a.blocks);
}

/// The widest a name column grows: a longer name overflows its column
/// (pushing the rest of its row right) rather than widening every row,
/// and the formatter refuses widths from 65,536 on anyway.
const MAX_NAME_WIDTH: usize = 60;

impl fmt::Display for MemoryReport {
    /// The table, a blank line, and the summary paragraph.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let width = self
            .rows
            .iter()
            .chain(&self.rest)
            .map(|r| r.name.chars().count())
            .max()
            .unwrap_or(0)
            .clamp(5, MAX_NAME_WIDTH);
        let walked = self.summary.unattributed.is_some();
        write!(
            f,
            "{:<width$}  {:>5}  {:>10}  {:>8}  ",
            "TASK", "TASKS", "LIVE", "BLOCKS"
        )?;
        if walked {
            write!(f, "{:>10}  {:>10}  ", "RETAINED", "SHARED")?;
        }
        writeln!(
            f,
            "{:>10}  {:>8}  {:>10}  {:>9}  {:<9}  LOCATION",
            "ALLOCATED", "ALLOCS", "PEAK", "FUTURE", "STATE"
        )?;
        for row in self.rows.iter().chain(&self.rest) {
            let tasks = if row.bucket {
                "-".to_owned()
            } else {
                row.task_ids.len().to_string()
            };
            let future = match row.future_size {
                Some(size) if size > turbowish_trace::LARGE_FUTURE_BYTES as u64 => {
                    format!("!{}", human_bytes(size))
                }
                Some(size) => human_bytes(size),
                None => "-".to_owned(),
            };
            let state = match row.state {
                Some(state) => state_name(state),
                None => "-",
            };
            let walk = walked.then(|| match &row.walk {
                Some(w) => (human_bytes(w.retained.bytes), human_bytes(w.shared.bytes)),
                None => ("-".to_owned(), "-".to_owned()),
            });
            line(
                f,
                width,
                &printable(&row.name),
                &tasks,
                &row.memory,
                walk,
                &human_bytes(row.memory.peak_live_bytes),
                &future,
                state,
                row.location.as_deref().unwrap_or("-"),
            )?;
        }
        // The allocator's own peak is the process peak, unlike a sum of rows.
        line(
            f,
            width,
            "total",
            "",
            &self.totals,
            walked.then(|| {
                let mut retained = 0u64;
                let mut shared = 0u64;
                for w in self
                    .rows
                    .iter()
                    .chain(&self.rest)
                    .filter_map(|r| r.walk.as_ref())
                {
                    retained = retained.saturating_add(w.retained.bytes);
                    shared = shared.saturating_add(w.shared.bytes);
                }
                (human_bytes(retained), human_bytes(shared))
            }),
            &human_bytes(self.totals.peak_live_bytes),
            "-",
            "-",
            "-",
        )?;
        writeln!(f)?;
        writeln!(f, "{}", self.summary)
    }
}

#[allow(clippy::too_many_arguments)]
fn line(
    f: &mut fmt::Formatter<'_>,
    width: usize,
    name: &str,
    tasks: &str,
    c: &Counters,
    walk: Option<(String, String)>,
    peak: &str,
    future: &str,
    state: &str,
    location: &str,
) -> fmt::Result {
    write!(
        f,
        "{name:<width$}  {tasks:>5}  {:>10}  {:>8}  ",
        human_bytes(c.live_bytes),
        c.live_blocks,
    )?;
    if let Some((retained, shared)) = walk {
        write!(f, "{retained:>10}  {shared:>10}  ")?;
    }
    writeln!(
        f,
        "{:>10}  {:>8}  {peak:>10}  {future:>9}  {state:<9}  {location}",
        human_bytes(c.total_bytes),
        c.total_blocks,
    )
}

impl fmt::Display for Summary {
    /// One paragraph: totals, the share outside tasks, tasks, deadlocks.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} live in {} blocks across {} {} ({} {}). {} ({:.1}%) is outside TurboWish tasks (main, other tokio tasks, overflow) and {} ({:.1}%) is TurboWish's own. ",
            human_bytes(self.live_bytes),
            self.live_blocks,
            self.tasks,
            plural(self.tasks, "task", "tasks"),
            self.task_names,
            plural(self.task_names, "name", "names"),
            human_bytes(self.untracked_live_bytes),
            percent(self.untracked_live_bytes, self.live_bytes),
            human_bytes(self.internal_live_bytes),
            percent(self.internal_live_bytes, self.live_bytes),
        )?;
        if let Some(dark) = &self.unattributed {
            write!(
                f,
                "The heap walk found {} ({:.1}%) in {} {} reachable from no task or root (statics, thread stacks, leaks). ",
                human_bytes(dark.bytes),
                percent(dark.bytes, self.live_bytes),
                dark.blocks,
                block_word(dark.blocks),
            )?;
        }
        if self.deadlocks == 0 {
            write!(
                f,
                "No deadlock; {} wait {}",
                self.chains,
                plural(self.chains, "chain", "chains")
            )?;
            if self.chains > 0 {
                f.write_str(" (see `turbowish chains`)")?;
            }
            f.write_str(".")
        } else {
            let names: Vec<String> = self
                .deadlocked_tasks
                .iter()
                .map(|n| format!("\"{n}\""))
                .collect();
            write!(
                f,
                "DEADLOCK: {} {} among tasks {} (see `turbowish chains`).",
                self.deadlocks,
                plural(self.deadlocks, "cycle", "cycles"),
                names.join(", ")
            )
        }
    }
}

/// One task's (or same-named tasks', or a bucket's) top allocation sites,
/// as `turbowish report --task` prints them.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TaskSites {
    /// The name of the selected owner(s).
    pub name: String,
    /// Ids of the selected tasks (empty for a bucket).
    pub task_ids: Vec<u64>,
    /// Their summed counters (exact, unlike the site estimates).
    pub memory: Counters,
    /// The snapshot's sampling interval (0: no sites were recorded).
    pub sample_interval: u64,
    /// Sum of the estimates over all the owner's sites.
    pub sampled_live_bytes: u64,
    /// The sites shown, biggest estimate first.
    pub sites: Vec<SiteRow>,
    /// Sites beyond the ones shown.
    pub more_sites: usize,
    /// What the heap walk found for the selected task(s), when the snapshot
    /// has a walk.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub walk: Option<RetainedSummary>,
}

/// The heap walk's view of the selected task(s): what they retain, by site
/// and by type, the guards in their state, and what they allocated that
/// nothing reaches.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RetainedSummary {
    /// Whether the selection is a bucket, which is no root and so retains
    /// nothing: only `unattributed` applies.
    pub bucket: bool,
    /// Reachable only from the task(s) (per task, summed).
    pub retained: Amount,
    /// Reachable from them and from other roots.
    pub shared: Amount,
    /// Estimated bytes `Trace` impls reported without an address.
    pub unlocated_bytes: u64,
    /// Top retained sites, biggest first (estimates from sampled blocks).
    pub sites: Vec<SiteRow>,
    /// Retained sites beyond the ones shown.
    pub more_sites: usize,
    /// Types `Trace` named among the retained blocks, biggest first.
    pub census: Vec<CensusLine>,
    /// Held guards found in their state.
    pub guards: Vec<GuardLine>,
    /// Memory they allocated that the walk found reachable from no root.
    pub unattributed: Amount,
}

/// One type of a [`RetainedSummary`]'s census.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CensusLine {
    /// The type.
    pub type_name: String,
    /// Blocks.
    pub objects: u64,
    /// Bytes.
    pub bytes: u64,
    /// Unused capacity.
    pub slack: u64,
}

/// A guard of a [`RetainedSummary`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GuardLine {
    /// The resource's id.
    pub resource: u64,
    /// Its label (`Mutex "accounts[2]"`), or its name when the snapshot
    /// does not list it.
    pub resource_label: String,
    /// Path from the task's root to the guard.
    pub path: String,
}

/// One allocation site of a [`TaskSites`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SiteRow {
    /// The site id in the snapshot.
    pub site: u32,
    /// Estimated live bytes the selected owner(s) allocated here.
    pub live_bytes: u64,
    /// Estimated live blocks.
    pub live_blocks: u64,
    /// The stack, innermost frame first.
    pub frames: Vec<SiteFrame>,
}

/// One frame of a [`SiteRow`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SiteFrame {
    /// Function name (the address, `0x…`, when unsymbolised).
    pub function: String,
    /// Source file, where known.
    pub file: Option<String>,
    /// Line, where known.
    pub line: Option<u32>,
}

/// `--task` named no task or bucket of the snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoSuchTask {
    /// What was asked for.
    pub query: String,
}

impl fmt::Display for NoSuchTask {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "no task named or numbered \"{}\" (and no bucket of that name) in the snapshot",
            self.query
        )
    }
}

impl std::error::Error for NoSuchTask {}

/// The top `top` allocation sites of the tasks named `query` (all of them),
/// else of the task whose id is `query`, else of the bucket named `query`.
///
/// ```
/// # let snap: turbowish_report::Snapshot = serde_json::from_str(include_str!("../../tests/fixtures/service.json")).unwrap();
/// let sites = turbowish_report::task_sites(&snap, "request-handler", 5).unwrap();
/// assert_eq!(sites.task_ids.len(), 3);
/// assert!(turbowish_report::task_sites(&snap, "no such task", 5).is_err());
/// ```
pub fn task_sites(snap: &Snapshot, query: &str, top: usize) -> Result<TaskSites, NoSuchTask> {
    let mut owners: Vec<OwnerRef> = Vec::new();
    let mut memory = Counters::default();
    let mut task_ids = Vec::new();
    let mut name = query.to_owned();
    let by_name: Vec<_> = snap.tasks.iter().filter(|t| t.name == query).collect();
    let by_id: Vec<_> = match query.parse::<u64>() {
        Ok(id) if by_name.is_empty() => snap.tasks.iter().filter(|t| t.id == id).collect(),
        _ => Vec::new(),
    };
    for task in by_name.iter().chain(&by_id) {
        owners.push(OwnerRef::Task(task.id));
        task_ids.push(task.id);
        add(&mut memory, &task.memory);
        name.clone_from(&task.name);
    }
    if owners.is_empty() {
        if let Some(bucket) = snap.buckets.iter().find(|b| b.name == query) {
            owners.push(bucket.owner);
            memory = bucket.memory;
        }
    }
    if owners.is_empty() {
        return Err(NoSuchTask {
            query: query.to_owned(),
        });
    }

    let names = Names::new(snap);
    let mut per_site: HashMap<u32, (u64, u64)> = HashMap::new();
    for os in snap
        .owner_sites
        .iter()
        .filter(|os| owners.contains(&os.owner))
    {
        let entry = per_site.entry(os.site).or_default();
        entry.0 = entry.0.saturating_add(os.live_bytes);
        entry.1 = entry.1.saturating_add(os.live_blocks);
    }
    let sampled_live_bytes = per_site
        .values()
        .fold(0u64, |sum, (bytes, _)| sum.saturating_add(*bytes));
    let mut sites: Vec<SiteRow> = per_site
        .into_iter()
        .map(|(site, (live_bytes, live_blocks))| site_row(&names, site, live_bytes, live_blocks))
        .collect();
    sites.sort_by(|a, b| b.live_bytes.cmp(&a.live_bytes).then(a.site.cmp(&b.site)));
    let more_sites = sites.len().saturating_sub(top);
    sites.truncate(top);
    Ok(TaskSites {
        name,
        task_ids: task_ids.clone(),
        memory,
        sample_interval: snap.sample_interval,
        sampled_live_bytes,
        sites,
        more_sites,
        walk: retained_summary(snap, &names, &task_ids, &owners, top),
    })
}

fn retained_summary(
    snap: &Snapshot,
    names: &Names<'_>,
    task_ids: &[u64],
    owners: &[OwnerRef],
    top: usize,
) -> Option<RetainedSummary> {
    let walk = snap.walk.as_ref()?;
    let mut summary = RetainedSummary {
        bucket: task_ids.is_empty(),
        retained: Amount::default(),
        shared: Amount::default(),
        unlocated_bytes: 0,
        sites: Vec::new(),
        more_sites: 0,
        census: Vec::new(),
        guards: Vec::new(),
        unattributed: Amount::default(),
    };
    let mut per_site: HashMap<u32, (u64, u64)> = HashMap::new();
    for t in walk.tasks.iter().filter(|t| task_ids.contains(&t.id)) {
        add_amount(&mut summary.retained, &t.retained);
        add_amount(&mut summary.shared, &t.shared);
        summary.unlocated_bytes = summary.unlocated_bytes.saturating_add(t.unlocated_bytes);
        for rs in &t.sites {
            let e = per_site.entry(rs.site).or_default();
            e.0 = e.0.saturating_add(rs.bytes);
            e.1 = e.1.saturating_add(rs.blocks);
        }
    }
    let mut sites: Vec<SiteRow> = per_site
        .into_iter()
        .map(|(site, (bytes, blocks))| site_row(names, site, bytes, blocks))
        .collect();
    sites.sort_by(|a, b| b.live_bytes.cmp(&a.live_bytes).then(a.site.cmp(&b.site)));
    summary.more_sites = sites.len().saturating_sub(top);
    sites.truncate(top);
    summary.sites = sites;

    let mine = |h: &WalkHolder| matches!(h, WalkHolder::Task { id, .. } if task_ids.contains(id));
    let mut census: Vec<CensusLine> = Vec::new();
    for row in walk.census.iter().filter(|c| mine(&c.holder)) {
        match census.iter_mut().find(|c| c.type_name == row.type_name) {
            Some(c) => {
                c.objects = c.objects.saturating_add(row.objects);
                c.bytes = c.bytes.saturating_add(row.bytes);
                c.slack = c.slack.saturating_add(row.slack);
            }
            None => census.push(CensusLine {
                type_name: row.type_name.clone(),
                objects: row.objects,
                bytes: row.bytes,
                slack: row.slack,
            }),
        }
    }
    census.sort_by(|a, b| {
        b.bytes
            .cmp(&a.bytes)
            .then_with(|| a.type_name.cmp(&b.type_name))
    });
    summary.census = census;
    summary.guards = walk
        .guards
        .iter()
        .filter(|g| mine(&g.holder))
        .map(|g| GuardLine {
            resource: g.resource,
            resource_label: match snap.resources.iter().find(|r| r.id == g.resource) {
                Some(r) => format!("{} \"{}\"", resource_kind(r.kind), r.name),
                None => format!("\"{}\"", g.resource_name),
            },
            path: g.path.clone(),
        })
        .collect();
    for u in walk
        .unattributed
        .iter()
        .filter(|u| owners.contains(&u.owner))
    {
        add_amount(&mut summary.unattributed, &u.amount);
    }
    Some(summary)
}

fn site_row(names: &Names<'_>, site: u32, live_bytes: u64, live_blocks: u64) -> SiteRow {
    let stack = names.site(site).map(|s| s.stack.as_slice()).unwrap_or(&[]);
    SiteRow {
        site,
        live_bytes,
        live_blocks,
        frames: names
            .frames(stack)
            .iter()
            .map(|fr| SiteFrame {
                function: fr.function_name(),
                file: fr.file.map(str::to_owned),
                line: fr.line,
            })
            .collect(),
    }
}

fn resource_kind(kind: ResourceKind) -> &'static str {
    match kind {
        ResourceKind::Mutex => "Mutex",
        ResourceKind::RwLock => "RwLock",
        ResourceKind::Semaphore => "Semaphore",
        ResourceKind::Channel => "Channel",
    }
}

impl fmt::Display for TaskSites {
    /// A header with the exact counters, then the sites with their stacks.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let who = match self.task_ids.len() {
            0 => format!("bucket \"{}\"", printable(&self.name)),
            1 => format!("task \"{}\" (#{})", printable(&self.name), self.task_ids[0]),
            n => {
                let ids: Vec<String> = self.task_ids.iter().map(|id| format!("#{id}")).collect();
                format!(
                    "task \"{}\" ({n} tasks: {})",
                    printable(&self.name),
                    ids.join(", ")
                )
            }
        };
        writeln!(
            f,
            "{who}: {} live in {} blocks, {} allocated in {} blocks",
            human_bytes(self.memory.live_bytes),
            self.memory.live_blocks,
            human_bytes(self.memory.total_bytes),
            self.memory.total_blocks,
        )?;
        self.fmt_sites(f)?;
        match &self.walk {
            Some(walk) => walk.fmt(f),
            None => Ok(()),
        }
    }
}

impl TaskSites {
    fn fmt_sites(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.sample_interval == 0 {
            return writeln!(
                f,
                "no allocation sites: this snapshot was taken with sampling off (sample_interval 0); \
                 the counters above are exact, but no stacks were recorded"
            );
        }
        if self.sites.is_empty() {
            return writeln!(
                f,
                "no sampled allocation of it is live (sampling every {} on average)",
                human_bytes(self.sample_interval)
            );
        }
        writeln!(
            f,
            "top allocation sites by estimated live bytes ({} sampled in all, one sample per {} on average), innermost frame first:",
            human_bytes(self.sampled_live_bytes),
            human_bytes(self.sample_interval),
        )?;
        write_sites(f, &self.sites, self.sampled_live_bytes, self.more_sites)
    }
}

impl fmt::Display for RetainedSummary {
    /// Retained and shared totals, the top retained sites, the census and
    /// the guards.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.bucket {
            return writeln!(
                f,
                "heap walk: {} of it in {} {} is reachable from no task or root",
                human_bytes(self.unattributed.bytes),
                self.unattributed.blocks,
                block_word(self.unattributed.blocks),
            );
        }
        write!(
            f,
            "heap walk: retains {} in {} {} (freed if it ended now); shares {} in {} {} with other tasks or roots",
            human_bytes(self.retained.bytes),
            self.retained.blocks,
            block_word(self.retained.blocks),
            human_bytes(self.shared.bytes),
            self.shared.blocks,
            block_word(self.shared.blocks),
        )?;
        if self.unlocated_bytes > 0 {
            write!(
                f,
                "; about {} more unlocated",
                human_bytes(self.unlocated_bytes)
            )?;
        }
        if self.unattributed.blocks > 0 {
            write!(
                f,
                "; {} in {} {} it allocated is reachable from nothing (leaked?)",
                human_bytes(self.unattributed.bytes),
                self.unattributed.blocks,
                block_word(self.unattributed.blocks),
            )?;
        }
        writeln!(f)?;
        if !self.sites.is_empty() {
            writeln!(
                f,
                "top retained sites by estimated bytes, innermost frame first:"
            )?;
            write_sites(f, &self.sites, self.retained.bytes, self.more_sites)?;
        }
        if !self.census.is_empty() {
            let width = self
                .census
                .iter()
                .map(|c| c.type_name.chars().count())
                .max()
                .unwrap_or(0)
                .clamp(4, MAX_NAME_WIDTH);
            writeln!(f, "retained types (as `Trace` named them):")?;
            writeln!(
                f,
                "  {:<width$}  {:>8}  {:>10}  {:>10}",
                "TYPE", "OBJECTS", "BYTES", "SLACK"
            )?;
            for c in &self.census {
                writeln!(
                    f,
                    "  {:<width$}  {:>8}  {:>10}  {:>10}",
                    c.type_name,
                    c.objects,
                    human_bytes(c.bytes),
                    human_bytes(c.slack)
                )?;
            }
        }
        if !self.guards.is_empty() {
            writeln!(f, "guards held in its state:")?;
            for g in &self.guards {
                writeln!(f, "  {} (#{}) at {}", g.resource_label, g.resource, g.path)?;
            }
        }
        Ok(())
    }
}

/// Sites with their share of `total` and their stacks.
fn write_sites(
    f: &mut fmt::Formatter<'_>,
    sites: &[SiteRow],
    total: u64,
    more_sites: usize,
) -> fmt::Result {
    for site in sites {
        writeln!(
            f,
            "{:>10}  {:>5.1}%  {:>6} blocks  site {}",
            human_bytes(site.live_bytes),
            percent(site.live_bytes, total),
            site.live_blocks,
            site.site
        )?;
        for frame in &site.frames {
            let mut text = format!("      {}", frame.function);
            match (&frame.file, frame.line) {
                (Some(file), Some(line)) => {
                    let _ = write!(text, "  {file}:{line}");
                }
                (Some(file), None) => {
                    let _ = write!(text, "  {file}");
                }
                _ => {}
            }
            writeln!(f, "{text}")?;
        }
    }
    if more_sites > 0 {
        writeln!(f, "({more_sites} more sites)")?;
    }
    Ok(())
}

fn state_name(state: TaskState) -> &'static str {
    match state {
        TaskState::Idle => "idle",
        TaskState::Running => "running",
        TaskState::Completed => "completed",
        TaskState::Panicked => "panicked",
        TaskState::Aborted => "aborted",
    }
}

fn block_word(n: u64) -> &'static str {
    if n == 1 {
        "block"
    } else {
        "blocks"
    }
}

fn plural(n: usize, one: &'static str, many: &'static str) -> &'static str {
    if n == 1 {
        one
    } else {
        many
    }
}

fn add(sum: &mut Counters, c: &Counters) {
    sum.live_bytes = sum.live_bytes.saturating_add(c.live_bytes);
    sum.live_blocks = sum.live_blocks.saturating_add(c.live_blocks);
    sum.total_bytes = sum.total_bytes.saturating_add(c.total_bytes);
    sum.total_blocks = sum.total_blocks.saturating_add(c.total_blocks);
    sum.peak_live_bytes = sum.peak_live_bytes.saturating_add(c.peak_live_bytes);
}
