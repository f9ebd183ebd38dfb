//! Instrumented `Mutex`, `RwLock` and `Semaphore` on real tokio runtimes:
//! what `resources()` records, and what `chains()` and `cycles()` make of it.
//!
//! * `two_task_deadlock`, `three_task_deadlock`: transfers locking accounts
//!   in opposite orders (a barrier makes every task hold its first lock
//!   before it asks for the second) are one cycle, each link waiting in
//!   `credit` for the lock the next task took in `debit`. The hung tasks are
//!   abandoned with their runtime, and their records go with them.
//! * `slow_holder_is_a_chain_not_a_cycle`: a holder waiting on
//!   `std::future::pending` with two tasks queued: two one-link chains
//!   ending `Untracked`, no cycle.
//! * `release_lets_waiters_in_and_leaves_no_record`: the same queue, with a
//!   holder waiting on a oneshot: once it releases, both waiters get the
//!   lock and no holder or waiter record remains.
//! * `cancelled_waiters_vanish`: a `lock()` that loses a `select!` against a
//!   sleep, and one dropped by `tokio::time::timeout`, are recorded as
//!   waiters while pending and leave no record.
//! * `aborted_waiters_vanish`: 1,000 queued tasks, half of them aborted
//!   while waiting: 1,000 waiter records, then 500, then none.
//! * `thousand_tasks_contending_leave_no_records`: 1,000 tasks each lock,
//!   yield and unlock on a 2-worker runtime; the count is 1,000 and no
//!   record is left.
//! * `rwlock_readers_and_waiting_writer`: 3 reader holders (`Shared`), a
//!   waiting writer (`Exclusive`) and a reader queued behind it, oldest
//!   first; after release the writer wrote before the late reader read.
//! * `semaphore_holders_and_waiters`: 5 permits held one each, waiters for 2
//!   and 1 permits (`Permits(n)`), then 10 holders of a 10-permit semaphore
//!   (8 named, 2 counted), and a waiter on a 0-permit semaphore whose chain
//!   ends `HeldByNobody` until permits are added.
//! * `last_counted_holder_is_not_nobody`: of 9 permit holders (8 named, 1
//!   counted) the 8 named ones release; a waiter for all 9 permits waits on
//!   the counted one, so its chain must not end "held by nobody".
//! * `records_name_task_frames_and_location`: holder and waiter records
//!   carry the spawn name, the TurboWish task id, the frame path
//!   (`transfer › debit`, `credit`) and the `line!()` of the lock call.
//! * `owned_guard_moved_to_another_task`: a `lock_owned()` guard taken in
//!   task A and moved into task B is recorded as A's, `movable`.
//! * `plain_tokio_and_thread_holders`: a holder outside TurboWish tasks is
//!   `TaskRef::TokioTask(id)` with tokio's id, or `TaskRef::Thread(_)`.
//! * `uncontended_paths_do_not_allocate`: 1,000 uncontended lock/unlock
//!   rounds of each lock kind add no block to the task's counters.
//! * `dropped_resource_leaves_the_graph`: dropping a resource removes it
//!   from `resources()`; an unnamed one is named `file:line` of its creation.
//! * `threads_outside_tasks_are_not_one_task`: two plain threads that each
//!   `block_on` are two parties of the wait-for graph, so a chain
//!   thread X → task T → thread Y (which runs) is not a deadlock.
//!
//! `resources()` is process-wide, so the tests are serialised and each one
//! looks only at resources named with its own prefix.

use std::collections::BTreeSet;
use std::future::Future;
use std::hint::black_box;
use std::sync::{Arc, MutexGuard as StdGuard};
use std::time::Duration;

use tokio::sync::{oneshot, watch, Barrier};
use turbowish_alloc::Owner;
use turbowish_trace::chains::{chains, cycles};
use turbowish_trace::chains::{ChainEnd, Cycle};
use turbowish_trace::sync::resources;
use turbowish_trace::sync::{Access, Mutex, ResourceInfo, RwLock, Semaphore, TaskRef};
use turbowish_trace::task::current_task;
use turbowish_trace::task::JoinHandle;
use turbowish_trace::TracedExt;
use turbowish_trace::{spawn, spawn_on};

#[global_allocator]
static A: turbowish_alloc::TurboWish = turbowish_alloc::TurboWish::system();

static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> StdGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

fn multi_thread() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

fn current_thread() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// Polls of a condition before a test gives up (10 ms apart: 20 s).
const POLLS: usize = 2000;
const POLL_EVERY: Duration = Duration::from_millis(10);

/// Waits, from outside any runtime, until `cond` holds.
fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    for _ in 0..POLLS {
        if cond() {
            return;
        }
        std::thread::sleep(POLL_EVERY);
    }
    panic!("gave up waiting for {what}");
}

/// Waits, inside a runtime, until `cond` holds.
async fn wait_until_async(what: &str, mut cond: impl FnMut() -> bool) {
    for _ in 0..POLLS {
        if cond() {
            return;
        }
        tokio::time::sleep(POLL_EVERY).await;
    }
    panic!("gave up waiting for {what}");
}

/// The live resources whose names start with `prefix`.
fn named(prefix: &str) -> Vec<ResourceInfo> {
    resources()
        .into_iter()
        .filter(|r| r.name.starts_with(prefix))
        .collect()
}

/// The one live resource named `name`.
fn one(name: &str) -> ResourceInfo {
    let mut found: Vec<ResourceInfo> = resources().into_iter().filter(|r| r.name == name).collect();
    assert_eq!(found.len(), 1, "resources named {name:?}: {found:?}");
    found.pop().unwrap()
}

fn is_idle(r: &ResourceInfo) -> bool {
    r.holders.is_empty() && r.extra_holders == 0 && r.waiters.is_empty()
}

fn assert_idle(name: &str) {
    let r = one(name);
    assert!(is_idle(&r), "records left on {name:?}: {r:#?}");
}

