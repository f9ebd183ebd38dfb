//! The public resource API (`turbowish_trace::resource`) on a live
//! process, and how chains and cycles read cumulative resources:
//!
//! * `declared_kinds_show_under_their_own_kind_and_name`: holds, waits and
//!   ends of declared resources appear in `resources()` with the kind name,
//!   instance name, class, task and frame; dropping them leaves no record.
//! * `owned_hold_and_end_are_found_in_the_task_that_owns_them`: the walker
//!   names the task whose state holds an `OwnedHold` or an `End` (counting
//!   mode's scan of root cells), and the task holding the `Resource` as
//!   one that may take it.
//! * `cumulative_wait_with_a_running_holder_is_no_deadlock`: a waiter for
//!   units of a pool, holding some itself, is stuck only when every holder
//!   waits (hand-built graphs, exact chains and cycles).

use std::panic::Location;
use std::sync::Arc;
use std::time::Duration;

use turbowish_trace::chains::{chains, cycles, ChainEnd};
use turbowish_trace::frame::FramePath;
use turbowish_trace::ownership::HandleKind;
use turbowish_trace::resource::{Class, Resource};
use turbowish_trace::sync::{Access, Party, Provenance, ResourceInfo, ResourceKind, TaskRef};
use turbowish_trace::TracedExt;

#[global_allocator]
static A: turbowish_alloc::TurboWish = turbowish_alloc::TurboWish::system();

/// The live tests take this first. A reader of the graph (`resources()`,
/// a snapshot) keeps each resource it lists alive until it returns, so a
/// resource dropped while another test reads the graph leaves it only when
/// that reader is done; with one live test at a time, "dropped, it is
/// gone" holds at once and is asserted exactly.
static GRAPH: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn info(id: u64) -> ResourceInfo {
    turbowish_trace::sync::resources()
        .into_iter()
        .find(|r| r.id == id)
        .expect("a live resource")
}

