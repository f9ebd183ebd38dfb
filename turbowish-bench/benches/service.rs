//! Service-level overhead: the request-like workload of `turbowish-bench`
//! (1,000 connection tasks on 2 workers, each handling 32 requests of
//! header maps, bodies and formatting) run by one process per allocator
//! variant, the variants alternated round by round so that drift on a
//! shared machine weighs on all alike. Each round runs every variant once
//! (its fastest of `RUNS` timed runs after a warm-up) and divides by that
//! round's `System` figure; the table gives the median and the range of
//! those ratios over the rounds, for wall time and for the process's CPU
//! time (user + system: on a shared VM it leaves out the time the host
//! took the cores away, so it moves less). The first three variants after
//! `System` are the knock-outs of `turbowish_bench::floor`: what being a
//! wrapper, having a header, and the least per-task counting cost here.
//!
//! Run: `cargo bench -p turbowish-bench --bench service -- 31` (31
//! rounds; 15 without the number). Under `cargo test` each variant runs
//! once with one request per connection: a check that all of them run, not
//! a measurement. The figures are in `book/src/overhead.md`.

use std::process::Command;

/// The variants, the baseline first: (label, binary).
const VARIANTS: [(&str, &str); 9] = [
    ("System", env!("CARGO_BIN_EXE_service-system")),
    (
        "knock-out: pass-through wrapper",
        env!("CARGO_BIN_EXE_service-passthrough"),
    ),
    (
        "knock-out: 8-byte header only",
        env!("CARGO_BIN_EXE_service-header"),
    ),
    (
        "knock-out: header, try_id, TLS counter",
        env!("CARGO_BIN_EXE_service-floor"),
    ),
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
    let mut wall = Figures::new();
    let mut cpu = Figures::new();
    for round in 0..rounds {
        // Rotate the order, so no variant always runs right after another.
        let mut times = vec![(0.0, 0.0); VARIANTS.len()];
        for k in 0..VARIANTS.len() {
            let i = (k + round) % VARIANTS.len();
            times[i] = fastest_run_ns(VARIANTS[i].1, runs, warm_up, requests);
        }
        wall.add(times.iter().map(|t| t.0));
        cpu.add(times.iter().map(|t| t.1));
    }
    println!(
        "service overhead: {rounds} rounds, a process per variant, fastest of {runs} runs each"
    );
    println!(
        "{:<40} {:>9} {:>8} {:>13} {:>9} {:>8} {:>13}",
        "variant", "wall (ms)", "ratio", "range", "CPU (ms)", "ratio", "range"
    );
    for (i, (label, _)) in VARIANTS.iter().enumerate() {
        let (w, c) = (wall.row(i), cpu.row(i));
        println!(
            "{label:<40} {:>9.1} {:>7.3}x {:>5.2}-{:.2}x {:>9.1} {:>7.3}x {:>5.2}-{:.2}x",
            w.0, w.1, w.2, w.3, c.0, c.1, c.2, c.3
        );
    }
}

/// One measure (wall or CPU time) of every variant over the rounds.
struct Figures {
    /// Per variant, each round's figure in ms.
    ms: Vec<Vec<f64>>,
    /// Per variant, each round's figure over the same round's `System`.
    ratios: Vec<Vec<f64>>,
}

impl Figures {
    fn new() -> Figures {
        Figures {
            ms: vec![Vec::new(); VARIANTS.len()],
            ratios: vec![Vec::new(); VARIANTS.len()],
        }
    }

    /// Adds a round: each variant's time in ns, the baseline first.
    fn add(&mut self, ns: impl Iterator<Item = f64>) {
        let ns: Vec<f64> = ns.collect();
        for (i, t) in ns.iter().enumerate() {
            self.ms[i].push(t / 1e6);
            self.ratios[i].push(t / ns[0]);
        }
    }

    /// Variant `i`'s median ms, and its median, lowest and highest ratio.
    fn row(&self, i: usize) -> (f64, f64, f64, f64) {
        let (ms, _, _) = spread(&self.ms[i]);
        let (median, low, high) = spread(&self.ratios[i]);
        (ms, median, low, high)
    }
}

/// Runs `binary` once; its fastest timed run's wall and CPU time in ns
/// (each the fastest of the runs).
fn fastest_run_ns(binary: &str, runs: usize, warm_up: usize, requests: usize) -> (f64, f64) {
    let out = Command::new(binary)
        .args([runs, warm_up, requests].map(|n| n.to_string()))
        .output()
        .unwrap_or_else(|e| panic!("cannot run {binary}: {e}"));
    assert!(out.status.success(), "{binary} failed: {out:?}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let times: Vec<(f64, f64)> = stdout
        .lines()
        .filter_map(|l| {
            let mut words = l.split_whitespace();
            match (words.next(), words.next(), words.next(), words.next()) {
                (Some("run_ns"), Some(wall), Some("cpu_ns"), Some(cpu)) => Some((
                    wall.parse().expect("run_ns is a number"),
                    cpu.parse().expect("cpu_ns is a number"),
                )),
                _ => None,
            }
        })
        .collect();
    assert_eq!(times.len(), runs, "{binary} printed {stdout}");
    let fastest = |f: fn(&(f64, f64)) -> f64| times.iter().map(f).fold(f64::INFINITY, f64::min);
    (fastest(|t| t.0), fastest(|t| t.1))
}

/// Median, min and max.
fn spread(values: &[f64]) -> (f64, f64, f64) {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    (v[v.len() / 2], v[0], v[v.len() - 1])
}
