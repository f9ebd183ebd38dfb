//! Per-task attribution, checked with exact counts.
//!
//! * `tokio_tasks_are_attributed_by_try_id`: on a two-worker multi-thread
//!   tokio runtime, tasks spawned with plain `tokio::spawn` (no TurboWish
//!   wrapper) are charged through `tokio::task::try_id()`. Task A keeps
//!   exactly 1 MiB, task B exactly 3 MiB, task C 64 KiB; A sends C a 256 KiB
//!   buffer over an mpsc channel and C frees it. While all three are parked,
//!   A's row must show live 1 MiB / total 1.25 MiB (the free by C is charged
//!   back to A, the block's allocator), B's row 3 MiB, and C's row only its
//!   own 64 KiB. After the tasks finish their rows hold nothing live.
//! * `manual_executor_with_task_tags`: a hand-written executor polls futures
//!   inside `context::enter(&tag)`; every step's allocations are charged to
//!   `Owner::Task(tag.id())`, a nested `enter` charges the inner tag and
//!   restores the outer one, and a block freed by another task is charged to
//!   the task that allocated it.
//!
//! Other threads of the test harness allocate too, so only per-owner rows are
//! compared exactly; the two tests are serialised with a mutex anyway.

use std::cell::Cell;
use std::future::Future;
use std::hint::black_box;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

use tokio::sync::{mpsc, oneshot};
use turbowish_alloc::{context, stats, Counters, Owner, TaskTag};

mod common;
use common::{serial, tokio_owner};

#[global_allocator]
static A: turbowish_alloc::TurboWish = turbowish_alloc::TurboWish::system();

const KIB: usize = 1 << 10;
const MIB: usize = 1 << 20;

fn counters(
    live_bytes: usize,
    live_blocks: u64,
    total_bytes: usize,
    total_blocks: u64,
) -> Counters {
    Counters {
        live_bytes: live_bytes as u64,
        live_blocks,
        total_bytes: total_bytes as u64,
        total_blocks,
        peak_live_bytes: 0,
    }
}

/// Compares everything but the peak, which is checked separately.
fn assert_counts(who: &str, actual: Counters, expected: Counters) {
    let strip = |c: Counters| Counters {
        peak_live_bytes: 0,
        ..c
    };
    assert_eq!(strip(actual), strip(expected), "{who}: {actual:?}");
}

