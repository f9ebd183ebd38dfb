//! End-to-end runs of the `turbowish` binary on real snapshots: one taken
//! here of a small service (named tasks, frames, a two-task mutex deadlock,
//! every allocation sampled), and one written by the `signal` example.

#[path = "../turbowish-report/tests/cli_support/mod.rs"]
mod cli_support;
mod support;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use cli_support::{check_all_commands, decode_pprof, run, run_ok, text, xml_escape};
use turbowish_alloc::TurboWish;
use turbowish_snapshot::format::human_bytes;
use turbowish_snapshot::schema::Owner;
use turbowish_snapshot::Snapshot;
use turbowish_trace::sync::Mutex;
use turbowish_trace::TracedExt;

#[global_allocator]
static A: TurboWish = TurboWish::system().sample_interval(1);

/// Bytes the cache task keeps in its boxed buffer.
const CACHE_BUFFER: usize = 256 * 1024;

/// Fills a map until it has grown a few times, plus one big boxed buffer.
#[inline(never)]
fn fill_cache() -> (HashMap<u64, String>, Box<[u8]>) {
    let mut map = HashMap::new();
    for i in 0..200u64 {
        map.insert(i, format!("entry {i}"));
    }
    let buffer = vec![7u8; CACHE_BUFFER].into_boxed_slice();
    (map, buffer)
}

/// A request's working set: a growing vector, a string, a box.
#[inline(never)]
fn handle_request(n: usize) -> (Vec<u64>, String, Box<[u64; 64]>) {
    let mut items = Vec::new();
    for i in 0..(1000 + n as u64) {
        items.push(i);
    }
    let mut body = String::with_capacity(16);
    body.push_str(&"x".repeat(4096));
    (items, body, Box::new([n as u64; 64]))
}

/// Tasks holding their memory: the cache filler and three handlers.
static READY: AtomicUsize = AtomicUsize::new(0);

/// Locks `from`, then (once both tasks hold their first lock) `to`.
async fn transfer(from: Arc<Mutex<u64>>, to: Arc<Mutex<u64>>) {
    let _debit = async { from.lock().await }.traced("debit").await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    let _credit = async { to.lock().await }.traced("credit").await;
}

/// Runs the service on a runtime left running, and snapshots it once every
/// task holds its memory and the transfers are deadlocked.
fn service_snapshot(dir: &Path) -> PathBuf {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        turbowish_trace::spawn(
            "cache-filler",
            async {
                let held = fill_cache();
                READY.fetch_add(1, Ordering::SeqCst);
                std::future::pending::<()>().await;
                drop(held);
            }
            .traced("warm"),
        );
        for n in 0..3 {
            turbowish_trace::spawn("request-handler", async move {
                let held = async { handle_request(n) }.traced("handle").await;
                READY.fetch_add(1, Ordering::SeqCst);
                std::future::pending::<()>().await;
                drop(held);
            });
        }
        let a = Arc::new(Mutex::new_named("accounts[1]", 100));
        let b = Arc::new(Mutex::new_named("accounts[2]", 100));
        turbowish_trace::spawn("transfer-a", transfer(a.clone(), b.clone()));
        turbowish_trace::spawn("transfer-b", transfer(b, a));
        // Wait (on a loaded machine, as long as it takes) for every task to
        // hold its memory and for the transfers to deadlock.
        let deadline = Instant::now() + Duration::from_secs(60);
        while READY.load(Ordering::SeqCst) < 4
            || turbowish_trace::chains::cycles(&turbowish_trace::sync::resources()).is_empty()
        {
            assert!(Instant::now() < deadline, "the service did not settle");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    });
    let path = turbowish_capture::snapshot_to_dir(dir).unwrap();
    runtime.shutdown_background();
    path
}

