//! The task registry: every task spawned through TurboWish, with its name,
//! spawn location, state and counters, and [`tasks`], the per-task memory
//! report that joins it with the allocator's counters.

use std::borrow::Cow;
use std::cell::Cell;
use std::fmt::Write;
use std::panic::Location;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, LazyLock};
use std::time::{Duration, SystemTime};

use dashmap::DashMap;
use turbowish_alloc::{Counters, Owner, TaskTag};

use crate::frame::FramePath;

/// Futures larger than this are flagged by [`TaskInfo::large_future`]: the
/// state machine is a per-task cost that no allocation counter shows, and
/// moving it (tokio copies a future into its task cell on spawn) costs too.
pub const LARGE_FUTURE_BYTES: usize = 2048;

/// Every live task and every finished task that still has live bytes,
/// by TurboWish task id. A `DashMap`: spawns and exits on different worker
/// threads touch different shards, and nothing on the poll path touches it.
static REGISTRY: LazyLock<DashMap<u64, Arc<TaskEntry>>> = LazyLock::new(DashMap::new);

/// Finished tasks kept because they still had live bytes; `prune` looks
/// at the registry again once this many have accumulated.
static FINISHED_WITH_BYTES: AtomicUsize = AtomicUsize::new(0);
const PRUNE_EVERY: usize = 1024;

/// One task's registry entry.
///
/// `repr(C)` with the fields every poll touches first, together: a task's
/// entry is cold by the time the task is polled again (a thousand other
/// tasks ran meanwhile), and in the compiler's field order the poll path's
/// reads and writes fell on three of the entry's five cache lines.
/// Grouped in 36 bytes they take one line, or two where the group straddles
/// a line boundary (cachegrind, `service-traced 1 0 8`: L1 read misses in
/// `Traced::poll` 254,009 before, 229,552 after, against 196,509 for the
/// same futures spawned with `tokio::spawn`). Aligning the entry to a
/// line would save the straddle but cost each entry about 100 bytes (the
/// allocator's prefix grows to the alignment), which the `internal` row
/// of a program with many finished tasks still holding bytes shows; it
/// measured no better.
#[derive(Debug)]
#[repr(C)]
pub(crate) struct TaskEntry {
    // The poll path's fields (see `task::Traced::poll`): 36 bytes.
    pub(crate) tag: TaskTag,
    pub(crate) polls: AtomicU64,
    /// Busy time in `crate::clock` ticks (nanoseconds when read).
    pub(crate) busy_ticks: AtomicU64,
    state: AtomicU8,
    /// Whether the task has a memory budget (see `task::Builder::budget`):
    /// its polls then end by flushing their batch, so the budget is checked
    /// while the task is still the one that grew.
    pub(crate) budgeted: AtomicBool,
    /// Whether `parked` holds a path (written with it, by the poller): a
    /// pending poll outside any frame forgets an older path, and most
    /// tasks have none to forget, so it need not take the lock.
    parked_any: AtomicBool,
    /// Who may touch the root cell's memory: [`CELL_OPEN`], a scan reading
    /// it ([`CELL_SCANNING`]), or gone ([`CELL_RETIRED`]: the future is
    /// being or has been dropped). See [`scan_live_cells`].
    cell: AtomicU8,
    // The rest: read by reports, written at spawn or rarely.
    pub(crate) id: u64,
    pub(crate) name: Cow<'static, str>,
    pub(crate) location: &'static Location<'static>,
    pub(crate) created_at: SystemTime,
    tokio_id: AtomicU64,
    /// The frame path the task last parked in (see `frame::note_parked`).
    /// A `Mutex`: written once per pending poll of a task with frames, read
    /// by `resources()`; never contended on the poll path.
    parked: std::sync::Mutex<FramePath>,
    /// Address and size of the task's root cell (its boxed future); `None`
    /// for tasks registered by runtime hooks, whose future tokio owns.
    pub(crate) root: Option<(usize, usize)>,
    /// The spawn scope the task was spawned in (see [`SpawnScope`]); 0:
    /// none.
    pub(crate) spawn_scope: u64,
}

