//! The per-task memory table: what `turbowish report` prints, and what a
//! program prints of itself (`MemoryReport::table`).

use std::collections::HashMap;
use std::fmt;

use serde::Serialize;

use crate::format::{block_word, human_bytes, plural, printable, share, MAX_NAME_WIDTH};
use crate::schema::{Amount, Counters, Owner, Snapshot, TaskState, TaskWalk};

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
/// # let snap: turbowish_snapshot::Snapshot = serde_json::from_str(include_str!("../tests/fixtures/service.json")).unwrap();
/// use turbowish_snapshot::table::{MemoryReport, SortKey};
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
        // Walk rows by task id, once: a lookup per task would be quadratic
        // in the tasks (10,000 tasks, 10^8 comparisons). Reversed, so that
        // of two rows with one id (a hostile file) the first counts, as
        // before.
        let walks: HashMap<u64, &TaskWalk> = snap
            .walk
            .iter()
            .flat_map(|w| w.tasks.iter().rev().map(|t| (t.id, t)))
            .collect();
        let task_walk = |_: &Snapshot, id: u64| walks.get(&id).copied();
        for task in &snap.tasks {
            match by_name.get(task.name.as_str()) {
                Some(&i) => {
                    let row = &mut rows[i];
                    row.task_ids.push(task.id);
                    row.memory.add(&task.memory);
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
                memory.add(&row.memory);
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
                        sum.retained.add(&w.retained);
                        sum.shared.add(&w.shared);
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
            Owner::Internal => internal = internal.saturating_add(bucket.memory.live_bytes),
            Owner::Task(_) => {}
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
                sum.add(&u.amount);
            }
            sum
        }),
    }
}

fn add_walk(sum: &mut RowWalk, w: &TaskWalk) {
    sum.retained.add(&w.retained);
    sum.shared.add(&w.shared);
}

/// Futures larger than this many bytes are flagged `!` in the `FUTURE`
/// column: a task's state machine lives in its root cell for as long as the
/// task does, a per-task cost no allocation counter shows. (The same figure
/// as `turbowish_trace::task::LARGE_FUTURE_BYTES`.)
pub const LARGE_FUTURE_BYTES: u64 = 2048;

impl fmt::Display for MemoryReport {
    /// The table, a blank line, and the summary paragraph.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.write_table(f)?;
        writeln!(f)?;
        writeln!(f, "{}", self.summary)
    }
}

/// The table of a [`MemoryReport`] without its summary paragraph (see
/// [`MemoryReport::table`]).
#[derive(Debug, Clone, Copy)]
pub struct Table<'a>(&'a MemoryReport);

impl fmt::Display for Table<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.write_table(f)
    }
}

impl MemoryReport {
    /// The table alone, for a program printing its own memory:
    ///
    /// ```
    /// # let snap: turbowish_snapshot::Snapshot = serde_json::from_str(include_str!("../tests/fixtures/service.json")).unwrap();
    /// use turbowish_snapshot::table::{MemoryReport, SortKey};
    /// let table = MemoryReport::new(&snap, SortKey::Live, 10).table().to_string();
    /// assert!(table.starts_with("TASK"));
    /// assert!(table.lines().last().unwrap().starts_with("total"));
    /// ```
    pub fn table(&self) -> Table<'_> {
        Table(self)
    }

    fn write_table(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
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
                Some(size) if size > LARGE_FUTURE_BYTES => {
                    format!("!{}", human_bytes(size))
                }
                Some(size) => human_bytes(size),
                None => "-".to_owned(),
            };
            let state = match row.state {
                Some(state) => state.name(),
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
                &printable(row.location.as_deref().unwrap_or("-")),
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
        )
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
            "{} live in {} blocks across {} {} ({} {}). {} ({}) is outside TurboWish tasks (main, other tokio tasks, overflow) and {} ({}) is TurboWish's own. ",
            human_bytes(self.live_bytes),
            self.live_blocks,
            self.tasks,
            plural(self.tasks, "task", "tasks"),
            self.task_names,
            plural(self.task_names, "name", "names"),
            human_bytes(self.untracked_live_bytes),
            share(self.untracked_live_bytes, self.live_bytes),
            human_bytes(self.internal_live_bytes),
            share(self.internal_live_bytes, self.live_bytes),
        )?;
        if let Some(dark) = &self.unattributed {
            write!(
                f,
                "The heap walk found {} ({}) in {} {} reachable from no task or root (statics, thread stacks, leaks). ",
                human_bytes(dark.bytes),
                share(dark.bytes, self.live_bytes),
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
