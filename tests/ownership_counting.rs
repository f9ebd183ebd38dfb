//! Chains from ownership in counting mode (no block registry): each task's
//! root cell is scanned for the channel ends its future holds.

#[path = "../turbowish-report/tests/cli_support/mod.rs"]
mod cli_support;
mod ownership_story;

#[global_allocator]
static A: turbowish::TurboWish = turbowish::TurboWish::system();

#[test]
fn a_channel_cycle_is_found_from_the_senders_the_tasks_own() {
    let (runtime, snap) = ownership_story::hung_story();
    assert!(snap.walk.is_none(), "counting mode has no walk");
    let dir = tempfile::tempdir().unwrap();
    ownership_story::check(&snap, dir.path());
    runtime.shutdown_background();
}

/// A small runtime whose tasks stay hung after the test's `block_on`.
fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn awaiting_the_join_handle_of_a_task_that_waits_on_you_is_a_deadlock() {
    use turbowish::trace::sync::mpsc;
    let runtime = runtime();
    runtime.block_on(async {
        turbowish::trace::spawn("supervisor", async {
            let (work_tx, mut work_rx) = mpsc::channel_named::<u32>("work", 1);
            let worker = turbowish::trace::spawn("worker", async move {
                // Waits for work the supervisor never sends.
                work_rx.recv().await
            });
            // Keeps the sender and waits for the worker to finish.
            let done = worker.await;
            drop(work_tx);
            done
        });
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    });
    let snap = turbowish::capture::snapshot();
    // (The tests of this file run at once: other stories' cycles are here
    // too.)
    let text = &snap
        .cycles
        .iter()
        .find(|c| c.text.contains("\"worker\""))
        .unwrap_or_else(|| panic!("no cycle through worker: {:#?}", snap.chains))
        .text;
    assert!(text.contains("task \"worker\""), "{text}");
    assert!(text.contains("channel \"work\""), "{text}");
    assert!(
        text.contains("task \"supervisor\" (owns a sender at future state +0x"),
        "{text}"
    );
    let join = snap
        .resources
        .iter()
        .find(|r| r.kind == turbowish::snapshot::schema::ResourceKind::Task && r.name == "worker")
        .expect("a task resource for the awaited JoinHandle");
    assert_eq!(join.name, "worker");
    assert_eq!(join.holders[0].task_name, "worker");
    assert_eq!(join.waiters[0].task_name, "supervisor");
    // The awaited handle is found in the supervisor's state, by its mark.
    let owners: Vec<(&str, &str)> = join
        .owners
        .iter()
        .map(|o| (o.name.as_str(), o.handle.name()))
        .collect();
    assert_eq!(owners, [("supervisor", "join handle")], "{:?}", join.owners);
    assert!(join.owners[0].path.starts_with("future state +0x"));
    runtime.shutdown_background();
}

#[test]
fn the_task_owning_a_oneshot_receiver_is_named_as_its_owner() {
    use turbowish::snapshot::schema::{Access, HandleKind, Provenance};
    let runtime = runtime();
    let (reply_tx, reply_rx) = turbowish::trace::sync::oneshot::channel_named::<u32>("reply");
    runtime.block_on(async {
        // Moved in unused: the receiver's record still names main.
        turbowish::trace::spawn("requester", async move {
            let _keep = &reply_rx;
            std::future::pending::<()>().await;
        });
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    });
    let snap = turbowish::capture::snapshot();
    let r = snap.resources.iter().find(|r| r.name == "reply").unwrap();
    let receivers: Vec<(&str, &Provenance)> = r
        .holders
        .iter()
        .filter(|h| h.access == Access::Receive)
        .map(|h| (h.task_name.as_str(), &h.provenance))
        .collect();
    assert_eq!(receivers.len(), 1, "{:?}", r.holders);
    assert_eq!(receivers[0].0, "requester");
    assert!(
        matches!(receivers[0].1, Provenance::Owns { path } if path.starts_with("future state +0x"))
    );
    assert!(r
        .owners
        .iter()
        .any(|o| o.name == "requester" && o.handle == HandleKind::Receiver));
    drop(reply_tx);
    runtime.shutdown_background();
}

#[test]
fn tasks_owning_an_arc_to_a_lock_are_listed_as_may_lock() {
    use std::sync::Arc;
    use turbowish::snapshot::schema::HandleKind;
    let runtime = runtime();
    let ledger = Arc::new(turbowish::trace::sync::Mutex::new_named("ledger", 0u64));
    runtime.block_on(async {
        // Locked once where it lives, so its address is known.
        *ledger.lock().await += 1;
        for name in ["auditor", "payer"] {
            let ledger = Arc::clone(&ledger);
            turbowish::trace::spawn(name, async move {
                std::future::pending::<()>().await;
                *ledger.lock().await += 1;
            });
        }
        turbowish::trace::spawn("bystander", std::future::pending::<()>());
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    });
    let snap = turbowish::capture::snapshot();
    let r = snap.resources.iter().find(|r| r.name == "ledger").unwrap();
    let mut owners: Vec<&str> = r
        .owners
        .iter()
        .filter(|o| o.handle == HandleKind::Lock)
        .map(|o| o.name.as_str())
        .collect();
    owners.sort();
    assert_eq!(owners, ["auditor", "payer"], "{:?}", r.owners);
    assert!(r
        .owners
        .iter()
        .all(|o| o.path.starts_with("future state +0x")));
    runtime.shutdown_background();
}

#[test]
fn a_receiver_whose_sender_only_main_holds_is_told_no_task_can_send() {
    use turbowish::snapshot::schema::ChainEnd;
    let runtime = runtime();
    let (tx, mut rx) = turbowish::trace::sync::mpsc::channel_named::<u32>("config", 1);
    runtime.block_on(async {
        turbowish::trace::spawn("loader", async move { rx.recv().await });
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    });
    let snap = turbowish::capture::snapshot();
    let chain = snap
        .chains
        .iter()
        .find(|c| c.links[0].waiter.task_name == "loader")
        .unwrap_or_else(|| panic!("{:#?}", snap.chains));
    assert_eq!(chain.end, ChainEnd::SendersOutsideTasks);
    let thread = &chain.links[0].holders[0].task_name;
    assert!(
        chain.text.ends_with(&format!(
            "; no task owns a sender of channel \"config\": only {thread} holds one, so no task can send"
        )),
        "{}",
        chain.text
    );
    assert!(!snap.cycles.iter().any(|c| c.text.contains("loader")));
    drop(tx);
    runtime.shutdown_background();
}