#[test]
fn every_command_reads_a_real_service_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let path = service_snapshot(dir.path());
    check_all_commands(&path);

    let snap = Snapshot::load(&path).unwrap();
    let p = path.to_str().unwrap();
    let task = |name: &str| {
        let tasks: Vec<_> = snap.tasks.iter().filter(|t| t.name == name).collect();
        assert!(!tasks.is_empty(), "no task {name}");
        tasks
    };
    let cache = task("cache-filler")[0];
    assert!(cache.memory.live_bytes >= CACHE_BUFFER as u64);
    assert_eq!(task("request-handler").len(), 3);

    // report: the task's row carries its own counters.
    let report = text(&run_ok(&["report", p]).stdout);
    let row = report
        .lines()
        .find(|l| l.starts_with("cache-filler "))
        .expect("a cache-filler row");
    assert!(row.contains(&human_bytes(cache.memory.live_bytes)), "{row}");
    assert!(row.contains(&cache.memory.live_blocks.to_string()), "{row}");
    let handlers = report
        .lines()
        .find(|l| l.starts_with("request-handler "))
        .expect("a request-handler row");
    assert_eq!(handlers.split_whitespace().nth(1), Some("3"), "{handlers}");

    // report --task: the biggest site is the boxed buffer, and its stack
    // starts at the function that asked for it.
    let sites = text(&run_ok(&["report", p, "--task", "cache-filler"]).stdout);
    let mut lines = sites
        .lines()
        .skip_while(|l| !l.starts_with("top allocation sites"));
    lines.next();
    let biggest = lines.next().expect("a site");
    assert!(biggest.trim_start().starts_with("256.0 KiB"), "{sites}");
    let first_frame = lines.next().expect("a frame");
    assert!(
        first_frame
            .trim_start()
            .starts_with("cli_on_real_snapshot::fill_cache"),
        "{sites}"
    );
    let sites = text(&run_ok(&["report", p, "--task", "request-handler"]).stdout);
    assert!(
        sites.contains("cli_on_real_snapshot::handle_request"),
        "{sites}"
    );

    // flamegraph --folded: user code innermost, the task's name at the
    // root, no allocator, unwinder or runtime frames in a task's stacks.
    let folded = text(&run_ok(&["flamegraph", p, "--folded", "-o", "-"]).stdout);
    let mut buffer = 0;
    for line in folded.lines() {
        let (stack, bytes) = line.rsplit_once(' ').unwrap();
        let frames: Vec<&str> = stack.split(';').collect();
        for frame in &frames {
            assert!(!frame.starts_with("__rust"), "{line}");
            assert!(!frame.contains("turbowish_alloc::"), "{line}");
            assert!(!frame.starts_with("backtrace::"), "{line}");
        }
        if ["cache-filler", "request-handler"].contains(&frames[0]) {
            assert!(
                frames.iter().all(|f| !f.contains("Traced<F> as")
                    && !f.starts_with("tokio::runtime::task")
                    && !f.starts_with("std::")
                    && !f.starts_with("alloc::")),
                "{line}"
            );
        }
        if frames[0] == "cache-filler" && frames.last() == Some(&"cli_on_real_snapshot::fill_cache")
        {
            buffer += bytes.parse::<u64>().unwrap();
        }
    }
    assert!(buffer >= CACHE_BUFFER as u64, "{folded}");

    // chains: the deadlock, exit 3.
    let out = run(&["chains", p], b"");
    assert_eq!(out.status.code(), Some(3));
    let chains = text(&out.stdout);
    assert_eq!(snap.cycles.len(), 1, "{chains}");
    for name in [
        "\"transfer-a\"",
        "\"transfer-b\"",
        "accounts[1]",
        "accounts[2]",
    ] {
        assert!(chains.contains(name), "{name} not in {chains}");
    }

    // flamegraph SVG: the task names are frames of the picture.
    let svg_path = dir.path().join("flame.svg");
    run_ok(&["flamegraph", p, "-o", svg_path.to_str().unwrap()]);
    let svg = std::fs::read_to_string(&svg_path).unwrap();
    assert!(svg.trim_end().ends_with("</svg>"));
    for name in ["cache-filler", "request-handler"] {
        assert!(svg.contains(&xml_escape(name)), "SVG lacks {name}");
    }

    // pprof: per-task labels whose sums are the snapshot's estimates.
    let pb = dir.path().join("heap.pb.gz");
    run_ok(&["export", "--format", "pprof", p, "-o", pb.to_str().unwrap()]);
    let profile = decode_pprof(&std::fs::read(&pb).unwrap());
    let mut by_label: HashMap<String, i64> = HashMap::new();
    for sample in &profile.samples {
        *by_label.entry(sample.task.clone().unwrap()).or_default() += sample.values[1];
    }
    for name in [
        "cache-filler",
        "request-handler",
        "transfer-a",
        "transfer-b",
    ] {
        let ids: Vec<u64> = task(name).iter().map(|t| t.id).collect();
        let estimate: u64 = snap
            .owner_sites
            .iter()
            .filter(|os| matches!(os.owner, Owner::Task(id) if ids.contains(&id)))
            .map(|os| os.live_bytes)
            .sum();
        assert!(estimate > 0, "{name}");
        assert_eq!(by_label.get(name).copied(), Some(estimate as i64), "{name}");
    }
}

/// The `signal` example writes its snapshot on `SIGUSR1`; every command
/// reads it.
#[test]
fn every_command_reads_the_signal_examples_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(support::example_binary("signal"))
        .env("TURBOWISH_DIR", dir.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    let path = stdout
        .lines()
        .find_map(|l| l.strip_prefix("snapshot: "))
        .expect("the example names its snapshot");
    let path = Path::new(path);
    assert!(path.starts_with(dir.path()), "{}", path.display());
    check_all_commands(path);

    let report = text(&run_ok(&["report", path.to_str().unwrap()]).stdout);
    for (name, kib) in [("cache", 512), ("session-1", 64), ("session-2", 32)] {
        let row = report
            .lines()
            .find(|l| l.starts_with(&format!("{name} ")))
            .unwrap_or_else(|| panic!("no {name} row in {report}"));
        // Each holds its buffer, plus at most its task's small state.
        let live = Snapshot::load(path)
            .unwrap()
            .tasks
            .iter()
            .find(|t| t.name == name)
            .unwrap()
            .memory
            .live_bytes;
        assert!(live >= kib * 1024 && live < kib * 1024 + 4096, "{row}");
        assert!(row.contains(&human_bytes(live)), "{row}");
    }
}
