//! Service-level overhead: the request-like workload of `turbowish-bench`
//! (1,000 connection tasks on 2 workers, each handling 32 requests of
//! header maps, bodies and formatting) run by one process per allocator
//! variant, the variants alternated round by round so that drift on a
//! shared machine weighs on all alike. Each round runs every variant once
//! (its fastest of `RUNS` timed runs after a warm-up) and divides by that
//! round's `System` figure; the table gives the median and the range of
//! those ratios over the rounds.
//!
//! Run: `cargo bench -p turbowish-bench --bench service -- 31` (31
//! rounds; 15 without the number). Under `cargo test` each variant runs
//! once with one request per connection: a check that all of them run, not
//! a measurement. The figures are in `book/src/overhead.md`.

use std::process::Command;

/// The variants, the baseline first: (label, binary).
const VARIANTS: [(&str, &str); 6] = [
    ("System", env!("CARGO_BIN_EXE_service-system")),
    (
        "TurboWish, tokio::spawn",
        env!("CARGO_BIN_EXE_service-turbowish"),
    ),
    (
        "TurboWish, trace::spawn",
        env!("CARGO_BIN_EXE_service-traced"),
    ),
    (
        "TurboWish heap-walk, trace::spawn",
        env!("CARGO_BIN_EXE_service-heap-walk"),
    ),
    (
        "tracking-allocator, do-nothing tracker",
        env!("CARGO_BIN_EXE_service-tracking"),
    ),
    ("stats_alloc", env!("CARGO_BIN_EXE_service-stats")),
];

/// Timed runs per process (its fastest counts).
const RUNS: usize = 5;

fn main() {
    let measuring = std::env::args().any(|a| a == "--bench");
    let rounds = if measuring {
        std::env::args()
            .skip(1)
            .find_map(|a| a.parse::<usize>().ok())
            .unwrap_or(15)
    } else {
        1
    };
    let (runs, warm_up, requests) = if measuring {
        (RUNS, 1, turbowish_bench::REQUESTS)
    } else {
        (1, 0, 1)
    };
    let mut ratios: Vec<Vec<f64>> = vec![Vec::new(); VARIANTS.len()];
    let mut best_ms: Vec<Vec<f64>> = vec![Vec::new(); VARIANTS.len()];
    for round in 0..rounds {
        // Rotate the order, so no variant always runs right after another.
        let mut times = vec![0.0; VARIANTS.len()];
        for k in 0..VARIANTS.len() {
            let i = (k + round) % VARIANTS.len();
            times[i] = fastest_run_ns(VARIANTS[i].1, runs, warm_up, requests);
        }
        for (i, t) in times.iter().enumerate() {
            ratios[i].push(t / times[0]);
            best_ms[i].push(t / 1e6);
        }
    }
    println!(
        "service overhead: {rounds} rounds, a process per variant, fastest of {runs} runs each"
    );
    println!(
        "{:<40} {:>10} {:>9} {:>17}",
        "variant", "run (ms)", "ratio", "ratio range"
    );
    for (i, (label, _)) in VARIANTS.iter().enumerate() {
        let (ms, _, _) = spread(&best_ms[i]);
        let (median, low, high) = spread(&ratios[i]);
        println!("{label:<40} {ms:>10.1} {median:>8.3}x {low:>7.3}-{high:.3}x");
    }
}

/// Runs `binary` once; its fastest timed run in ns.
fn fastest_run_ns(binary: &str, runs: usize, warm_up: usize, requests: usize) -> f64 {
    let out = Command::new(binary)
        .args([runs, warm_up, requests].map(|n| n.to_string()))
        .output()
        .unwrap_or_else(|e| panic!("cannot run {binary}: {e}"));
    assert!(out.status.success(), "{binary} failed: {out:?}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let times: Vec<f64> = stdout
        .lines()
        .filter_map(|l| l.strip_prefix("run_ns "))
        .map(|n| n.trim().parse().expect("run_ns is a number"))
        .collect();
    assert_eq!(times.len(), runs, "{binary} printed {stdout}");
    times.into_iter().fold(f64::INFINITY, f64::min)
}

/// Median, min and max.
fn spread(values: &[f64]) -> (f64, f64, f64) {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    (v[v.len() / 2], v[0], v[v.len() - 1])
}
