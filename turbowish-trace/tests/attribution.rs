//! Which row of `tasks()` the bytes of a traced task end up on, exactly.
//!
//! * `frame_allocations_are_charged_to_the_task_current_thread` and
//!   `..._multi_thread`: a task that allocates, reallocates and frees inside
//!   nested `.traced(..)` frames, step by step (driven by channels from
//!   `main`, on one thread and on a two-worker runtime where steps may run on
//!   different workers), is charged exactly those bytes on its own row, plus
//!   its root cell; once it ends holding nothing its row is gone.
//! * `nested_spawn_charges_the_child`: a task spawned from inside another
//!   is charged its own root cell and its own allocations; the parent's
//!   counters do not move while the child allocates.
//! * `spawn_blocking_is_charged_to_the_blocking_task`: a `spawn_blocking`
//!   closure started by a traced task runs outside the task's poll; its
//!   bytes go to the blocking task's own tokio row (found through
//!   `tokio::task::try_id()`), not to the traced task.
//! * `registry_bookkeeping_is_not_charged_to_the_spawner`: a task that
//!   spawned 2,000 children holds nothing once they, it and the runtime are
//!   gone.
//!
//! Only per-task rows are compared; the tests are serialised anyway, so one
//! test's runtime threads do not share the process with another's.

use std::hint::black_box;
use std::sync::{Arc, Barrier, Mutex, MutexGuard};

use tokio::sync::oneshot;
use turbowish_alloc::Counters;
use turbowish_trace::task::Owner;
use turbowish_trace::task::{tasks, TaskInfo, TaskState};
use turbowish_trace::TracedExt;

#[global_allocator]
static A: turbowish_alloc::TurboWish = turbowish_alloc::TurboWish::system();

static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

fn current_thread() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn multi_thread() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

fn tokio_id(id: tokio::task::Id) -> u64 {
    id.to_string().parse().expect("tokio task id is a u64")
}

/// The one `tasks()` row named `name`, if any.
fn find_row(name: &str) -> Option<TaskInfo> {
    let mut rows: Vec<TaskInfo> = tasks().into_iter().filter(|t| t.name == name).collect();
    assert!(rows.len() <= 1, "two rows named {name:?}: {rows:?}");
    rows.pop()
}

fn memory(name: &str) -> Counters {
    find_row(name)
        .unwrap_or_else(|| panic!("no row named {name:?}"))
        .memory
}

/// Counters without the peak (checked by turbowish-alloc's own tests).
fn counts(live_bytes: usize, live_blocks: u64, total_bytes: usize, total_blocks: u64) -> Counters {
    Counters {
        live_bytes: live_bytes as u64,
        live_blocks,
        total_bytes: total_bytes as u64,
        total_blocks,
        peak_live_bytes: 0,
    }
}

fn without_peak(c: Counters) -> Counters {
    Counters {
        peak_live_bytes: 0,
        ..c
    }
}

/// The row of task `name` once the poll it is in (if any) has ended. On a
/// multi-thread runtime a task that has just sent on a channel may still be
/// inside that poll; sending it the next step then would let it run on in
/// the same poll.
fn parked(name: &str) -> TaskInfo {
    loop {
        let row = find_row(name).unwrap_or_else(|| panic!("no row named {name:?}"));
        if row.state != Some(TaskState::Running) {
            return row;
        }
        std::thread::yield_now();
    }
}