fn holder_names(r: &ResourceInfo) -> BTreeSet<String> {
    r.holders.iter().map(|h| h.task_name.clone()).collect()
}

fn waiter_names(r: &ResourceInfo) -> Vec<String> {
    r.waiters.iter().map(|w| w.task_name.clone()).collect()
}

fn set(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|s| s.to_string()).collect()
}

/// Link `i`'s holders include link `i + 1`'s waiter, cyclically.
fn assert_well_formed(cycle: &Cycle) {
    let n = cycle.links.len();
    for (i, link) in cycle.links.iter().enumerate() {
        let next = cycle.links[(i + 1) % n].waiter.task;
        assert!(
            link.holders.iter().any(|h| h.task == next),
            "link {i} of {cycle:#?}"
        );
    }
}

/// Locks `from` in frame `debit`, waits until every transfer holds its first
/// lock, then locks `to` in frame `credit`.
async fn transfer(from: Arc<Mutex<u64>>, to: Arc<Mutex<u64>>, all_hold: Arc<Barrier>) {
    let mut debit = async { from.lock().await }.traced("debit").await;
    *debit -= 1;
    all_hold.wait().await;
    let mut credit = async { to.lock().await }.traced("credit").await;
    *credit += 1;
}

/// Runs transfers `names[i]` from account `i` to account `i + 1` (mod n) on
/// a runtime of their own, and checks the deadlock `cycles()` reports.
fn ring_deadlock(prefix: &str, names: &[&'static str]) {
    let n = names.len();
    let runtime = multi_thread();
    let accounts: Vec<Arc<Mutex<u64>>> = (0..n)
        .map(|i| Arc::new(Mutex::new_named(format!("{prefix}/accounts[{i}]"), 100)))
        .collect();
    let all_hold = Arc::new(Barrier::new(n));
    for (i, &name) in names.iter().enumerate() {
        let (from, to) = (accounts[i].clone(), accounts[(i + 1) % n].clone());
        spawn_on(name, transfer(from, to, all_hold.clone()), runtime.handle());
    }
    let prefix_slash = format!("{prefix}/");
    wait_until("every transfer to wait for its second lock", || {
        named(&prefix_slash)
            .iter()
            .map(|r| r.waiters.len())
            .sum::<usize>()
            == n
    });

    let graph = named(&prefix_slash);
    assert_eq!(graph.len(), n);
    let found = cycles(&graph);
    assert_eq!(found.len(), 1, "{found:#?}");
    let cycle = &found[0];
    assert_eq!(cycle.links.len(), n);
    assert_well_formed(cycle);
    let in_cycle: BTreeSet<String> = cycle
        .links
        .iter()
        .map(|l| l.waiter.task_name.clone())
        .collect();
    assert_eq!(in_cycle, set(names));
    for link in &cycle.links {
        let i = names
            .iter()
            .position(|&name| name == link.waiter.task_name)
            .unwrap();
        // Transfer i waits (in `credit`) for account i + 1, held (since
        // `debit`) by transfer i + 1.
        assert_eq!(
            link.resource,
            format!("Mutex \"{prefix}/accounts[{}]\"", (i + 1) % n)
        );
        assert_eq!(link.waiter.frames.names(), ["credit"]);
        assert_eq!(link.waiter.access, Access::Exclusive);
        assert!(matches!(link.waiter.task, TaskRef::Task(_)));
        assert_eq!(link.holders.len(), 1);
        assert_eq!(link.holders[0].task_name, names[(i + 1) % n]);
        assert_eq!(link.holders[0].frames.names(), ["debit"]);
        assert_eq!(link.extra_holders, 0);
    }
    let text = cycle.to_string();
    assert!(text.starts_with("deadlock: task \""), "{text}");
    for name in names {
        assert!(text.contains(&format!("task \"{name}\"")), "{text}");
    }
    for i in 0..n {
        assert!(
            text.contains(&format!("Mutex \"{prefix}/accounts[{i}]\"")),
            "{text}"
        );
    }
    assert!(
        text.contains("› debit") && text.contains("credit"),
        "{text}"
    );

    let found = chains(&graph);
    assert_eq!(found.len(), 1, "{found:#?}");
    assert_eq!(found[0].end, ChainEnd::Cycle);
    assert_eq!(found[0].links.len(), n);

    // The hung tasks are dropped with their runtime, and their guards and
    // waiter records with them.
    runtime.shutdown_background();
    wait_until("the abandoned tasks' records to go", || {
        named(&prefix_slash).iter().all(is_idle)
    });
    assert_eq!(named(&prefix_slash).len(), n);
    drop(accounts);
    wait_until("the accounts to leave the graph", || {
        named(&prefix_slash).is_empty()
    });
}

#[test]
fn two_task_deadlock() {
    let _serial = serial();
    ring_deadlock("dl2", &["dl2-x", "dl2-y"]);
}

#[test]
fn three_task_deadlock() {
    let _serial = serial();
    ring_deadlock("dl3", &["dl3-ring-1", "dl3-ring-2", "dl3-ring-3"]);
}

/// Spawns `count` tasks `{prefix}-request-{i}` that each lock `lock` in
/// frame `load_balance`, waiting until each one is recorded as a waiter
/// before spawning the next (so the queue order is the spawn order).
fn queue_requests(
    runtime: &tokio::runtime::Runtime,
    prefix: &str,
    lock: &Arc<Mutex<u64>>,
    count: usize,
) -> Vec<JoinHandle<()>> {
    let name = lock.name().into_owned();
    (0..count)
        .map(|i| {
            let queued = lock.clone();
            let handle = spawn_on(
                format!("{prefix}-request-{i}"),
                async move {
                    let mut guard = async { queued.lock().await }.traced("load_balance").await;
                    *guard += 1;
                },
                runtime.handle(),
            );
            wait_until("the request to queue", || one(&name).waiters.len() == i + 1);
            handle
        })
        .collect()
}

#[test]
fn slow_holder_is_a_chain_not_a_cycle() {
    let _serial = serial();
    let runtime = multi_thread();
    let lock = Arc::new(Mutex::new_named("chain/report", 0_u64));
    let held = lock.clone();
    spawn_on(
        "chain-slow-report",
        async move {
            let _guard = async { held.lock().await }.traced("build_report").await;
            // Waits on something TurboWish does not track.
            std::future::pending::<()>().await;
        },
        runtime.handle(),
    );
    wait_until("the report to hold the lock", || {
        one("chain/report").holders.len() == 1
    });
    let _requests = queue_requests(&runtime, "chain", &lock, 2);

    let graph = named("chain/");
    let r = &graph[0];
    assert_eq!(holder_names(r), set(&["chain-slow-report"]));
    assert_eq!(r.holders[0].frames.names(), ["build_report"]);
    assert_eq!(
        waiter_names(r),
        ["chain-request-0", "chain-request-1"],
        "waiters oldest first"
    );
    assert!(cycles(&graph).is_empty());
    let found = chains(&graph);
    assert_eq!(found.len(), 2, "{found:#?}");
    for (i, chain) in found.iter().enumerate() {
        assert_eq!(chain.end, ChainEnd::Untracked);
        assert_eq!(chain.links.len(), 1);
        let link = &chain.links[0];
        assert_eq!(link.waiter.task_name, format!("chain-request-{i}"));
        assert_eq!(link.waiter.frames.names(), ["load_balance"]);
        assert_eq!(link.resource, "Mutex \"chain/report\"");
        assert_eq!(link.holders.len(), 1);
        assert_eq!(link.holders[0].task_name, "chain-slow-report");
        let text = chain.to_string();
        assert!(
            text.starts_with(&format!("task \"chain-request-{i}\"")),
            "{text}"
        );
        assert!(
            text.contains("waits for Mutex \"chain/report\"")
                && text.contains("held by task \"chain-slow-report\"")
                && text.contains("build_report")
                && text.contains("waiting on something untracked"),
            "{text}"
        );
    }
    runtime.shutdown_background();
    wait_until("the abandoned tasks' records to go", || {
        is_idle(&one("chain/report"))
    });
}

#[test]
fn release_lets_waiters_in_and_leaves_no_record() {
    let _serial = serial();
    let runtime = multi_thread();
    let lock = Arc::new(Mutex::new_named("release/report", 0_u64));
    let (release, released) = oneshot::channel::<()>();
    let held = lock.clone();
    let holder = spawn_on(
        "release-holder",
        async move {
            let mut guard = held.lock().await;
            released.await.unwrap();
            *guard += 10;
        },
        runtime.handle(),
    );
    wait_until("the holder to hold the lock", || {
        one("release/report").holders.len() == 1
    });
    let requests = queue_requests(&runtime, "release", &lock, 2);
    let graph = named("release/");
    assert!(cycles(&graph).is_empty());
    assert_eq!(chains(&graph).len(), 2);

    release.send(()).unwrap();
    runtime.block_on(async {
        holder.await.unwrap();
        for request in requests {
            request.await.unwrap();
        }
    });
    assert_idle("release/report");
    runtime.block_on(async {
        assert_eq!(*lock.lock().await, 12);
    });
    assert_idle("release/report");
}

#[test]
fn cancelled_waiters_vanish() {
    let _serial = serial();
    let runtime = current_thread();
    let lock = Arc::new(Mutex::new_named("cancel/lock", 0_u64));
    runtime.block_on(async {
        let _held = lock.lock().await;
        let waiters = || one("cancel/lock").waiters.len();

        // A lock that loses a `select!` against a short sleep. `biased`
        // polls it first, so it is a recorded waiter while the sleep runs.
        let contender = lock.clone();
        spawn("cancel-select", async move {
            tokio::select! {
                biased;
                _ = contender.lock() => panic!("the lock is held"),
                _ = async {
                    assert_eq!(waiters(), 1);
                    tokio::time::sleep(Duration::from_millis(20)).await;
                } => {}
            }
            assert_eq!(waiters(), 0);
        })
        .await
        .unwrap();
        assert_eq!(waiters(), 0);

        // A lock dropped by `timeout`, watched while pending.
        let contender = lock.clone();
        spawn("cancel-timeout", async move {
            let (timed_out, ()) = tokio::join!(
                tokio::time::timeout(Duration::from_millis(20), contender.lock()),
                async {
                    for _ in 0..POLLS {
                        if waiters() == 1 {
                            return;
                        }
                        tokio::task::yield_now().await;
                    }
                    panic!("the timed lock was never recorded as a waiter");
                }
            );
            assert!(timed_out.is_err());
            assert_eq!(waiters(), 0);
        })
        .await
        .unwrap();
        assert_eq!(waiters(), 0);

        let r = one("cancel/lock");
        assert_eq!(r.holders.len(), 1);
        assert!(matches!(r.holders[0].task, TaskRef::Thread(_)));
    });
    assert_idle("cancel/lock");
}

#[test]
fn aborted_waiters_vanish() {
    let _serial = serial();
    let runtime = multi_thread();
    let lock = Arc::new(Mutex::new_named("abort/lock", 0_u64));
    let (release, released) = oneshot::channel::<()>();
    let held = lock.clone();
    let holder = spawn_on(
        "abort-holder",
        async move {
            let _guard = held.lock().await;
            released.await.unwrap();
        },
        runtime.handle(),
    );
    wait_until("the holder", || one("abort/lock").holders.len() == 1);
    let tasks: Vec<JoinHandle<()>> = (0..1000)
        .map(|i| {
            let lock = lock.clone();
            spawn_on(
                format!("abort-waiter-{i}"),
                async move {
                    *lock.lock().await += 1;
                },
                runtime.handle(),
            )
        })
        .collect();
    wait_until("1000 waiters", || one("abort/lock").waiters.len() == 1000);
    for task in tasks.iter().step_by(2) {
        task.abort();
    }
    wait_until("500 waiters", || one("abort/lock").waiters.len() == 500);
    let r = one("abort/lock");
    assert_eq!(r.waiters.len(), 500);
    let names: BTreeSet<String> = waiter_names(&r).into_iter().collect();
    let expected: BTreeSet<String> = (1..1000)
        .step_by(2)
        .map(|i| format!("abort-waiter-{i}"))
        .collect();
    assert_eq!(names, expected);

    release.send(()).unwrap();
    let (completed, cancelled) = runtime.block_on(async {
        holder.await.unwrap();
        let (mut completed, mut cancelled) = (0, 0);
        for task in tasks {
            match task.await {
                Ok(()) => completed += 1,
                Err(e) if e.is_cancelled() => cancelled += 1,
                Err(e) => panic!("{e}"),
            }
        }
        (completed, cancelled)
    });
    assert_eq!((completed, cancelled), (500, 500));
    assert_idle("abort/lock");
    assert_eq!(runtime.block_on(async { *lock.lock().await }), 500);
}

#[test]
fn thousand_tasks_contending_leave_no_records() {
    let _serial = serial();
    let runtime = multi_thread();
    let lock = Arc::new(Mutex::new_named("contend/counter", 0_u64));
    let total = runtime.block_on(async {
        let tasks: Vec<JoinHandle<()>> = (0..1000)
            .map(|i| {
                let lock = lock.clone();
                spawn(
                    format!("contend-{i}"),
                    async move {
                        let mut guard = lock.lock().await;
                        *guard += 1;
                        tokio::task::yield_now().await;
                        drop(guard);
                    }
                    .traced("increment"),
                )
            })
            .collect();
        for task in tasks {
            task.await.unwrap();
        }
        *lock.lock().await
    });
    assert_eq!(total, 1000);
    assert_idle("contend/counter");
}

#[test]
fn rwlock_readers_and_waiting_writer() {
    let _serial = serial();
    let runtime = multi_thread();
    let lock = Arc::new(RwLock::new_named("rw/routes", 0_u32));
    let (release, released) = watch::channel(false);
    let mut tasks = Vec::new();
    for i in 0..3 {
        let (lock, mut released) = (lock.clone(), released.clone());
        tasks.push(spawn_on(
            format!("rw-reader-{i}"),
            async move {
                let guard = lock.read().await;
                released.wait_for(|r| *r).await.unwrap();
                *guard
            },
            runtime.handle(),
        ));
    }
    wait_until("3 readers", || one("rw/routes").holders.len() == 3);
    let writer = lock.clone();
    tasks.push(spawn_on(
        "rw-writer",
        async move {
            *writer.write().await += 1;
            0
        },
        runtime.handle(),
    ));
    wait_until("the writer to wait", || one("rw/routes").waiters.len() == 1);
    let r = one("rw/routes");
    assert_eq!(r.holders.len(), 3);
    assert!(r.holders.iter().all(|h| h.access == Access::Shared));
    assert_eq!(r.waiters.len(), 1);
    assert_eq!(r.waiters[0].access, Access::Exclusive);
    assert_eq!(r.waiters[0].task_name, "rw-writer");
    let late = lock.clone();
    tasks.push(spawn_on(
        "rw-late-reader",
        async move { *late.read().await },
        runtime.handle(),
    ));
    wait_until("the late reader to wait", || {
        one("rw/routes").waiters.len() == 2
    });

    let r = one("rw/routes");
    assert_eq!(r.kind, turbowish_trace::sync::ResourceKind::RwLock);
    assert_eq!(r.holders.len(), 3);
    assert_eq!(r.extra_holders, 0);
    assert!(r.holders.iter().all(|h| h.access == Access::Shared));
    assert_eq!(
        holder_names(&r),
        set(&["rw-reader-0", "rw-reader-1", "rw-reader-2"])
    );
    assert_eq!(waiter_names(&r), ["rw-writer", "rw-late-reader"]);
    assert_eq!(r.waiters[0].access, Access::Exclusive);
    assert_eq!(r.waiters[1].access, Access::Shared);

    let graph = named("rw/");
    assert!(cycles(&graph).is_empty());
    let found = chains(&graph);
    assert_eq!(found.len(), 2, "{found:#?}");
    assert!(found.iter().all(|c| c.links.len() == 1
        && c.links[0].holders.len() == 3
        && c.end == ChainEnd::Untracked));
    assert!(found[0].to_string().contains("and 2 other holder(s)"));

    release.send(true).unwrap();
    let seen = runtime.block_on(async {
        let mut seen = Vec::new();
        for task in tasks {
            seen.push(task.await.unwrap());
        }
        seen
    });
    // Readers saw 0, the late reader saw the writer's 1.
    assert_eq!(seen, [0, 0, 0, 0, 1]);
    assert_idle("rw/routes");
}

#[test]
fn semaphore_holders_and_waiters() {
    let _serial = serial();
    let runtime = multi_thread();
    let (release, released) = watch::channel(false);

    /// Spawns `count` tasks that each hold one permit of `pool` until
    /// released.
    fn hold_permits(
        runtime: &tokio::runtime::Runtime,
        pool: &Arc<Semaphore>,
        released: &watch::Receiver<bool>,
        count: usize,
    ) -> Vec<JoinHandle<()>> {
        let prefix = pool.name().into_owned();
        (0..count)
            .map(|i| {
                let (pool, mut released) = (pool.clone(), released.clone());
                spawn_on(
                    format!("{prefix}-holder-{i}"),
                    async move {
                        let permit = pool.acquire().await.unwrap();
                        assert_eq!(permit.num_permits(), 1);
                        released.wait_for(|r| *r).await.unwrap();
                    },
                    runtime.handle(),
                )
            })
            .collect()
    }

    // 5 permits, 5 holders, then waiters for 2 and for 1.
    let pool = Arc::new(Semaphore::new_named("sem/pool", 5));
    let mut tasks = hold_permits(&runtime, &pool, &released, 5);
    wait_until("5 holders", || one("sem/pool").holders.len() == 5);
    assert_eq!(pool.available_permits(), 0);
    let waiter = pool.clone();
    tasks.push(spawn_on(
        "sem-wants-2",
        async move {
            assert_eq!(waiter.acquire_many(2).await.unwrap().num_permits(), 2);
        },
        runtime.handle(),
    ));
    wait_until("a waiter for 2", || one("sem/pool").waiters.len() == 1);
    let waiter = pool.clone();
    tasks.push(spawn_on(
        "sem-wants-1",
        async move {
            drop(waiter.acquire().await.unwrap());
        },
        runtime.handle(),
    ));
    wait_until("a waiter for 1", || one("sem/pool").waiters.len() == 2);

    let r = one("sem/pool");
    assert_eq!(r.kind, turbowish_trace::sync::ResourceKind::Semaphore);
    assert_eq!(r.permits, Some(5));
    assert_eq!(r.holders.len(), 5);
    assert_eq!(r.extra_holders, 0);
    assert!(r.holders.iter().all(|h| h.access == Access::Permits(1)));
    let expected: BTreeSet<String> = (0..5).map(|i| format!("sem/pool-holder-{i}")).collect();
    assert_eq!(holder_names(&r), expected);
    assert_eq!(waiter_names(&r), ["sem-wants-2", "sem-wants-1"]);
    assert_eq!(r.waiters[0].access, Access::Permits(2));
    assert_eq!(r.waiters[1].access, Access::Permits(1));

    // 10 permits, 10 holders: 8 named, 2 counted.
    let big = Arc::new(Semaphore::new_named("sem/big", 10));
    tasks.extend(hold_permits(&runtime, &big, &released, 10));
    wait_until("10 holders", || {
        let r = one("sem/big");
        r.holders.len() + r.extra_holders == 10
    });
    let r = one("sem/big");
    assert_eq!((r.holders.len(), r.extra_holders), (8, 2));
    assert_eq!(big.available_permits(), 0);

    release.send(true).unwrap();
    runtime.block_on(async {
        for task in tasks {
            task.await.unwrap();
        }
    });
    assert_idle("sem/pool");
    assert_idle("sem/big");
    assert_eq!(pool.available_permits(), 5);
    assert_eq!(big.available_permits(), 10);

    // A waiter on a semaphore nobody holds.
    let empty = Arc::new(Semaphore::new_named("sem/empty", 0));
    let waiter = empty.clone();
    let task = spawn_on(
        "sem-starved",
        async move {
            drop(waiter.acquire_many(3).await.unwrap());
        },
        runtime.handle(),
    );
    wait_until("the starved waiter", || one("sem/empty").waiters.len() == 1);
    let graph = named("sem/empty");
    let found = chains(&graph);
    assert_eq!(found.len(), 1, "{found:#?}");
    assert_eq!(found[0].end, ChainEnd::HeldByNobody);
    assert_eq!(found[0].links[0].waiter.task_name, "sem-starved");
    assert_eq!(found[0].links[0].waiter.access, Access::Permits(3));
    assert!(found[0].links[0].holders.is_empty());
    assert!(cycles(&graph).is_empty());
    empty.add_permits(3);
    runtime.block_on(task).unwrap();
    assert_idle("sem/empty");
}

#[test]
fn last_counted_holder_is_not_nobody() {
    let _serial = serial();
    let runtime = multi_thread();
    let pool = Arc::new(Semaphore::new_named("counted/pool", 9));
    let mut releases = Vec::new();
    let mut holders = Vec::new();
    for i in 0..9 {
        let (release, released) = oneshot::channel::<()>();
        let pool_i = pool.clone();
        holders.push(spawn_on(
            format!("counted-holder-{i}"),
            async move {
                let _permit = pool_i.acquire().await.unwrap();
                released.await.unwrap();
            },
            runtime.handle(),
        ));
        releases.push(release);
        // One at a time, so holders 0..8 take the named slots.
        wait_until("the holder", || {
            let r = one("counted/pool");
            r.holders.len() + r.extra_holders == i + 1
        });
    }
    let r = one("counted/pool");
    assert_eq!((r.holders.len(), r.extra_holders), (8, 1));
    let last = releases.pop().unwrap();
    for (release, holder) in releases.into_iter().zip(holders.drain(..8)) {
        release.send(()).unwrap();
        runtime.block_on(holder).unwrap();
    }
    let waiter = pool.clone();
    let all = spawn_on(
        "counted-wants-all",
        async move {
            drop(waiter.acquire_many(9).await.unwrap());
        },
        runtime.handle(),
    );
    wait_until("the waiter", || one("counted/pool").waiters.len() == 1);
    let graph = named("counted/");
    assert_eq!(graph[0].holders.len() + graph[0].extra_holders, 1);
    let found = chains(&graph);

    last.send(()).unwrap();
    runtime.block_on(async {
        holders.pop().unwrap().await.unwrap();
        all.await.unwrap();
    });
    assert_idle("counted/pool");

    assert_eq!(found.len(), 1, "{found:#?}");
    let text = found[0].to_string();
    assert_ne!(found[0].end, ChainEnd::HeldByNobody, "{text}");
    assert!(!text.contains("held by nobody"), "{text}");
}

#[test]
fn records_name_task_frames_and_location() {
    let _serial = serial();
    let runtime = multi_thread();
    let lock = Arc::new(Mutex::new_named("rec/account", 0_u64));
    let (release, released) = oneshot::channel::<()>();
    let (report, reported) = oneshot::channel::<(u64, u32)>();
    let held = lock.clone();
    let holder = spawn_on(
        "rec-holder",
        async move {
            let (guard, line) = async { (held.lock().await, line!()) }.traced("debit").await;
            report.send((current_task().unwrap().0, line)).unwrap();
            released.await.unwrap();
            drop(guard);
        }
        .traced("transfer"),
        runtime.handle(),
    );
    let (holder_id, holder_line) = runtime.block_on(reported).unwrap();

    let (waiter_report, waiter_reported) = oneshot::channel::<(u64, u32)>();
    let wanted = lock.clone();
    let waiter = spawn_on(
        "rec-waiter",
        async move {
            let id = current_task().unwrap().0;
            let (fut, line) = (wanted.lock(), line!());
            waiter_report.send((id, line)).unwrap();
            *fut.traced("credit").await += 1;
        },
        runtime.handle(),
    );
    let (waiter_id, waiter_line) = runtime.block_on(waiter_reported).unwrap();
    wait_until("the waiter", || one("rec/account").waiters.len() == 1);

    let r = one("rec/account");
    assert_eq!(r.kind, turbowish_trace::sync::ResourceKind::Mutex);
    assert_eq!(r.permits, None);
    assert_eq!(r.location.file(), file!());
    assert_eq!(r.holders.len(), 1);
    let h = &r.holders[0];
    assert_eq!(h.task, TaskRef::Task(holder_id));
    assert_eq!(h.task_name, "rec-holder");
    assert_eq!(h.task.name(), "rec-holder");
    assert_eq!(h.frames.names(), ["transfer", "debit"]);
    assert_eq!(h.frames.to_string(), "transfer › debit");
    assert_eq!(h.location.file(), file!());
    assert_eq!(h.location.line(), holder_line);
    assert_eq!(h.access, Access::Exclusive);
    assert!(!h.movable);

    assert_eq!(r.waiters.len(), 1);
    let w = &r.waiters[0];
    assert_ne!(waiter_id, holder_id);
    assert_eq!(w.task, TaskRef::Task(waiter_id));
    assert_eq!(w.task_name, "rec-waiter");
    // The lock future was created outside the frame but is polled (and
    // starts waiting) inside it.
    assert_eq!(w.frames.names(), ["credit"]);
    assert_eq!(w.location.file(), file!());
    assert_eq!(w.location.line(), waiter_line);
    assert_eq!(w.access, Access::Exclusive);
    assert!(!w.movable);

    let found = chains(&named("rec/"));
    assert_eq!(found.len(), 1);
    let text = found[0].to_string();
    assert!(
        text.starts_with(&format!(
            "task \"rec-waiter\" ({}:{waiter_line} › credit) waits for Mutex \"rec/account\"",
            file!()
        )),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "held by task \"rec-holder\" ({}:{holder_line} › transfer › debit) since",
            file!()
        )),
        "{text}"
    );

    release.send(()).unwrap();
    runtime.block_on(async {
        holder.await.unwrap();
        waiter.await.unwrap();
    });
    assert_idle("rec/account");
}

