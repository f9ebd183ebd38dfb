//! A slow task holds a write guard while requests queue behind it: the
//! chain TurboWish reports names the holder *and the future inside it*
//! that is slow (`reload › fetch_remote`), the question jstack answers for
//! threads and tokio-console cannot answer for async locks.
//!
//! A `config-reload` task takes the `routes` write lock, then awaits a slow
//! fetch (an untracked future: a plain sleep standing in for an HTTP call)
//! without releasing it. Eight `request` tasks queue for read access. After
//! a moment the example reads the wait-for graph, prints the chains, checks
//! that they name the holder's frame, and lets the reload finish: the
//! chains are gone.
//!
//! Run: `cargo run --example held_guard` (with `TURBOWISH_DIR` set it also
//! writes a snapshot there while the requests queue).

use std::sync::Arc;
use std::time::Duration;

use turbowish::trace::sync::RwLock;
use turbowish::trace::TracedExt;

#[global_allocator]
static ALLOC: turbowish::TurboWish = turbowish::TurboWish::system();

async fn reload(routes: Arc<RwLock<Vec<String>>>, release: tokio::sync::oneshot::Receiver<()>) {
    let mut table = routes.write().await;
    // Holding the write guard across a slow await: the bug.
    let fresh = async {
        let _ = release.await;
        vec![
            "/".to_owned(),
            "/health".to_owned(),
            "/v2/orders".to_owned(),
        ]
    }
    .traced("fetch_remote")
    .await;
    *table = fresh;
}

async fn request(routes: Arc<RwLock<Vec<String>>>, path: &'static str) -> bool {
    let table = async { routes.read().await }.traced("load_routes").await;
    table.iter().any(|r| r == path)
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    runtime.block_on(async {
        let routes = Arc::new(RwLock::new_named("routes", vec!["/".to_owned()]));
        let (finish_fetch, fetched) = tokio::sync::oneshot::channel();
        let reloader = turbowish::trace::spawn(
            "config-reload",
            reload(routes.clone(), fetched).traced("reload"),
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
        let requests: Vec<_> = (0..8)
            .map(|_| {
                let routes = routes.clone();
                turbowish::trace::spawn("request", request(routes, "/v2/orders").traced("handle"))
            })
            .collect();
        tokio::time::sleep(Duration::from_millis(200)).await;

        let graph = turbowish::trace::sync::resources();
        let chains = turbowish::trace::chains::chains(&graph);
        // Identical chains (eight requests queued the same way) print once.
        let mut texts: Vec<(String, usize)> = Vec::new();
        for chain in &chains {
            let text = chain.to_string();
            match texts.iter_mut().find(|(t, _)| *t == text) {
                Some((_, n)) => *n += 1,
                None => texts.push((text, 1)),
            }
        }
        println!("{} tasks wait; the chains:", chains.len());
        for (text, n) in &texts {
            println!("  {n} × {text}");
        }
        let names_frame = chains.iter().all(|c| {
            let text = c.to_string();
            text.contains("config-reload") && text.contains("fetch_remote")
        });
        let no_deadlock = turbowish::trace::chains::cycles(&graph).is_empty();
        println!(
            "holder named with its frame: {}; deadlock: {}",
            if names_frame && chains.len() == 8 {
                "yes"
            } else {
                "NO"
            },
            if no_deadlock { "no" } else { "YES" },
        );

        // With `TURBOWISH_DIR` set (as `tests/examples_snapshots.rs` does), keep
        // a snapshot of this moment for the `turbowish` CLI.
        if let Some(dir) = std::env::var_os("TURBOWISH_DIR") {
            let path = turbowish::capture::snapshot_to_dir(dir).unwrap_or_else(|e| {
                eprintln!("held_guard: no snapshot in $TURBOWISH_DIR: {e}");
                std::process::exit(1)
            });
            println!("snapshot: {}", path.display());
        }

        finish_fetch.send(()).expect("reload waits");
        reloader.await.expect("reload task");
        let mut served = 0;
        for request in requests {
            served += usize::from(request.await.expect("request task"));
        }
        let left = turbowish::trace::chains::chains(&turbowish::trace::sync::resources()).len();
        println!("after the reload: {served} requests served, {left} chains left");
        assert!(names_frame && chains.len() == 8 && no_deadlock && left == 0);
    });
}