fn frame_allocations_are_charged_to_the_task(rt: &tokio::runtime::Runtime, name: &'static str) {
    // Every channel is made here, in `main`, so that the task's own
    // allocations are exactly the vectors below.
    let (step1_tx, step1_rx) = oneshot::channel::<()>();
    let (go2_tx, go2_rx) = oneshot::channel::<()>();
    let (step2_tx, step2_rx) = oneshot::channel::<()>();
    let (go3_tx, go3_rx) = oneshot::channel::<()>();
    let fut = async move {
        let a = async {
            let a = vec![1u8; 700];
            step1_tx.send(()).unwrap();
            a
        }
        .traced("load")
        .await;
        let _ = go2_rx.await;
        async {
            async {
                let b = vec![2u8; 300];
                let mut c: Vec<u8> = Vec::with_capacity(10);
                // A realloc: a free of 10 bytes and an allocation of 100.
                c.reserve_exact(100);
                assert_eq!(c.capacity(), 100);
                drop(a);
                step2_tx.send(()).unwrap();
                let _ = go3_rx.await;
                black_box((b, c));
            }
            .traced("parse")
            .await;
        }
        .traced("handle")
        .await;
    };
    let root = std::mem::size_of_val(&fut);
    rt.block_on(async {
        let handle = turbowish_trace::spawn(name, fut);
        step1_rx.await.unwrap();
        assert_eq!(
            without_peak(memory(name)),
            counts(root + 700, 2, root + 700, 2),
            "after step 1"
        );
        assert_eq!(parked(name).polls, 1);
        go2_tx.send(()).unwrap();
        step2_rx.await.unwrap();
        assert_eq!(
            without_peak(memory(name)),
            counts(root + 300 + 100, 3, root + 700 + 300 + 10 + 100, 5),
            "after step 2"
        );
        let row = parked(name);
        assert_eq!(row.state, Some(TaskState::Idle));
        assert_eq!(row.polls, 2);
        go3_tx.send(()).unwrap();
        handle.await.unwrap();
        assert!(
            find_row(name).is_none(),
            "ended holding nothing, still listed"
        );
    });
}

#[test]
fn frame_allocations_are_charged_to_the_task_current_thread() {
    let _serial = serial();
    frame_allocations_are_charged_to_the_task(&current_thread(), "attr-frames-ct");
}

#[test]
fn frame_allocations_are_charged_to_the_task_multi_thread() {
    let _serial = serial();
    frame_allocations_are_charged_to_the_task(&multi_thread(), "attr-frames-mt");
}

#[test]
fn nested_spawn_charges_the_child() {
    let _serial = serial();
    let rt = multi_thread();
    let (spawned_tx, spawned_rx) = oneshot::channel::<(usize, u64)>();
    let (go_tx, go_rx) = oneshot::channel::<()>();
    let (child_held_tx, child_held_rx) = oneshot::channel::<()>();
    let (release_child_tx, release_child_rx) = oneshot::channel::<()>();
    let (release_parent_tx, release_parent_rx) = oneshot::channel::<()>();
    rt.block_on(async {
        let parent = turbowish_trace::spawn("attr-parent", async move {
            let parent_bytes = vec![1u8; 3000];
            let child_fut = async move {
                let _ = go_rx.await;
                let child_bytes = vec![2u8; 5000];
                child_held_tx.send(()).unwrap();
                let _ = release_child_rx.await;
                black_box(child_bytes);
            };
            let child_root = std::mem::size_of_val(&child_fut);
            let child = turbowish_trace::spawn("attr-child", child_fut);
            spawned_tx.send((child_root, tokio_id(child.id()))).unwrap();
            let _ = release_parent_rx.await;
            child.await.unwrap();
            black_box(parent_bytes);
        });
        let (child_root, child_tokio_id) = spawned_rx.await.unwrap();

        // The child's root cell is the child's, though the parent made it.
        let child = find_row("attr-child").expect("child is listed");
        assert_eq!(child.tokio_id, Some(child_tokio_id));
        assert_eq!(child.future_size, Some(child_root));
        assert_eq!(
            without_peak(child.memory),
            counts(child_root, 1, child_root, 1),
            "child before it allocates"
        );
        let parent_before = memory("attr-parent");
        assert!(parent_before.live_bytes >= 3000, "{parent_before:?}");

        go_tx.send(()).unwrap();
        child_held_rx.await.unwrap();
        assert_eq!(
            without_peak(memory("attr-child")),
            counts(child_root + 5000, 2, child_root + 5000, 2),
            "child holding its bytes"
        );
        assert_eq!(
            without_peak(memory("attr-parent")),
            without_peak(parent_before),
            "the parent's counters moved while only the child allocated"
        );

        release_child_tx.send(()).unwrap();
        release_parent_tx.send(()).unwrap();
        parent.await.unwrap();
        assert!(find_row("attr-child").is_none());
    });
}

