//! The snapshot file format: what `snapshot()` captures and the CLI reads.
//!
//! Every type here is plain data (serde), independent of the running
//! process, so a snapshot written by one build can be read by another that
//! supports its [`Snapshot::format_version`]. Sizes and counts are `u64`,
//! times are milliseconds (since the Unix epoch for instants, since the
//! event for durations), locations are `file:line:col` strings.
//!
//! Compatibility rule: a field may be *added* within a format version only
//! with `#[serde(default)]`, so older files still load; so may a variant of
//! an enum (older files still load; a file that uses it is refused by an
//! older build, naming the unknown variant and where it is, while files
//! without it stay readable there). Anything else (a rename, a removal, a
//! change of meaning) bumps [`FORMAT_VERSION`].

use serde::{Deserialize, Serialize};

/// The format version this build writes. Version 2 added ownership: who
/// owns each resource's handles ([`Resource::owners`]) and where each
/// holder comes from ([`Party::provenance`]).
pub const FORMAT_VERSION: u32 = 2;

/// The format versions this build reads. A version-1 snapshot has no
/// ownership: its holders are all as recorded.
pub const SUPPORTED_VERSIONS: &[u32] = &[1, 2];

/// One heap snapshot of a process: per-task memory, sampled allocation
/// sites, and the held-resource graph with its chains and cycles.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    /// The schema version ([`FORMAT_VERSION`] when written by this build).
    pub format_version: u32,
    /// The process the snapshot was taken of.
    pub process: ProcessInfo,
    /// When the snapshot was taken, in ms since the Unix epoch.
    pub taken_at_ms: u64,
    /// The allocator's mean sampling interval in bytes (0: sampling off, so
    /// `sites` is empty; 1: every allocation sampled, estimates are exact).
    pub sample_interval: u64,
    /// Allocator-wide counters: every block TurboWish handed out.
    pub totals: Counters,
    /// Records (task slots) in use in the allocator's table, and its capacity.
    pub records: RecordUsage,
    /// One row per task known to the task registry (spawned through
    /// TurboWish, or registered by tokio's hooks) or seen by the allocator.
    pub tasks: Vec<Task>,
    /// Memory outside named tasks: `main`, `internal`, `overflow` and tokio
    /// tasks that were not spawned through TurboWish.
    pub buckets: Vec<Bucket>,
    /// Symbolised code locations, each distinct instruction pointer once.
    /// Sites refer to them by [`CodeLocation::id`].
    pub locations: Vec<CodeLocation>,
    /// Allocation sites (distinct sampled stacks) with live estimates.
    pub sites: Vec<Site>,
    /// Live-byte estimates per owner (task or bucket) and site.
    pub owner_sites: Vec<OwnerSite>,
    /// Instrumented resources with their holders and waiters.
    pub resources: Vec<Resource>,
    /// Wait chains, longest first.
    pub chains: Vec<Chain>,
    /// Deadlocks: chains that return to their start.
    pub cycles: Vec<Cycle>,
    /// The heap walk's results (*retained* memory per task and root), when
    /// the allocator ran in heap-walk mode; `None` otherwise and in files
    /// written before walks existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub walk: Option<Walk>,
}

/// Which process a snapshot describes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessInfo {
    /// Process id.
    pub pid: u32,
    /// Path of the executable (`/proc/self/exe` where available).
    pub executable: String,
    /// Command-line arguments, the program name first (at most
    /// [`MAX_ARGS`](crate::limits::MAX_ARGS) when read).
    #[serde(deserialize_with = "crate::limits::args")]
    pub args: Vec<String>,
    /// When the process started, in ms since the Unix epoch, where known.
    pub start_time_ms: Option<u64>,
}

/// Allocation counters, as the allocator keeps them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counters {
    /// Bytes allocated and not yet freed.
    pub live_bytes: u64,
    /// Blocks allocated and not yet freed.
    pub live_blocks: u64,
    /// Bytes ever allocated.
    pub total_bytes: u64,
    /// Blocks ever allocated.
    pub total_blocks: u64,
    /// Highest live bytes seen.
    pub peak_live_bytes: u64,
}