// The poll path's fields stay within 36 bytes (see `TaskEntry`).
const _: () = assert!(std::mem::offset_of!(TaskEntry, cell) < 36);

const CELL_OPEN: u8 = 0;
const CELL_SCANNING: u8 = 1;
const CELL_RETIRED: u8 = 2;

impl TaskEntry {
    /// Called before the task's future (its root cell) is dropped: waits
    /// out a scan reading it, and keeps later scans away. Once per task, so
    /// the spin is never on a hot path; a scan reads one cell for well
    /// under a microsecond per kilobyte.
    pub(crate) fn retire_cell(&self) {
        while self
            .cell
            .compare_exchange_weak(
                CELL_OPEN,
                CELL_RETIRED,
                Ordering::Acquire,
                Ordering::Relaxed,
            )
            .is_err()
        {
            if self.cell.load(Ordering::Relaxed) == CELL_RETIRED {
                return;
            }
            std::hint::spin_loop();
        }
    }
}

/// What a task is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TaskState {
    /// Waiting to be polled.
    Idle,
    /// Being polled now.
    Running,
    /// Its future returned `Ready`.
    Completed,
    /// A poll panicked.
    Panicked,
    /// Dropped before completing: aborted, or cancelled by runtime shutdown.
    Aborted,
}

impl TaskState {
    /// Whether the task has ended.
    pub fn is_done(self) -> bool {
        matches!(
            self,
            TaskState::Completed | TaskState::Panicked | TaskState::Aborted
        )
    }

    fn from_u8(v: u8) -> TaskState {
        match v {
            0 => TaskState::Idle,
            1 => TaskState::Running,
            2 => TaskState::Completed,
            3 => TaskState::Panicked,
            _ => TaskState::Aborted,
        }
    }
}

impl std::fmt::Display for TaskState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            TaskState::Idle => "idle",
            TaskState::Running => "running",
            TaskState::Completed => "completed",
            TaskState::Panicked => "panicked",
            TaskState::Aborted => "aborted",
        })
    }
}

impl TaskEntry {
    /// The frame path the task last parked in, if it has frames.
    fn parked_path(&self) -> Option<FramePath> {
        let path = *self.parked.lock().unwrap_or_else(|e| e.into_inner());
        (!path.is_empty()).then_some(path)
    }

    pub(crate) fn state(&self) -> TaskState {
        TaskState::from_u8(self.state.load(Ordering::Acquire))
    }

    pub(crate) fn set_state(&self, state: TaskState) {
        self.state.store(state as u8, Ordering::Release);
    }

    pub(crate) fn set_tokio_id<T>(&self, handle: &tokio::task::JoinHandle<T>) {
        self.set_tokio_id_raw(turbowish_alloc::tokio_task_number(handle.id()));
    }

    pub(crate) fn set_tokio_id_raw(&self, id: u64) {
        self.tokio_id.store(id, Ordering::Relaxed);
    }

    fn tokio_id(&self) -> Option<u64> {
        match self.tokio_id.load(Ordering::Relaxed) {
            0 => None,
            id => Some(id),
        }
    }
}

pub(crate) fn register(
    name: Cow<'static, str>,
    location: &'static Location<'static>,
    tag: TaskTag,
    root: Option<(usize, usize)>,
) -> Arc<TaskEntry> {
    // The registry's memory is TurboWish's, not the spawning task's.
    let _internal = turbowish_alloc::internal();
    let entry = Arc::new(TaskEntry {
        id: tag.id(),
        name,
        location,
        created_at: SystemTime::now(),
        tag,
        tokio_id: AtomicU64::new(0),
        state: AtomicU8::new(TaskState::Idle as u8),
        polls: AtomicU64::new(0),
        busy_ticks: AtomicU64::new(0),
        root,
        parked: std::sync::Mutex::new(FramePath::default()),
        parked_any: AtomicBool::new(false),
        cell: AtomicU8::new(CELL_OPEN),
        budgeted: AtomicBool::new(false),
        spawn_scope: current_spawn_scope(),
    });
    REGISTRY.insert(entry.id, entry.clone());
    entry
}

