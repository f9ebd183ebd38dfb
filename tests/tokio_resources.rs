//! With `--cfg tokio_unstable` and the `tokio-resources` feature, plain
//! `tokio::sync` primitives are TurboWish resources through tokio's own
//! instrumentation (`turbowish::trace::tokio_resources`): no import swap.
//!
//! * `plain_tokio_mutexes_deadlock_into_a_snapshot_cycle`: two tasks lock
//!   two `tokio::sync::Mutex`es in opposite orders; a snapshot has the
//!   cycle, its holders named, reported by tokio, and `turbowish chains`'
//!   text says so.
//! * `rwlock_readers_and_a_waiting_writer`, `semaphore_holders_and_waiters`:
//!   holders and waiters by task, released without a trace.
//! * `channel_waits_say_the_holder_is_not_reported`: a sender on a full
//!   `mpsc` channel and a `oneshot` receiver wait; tokio names no holder,
//!   and the chains say so rather than guess.
//!
//! Without that configuration this file compiles to nothing; `.ci/run`
//! builds it with the flag, in a target directory of its own.
#![cfg(all(feature = "tokio-resources", tokio_unstable))]

use std::sync::{Arc, Once};
use std::time::{Duration, Instant};

use turbowish::snapshot::schema::{self, Provenance};
use turbowish::trace::chains::ChainEnd;
use turbowish::trace::sync::{Access, ResourceInfo, ResourceKind, TaskRef, TokioKind};
use turbowish::trace::TracedExt;

#[global_allocator]
static ALLOC: turbowish::TurboWish = turbowish::TurboWish::system();

/// The layer, installed once for every test of this process, before any
/// of their resources exists.
fn setup() {
    static INSTALL: Once = Once::new();
    INSTALL
        .call_once(|| turbowish::trace::tokio_resources::install().expect("the only subscriber"));
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// `file:line:` of the line `n` lines below (where the test creates a
/// resource): tokio names its resources after their creation place.
macro_rules! line_below {
    ($n:expr) => {
        format!("{}:{}:", file!(), line!() + $n)
    };
}

/// Waits (as long as a loaded machine needs) until `done` holds for the
/// wait-for graph, and returns that graph.
async fn graph_when(what: &str, done: impl Fn(&[ResourceInfo]) -> bool) -> Vec<ResourceInfo> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let graph = turbowish::trace::sync::resources();
        if done(&graph) {
            return graph;
        }
        assert!(Instant::now() < deadline, "never saw {what}: {graph:#?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// The resource created on the line `place` (`file:line:`) names.
fn named<'g>(graph: &'g [ResourceInfo], place: &str) -> Option<&'g ResourceInfo> {
    graph.iter().find(|r| r.name.starts_with(place))
}

fn holders(r: &ResourceInfo) -> Vec<&str> {
    let mut names: Vec<&str> = r.holders.iter().map(|h| h.task_name.as_str()).collect();
    names.sort_unstable();
    names
}

async fn transfer(
    from: Arc<tokio::sync::Mutex<u64>>,
    to: Arc<tokio::sync::Mutex<u64>>,
    both: Arc<tokio::sync::Barrier>,
) {
    let mut debit = async { from.lock().await }.traced("debit").await;
    *debit -= 10;
    both.wait().await;
    let mut credit = async { to.lock().await }.traced("credit").await;
    *credit += 10;
}

