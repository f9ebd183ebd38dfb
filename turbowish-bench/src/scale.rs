//! Snapshot cost at scale (issue #17): a process holding millions of live
//! blocks in parked tasks takes one snapshot through `SIGUSR1`, the way a
//! user does, and prints what it cost.
//!
//! Each binary (`snapshot-scale-heap-walk`, `snapshot-scale-counting`)
//! installs its allocator and calls [`main`]. Arguments: `[blocks]
//! [tasks]` ([`BLOCKS`] and [`TASKS`] by default). Output, one figure a
//! line, `name value`:
//!
//! * `live_blocks`, `live_bytes`: the allocator's live counters once every
//!   task has built its data (all blocks of the process, the workload's and
//!   the runtime's).
//! * `rss_before_bytes`: resident memory just before the signal (the
//!   steady cost of the mode: compare the two binaries at the same point).
//! * `snapshot_ms`: from the signal to the snapshot file's final name
//!   existing (the writer renames a complete file into place).
//! * `peak_growth_bytes`: the high-water mark of resident memory during the
//!   snapshot (reset through `/proc/self/clear_refs` before the signal),
//!   minus `rss_before_bytes`.
//! * `max_tick_gap_ms`: the longest gap between ticks of a task that sleeps
//!   1 ms at a time on the runtime, while the snapshot runs: the longest
//!   stall the runtime saw (about 1 ms when there is none).
//! * `file_bytes`: the snapshot file's size.
//! * In heap-walk mode, after the snapshot, the floor a walk cannot go
//!   below: `floor_view_ms`, taking a heap view (and dropping it), and
//!   `floor_read_ms`, reading every word of every live block once in
//!   address order with nothing else done.

use std::collections::HashMap;
use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Live blocks the workload keeps by default: the issue's 4,000,000.
pub const BLOCKS: usize = 4_000_000;
/// Tasks sharing them by default.
pub const TASKS: usize = 1_000;

/// One record of a task's table: a boxed struct that owns a string and may
/// share a pooled value.
struct Record {
    id: u64,
    payload: [u64; 14],
    name: String,
    shared: Option<Arc<Pooled>>,
}

/// A node of a task's singly linked list: blocks pointing at blocks.
struct Node {
    data: [u8; 112],
    next: Option<Box<Node>>,
}

/// A value shared by several tasks through `Arc`.
struct Pooled {
    bytes: [u8; 200],
}

/// What one task keeps alive while it is parked. Per unit of ten blocks:
/// three records (a box and its string each: six blocks), two or three
/// map values, one list node and a few loose strings, plus the buffers of
/// the collections themselves; with the shared pool, about 160 B asked per
/// block on average.
struct TaskData {
    // Boxed on purpose: a block per record, pointed at from the vector's
    // buffer, as tables of heap objects are.
    #[allow(clippy::vec_box)]
    records: Vec<Box<Record>>,
    index: HashMap<u64, Vec<u8>>,
    list: Option<Box<Node>>,
    strings: Vec<String>,
}

/// A xorshift generator: sizes vary, the same ones on every run.
struct Rng(u64);

impl Rng {
    fn below(&mut self, bound: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % bound as u64) as usize
    }
}