/// Called when a task's `Traced` is dropped: the entry goes as soon as the
/// task holds no live bytes, now or at a later prune.
pub(crate) fn finished(entry: &Arc<TaskEntry>) {
    let _internal = turbowish_alloc::internal();
    if entry.tag.counters().live_blocks == 0 {
        REGISTRY.remove(&entry.id);
    } else if FINISHED_WITH_BYTES.fetch_add(1, Ordering::Relaxed) + 1 >= PRUNE_EVERY {
        prune();
    }
}

/// Removes finished tasks that no longer hold live bytes.
fn prune() {
    FINISHED_WITH_BYTES.store(0, Ordering::Relaxed);
    REGISTRY.retain(|_, e| !(e.state().is_done() && e.tag.counters().live_blocks == 0));
    let kept = REGISTRY.iter().filter(|e| e.state().is_done()).count();
    FINISHED_WITH_BYTES.store(kept, Ordering::Relaxed);
}

thread_local! {
    static CURRENT: Cell<*const TaskEntry> = const { Cell::new(std::ptr::null()) };
    /// The spawn scope entered on this thread, outside any task's poll.
    static SPAWN_SCOPE: Cell<u64> = const { Cell::new(0) };
}

/// Spawn scopes are numbered from 1.
static NEXT_SPAWN_SCOPE: AtomicU64 = AtomicU64::new(1);

/// A spawn scope: the TurboWish tasks spawned on this thread while it is
/// entered, and the tasks those spawn in turn (wherever they run), belong
/// to it ([`TaskInfo::spawn_scope`]). Tests that share a process use one to
/// tell their own tasks from the others' (`turbowish::testing`).
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let scope = turbowish_trace::task::SpawnScope::enter();
/// let task = turbowish_trace::spawn("mine", async { tokio::task::yield_now().await });
/// let row = turbowish_trace::task::tasks().into_iter().find(|t| t.name == "mine").unwrap();
/// assert_eq!(row.spawn_scope, Some(scope.id()));
/// # task.await.unwrap();
/// # }
/// ```
#[derive(Debug)]
#[must_use = "the scope ends when this guard is dropped"]
pub struct SpawnScope {
    id: u64,
    previous: u64,
    /// A scope belongs to the thread that entered it.
    _not_send: std::marker::PhantomData<*const ()>,
}

impl SpawnScope {
    /// Enters a new scope on this thread until the guard is dropped (scopes
    /// nest; the innermost one counts).
    pub fn enter() -> SpawnScope {
        let id = NEXT_SPAWN_SCOPE.fetch_add(1, Ordering::Relaxed);
        SpawnScope {
            id,
            previous: SPAWN_SCOPE.with(|s| s.replace(id)),
            _not_send: std::marker::PhantomData,
        }
    }

    /// The scope's id, as [`TaskInfo::spawn_scope`] gives it.
    pub fn id(&self) -> u64 {
        self.id
    }
}

impl Drop for SpawnScope {
    fn drop(&mut self) {
        let _ = SPAWN_SCOPE.try_with(|s| s.set(self.previous));
    }
}

/// The scope a task spawned here and now belongs to: its spawner's, if a
/// TurboWish task spawns it, else the thread's.
fn current_spawn_scope() -> u64 {
    let from_task = CURRENT.with(|c| {
        // SAFETY: see `current_task`.
        unsafe { c.get().as_ref() }.map(|e| e.spawn_scope)
    });
    from_task.unwrap_or_else(|| SPAWN_SCOPE.with(Cell::get))
}