#[test]
fn tokio_tasks_are_attributed_by_try_id() {
    let _serial = serial();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .unwrap();

    // Every channel is created here, outside the tasks, so that the tasks'
    // own allocations are exactly the buffers below.
    let (buf_tx, mut buf_rx) = mpsc::channel::<Vec<u8>>(4);
    let (freed_tx, freed_rx) = oneshot::channel::<()>();
    let (a_ready_tx, a_ready_rx) = oneshot::channel::<()>();
    let (b_ready_tx, b_ready_rx) = oneshot::channel::<()>();
    let (a_go_tx, a_go_rx) = oneshot::channel::<()>();
    let (b_go_tx, b_go_rx) = oneshot::channel::<()>();
    let (c_go_tx, c_go_rx) = oneshot::channel::<()>();

    rt.block_on(async move {
        let task_c = tokio::spawn(async move {
            let keep = Vec::<u8>::with_capacity(64 * KIB);
            let buf = buf_rx.recv().await.expect("A sends a buffer");
            assert_eq!(buf.capacity(), 256 * KIB);
            assert!(buf.iter().all(|&b| b == 0xA5));
            drop(buf);
            freed_tx.send(()).unwrap();
            c_go_rx.await.unwrap();
            black_box(&keep);
        });
        let task_a = tokio::spawn(async move {
            let keep = Vec::<u8>::with_capacity(MIB);
            let buf = vec![0xA5_u8; 256 * KIB];
            buf_tx.send(buf).await.expect("C receives");
            freed_rx.await.unwrap();
            a_ready_tx.send(()).unwrap();
            a_go_rx.await.unwrap();
            black_box(&keep);
        });
        let task_b = tokio::spawn(async move {
            let keep = Vec::<u8>::with_capacity(3 * MIB);
            b_ready_tx.send(()).unwrap();
            b_go_rx.await.unwrap();
            black_box(&keep);
        });
        let (a, b, c) = (
            tokio_owner(task_a.id()),
            tokio_owner(task_b.id()),
            tokio_owner(task_c.id()),
        );
        assert!(a != b && b != c && a != c);

        a_ready_rx.await.unwrap();
        b_ready_rx.await.unwrap();

        // A, B and C are all parked now, holding their buffers.
        let s = stats();
        assert_counts(
            "task A",
            s.counters(a),
            counters(MIB, 1, MIB + 256 * KIB, 2),
        );
        assert_counts("task B", s.counters(b), counters(3 * MIB, 1, 3 * MIB, 1));
        assert_counts("task C", s.counters(c), counters(64 * KIB, 1, 64 * KIB, 1));
        // A's peak is at least what it held before C freed the buffer.
        assert!(s.counters(a).peak_live_bytes >= (MIB + 256 * KIB) as u64);
        assert_eq!(s.counters(b).peak_live_bytes, 3 * MIB as u64);
        assert_eq!(s.counters(c).peak_live_bytes, 64 * KIB as u64);
        assert_eq!(s.counters(Owner::Overflow).total_blocks, 0);
        assert!(s.total.live_bytes >= (4 * MIB + 64 * KIB) as u64);
        let sum: u64 = s.tasks.iter().map(|t| t.counters.live_bytes).sum();
        assert_eq!(sum, s.total.live_bytes);

        a_go_tx.send(()).unwrap();
        b_go_tx.send(()).unwrap();
        c_go_tx.send(()).unwrap();
        task_a.await.unwrap();
        task_b.await.unwrap();
        task_c.await.unwrap();

        // Finished tasks hold nothing (their rows may already be recycled,
        // in which case `counters` is all zero).
        let s = stats();
        for (who, owner) in [("A", a), ("B", b), ("C", c)] {
            let row = s.counters(owner);
            assert_eq!(
                (row.live_bytes, row.live_blocks),
                (0, 0),
                "task {who}: {row:?}"
            );
        }
    });
}

/// A future that is pending once.
struct YieldOnce(bool);

impl Future for YieldOnce {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.0 {
            Poll::Ready(())
        } else {
            self.0 = true;
            cx.waker().wake_by_ref();
            Poll::Pending
        }
    }
}

fn yield_once() -> YieldOnce {
    YieldOnce(false)
}

/// One task of the hand-written executor: its tag and its future.
struct ManualTask {
    tag: TaskTag,
    future: Pin<Box<dyn Future<Output = ()>>>,
}

impl ManualTask {
    fn new(tag: TaskTag, future: impl Future<Output = ()> + 'static) -> ManualTask {
        ManualTask {
            tag,
            future: Box::pin(future),
        }
    }

    /// Polls once inside the task's context.
    fn step(&mut self) -> Poll<()> {
        let mut cx = Context::from_waker(Waker::noop());
        let _entered = context::enter(&self.tag);
        assert_eq!(context::current(), Some(self.tag.tag()));
        self.future.as_mut().poll(&mut cx)
    }
}

