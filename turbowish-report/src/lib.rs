//! Heap snapshots, their analysis and rendering, and the `turbowish` CLI of
//! [TurboWish](https://docs.rs/turbowish).
//!
//! This crate will own the snapshot schema (serde, versioned), snapshot
//! capture and the `SIGUSR1` trigger, analysis (chains, cycles, diffs) and
//! renderers (text, JSON, flamegraph, pprof). Until then it offers the one
//! report the allocator core supports: [`live_bytes_table`], a per-task table
//! of live bytes.

use std::fmt::Write as _;

use turbowish_alloc::{Owner, Stats};

/// Renders the per-task live-bytes table from allocator stats, biggest
/// first, with human-readable sizes.
///
/// ```
/// let table = turbowish_report::live_bytes_table(&turbowish_alloc::stats(), |_| None);
/// assert!(table.starts_with("TASK"));
/// ```
pub fn live_bytes_table(stats: &Stats, name_of: impl Fn(Owner) -> Option<String>) -> String {
    let mut rows: Vec<_> = stats.tasks.iter().collect();
    rows.sort_by(|a, b| {
        b.counters
            .live_bytes
            .cmp(&a.counters.live_bytes)
            .then(a.owner.cmp(&b.owner))
    });
    let names: Vec<String> = rows
        .iter()
        .map(|r| name_of(r.owner).unwrap_or_else(|| default_name(r.owner)))
        .collect();
    let width = names.iter().map(|n| n.len()).max().unwrap_or(0).max(4);
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<width$}  {:>10}  {:>8}  {:>10}  {:>9}  {:>10}",
        "TASK", "LIVE", "BLOCKS", "ALLOCATED", "ALLOCS", "PEAK"
    );
    for (row, name) in rows.iter().zip(&names) {
        let c = &row.counters;
        let _ = writeln!(
            out,
            "{:<width$}  {:>10}  {:>8}  {:>10}  {:>9}  {:>10}",
            name,
            human_bytes(c.live_bytes),
            c.live_blocks,
            human_bytes(c.total_bytes),
            c.total_blocks,
            human_bytes(c.peak_live_bytes)
        );
    }
    let t = &stats.total;
    let _ = writeln!(
        out,
        "{:<width$}  {:>10}  {:>8}  {:>10}  {:>9}  {:>10}",
        "total",
        human_bytes(t.live_bytes),
        t.live_blocks,
        human_bytes(t.total_bytes),
        t.total_blocks,
        human_bytes(t.peak_live_bytes)
    );
    out
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