/// Sets the current task for the length of one poll.
pub(crate) struct CurrentTask {
    previous: *const TaskEntry,
}

impl CurrentTask {
    pub(crate) fn enter(entry: &TaskEntry) -> CurrentTask {
        CurrentTask {
            previous: CURRENT.with(|c| c.replace(entry)),
        }
    }
}

impl Drop for CurrentTask {
    fn drop(&mut self) {
        let _ = CURRENT.try_with(|c| c.set(self.previous));
    }
}

/// The TurboWish id of the task being polled on this thread, without
/// allocating (for resource records on lock paths).
pub(crate) fn current_task_id() -> Option<u64> {
    CURRENT.with(|c| {
        // SAFETY: see `current_task`.
        unsafe { c.get().as_ref() }.map(|e| e.id)
    })
}

/// Records where the task being polled on this thread parks.
pub(crate) fn note_parked(path: FramePath) {
    CURRENT.with(|c| {
        // SAFETY: see `current_task`.
        if let Some(entry) = unsafe { c.get().as_ref() } {
            let any = !path.is_empty();
            // Only this poller writes either field, so the flag it read is
            // the one it last wrote.
            if any || entry.parked_any.load(Ordering::Relaxed) {
                *entry.parked.lock().unwrap_or_else(|e| e.into_inner()) = path;
                entry.parked_any.store(any, Ordering::Relaxed);
            }
        }
    });
}

/// The frame path a registered task last parked in; `None` for unknown
/// tasks and tasks that parked outside any frame.
pub(crate) fn parked_path(id: u64) -> Option<FramePath> {
    REGISTRY.get(&id)?.parked_path()
}

/// The name of a registered task (live, or finished while still holding
/// bytes).
pub(crate) fn task_name(id: u64) -> Option<String> {
    REGISTRY.get(&id).map(|e| e.name.to_string())
}

/// The TurboWish id and name of the task being polled on this thread, if it
/// was spawned through TurboWish.
pub fn current_task() -> Option<(u64, Cow<'static, str>)> {
    CURRENT.with(|c| {
        let entry = c.get();
        // SAFETY: CURRENT is non-null only inside `Traced::poll`, which holds
        // an `Arc` of the entry for the whole poll and resets CURRENT before
        // returning (the guard also runs on unwind).
        unsafe { entry.as_ref() }.map(|e| (e.id, e.name.clone()))
    })
}

/// One row of [`tasks`]: a task, or a bucket of allocations made outside any
/// TurboWish task.
#[derive(Debug, Clone)]
pub struct TaskInfo {
    /// Whose row this is: a TurboWish task ([`Owner::Task`]), another
    /// tokio task, or one of the buckets.
    pub owner: Owner,
    /// The task's name; for other rows a description such as
    /// `tokio task 42` or `main (outside tasks)`.
    pub name: String,
    /// Where the task was spawned.
    pub location: Option<&'static Location<'static>>,
    /// The task's state (tasks spawned through TurboWish only).
    pub state: Option<TaskState>,
    /// tokio's id of the task, where known.
    pub tokio_id: Option<u64>,
    /// When the task was spawned.
    pub created_at: Option<SystemTime>,
    /// How many times it was polled.
    pub polls: u64,
    /// Time spent inside its polls.
    pub busy: Duration,
    /// `size_of` the task's future: the state machine held in its root cell.
    pub future_size: Option<usize>,
    /// Address of the root cell (the heap walker's starting point).
    pub root_address: Option<usize>,
    /// Allocation counters of the bytes this task allocated.
    pub memory: Counters,
    /// The [`SpawnScope`] the task was spawned in, if any.
    pub spawn_scope: Option<u64>,
}

