//! Memory you can assert on in tests: what a block of code or a task
//! allocated, freed and left live, and assertions that read like the
//! question, whose failure names the task and shows the top allocation
//! sites of what was left live.
//!
//! The test binary must have TurboWish as its global allocator; sites come
//! from the allocator's samples, so build it with `sample_interval(1)` to
//! have every block's site (a test's heap is small):
//!
//! ```
//! use turbowish_capture::testing::measure;
//!
//! // (A doc test cannot set the global allocator; with TurboWish
//! // installed, `usage` holds real counts.)
//! let (kept, usage) = measure(|| {
//!     let scratch = vec![0u8; 4096];
//!     drop(scratch);
//!     vec![1u8; 100]
//! });
//! assert!(usage.live_bytes <= 100 || !turbowish_alloc::is_enabled());
//! # drop(kept);
//! ```
//!
//! The assertions are macros exported at the crate root (and re-exported
//! by `turbowish`): [`assert_task_live_at_most!`](crate::assert_task_live_at_most),
//! [`assert_no_live_growth!`](crate::assert_no_live_growth),
//! [`assert_retained_at_most!`](crate::assert_retained_at_most) and
//! [`assert_no_leaked_tasks!`](crate::assert_no_leaked_tasks). Each panics
//! with a message built here, at the caller's line.

use std::fmt::Write as _;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use turbowish_alloc::{context, Counters, Owner, TaskTag};
use turbowish_trace::task::{TaskInfo, TaskState};
use turbowish_trace::walk::Holder;

/// What a measured scope allocated, freed and left live. Frees count the
/// scope's own blocks wherever they were freed (a block allocated before
/// the scope and freed in it counts for whoever allocated it).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    /// Bytes allocated in the scope.
    pub allocated_bytes: u64,
    /// Blocks allocated in the scope.
    pub allocated_blocks: u64,
    /// Of those, bytes freed.
    pub freed_bytes: u64,
    /// Of those, blocks freed.
    pub freed_blocks: u64,
    /// Of those, bytes still live.
    pub live_bytes: u64,
    /// Of those, blocks still live.
    pub live_blocks: u64,
}

impl Usage {
    fn from_counters(c: Counters) -> Usage {
        Usage {
            allocated_bytes: c.total_bytes,
            allocated_blocks: c.total_blocks,
            freed_bytes: c.total_bytes.saturating_sub(c.live_bytes),
            freed_blocks: c.total_blocks.saturating_sub(c.live_blocks),
            live_bytes: c.live_bytes,
            live_blocks: c.live_blocks,
        }
    }
}

/// Runs `f` on this thread with its allocations charged to a scope of
/// their own, and returns its result with what it allocated, freed and
/// left live (the result's own blocks count as live).
pub fn measure<R>(f: impl FnOnce() -> R) -> (R, Usage) {
    let tag = TaskTag::new();
    let out = {
        let _in_scope = context::enter(&tag);
        f()
    };
    (out, usage_of(&tag))
}

/// [`measure`] for a future: each of its polls is charged to the scope.
pub async fn measure_async<F: Future>(future: F) -> (F::Output, Usage) {
    let tag = TaskTag::new();
    let out = Scoped {
        tag: &tag,
        future: std::pin::pin!(future),
    }
    .await;
    (out, usage_of(&tag))
}

/// What the TurboWish task `id` allocated, freed and left live; `None` if
/// no such task is known (never spawned, or finished holding nothing).
pub fn task_usage(id: u64) -> Option<Usage> {
    task_row(id).map(|row| Usage::from_counters(row.memory))
}

/// The tasks a test spawns, for
/// [`assert_no_leaked_tasks!`](crate::assert_no_leaked_tasks): TurboWish
/// tasks spawned on this thread while the scope is entered, and the tasks
/// they spawn in turn, wherever those run (a
/// [`SpawnScope`](turbowish_trace::task::SpawnScope)); so tests running at
/// once in one process each see their own. Tasks from plain `tokio::spawn`
/// are known only by number: those numbered after the scope began count,
/// whoever spawned them.
#[derive(Debug)]
pub struct Scope {
    /// `None` for the whole process.
    spawns: Option<turbowish_trace::task::SpawnScope>,
    /// tokio tasks with a greater number were spawned after the scope
    /// began; `None` outside a runtime.
    tokio_task: Option<u64>,
}

impl Scope {
    /// Enters a scope on this thread, until it is dropped. Inside a tokio
    /// runtime it also marks tokio's task numbering (by spawning one empty
    /// task).
    pub fn enter() -> Scope {
        let tokio_task = tokio::runtime::Handle::try_current()
            .ok()
            .map(|rt| turbowish_alloc::tokio_task_number(rt.spawn(async {}).id()));
        Scope {
            spawns: Some(turbowish_trace::task::SpawnScope::enter()),
            tokio_task,
        }
    }