impl Counters {
    /// Adds `other` field by field, saturating: a snapshot is untrusted
    /// input, and a sum that overflows shows as `u64::MAX` rather than
    /// wrapping to a small figure or panicking.
    ///
    /// For a sum of rows, `peak_live_bytes` is the sum of their peaks,
    /// which they need not have reached at the same moment.
    ///
    /// ```
    /// use turbowish_snapshot::schema::Counters;
    /// let mut sum = Counters { live_bytes: u64::MAX, ..Counters::default() };
    /// sum.add(&Counters { live_bytes: 1, live_blocks: 2, ..Counters::default() });
    /// assert_eq!((sum.live_bytes, sum.live_blocks), (u64::MAX, 2));
    /// ```
    pub fn add(&mut self, other: &Counters) {
        self.live_bytes = self.live_bytes.saturating_add(other.live_bytes);
        self.live_blocks = self.live_blocks.saturating_add(other.live_blocks);
        self.total_bytes = self.total_bytes.saturating_add(other.total_bytes);
        self.total_blocks = self.total_blocks.saturating_add(other.total_blocks);
        self.peak_live_bytes = self.peak_live_bytes.saturating_add(other.peak_live_bytes);
    }
}

/// Use of the allocator's record table.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordUsage {
    /// Records in use.
    pub in_use: u64,
    /// Records the table holds.
    pub capacity: u64,
}

/// Who owns a row of memory: a task, or one of the buckets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(tag = "kind", content = "id", rename_all = "snake_case")]
pub enum Owner {
    /// A task spawned through TurboWish (or registered by tokio's hooks),
    /// by its TurboWish id ([`Task::id`]).
    Task(u64),
    /// A tokio task TurboWish did not spawn, by tokio id.
    TokioTask(u64),
    /// Allocations outside any task.
    Main,
    /// TurboWish's own allocations.
    Internal,
    /// Tasks that found the allocator's record table full.
    Overflow,
}

/// A task's row.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Task {
    /// TurboWish task id.
    pub id: u64,
    /// The task's name.
    pub name: String,
    /// Where it was spawned, `file:line:col`.
    pub location: Option<String>,
    /// What it was doing when the snapshot was taken.
    pub state: Option<TaskState>,
    /// tokio's id of the task, where known.
    pub tokio_id: Option<u64>,
    /// When it was spawned, in ms since the Unix epoch.
    pub created_at_ms: Option<u64>,
    /// Times polled.
    pub polls: u64,
    /// Time spent in polls, in ns.
    pub busy_ns: u64,
    /// Size of its future (the state machine in its root cell), in bytes.
    pub future_size: Option<u64>,
    /// Memory it allocated that is still live (*allocated-by*).
    pub memory: Counters,
}

/// A task's state (see `turbowish_trace::task::TaskState`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskState {
    /// Waiting to be polled.
    Idle,
    /// Being polled.
    Running,
    /// Returned `Ready`.
    Completed,
    /// A poll panicked.
    Panicked,
    /// Dropped before completing.
    Aborted,
}

impl TaskState {
    /// The state as the CLI and the tables print it: `idle`, `running`,
    /// `completed`, `panicked`, `aborted` (the JSON spelling too).
    pub fn name(self) -> &'static str {
        match self {
            TaskState::Idle => "idle",
            TaskState::Running => "running",
            TaskState::Completed => "completed",
            TaskState::Panicked => "panicked",
            TaskState::Aborted => "aborted",
        }
    }
}

/// Memory outside named tasks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Bucket {
    /// Which bucket.
    pub owner: Owner,
    /// Its display name: `main (outside tasks)`, `internal (turbowish)`,
    /// `overflow`, `tokio task 17`.
    pub name: String,
    /// Its counters.
    pub memory: Counters,
}