impl TaskInfo {
    /// Whether the task's future is large enough to be a hidden cost (see
    /// [`LARGE_FUTURE_BYTES`]).
    pub fn large_future(&self) -> bool {
        self.future_size.is_some_and(|s| s > LARGE_FUTURE_BYTES)
    }
}

/// The per-task memory report: every task spawned through TurboWish (with
/// name, location, state, polls, busy time and future size), every other
/// tokio task that allocated (by tokio id), and the `untracked`, `internal`
/// and `overflow` buckets, each with its allocation counters. Sorted by live
/// bytes, biggest first.
///
/// The rows' live bytes add up to the allocator's total exactly at a
/// quiescent moment (`turbowish_alloc::stats().total.live_bytes`).
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let job = turbowish_trace::spawn("keeper", async {
///     let kept = vec![0u8; 4096];
///     tokio::task::yield_now().await;
///     kept
/// });
/// tokio::task::yield_now().await;
/// let report = turbowish_trace::task::tasks();
/// assert!(report.iter().any(|t| t.name == "keeper"));
/// # job.await.unwrap();
/// # }
/// ```
pub fn tasks() -> Vec<TaskInfo> {
    let _internal = turbowish_alloc::internal();
    // Nothing allocated before `for_each_task`'s `stats()`: the rows then
    // add up to what was live when `tasks()` was called.
    let mut rows = Vec::new();
    for_each_task(|row| {
        if rows.is_empty() {
            rows.reserve(REGISTRY.len() + 8);
        }
        rows.push(row.to_info());
    });
    rows.sort_by(|a, b| {
        b.memory
            .live_bytes
            .cmp(&a.memory.live_bytes)
            .then_with(|| a.name.cmp(&b.name))
    });
    rows
}

/// One row of [`for_each_task`]: a [`TaskInfo`] that borrows its name.
#[derive(Debug, Clone, Copy)]
pub struct TaskRow<'a> {
    /// Whose row this is (as [`TaskInfo::owner`]).
    pub owner: Owner,
    /// The task's name, or the row's description (as [`TaskInfo::name`]).
    pub name: &'a str,
    /// Where the task was spawned.
    pub location: Option<&'static Location<'static>>,
    /// The task's state (tasks spawned through TurboWish only).
    pub state: Option<TaskState>,
    /// tokio's id of the task, where known.
    pub tokio_id: Option<u64>,
    /// When the task was spawned.
    pub created_at: Option<SystemTime>,
    /// How many times it was polled.
    pub polls: u64,
    /// Time spent inside its polls.
    pub busy: Duration,
    /// `size_of` the task's future.
    pub future_size: Option<usize>,
    /// Address of the root cell.
    pub root_address: Option<usize>,
    /// Allocation counters of the bytes this task allocated.
    pub memory: Counters,
    /// The [`SpawnScope`] the task was spawned in, if any.
    pub spawn_scope: Option<u64>,
}

impl TaskRow<'_> {
    /// The row as [`tasks`] gives it (the name copied).
    pub fn to_info(&self) -> TaskInfo {
        TaskInfo {
            owner: self.owner,
            name: self.name.to_owned(),
            location: self.location,
            state: self.state,
            tokio_id: self.tokio_id,
            created_at: self.created_at,
            polls: self.polls,
            busy: self.busy,
            future_size: self.future_size,
            root_address: self.root_address,
            memory: self.memory,
            spawn_scope: self.spawn_scope,
        }
    }
}

