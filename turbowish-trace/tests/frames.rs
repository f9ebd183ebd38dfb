//! Frame stacks: what `current_frames()` reads inside `.traced(..)` futures.
//!
//! * `nested_frames`: `a › b › c` inside three nested traced futures, in a
//!   spawned task, and the path shrinks back to the parent's after each one
//!   completes (also across awaits that return `Pending`).
//! * `join_branches_see_only_their_own_frame`: under `tokio::join!` each
//!   branch sees `parent › left` or `parent › right`, never its sibling, in
//!   every poll, while the two branches interleave.
//! * `select_loser_leaves_no_frame`: after `tokio::select!` returns (and in
//!   the winning arm's handler) only the parent's frame is on the stack.
//! * `dropped_pending_frame_leaves_nothing`: a traced future polled to
//!   `Pending` and then dropped leaves the stack as it was.
//! * `panic_inside_frame_leaves_stack_clean`: a panic in a nested traced
//!   future, caught by `catch_unwind` around a hand-written poll, and a panic
//!   in a spawned task, leave the stack clean for what runs next.
//! * `deep_nesting_is_counted`: beyond `MAX_FRAMES` frames are counted in
//!   `hidden()`, not named.
//! * `traced_without_tokio`: a `Traced::new("job", ..)` driven by a
//!   hand-written poll loop with `Waker::noop()` (no runtime) is a task: its
//!   allocations are charged to its row in `tasks()` exactly, `current_task()`
//!   names it, and its frames start a fresh path even when it is polled from
//!   inside another frame.
//!
//! Frame stacks are per thread and no test reads process-wide counters, so
//! these tests run in parallel.

use std::future::Future;
use std::hint::black_box;
use std::panic::{catch_unwind, AssertUnwindSafe, Location};
use std::pin::{pin, Pin};
use std::task::{Context, Poll, Waker};

use turbowish_trace::frame::current_frames;
use turbowish_trace::task::{current_task, tasks, TaskState, Traced};
use turbowish_trace::TracedExt;

#[global_allocator]
static A: turbowish_alloc::TurboWish = turbowish_alloc::TurboWish::system();

fn current_thread() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn names() -> Vec<&'static str> {
    current_frames().names().to_vec()
}

/// Returns `Pending` once (waking itself), then `Ready`.
#[derive(Default)]
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

/// Polls `fut` to completion on this thread with a no-op waker.
fn drive<F: Future>(fut: F) -> (F::Output, usize) {
    let mut fut = pin!(fut);
    let mut cx = Context::from_waker(Waker::noop());
    let mut polls = 0;
    loop {
        polls += 1;
        if let Poll::Ready(out) = fut.as_mut().poll(&mut cx) {
            return (out, polls);
        }
    }
}

#[test]
fn nested_frames() {
    let paths = current_thread().block_on(async {
        turbowish_trace::spawn("frames-nested", async {
            let mut paths = Vec::new();
            paths.push(names());
            async {
                paths.push(names());
                async {
                    paths.push(names());
                    async {
                        paths.push(names());
                        YieldOnce::default().await;
                        paths.push(names());
                    }
                    .traced("c")
                    .await;
                    paths.push(names());
                }
                .traced("b")
                .await;
                paths.push(names());
                YieldOnce::default().await;
                paths.push(names());
            }
            .traced("a")
            .await;
            paths.push(names());
            paths
        })
        .await
        .unwrap()
    });
    let expected: Vec<Vec<&str>> = vec![
        vec![],
        vec!["a"],
        vec!["a", "b"],
        vec!["a", "b", "c"],
        vec!["a", "b", "c"],
        vec!["a", "b"],
        vec!["a"],
        vec!["a"],
        vec![],
    ];
    assert_eq!(paths, expected);
    // Nothing is left on this thread's stack once the runtime is gone.
    assert!(current_frames().is_empty());
    assert_eq!(current_frames().to_string(), "");
}

#[test]
fn display_joins_names() {
    let (path, _) = drive(
        async {
            async { current_frames().to_string() }
                .traced("load_user")
                .await
        }
        .traced("handle_request"),
    );
    assert_eq!(path, "handle_request › load_user");
}

