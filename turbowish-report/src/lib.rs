#![doc = include_str!("../README.md")]

mod capture;
mod cli;
mod convert;
mod load;
pub mod schema;
mod signal;
mod symbolize;
mod write;

pub use capture::snapshot;
pub use cli::{
    chains_dot, chains_text, diff, pprof_gz, task_sites, write_atomic, CensusLine, DiffError,
    FoldedStacks, Growth, GuardLine, MemoryReport, MemoryRow, NoSuchTask, RetainedSummary, RowWalk,
    SiteFrame, SiteGrowth, SiteRow, SnapshotDiff, SnapshotSide, SortKey, Summary, TaskGrowth,
    TaskSites,
};
pub use load::{LoadError, MAX_SNAPSHOT_BYTES};
pub use schema::{Snapshot, FORMAT_VERSION, SUPPORTED_VERSIONS};
pub use signal::{install_signal_handler, SignalConfig, SignalHandle};
pub use write::{snapshot_to_dir, SnapshotError};

use std::fmt::Write as _;

use turbowish_alloc::Counters;
use turbowish_trace::{TaskInfo, LARGE_FUTURE_BYTES};

/// Renders the per-task memory table: biggest live bytes first,
/// human-readable sizes, at most `top` lines (the rest summed in one), then
/// the total.
///
/// `FUTURE` is the size of the task's future (its state machine, held in
/// its root cell), marked `!` above [`LARGE_FUTURE_BYTES`]: a per-task cost
/// no allocation counter shows. Rows with the same name are merged, so that 200 `request-handler` tasks
/// read as one line with `TASKS` 200; a merged line's `PEAK` is the sum of
/// the tasks' peaks (the total line shows none: tasks peak at different
/// times), and its `LOCATION` and `STATE` are shown only when all
/// agree. Rows that never allocated (an unused bucket) are left out, unless
/// they are TurboWish tasks.
///
/// ```
/// let table = turbowish_report::task_table(&turbowish_trace::tasks(), 10);
/// assert!(table.starts_with("TASK"));
/// assert!(table.lines().last().unwrap().starts_with("total"));
/// ```
pub fn task_table(rows: &[TaskInfo], top: usize) -> String {
    let mut groups: Vec<Group> = Vec::new();
    let mut total = Counters::default();
    for row in rows {
        add(&mut total, &row.memory);
        if row.memory.total_blocks == 0 && row.state.is_none() {
            continue;
        }
        let location = row.location.map(|l| format!("{}:{}", l.file(), l.line()));
        let state = row.state.map(|s| s.to_string());
        match groups.iter_mut().find(|g| g.name == row.name) {
            Some(g) => {
                g.tasks += 1;
                add(&mut g.memory, &row.memory);
                g.future = g.future.max(row.future_size);
                if g.location != location {
                    g.location = None;
                }
                if g.state != state {
                    g.state = None;
                }
            }
            None => groups.push(Group {
                name: row.name.clone(),
                tasks: 1,
                memory: row.memory,
                future: row.future_size,
                location,
                state,
            }),
        }
    }
    groups.sort_by(|a, b| {
        b.memory
            .live_bytes
            .cmp(&a.memory.live_bytes)
            .then(a.name.cmp(&b.name))
    });
    let rest = groups.split_off(top.min(groups.len()));
    if !rest.is_empty() {
        let mut memory = Counters::default();
        for g in &rest {
            add(&mut memory, &g.memory);
        }
        groups.push(Group {
            name: format!("({} more)", rest.len()),
            tasks: rest.iter().map(|g| g.tasks).sum(),
            memory,
            future: None,
            location: None,
            state: None,
        });
    }

    // Capped: a longer name overflows its column rather than widening every
    // row (and the formatter refuses widths from 65,536 on).
    let width = groups
        .iter()
        .map(|g| g.name.chars().count())
        .max()
        .unwrap_or(0)
        .clamp(5, 60);
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<width$}  {:>5}  {:>10}  {:>8}  {:>10}  {:>8}  {:>10}  {:>9}  {:<9}  LOCATION",
        "TASK", "TASKS", "LIVE", "BLOCKS", "ALLOCATED", "ALLOCS", "PEAK", "FUTURE", "STATE"
    );
    for g in &groups {
        line(&mut out, width, g, false);
    }
    let total = Group {
        name: "total".to_string(),
        tasks: 0,
        memory: total,
        future: None,
        location: None,
        state: None,
    };
    line(&mut out, width, &total, true);
    out
}

/// One line of the table: a task, a merged group of same-named tasks, or
/// the total.
struct Group {
    name: String,
    tasks: usize,
    memory: Counters,
    /// Largest future state among the group's tasks.
    future: Option<usize>,
    location: Option<String>,
    state: Option<String>,
}

fn line(out: &mut String, width: usize, g: &Group, is_total: bool) {
    // Flag futures whose state machine alone is a notable per-task cost.
    let future = match g.future {
        Some(size) if size > LARGE_FUTURE_BYTES => format!("!{}", human_bytes(size as u64)),
        Some(size) => human_bytes(size as u64),
        None => "-".to_string(),
    };
    // Tasks peak at different moments: a sum of peaks is no process peak.
    let (tasks, peak) = if is_total {
        (String::new(), "-".to_string())
    } else {
        (g.tasks.to_string(), human_bytes(g.memory.peak_live_bytes))
    };
    let c = &g.memory;
    let _ = writeln!(
        out,
        "{:<width$}  {tasks:>5}  {:>10}  {:>8}  {:>10}  {:>8}  {peak:>10}  {future:>9}  {:<9}  {}",
        g.name,
        human_bytes(c.live_bytes),
        c.live_blocks,
        human_bytes(c.total_bytes),
        c.total_blocks,
        g.state.as_deref().unwrap_or("-"),
        g.location.as_deref().unwrap_or("-"),
    );
}

fn add(sum: &mut Counters, c: &Counters) {
    sum.live_bytes = sum.live_bytes.wrapping_add(c.live_bytes);
    sum.live_blocks = sum.live_blocks.wrapping_add(c.live_blocks);
    sum.total_bytes += c.total_bytes;
    sum.total_blocks += c.total_blocks;
    sum.peak_live_bytes += c.peak_live_bytes;
}

/// Formats a byte count with binary units: `512 B`, `1.5 KiB`, `3.0 MiB`.
///
/// ```
/// assert_eq!(turbowish_report::human_bytes(512), "512 B");
/// assert_eq!(turbowish_report::human_bytes(3 << 20), "3.0 MiB");
/// ```
pub fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 6] = ["KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}
