//! Tasks: spawning through TurboWish (the [`Traced`] wrapper and the spawn
//! functions) and the per-task memory report of the running process
//! ([`tasks`]).

use std::borrow::Cow;
use std::future::Future;
use std::panic::Location;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::task::{Context, Poll};

use turbowish_alloc::{context, TaskTag};

use crate::clock;
use crate::frame::{FramePath, TaskScope};
use crate::registry::{self, TaskEntry};

pub use crate::registry::{
    current_task, for_each_task, registry_len, take_budget_crossings, tasks, BudgetCrossing,
    SpawnScope, TaskInfo, TaskRow, TaskState, LARGE_FUTURE_BYTES,
};
/// Who owns a row of memory: the allocator's name for it, used by the task
/// registry, the resource records and the snapshot alike.
pub use turbowish_alloc::Owner;

/// Spawns `future` on the current tokio runtime as a task named `name`,
/// like `tokio::spawn` (a [`JoinHandle`] that awaits like tokio's; panics
/// outside a runtime, as `tokio::spawn` does).
///
/// The task's allocations are charged to it, it appears in [`tasks`]
/// under its name and spawn location, and its future lives in a heap cell
/// TurboWish owns (the task's root).
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let handle = turbowish_trace::spawn("worker", async { vec![1u8; 1024].len() });
/// assert_eq!(handle.await.unwrap(), 1024);
/// # }
/// ```
#[track_caller]
pub fn spawn<F>(name: impl Into<Cow<'static, str>>, future: F) -> JoinHandle<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    let traced = Traced::new(name.into(), Location::caller(), future);
    let entry = traced.entry.clone();
    let handle = spawning(|| tokio::spawn(traced));
    JoinHandle::new(handle, &entry)
}

/// Spawns a task with options beyond a name: today, a memory budget.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let handle = turbowish_trace::task::Builder::new("cache-filler")
///     .budget(64 * 1024 * 1024)
///     .spawn(async { 7 });
/// assert_eq!(handle.await.unwrap(), 7);
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct Builder {
    name: Cow<'static, str>,
    budget: Option<u64>,
}

impl Builder {
    /// A task named `name`, without a budget.
    pub fn new(name: impl Into<Cow<'static, str>>) -> Builder {
        Builder {
            name: name.into(),
            budget: None,
        }
    }

    /// Gives the task a budget of `bytes` live bytes (allocated by it and
    /// not yet freed). When its live bytes first pass the budget, and again
    /// each time after they have dropped back under it, the crossing is
    /// reported to the budget watcher (`turbowish::capture::Budgets`,
    /// started by `install_signal_handler`), which writes a snapshot and
    /// calls your callback; see [`take_budget_crossings`]. The check runs
    /// when the task's counts are folded together, at the latest at the
    /// end of each poll: never per allocation.
    pub fn budget(mut self, bytes: u64) -> Builder {
        self.budget = Some(bytes);
        self
    }

    /// Like [`spawn`].
    #[track_caller]
    pub fn spawn<F>(self, future: F) -> JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let traced = self.traced(Location::caller(), future);
        let entry = traced.entry.clone();
        let handle = spawning(|| tokio::spawn(traced));
        JoinHandle::new(handle, &entry)
    }

    /// Like [`spawn_on`].
    #[track_caller]
    pub fn spawn_on<F>(self, future: F, handle: &tokio::runtime::Handle) -> JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let traced = self.traced(Location::caller(), future);
        let entry = traced.entry.clone();
        let join = spawning(|| handle.spawn(traced));
        JoinHandle::new(join, &entry)
    }

    /// Like [`spawn_local`].
    #[track_caller]
    pub fn spawn_local<F>(self, future: F) -> JoinHandle<F::Output>
    where
        F: Future + 'static,
        F::Output: 'static,
    {
        let traced = self.traced(Location::caller(), future);
        let entry = traced.entry.clone();
        let join = spawning(|| tokio::task::spawn_local(traced));
        JoinHandle::new(join, &entry)
    }

    fn traced<F: Future>(self, location: &'static Location<'static>, future: F) -> Traced<F> {
        Traced::new(self.name, location, future).with_budget(self.budget)
    }
}

/// An owned permission to join a task spawned through TurboWish, as
/// tokio's `JoinHandle` (which it wraps; `.await` gives the same
/// `Result<T, JoinError>`). Awaiting it is recorded: the awaiting task waits
/// for a resource `task "name"` held by the spawned task, so a task awaiting
/// one that waits for it, directly or through locks and channels, is a
/// deadlock in `chains` and `cycles`.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let handle = turbowish_trace::spawn("worker", async { 6 * 7 });
/// assert!(!handle.inner().is_finished() || handle.is_finished());
/// assert_eq!(handle.await.unwrap(), 42);
/// # }
/// ```
pub struct JoinHandle<T> {
    inner: tokio::task::JoinHandle<T>,
    id: u64,
    name: Cow<'static, str>,
    location: &'static Location<'static>,
    /// Set while an await of this handle is pending.
    joining: Option<crate::sync::Joining>,
}