/// One symbolised instruction pointer. Inlining can make one address
/// several source lines, innermost first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CodeLocation {
    /// Index of this location in [`Snapshot::locations`].
    pub id: u32,
    /// The instruction pointer (as captured; return addresses point just
    /// after the call).
    pub address: u64,
    /// Source lines at this address, innermost (inlined) first; empty when
    /// no symbol was found (at most
    /// [`MAX_INLINE_DEPTH`](crate::limits::MAX_INLINE_DEPTH) when read).
    #[serde(deserialize_with = "crate::limits::lines")]
    pub lines: Vec<SourceLine>,
}

/// Whether `function` (a demangled Rust name) is the standard library's
/// or the allocation machinery's: `std`, `core`, `alloc` (with `hashbrown`
/// behind `HashMap`), the allocator shims, TurboWish's allocator and the
/// unwinder taking samples. A trait method counts when its type is a
/// primitive and its trait the library's
/// (`<u8 as alloc::vec::spec_from_elem::SpecFromElem>::from_elem`). The
/// capture cuts stacks by it; the pprof export leaves such frames out of
/// stacks written before the capture did.
///
/// ```
/// use turbowish_snapshot::schema::is_library_function;
/// assert!(is_library_function("alloc::raw_vec::RawVec<T,A>::grow_one"));
/// assert!(is_library_function("<u8 as alloc::vec::spec_from_elem::SpecFromElem>::from_elem"));
/// assert!(!is_library_function("<my_app::Cache as core::default::Default>::default"));
/// ```
pub fn is_library_function(function: &str) -> bool {
    const PREFIXES: &[&str] = &[
        "alloc::",
        "core::",
        "std::",
        "hashbrown::",
        "turbowish_alloc::",
        "backtrace::",
        "__rust",
        "__rdl_",
        "__rg_",
    ];
    let library = |name: &str| PREFIXES.iter().any(|p| name.starts_with(p));
    let name = function.trim_start_matches('<');
    if library(name) {
        return true;
    }
    match name.split_once(" as ") {
        Some((ty, rest)) => !ty.contains("::") && library(rest),
        None => false,
    }
}

/// A function and source position.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceLine {
    /// Demangled function name (without the hash suffix).
    pub function: String,
    /// Source file, where debug info has it.
    pub file: Option<String>,
    /// Line, where debug info has it.
    pub line: Option<u32>,
}

/// An allocation site: a distinct sampled stack.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Site {
    /// Index of this site in [`Snapshot::sites`].
    pub id: u32,
    /// The stack, innermost frame first, as ids into [`Snapshot::locations`],
    /// with the allocator's own frames removed (at most
    /// [`MAX_STACK_DEPTH`](crate::limits::MAX_STACK_DEPTH) when read).
    #[serde(deserialize_with = "crate::limits::stack")]
    pub stack: Vec<u32>,
    /// Estimated live bytes allocated here (unbiased; exact when
    /// `sample_interval` is 1).
    pub live_bytes: u64,
    /// Estimated live blocks.
    pub live_blocks: u64,
    /// Live samples behind the estimate.
    pub samples: u64,
}

/// Estimated live memory one owner allocated at one site.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct OwnerSite {
    /// The allocating owner.
    pub owner: Owner,
    /// The site ([`Site::id`]).
    pub site: u32,
    /// Estimated live bytes.
    pub live_bytes: u64,
    /// Estimated live blocks.
    pub live_blocks: u64,
}

/// An instrumented lock, semaphore or channel.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Resource {
    /// Process-unique id.
    pub id: u64,
    /// What it is.
    pub kind: ResourceKind,
    /// Its name (given, or its creation location).
    pub name: String,
    /// Where it was created, `file:line:col`.
    pub location: String,
    /// Named holders.
    pub holders: Vec<Party>,
    /// Holders only counted (beyond the named ones).
    pub extra_holders: u64,
    /// Waiters.
    pub waiters: Vec<Party>,
    /// For semaphores: permits available.
    pub permits: Option<u64>,
    /// The tasks (and named roots) whose state owns a handle to it, as the
    /// walker found them (version 2). For a lock: who *may lock* it.
    #[serde(default)]
    pub owners: Vec<HandleOwner>,
}