#[test]
fn manual_executor_with_task_tags() {
    let _serial = serial();
    assert_eq!(context::current(), None);

    let tag_x = TaskTag::new();
    let tag_y = TaskTag::new();
    let tag_z = TaskTag::new();
    assert!(tag_x.id() != tag_y.id() && tag_y.id() != tag_z.id());

    // A block of X's, handed to Y to free. Created outside any task.
    let mailbox: Rc<Cell<Option<Vec<u8>>>> = Rc::new(Cell::new(None));
    // Z's block allocated inside Y's poll, kept until Y frees it.
    let z_tag_for_y = tag_z.clone();

    let mailbox_x = Rc::clone(&mailbox);
    let mut x = ManualTask::new(tag_x, async move {
        let a = vec![1u8; 10_000];
        yield_once().await;
        let b = vec![2u8; 20_000];
        yield_once().await;
        mailbox_x.set(Some(a));
        yield_once().await;
        drop(b);
    });

    let mailbox_y = Rc::clone(&mailbox);
    let mut y = ManualTask::new(tag_y, async move {
        let outer = vec![3u8; 7_000];
        let nested = {
            let _z = context::enter(&z_tag_for_y);
            assert_eq!(context::current(), Some(z_tag_for_y.tag()));
            let inner = vec![4u8; 3_000];
            {
                // Nesting deeper and leaving restores Z, not Y.
                let deeper_tag = TaskTag::new();
                let _deeper = context::enter(&deeper_tag);
                assert_eq!(context::current(), Some(deeper_tag.tag()));
            }
            assert_eq!(context::current(), Some(z_tag_for_y.tag()));
            inner
        };
        // Back in Y after the nested guard is dropped.
        let after = vec![5u8; 4_000];
        yield_once().await;
        // Free X's block (handed over by X's third step) from inside Y.
        let from_x = mailbox_y.take().expect("X has handed its block over");
        drop(from_x);
        drop(nested);
        yield_once().await;
        drop(outer);
        drop(after);
    });

    let x_id = Owner::Task(x.tag.id());
    let y_id = Owner::Task(y.tag.id());
    let z_id = Owner::Task(tag_z.id());
    let row = |owner| stats().counters(owner);

    // X step 1: 10,000 bytes.
    assert!(x.step().is_pending());
    assert_eq!(context::current(), None);
    assert_counts("X after step 1", row(x_id), counters(10_000, 1, 10_000, 1));

    // Y step 1: 7,000 + 4,000 for Y, 3,000 for Z.
    assert!(y.step().is_pending());
    assert_eq!(context::current(), None);
    assert_counts("Y after step 1", row(y_id), counters(11_000, 2, 11_000, 2));
    assert_counts(
        "Z after Y's step 1",
        row(z_id),
        counters(3_000, 1, 3_000, 1),
    );

    // X steps 2 and 3: 20,000 more, then hands its first block to Y.
    assert!(x.step().is_pending());
    assert_counts("X after step 2", row(x_id), counters(30_000, 2, 30_000, 2));
    assert!(x.step().is_pending());
    assert_counts("X after step 3", row(x_id), counters(30_000, 2, 30_000, 2));

    // Y step 2 frees X's 10,000 and Z's 3,000: charged to X and Z, not Y.
    assert!(y.step().is_pending());
    assert_counts(
        "X after Y freed its block",
        row(x_id),
        counters(20_000, 1, 30_000, 2),
    );
    assert_counts("Y after step 2", row(y_id), counters(11_000, 2, 11_000, 2));
    assert_counts(
        "Z after Y freed its block",
        row(z_id),
        counters(0, 0, 3_000, 1),
    );

    // Both finish.
    assert!(x.step().is_ready());
    assert!(y.step().is_ready());
    let s = stats();
    assert_counts("X done", s.counters(x_id), counters(0, 0, 30_000, 2));
    assert_counts("Y done", s.counters(y_id), counters(0, 0, 11_000, 2));
    assert_eq!(s.counters(x_id).peak_live_bytes, 30_000);
    assert_eq!(s.counters(y_id).peak_live_bytes, 11_000);
    assert_eq!(s.counters(z_id).peak_live_bytes, 3_000);
    assert_eq!(s.counters(Owner::Overflow).total_blocks, 0);

    // Nothing leaked into the tags' rows from outside their polls.
    let before = row(x_id);
    let outside = vec![6u8; 50_000];
    assert_eq!(row(x_id), before);
    drop(outside);
    assert_eq!(context::current(), None);
}