#[test]
fn plain_tokio_mutexes_deadlock_into_a_snapshot_cycle() {
    setup();
    let runtime = runtime();
    let names = (line_below!(1), line_below!(2));
    let a = Arc::new(tokio::sync::Mutex::new(100_u64));
    let b = Arc::new(tokio::sync::Mutex::new(100_u64));
    runtime.block_on(async {
        let both = Arc::new(tokio::sync::Barrier::new(2));
        turbowish::trace::spawn("transfer-a", transfer(a.clone(), b.clone(), both.clone()));
        turbowish::trace::spawn("transfer-b", transfer(b, a, both));
        graph_when("the deadlock", |g| {
            [&names.0, &names.1]
                .iter()
                .all(|n| named(g, n).is_some_and(|r| r.waiters.len() == 1))
        })
        .await;
    });
    let snap = turbowish::capture::snapshot();
    runtime.shutdown_background();

    for name in [&names.0, &names.1] {
        let r = snap
            .resources
            .iter()
            .find(|r| r.name.starts_with(name.as_str()))
            .unwrap_or_else(|| panic!("no resource {name}: {:#?}", snap.resources));
        assert_eq!(
            r.kind,
            schema::ResourceKind::Tokio("tokio::sync::Mutex".to_owned())
        );
        assert_eq!(r.location, r.name);
        assert_eq!(r.holders.len(), 1);
        assert_eq!(r.waiters.len(), 1);
        for party in r.holders.iter().chain(&r.waiters) {
            assert_eq!(party.provenance, Provenance::Tokio);
            assert_eq!(party.location, "");
            assert_eq!(party.access, schema::Access::Exclusive);
        }
        assert_eq!(r.holders[0].frames, ["debit"]);
        assert_eq!(r.waiters[0].frames, ["credit"]);
        assert_ne!(r.holders[0].task_name, r.waiters[0].task_name);
    }
    let cycles: Vec<&schema::Cycle> = snap
        .cycles
        .iter()
        .filter(|c| c.text.contains("tokio::sync::Mutex"))
        .collect();
    assert_eq!(cycles.len(), 1, "{:#?}", snap.cycles);
    let cycle = cycles[0];
    let mut waiters: Vec<&str> = cycle
        .links
        .iter()
        .map(|l| l.waiter.task_name.as_str())
        .collect();
    waiters.sort_unstable();
    assert_eq!(waiters, ["transfer-a", "transfer-b"]);
    // Each link's holder is the next link's waiter: the holders are named.
    let n = cycle.links.len();
    for (i, link) in cycle.links.iter().enumerate() {
        assert_eq!(link.holders.len(), 1);
        assert_eq!(link.holders[0].task, cycle.links[(i + 1) % n].waiter.task);
        assert_eq!(link.holders[0].provenance, Provenance::Tokio);
    }
    for needle in [
        "deadlock: task \"transfer-",
        "(reported by tokio's instrumentation › debit) holds tokio::sync::Mutex \"",
        "waits for tokio::sync::Mutex \"",
        "(reported by tokio's instrumentation › credit)",
        &names.0,
        &names.1,
    ] {
        assert!(
            cycle.text.contains(needle),
            "no {needle:?} in {}",
            cycle.text
        );
    }
    let text = turbowish_report::chains::chains_text(&snap);
    // As `turbowish chains` prints it (run with --nocapture to see it).
    println!("{text}");
    assert!(text.contains("(exclusive, reported by tokio)"), "{text}");
    assert!(
        text.contains("at a place tokio's instrumentation does not report in debit"),
        "{text}"
    );
}

#[test]
fn rwlock_readers_and_a_waiting_writer() {
    setup();
    let runtime = runtime();
    let name = line_below!(1);
    let lock = Arc::new(tokio::sync::RwLock::new(vec![1_u8]));
    runtime.block_on(async {
        let release = Arc::new(tokio::sync::Notify::new());
        let mut readers = Vec::new();
        for reader in ["reader-1", "reader-2"] {
            let (lock, release) = (lock.clone(), release.clone());
            readers.push(turbowish::trace::spawn(reader, async move {
                let _read = lock.read().await;
                release.notified().await;
            }));
        }
        graph_when("two readers", |g| {
            named(g, &name).is_some_and(|r| r.holders.len() == 2)
        })
        .await;
        let writer = turbowish::trace::spawn("writer", {
            let lock = lock.clone();
            async move {
                async { lock.write().await.push(2) }.traced("update").await;
            }
        });
        let graph = graph_when("a waiting writer", |g| {
            named(g, &name).is_some_and(|r| r.waiters.len() == 1)
        })
        .await;
        let r = named(&graph, &name).unwrap();
        assert_eq!(r.kind, ResourceKind::Tokio(TokioKind::RwLock));
        assert_eq!(holders(r), ["reader-1", "reader-2"]);
        assert!(r.holders.iter().all(|h| h.access == Access::Shared));
        assert_eq!(r.waiters[0].task_name, "writer");
        assert_eq!(r.waiters[0].access, Access::Exclusive);
        assert_eq!(r.waiters[0].frames.to_string(), "update");
        let chains = turbowish::trace::chains::chains(&graph);
        let chain = chains
            .iter()
            .find(|c| c.links[0].waiter.task_name == "writer")
            .expect("the writer's chain");
        assert_eq!(chain.end, ChainEnd::Untracked);
        assert_eq!(chain.links[0].holders.len(), 2);

        release.notify_waiters();
        for reader in readers {
            reader.await.unwrap();
        }
        writer.await.unwrap();
        let graph = turbowish::trace::sync::resources();
        let r = named(&graph, &name).unwrap();
        assert!(r.holders.is_empty() && r.waiters.is_empty(), "{r:#?}");
        assert_eq!(r.extra_holders, 0);
    });
    assert_eq!(*runtime.block_on(lock.read()), [1, 2]);
}