#[test]
fn owned_guard_moved_to_another_task() {
    let _serial = serial();
    let runtime = multi_thread();
    let lock = Arc::new(Mutex::new_named("owned/lock", 0_u64));
    let (hand_over, handed) = oneshot::channel();
    let (a_done, a_finish) = oneshot::channel::<()>();
    let (b_done, b_finish) = oneshot::channel::<()>();
    let (ids, ids_rx) = std::sync::mpsc::channel::<(&str, u64, u32)>();

    let acquire = lock.clone();
    let a_ids = ids.clone();
    let a = spawn_on(
        "owned-a",
        async move {
            let (guard, line) = (acquire.lock_owned(), line!());
            let guard = guard.await;
            a_ids.send(("a", current_task().unwrap().0, line)).unwrap();
            hand_over.send(guard).unwrap();
            a_finish.await.unwrap();
        },
        runtime.handle(),
    );
    let b = spawn_on(
        "owned-b",
        async move {
            let mut guard = handed.await.unwrap();
            ids.send(("b", current_task().unwrap().0, 0)).unwrap();
            *guard += 1;
            b_finish.await.unwrap();
            drop(guard);
        },
        runtime.handle(),
    );
    let (_, a_id, line) = ids_rx.recv().unwrap();
    let (_, b_id, _) = ids_rx.recv().unwrap();
    assert_ne!(a_id, b_id);

    // B holds the guard now; the record names A, movable.
    let r = one("owned/lock");
    assert_eq!(r.holders.len(), 1);
    let h = &r.holders[0];
    assert_eq!(h.task, TaskRef::Task(a_id));
    assert_eq!(h.task_name, "owned-a");
    assert!(h.movable);
    assert_eq!(h.access, Access::Exclusive);
    assert_eq!(h.location.line(), line);

    a_done.send(()).unwrap();
    runtime.block_on(a).unwrap();
    // A has ended; B still holds, and the record still names A.
    let r = one("owned/lock");
    assert_eq!(r.holders.len(), 1);
    assert_eq!(r.holders[0].task, TaskRef::Task(a_id));
    b_done.send(()).unwrap();
    runtime.block_on(b).unwrap();
    assert_idle("owned/lock");
    assert_eq!(runtime.block_on(async { *lock.lock().await }), 1);
}