/// Kinds of [`Resource`].
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResourceKind {
    /// A mutex.
    Mutex,
    /// A read-write lock.
    RwLock,
    /// A semaphore.
    Semaphore,
    /// An mpsc or oneshot channel.
    Channel,
    /// A task, as awaiting its `JoinHandle` waits for it (version 2).
    Task,
    /// A resource a library declared, by the kind name it gave (`"pool"`;
    /// version 2, added with the resource API).
    Declared(String),
    /// One of tokio's own primitives, seen through tokio's instrumentation
    /// (`--cfg tokio_unstable`), by its type (`tokio::sync::Mutex`; version
    /// 2, added with the resource API). Its holders and waiters have
    /// provenance [`Provenance::Tokio`].
    Tokio(String),
}

impl ResourceKind {
    /// `Mutex`, `RwLock`, `Semaphore`, `Channel`, `Task`, a declared
    /// resource's own kind name (`pool`), tokio's type
    /// (`tokio::sync::Mutex`): as reports label a resource.
    pub fn name(&self) -> &str {
        match self {
            ResourceKind::Mutex => "Mutex",
            ResourceKind::RwLock => "RwLock",
            ResourceKind::Semaphore => "Semaphore",
            ResourceKind::Channel => "Channel",
            ResourceKind::Task => "Task",
            ResourceKind::Declared(kind) | ResourceKind::Tokio(kind) => kind,
        }
    }
}

/// A task holding, or waiting for, a resource.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Party {
    /// Which task.
    pub task: TaskRef,
    /// Its name when recorded.
    pub task_name: String,
    /// Frames (named futures) active at the acquisition or wait, outermost
    /// first (at most [`MAX_PARTY_FRAMES`](crate::limits::MAX_PARTY_FRAMES)
    /// when read).
    #[serde(deserialize_with = "crate::limits::party_frames")]
    pub frames: Vec<String>,
    /// Where it acquired or waits, `file:line:col`.
    pub location: String,
    /// For how long, in ms, when the snapshot was taken.
    pub since_ms: u64,
    /// How it holds or what it wants.
    pub access: Access,
    /// Whether the holder record can move with its guard to another task
    /// (owned guards).
    pub movable: bool,
    /// For a holder: the frames its task is parked in now (where its last
    /// poll returned `Pending`), outermost first; empty when unknown (at
    /// most [`MAX_PARTY_FRAMES`](crate::limits::MAX_PARTY_FRAMES) when read).
    #[serde(default, deserialize_with = "crate::limits::party_frames")]
    pub parked_in: Vec<String>,
    /// Where this holder comes from (version 2; `recorded` in version 1).
    #[serde(default)]
    pub provenance: Provenance,
}

/// Where a holder comes from.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Provenance {
    /// Recorded when the guard was taken, or the channel end created,
    /// cloned or last used.
    #[default]
    Recorded,
    /// The task's state owns the handle, found by the walker at `path`.
    Owns {
        /// Where: `future state +0x28`, `… › heap block +0x10`, or a
        /// field path when traced precisely.
        path: String,
    },
    /// Reported by tokio's own instrumentation (a [`ResourceKind::Tokio`]
    /// resource): the task current at tokio's event. tokio says no place,
    /// so [`Party::location`] is empty. Also on waiters of such resources.
    Tokio,
}

/// A task (or named root) whose state owns a handle to a resource.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HandleOwner {
    /// The owning task; absent for a named root.
    pub task: Option<TaskRef>,
    /// The task's (or root's) name.
    pub name: String,
    /// What it owns.
    pub handle: HandleKind,
    /// Where the handle was found (see [`Provenance::Owns`]).
    pub path: String,
}