impl TaskData {
    /// About `blocks` blocks (each record is two) drawing on `pool`.
    fn build(task: usize, blocks: usize, pool: &[Arc<Pooled>]) -> TaskData {
        let mut rng =
            Rng(0x9e37_79b9_7f4a_7c15 ^ (task as u64 + 1).wrapping_mul(0x2545_f491_4f6c_dd1d));
        let records_n = blocks * 3 / 10;
        let map_n = blocks / 4;
        let list_n = blocks / 10;
        let strings_n = blocks.saturating_sub(2 * records_n + map_n + list_n);
        let records = (0..records_n)
            .map(|i| {
                let len = 16 + rng.below(256);
                let shared =
                    (i % 8 == 0 && !pool.is_empty()).then(|| pool[rng.below(pool.len())].clone());
                Box::new(Record {
                    id: i as u64,
                    payload: [i as u64; 14],
                    name: "r".repeat(len),
                    shared,
                })
            })
            .collect();
        let index = (0..map_n)
            .map(|i| (i as u64, vec![task as u8; 64 + rng.below(320)]))
            .collect();
        let mut list = None;
        for _ in 0..list_n {
            list = Some(Box::new(Node {
                data: [1; 112],
                next: list,
            }));
        }
        let strings = (0..strings_n)
            .map(|_| "s".repeat(32 + rng.below(448)))
            .collect();
        TaskData {
            records,
            index,
            list,
            strings,
        }
    }

    /// Reads everything once, so nothing is optimised away.
    fn checksum(&self) -> u64 {
        let mut sum = self.records.iter().fold(0u64, |s, r| {
            s + r.id
                + r.payload[0]
                + r.name.len() as u64
                + r.shared.as_ref().map_or(0, |p| u64::from(p.bytes[0]))
        });
        sum += self.index.values().map(|v| v.len() as u64).sum::<u64>();
        let mut node = self.list.as_deref();
        while let Some(n) = node {
            sum += u64::from(n.data[0]);
            node = n.next.as_deref();
        }
        sum + self.strings.iter().map(|s| s.len() as u64).sum::<u64>()
    }
}

/// The longest gap between ticks while `MEASURING`, in ns.
static MAX_GAP_NS: AtomicU64 = AtomicU64::new(0);
static MEASURING: AtomicBool = AtomicBool::new(false);