    /// The whole process: every task.
    pub fn process() -> Scope {
        Scope {
            spawns: None,
            tokio_task: Some(0),
        }
    }

    fn holds(&self, row: &TaskInfo) -> bool {
        match row.owner {
            Owner::Task(_) => match &self.spawns {
                None => true,
                Some(scope) => row.spawn_scope == Some(scope.id()),
            },
            Owner::TokioTask(n) => row.state.is_none() && self.tokio_task.is_some_and(|t| n > t),
            _ => false,
        }
    }
}

/// A failed assertion: the message the macro panics with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure(pub String);

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// What `assert_task_live_at_most!` checks: the task's live bytes (those
/// it allocated and are not freed) are at most `limit`.
pub fn check_task_live_at_most(task: impl AsTaskId, limit: u64) -> Result<(), Failure> {
    let id = task.task_id();
    let Some(row) = task_row(id) else {
        return Ok(());
    };
    if row.memory.live_bytes <= limit {
        return Ok(());
    }
    let mut message = format!(
        "task {:?} (#{id}) has {} live bytes in {}, over the limit of {limit}",
        row.name,
        row.memory.live_bytes,
        blocks(row.memory.live_blocks)
    );
    message.push_str(&sites_of(|s| s.owner == Owner::Task(id)));
    Err(Failure(message))
}

/// What `assert_no_live_growth!` checks, for a closure run `iterations`
/// times: live bytes after the last run are no more than after the first
/// (the first run may fill caches; growth after it is a leak).
pub fn check_no_live_growth(iterations: usize, mut body: impl FnMut()) -> Result<(), Failure> {
    let tag = TaskTag::new();
    let mut levels = Vec::with_capacity(iterations);
    for _ in 0..iterations.max(2) {
        {
            let _in_scope = context::enter(&tag);
            body();
        }
        levels.push(tag.counters().live_bytes);
    }
    growth_failure(&tag, &levels)
}

/// [`check_no_live_growth`] for an async body: `body` makes each
/// iteration's future.
pub async fn check_no_live_growth_async<F: Future>(
    iterations: usize,
    mut body: impl FnMut() -> F,
) -> Result<(), Failure> {
    let tag = TaskTag::new();
    let mut levels = Vec::with_capacity(iterations);
    for _ in 0..iterations.max(2) {
        Scoped {
            tag: &tag,
            future: std::pin::pin!(body()),
        }
        .await;
        levels.push(tag.counters().live_bytes);
    }
    growth_failure(&tag, &levels)
}

/// What `assert_retained_at_most!` checks: the bytes reachable from the
/// task's state alone (found by the heap walk) are at most `limit`. Fails
/// when the allocator does not run in heap-walk mode.
pub fn check_retained_at_most(task: impl AsTaskId, limit: u64) -> Result<(), Failure> {
    let id = task.task_id();
    if !turbowish_alloc::heap_walk_enabled() {
        return Err(Failure(
            "assert_retained_at_most! needs the heap walk: build the test's allocator \
             with TurboWish::system().heap_walk()"
                .to_owned(),
        ));
    }
    let samples = turbowish_alloc::samples();
    let starts: Vec<usize> = samples.iter().map(|s| s.address).collect();
    // One heap view at a time: another test (or a snapshot) may hold it.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let report = loop {
        if let Some(report) = turbowish_trace::walk::walk_locating(&starts) {
            break report;
        }
        if std::time::Instant::now() > deadline {
            return Err(Failure(
                "assert_retained_at_most!: the heap view stayed busy for 30 s".to_owned(),
            ));
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    };
    let Some(task) = report.tasks.iter().find(|t| t.id == id) else {
        return Ok(());
    };
    if task.retained.bytes <= limit {
        return Ok(());
    }
    let held: std::collections::HashSet<usize> = report
        .located
        .iter()
        .filter(|b| matches!(&b.holder, Some(Holder::Task { id: h, .. }) if *h == id))
        .map(|b| b.start)
        .collect();
    let mut message = format!(
        "task {:?} (#{id}) retains {} bytes in {}, over the limit of {limit}",
        task.name,
        task.retained.bytes,
        blocks(task.retained.blocks)
    );
    message.push_str(&sites_of(|s| held.contains(&s.address)));
    Err(Failure(message))
}

