//! Signal storm: 1,000 `SIGUSR1` sent to a child process while two threads
//! allocate hard. The child survives and exits cleanly, every file parses,
//! none is partial (no temporary file is left), and a snapshot taken once
//! the child is quiet has exactly the allocator's counters.
//!
//! One binary, two roles (`harness = false`): run plainly it is the parent,
//! and it runs itself again with `TURBOWISH_STORM_CHILD=<dir>` as the child.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use turbowish_alloc::{Owner, TurboWish};
use turbowish_snapshot::schema::{self, Counters};
use turbowish_snapshot::Snapshot;

#[global_allocator]
static ALLOC: TurboWish = TurboWish::system();

const CHILD_ENV: &str = "TURBOWISH_STORM_CHILD";
const SIGNALS: usize = 1000;
const FINAL_STATS: &str = "final-stats.json";

fn main() {
    match std::env::var_os(CHILD_ENV) {
        Some(dir) => child(Path::new(&dir)),
        None => parent(),
    }
}

/// Owner, counters: the allocator's rows as the child saw them, quiet.
type Rows = Vec<(schema::Owner, Counters)>;

fn parent() {
    let dir = std::env::temp_dir().join(format!("turbowish-storm-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let mut child = KillOnDrop(
        Command::new(std::env::current_exe().unwrap())
            .env(CHILD_ENV, &dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let mut stdin = child.0.stdin.take().unwrap();
    let mut stdout = BufReader::new(child.0.stdout.take().unwrap());
    expect_line(&mut stdout, "ready");
    let pid = child.0.id() as libc::pid_t;

    for i in 0..SIGNALS {
        // SAFETY: sending a signal to our own child, which handles it.
        assert_eq!(unsafe { libc::kill(pid, libc::SIGUSR1) }, 0);
        // Bursts with short gaps: some signals land on an idle thread, most
        // while a snapshot is being written.
        if i % 20 == 19 {
            std::thread::sleep(Duration::from_millis(2));
        }
    }
    writeln!(stdin, "stop").unwrap();
    expect_line(&mut stdout, "stopped");
    let during_storm = snapshot_files(&dir).len();
    assert!(
        (1..=SIGNALS).contains(&during_storm),
        "{during_storm} files for {SIGNALS} signals"
    );

    // The child is quiet: one more signal, one more file, with its counts.
    // SAFETY: as above.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGUSR1) }, 0);
    let deadline = Instant::now() + Duration::from_secs(60);
    while snapshot_files(&dir).len() == during_storm {
        assert!(
            Instant::now() < deadline,
            "no snapshot for the final signal"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    drop(stdin);
    let mut counts = String::new();
    stdout.read_line(&mut counts).unwrap();
    let status = child.0.wait().unwrap();
    assert!(status.success(), "child: {status}");

    let files = snapshot_files(&dir);
    assert_eq!(files.len(), during_storm + 1);
    // Signals coalesce: never more files than deliveries of the signal.
    let (written, received) = counts
        .trim()
        .strip_prefix("written ")
        .and_then(|rest| rest.split_once(" of "))
        .and_then(|(w, r)| Some((w.parse::<usize>().ok()?, r.parse::<usize>().ok()?)))
        .unwrap_or_else(|| panic!("child said {counts:?}"));
    assert_eq!(written, files.len());
    assert!(written <= received && received <= SIGNALS + 1, "{counts}");
    let leftovers: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n != FINAL_STATS && !(n.starts_with("turbowish-") && n.ends_with(".json")))
        .collect();
    assert_eq!(leftovers, Vec::<String>::new(), "temporary files left");
    let mut last = None;
    for (_, path) in &files {
        let snapshot = Snapshot::load(path).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(snapshot.process.pid, pid as u32);
        last = Some(snapshot);
    }
    let last = last.unwrap();

    let quiet: Rows =
        serde_json::from_slice(&std::fs::read(dir.join(FINAL_STATS)).unwrap()).unwrap();
    let mut in_file: Rows = last
        .buckets
        .iter()
        .map(|b| (b.owner, b.memory))
        .chain(
            last.tasks
                .iter()
                .map(|t| (schema::Owner::Task(t.id), t.memory)),
        )
        .filter(|(owner, _)| *owner != schema::Owner::Internal)
        .collect();
    in_file.sort_by_key(|r| r.0);
    // Snapshots allocate (charged to `internal`): every other row and the
    // totals without `internal` are exactly the allocator's.
    assert_eq!(in_file, without_internal(&quiet));
    let internal = |rows: &[(schema::Owner, Counters)]| {
        rows.iter()
            .find(|r| r.0 == schema::Owner::Internal)
            .map(|r| r.1)
            .unwrap()
    };
    let file_internal = last
        .buckets
        .iter()
        .find(|b| b.owner == schema::Owner::Internal)
        .unwrap()
        .memory;
    let expected_total = |c: Counters, internal: Counters| {
        (
            c.live_bytes - internal.live_bytes,
            c.live_blocks - internal.live_blocks,
            c.total_bytes - internal.total_bytes,
            c.total_blocks - internal.total_blocks,
        )
    };
    let quiet_total = quiet.iter().fold(Counters::default(), |mut sum, (_, c)| {
        sum.live_bytes += c.live_bytes;
        sum.live_blocks += c.live_blocks;
        sum.total_bytes += c.total_bytes;
        sum.total_blocks += c.total_blocks;
        sum
    });
    assert_eq!(
        expected_total(last.totals, file_internal),
        expected_total(quiet_total, internal(&quiet))
    );
    println!(
        "storm: {SIGNALS} signals, {} files, all complete; last file's counters match",
        files.len()
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

fn child(dir: &Path) {
    let trigger = turbowish_capture::SignalConfig::new()
        .dir(dir)
        .install()
        .unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let workers: Vec<_> = (0..2)
        .map(|seed| {
            let stop = stop.clone();
            std::thread::spawn(move || churn(seed, &stop))
        })
        .collect();
    let mut out = std::io::stdout();
    writeln!(out, "ready").unwrap();
    let mut stdin = std::io::stdin().lock();
    let mut line = String::new();
    stdin.read_line(&mut line).unwrap();
    assert_eq!(line.trim(), "stop");
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        w.join().unwrap();
    }
    assert!(
        trigger.wait_idle(Duration::from_secs(60)),
        "snapshot thread still busy"
    );
    assert_eq!(trigger.failures(), 0);
    {
        // From here on only `internal` may change.
        let _internal = turbowish_alloc::internal();
        let stats = turbowish_alloc::stats();
        let mut rows: Rows = stats
            .tasks
            .iter()
            .map(|t| {
                let owner = match t.owner {
                    Owner::Main => schema::Owner::Main,
                    Owner::Internal => schema::Owner::Internal,
                    Owner::Overflow => schema::Owner::Overflow,
                    Owner::Task(id) => schema::Owner::Task(id),
                    Owner::TokioTask(id) => schema::Owner::TokioTask(id),
                };
                let c = t.counters;
                let counters = Counters {
                    live_bytes: c.live_bytes,
                    live_blocks: c.live_blocks,
                    total_bytes: c.total_bytes,
                    total_blocks: c.total_blocks,
                    peak_live_bytes: c.peak_live_bytes,
                };
                (owner, counters)
            })
            .collect();
        rows.sort_by_key(|r| r.0);
        let temp = dir.join("final-stats.tmp");
        std::fs::write(&temp, serde_json::to_vec(&rows).unwrap()).unwrap();
        std::fs::rename(&temp, dir.join(FINAL_STATS)).unwrap();
        writeln!(out, "stopped").unwrap();
        // Until the parent closes stdin, after its last signal was served.
        line.clear();
        stdin.read_line(&mut line).unwrap();
        assert!(trigger.wait_idle(Duration::from_secs(60)));
        assert_eq!(trigger.failures(), 0);
        writeln!(
            out,
            "written {} of {}",
            trigger.snapshots_written(),
            trigger.signals_received()
        )
        .unwrap();
    }
}

/// Allocates and frees blocks of varied sizes, keeping a window of them
/// live, until `stop`.
fn churn(seed: u64, stop: &AtomicBool) {
    let mut kept: Vec<Vec<u8>> = (0..64).map(|_| Vec::new()).collect();
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    while !stop.load(Ordering::Relaxed) {
        for _ in 0..1000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let size = 1 + (x % 4096) as usize;
            kept[(x >> 32) as usize % 64] = vec![0u8; size];
        }
    }
}

fn without_internal(rows: &Rows) -> Rows {
    rows.iter()
        .filter(|(owner, _)| *owner != schema::Owner::Internal)
        .cloned()
        .collect()
}

/// Snapshot files in `dir`, by sequence number.
fn snapshot_files(dir: &Path) -> Vec<(u64, PathBuf)> {
    let mut files: Vec<(u64, PathBuf)> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| {
            let path = e.unwrap().path();
            let name = path.file_name()?.to_str()?;
            let seq = name
                .strip_prefix("turbowish-")?
                .strip_suffix(".json")?
                .rsplit('-')
                .next()?
                .parse()
                .ok()?;
            Some((seq, path))
        })
        .collect();
    files.sort();
    files
}

fn expect_line(reader: &mut impl BufRead, expected: &str) {
    let mut line = String::new();
    reader.read_line(&mut line).unwrap();
    assert_eq!(line.trim(), expected, "child said {line:?}");
}

/// Kills the child if the parent panics, so no child outlives the test.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