#[test]
fn join_branches_see_only_their_own_frame() {
    let (left, right, after) = current_thread().block_on(async {
        turbowish_trace::spawn("frames-join", async {
            async {
                let branch = |name: &'static str| {
                    async move {
                        let mut seen = Vec::new();
                        for _ in 0..3 {
                            seen.push(names());
                            // Pending: join! polls the sibling next.
                            YieldOnce::default().await;
                        }
                        seen.push(names());
                        seen
                    }
                    .traced(name)
                };
                let (left, right) = tokio::join!(branch("left"), branch("right"));
                (left, right, names())
            }
            .traced("parent")
            .await
        })
        .await
        .unwrap()
    });
    assert_eq!(left, vec![vec!["parent", "left"]; 4]);
    assert_eq!(right, vec![vec!["parent", "right"]; 4]);
    assert_eq!(after, vec!["parent"]);
}

#[test]
fn select_loser_leaves_no_frame() {
    let (in_loser, in_handler, after) = current_thread().block_on(async {
        async {
            let (tx, rx) = tokio::sync::oneshot::channel::<()>();
            let mut in_loser = Vec::new();
            let loser = async {
                in_loser.push(names());
                let _ = rx.await;
                in_loser.push(names());
            }
            .traced("loser");
            let winner = async {
                YieldOnce::default().await;
                names()
            }
            .traced("winner");
            let in_handler = tokio::select! {
                biased;
                () = loser => unreachable!("the loser never completes"),
                seen = winner => {
                    assert_eq!(seen, vec!["parent", "winner"]);
                    names()
                }
            };
            drop(tx);
            (in_loser, in_handler, names())
        }
        .traced("parent")
        .await
    });
    assert_eq!(in_loser, vec![vec!["parent", "loser"]]);
    assert_eq!(in_handler, vec!["parent"]);
    assert_eq!(after, vec!["parent"]);
    assert!(current_frames().is_empty());
}

#[test]
fn dropped_pending_frame_leaves_nothing() {
    let (inside, after) = drive(
        async {
            let mut inside = Vec::new();
            {
                let mut pending = pin!(async {
                    inside.push(names());
                    std::future::pending::<()>().await;
                }
                .traced("pending"));
                let mut cx = Context::from_waker(Waker::noop());
                assert!(pending.as_mut().poll(&mut cx).is_pending());
                // `pending` is dropped here, still pending.
            }
            (inside, names())
        }
        .traced("outer"),
    )
    .0;
    assert_eq!(inside, vec![vec!["outer", "pending"]]);
    assert_eq!(after, vec!["outer"]);
    assert!(current_frames().is_empty());

    // The same inside a runtime, with a timeout dropping the traced future.
    let after = current_thread().block_on(async {
        async {
            let never = std::future::pending::<()>().traced("never");
            let timed_out = tokio::time::timeout(std::time::Duration::from_millis(1), never).await;
            assert!(timed_out.is_err());
            names()
        }
        .traced("caller")
        .await
    });
    assert_eq!(after, vec!["caller"]);
}

#[test]
fn panic_inside_frame_leaves_stack_clean() {
    // Caught around a hand-written poll, under an outer frame that is
    // itself being polled by hand.
    let (after_catch, _) = drive(
        async {
            let panicking = async {
                async {
                    assert_eq!(names(), vec!["outer", "middle", "inner"]);
                    std::panic::resume_unwind(Box::new("inner panics on purpose"));
                }
                .traced("inner")
                .await
            }
            .traced("middle");
            let mut panicking = pin!(panicking);
            let mut cx = Context::from_waker(Waker::noop());
            let caught = catch_unwind(AssertUnwindSafe(|| panicking.as_mut().poll(&mut cx)));
            assert!(caught.is_err());
            names()
        }
        .traced("outer"),
    );
    assert_eq!(after_catch, vec!["outer"]);
    assert!(current_frames().is_empty());

    // Caught at the top, outside every frame.
    let caught = catch_unwind(|| {
        drive(
            async {
                async { std::panic::resume_unwind(Box::new("deep panic")) }
                    .traced("deep")
                    .await
            }
            .traced("top"),
        )
    });
    assert!(caught.is_err());
    assert!(current_frames().is_empty());

    // A spawned task panics inside frames; the next task on the same
    // (single) thread starts from a clean stack.
    let next = current_thread().block_on(async {
        let err = turbowish_trace::spawn("frames-panics", async {
            async { std::panic::resume_unwind(Box::new("task panics on purpose")) }
                .traced("doomed")
                .await
        })
        .await
        .unwrap_err();
        assert!(err.is_panic());
        turbowish_trace::spawn("frames-after-panic", async {
            async { names() }.traced("fresh").await
        })
        .await
        .unwrap()
    });
    assert_eq!(next, vec!["fresh"]);
    assert!(current_frames().is_empty());
}

