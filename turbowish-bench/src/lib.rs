//! The request-like service workload of `benches/service.rs`, and the
//! driver each variant's binary (`src/bin/*.rs`) runs it with.
//!
//! A process can have only one global allocator, so every allocator is a
//! binary of its own: `service-system` (plain `System`, the baseline),
//! `service-turbowish` (TurboWish's allocator, tasks spawned with plain
//! `tokio::spawn`), `service-traced` (the same, tasks spawned through
//! `turbowish::trace::spawn`), `service-heap-walk` (heap-walk mode,
//! traced tasks), and for comparison `service-tracking` (tracking-allocator
//! with a tracker that does nothing) and `service-stats` (stats_alloc).
//! Three knock-out allocators ([`floor`]) split the cost: `service-passthrough`,
//! `service-header` and `service-floor`. Each binary prints one line per
//! timed run: `run_ns N cpu_ns M` (wall time, and the process's user plus
//! system CPU time over the run).
//!
//! [`scale`] is the snapshot-at-scale workload of `benches/snapshot_scale.rs`
//! (binaries `snapshot-scale-heap-walk` and `snapshot-scale-counting`).

use std::collections::HashMap;
use std::hint::black_box;
use std::time::Instant;

pub mod floor;
pub mod scale;

/// Concurrent connections per run.
pub const CONNECTIONS: usize = 1_000;
/// Requests each connection handles by default (a run of about 0.1 s
/// on the 2-core machine the figures come from).
pub const REQUESTS: usize = 32;

/// How a variant spawns the connection tasks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Spawn {
    /// `tokio::spawn`.
    Tokio,
    /// `turbowish::trace::spawn`, which registers and names the task.
    Traced,
}

/// Runs the workload `warm_up` times untimed, then `runs` times, printing
/// `run_ns N` for each timed run. Arguments: `[runs] [warm_up] [requests]`
/// (requests per connection, [`REQUESTS`] by default).
pub fn main_with(spawn: Spawn) {
    let mut args = std::env::args().skip(1);
    let mut number = |default: usize| args.next().and_then(|a| a.parse().ok()).unwrap_or(default);
    let runs = number(5);
    let warm_up = number(1);
    let requests = number(REQUESTS);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .expect("tokio runtime");
    for _ in 0..warm_up {
        run(&rt, spawn, requests);
    }
    for _ in 0..runs {
        let cpu = cpu_ns();
        let start = Instant::now();
        run(&rt, spawn, requests);
        let wall = start.elapsed().as_nanos();
        println!("run_ns {wall} cpu_ns {}", cpu_ns() - cpu);
    }
}

/// User plus system CPU time of the whole process so far, in ns. On a
/// shared VM it leaves out the time the host took the cores away (steal),
/// which wall time counts: the quieter of the two figures.
fn cpu_ns() -> u64 {
    let mut usage = core::mem::MaybeUninit::<libc::rusage>::uninit();
    // SAFETY: getrusage writes a whole `rusage` into the pointer it is
    // given, which is valid for writes; it is read only if the call worked.
    let usage = unsafe {
        if libc::getrusage(libc::RUSAGE_SELF, usage.as_mut_ptr()) != 0 {
            return 0;
        }
        usage.assume_init()
    };
    let ns = |t: libc::timeval| t.tv_sec as u64 * 1_000_000_000 + t.tv_usec as u64 * 1_000;
    ns(usage.ru_utime) + ns(usage.ru_stime)
}

/// One run: [`CONNECTIONS`] tasks, each handling `requests` requests, to
/// completion.
pub fn run(rt: &tokio::runtime::Runtime, spawn: Spawn, requests: usize) -> u64 {
    rt.block_on(async {
        let handles: Vec<tokio::task::JoinHandle<u64>> = (0..CONNECTIONS)
            .map(|connection| {
                let serve = async move {
                    let mut sum = 0;
                    for request in 0..requests {
                        sum += handle(connection, request).await;
                    }
                    sum
                };
                match spawn {
                    Spawn::Tokio => tokio::spawn(serve),
                    Spawn::Traced => turbowish::trace::spawn("connection", serve).into_inner(),
                }
            })
            .collect();
        let mut total = 0;
        for h in handles {
            total += h.await.expect("connection task panicked");
        }
        black_box(total)
    })
}

/// One request, as a small HTTP handler does it: headers parsed into a
/// map, a body built and transformed, a response formatted; a few dozen
/// blocks of 16 B to 4 KiB, all freed, with awaits between the steps so
/// that the connections interleave on the workers.
async fn handle(connection: usize, request: usize) -> u64 {
    let mut headers: HashMap<String, String> = HashMap::new();
    for h in 0..12 {
        headers.insert(
            format!("x-header-{h}"),
            format!("value-{connection}-{request}-{h}"),
        );
    }
    tokio::task::yield_now().await;
    let mut body: Vec<u8> = Vec::with_capacity(256);
    for (k, v) in &headers {
        body.extend_from_slice(k.as_bytes());
        body.push(b':');
        body.extend_from_slice(v.as_bytes());
        body.push(b'\n');
    }
    let upper: Vec<u8> = body.iter().map(u8::to_ascii_uppercase).collect();
    let words: Vec<String> = String::from_utf8_lossy(&upper)
        .split('\n')
        .map(str::to_owned)
        .collect();
    tokio::task::yield_now().await;
    let response = format!(
        "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nx-connection: {connection}\r\n\r\n",
        body.len()
    );
    words.iter().map(|w| w.len() as u64).sum::<u64>() + response.len() as u64
}
