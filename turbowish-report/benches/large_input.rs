//! Every command on a large snapshot: 2,090,000 sampled sites (stacks of 8
//! frames over 60,000 code locations, one owner row per site) across 1,000
//! tasks, about as big as the 512 MiB input cap allows. Prints each
//! command's wall time and peak memory (the child's maximum RSS), so the
//! CLI's scaling in the number of sites is measured, not guessed.
//!
//! Run: `cargo bench -p turbowish-report --bench large_input` (`-- SITES`
//! for another size). Under `cargo test --benches` it runs once on 20,000
//! sites to prove it still works.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use turbowish_snapshot::schema::*;
use turbowish_snapshot::FORMAT_VERSION;

const TASKS: u64 = 1_000;
const FRAMES: usize = 8;

fn main() {
    let bench = std::env::args().any(|a| a == "--bench");
    let sites: u32 = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(if bench { 2_090_000 } else { 20_000 });
    // TURBOWISH_BENCH_DIR keeps the snapshots there (for a profiler).
    let keep = std::env::var_os("TURBOWISH_BENCH_DIR").map(PathBuf::from);
    let dir = keep.clone().unwrap_or_else(|| {
        std::env::temp_dir().join(format!("turbowish-large-{}", std::process::id()))
    });
    std::fs::create_dir_all(&dir).unwrap();
    let old = dir.join("old.json");
    let new = dir.join("new.json");
    let made = Instant::now();
    write_snapshot(&old, sites, 0);
    write_snapshot(&new, sites, 1);
    println!(
        "large_input: {sites} sites, {:.0} MB a snapshot (made in {:.1} s)",
        std::fs::metadata(&new).unwrap().len() as f64 / 1e6,
        made.elapsed().as_secs_f64()
    );
    let out = dir.join("out");
    let (o, n, x) = (
        old.to_str().unwrap(),
        new.to_str().unwrap(),
        out.to_str().unwrap(),
    );
    let commands: Vec<Vec<&str>> = vec![
        vec!["report", n],
        vec!["report", n, "--json"],
        vec!["report", n, "--task", "worker-00007"],
        vec!["chains", n],
        vec!["chains", n, "--json"],
        vec!["flamegraph", n, "-o", x],
        vec!["flamegraph", n, "--folded", "-o", x],
        vec!["diff", o, n],
        vec!["diff", o, n, "--json"],
        vec!["export", "--format", "pprof", n, "-o", x],
        vec!["html", n, "-o", x],
    ];
    println!(
        "large_input: {:<44} {:>8} {:>10}",
        "command", "wall", "peak RSS"
    );
    for args in commands {
        let (wall, rss) = run(&args);
        let shown: Vec<&str> = args
            .iter()
            .map(|a| {
                Path::new(a)
                    .file_name()
                    .and_then(|f| f.to_str())
                    .unwrap_or(a)
            })
            .collect();
        println!(
            "large_input: {:<44} {:>6.2} s {:>6.0} MiB",
            shown.join(" "),
            wall.as_secs_f64(),
            rss as f64 / 1024.0
        );
    }
    if keep.is_none() {
        let _ = std::fs::remove_dir_all(&dir);
    }
}

/// Runs the CLI, output to /dev/null; returns wall time and peak RSS (KiB).
fn run(args: &[&str]) -> (Duration, i64) {
    let start = Instant::now();
    // Reaped by `wait4` below, which also gives the peak RSS that
    // `Child::wait` does not.
    #[allow(clippy::zombie_processes)]
    let child = Command::new(env!("CARGO_BIN_EXE_turbowish"))
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("turbowish runs");
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    // SAFETY: `rusage` is plain data that `wait4` fills for our own child.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: waiting for our child, which nothing else waits for.
    let waited = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    let wall = start.elapsed();
    assert_eq!(waited, pid);
    let code = libc::WEXITSTATUS(status);
    assert!(
        libc::WIFEXITED(status) && (code == 0 || code == 3),
        "turbowish {args:?} failed (status {status})"
    );
    (wall, usage.ru_maxrss)
}

/// A snapshot with `sites` sites; `later` grows every task a little, for
/// `diff`.
fn write_snapshot(path: &PathBuf, sites: u32, later: u64) {
    let locations = (sites / 35).clamp(100, 60_000);
    let snap = Snapshot {
        format_version: FORMAT_VERSION,
        process: ProcessInfo {
            pid: 4242,
            executable: "/srv/bin/service".to_owned(),
            args: vec!["service".to_owned(), "--port=8080".to_owned()],
            start_time_ms: Some(1_796_382_000_000),
        },
        taken_at_ms: 1_796_382_560_000 + later * 60_000,
        sample_interval: 524_288,
        totals: Counters::default(),
        records: RecordUsage::default(),
        tasks: Vec::new(),
        buckets: Vec::new(),
        locations: (0..locations)
            .map(|id| CodeLocation {
                id,
                address: 0x5555_0000 + u64::from(id) * 64,
                lines: vec![SourceLine {
                    function: format!("service::module_{}::function_{id}", id % 97),
                    file: Some(format!("src/module_{}.rs", id % 97)),
                    line: Some(10 + id % 900),
                }],
            })
            .collect(),
        sites: (0..sites)
            .map(|id| Site {
                id,
                stack: (0..FRAMES as u32)
                    .map(|k| (id.wrapping_mul(2_654_435_761).wrapping_add(k * 7919)) % locations)
                    .collect(),
                live_bytes: 524_288,
                live_blocks: 8,
                samples: 1,
            })
            .collect(),
        owner_sites: (0..sites)
            .map(|site| OwnerSite {
                owner: Owner::Task(u64::from(site) % TASKS + 1),
                site,
                live_bytes: 524_288 + later * 4096,
                live_blocks: 8,
            })
            .collect(),
        resources: Vec::new(),
        chains: Vec::new(),
        cycles: Vec::new(),
        walk: None,
    };
    let mut snap = snap;
    let mut totals = Counters::default();
    for id in 1..=TASKS {
        let per_task = u64::from(sites) / TASKS + 1;
        let bytes = per_task * (524_288 + later * 4096);
        let memory = Counters {
            live_bytes: bytes,
            live_blocks: per_task * 8,
            total_bytes: bytes * 2,
            total_blocks: per_task * 16,
            peak_live_bytes: bytes,
        };
        totals.add(&memory);
        snap.tasks.push(Task {
            id,
            name: format!("worker-{id:05}"),
            location: Some("src/server.rs:88:13".to_owned()),
            state: Some(TaskState::Idle),
            tokio_id: Some(id + 100),
            created_at_ms: Some(1_796_382_100_000),
            polls: id * 3,
            busy_ns: id * 1000,
            future_size: Some(640),
            memory,
        });
    }
    snap.totals = totals;
    let mut out = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    snap.to_writer(&mut out).unwrap();
    out.flush().unwrap();
}