#[test]
fn deep_nesting_is_counted() {
    type Nested = Pin<Box<dyn Future<Output = (Vec<&'static str>, usize)>>>;

    fn nest(depth: usize) -> Nested {
        if depth == 0 {
            Box::pin(async {
                let frames = current_frames();
                (frames.names().to_vec(), frames.hidden())
            })
        } else {
            Box::pin(nest(depth - 1).traced("level"))
        }
    }
    let extra = 8;
    let ((names, hidden), _) = drive(nest(turbowish_trace::frame::MAX_FRAMES + extra));
    assert_eq!(names, vec!["level"; turbowish_trace::frame::MAX_FRAMES]);
    assert_eq!(hidden, extra);
    assert!(current_frames().is_empty());
}

#[test]
fn traced_without_tokio() {
    const KEPT: usize = 1234;
    let fut = async {
        let task = current_task();
        let kept = vec![9u8; KEPT];
        let scratch = vec![0u8; 10_000];
        black_box(&scratch);
        drop(scratch);
        // `Frames` is a copy on the stack: reading it allocates nothing.
        let path = async {
            YieldOnce::default().await;
            current_frames()
        }
        .traced("step")
        .await;
        (task, path, kept)
    };
    let future_size = std::mem::size_of_val(&fut);
    let line = line!() + 1;
    let job = Traced::new("frames-job", Location::caller(), fut);
    let id = job.id();
    let mut job = pin!(job);
    let mut cx = Context::from_waker(Waker::noop());

    // First poll: pending inside "step", holding its root cell and `kept`.
    assert!(job.as_mut().poll(&mut cx).is_pending());
    let row = tasks()
        .into_iter()
        .find(|t| t.name == "frames-job")
        .expect("the job is listed");
    assert_eq!(row.owner, turbowish_trace::task::Owner::Task(id));
    assert_eq!(row.state, Some(TaskState::Idle));
    assert_eq!(row.polls, 1);
    assert_eq!(row.tokio_id, None);
    assert_eq!(row.future_size, Some(future_size));
    assert_eq!(row.location.unwrap().file(), file!());
    assert_eq!(row.location.unwrap().line(), line);
    assert_eq!(
        row.memory.live_bytes,
        (future_size + KEPT) as u64,
        "{row:?}"
    );
    assert_eq!(row.memory.live_blocks, 2, "{row:?}");
    assert_eq!(
        row.memory.total_bytes,
        (future_size + KEPT + 10_000) as u64,
        "{row:?}"
    );
    assert_eq!(row.memory.total_blocks, 3, "{row:?}");

    // Second poll, from inside another frame: the job's path starts afresh.
    let (polled, _) = drive(
        async {
            let outer = names();
            let poll = job.as_mut().poll(&mut Context::from_waker(Waker::noop()));
            (outer, poll, names())
        }
        .traced("executor"),
    );
    let (outer, poll, after) = polled;
    assert_eq!(outer, vec!["executor"]);
    assert_eq!(after, vec!["executor"]);
    let Poll::Ready((task, path, kept)) = poll else {
        panic!("the job completes on its second poll");
    };
    assert_eq!(task, Some((id, "frames-job".into())));
    assert_eq!(path.names(), ["step"]);
    assert_eq!(kept.len(), KEPT);

    // Completed; the root cell is gone, `kept` is still the job's.
    let row = tasks()
        .into_iter()
        .find(|t| t.name == "frames-job")
        .expect("the job is listed while it holds bytes");
    assert_eq!(row.state, Some(TaskState::Completed));
    assert_eq!(row.polls, 2);
    assert_eq!(row.memory.live_bytes, KEPT as u64, "{row:?}");
    assert_eq!(row.memory.live_blocks, 1, "{row:?}");
    drop(kept);
    let row = tasks()
        .into_iter()
        .find(|t| t.name == "frames-job")
        .expect("the job is listed until it is dropped");
    assert_eq!(row.memory.live_bytes, 0, "{row:?}");
    assert!(current_task().is_none());
    assert!(current_frames().is_empty());
}