#[test]
fn semaphore_holders_and_waiters() {
    setup();
    let runtime = runtime();
    let name = line_below!(1);
    let permits = Arc::new(tokio::sync::Semaphore::new(3));
    runtime.block_on(async {
        let release = Arc::new(tokio::sync::Notify::new());
        let holder = |task: &'static str, n: u32| {
            let (permits, release) = (permits.clone(), release.clone());
            turbowish::trace::spawn(task, async move {
                let _held = permits.acquire_many(n).await.unwrap();
                release.notified().await;
            })
        };
        let one = holder("holder-1", 1);
        let two = holder("holder-2", 2);
        graph_when("two holders", |g| {
            named(g, &name).is_some_and(|r| r.holders.len() == 2)
        })
        .await;
        let waiter = turbowish::trace::spawn("wants-two", {
            let permits = permits.clone();
            async move {
                let _two = permits.acquire_many(2).await.unwrap();
            }
        });
        let graph = graph_when("a waiter", |g| {
            named(g, &name).is_some_and(|r| r.waiters.len() == 1)
        })
        .await;
        let r = named(&graph, &name).unwrap();
        assert_eq!(r.kind, ResourceKind::Tokio(TokioKind::Semaphore));
        assert_eq!(r.permits, Some(3));
        let mut held: Vec<(String, Access)> = r
            .holders
            .iter()
            .map(|h| (h.task_name.clone(), h.access))
            .collect();
        held.sort_by(|a, b| a.0.cmp(&b.0));
        assert_eq!(
            held,
            [
                ("holder-1".to_owned(), Access::Permits(1)),
                ("holder-2".to_owned(), Access::Permits(2)),
            ]
        );
        assert_eq!(r.waiters[0].task_name, "wants-two");
        assert_eq!(r.waiters[0].access, Access::Permits(2));
        assert!(matches!(r.waiters[0].task, TaskRef::Task(_)));
        // Both holders run (wait on nothing tracked): a chain, no cycle.
        assert!(turbowish::trace::chains::cycles(&graph)
            .iter()
            .all(|c| !c.to_string().contains(&name)));

        release.notify_waiters();
        one.await.unwrap();
        two.await.unwrap();
        waiter.await.unwrap();
        let graph = turbowish::trace::sync::resources();
        let r = named(&graph, &name).unwrap();
        assert!(r.holders.is_empty() && r.waiters.is_empty(), "{r:#?}");
        assert_eq!(r.extra_holders, 0);
    });
}

#[test]
fn channel_waits_say_the_holder_is_not_reported() {
    setup();
    let runtime = runtime();
    runtime.block_on(async {
        // A sender on a full bounded channel.
        let (tx, mut rx) = tokio::sync::mpsc::channel::<u32>(1);
        tx.send(1).await.unwrap();
        let sender = turbowish::trace::spawn("producer", {
            let tx = tx.clone();
            async move { async { tx.send(2).await.unwrap() }.traced("publish").await }
        });
        let is_mpsc = |r: &ResourceInfo| {
            r.kind == ResourceKind::Tokio(TokioKind::Mpsc)
                && r.waiters.iter().any(|w| w.task_name == "producer")
        };
        let graph = graph_when("a waiting sender", |g| g.iter().any(is_mpsc)).await;
        let r = graph.iter().find(|r| is_mpsc(r)).unwrap();
        assert!(r.holders.is_empty());
        assert_eq!(r.extra_holders, 1, "the receiver, counted, not named");
        assert_eq!(r.waiters[0].access, Access::Send);
        assert_eq!(r.waiters[0].frames.to_string(), "publish");
        let chain = turbowish::trace::chains::chains(&graph)
            .into_iter()
            .find(|c| c.links[0].waiter.task_name == "producer")
            .expect("the sender's chain");
        assert_eq!(chain.end, ChainEnd::HolderNotReported);
        let text = chain.to_string();
        println!("{text}");
        assert!(
            text.contains(
                "waits for tokio::sync::mpsc \"a bounded channel (tokio reports no place)\""
            ) && text.contains("whose holder tokio's instrumentation does not name"),
            "{text}"
        );
        assert_eq!(rx.recv().await, Some(1));
        sender.await.unwrap();
        assert_eq!(rx.recv().await, Some(2));

        // A oneshot receiver, its sender alive, then dropped.
        let name = line_below!(1);
        let (done_tx, done_rx) = tokio::sync::oneshot::channel::<()>();
        let receiver = turbowish::trace::spawn("awaits-done", async move {
            let _ = done_rx.traced("await_done").await;
        });
        let graph = graph_when("a waiting receiver", |g| {
            named(g, &name).is_some_and(|r| r.waiters.len() == 1)
        })
        .await;
        let r = named(&graph, &name).unwrap();
        assert_eq!(r.kind, ResourceKind::Tokio(TokioKind::Oneshot));
        assert_eq!(r.waiters[0].access, Access::Receive);
        assert_eq!(r.extra_holders, 1, "the sender, counted, not named");
        let chain = turbowish::trace::chains::chains(&graph)
            .into_iter()
            .find(|c| c.links[0].waiter.task_name == "awaits-done")
            .expect("the receiver's chain");
        assert_eq!(chain.end, ChainEnd::HolderNotReported);
        drop(done_tx);
        receiver.await.unwrap();
        let graph = turbowish::trace::sync::resources();
        assert!(named(&graph, &name).is_none_or(|r| r.waiters.is_empty() && r.extra_holders == 0));
    });
}
