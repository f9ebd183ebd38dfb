//! The task registry and the `tasks()` report, row by row, with exact counts.
//!
//! * `pending_task`: a spawned task waiting on a channel is `Idle` after one
//!   poll, under its name, its spawn location (this file, the line of the
//!   `spawn` call), its tokio id and its future's size; it holds exactly its
//!   root cell. Once it completes holding nothing, its entry leaves the
//!   registry.
//! * `completed_task_holding_bytes`: a task that sends a `Vec` to `main` and
//!   returns `()` is `Completed` and keeps its entry (and exactly the `Vec`'s
//!   bytes) while `main` holds the `Vec`.
//! * `completed_task_holding_nothing`: a task that frees everything it
//!   allocated disappears from the registry and from `tasks()` on completion.
//! * `panicked_task`: a task that panics is `Panicked` and is charged exactly
//!   the bytes it left live; once they are freed its entry goes at the next
//!   prune of the registry (forced here by finishing 1024 tasks that end
//!   holding bytes).
//! * `aborted_task`: `JoinHandle::abort` on a pending task that sent bytes
//!   away leaves it `Aborted` and charged exactly those bytes; aborting one
//!   that holds nothing removes its entry.
//! * `rows_add_up_to_the_allocator_total`: at a quiescent moment the live
//!   bytes of all `tasks()` rows add up to `stats().total.live_bytes`.
//! * `registry_stays_bounded_over_a_million_tasks`: 1,000,000 tasks spawned
//!   through `turbowish_trace::spawn`, 10,000 at a time, each allocating and
//!   freeing a small `Vec`, leave the registry and (after
//!   `sweep_idle_records()`) the allocator's record table as they found them,
//!   no task lands in the `overflow` bucket, and `tasks()` lists no rows for
//!   the ended tasks. The run time is printed (`--nocapture`).
//!
//! Every test uses its own current-thread runtime; they compare process-wide
//! counters (`registry_len()`, `records_in_use`), so they are serialised.

use std::hint::black_box;
use std::sync::{Mutex, MutexGuard};
use std::time::Instant;

use tokio::sync::oneshot;
use turbowish_alloc::{stats, sweep_idle_records, Owner};
use turbowish_trace::task::{registry_len, tasks, TaskInfo, TaskState};

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

fn tokio_id(id: tokio::task::Id) -> u64 {
    id.to_string().parse().expect("tokio task id is a u64")
}

/// The one `tasks()` row named `name`, if any.
fn find_row(name: &str) -> Option<TaskInfo> {
    let mut rows: Vec<TaskInfo> = tasks().into_iter().filter(|t| t.name == name).collect();
    assert!(rows.len() <= 1, "two rows named {name:?}: {rows:?}");
    rows.pop()
}

fn traced_id(row: &TaskInfo) -> u64 {
    match row.owner {
        Owner::Task(id) => id,
        other => panic!("row {:?} is {other:?}, not a traced task", row.name),
    }
}

/// Whether any `tasks()` row belongs to TurboWish task `id`.
fn has_row(id: u64) -> bool {
    tasks().iter().any(|t| t.owner == Owner::Task(id))
}

