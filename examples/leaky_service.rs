//! A service with a slow leak, found by diffing two snapshots.
//!
//! `request-handler` tasks allocate a response and free it; a `metrics`
//! task keeps the same memory all along; the `session-cache` task inserts
//! every request's session in `remember_session` and never evicts one. The
//! example snapshots the process, serves more requests, snapshots again,
//! compares the two the way `turbowish diff OLD NEW` does, and names the
//! task that grew most and the code that grew it. It exits 1 unless that
//! is `session-cache` in `remember_session`, so it runs in CI.
//!
//! Run: `cargo run --release --example leaky_service` (snapshots go to
//! `$TURBOWISH_DIR`, default a fresh directory in the system's temporary
//! directory; they are kept, for the CLI).

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};
use turbowish::capture::snapshot_to_dir;
use turbowish::snapshot::format::human_bytes;
use turbowish::snapshot::schema::Owner;
use turbowish::snapshot::Snapshot;
use turbowish_report::diff::diff;

/// One sample per 64 KiB allocated on average: enough to find sites that
/// grow by megabytes, cheap enough for production.
#[global_allocator]
static ALLOC: turbowish::TurboWish = turbowish::TurboWish::system().sample_interval(64 * 1024);

/// Bytes of state each session keeps in the cache.
const SESSION_BYTES: usize = 4096;

/// What the cache task is asked to do.
enum CacheMessage {
    /// Remember this request's session.
    Session(u64),
    /// Reply once every message sent before this one is handled.
    Flush(oneshot::Sender<()>),
}

/// The leak: every session is kept, none is ever evicted.
#[inline(never)]
fn remember_session(sessions: &mut HashMap<u64, Vec<u8>>, id: u64) {
    sessions.insert(id, vec![(id % 251) as u8; SESSION_BYTES]);
}

/// A request's response, built and dropped: memory that comes and goes.
#[inline(never)]
fn build_response(id: u64) -> usize {
    let body = vec![(id % 7) as u8; 16 * 1024];
    let header = format!("HTTP/1.1 200 OK\r\nx-session: {id}\r\n");
    std::hint::black_box(&body).len() + header.len()
}

async fn session_cache(mut inbox: mpsc::UnboundedReceiver<CacheMessage>) {
    let mut sessions = HashMap::new();
    while let Some(message) = inbox.recv().await {
        match message {
            CacheMessage::Session(id) => remember_session(&mut sessions, id),
            CacheMessage::Flush(done) => {
                let _ = done.send(());
            }
        }
    }
}

/// Steady memory: one table of counters, updated in place.
async fn metrics() {
    let mut counters = vec![0u64; 8 * 1024];
    for tick in 0u64.. {
        let slot = (tick as usize) % counters.len();
        counters[slot] += 1;
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Serves `count` requests, ids from `first`, each in its own task, and
/// waits until the cache has seen them all.
async fn serve(cache: &mpsc::UnboundedSender<CacheMessage>, first: u64, count: u64) {
    let mut handlers = Vec::new();
    for id in first..first + count {
        let cache = cache.clone();
        handlers.push(turbowish::trace::spawn("request-handler", async move {
            let sent = build_response(id);
            let _ = cache.send(CacheMessage::Session(id));
            sent
        }));
    }
    for handler in handlers {
        handler.await.expect("request handler");
    }
    let (done, flushed) = oneshot::channel();
    let _ = cache.send(CacheMessage::Flush(done));
    flushed.await.expect("session cache is running");
}

fn main() -> ExitCode {
    // Errors as one line (what `main() -> Result` would print is their
    // `Debug` form).
    run().unwrap_or_else(|e| {
        eprintln!("leaky_service: {e}");
        ExitCode::FAILURE
    })
}

fn run() -> Result<ExitCode, Box<dyn std::error::Error>> {
    let dir = match std::env::var_os("TURBOWISH_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => std::env::temp_dir().join(format!("turbowish-leaky-{}", std::process::id())),
    };
    std::fs::create_dir_all(&dir)
        .map_err(|e| format!("{}: cannot write snapshots here: {e}", dir.display()))?;

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let (old_path, new_path) = runtime.block_on(async {
        let (cache, inbox) = mpsc::unbounded_channel();
        turbowish::trace::spawn("session-cache", session_cache(inbox));
        turbowish::trace::spawn("metrics", metrics());

        serve(&cache, 0, 500).await;
        let old = snapshot_to_dir(&dir)?;
        serve(&cache, 500, 2000).await;
        let new = snapshot_to_dir(&dir)?;
        Ok::<_, Box<dyn std::error::Error>>((old, new))
    })?;
    runtime.shutdown_background();

    let old = Snapshot::load(&old_path)?;
    let new = Snapshot::load(&new_path)?;
    let growth = diff(&old, &new, false)?;
    print!("{}", growth.render(10));
    println!();
    println!(
        "the same from the command line: turbowish diff {} {}",
        old_path.display(),
        new_path.display()
    );

    // The task (not bucket) that grew most, and its site that grew most.
    let task = growth
        .tasks
        .iter()
        .find(|t| new.tasks.iter().any(|n| n.name == t.name))
        .ok_or("no task in the diff")?;
    let (frame, site_growth) = top_growing_site(&old, &new, &task.name).ok_or("no site grew")?;
    println!(
        "verdict: task \"{}\" grew most ({} -> {}); its top growing site (+{}, estimated) is in {frame}",
        task.name,
        human_bytes(task.growth.old_live_bytes),
        human_bytes(task.growth.new_live_bytes),
        human_bytes(site_growth),
    );
    if task.name == "session-cache" && frame.contains("remember_session") {
        println!("found the leak: session-cache keeps every session in remember_session");
        Ok(ExitCode::SUCCESS)
    } else {
        println!("expected session-cache growing in remember_session");
        Ok(ExitCode::FAILURE)
    }
}

/// The first frame of the site where the tasks named `name` grew most, and
/// by how many bytes. Sites are matched across snapshots by their
/// symbolised stacks, as `turbowish diff` matches them.
fn top_growing_site(old: &Snapshot, new: &Snapshot, name: &str) -> Option<(String, u64)> {
    let old_bytes = bytes_by_stack(old, name);
    bytes_by_stack(new, name)
        .into_iter()
        .filter_map(|(stack, bytes)| {
            let grew = bytes.saturating_sub(old_bytes.get(&stack).copied().unwrap_or(0));
            (grew > 0).then(|| (stack.into_iter().next().unwrap_or_default(), grew))
        })
        .max_by_key(|&(_, grew)| grew)
}

/// Estimated live bytes of the tasks named `name` per stack (function
/// names, innermost first).
fn bytes_by_stack(snap: &Snapshot, name: &str) -> HashMap<Vec<String>, u64> {
    let ids: Vec<u64> = snap
        .tasks
        .iter()
        .filter(|t| t.name == name)
        .map(|t| t.id)
        .collect();
    let mut out = HashMap::new();
    for os in &snap.owner_sites {
        let Owner::Task(id) = os.owner else {
            continue;
        };
        if !ids.contains(&id) {
            continue;
        }
        let Some(site) = snap.sites.iter().find(|s| s.id == os.site) else {
            continue;
        };
        let stack: Vec<String> = site
            .stack
            .iter()
            .filter_map(|&l| snap.locations.iter().find(|loc| loc.id == l))
            .flat_map(|loc| loc.lines.iter().map(|line| line.function.clone()))
            .collect();
        *out.entry(stack).or_default() += os.live_bytes;
    }
    out
}
