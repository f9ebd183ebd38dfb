//! Channels as resources on a real tokio runtime: a cycle through two
//! channels is a deadlock; a receiver waiting for a sender held by a task
//! that waits on nothing tracked is a chain; a sender blocked on a full
//! channel waits for the receiver's task; records go when the wait ends.

use std::sync::Mutex as StdMutex;
use std::time::Duration;

use turbowish_trace::chains::{chains, cycles, ChainEnd};
use turbowish_trace::spawn_on;
use turbowish_trace::sync::resources;
use turbowish_trace::sync::{mpsc, oneshot, Access, ResourceInfo, TaskRef};

#[global_allocator]
static A: turbowish_alloc::TurboWish = turbowish_alloc::TurboWish::system();

static SERIAL: StdMutex<()> = StdMutex::new(());

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

fn named(prefix: &str) -> Vec<ResourceInfo> {
    resources()
        .into_iter()
        .filter(|r| r.name.starts_with(prefix))
        .collect()
}

fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    for _ in 0..2_000 {
        if cond() {
            return;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    panic!("timed out waiting for {what}");
}

fn waiters(prefix: &str) -> usize {
    named(prefix).iter().map(|r| r.waiters.len()).sum()
}

#[test]
fn cycle_through_two_channels_is_a_deadlock() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let rt = runtime();
    let (move_tx, mut move_rx) = mpsc::channel_named::<u32>("chess/player move", 4);
    let (board_tx, mut board_rx) = mpsc::channel_named::<u32>("chess/board update", 4);
    spawn_on(
        "ui",
        async move {
            move_tx.mark_held();
            let _ = board_rx.recv().await;
            drop(move_tx);
        },
        rt.handle(),
    );
    spawn_on(
        "validator",
        async move {
            board_tx.mark_held();
            let _ = move_rx.recv().await;
            drop(board_tx);
        },
        rt.handle(),
    );
    wait_until("both tasks to wait", || waiters("chess/") == 2);

    let graph = named("chess/");
    let found = cycles(&graph);
    assert_eq!(found.len(), 1, "{found:#?}");
    let mut tasks: Vec<String> = found[0]
        .links
        .iter()
        .map(|l| l.waiter.task_name.clone())
        .collect();
    tasks.sort();
    assert_eq!(tasks, ["ui", "validator"]);
    assert!(found[0]
        .links
        .iter()
        .all(|l| l.waiter.access == Access::Receive));
    let text = found[0].to_string();
    assert!(text.starts_with("deadlock: task "), "{text}");
    assert!(text.contains("channel \"chess/player move\""), "{text}");
    assert!(text.contains("channel \"chess/board update\""), "{text}");
    rt.shutdown_background();
}

#[test]
fn receiver_waits_for_sender_holder_and_full_sender_for_receiver() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let rt = runtime();
    // A producer holds the sender but waits on something untracked.
    let (tx, mut rx) = mpsc::channel_named::<u32>("feed/items", 1);
    let (release, released) = oneshot::channel_named::<()>("feed/release");
    let producer = spawn_on(
        "producer",
        async move {
            tx.mark_held();
            let _ = released.await;
            tx.send(1).await.unwrap();
            tx.send(2).await.unwrap();
            // The channel holds one item: this send waits for the consumer.
            tx.send(3).await.unwrap();
        },
        rt.handle(),
    );
    let consumer = spawn_on(
        "consumer",
        async move {
            let mut got = Vec::new();
            while let Some(v) = rx.recv().await {
                got.push(v);
                if got.len() == 1 {
                    // Let the producer fill the channel and block.
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
            got
        },
        rt.handle(),
    );
    wait_until("the consumer to wait", || {
        named("feed/items")
            .first()
            .is_some_and(|r| r.waiters.len() == 1)
    });
    let graph = named("feed/");
    assert!(cycles(&graph).is_empty());
    let found = chains(&graph);
    let chain = found
        .iter()
        .find(|c| c.links[0].waiter.task_name == "consumer")
        .unwrap_or_else(|| panic!("{found:#?}"));
    // consumer waits for the sender, held by the producer, which waits on
    // the oneshot "feed/release", whose sender main holds: no task can send.
    assert_eq!(chain.links[0].holders[0].task_name, "producer");
    assert_eq!(chain.links[0].waiter.access, Access::Receive);
    assert!(matches!(
        chain.links.last().unwrap().holders[0].task,
        TaskRef::Thread(_)
    ));
    assert_eq!(chain.end, ChainEnd::SendersOutsideTasks);

    release.send(()).unwrap();
    wait_until("the producer to block on a full channel", || {
        named("feed/items")
            .first()
            .is_some_and(|r| r.waiters.iter().any(|w| w.access == Access::Send))
    });
    let graph = named("feed/items");
    let waiter = graph[0]
        .waiters
        .iter()
        .find(|w| w.access == Access::Send)
        .unwrap();
    assert_eq!(waiter.task_name, "producer");
    let blockers: Vec<&str> = graph[0]
        .holders
        .iter()
        .filter(|h| Access::Send.waits_for(h.access))
        .map(|h| h.task_name.as_str())
        .collect();
    assert_eq!(blockers, ["consumer"]);

    rt.block_on(async {
        producer.await.unwrap();
        assert_eq!(consumer.await.unwrap(), [1, 2, 3]);
    });
    // All senders and the receiver are gone: so is the resource.
    assert!(named("feed/items").is_empty());
    rt.shutdown_background();
}

#[test]
fn cancelled_receive_leaves_no_waiter() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let rt = runtime();
    let (_tx, mut rx) = mpsc::channel_named::<u32>("cancel/ch", 1);
    let (_otx, orx) = oneshot::channel_named::<u32>("cancel/oneshot");
    rt.block_on(async {
        let r = tokio::time::timeout(Duration::from_millis(30), rx.recv()).await;
        assert!(r.is_err());
        let r = tokio::time::timeout(Duration::from_millis(30), orx).await;
        assert!(r.is_err());
    });
    assert_eq!(waiters("cancel/"), 0);
}