async fn until(mut done: impl FnMut() -> bool) {
    for _ in 0..5000 {
        if done() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    panic!("condition not reached in 10 s");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn declared_kinds_show_under_their_own_kind_and_name() {
    let _alone = GRAPH.lock().await;
    let pool = Arc::new(Resource::new(
        "pool",
        "decl/db",
        Class::Cumulative { capacity: 3 },
    ));
    let (held, release) = (
        Arc::new(tokio::sync::Notify::new()),
        Arc::new(tokio::sync::Notify::new()),
    );
    let task = turbowish_trace::spawn("decl-holder", {
        let (pool, held, release) = (pool.clone(), held.clone(), release.clone());
        async move {
            async {
                let _two = pool.hold(Access::Permits(2)).unwrap();
                let _waiting = pool.wait(Access::Permits(2)).unwrap();
                held.notify_one();
                release.notified().await;
            }
            .traced("checkout")
            .await
        }
    });
    held.notified().await;
    let r = info(pool.id());
    assert_eq!(r.kind, ResourceKind::Declared("pool"));
    assert_eq!(r.kind.to_string(), "pool");
    assert_eq!(r.name, "decl/db");
    assert_eq!(r.permits, Some(3));
    assert_eq!(pool.class(), Class::Cumulative { capacity: 3 });
    assert_eq!(r.holders.len(), 1);
    assert_eq!(r.waiters.len(), 1);
    for party in [&r.holders[0], &r.waiters[0]] {
        assert_eq!(party.task_name, "decl-holder");
        assert_eq!(party.access, Access::Permits(2));
        assert_eq!(party.frames.to_string(), "checkout");
        assert_eq!(party.location.file(), file!());
        assert_eq!(party.provenance, Provenance::Recorded);
    }
    assert!(!r.holders[0].movable);
    release.notify_one();
    task.await.unwrap();
    let r = info(pool.id());
    assert!(r.holders.is_empty() && r.waiters.is_empty());

    // A channel of its own kind: ends are holders of their side.
    let queue = Resource::new("job queue", "decl/jobs", Class::Channel);
    let send = queue.end(Access::Send).unwrap();
    let more = send.clone_end();
    let receive = queue.end(Access::Receive).unwrap();
    let waiting = receive.wait();
    let r = info(queue.id());
    assert_eq!(r.kind.to_string(), "job queue");
    let mut sides: Vec<Access> = r.holders.iter().map(|h| h.access).collect();
    sides.sort_by_key(|a| format!("{a:?}"));
    assert_eq!(sides, [Access::Receive, Access::Send, Access::Send]);
    assert!(r.holders.iter().all(|h| h.movable));
    assert_eq!(r.waiters.len(), 1);
    assert_eq!(r.waiters[0].access, Access::Receive);
    // With every sender held by this thread, which is not waiting on
    // anything, the receiver's chain is one wait.
    let found = chains(&[r]);
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].links[0].resource, "job queue \"decl/jobs\"");
    drop(waiting);
    drop((send, more, receive));
    let r = info(queue.id());
    assert!(r.holders.is_empty() && r.waiters.is_empty());

    // Dropped, a resource leaves the graph.
    let id = pool.id();
    drop(Arc::into_inner(pool).unwrap());
    assert!(turbowish_trace::sync::resources()
        .iter()
        .all(|r| r.id != id));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn owned_hold_and_end_are_found_in_the_task_that_owns_them() {
    let _alone = GRAPH.lock().await;
    let lease = Arc::new(Resource::new("lease", "decl/own", Class::Exclusive));
    let queue = Resource::new("job queue", "decl/own-jobs", Class::Channel);
    // Where the lease lives: a task holding the `Arc` may take it.
    lease.note_owner(&*lease);
    // Taken here (outside any task), then moved into the task.
    let hold = lease.hold_owned(Access::Exclusive).unwrap();
    let end = queue.end(Access::Send).unwrap();
    let (moved, release) = (
        Arc::new(tokio::sync::Notify::new()),
        Arc::new(tokio::sync::Notify::new()),
    );
    let task = turbowish_trace::spawn("decl-owner", {
        let (lease, moved, release) = (lease.clone(), moved.clone(), release.clone());
        async move {
            let (_hold, _end, _lease) = (hold, end, lease);
            moved.notify_one();
            release.notified().await;
        }
    });
    moved.notified().await;
    // The record still names the taker; the walker names the owner.
    let r = info(lease.id());
    assert!(matches!(r.holders[0].task, TaskRef::Thread(_)));
    assert!(r.holders[0].movable);
    let mut kinds = Vec::new();
    until(|| {
        let graph = turbowish_trace::ownership::resources();
        let owners = |id: u64| -> Vec<HandleKind> {
            let r = graph.iter().find(|r| r.id == id).unwrap();
            let mut k: Vec<HandleKind> = r
                .owners
                .iter()
                .filter(|o| o.name == "decl-owner")
                .map(|o| o.handle)
                .collect();
            k.sort();
            k.dedup();
            k
        };
        kinds = [owners(lease.id()), owners(queue.id())].concat();
        let sender = graph
            .iter()
            .find(|r| r.id == queue.id())
            .unwrap()
            .holders
            .iter()
            .any(|h| {
                h.task_name == "decl-owner" && matches!(h.provenance, Provenance::Owns { .. })
            });
        kinds == [HandleKind::Lock, HandleKind::Guard, HandleKind::Sender] && sender
    })
    .await;
    release.notify_one();
    task.await.unwrap();
}

fn party(task: u64, access: Access) -> Party {
    Party {
        task: TaskRef::Task(task),
        task_name: format!("t{task}"),
        frames: FramePath::default(),
        location: Location::caller(),
        since: Duration::from_secs(1),
        access,
        movable: false,
        parked_in: None,
        provenance: Provenance::Recorded,
        slot: None,
    }
}

fn pool(holders: &[(u64, u32)], waiters: &[(u64, u32)]) -> ResourceInfo {
    ResourceInfo {
        id: 1,
        kind: ResourceKind::Declared("pool"),
        name: "db".to_owned(),
        location: Location::caller(),
        holders: holders
            .iter()
            .map(|&(t, n)| party(t, Access::Permits(n)))
            .collect(),
        extra_holders: 0,
        waiters: waiters
            .iter()
            .map(|&(t, n)| party(t, Access::Permits(n)))
            .collect(),
        permits: Some(holders.iter().map(|h| h.1 as usize).sum()),
        owners: Vec::new(),
    }
}

#[test]
fn cumulative_wait_with_a_running_holder_is_no_deadlock() {
    // 1 and 2 hold a unit each and both wait for another: a deadlock of
    // two, not a self-wait of one.
    let graph = [pool(&[(1, 1), (2, 1)], &[(1, 1), (2, 1)])];
    let found = cycles(&graph);
    assert_eq!(found.len(), 1, "{found:?}");
    let mut tasks: Vec<TaskRef> = found[0].links.iter().map(|l| l.waiter.task).collect();
    tasks.sort();
    assert_eq!(tasks, [TaskRef::Task(1), TaskRef::Task(2)]);
    let text = found[0].to_string();
    assert!(
        text.starts_with("deadlock: task \"t1\"") && text.contains("held by task \"t2\""),
        "{text}"
    );

    // 3 holds a unit and runs: it can give it back, so 1 and 2 wait in a
    // chain, not a cycle, and the chain follows a holder other than the
    // waiter.
    let graph = [pool(&[(1, 1), (2, 1), (3, 1)], &[(1, 1), (2, 1)])];
    assert!(cycles(&graph).is_empty());
    let found = chains(&graph);
    assert!(!found.is_empty());
    for chain in &found {
        assert_ne!(chain.end, ChainEnd::Cycle, "{chain}");
        assert!(chain
            .links
            .iter()
            .all(|l| l.holders[0].task != l.waiter.task));
    }

    // The only holder waiting for more of what it holds: a deadlock of one.
    let graph = [pool(&[(1, 2)], &[(1, 1)])];
    let found = cycles(&graph);
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].links.len(), 1);
}