#[test]
fn plain_tokio_and_thread_holders() {
    let _serial = serial();
    let runtime = current_thread();
    let lock = Arc::new(Mutex::new_named("plain/lock", 0_u64));
    runtime.block_on(async {
        let (release, released) = oneshot::channel::<()>();
        let held = lock.clone();
        let task = tokio::spawn(async move {
            let _guard = held.lock().await;
            released.await.unwrap();
        });
        let id: u64 = task.id().to_string().parse().unwrap();
        wait_until_async("the tokio task to hold", || {
            one("plain/lock").holders.len() == 1
        })
        .await;
        let h = one("plain/lock").holders.remove(0);
        assert_eq!(h.task, TaskRef::TokioTask(id));
        assert_eq!(h.task_name, format!("tokio task {id}"));
        release.send(()).unwrap();
        task.await.unwrap();

        let _guard = lock.lock().await;
        let h = one("plain/lock").holders.remove(0);
        let TaskRef::Thread(n) = h.task else {
            panic!("expected a thread holder, got {:?}", h.task);
        };
        assert_eq!(h.task_name, format!("thread #{n} (outside tasks)"));
    });
    assert_idle("plain/lock");
}

#[test]
fn uncontended_paths_do_not_allocate() {
    let _serial = serial();
    let runtime = current_thread();
    let mutex = Arc::new(Mutex::new_named("noalloc/mutex", 0_u64));
    let rwlock = Arc::new(RwLock::new_named("noalloc/rwlock", 0_u64));
    let semaphore = Arc::new(Semaphore::new_named("noalloc/semaphore", 4));
    let (m, rw, sem) = (mutex.clone(), rwlock.clone(), semaphore.clone());
    runtime
        .block_on(spawn_on(
            "noalloc",
            async move {
                let (m, rw, sem) = (&m, &rw, &sem);
                let id = current_task().unwrap().0;
                // `stats()` charges its own allocations to `internal`.
                let blocks = move || {
                    turbowish_alloc::stats()
                        .counters(Owner::Task(id))
                        .total_blocks
                };

                // The counter sees this task's allocations.
                let before = blocks();
                let boxed = black_box(Box::new(7_u64));
                assert_eq!(blocks(), before + 1);
                drop(boxed);

                // The wrappers spend tokio's cooperative budget like tokio's
                // own locks; the first time the budget runs out, tokio grows
                // its list of deferred wakers once, charged to this task.
                // Warm that up so the checks below see only our paths.
                for _ in 0..1000 {
                    tokio::task::consume_budget().await;
                }

                async fn check<F: Future<Output = ()>>(
                    what: &str,
                    blocks: &impl Fn() -> u64,
                    round: impl Fn() -> F,
                ) {
                    let before = blocks();
                    for _ in 0..1000 {
                        round().await;
                    }
                    assert_eq!(blocks(), before, "{what} allocated");
                }
                check("Mutex::lock", &blocks, move || async move {
                    *m.lock().await += 1;
                })
                .await;
                check("Mutex::try_lock", &blocks, move || async move {
                    *m.try_lock().unwrap() += 1;
                })
                .await;
                check("Mutex::lock_owned", &blocks, move || async move {
                    *Arc::clone(m).lock_owned().await += 1;
                })
                .await;
                check("RwLock::read", &blocks, move || async move {
                    black_box(*rw.read().await);
                })
                .await;
                check("RwLock::write", &blocks, move || async move {
                    *rw.write().await += 1;
                })
                .await;
                check("Semaphore::acquire", &blocks, move || async move {
                    drop(black_box(sem.acquire().await.unwrap()));
                })
                .await;
                check("Semaphore::acquire_many", &blocks, move || async move {
                    drop(black_box(sem.acquire_many(3).await.unwrap()));
                })
                .await;
                check("Semaphore::try_acquire", &blocks, move || async move {
                    drop(black_box(sem.try_acquire().unwrap()));
                })
                .await;
                check(
                    "Semaphore::acquire_many_owned",
                    &blocks,
                    move || async move {
                        drop(black_box(
                            Arc::clone(sem).acquire_many_owned(2).await.unwrap(),
                        ));
                    },
                )
                .await;
                check("traced Mutex::lock", &blocks, move || {
                    async move {
                        *m.lock().await += 1;
                    }
                    .traced("frame")
                })
                .await;
            }
            .traced("outer"),
            runtime.handle(),
        ))
        .unwrap();
    assert_eq!(runtime.block_on(async { *mutex.lock().await }), 4000);
    assert_eq!(runtime.block_on(async { *rwlock.read().await }), 1000);
    for name in ["noalloc/mutex", "noalloc/rwlock", "noalloc/semaphore"] {
        assert_idle(name);
    }
}