/// A kind of handle to a resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HandleKind {
    /// A channel's sending end.
    Sender,
    /// A channel's receiving end.
    Receiver,
    /// A lock or semaphore, or an `Arc` to one: its owner *may lock* it.
    Lock,
    /// An owned guard or permit.
    Guard,
    /// A task's `JoinHandle`, while it is awaited: a handle to the task's
    /// resource.
    Join,
}

impl HandleKind {
    /// `sender`, `receiver`, `lock`, `guard`, `join handle`.
    pub fn name(self) -> &'static str {
        match self {
            HandleKind::Sender => "sender",
            HandleKind::Receiver => "receiver",
            HandleKind::Lock => "lock",
            HandleKind::Guard => "guard",
            HandleKind::Join => "join handle",
        }
    }
}

/// Which task a [`Party`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(tag = "kind", content = "id", rename_all = "snake_case")]
pub enum TaskRef {
    /// A TurboWish task ([`Task::id`]).
    Task(u64),
    /// A tokio task by tokio id.
    TokioTask(u64),
    /// A thread outside any task, by a process-unique number.
    Thread(u64),
}

/// How a resource is held or wanted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", content = "permits", rename_all = "snake_case")]
pub enum Access {
    /// Mutex guard or write guard.
    Exclusive,
    /// Read guard.
    Shared,
    /// Semaphore permits.
    Permits(u32),
    /// A channel's sending side.
    Send,
    /// A channel's receiving side.
    Receive,
}

/// One step of a chain: `waiter` waits for `resource`, held by `holders`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Link {
    /// The waiting task.
    pub waiter: Party,
    /// The resource waited for ([`Resource::id`]).
    pub resource: u64,
    /// Kind and name, e.g. `Mutex "accounts[2]"`.
    pub resource_label: String,
    /// Its holders: at most 8, the one the chain or cycle goes on to among
    /// them (first, in a chain).
    pub holders: Vec<Party>,
    /// Further holders, counted only: nobody named them.
    pub extra_holders: u64,
    /// Named holders the link leaves out, past the 8 it lists (the
    /// resource names them all). Written only when not 0, so links of
    /// eight holders or fewer read as before.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub unlisted_holders: u64,
}

/// For `skip_serializing_if`: a count that says nothing.
fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// How a chain ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChainEnd {
    /// At a task waiting on nothing TurboWish tracks.
    Untracked,
    /// At a resource no recorded task holds.
    HeldByNobody,
    /// At a resource whose holders are only counted.
    UnnamedHolders,
    /// Back at a task already in the chain.
    Cycle,
    /// At a receiver whose senders are all held outside tasks (version 2).
    SendersOutsideTasks,
    /// At a receiver whose channel has no sender left (version 2).
    NoSenders,
    /// At one of tokio's resources whose holders tokio's instrumentation
    /// does not name (version 2, added with tokio's resources).
    HolderNotReported,
}

/// A wait chain.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Chain {
    /// The steps (at most [`MAX_LINKS`](crate::limits::MAX_LINKS) when
    /// read).
    #[serde(deserialize_with = "crate::limits::links")]
    pub links: Vec<Link>,
    /// How it ends.
    pub end: ChainEnd,
    /// The chain in plain text, as `turbowish chains` prints it.
    pub text: String,
}

/// A deadlock.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Cycle {
    /// The steps; link `i`'s holder is link `i + 1`'s waiter, cyclically
    /// (at most [`MAX_LINKS`](crate::limits::MAX_LINKS) when read).
    #[serde(deserialize_with = "crate::limits::links")]
    pub links: Vec<Link>,
    /// The cycle in plain text (`deadlock: task "a" ... holds ... and waits for ...`).
    pub text: String,
}

/// What the heap walk found: which task or named root *retains* each live
/// block (see `turbowish_trace::walk::walk`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Walk {
    /// Per TurboWish task, in the walk's root order.
    pub tasks: Vec<TaskWalk>,
    /// Per named root (`turbowish_trace::root`).
    pub roots: Vec<RootWalk>,
    /// Live memory reachable from no root, by allocating owner, biggest
    /// first: statics, data on thread stacks, leaks.
    pub unattributed: Vec<UnattributedWalk>,
    /// Blocks a `Trace` impl named, per holder and type, biggest first.
    pub census: Vec<CensusRow>,
    /// Held TurboWish guards found in a task's or root's state.
    pub guards: Vec<GuardWalk>,
    /// What the walk did.
    pub stats: WalkStats,
}

