//! Snapshot cost at scale (issue #17): the workload of
//! `turbowish_bench::scale` (4,000,000 live blocks, about 0.7 GiB, in 1,000
//! parked tasks on 2 workers) run once in heap-walk mode and once in
//! counting mode per round, each in a process of its own, one `SIGUSR1`
//! snapshot each. The table gives the median (and range) over the rounds of
//! the time from the signal to the file, the peak memory growth during the
//! snapshot, the longest gap of a 1 ms ticker on the runtime meanwhile, and
//! heap-walk mode's steady memory over counting mode's, per live block.
//!
//! Run: `cargo bench -p turbowish-bench --bench snapshot_scale -- 3` (3
//! rounds; the number of blocks may follow: `-- 3 4000000`). Under `cargo
//! test` each mode runs once with 20,000 blocks: a check that both run and
//! print every figure, not a measurement. The figures are in
//! `book/src/overhead.md`.

use std::collections::HashMap;
use std::process::Command;

const HEAP_WALK: &str = env!("CARGO_BIN_EXE_snapshot-scale-heap-walk");
const COUNTING: &str = env!("CARGO_BIN_EXE_snapshot-scale-counting");

/// Every figure a run prints.
const FIGURES: [&str; 7] = [
    "live_blocks",
    "live_bytes",
    "rss_before_bytes",
    "snapshot_ms",
    "peak_growth_bytes",
    "max_tick_gap_ms",
    "file_bytes",
];

fn main() {
    let measuring = std::env::args().any(|a| a == "--bench");
    let numbers: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let (rounds, blocks) = if measuring {
        (
            numbers.first().copied().unwrap_or(3),
            numbers
                .get(1)
                .copied()
                .unwrap_or(turbowish_bench::scale::BLOCKS),
        )
    } else {
        (1, 20_000)
    };
    let mut walk: Vec<HashMap<String, f64>> = Vec::new();
    let mut count: Vec<HashMap<String, f64>> = Vec::new();
    for round in 0..rounds {
        // Alternate which mode goes first.
        if round % 2 == 0 {
            walk.push(run(HEAP_WALK, blocks));
            count.push(run(COUNTING, blocks));
        } else {
            count.push(run(COUNTING, blocks));
            walk.push(run(HEAP_WALK, blocks));
        }
    }
    let per_block = |runs: &[HashMap<String, f64>], key: &str| -> Vec<f64> {
        runs.iter().map(|r| r[key] / r["live_blocks"]).collect()
    };
    let figure = |runs: &[HashMap<String, f64>], key: &str| -> Vec<f64> {
        runs.iter().map(|r| r[key]).collect()
    };
    let steady: Vec<f64> = walk
        .iter()
        .zip(&count)
        .map(|(w, c)| (w["rss_before_bytes"] - c["rss_before_bytes"]) / w["live_blocks"])
        .collect();
    println!(
        "snapshot at scale: {rounds} rounds, {:.0} live blocks, {:.0} MiB live",
        median(&figure(&walk, "live_blocks")),
        median(&figure(&walk, "live_bytes")) / (1 << 20) as f64
    );
    println!("{:<48} {:>10} {:>21}", "figure", "median", "range");
    let row = |label: &str, values: &[f64]| {
        let (m, lo, hi) = spread(values);
        println!("{label:<48} {m:>10.1} {lo:>10.1}-{hi:<10.1}");
    };
    row(
        "heap-walk snapshot, signal to file (ms)",
        &figure(&walk, "snapshot_ms"),
    );
    row(
        "heap-walk peak growth during snapshot (B/block)",
        &per_block(&walk, "peak_growth_bytes"),
    );
    row(
        "heap-walk peak growth during snapshot (MiB)",
        &figure(&walk, "peak_growth_bytes")
            .iter()
            .map(|b| b / (1 << 20) as f64)
            .collect::<Vec<_>>(),
    );
    row("heap-walk steady RSS over counting (B/block)", &steady);
    row(
        "heap-walk longest tick gap (ms)",
        &figure(&walk, "max_tick_gap_ms"),
    );
    row(
        "heap-walk floor: heap view alone (ms)",
        &figure(&walk, "floor_view_ms"),
    );
    row(
        "heap-walk floor: one read of every block (ms)",
        &figure(&walk, "floor_read_ms"),
    );
    row(
        "counting snapshot, signal to file (ms)",
        &figure(&count, "snapshot_ms"),
    );
    row(
        "counting peak growth during snapshot (MiB)",
        &figure(&count, "peak_growth_bytes")
            .iter()
            .map(|b| b / (1 << 20) as f64)
            .collect::<Vec<_>>(),
    );
    row(
        "counting longest tick gap (ms)",
        &figure(&count, "max_tick_gap_ms"),
    );
    row(
        "heap-walk snapshot file (KiB)",
        &figure(&walk, "file_bytes")
            .iter()
            .map(|b| b / 1024.0)
            .collect::<Vec<_>>(),
    );
}

/// Runs one process; its figures by name.
fn run(binary: &str, blocks: usize) -> HashMap<String, f64> {
    let out = Command::new(binary)
        .arg(blocks.to_string())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {binary}: {e}"));
    assert!(out.status.success(), "{binary} failed: {out:?}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let figures: HashMap<String, f64> = stdout
        .lines()
        .filter_map(|l| l.split_once(' '))
        .filter_map(|(k, v)| Some((k.to_owned(), v.trim().parse().ok()?)))
        .collect();
    for key in FIGURES {
        assert!(
            figures.contains_key(key),
            "{binary} printed no {key}: {stdout}"
        );
    }
    assert!(
        figures["live_blocks"] >= blocks as f64,
        "{binary} keeps fewer blocks than asked: {stdout}"
    );
    figures
}

fn median(values: &[f64]) -> f64 {
    spread(values).0
}

/// Median, min and max.
fn spread(values: &[f64]) -> (f64, f64, f64) {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    (v[v.len() / 2], v[0], v[v.len() - 1])
}
