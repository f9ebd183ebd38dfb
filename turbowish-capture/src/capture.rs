//! Taking a snapshot of the running process: [`snapshot`].

use std::collections::HashMap;
use std::time::SystemTime;

use turbowish_snapshot::schema::{ProcessInfo, RecordUsage, Snapshot, FORMAT_VERSION};
use turbowish_trace::task::Owner;

use crate::{convert, symbolize};

/// Captures a heap snapshot of this process: per-task memory, buckets,
/// sampled allocation sites (symbolised), the held-resource graph with its
/// chains and cycles, and the process's identity.
///
/// Everything it allocates is charged to the `internal` bucket, so calling
/// it from inside a task leaves the task's counters as they were. It reads
/// the allocator's counters without stopping other threads (see
/// `turbowish_alloc::stats` for how exact they are while threads run), and
/// symbolises sampled stacks on the calling thread. Its cost grows with the
/// number of tasks, resources and distinct sampled addresses; the first call
/// that symbolises also loads the executable's debug info.
///
/// `totals` are the sums of the task and bucket rows, so a snapshot adds
/// up exactly (the peak is the allocator's process-wide peak, read just
/// after the rows).
///
/// When the allocator runs in heap-walk mode
/// (`turbowish_alloc::heap_walk_enabled`), it also walks the heap
/// (`turbowish_trace::walk::walk_locating`) and fills [`Snapshot::walk`]: memory
/// *retained* per task and root, with each task's retained sampled blocks
/// summed by site. Other threads keep running during the walk (their frees
/// are deferred until it ends); nothing here holds a lock across it. Held
/// owned guards the walk finds in another task's state than the one that
/// acquired them are then credited to that task in `resources`, `chains`
/// and `cycles`.
///
/// ```
/// let snapshot = turbowish_capture::snapshot();
/// assert_eq!(snapshot.format_version, turbowish_snapshot::FORMAT_VERSION);
/// assert_eq!(snapshot.process.pid, std::process::id());
/// assert!(snapshot.buckets.iter().any(|b| b.name == "main (outside tasks)"));
/// ```
pub fn snapshot() -> Snapshot {
    let _internal = turbowish_alloc::internal();
    let taken_at_ms = convert::epoch_ms(SystemTime::now());
    // The rows first: the `internal` row is read then, and a `Stats` read
    // before would sit in it (a row per record in use, 16 KiB at 200 tasks).
    let rows = turbowish_trace::task::tasks();
    let stats = turbowish_alloc::stats();
    let sample_interval = turbowish_alloc::sample_interval();
    let samples = turbowish_alloc::samples();
    // Walk before reading the resources, so the guard locations describe
    // holders at least as recent as the records they correct. Nothing is
    // locked here: the walk takes only the heap view.
    let walk = if turbowish_alloc::heap_walk_enabled() {
        let starts: Vec<usize> = samples.iter().map(|s| s.address).collect();
        turbowish_trace::walk::walk_locating(&starts)
    } else {
        None
    };
    let mut resources = turbowish_trace::sync::resources();
    // Ownership: who holds each channel end and lock, from the tasks' state
    // (their root cells; in heap-walk mode, all they reach alone).
    // The walk scans every root cell itself: with a walk, the cell scan
    // would find the same handles again.
    let handles = match &walk {
        Some(walk) => walk.handles.clone(),
        None => turbowish_trace::ownership::find(),
    };
    turbowish_trace::ownership::apply(&mut resources, &handles);
    if let Some(walk) = &walk {
        convert::correct_guard_holders(&mut resources, &walk.guards);
    }
    let chains = turbowish_trace::chains::chains(&resources);
    let cycles = turbowish_trace::chains::cycles(&resources);

    let (tasks, buckets) = convert::tasks_and_buckets(&rows);
    let task_by_tokio_id: HashMap<u64, u64> = rows
        .iter()
        .filter_map(|r| match (r.owner, r.tokio_id) {
            (Owner::Task(id), Some(tokio_id)) => Some((tokio_id, id)),
            _ => None,
        })
        .collect();
    let owner = |owner| convert::owner(owner, |tokio_id| task_by_tokio_id.get(&tokio_id).copied());
    let sites = symbolize::sites(&samples, owner, symbolize::resolve);
    // The symboliser caches parsed debug info (tens of MiB in a release
    // build with debug info): a snapshot every few minutes would keep it
    // resident for nothing, charged to `internal`. Re-parsing per snapshot
    // costs time on the snapshot thread only.
    backtrace::clear_symbol_cache();
    let walk = walk.map(|walk| {
        let site_of = site_finder(&samples, &sites.site_of);
        convert::walk(&walk, owner, |start| site_of.get(&start).copied())
    });

    Snapshot {
        format_version: FORMAT_VERSION,
        process: process_info(),
        taken_at_ms,
        sample_interval,
        totals: convert::totals(&rows, stats.total.peak_live_bytes),
        records: RecordUsage {
            in_use: stats.records_in_use as u64,
            capacity: stats.record_capacity as u64,
        },
        tasks,
        buckets,
        locations: sites.locations,
        sites: sites.sites,
        owner_sites: sites.owner_sites,
        resources: resources.iter().map(convert::resource).collect(),
        chains: chains
            .iter()
            .map(|c| convert::chain(c, &resources))
            .collect(),
        cycles: cycles
            .iter()
            .map(|c| convert::cycle(c, &resources))
            .collect(),
        walk,
    }
}