/// Bytes and blocks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Amount {
    /// Bytes (block sizes as the program asked for them).
    pub bytes: u64,
    /// Blocks.
    pub blocks: u64,
}

impl Amount {
    /// Adds `other`, saturating (see [`Counters::add`]).
    pub fn add(&mut self, other: &Amount) {
        self.bytes = self.bytes.saturating_add(other.bytes);
        self.blocks = self.blocks.saturating_add(other.blocks);
    }
}

/// What one task's root reaches.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskWalk {
    /// TurboWish task id ([`Task::id`]).
    pub id: u64,
    /// The task's name.
    pub name: String,
    /// Reachable from this task only: what ending it now would free. Its
    /// root cell (the future) included.
    pub retained: Amount,
    /// Reachable from this task and from other roots too.
    pub shared: Amount,
    /// Bytes `Trace` impls reported without an address (estimates, not in
    /// `retained`).
    pub unlocated_bytes: u64,
    /// Retained memory by allocation site, estimated from the sampled
    /// blocks it retains (exact when `sample_interval` is 1), biggest first.
    pub sites: Vec<RetainedSite>,
}

/// Estimated retained memory allocated at one site.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RetainedSite {
    /// The site ([`Site::id`]).
    pub site: u32,
    /// Estimated retained bytes.
    pub bytes: u64,
    /// Estimated retained blocks.
    pub blocks: u64,
}

/// What one named root reaches.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RootWalk {
    /// The root's name.
    pub name: String,
    /// Owned by this root alone.
    pub retained: Amount,
    /// Owned, but shared with other roots.
    pub shared: Amount,
    /// As in [`TaskWalk::unlocated_bytes`].
    pub unlocated_bytes: u64,
}

/// Live memory reachable from no root, allocated by one owner.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnattributedWalk {
    /// Who allocated it.
    pub owner: Owner,
    /// How much.
    pub amount: Amount,
}

/// Who a census row or a guard belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum WalkHolder {
    /// A task ([`Task::id`]).
    Task {
        /// TurboWish task id.
        id: u64,
        /// Its name.
        name: String,
    },
    /// A named root.
    Root {
        /// Its name.
        name: String,
    },
    /// Reachable from several roots.
    Shared,
}

/// Blocks of one type held by one holder: objects, bytes and slack.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CensusRow {
    /// Who retains them.
    pub holder: WalkHolder,
    /// The type a `Trace` impl named.
    pub type_name: String,
    /// Blocks (objects).
    pub objects: u64,
    /// Their bytes.
    pub bytes: u64,
    /// Bytes allocated but not holding payload (unused capacity).
    pub slack: u64,
}

/// A held guard (or permit) found in a task's or root's state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GuardWalk {
    /// The resource ([`Resource::id`]).
    pub resource: u64,
    /// Its name.
    pub resource_name: String,
    /// Whose state holds the guard, whichever task acquired it.
    pub holder: WalkHolder,
    /// Field path from the root to the guard (`worker › (opaque state)`
    /// when found by its mark in a future's bytes).
    pub path: String,
}

/// What the walk did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WalkStats {
    /// Live blocks in the heap when it walked.
    pub live_blocks: u64,
    /// Blocks scanned conservatively (word by word).
    pub blocks_scanned: u64,
    /// Bytes scanned conservatively.
    pub bytes_scanned: u64,
    /// Blocks traced precisely through `Trace` impls.
    pub blocks_traced: u64,
    /// Edges found.
    pub edges: u64,
    /// How long the walk took, in microseconds (walks are often shorter
    /// than a millisecond).
    pub duration_us: u64,
}