#[test]
fn pending_task() {
    let _serial = serial();
    current_thread().block_on(async {
        let (tx, rx) = oneshot::channel::<()>();
        let fut = async move {
            let _ = rx.await;
        };
        let size = std::mem::size_of_val(&fut);
        let before = registry_len();

        let line = line!() + 1;
        let handle = turbowish_trace::spawn("tasks-pending", fut);
        assert_eq!(registry_len(), before + 1);
        let row_before_poll = find_row("tasks-pending").expect("registered at spawn");
        assert_eq!(row_before_poll.state, Some(TaskState::Idle));
        assert_eq!(row_before_poll.polls, 0);

        // One turn of the scheduler polls the task once; it then waits on `rx`.
        tokio::task::yield_now().await;
        let row = find_row("tasks-pending").expect("pending task is listed");
        let id = traced_id(&row);
        let location = row.location.expect("spawn location");
        assert_eq!(location.file(), file!());
        assert_eq!(location.line(), line);
        assert_eq!(row.state, Some(TaskState::Idle));
        assert_eq!(row.polls, 1);
        assert_eq!(row.tokio_id, Some(tokio_id(handle.id())));
        assert_eq!(row.future_size, Some(size));
        assert!(row.root_address.is_some());
        assert!(row.created_at.is_some());
        assert!(!row.large_future());
        // The task allocated nothing itself: it holds exactly its root cell.
        assert_eq!(row.memory.live_bytes, size as u64, "{row:?}");
        assert_eq!(row.memory.live_blocks, 1, "{row:?}");
        assert_eq!(row.memory.total_blocks, 1, "{row:?}");

        tx.send(()).unwrap();
        handle.await.unwrap();
        assert_eq!(registry_len(), before);
        assert!(find_row("tasks-pending").is_none());
        assert!(!has_row(id));
    });
}

#[test]
fn completed_task_holding_bytes() {
    let _serial = serial();
    current_thread().block_on(async {
        let (tx, rx) = oneshot::channel::<Vec<u8>>();
        let before = registry_len();
        let line = line!() + 1;
        let handle = turbowish_trace::spawn("tasks-completed-holding", async move {
            tx.send(vec![7u8; 1000]).unwrap();
        });
        handle.await.unwrap();
        let kept = rx.await.unwrap();

        // Its `Vec` is live in `main`, so the registry keeps the entry.
        assert_eq!(registry_len(), before + 1);
        let row = find_row("tasks-completed-holding").expect("kept while holding bytes");
        assert_eq!(row.state, Some(TaskState::Completed));
        assert_eq!(row.polls, 1);
        assert_eq!(row.location.unwrap().file(), file!());
        assert_eq!(row.location.unwrap().line(), line);
        // The root cell was freed on completion; only the `Vec` is left.
        assert_eq!(row.memory.live_bytes, 1000, "{row:?}");
        assert_eq!(row.memory.live_blocks, 1, "{row:?}");
        assert_eq!(row.memory.total_blocks, 2, "{row:?}");

        // `main` frees the task's bytes: they are charged back to the task.
        drop(kept);
        if let Some(row) = find_row("tasks-completed-holding") {
            assert_eq!(row.state, Some(TaskState::Completed));
            assert_eq!(row.memory.live_bytes, 0, "{row:?}");
            assert_eq!(row.memory.live_blocks, 0, "{row:?}");
        }
    });
}

#[test]
fn completed_task_holding_nothing() {
    let _serial = serial();
    current_thread().block_on(async {
        let (go_tx, go_rx) = oneshot::channel::<()>();
        let before = registry_len();
        let handle = turbowish_trace::spawn("tasks-completed-empty", async move {
            let scratch = vec![1u8; 4000];
            black_box(&scratch);
            let _ = go_rx.await;
            let more = vec![2u8; 300];
            black_box(&more);
            scratch.len() + more.len()
        });
        tokio::task::yield_now().await;
        let row = find_row("tasks-completed-empty").expect("listed while running");
        let id = traced_id(&row);
        assert_eq!(row.state, Some(TaskState::Idle));
        assert_eq!(row.polls, 1);
        assert_eq!(registry_len(), before + 1);

        go_tx.send(()).unwrap();
        assert_eq!(handle.await.unwrap(), 4300);
        // Nothing of it is live any more: its entry is gone at once.
        assert_eq!(registry_len(), before);
        assert!(find_row("tasks-completed-empty").is_none());
        let leftover: Vec<TaskInfo> = tasks()
            .into_iter()
            .filter(|t| t.owner == Owner::Task(id))
            .collect();
        // Its record is not recycled when the task's tag is dropped (this
        // thread's counter batch still points at it), and `stats()` lists
        // every unrecycled record that ever counted a block.
        assert!(
            leftover.is_empty(),
            "a task that ended holding nothing still has rows: {leftover:?}"
        );
    });
}

