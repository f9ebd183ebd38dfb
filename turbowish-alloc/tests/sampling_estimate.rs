//! Sampling estimates: unbiased at the default interval, exact at interval 1,
//! and the interval set by `TURBOWISH_SAMPLE_INTERVAL`.
//!
//! The environment is read at the process's first allocation, before any
//! test runs, so the tests that need the variable run this binary again as
//! a child process with it set, filtered to themselves.

use std::collections::HashSet;
use std::process::Command;

use turbowish_alloc::{
    sample_interval, samples, Owner, TurboWish, DEFAULT_SAMPLE_INTERVAL, SAMPLE_INTERVAL_ENV,
};

#[global_allocator]
static A: TurboWish = TurboWish::system();

const SMALL: usize = 1024;
const SMALL_COUNT: usize = 10_000;
const LARGE: usize = 1 << 20;
const LARGE_COUNT: usize = 100;

/// Site A: many small blocks. (A loop in the function itself, and work
/// after it, so that optimised builds keep a frame of `site_a` on the stack
/// of each allocation: no tail call, no closure inlined elsewhere.)
#[inline(never)]
fn site_a() -> Vec<Vec<u8>> {
    let mut blocks = Vec::with_capacity(SMALL_COUNT);
    for _ in 0..SMALL_COUNT {
        blocks.push(Vec::with_capacity(SMALL));
    }
    std::hint::black_box(&mut blocks);
    blocks
}

/// Site B: a few large blocks.
#[inline(never)]
fn site_b() -> Vec<Vec<u8>> {
    let mut blocks = Vec::with_capacity(LARGE_COUNT);
    for _ in 0..LARGE_COUNT {
        blocks.push(Vec::with_capacity(LARGE));
    }
    std::hint::black_box(&mut blocks);
    blocks
}

/// The estimated live bytes of each site: `sum(weight * size)` over the
/// samples of the blocks it allocated.
fn estimates(a: &[Vec<u8>], b: &[Vec<u8>]) -> (f64, f64) {
    let set = |blocks: &[Vec<u8>]| -> HashSet<usize> {
        blocks.iter().map(|v| v.as_ptr() as usize).collect()
    };
    let (a, b) = (set(a), set(b));
    let mut estimate = (0.0, 0.0);
    for s in samples() {
        if a.contains(&s.address) {
            estimate.0 += s.weight * s.size as f64;
        } else if b.contains(&s.address) {
            estimate.1 += s.weight * s.size as f64;
        }
    }
    estimate
}

/// Without the variable, the interval is the allocator's: the default.
#[test]
fn the_default_interval_is_in_effect() {
    if std::env::var_os(SAMPLE_INTERVAL_ENV).is_some() {
        // Run as a child of another test of this binary.
        return;
    }
    assert_eq!(sample_interval(), DEFAULT_SAMPLE_INTERVAL);
}

/// At 512 KiB, the estimate of each site's live bytes, averaged over
/// `ROUNDS` independent rounds, is within 10% of the truth.
///
/// Why 10% cannot fail by chance: the countdown is a Poisson process over
/// the allocated bytes, so each block is sampled independently (whatever
/// else is allocated in between), with probability `p = 1 - exp(-s / T)`,
/// and one round's estimate is `(s / p) * Binomial(n, p)`, whose relative
/// standard deviation is `sqrt((1 - p) / (n p))`.
/// * Site A, 10,000 x 1 KiB: p = 0.00195 (about 20 samples per round), so
///   one round is off by 22.6% (one sd) - too noisy alone. The mean of 100
///   rounds has sd 2.26%: 10% is 4.4 sd, exceeded with probability 1e-5.
/// * Site B, 100 x 1 MiB: p = 0.865, one round's sd 4.0%, 100 rounds' 0.4%.
///
/// Each thread's generator is seeded from the order threads first sample
/// in, so the outcome is in practice the same from run to run; the bound
/// above is what makes it hold for any seed.
#[test]
fn estimates_are_unbiased_at_the_default_interval() {
    const ROUNDS: usize = 100;
    if std::env::var_os(SAMPLE_INTERVAL_ENV).is_some() {
        // Run as a child with another interval (by the tests below).
        return;
    }
    assert_eq!(sample_interval(), DEFAULT_SAMPLE_INTERVAL);
    let mut sum = (0.0, 0.0);
    for _ in 0..ROUNDS {
        let a = site_a();
        let b = site_b();
        let (ea, eb) = estimates(&a, &b);
        sum.0 += ea;
        sum.1 += eb;
    }
    let truth_a = (SMALL * SMALL_COUNT) as f64;
    let truth_b = (LARGE * LARGE_COUNT) as f64;
    let (mean_a, mean_b) = (sum.0 / ROUNDS as f64, sum.1 / ROUNDS as f64);
    assert!(
        (mean_a / truth_a - 1.0).abs() < 0.10,
        "site A: estimated {mean_a}, truth {truth_a}"
    );
    assert!(
        (mean_b / truth_b - 1.0).abs() < 0.10,
        "site B: estimated {mean_b}, truth {truth_b}"
    );
}

/// At interval 1 every block is sampled with weight 1: the estimates are
/// the truth, and the frames name the site. Runs in a child process with
/// `TURBOWISH_SAMPLE_INTERVAL=1`.
#[test]
fn exact_at_interval_1() {
    if std::env::var_os(SAMPLE_INTERVAL_ENV).is_none() {
        run_child("exact_at_interval_1", "1");
        return;
    }
    assert_eq!(sample_interval(), 1, "the variable overrides the allocator");
    let a = site_a();
    let b = site_b();
    assert_eq!(
        estimates(&a, &b),
        ((SMALL * SMALL_COUNT) as f64, (LARGE * LARGE_COUNT) as f64)
    );

    // The frames: raw return addresses, TurboWish's cut off, the site's
    // function among them.
    let all = samples();
    let first_a = a[0].as_ptr() as usize;
    let sample = all.iter().find(|s| s.address == first_a).expect("sampled");
    assert_eq!(sample.owner, Owner::Main);
    // Every function at each frame, inlined ones included.
    let mut names: Vec<String> = Vec::new();
    for &ip in &sample.frames {
        backtrace::resolve(ip as *mut _, |symbol| {
            if let Some(name) = symbol.name() {
                names.push(name.to_string());
            }
        });
    }
    assert!(
        names
            .iter()
            .any(|n| n.contains("sampling_estimate::site_a")),
        "{names:#?}"
    );
    assert!(
        !names.iter().any(|n| n.contains("turbowish_alloc::sample")),
        "{names:#?}"
    );
}

/// `TURBOWISH_SAMPLE_INTERVAL=0` turns sampling off.
#[test]
fn off_by_environment() {
    if std::env::var_os(SAMPLE_INTERVAL_ENV).is_none() {
        run_child("off_by_environment", "0");
        return;
    }
    assert_eq!(sample_interval(), 0);
    let b = site_b();
    assert!(samples().is_empty());
    drop(b);
}

/// Runs test `name` of this binary in a child process with the variable set
/// to `value`, and requires it to run and pass.
fn run_child(name: &str, value: &str) {
    let out = Command::new(std::env::current_exe().expect("test binary path"))
        .args(["--exact", name, "--test-threads", "1"])
        .env(SAMPLE_INTERVAL_ENV, value)
        .output()
        .expect("run the test binary");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("1 passed"),
        "child {name} with {SAMPLE_INTERVAL_ENV}={value} failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
