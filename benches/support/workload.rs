//! The request-like workload shared by `benches/app.rs` (TurboWish as the
//! global allocator) and `benches/app_system.rs` (plain `System`).

use std::collections::HashMap;
use std::hint::black_box;

use criterion::{BenchmarkGroup, Throughput};

/// Concurrent tasks per run.
pub(crate) const TASKS: usize = 2_000;
/// Requests each task handles.
pub(crate) const REQUESTS: usize = 4;

/// One request: parse headers into a map, build a body, transform it,
/// answer with a checksum. Allocates a few dozen blocks of 16 B to 4 KiB and
/// frees them all, as a small HTTP handler does.
async fn handle(task: usize, request: usize) -> u64 {
    let mut headers: HashMap<String, String> = HashMap::new();
    for h in 0..12 {
        headers.insert(
            format!("x-header-{h}"),
            format!("value-{task}-{request}-{h}"),
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
    words.iter().map(|w| w.len() as u64).sum::<u64>() + headers.len() as u64
}

/// Runs `TASKS` tasks of `REQUESTS` requests each, spawned through
/// TurboWish, to completion.
pub(crate) fn run(rt: &tokio::runtime::Runtime) -> u64 {
    rt.block_on(async {
        let handles: Vec<_> = (0..TASKS)
            .map(|task| {
                turbowish_trace::spawn("request-handler", async move {
                    let mut sum = 0;
                    for request in 0..REQUESTS {
                        sum += handle(task, request).await;
                    }
                    sum
                })
            })
            .collect();
        let mut total = 0;
        for h in handles {
            total += h.await.expect("handler panicked");
        }
        black_box(total)
    })
}

/// A runtime like a small service's: two worker threads.
pub(crate) fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .expect("tokio runtime")
}

/// Sets the group up so that throughput reads as requests per second.
pub(crate) fn configure<M: criterion::measurement::Measurement>(group: &mut BenchmarkGroup<'_, M>) {
    group.throughput(Throughput::Elements((TASKS * REQUESTS) as u64));
    group.sample_size(20);
}