#[test]
fn panicked_task() {
    let _serial = serial();
    current_thread().block_on(async {
        // A task that sends bytes away, then panics.
        let (tx, rx) = oneshot::channel::<Vec<u8>>();
        let before = registry_len();
        let line = line!() + 1;
        let holding = turbowish_trace::spawn("tasks-panicked-holding", async move {
            tx.send(vec![3u8; 1500]).unwrap();
            // `resume_unwind` skips the panic hook (whose output the test
            // harness captures in a buffer that the hook would grow, charging
            // the growth to this task) and its payload `Box<()>` allocates
            // nothing, so the task's bytes are exactly the `Vec`.
            std::panic::resume_unwind(Box::new(()));
        });
        let err = holding.await.unwrap_err();
        assert!(err.is_panic());
        drop(err);
        let kept = rx.await.unwrap();
        assert_eq!(registry_len(), before + 1);
        let row = find_row("tasks-panicked-holding").expect("kept while holding bytes");
        assert_eq!(row.state, Some(TaskState::Panicked));
        assert_eq!(row.polls, 1);
        assert_eq!(row.location.unwrap().file(), file!());
        assert_eq!(row.location.unwrap().line(), line);
        assert_eq!(row.memory.live_bytes, 1500, "{row:?}");
        assert_eq!(row.memory.live_blocks, 1, "{row:?}");
        drop(kept);
        let holding_id = traced_id(&row);

        // A task that panics with a message and keeps nothing but the panic
        // payload. The hook is silenced so that it writes nothing into the
        // harness's capture buffer, which would grow inside the task's poll
        // and be charged to it (122 bytes here); the tests of this file are
        // serialised, so no other test panics meanwhile.
        let hook = std::panic::take_hook();
        std::panic::set_hook(Box::new(|_| {}));
        let empty = turbowish_trace::spawn("tasks-panicked-empty", async move {
            let scratch = vec![0u8; 64];
            black_box(&scratch);
            panic!("tasks-panicked-empty panics on purpose");
        });
        let err = empty.await.unwrap_err();
        std::panic::set_hook(hook);
        assert!(err.is_panic());
        // The payload, a `Box<&'static str>` made inside the task's poll, is
        // the task's while the `JoinError` holds it.
        let row = find_row("tasks-panicked-empty").expect("kept while its payload is live");
        assert_eq!(row.state, Some(TaskState::Panicked));
        assert_eq!(row.polls, 1);
        assert_eq!(
            row.memory.live_bytes,
            std::mem::size_of::<&'static str>() as u64,
            "{row:?}"
        );
        assert_eq!(row.memory.live_blocks, 1, "{row:?}");
        drop(err);
        // When the `Traced` was dropped (during the unwind) the payload and
        // the unwinder's exception object were live and charged to the task,
        // so the entry stays, holding nothing, until the registry's next prune.
        let empty_row = find_row("tasks-panicked-empty");
        if let Some(row) = &empty_row {
            assert_eq!(row.state, Some(TaskState::Panicked));
            assert_eq!(row.memory.live_blocks, 0, "{row:?}");
            assert_eq!(row.memory.live_bytes, 0, "{row:?}");
        }
        let empty_id = empty_row.as_ref().map(traced_id);

        // A prune runs at least once while 1024 tasks finish holding bytes
        // (each returns a `Vec`, live in its `JoinHandle` when the task ends).
        for i in 0..1024 {
            let v = turbowish_trace::spawn("tasks-prune", async move { vec![i as u8; 8] })
                .await
                .unwrap();
            black_box(v);
        }
        assert!(find_row("tasks-panicked-holding").is_none());
        assert!(!has_row(holding_id));
        assert!(find_row("tasks-panicked-empty").is_none());
        if let Some(id) = empty_id {
            assert!(!has_row(id));
        }
        // What is left of the 1024 are entries that finished after the last
        // prune; they hold nothing any more.
        for t in tasks().iter().filter(|t| t.name == "tasks-prune") {
            assert_eq!(t.state, Some(TaskState::Completed));
            assert_eq!(t.memory.live_bytes, 0, "{t:?}");
        }
    });
}