/// What `assert_no_leaked_tasks!` checks: every TurboWish task of the
/// scope has finished and holds no live bytes it allocated, and so does
/// every other tokio task numbered after the scope began (those are known
/// only by their memory: one that holds nothing is not seen, running or
/// not).
pub fn check_no_leaked_tasks(scope: &Scope) -> Result<(), Failure> {
    let current = turbowish_trace::task::current_task().map(|(id, _)| id);
    let mut leaks = Vec::new();
    let mut owners = Vec::new();
    for row in turbowish_trace::task::tasks() {
        if !scope.holds(&row) {
            continue;
        }
        let leak = match (row.owner, row.state) {
            (Owner::Task(id), Some(state)) if Some(id) != current => {
                if !state.is_done() {
                    Some(format!(
                        "task {:?} (#{id}) is still {}, with {} live bytes",
                        row.name,
                        state_word(state),
                        row.memory.live_bytes
                    ))
                } else if row.memory.live_blocks > 0 {
                    Some(format!(
                        "task {:?} (#{id}) has {} but {} bytes it allocated are still live",
                        row.name,
                        state_word(state),
                        row.memory.live_bytes
                    ))
                } else {
                    None
                }
            }
            (Owner::TokioTask(n), None) if row.memory.live_blocks > 0 => Some(format!(
                "tokio task {n} has {} live bytes",
                row.memory.live_bytes
            )),
            _ => None,
        };
        if let Some(leak) = leak {
            leaks.push(leak);
            owners.push(row.owner);
        }
    }
    if leaks.is_empty() {
        return Ok(());
    }
    let mut message = match leaks.len() {
        1 => "1 task spawned in the scope is not gone:".to_owned(),
        n => format!("{n} tasks spawned in the scope are not gone:"),
    };
    for leak in &leaks {
        let _ = write!(message, "\n  {leak}");
    }
    message.push_str(&sites_of(|s| owners.contains(&s.owner)));
    Err(Failure(message))
}

/// Anything that names a TurboWish task: a `JoinHandle` from
/// `turbowish::trace::spawn`, or a task id.
pub trait AsTaskId {
    /// The task's TurboWish id.
    fn task_id(&self) -> u64;
}

impl AsTaskId for u64 {
    fn task_id(&self) -> u64 {
        *self
    }
}

impl<T> AsTaskId for turbowish_trace::task::JoinHandle<T> {
    fn task_id(&self) -> u64 {
        turbowish_trace::task::JoinHandle::task_id(self)
    }
}

impl<T: AsTaskId + ?Sized> AsTaskId for &T {
    fn task_id(&self) -> u64 {
        (**self).task_id()
    }
}

/// How many sites a failure message shows.
const TOP_SITES: usize = 3;

/// Polls `future` with its allocations charged to `tag`.
struct Scoped<'a, F> {
    tag: &'a TaskTag,
    future: Pin<&'a mut F>,
}

impl<F: Future> Future for Scoped<'_, F> {
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let _in_scope = context::enter(self.tag);
        self.future.as_mut().poll(cx)
    }
}

fn usage_of(tag: &TaskTag) -> Usage {
    Usage::from_counters(tag.counters())
}

fn task_row(id: u64) -> Option<TaskInfo> {
    turbowish_trace::task::tasks()
        .into_iter()
        .find(|row| row.owner == Owner::Task(id))
}

fn growth_failure(tag: &TaskTag, levels: &[u64]) -> Result<(), Failure> {
    let (first, last) = (levels[0], levels[levels.len() - 1]);
    if last <= first {
        return Ok(());
    }
    let mut message = format!(
        "live bytes grew by {} over {} iterations after the first ({first} bytes live after \
         iteration 1, {last} after iteration {})",
        last - first,
        levels.len() - 1,
        levels.len()
    );
    let id = tag.id();
    message.push_str(&sites_of(|s| s.owner == Owner::Task(id)));
    Err(Failure(message))
}

fn blocks(n: u64) -> String {
    match n {
        1 => "1 block".to_owned(),
        n => format!("{n} blocks"),
    }
}

fn state_word(state: TaskState) -> &'static str {
    match state {
        TaskState::Idle => "idle",
        TaskState::Running => "running",
        TaskState::Completed => "completed",
        TaskState::Aborted => "aborted",
        TaskState::Panicked => "panicked",
    }
}