/// Calls `visit` with every row of [`tasks`] — the same rows, with the same
/// figures — in no particular order, without sorting them or copying a
/// name: for a reader that runs every second over many tasks (the live
/// view) and keeps only what changed.
///
/// It reads the allocator's counters once (`turbowish_alloc::stats`) and
/// the registry's entries; `visit` runs with no lock held. What it
/// allocates is charged to the `internal` bucket.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let job = turbowish_trace::spawn("keeper", async {
///     let kept = vec![0u8; 4096];
///     tokio::task::yield_now().await;
///     kept
/// });
/// tokio::task::yield_now().await;
/// let mut keeper = None;
/// turbowish_trace::task::for_each_task(|row| {
///     if row.name == "keeper" {
///         keeper = row.state;
///     }
/// });
/// assert_eq!(keeper, Some(turbowish_trace::task::TaskState::Idle));
/// # job.await.unwrap();
/// # }
/// ```
pub fn for_each_task(mut visit: impl FnMut(TaskRow<'_>)) {
    let _internal = turbowish_alloc::internal();
    // Rows sorted by owner, one per owner: found by binary search.
    let stats = turbowish_alloc::stats();
    let find = |owner: Owner| {
        stats
            .tasks
            .binary_search_by(|row| row.owner.cmp(&owner))
            .ok()
    };
    let entries: Vec<Arc<TaskEntry>> = REGISTRY.iter().map(|e| e.value().clone()).collect();
    let mut merged = vec![false; stats.tasks.len()];
    let scale = crate::clock::tick_scale();
    for entry in &entries {
        let mut memory = Counters::default();
        // tokio may allocate for a TurboWish task outside our poll
        // wrapper (in its scheduler, still under the task's tokio id):
        // those bytes belong to the same task's row.
        let tokio_id = entry.tokio_id();
        let owners = [Some(Owner::Task(entry.id)), tokio_id.map(Owner::TokioTask)];
        for i in owners.into_iter().flatten().filter_map(find) {
            add_counters(&mut memory, &stats.tasks[i].counters);
            merged[i] = true;
        }
        visit(TaskRow {
            owner: Owner::Task(entry.id),
            name: &entry.name,
            location: Some(entry.location),
            state: Some(entry.state()),
            tokio_id,
            created_at: Some(entry.created_at),
            polls: entry.polls.load(Ordering::Relaxed),
            busy: Duration::from_nanos(scale.ns(entry.busy_ticks.load(Ordering::Relaxed))),
            future_size: entry.root.map(|r| r.1),
            root_address: entry.root.map(|r| r.0),
            memory,
            spawn_scope: (entry.spawn_scope != 0).then_some(entry.spawn_scope),
        });
    }
    let mut name = String::new();
    for (row, _) in stats.tasks.iter().zip(&merged).filter(|(_, &m)| !m) {
        name.clear();
        let _ = match row.owner {
            Owner::Task(id) => write!(name, "task #{id} (ended)"),
            Owner::TokioTask(id) => write!(name, "tokio task {id}"),
            Owner::Main => write!(name, "main (outside tasks)"),
            Owner::Internal => write!(name, "internal (turbowish)"),
            Owner::Overflow => write!(name, "overflow"),
        };
        visit(TaskRow {
            owner: row.owner,
            name: &name,
            location: None,
            state: None,
            tokio_id: match row.owner {
                Owner::TokioTask(id) => Some(id),
                _ => None,
            },
            created_at: None,
            polls: 0,
            busy: Duration::ZERO,
            future_size: None,
            root_address: None,
            memory: row.counters,
            spawn_scope: None,
        });
    }
}

fn add_counters(sum: &mut Counters, c: &Counters) {
    sum.live_bytes = sum.live_bytes.wrapping_add(c.live_bytes);
    sum.live_blocks = sum.live_blocks.wrapping_add(c.live_blocks);
    sum.total_bytes += c.total_bytes;
    sum.total_blocks += c.total_blocks;
    sum.peak_live_bytes = sum.peak_live_bytes.max(c.peak_live_bytes);
}

/// A task whose live bytes passed its budget (see
/// [`crate::task::Builder::budget`]), from [`take_budget_crossings`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BudgetCrossing {
    /// The task's TurboWish id.
    pub id: u64,
    /// The task's name.
    pub name: String,
    /// Where it was spawned.
    pub location: &'static Location<'static>,
    /// Its budget in bytes.
    pub budget: u64,
    /// Its counters when the crossing was collected (live bytes may have
    /// moved on since the crossing itself).
    pub memory: Counters,
}

