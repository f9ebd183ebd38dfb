//! Heap snapshots, their analysis and rendering, and the `turbowish` CLI of
//! [TurboWish](https://docs.rs/turbowish).
//!
//! This crate will own the snapshot schema (serde, versioned), snapshot
//! capture and the `SIGUSR1` trigger, analysis (chains, cycles, diffs) and
//! renderers (text, JSON, flamegraph, pprof). Until then it offers the one
//! report the allocator core supports: [`live_bytes_table`], a per-task table
//! of live bytes.

use std::fmt::Write as _;

use turbowish_alloc::{Counters, Owner, Stats};

/// Renders the per-task live-bytes table from allocator stats: biggest
/// first, human-readable sizes, at most `top` rows (the rest summed in one
/// line), then the process total.
///
/// Rows that never allocated (an unused bucket) are left out. `name_of`
/// names a row's owner (`None`: a default such as `tokio task 42`).
/// Rows with the same name are merged, so that 200 `request-handler` tasks
/// read as one line with `TASKS` 200; their `PEAK` is the sum of each task's
/// peak.
///
/// ```
/// let stats = turbowish_alloc::stats();
/// let table = turbowish_report::live_bytes_table(&stats, |_| None, 10);
/// assert!(table.starts_with("TASK"));
/// assert!(table.lines().last().unwrap().starts_with("total"));
/// ```
pub fn live_bytes_table(
    stats: &Stats,
    name_of: impl Fn(Owner) -> Option<String>,
    top: usize,
) -> String {
    let mut groups: Vec<(String, u64, Counters)> = Vec::new();
    for row in stats.tasks.iter().filter(|r| r.counters.total_blocks > 0) {
        let name = name_of(row.owner).unwrap_or_else(|| default_name(row.owner));
        match groups.iter_mut().find(|(n, _, _)| *n == name) {
            Some((_, tasks, sum)) => {
                *tasks += 1;
                add(sum, &row.counters);
            }
            None => groups.push((name, 1, row.counters)),
        }
    }
    groups.sort_by(|a, b| b.2.live_bytes.cmp(&a.2.live_bytes).then(a.0.cmp(&b.0)));

    let rest = groups.split_off(top.min(groups.len()));
    if !rest.is_empty() {
        let mut sum = Counters::default();
        let mut tasks = 0;
        for (_, n, c) in &rest {
            tasks += n;
            add(&mut sum, c);
        }
        groups.push((format!("({} more)", rest.len()), tasks, sum));
    }
    let width = groups.iter().map(|g| g.0.len()).max().unwrap_or(0).max(5);
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<width$}  {:>5}  {:>10}  {:>8}  {:>10}  {:>9}  {:>10}",
        "TASK", "TASKS", "LIVE", "BLOCKS", "ALLOCATED", "ALLOCS", "PEAK"
    );
    let line = |out: &mut String, name: &str, tasks: &str, c: &Counters| {
        let _ = writeln!(
            out,
            "{name:<width$}  {tasks:>5}  {:>10}  {:>8}  {:>10}  {:>9}  {:>10}",
            human_bytes(c.live_bytes),
            c.live_blocks,
            human_bytes(c.total_bytes),
            c.total_blocks,
            human_bytes(c.peak_live_bytes)
        );
    };
    for (name, tasks, c) in &groups {
        line(&mut out, name, &tasks.to_string(), c);
    }
    line(&mut out, "total", "", &stats.total);
    out
}

fn add(sum: &mut Counters, c: &Counters) {
    sum.live_bytes += c.live_bytes;
    sum.live_blocks += c.live_blocks;
    sum.total_bytes += c.total_bytes;
    sum.total_blocks += c.total_blocks;
    sum.peak_live_bytes += c.peak_live_bytes;
}

/// The name a row gets when the caller knows none.
pub fn default_name(owner: Owner) -> String {
    match owner {
        Owner::Untracked => "untracked (main, threads)".to_string(),
        Owner::Internal => "internal (turbowish)".to_string(),
        Owner::Overflow => "overflow".to_string(),
        Owner::Task(id) => format!("task #{id}"),
        Owner::TokioTask(id) => format!("tokio task {id}"),
    }
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