impl<T> JoinHandle<T> {
    fn new(inner: tokio::task::JoinHandle<T>, entry: &TaskEntry) -> JoinHandle<T> {
        entry.set_tokio_id(&inner);
        JoinHandle {
            inner,
            id: entry.id,
            name: entry.name.clone(),
            location: entry.location,
            joining: None,
        }
    }

    /// Aborts the task, as tokio's `JoinHandle::abort`.
    pub fn abort(&self) {
        self.inner.abort();
    }

    /// Whether the task has finished, as tokio's `JoinHandle::is_finished`.
    pub fn is_finished(&self) -> bool {
        self.inner.is_finished()
    }

    /// tokio's id of the task.
    pub fn id(&self) -> tokio::task::Id {
        self.inner.id()
    }

    /// A handle that can abort the task without joining it.
    pub fn abort_handle(&self) -> tokio::task::AbortHandle {
        self.inner.abort_handle()
    }

    /// The TurboWish id of the task (its row in [`tasks`]).
    pub fn task_id(&self) -> u64 {
        self.id
    }

    /// tokio's handle inside.
    pub fn inner(&self) -> &tokio::task::JoinHandle<T> {
        &self.inner
    }

    /// tokio's handle inside, for APIs that want one (awaiting it is then
    /// not recorded).
    pub fn into_inner(self) -> tokio::task::JoinHandle<T> {
        self.inner
    }
}

impl<T> Future for JoinHandle<T> {
    type Output = Result<T, tokio::task::JoinError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        // Every field is `Unpin` (tokio's handle is).
        let this = self.get_mut();
        match Pin::new(&mut this.inner).poll(cx) {
            Poll::Ready(result) => {
                this.joining = None;
                Poll::Ready(result)
            }
            Poll::Pending => {
                if this.joining.is_none() {
                    this.joining = Some(crate::sync::Joining::start(
                        this.id,
                        this.name.clone(),
                        this.location,
                    ));
                }
                Poll::Pending
            }
        }
    }
}

impl<T> std::fmt::Debug for JoinHandle<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JoinHandle")
            .field("task", &self.id)
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

/// A handle to a task owns none of the task's state (each task is a root
/// of its own).
/// While awaited, the handle to its task's resource (see
/// [`crate::ownership::HandleKind::Join`]); the task's output is not the
/// awaiting task's until it is returned.
impl<T> crate::Trace for JoinHandle<T> {
    fn trace(&self, tracer: &mut crate::Tracer<'_>) {
        if let Some(joining) = &self.joining {
            joining.trace(tracer);
        }
    }
}

/// Like [`spawn`], on the runtime of `handle` (like `Handle::spawn`).
#[track_caller]
pub fn spawn_on<F>(
    name: impl Into<Cow<'static, str>>,
    future: F,
    handle: &tokio::runtime::Handle,
) -> JoinHandle<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    let traced = Traced::new(name.into(), Location::caller(), future);
    let entry = traced.entry.clone();
    let join = spawning(|| handle.spawn(traced));
    JoinHandle::new(join, &entry)
}

