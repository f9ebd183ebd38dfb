//! Tasks that take locks in opposite orders hang; TurboWish finds the cycle.
//!
//! Runs four stories, each on its own runtime: two transfers that lock two
//! accounts in opposite order, a three-task ring, a wait chain that is *not*
//! a deadlock, and a cycle through two channels. After a short delay the example reads the wait-for graph
//! itself, prints the chains and deadlocks it finds, and exits 0 (the hung
//! tasks are abandoned with their runtime), so it runs in CI.
//!
//! Run: `cargo run --example deadlock` (with `TURBOWISH_DIR` set it also
//! writes a snapshot there of the first story and of the last, each
//! deadlocked; `turbowish chains` on the last shows the cycle through the
//! two channels, found from the senders the tasks own).
//!
//! With `--hang` (or `TURBOWISH_DEADLOCK_HANG=1`) it runs only the first
//! story, blocks every tokio worker as well, installs the `SIGUSR1`
//! trigger and stays hung: `kill -USR1 <pid>` then writes a snapshot (to
//! `$TURBOWISH_DIR`, default the current directory) that shows the cycle.
//! `turbowish`'s `tests/deadlock_signal.rs` does exactly that.

use std::sync::Arc;
use std::time::Duration;

use turbowish::trace::sync::{mpsc, Mutex};
use turbowish::trace::TracedExt;

#[global_allocator]
static ALLOC: turbowish::TurboWish = turbowish::TurboWish::system();

/// Locks `from` then, after a pause (so that every task holds its first
/// lock), `to`.
async fn transfer(from: Arc<Mutex<u64>>, to: Arc<Mutex<u64>>, amount: u64) {
    let mut debit = async { from.lock().await }.traced("debit").await;
    *debit -= amount;
    tokio::time::sleep(Duration::from_millis(50)).await;
    let mut credit = async { to.lock().await }.traced("credit").await;
    *credit += amount;
}

fn accounts(n: usize) -> Vec<Arc<Mutex<u64>>> {
    (1..=n)
        .map(|i| Arc::new(Mutex::new_named(format!("accounts[{i}]"), 100)))
        .collect()
}

/// Runs `story` on a fresh runtime, waits, then reports what TurboWish sees.
/// With `snapshot` and `TURBOWISH_DIR` set, also writes a snapshot there
/// while the tasks still wait (as `tests/examples_snapshots.rs` asks).
fn run(title: &str, snapshot: bool, story: impl FnOnce()) -> usize {
    println!("== {title}");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    runtime.block_on(async {
        story();
        tokio::time::sleep(Duration::from_millis(300)).await;
    });
    // The graph with its owners: who holds each channel end is the task
    // whose state owns it, not who created it.
    let graph = turbowish::trace::ownership::resources();
    let cycles = turbowish::trace::chains::cycles(&graph);
    for cycle in &cycles {
        println!("{cycle}");
    }
    if cycles.is_empty() {
        for chain in turbowish::trace::chains::chains(&graph) {
            println!("chain: {chain}");
        }
        println!("no deadlock");
    }
    if let Some(dir) = std::env::var_os("TURBOWISH_DIR").filter(|_| snapshot) {
        let path = turbowish::capture::snapshot_to_dir(dir).unwrap_or_else(|e| {
            eprintln!("deadlock: no snapshot in $TURBOWISH_DIR: {e}");
            std::process::exit(1)
        });
        println!("snapshot: {}", path.display());
    }
    println!();
    // The deadlocked tasks never finish: abandon them with the runtime.
    runtime.shutdown_background();
    cycles.len()
}

/// The first story, left hung with every worker blocked too, answering
/// `SIGUSR1` with a snapshot.
fn hang() -> ! {
    let trigger = turbowish::capture::install_signal_handler().unwrap_or_else(|e| {
        eprintln!("deadlock: no SIGUSR1 trigger: {e}");
        std::process::exit(1)
    });
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    runtime.block_on(async {
        let a = accounts(2);
        turbowish::trace::spawn("transfer-a", transfer(a[0].clone(), a[1].clone(), 10));
        turbowish::trace::spawn("transfer-b", transfer(a[1].clone(), a[0].clone(), 20));
        tokio::time::sleep(Duration::from_millis(300)).await;
        // Blocking code on every worker: no runtime is left to run anything,
        // which the snapshot thread does not need.
        for i in 0..2 {
            turbowish::trace::spawn(format!("blocked-worker-{i}"), async {
                loop {
                    std::thread::park();
                }
            });
        }
    });
    // No timer runs now (the workers drive it): wait on this thread for the
    // workers to pick the blocking tasks up.
    std::thread::sleep(Duration::from_millis(100));
    println!(
        "hung: kill -USR1 {} writes a snapshot to {}",
        std::process::id(),
        trigger.dir().display()
    );
    loop {
        std::thread::park();
    }
}

fn main() {
    let hang_requested = std::env::args().any(|a| a == "--hang")
        || std::env::var_os("TURBOWISH_DEADLOCK_HANG").is_some_and(|v| v == "1");
    if hang_requested {
        hang();
    }
    let two = run("two transfers, opposite lock order", true, || {
        let a = accounts(2);
        turbowish::trace::spawn("transfer-a", transfer(a[0].clone(), a[1].clone(), 10));
        turbowish::trace::spawn("transfer-b", transfer(a[1].clone(), a[0].clone(), 20));
    });
    let three = run("three transfers in a ring", false, || {
        let a = accounts(3);
        for (i, name) in ["ring-1", "ring-2", "ring-3"].into_iter().enumerate() {
            let (from, to) = (a[i].clone(), a[(i + 1) % 3].clone());
            turbowish::trace::spawn(name, transfer(from, to, 5));
        }
    });
    let chain = run(
        "a slow holder and a queue: a chain, not a deadlock",
        false,
        || {
            let a = accounts(1);
            let held = a[0].clone();
            turbowish::trace::spawn("slow-report", async move {
                let _guard = async { held.lock().await }.traced("build_report").await;
                // Waits on something TurboWish does not track.
                std::future::pending::<()>().await;
            });
            for i in 0..2 {
                let queued = a[0].clone();
                turbowish::trace::spawn(format!("request-{i}"), async move {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    let _ = async { queued.lock().await }.traced("load_balance").await;
                });
            }
        },
    );
    let chess = run(
        "a chess game whose UI and validator wait on each other",
        true,
        || {
            // Both channels made here, outside any task; each sender moved
            // into one task and each receiver into the other, and neither
            // sender used before its task waits: only ownership (the
            // senders in the tasks' state) shows who could send.
            let (move_tx, mut move_rx) = mpsc::channel_named::<String>("player move", 4);
            let (board_tx, mut board_rx) = mpsc::channel_named::<String>("board update", 4);
            turbowish::trace::spawn("ui", async move {
                // Bug: waits for the board before sending the first move.
                let board = async { board_rx.recv().await }.traced("await_board").await;
                move_tx.send(format!("e2e4 on {board:?}")).await.unwrap();
            });
            turbowish::trace::spawn("validator", async move {
                while let Some(mv) = async { move_rx.recv().await }.traced("await_move").await {
                    board_tx.send(format!("board after {mv}")).await.unwrap();
                }
            });
            // Waits on a timer: not part of the cycle.
            turbowish::trace::spawn("clock", async {
                tokio::time::sleep(Duration::from_secs(3600)).await;
            });
        },
    );
    println!("deadlocks found: {two} + {three} + {chain} + {chess}");
    assert_eq!(
        (two, three, chain, chess),
        (1, 1, 0, 1),
        "the example's own check"
    );
}