#[test]
fn dropped_resource_leaves_the_graph() {
    let _serial = serial();
    let lock = Mutex::new_named("gone/lock", ());
    let pool = Semaphore::new_named("gone/pool", 1);
    let routes = RwLock::new_named("gone/routes", ());
    assert_eq!(named("gone/").len(), 3);
    drop(lock);
    assert_eq!(
        named("gone/")
            .iter()
            .map(|r| r.name.as_str())
            .collect::<Vec<_>>(),
        ["gone/pool", "gone/routes"]
    );
    drop((pool, routes));
    assert!(named("gone/").is_empty());

    // An unnamed resource is named after the place it was created.
    let (unnamed, line) = (Mutex::new(()), line!());
    let name = format!("{}:{line}", file!());
    assert_eq!(unnamed.name(), name);
    let r = one(&name);
    assert_eq!((r.location.file(), r.location.line()), (file!(), line));
    drop(unnamed);
    assert!(resources().iter().all(|r| r.name != name));
}

#[test]
fn threads_outside_tasks_are_not_one_task() {
    let _serial = serial();
    let runtime = multi_thread();
    let r1 = Arc::new(Mutex::new_named("threads/r1", ()));
    let r2 = Arc::new(Mutex::new_named("threads/r2", ()));
    let r3 = Arc::new(Mutex::new_named("threads/r3", ()));

    // Thread Y holds r3 and waits on a std channel (nothing tracked).
    let (release_y, y_released) = std::sync::mpsc::channel::<()>();
    let y_lock = r3.clone();
    let y = std::thread::spawn(move || {
        current_thread().block_on(async {
            let _guard = y_lock.lock().await;
            // Err when the test panics: the sender is dropped.
            let _ = y_released.recv();
        });
    });
    wait_until("Y to hold r3", || one("threads/r3").holders.len() == 1);

    // Task T holds r2 and waits for r3.
    let (t2, t3) = (r2.clone(), r3.clone());
    let t = spawn_on(
        "threads-t",
        async move {
            let _held = t2.lock().await;
            let _wanted = t3.lock().await;
        },
        runtime.handle(),
    );
    wait_until("T to wait for r3", || one("threads/r3").waiters.len() == 1);

    // Thread X holds r1 and waits for r2.
    let (x1, x2) = (r1.clone(), r2.clone());
    let x = std::thread::spawn(move || {
        current_thread().block_on(async {
            let _held = x1.lock().await;
            let _wanted = x2.lock().await;
        });
    });
    wait_until("X to wait for r2", || one("threads/r2").waiters.len() == 1);

    // X → T → Y, and Y is running: a chain, not a deadlock.
    let graph = named("threads/");
    let found_cycles = cycles(&graph);
    let found_chains = chains(&graph);

    release_y.send(()).unwrap();
    y.join().unwrap();
    runtime.block_on(t).unwrap();
    x.join().unwrap();
    for name in ["threads/r1", "threads/r2", "threads/r3"] {
        assert_idle(name);
    }

    assert!(
        found_cycles.is_empty(),
        "a false deadlock between two different threads: {}",
        found_cycles
            .iter()
            .map(|c| c.to_string())
            .collect::<Vec<_>>()
            .join("\n")
    );
    assert_eq!(found_chains.len(), 1, "{found_chains:#?}");
    assert_eq!(found_chains[0].links.len(), 2);
    assert_eq!(found_chains[0].end, ChainEnd::Untracked);
}

