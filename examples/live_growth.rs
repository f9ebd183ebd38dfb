//! A program to watch with `turbowish top`: it serves the live view and
//! runs a task whose memory keeps growing beside a steady one, a writer that
//! holds a lock for seconds while two readers wait for it, and a stream of
//! short request tasks.
//!
//! - `grower` adds 400 KiB every 100 ms (4 MiB/s); at 96 MiB it lets go of
//!   everything and starts again. It passes `steady-cache` (4 MiB) within
//!   about a second and tops the table sorted by live bytes or growth.
//! - `ledger-writer` holds the mutex `ledger` for 5 s at a time, with a
//!   half-second break; `reader-1` and `reader-2` wait for it.
//! - `request` tasks (20 a second) each allocate 16 KiB and finish;
//!   `requests`, which spawns them, sends each one's size down the channel
//!   `audit` to `auditor`, which adds them up. The channel is made before
//!   either task exists and its ends are moved into them: the resource
//!   pane names the tasks owning the ends (`owns`), found by the
//!   program's scan of its tasks' state.
//!
//! Run: `cargo run --release --example live_growth`, then, in another
//! terminal, the `turbowish top` command it prints. It stops when its
//! standard input ends or a line is typed (Enter), or after SECONDS with
//! `-- SECONDS`; it then removes its socket. The snapshot files `s` writes
//! go to `$TURBOWISH_DIR` (default: the current directory).
//!
//! `turbowish`'s `tests/live_top.rs` runs it and watches it, through the
//! socket and through the real viewer in tmux.

use std::io::BufRead;
use std::sync::Arc;
use std::time::Duration;

use turbowish::trace::sync::{mpsc, Mutex};
use turbowish::trace::TracedExt;

#[global_allocator]
static ALLOC: turbowish::TurboWish = turbowish::TurboWish::system();

const STEP: usize = 400 << 10;
const CEILING: usize = 96 << 20;

async fn grow() {
    let mut held: Vec<Box<[u8]>> = Vec::new();
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    loop {
        tick.tick().await;
        if held.len() * STEP >= CEILING {
            held = Vec::new();
        }
        held.push(vec![1u8; STEP].into_boxed_slice());
    }
}

async fn write_ledger(ledger: Arc<Mutex<u64>>) {
    loop {
        let mut entry = async { ledger.lock().await }.traced("lock").await;
        tokio::time::sleep(Duration::from_secs(5))
            .traced("post_batch")
            .await;
        *entry += 1;
        drop(entry);
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

async fn read_ledger(ledger: Arc<Mutex<u64>>) {
    loop {
        let total = *async { ledger.lock().await }.traced("read").await;
        std::hint::black_box(total);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn requests(audit: mpsc::Sender<usize>) {
    let mut tick = tokio::time::interval(Duration::from_millis(50));
    loop {
        tick.tick().await;
        turbowish::trace::spawn("request", async {
            let body = vec![0u8; 16 << 10];
            tokio::time::sleep(Duration::from_millis(10)).await;
            std::hint::black_box(body);
        });
        if audit.send(16 << 10).await.is_err() {
            return;
        }
    }
}

async fn audit(mut sizes: mpsc::Receiver<usize>) {
    let mut total = 0usize;
    while let Some(size) = sizes.recv().await {
        total = total.wrapping_add(size);
        std::hint::black_box(total);
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let trigger = turbowish::capture::serve()?;
    let socket = trigger.live_socket().ok_or("no live socket")?;
    let pid = std::process::id();
    println!("live socket: {}", socket.display());
    println!(
        "watch it: TURBOWISH_DIR={} turbowish top --pid {pid}",
        trigger.dir().display()
    );
    println!("stop it: press Enter");

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.spawn(async {
        turbowish::trace::spawn("steady-cache", async {
            let cache = vec![2u8; 4 << 20];
            std::future::pending::<()>().await;
            drop(cache);
        });
        turbowish::trace::spawn("grower", grow());
        let ledger = Arc::new(Mutex::new_named("ledger", 0));
        turbowish::trace::spawn("ledger-writer", write_ledger(ledger.clone()));
        // The readers start once the writer holds the lock.
        tokio::time::sleep(Duration::from_millis(50)).await;
        turbowish::trace::spawn("reader-1", read_ledger(ledger.clone()));
        turbowish::trace::spawn("reader-2", read_ledger(ledger));
        let (audit_tx, audit_rx) = mpsc::channel_named("audit", 64);
        turbowish::trace::spawn("requests", requests(audit_tx));
        turbowish::trace::spawn("auditor", audit(audit_rx));
    });

    match std::env::args().nth(1) {
        Some(seconds) => std::thread::sleep(Duration::from_secs_f64(seconds.parse()?)),
        None => {
            let _ = std::io::stdin().lock().lines().next();
        }
    }
    runtime.shutdown_background();
    // Returning from main runs the exit handlers: the socket goes.
    Ok(())
}