/// Like [`spawn`] for a `!Send` future, on the current `LocalSet` (like
/// `tokio::task::spawn_local`, and with its panics).
#[track_caller]
pub fn spawn_local<F>(name: impl Into<Cow<'static, str>>, future: F) -> JoinHandle<F::Output>
where
    F: Future + 'static,
    F::Output: 'static,
{
    let traced = Traced::new(name.into(), Location::caller(), future);
    let entry = traced.entry.clone();
    let join = spawning(|| tokio::task::spawn_local(traced));
    JoinHandle::new(join, &entry)
}

/// Runs a `tokio` spawn of a `Traced` task; with runtime hooks installed,
/// tells the spawn hook that this task registers itself.
fn spawning<T>(spawn: impl FnOnce() -> T) -> T {
    #[cfg(all(feature = "tokio-unstable", tokio_unstable))]
    {
        /// Clears the flag even when the spawn panics (outside a runtime).
        struct Reset;
        impl Drop for Reset {
            fn drop(&mut self) {
                let _ = crate::hooks::SPAWNING_TRACED.try_with(|s| s.set(false));
            }
        }
        crate::hooks::SPAWNING_TRACED.with(|s| s.set(true));
        let _reset = Reset;
        spawn()
    }
    #[cfg(not(all(feature = "tokio-unstable", tokio_unstable)))]
    spawn()
}

/// A task's future wrapped by TurboWish: every poll enters the task's
/// allocation context and frame scope and updates its registry entry.
///
/// [`spawn`] builds one; executors other than tokio can build one with
/// [`Traced::new`] and poll it like any future.
///
/// ```
/// use std::future::Future;
/// use std::task::{Context, Poll, Waker};
///
/// let task = turbowish_trace::task::Traced::new("job", std::panic::Location::caller(), async { 7 });
/// let mut task = std::pin::pin!(task);
/// let poll = task.as_mut().poll(&mut Context::from_waker(Waker::noop()));
/// assert_eq!(poll, Poll::Ready(7));
/// ```
pub struct Traced<F> {
    entry: Arc<TaskEntry>,
    /// The task's root cell. `None` once the future has completed (it is
    /// dropped then, inside the task's context).
    future: Option<Pin<Box<F>>>,
}

impl<F: Future> Traced<F> {
    /// Registers a task named `name`, spawned at `location`, and moves
    /// `future` into its root cell (allocated in the task's own context, so
    /// the task's state counts towards its memory).
    pub fn new(
        name: impl Into<Cow<'static, str>>,
        location: &'static Location<'static>,
        future: F,
    ) -> Traced<F> {
        let tag = TaskTag::new();
        let future = {
            let _in_task = context::enter(&tag);
            Box::pin(future)
        };
        let root = (&*future as *const F as usize, std::mem::size_of::<F>());
        let entry = registry::register(name.into(), location, tag, Some(root));
        Traced {
            entry,
            future: Some(future),
        }
    }

    /// The TurboWish id of this task (its row in [`tasks`]).
    pub fn id(&self) -> u64 {
        self.entry.id
    }

    /// Gives the task a memory budget (see [`Builder::budget`]), or with
    /// `None` takes it away.
    pub fn with_budget(self, bytes: Option<u64>) -> Traced<F> {
        self.entry.tag.set_budget(bytes);
        self.entry
            .budgeted
            .store(bytes.is_some(), Ordering::Relaxed);
        self
    }
}

impl<F> std::fmt::Debug for Traced<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Traced")
            .field("id", &self.entry.id)
            .field("name", &self.entry.name)
            .finish_non_exhaustive()
    }
}

impl<F: Future> Future for Traced<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        // `Traced` is `Unpin`: the future is pinned in its own box.
        let this = self.get_mut();
        let entry = &*this.entry;
        let Some(future) = this.future.as_mut() else {
            panic!("`Traced` task {:?} polled after completion", entry.name);
        };
        let _in_task = context::enter(&entry.tag);
        let _frames = TaskScope::enter();
        let _current = registry::CurrentTask::enter(entry);
        // One writer: `poll` has the task to itself (`&mut self`), so a
        // load and a store, not a locked add (the snapshot reads either
        // value whole).
        let polls = &entry.polls;
        polls.store(polls.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
        entry.set_state(TaskState::Running);
        let busy = BusyGuard {
            entry,
            started: clock::now(),
        };
        let poll = future.as_mut().poll(cx);
        if entry.budgeted.load(Ordering::Relaxed) {
            // While the batch is still this task's: its budget is checked
            // now, not when this thread next switches task.
            turbowish_alloc::budget::flush_thread_batch();
        }
        drop(busy);
        match poll {
            Poll::Ready(output) => {
                // Record the end, then drop the future's state now, still
                // inside the task's context. In that order: once the root
                // cell is freed its address can be reused, and a heap walk
                // must not take the new block for this task's root.
                entry.set_state(TaskState::Completed);
                entry.retire_cell();
                this.future = None;
                Poll::Ready(output)
            }
            Poll::Pending => {
                if !_frames.parked_noted() {
                    // Parked outside any frame: forget an older path.
                    registry::note_parked(FramePath::default());
                }
                entry.set_state(TaskState::Idle);
                Poll::Pending
            }
        }
    }
}

/// Adds the poll's duration to the task's busy time when dropped, and marks
/// the task panicked if the poll unwinds.
struct BusyGuard<'a> {
    entry: &'a TaskEntry,
    /// A reading of [`clock::now`].
    started: u64,
}

impl Drop for BusyGuard<'_> {
    fn drop(&mut self) {
        let ticks = clock::now().saturating_sub(self.started);
        // One writer, as for `polls` in `poll`.
        let busy = &self.entry.busy_ticks;
        busy.store(
            busy.load(Ordering::Relaxed).wrapping_add(ticks),
            Ordering::Relaxed,
        );
        if std::thread::panicking() {
            self.entry.set_state(TaskState::Panicked);
        }
    }
}

impl<F> Drop for Traced<F> {
    fn drop(&mut self) {
        let entry = &*self.entry;
        if let Some(future) = self.future.take() {
            // Dropped before completing: aborted, cancelled by runtime
            // shutdown, or unwinding from a panic in its poll.
            // The end first, as in `poll`: the cell's address is free for
            // reuse once the future is dropped.
            if entry.state() != TaskState::Panicked {
                entry.set_state(TaskState::Aborted);
            }
            entry.retire_cell();
            let _in_task = context::enter(&entry.tag);
            drop(future);
        }
        registry::finished(&self.entry);
    }
}