/// A loop over an always-free lock or an always-ready channel yields to
/// other tasks, as it would with tokio's own types (cooperative budget).
#[test]
fn hot_loops_over_ready_resources_yield() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;

    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    rt.block_on(async {
        let other_ran = Arc::new(AtomicBool::new(false));
        let flag = other_ran.clone();
        let other = tokio::spawn(async move { flag.store(true, Ordering::SeqCst) });

        let lock = turbowish_trace::sync::Mutex::new_named("coop/lock", 0u32);
        let mut saw_other_during_locks = false;
        for _ in 0..10_000 {
            *lock.lock().await += 1;
            saw_other_during_locks |= other_ran.load(Ordering::SeqCst);
        }
        assert!(
            saw_other_during_locks,
            "10,000 uncontended locks never yielded"
        );

        let (tx, mut rx) = turbowish_trace::sync::mpsc::unbounded_channel_named::<u32>("coop/ch");
        let other_ran = Arc::new(AtomicBool::new(false));
        let flag = other_ran.clone();
        let second = tokio::spawn(async move { flag.store(true, Ordering::SeqCst) });
        for i in 0..10_000 {
            tx.send(i).unwrap();
        }
        let mut saw_other_during_recv = false;
        for _ in 0..10_000 {
            rx.recv().await.unwrap();
            saw_other_during_recv |= other_ran.load(Ordering::SeqCst);
        }
        assert!(saw_other_during_recv, "10,000 ready receives never yielded");
        other.await.unwrap();
        second.await.unwrap();
    });
}