#[test]
fn aborted_task() {
    let _serial = serial();
    current_thread().block_on(async {
        // Holding bytes: it sent a `Vec` to `main`, then waits forever.
        let (tx, rx) = oneshot::channel::<Vec<u8>>();
        let (_never_tx, never_rx) = oneshot::channel::<()>();
        let before = registry_len();
        let holding = turbowish_trace::spawn("tasks-aborted-holding", async move {
            tx.send(vec![5u8; 2000]).unwrap();
            let _ = never_rx.await;
        });
        let kept = rx.await.unwrap();
        let row = find_row("tasks-aborted-holding").expect("pending task is listed");
        assert_eq!(row.state, Some(TaskState::Idle));
        assert_eq!(row.polls, 1);
        holding.abort();
        assert!(holding.await.unwrap_err().is_cancelled());
        assert_eq!(registry_len(), before + 1);
        let row = find_row("tasks-aborted-holding").expect("kept while holding bytes");
        assert_eq!(row.state, Some(TaskState::Aborted));
        assert_eq!(row.polls, 1);
        assert_eq!(row.memory.live_bytes, 2000, "{row:?}");
        assert_eq!(row.memory.live_blocks, 1, "{row:?}");
        drop(kept);

        // Holding nothing but its root cell, which the abort frees.
        let (_never_tx, never_rx) = oneshot::channel::<()>();
        let before = registry_len();
        let empty = turbowish_trace::spawn("tasks-aborted-empty", async move {
            let _ = never_rx.await;
        });
        tokio::task::yield_now().await;
        let row = find_row("tasks-aborted-empty").expect("pending task is listed");
        let id = traced_id(&row);
        assert_eq!(row.state, Some(TaskState::Idle));
        assert_eq!(row.polls, 1);
        assert_eq!(row.memory.live_blocks, 1, "{row:?}");
        empty.abort();
        assert!(empty.await.unwrap_err().is_cancelled());
        assert_eq!(registry_len(), before);
        assert!(find_row("tasks-aborted-empty").is_none());
        assert!(!has_row(id));
    });
}

