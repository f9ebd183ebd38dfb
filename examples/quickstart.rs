//! The README's main job: a small tokio service whose tasks use memory in
//! different ways, with TurboWish installed. It lets the service run for a
//! moment, then prints the per-task live-bytes table.
//!
//! Run: `cargo run --release --example quickstart` (with `TURBOWISH_DIR`
//! set it also writes a snapshot there for the `turbowish` CLI).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, watch, Barrier};
use turbowish::snapshot::table::{MemoryReport, SortKey};

#[global_allocator]
static ALLOC: turbowish::TurboWish = turbowish::TurboWish::system();

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let ready = Arc::new(Barrier::new(4));
    let (shutdown_tx, shutdown) = watch::channel(false);

    // A cache that fills up to about 6 MiB of entries and keeps them.
    let cache = {
        let (ready, mut shutdown) = (ready.clone(), shutdown.clone());
        turbowish::trace::spawn("cache", async move {
            let mut cache: HashMap<u32, Vec<u8>> = HashMap::new();
            for key in 0..1536 {
                cache.insert(key, vec![key as u8; 4096]);
                if key % 256 == 0 {
                    tokio::task::yield_now().await;
                }
            }
            ready.wait().await;
            let _ = shutdown.wait_for(|&stop| stop).await;
            cache.len()
        })
    };

    // A pool of 32 preallocated 64 KiB I/O buffers.
    let pool = {
        let (ready, mut shutdown) = (ready.clone(), shutdown.clone());
        turbowish::trace::spawn("buffer-pool", async move {
            let buffers: Vec<Vec<u8>> = (0..32).map(|_| vec![0u8; 64 * 1024]).collect();
            ready.wait().await;
            let _ = shutdown.wait_for(|&stop| stop).await;
            buffers.len()
        })
    };

    // A logger that forgets to trim its history: it keeps every line.
    let (log_tx, mut log_rx) = mpsc::channel::<String>(1024);
    let logger = {
        let (ready, mut shutdown) = (ready.clone(), shutdown.clone());
        turbowish::trace::spawn("leaky-logger", async move {
            let mut history = Vec::new();
            while let Some(line) = log_rx.recv().await {
                history.push(line);
            }
            ready.wait().await;
            let _ = shutdown.wait_for(|&stop| stop).await;
            history.len()
        })
    };

    // Request handlers: allocate, transform, free, log one line, finish.
    let mut handlers = Vec::new();
    for request in 0..200u32 {
        let log_tx = log_tx.clone();
        let handler = turbowish::trace::spawn("request-handler", async move {
            let body: Vec<u32> = (0..2048).map(|i| i ^ request).collect();
            let checksum: u64 = body.iter().map(|&x| u64::from(x)).sum();
            tokio::time::sleep(Duration::from_millis(1)).await;
            let _ = log_tx
                .send(format!(
                    "request {request}: {} words, checksum {checksum}",
                    body.len()
                ))
                .await;
        });
        handlers.push(handler);
    }
    drop(log_tx);
    for handler in handlers {
        handler.await.expect("handler panicked");
    }

    ready.wait().await;
    let snapshot = turbowish::capture::snapshot();
    println!("TurboWish: live memory by task\n");
    let report = MemoryReport::new(&snapshot, SortKey::Live, 10);
    print!("{}", report.table());
    println!(
        "\nBytes are charged to the task that allocated them: the log lines that\n\
         leaky-logger keeps were formatted by the request handlers, so they show\n\
         up under request-handler although those tasks have finished."
    );

    // With `TURBOWISH_DIR` set (as `tests/examples_snapshots.rs` does), keep
    // the snapshot of this moment, the tasks still holding their memory.
    if let Some(dir) = std::env::var_os("TURBOWISH_DIR") {
        let path = turbowish::capture::write_to_dir(&snapshot, dir.as_ref()).unwrap_or_else(|e| {
            eprintln!("quickstart: no snapshot in $TURBOWISH_DIR: {e}");
            std::process::exit(1)
        });
        println!("snapshot: {}", path.display());
    }

    shutdown_tx.send_replace(true);
    for task in [cache, pool, logger] {
        task.await.expect("task panicked");
    }
}