#[test]
fn spawn_blocking_is_charged_to_the_blocking_task() {
    let _serial = serial();
    let rt = current_thread();
    // A `Barrier` (a mutex and a condvar) makes the closure wait without
    // allocating, so that `main` can read the rows before it allocates.
    let barrier = Arc::new(Barrier::new(2));
    let closure_barrier = barrier.clone();
    let (id_tx, id_rx) = oneshot::channel::<u64>();
    let (vec_tx, vec_rx) = oneshot::channel::<Vec<u8>>();
    let (release_tx, release_rx) = oneshot::channel::<()>();
    rt.block_on(async {
        let parent = turbowish_trace::spawn("attr-blocking-parent", async move {
            let blocking = tokio::task::spawn_blocking(move || {
                closure_barrier.wait();
                vec![4u8; 6000]
            });
            id_tx.send(tokio_id(blocking.id())).unwrap();
            let bytes = blocking.await.unwrap();
            vec_tx.send(bytes).unwrap();
            let _ = release_rx.await;
        });
        let blocking_id = id_rx.await.unwrap();
        let parent_before = memory("attr-blocking-parent");
        barrier.wait();
        let bytes = vec_rx.await.unwrap();
        assert_eq!(bytes.len(), 6000);

        // The closure runs on a blocking-pool thread, outside the traced
        // task's poll, where `tokio::task::try_id()` names the blocking task
        // itself: its bytes are charged to that task's own `Tokio` row, not
        // to the traced task that spawned it (nor to `untracked`).
        let rows = tasks();
        let blocking_row = rows
            .iter()
            .find(|t| t.owner == Owner::TokioTask(blocking_id))
            .unwrap_or_else(|| panic!("no row for blocking task {blocking_id}: {rows:?}"));
        assert_eq!(blocking_row.name, format!("tokio task {blocking_id}"));
        assert_eq!(blocking_row.tokio_id, Some(blocking_id));
        assert_eq!(blocking_row.state, None);
        assert_eq!(
            without_peak(blocking_row.memory),
            counts(6000, 1, 6000, 1),
            "blocking task's row"
        );
        let parent_after = memory("attr-blocking-parent");
        assert_eq!(
            (parent_after.total_bytes, parent_after.total_blocks),
            (parent_before.total_bytes, parent_before.total_blocks),
            "the traced parent was charged for the closure's allocation"
        );

        release_tx.send(()).unwrap();
        parent.await.unwrap();
        drop(bytes);
        let blocking_live = tasks()
            .iter()
            .find(|t| t.owner == Owner::TokioTask(blocking_id))
            .map_or(0, |t| t.memory.live_bytes);
        assert_eq!(blocking_live, 0);
    });
}

#[test]
fn registry_bookkeeping_is_not_charged_to_the_spawner() {
    const CHILDREN: usize = 2000;
    let _serial = serial();
    let rt = current_thread();
    rt.block_on(async {
        turbowish_trace::spawn("attr-spawner", async {
            // All children are registered before any of them runs, so the
            // registry grows while this task is being polled.
            let children: Vec<_> = (0..CHILDREN)
                .map(|_| turbowish_trace::spawn("attr-spawned", async {}))
                .collect();
            for child in children {
                child.await.unwrap();
            }
        })
        .await
        .unwrap();
    });
    // tokio's own structures (the run queue it grew for the children) are
    // the spawner's too, and go with the runtime.
    drop(rt);
    assert!(find_row("attr-spawned").is_none());
    let row = find_row("attr-spawner");
    if let Some(row) = &row {
        assert_eq!(row.state, Some(TaskState::Completed));
    }
    let held = row.map(|r| r.memory);
    assert!(
        held.is_none_or(|m| m.live_bytes == 0),
        "a finished spawner whose children and runtime are gone still holds \
         bytes (TurboWish's task registry grew during its poll): {held:?}"
    );
}