#[test]
fn rows_add_up_to_the_allocator_total() {
    let _serial = serial();
    let rt = current_thread();
    // Leave a mix of rows behind: a pending traced task holding bytes, a
    // completed one whose bytes `main` keeps, and a plain tokio task.
    let (_release, release_rx) = oneshot::channel::<()>();
    let (_release_plain, release_plain_rx) = oneshot::channel::<()>();
    let kept = rt.block_on(async {
        let (tx, rx) = oneshot::channel::<Vec<u8>>();
        let pending = turbowish_trace::spawn("tasks-sum-pending", async move {
            let held = vec![1u8; 4096];
            let _ = release_rx.await;
            black_box(held);
        });
        let plain = tokio::spawn(async move {
            let held = vec![2u8; 3000];
            let _ = release_plain_rx.await;
            black_box(held);
        });
        turbowish_trace::spawn("tasks-sum-completed", async move {
            tx.send(vec![3u8; 1000]).unwrap();
        })
        .await
        .unwrap();
        let kept = rx.await.unwrap();
        tokio::task::yield_now().await;
        // The handles are dropped; the tasks stay pending.
        drop((pending, plain));
        kept
    });

    // Only this thread runs now; the runtime is idle. Other threads of the
    // harness (libtest's main thread) may still allocate, so a `stats()`
    // before and after is used to see that nothing moved in between.
    let task_stats = std::mem::size_of::<turbowish_alloc::TaskStats>() as u64;
    let mut checked = false;
    for _attempt in 0..10 {
        let before = stats();
        // `tasks()` starts with a `stats()` of its own: everything live now
        // plus `before`'s row vector (charged to the internal bucket). Its
        // temporaries are the same size as `before`'s.
        let rows = tasks();
        let sum = rows
            .iter()
            .fold(0u64, |sum, t| sum.wrapping_add(t.memory.live_bytes));
        let ours = |name: &str| {
            rows.iter()
                .find(|t| t.name == name)
                .map(|t| (t.state, t.memory.live_bytes))
        };
        assert!(matches!(ours("tasks-sum-pending"), Some((Some(TaskState::Idle), b)) if b > 4096));
        assert_eq!(
            ours("tasks-sum-completed"),
            Some((Some(TaskState::Completed), 1000))
        );
        assert!(rows
            .iter()
            .any(|t| matches!(t.owner, Owner::TokioTask(_)) && t.memory.live_bytes >= 3000));
        drop(rows);
        let after = stats();
        let expected = before.total.live_bytes + before.tasks.capacity() as u64 * task_stats;
        if after.total.live_bytes != expected {
            // Another thread allocated or freed meanwhile: try again.
            continue;
        }
        assert_eq!(sum, expected, "sum of tasks() rows vs stats() total");
        // The same holds for stats() alone.
        let rows_sum = after
            .tasks
            .iter()
            .fold(0u64, |sum, t| sum.wrapping_add(t.counters.live_bytes));
        assert_eq!(rows_sum, after.total.live_bytes);
        checked = true;
        break;
    }
    assert!(checked, "never saw a quiescent moment in 10 attempts");
    drop(kept);
    drop(rt);
}

#[test]
fn registry_stays_bounded_over_a_million_tasks() {
    const TASKS: usize = 1_000_000;
    const BATCH: usize = 10_000;

    let _serial = serial();
    let rt = current_thread();
    sweep_idle_records();
    let registry_before = registry_len();
    let records_before = stats().records_in_use;
    let started = Instant::now();
    rt.block_on(async {
        let mut handles = Vec::with_capacity(BATCH);
        for batch in 0..TASKS / BATCH {
            for i in 0..BATCH {
                handles.push(turbowish_trace::spawn("tasks-million", async move {
                    let v = vec![i as u8; 16 + i % 64];
                    black_box(&v);
                }));
            }
            // While a batch is in flight, its tasks are in the registry.
            assert_eq!(registry_len(), registry_before + BATCH, "batch {batch}");
            for handle in handles.drain(..) {
                handle.await.unwrap();
            }
            assert_eq!(registry_len(), registry_before, "batch {batch}");
        }
    });
    drop(rt);
    let elapsed = started.elapsed();

    assert_eq!(registry_len(), registry_before);
    assert!(find_row("tasks-million").is_none());
    // Rows of ended tasks (no longer in the registry) that hold nothing.
    let empty_ended_rows = tasks()
        .iter()
        .filter(|t| t.state.is_none() && matches!(t.owner, Owner::Task(_)))
        .filter(|t| t.memory.live_blocks == 0)
        .count();
    sweep_idle_records();
    let after = stats();
    assert_eq!(after.counters(Owner::Overflow).total_blocks, 0);
    assert!(
        after.records_in_use <= records_before,
        "records in use: {} before, {} after",
        records_before,
        after.records_in_use
    );
    eprintln!("{TASKS} traced tasks in {elapsed:?}");
    // `tasks()` lists tasks and what they hold: an ended task holding
    // nothing has nothing to report.
    assert_eq!(
        empty_ended_rows, 0,
        "tasks() lists {empty_ended_rows} rows of ended tasks that hold nothing"
    );
}