/// The top sites of the live samples `keep` selects, as the tail of a
/// failure message.
fn sites_of(keep: impl Fn(&turbowish_alloc::Sample) -> bool) -> String {
    let _internal = turbowish_alloc::internal();
    let samples: Vec<_> = turbowish_alloc::samples()
        .into_iter()
        .filter(keep)
        .collect();
    if samples.is_empty() {
        return if turbowish_alloc::sample_interval() == 0 {
            "; no sites: sampling is off (build the test's allocator with sample_interval(1))"
                .to_owned()
        } else {
            "; no sampled sites (sample_interval(1) on the test's allocator samples every block)"
                .to_owned()
        };
    }
    let sites = crate::symbolize::sites(
        &samples,
        |o| crate::convert::owner(o, |_| None),
        crate::symbolize::resolve,
    );
    // Paths under the working directory (a test's is its package root)
    // read as the user wrote them.
    let cwd = std::env::current_dir().ok();
    let shorten = |file: &str| -> String {
        cwd.as_ref()
            .and_then(|d| std::path::Path::new(file).strip_prefix(d).ok())
            .map_or_else(|| file.to_owned(), |p| p.display().to_string())
    };
    let mut out = String::from("; top sites:");
    for site in sites.sites.iter().take(TOP_SITES) {
        let place = site
            .stack
            .first()
            .and_then(|&l| sites.locations.get(l as usize))
            .and_then(|l| l.lines.first())
            .map_or_else(
                || "an unknown site".to_owned(),
                |line| match (&line.file, line.line) {
                    (Some(file), Some(n)) => {
                        format!("{} ({}:{n})", line.function, shorten(file))
                    }
                    _ => line.function.clone(),
                },
            );
        let _ = write!(
            out,
            "\n  {} bytes in {} at {place}",
            site.live_bytes,
            blocks(site.live_blocks)
        );
    }
    out
}

/// Panics unless the task's live bytes are at most the limit; the message
/// names the task and its top allocation sites.
///
/// `task` is a `turbowish::trace::task::JoinHandle` (or a reference to
/// one), or a TurboWish task id.
///
/// ```no_run
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let task = turbowish_trace::spawn("handler", async { tokio::task::yield_now().await });
/// turbowish_capture::assert_task_live_at_most!(&task, 64 * 1024);
/// # }
/// ```
#[macro_export]
macro_rules! assert_task_live_at_most {
    ($task:expr, $limit:expr $(,)?) => {
        if let ::core::result::Result::Err(failure) =
            $crate::testing::check_task_live_at_most(&$task, $limit)
        {
            ::core::panic!("{}", failure);
        }
    };
}

/// Panics if live bytes grow across `N` runs of the body: after the first
/// run (which may fill caches) they must not rise. The body is a closure,
/// or `async { ... }` inside an async test (each run awaits a fresh copy).
///
/// ```no_run
/// let mut cache = Vec::new();
/// turbowish_capture::assert_no_live_growth!(10, || {
///     cache.clear();
///     cache.extend_from_slice(b"reused");
/// });
/// ```
#[macro_export]
macro_rules! assert_no_live_growth {
    ($iterations:expr, async $body:block $(,)?) => {
        if let ::core::result::Result::Err(failure) =
            $crate::testing::check_no_live_growth_async($iterations, || async $body).await
        {
            ::core::panic!("{}", failure);
        }
    };
    ($iterations:expr, $body:expr $(,)?) => {
        if let ::core::result::Result::Err(failure) =
            $crate::testing::check_no_live_growth($iterations, $body)
        {
            ::core::panic!("{}", failure);
        }
    };
}

/// Panics unless the bytes the task retains (reachable from its state
/// alone, found by the heap walk) are at most the limit. Needs an
/// allocator in heap-walk mode.
///
/// ```no_run
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let task = turbowish_trace::spawn("cache", async { tokio::task::yield_now().await });
/// turbowish_capture::assert_retained_at_most!(&task, 1 << 20);
/// # }
/// ```
#[macro_export]
macro_rules! assert_retained_at_most {
    ($task:expr, $limit:expr $(,)?) => {
        if let ::core::result::Result::Err(failure) =
            $crate::testing::check_retained_at_most(&$task, $limit)
        {
            ::core::panic!("{}", failure);
        }
    };
}

/// Panics unless every task spawned in the scope is gone: finished, and
/// holding no live bytes it allocated. With no argument the scope is the
/// whole process; with a [`Scope`](crate::testing::Scope), the tasks
/// spawned in it (use that when tests share a process).
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let scope = turbowish_capture::testing::Scope::enter();
/// turbowish_trace::spawn("job", async {}).await.unwrap();
/// turbowish_capture::assert_no_leaked_tasks!(scope);
/// # }
/// ```
#[macro_export]
macro_rules! assert_no_leaked_tasks {
    () => {
        $crate::assert_no_leaked_tasks!($crate::testing::Scope::process())
    };
    ($scope:expr $(,)?) => {
        if let ::core::result::Result::Err(failure) =
            $crate::testing::check_no_leaked_tasks(&$scope)
        {
            ::core::panic!("{}", failure);
        }
    };
}