/// The non-waiting and owned variants record holders and release them.
#[test]
fn try_and_owned_variants_record_and_release() {
    use turbowish_trace::sync::{Access, Mutex, RwLock, Semaphore};

    fn holders(name: &str) -> Vec<Access> {
        turbowish_trace::sync::resources()
            .into_iter()
            .filter(|r| r.name == name)
            .flat_map(|r| r.holders.into_iter().map(|h| h.access))
            .collect()
    }

    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    rt.block_on(async {
        let rw = RwLock::new_named("variants/rw", 1u32);
        {
            let a = rw.try_read().unwrap();
            let b = rw.try_read().unwrap();
            assert!(rw.try_write().is_err());
            assert_eq!(holders("variants/rw"), [Access::Shared, Access::Shared]);
            assert_eq!(*a + *b, 2);
        }
        {
            let mut w = rw.try_write().unwrap();
            *w = 5;
            assert_eq!(holders("variants/rw"), [Access::Exclusive]);
        }
        assert!(holders("variants/rw").is_empty());
        assert_eq!(rw.into_inner(), 5);

        let sem = std::sync::Arc::new(Semaphore::new_named("variants/sem", 3));
        {
            let two = sem.try_acquire_many(2).unwrap();
            assert_eq!(two.num_permits(), 2);
            let one = std::sync::Arc::clone(&sem).acquire_owned().await.unwrap();
            assert_eq!(one.num_permits(), 1);
            assert_eq!(
                holders("variants/sem"),
                [Access::Permits(2), Access::Permits(1)]
            );
            assert!(sem.try_acquire_many(1).is_err());
        }
        assert!(holders("variants/sem").is_empty());
        assert_eq!(sem.available_permits(), 3);

        // Forgotten permits leave the semaphore's total and its records.
        let owned = std::sync::Arc::clone(&sem)
            .try_acquire_many_owned(2)
            .unwrap();
        assert_eq!(holders("variants/sem"), [Access::Permits(2)]);
        owned.forget();
        assert!(holders("variants/sem").is_empty());
        assert_eq!(sem.available_permits(), 1);
        sem.try_acquire().unwrap().forget();
        assert_eq!(sem.available_permits(), 0);
        let info = turbowish_trace::sync::resources()
            .into_iter()
            .find(|r| r.name == "variants/sem")
            .unwrap();
        assert_eq!(info.permits, Some(0));

        let mutex = Mutex::new_named("variants/mutex", 7u32);
        *mutex.lock().await += 1;
        assert_eq!(mutex.into_inner(), 8);
    });
}
