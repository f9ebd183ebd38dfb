//! The `SIGUSR1` trigger end to end: installs TurboWish and the trigger,
//! runs a few tasks that hold memory, sends itself `SIGUSR1` (as
//! `kill -USR1 <pid>` would), waits for the snapshot file, reads it back and
//! prints a summary.
//!
//! Run: `cargo run --example signal` (files go to `$TURBOWISH_DIR`, default
//! the system's temporary directory for this example).

use std::time::Duration;

#[global_allocator]
static ALLOC: turbowish::TurboWish = turbowish::TurboWish::system();

fn main() -> std::process::ExitCode {
    // Errors as one line (what `main() -> Result` would print is their
    // `Debug` form).
    run().map_or_else(
        |e| {
            eprintln!("signal: {e}");
            std::process::ExitCode::FAILURE
        },
        |()| std::process::ExitCode::SUCCESS,
    )
}

fn run() -> Result<(), Box<dyn std::error::Error>> {
    let dir =
        std::env::var_os("TURBOWISH_DIR").map_or_else(std::env::temp_dir, std::path::PathBuf::from);
    let trigger = turbowish::capture::SignalConfig::new()
        .dir(&dir)
        .install()?;

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(async {
        for (name, kib) in [("cache", 512), ("session-1", 64), ("session-2", 32)] {
            turbowish::trace::spawn(name, async move {
                let held = vec![0u8; kib * 1024];
                std::future::pending::<()>().await;
                drop(held);
            });
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    });

    let before = trigger.snapshots_written();
    // SAFETY: raising a signal whose handler the trigger installed.
    if unsafe { libc::raise(libc::SIGUSR1) } != 0 {
        return Err(std::io::Error::last_os_error().into());
    }
    let path = trigger
        .wait_for_snapshot(before, Duration::from_secs(30))
        .ok_or("no snapshot within 30 s")?;
    let snapshot = turbowish::snapshot::Snapshot::load(&path)?;

    println!("snapshot: {}", path.display());
    println!(
        "process {}: {} tasks, {} live in {} blocks",
        snapshot.process.pid,
        snapshot.tasks.len(),
        turbowish::snapshot::format::human_bytes(snapshot.totals.live_bytes),
        snapshot.totals.live_blocks
    );
    for task in &snapshot.tasks {
        println!(
            "  {:<10} {:>10}",
            task.name,
            turbowish::snapshot::format::human_bytes(task.memory.live_bytes)
        );
    }
    for bucket in &snapshot.buckets {
        println!(
            "  {:<22} {:>10}",
            bucket.name,
            turbowish::snapshot::format::human_bytes(bucket.memory.live_bytes)
        );
    }
    runtime.shutdown_background();
    Ok(())
}
