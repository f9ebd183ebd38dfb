//! `turbowish report`: the per-task memory table with its summary, and one
//! task's top allocation sites.

use std::collections::HashMap;
use std::fmt::{self, Write as _};

use serde::Serialize;

use super::names::{percent, Names};
use crate::human_bytes;
use crate::schema::{Counters, OwnerRef, Snapshot, TaskState};

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
    }
}

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
            .max(5);
        writeln!(
            f,
            "{:<width$}  {:>5}  {:>10}  {:>8}  {:>10}  {:>8}  {:>10}  {:>9}  {:<9}  LOCATION",
            "TASK", "TASKS", "LIVE", "BLOCKS", "ALLOCATED", "ALLOCS", "PEAK", "FUTURE", "STATE"
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
            line(
                f,
                width,
                &row.name,
                &tasks,
                &row.memory,
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
    peak: &str,
    future: &str,
    state: &str,
    location: &str,
) -> fmt::Result {
    writeln!(
        f,
        "{name:<width$}  {tasks:>5}  {:>10}  {:>8}  {:>10}  {:>8}  {peak:>10}  {future:>9}  {state:<9}  {location}",
        human_bytes(c.live_bytes),
        c.live_blocks,
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
        .map(|(site, (live_bytes, live_blocks))| {
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
        })
        .collect();
    sites.sort_by(|a, b| b.live_bytes.cmp(&a.live_bytes).then(a.site.cmp(&b.site)));
    let more_sites = sites.len().saturating_sub(top);
    sites.truncate(top);
    Ok(TaskSites {
        name,
        task_ids,
        memory,
        sample_interval: snap.sample_interval,
        sampled_live_bytes,
        sites,
        more_sites,
    })
}

impl fmt::Display for TaskSites {
    /// A header with the exact counters, then the sites with their stacks.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let who = match self.task_ids.len() {
            0 => format!("bucket \"{}\"", self.name),
            1 => format!("task \"{}\" (#{})", self.name, self.task_ids[0]),
            n => {
                let ids: Vec<String> = self.task_ids.iter().map(|id| format!("#{id}")).collect();
                format!("task \"{}\" ({n} tasks: {})", self.name, ids.join(", "))
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
        for site in &self.sites {
            writeln!(
                f,
                "{:>10}  {:>5.1}%  {:>6} blocks  site {}",
                human_bytes(site.live_bytes),
                percent(site.live_bytes, self.sampled_live_bytes),
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
        if self.more_sites > 0 {
            writeln!(f, "({} more sites)", self.more_sites)?;
        }
        Ok(())
    }
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