/// Builds the workload, takes one snapshot through `SIGUSR1` into a fresh
/// temporary `TURBOWISH_DIR`, and prints the figures (see the module docs).
pub fn main() {
    let mut args = std::env::args().skip(1);
    let mut number = |default: usize| args.next().and_then(|a| a.parse().ok()).unwrap_or(default);
    let blocks = number(BLOCKS);
    let tasks = number(TASKS).max(1);
    // A task that panics would leave the others waiting for it forever.
    let report = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        report(info);
        std::process::exit(101);
    }));

    let dir = std::env::temp_dir().join(format!("turbowish-scale-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("create the snapshot directory");
    // SAFETY (of the call, not an unsafe block): set before any other
    // thread exists that could read the environment.
    std::env::set_var("TURBOWISH_DIR", &dir);
    turbowish::capture::install_signal_handler().expect("install the SIGUSR1 trigger");

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_time()
        .build()
        .expect("tokio runtime");

    // One shared value per hundred blocks, held by the main thread and by
    // the records (one in eight) that point at it.
    let pool: Arc<Vec<Arc<Pooled>>> = Arc::new(
        (0..blocks / 100)
            .map(|i| {
                Arc::new(Pooled {
                    bytes: [i as u8; 200],
                })
            })
            .collect(),
    );
    let per_task = (blocks - pool.len()) / tasks;
    let _in_runtime = rt.enter();
    let ready = Arc::new(AtomicUsize::new(0));
    for task in 0..tasks {
        let pool = pool.clone();
        let ready = ready.clone();
        let _parked = turbowish::trace::spawn("holder", async move {
            let data = TaskData::build(task, per_task, &pool);
            drop(pool);
            black_box(data.checksum());
            ready.fetch_add(1, Ordering::Release);
            // Parked for good, its data in its state; the process exits
            // without dropping it.
            std::future::pending::<()>().await;
            black_box(&data);
        });
    }
    rt.spawn(ticker());
    while ready.load(Ordering::Acquire) < tasks {
        std::thread::sleep(Duration::from_millis(10));
    }
    // Let the workers go idle and the allocator's batches settle.
    std::thread::sleep(Duration::from_millis(200));
    let stats = turbowish::alloc::stats();
    let rss_before = status_kib("VmRSS:") * 1024;
    std::fs::write("/proc/self/clear_refs", "5").expect("reset the RSS high-water mark");

    MAX_GAP_NS.store(0, Ordering::SeqCst);
    MEASURING.store(true, Ordering::SeqCst);
    let signalled = Instant::now();
    // SAFETY: kill with this process's id and a signal whose handler the
    // trigger installed; no memory is involved.
    unsafe { libc::kill(libc::getpid(), libc::SIGUSR1) };
    let file = wait_for_snapshot(&dir);
    let snapshot_time = signalled.elapsed();
    MEASURING.store(false, Ordering::SeqCst);
    let peak = status_kib("VmHWM:") * 1024;

    println!("live_blocks {}", stats.total.live_blocks);
    println!("live_bytes {}", stats.total.live_bytes);
    println!("rss_before_bytes {rss_before}");
    println!("snapshot_ms {:.1}", snapshot_time.as_secs_f64() * 1e3);
    println!("peak_growth_bytes {}", peak.saturating_sub(rss_before));
    println!(
        "max_tick_gap_ms {:.2}",
        MAX_GAP_NS.load(Ordering::SeqCst) as f64 / 1e6
    );
    let file_bytes = std::fs::metadata(&file).map_or(0, |m| m.len());
    println!("file_bytes {file_bytes}");
    if turbowish::alloc::heap_walk_enabled() {
        floor();
    }
    let _ = std::fs::remove_dir_all(&dir);
    // Freeing 0.7 GiB block by block would only slow the driver down.
    std::process::exit(0);
}

/// Times a heap view, and one read of every live block in address order.
fn floor() {
    let started = Instant::now();
    drop(turbowish::alloc::heap_view().expect("heap-walk mode"));
    println!("floor_view_ms {:.1}", started.elapsed().as_secs_f64() * 1e3);
    let view = turbowish::alloc::heap_view().expect("heap-walk mode");
    let blocks = view.compact();
    let started = Instant::now();
    let mut sum = 0usize;
    for g in 0..blocks.groups().len() {
        let base = blocks.groups()[g].0;
        for i in blocks.group_span(g) {
            let (start, size) = (blocks.start_in(base, i), blocks.size(i));
            let mut at = start.next_multiple_of(8);
            while at + 8 <= start + size {
                // SAFETY: a block of the view, which keeps it allocated
                // (frees are paused); aligned word reads copy its bytes,
                // as the walker's scanner does.
                sum = sum.wrapping_add(unsafe { std::ptr::read_volatile(at as *const usize) });
                at += 8;
            }
        }
    }
    println!("floor_read_ms {:.1}", started.elapsed().as_secs_f64() * 1e3);
    black_box(sum);
}

/// Ticks every millisecond on the runtime, recording the longest gap while
/// a snapshot is measured.
async fn ticker() {
    let mut last = Instant::now();
    loop {
        tokio::time::sleep(Duration::from_millis(1)).await;
        let now = Instant::now();
        if MEASURING.load(Ordering::Relaxed) {
            let gap = (now - last).as_nanos() as u64;
            MAX_GAP_NS.fetch_max(gap, Ordering::Relaxed);
        }
        last = now;
    }
}

/// Waits for the first snapshot file (final name) in `dir`.
fn wait_for_snapshot(dir: &Path) -> PathBuf {
    let prefix = format!("turbowish-{}-", std::process::id());
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        let found = std::fs::read_dir(dir)
            .expect("read the snapshot directory")
            .filter_map(Result::ok)
            .map(|e| e.path())
            .find(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with(&prefix) && n.ends_with(".json"))
            });
        if let Some(path) = found {
            return path;
        }
        assert!(
            Instant::now() < deadline,
            "no snapshot in {}",
            dir.display()
        );
        std::thread::sleep(Duration::from_micros(500));
    }
}

/// A `kB` line of `/proc/self/status`.
fn status_kib(key: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("no {key} in /proc/self/status"))
}