/// The site and weight of each sampled block, by address, for the walk's
/// per-site retained figures.
fn site_finder(
    samples: &[turbowish_alloc::Sample],
    site_of: &HashMap<usize, u32>,
) -> HashMap<usize, (u32, f64, usize)> {
    samples
        .iter()
        .filter_map(|s| {
            site_of
                .get(&s.address)
                .map(|&site| (s.address, (site, s.weight, s.size)))
        })
        .collect()
}

fn process_info() -> ProcessInfo {
    let executable = std::fs::read_link("/proc/self/exe")
        .or_else(|_| std::env::current_exe())
        .map(|p| p.display().to_string())
        .unwrap_or_default();
    ProcessInfo {
        pid: std::process::id(),
        executable,
        args: std::env::args_os()
            .map(|a| a.to_string_lossy().into_owned())
            .collect(),
        start_time_ms: start_time_ms(),
    }
}

/// The process's start: boot time (`btime` in `/proc/stat`) plus its start
/// in clock ticks after boot (field 22 of `/proc/self/stat`).
fn start_time_ms() -> Option<u64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let boot = std::fs::read_to_string("/proc/stat").ok()?;
    // SAFETY: sysconf only reads a configuration value.
    let ticks_per_s = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    start_time_from(&stat, &boot, u64::try_from(ticks_per_s).ok()?)
}

fn start_time_from(stat: &str, boot: &str, ticks_per_s: u64) -> Option<u64> {
    if ticks_per_s == 0 {
        return None;
    }
    // The command name (field 2) is in parentheses and may hold spaces or
    // parentheses itself: count fields from the last ')', which ends it.
    let after_name = &stat[stat.rfind(')')? + 1..];
    let start_ticks: u64 = after_name.split_whitespace().nth(22 - 3)?.parse().ok()?;
    let btime_s: u64 = boot
        .lines()
        .find_map(|l| l.strip_prefix("btime "))?
        .trim()
        .parse()
        .ok()?;
    Some(btime_s * 1000 + start_ticks * 1000 / ticks_per_s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_time_counts_fields_after_the_command_name() {
        // Field 22 is 4200 ticks; the name holds ") (" to mislead a naive split.
        let stat = "77 (a) (b c) S 1 77 77 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 4200 1000 50";
        let boot = "cpu  1 2 3\nbtime 1700000000\nprocesses 5\n";
        assert_eq!(
            start_time_from(stat, boot, 100),
            Some(1_700_000_000_000 + 42_000)
        );
        assert_eq!(start_time_from(stat, "cpu 1\n", 100), None);
        assert_eq!(start_time_from("77 (a) S 1", boot, 100), None);
    }

    #[test]
    fn this_process_started_before_now() {
        let start = start_time_ms().expect("Linux has /proc");
        let now = convert::epoch_ms(SystemTime::now());
        assert!(
            start <= now && now - start < 24 * 3600 * 1000,
            "{start} vs {now}"
        );
    }
}