/// The tasks whose live bytes crossed their budget since the last call,
/// each once per crossing. A crossing is noticed when the task's counts are
/// folded together (at the latest at the end of the poll that made it), so
/// this finds it as soon as that poll returns. `turbowish-capture`'s budget
/// watcher calls this when the allocator wakes it; a program without the
/// watcher can call it itself.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// // Without TurboWish as the global allocator nothing is counted, so no
/// // budget is ever crossed.
/// let task = turbowish_trace::task::Builder::new("bounded")
///     .budget(1024)
///     .spawn(async { vec![0u8; 4096].len() });
/// task.await.unwrap();
/// assert!(turbowish_trace::task::take_budget_crossings().is_empty());
/// # }
/// ```
pub fn take_budget_crossings() -> Vec<BudgetCrossing> {
    let _internal = turbowish_alloc::internal();
    let mut crossed: Vec<BudgetCrossing> = REGISTRY
        .iter()
        .filter(|e| e.budgeted.load(Ordering::Relaxed) && e.tag.take_budget_crossed())
        .map(|e| BudgetCrossing {
            id: e.id,
            name: e.name.to_string(),
            location: e.location,
            budget: e.tag.budget().unwrap_or(0),
            memory: e.tag.counters(),
        })
        .collect();
    crossed.sort_by_key(|c| c.id);
    crossed
}

/// Id, name and root cell (address, size) of every live task whose future
/// TurboWish owns: the heap walker's task roots.
pub(crate) fn live_roots() -> Vec<(u64, String, usize, usize)> {
    let _internal = turbowish_alloc::internal();
    REGISTRY
        .iter()
        .filter(|e| !e.state().is_done())
        .filter_map(|e| {
            e.root
                .map(|(addr, size)| (e.id, e.name.to_string(), addr, size))
        })
        .collect()
}

/// Calls `scan` with the root cell of every live task, each kept allocated
/// for the length of its call: a task finishing meanwhile waits (in
/// [`TaskEntry::retire_cell`]) before dropping its future, and one already
/// retired is skipped.
pub(crate) fn scan_live_cells(mut scan: impl FnMut(LiveCell<'_>)) {
    let _internal = turbowish_alloc::internal();
    let entries: Vec<Arc<TaskEntry>> = REGISTRY
        .iter()
        .filter(|e| e.root.is_some() && !e.state().is_done())
        .map(|e| Arc::clone(e.value()))
        .collect();
    for entry in entries {
        let Some((start, len)) = entry.root else {
            continue;
        };
        if entry
            .cell
            .compare_exchange(
                CELL_OPEN,
                CELL_SCANNING,
                Ordering::Acquire,
                Ordering::Relaxed,
            )
            .is_err()
        {
            continue;
        }
        scan(LiveCell {
            entry: &entry,
            start,
            len,
        });
        entry.cell.store(CELL_OPEN, Ordering::Release);
    }
}

/// A live task's root cell, readable for the length of a
/// [`scan_live_cells`] call.
#[derive(Debug)]
pub(crate) struct LiveCell<'a> {
    entry: &'a TaskEntry,
    /// Address of the cell (the boxed future).
    pub(crate) start: usize,
    /// Its size in bytes.
    pub(crate) len: usize,
}

impl LiveCell<'_> {
    pub(crate) fn id(&self) -> u64 {
        self.entry.id
    }

    pub(crate) fn name(&self) -> &str {
        &self.entry.name
    }

    /// The frame path the task is parked in now (see [`parked_path`]).
    pub(crate) fn parked_path(&self) -> Option<FramePath> {
        self.entry.parked_path()
    }
}

/// Number of entries in the registry (live tasks plus finished ones that
/// still hold bytes).
pub fn registry_len() -> usize {
    REGISTRY.len()
}
