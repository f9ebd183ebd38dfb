//! What every instrumented resource records: its holders and waiters, each
//! with task, frame path, location and time, kept so that recording a holder
//! on the uncontended path never allocates.

use std::borrow::Cow;
use std::cell::UnsafeCell;
use std::panic::Location;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, LazyLock, Weak};
use std::time::Duration;

use dashmap::DashMap;

use crate::frame::{current_path, fill_path, FramePath};
use crate::registry;

/// Holders a resource names individually; more (readers of an `RwLock`,
/// permits of a `Semaphore`) are counted in `extra_holders`.
const HOLDER_SLOTS: usize = 8;

/// Every live resource, by id. Weak: a resource's lifetime is its owner's.
static RESOURCES: LazyLock<DashMap<u64, Weak<ResourceState>>> = LazyLock::new(DashMap::new);
static NEXT_ID: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

/// What kind of resource a [`ResourceInfo`] describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ResourceKind {
    /// [`crate::sync::Mutex`]
    Mutex,
    /// [`crate::sync::RwLock`]
    RwLock,
    /// [`crate::sync::Semaphore`]
    Semaphore,
    /// A [`crate::sync::mpsc`] or [`crate::sync::oneshot`] channel.
    Channel,
    /// A task spawned through TurboWish, as awaiting its
    /// [`crate::task::JoinHandle`] waits for it: held by the task itself.
    Task,
    /// A resource a library declared with [`crate::resource::Resource`],
    /// by the kind name it gave (`"pool"`, `"rate limiter"`).
    Declared(&'static str),
    /// One of tokio's own primitives, seen through tokio's instrumentation
    /// (`--cfg tokio_unstable` and the `tokio-resources` feature; see
    /// [`TokioKind`]).
    Tokio(TokioKind),
}

/// Which of tokio's primitives a [`ResourceKind::Tokio`] resource is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TokioKind {
    /// `tokio::sync::Mutex`: its holder and waiters are reported.
    Mutex,
    /// `tokio::sync::RwLock`: readers, writer and waiters are reported.
    RwLock,
    /// `tokio::sync::Semaphore`: holders of permits taken by `acquire*`
    /// and waiters are reported (not permits taken by `try_acquire*`).
    Semaphore,
    /// A bounded `tokio::sync::mpsc` channel: only senders waiting on a
    /// full buffer are reported, not who holds the receiver.
    Mpsc,
    /// A `tokio::sync::oneshot` channel: the receiver's wait is reported,
    /// not who holds the sender.
    Oneshot,
}

impl TokioKind {
    /// Whether tokio's instrumentation names the tasks holding this kind
    /// of resource. When it does not, a waiter's chain ends there, saying
    /// so ([`crate::chains::ChainEnd::HolderNotReported`]).
    pub fn reports_holders(self) -> bool {
        matches!(
            self,
            TokioKind::Mutex | TokioKind::RwLock | TokioKind::Semaphore
        )
    }

    /// `tokio::sync::Mutex`, …: how reports label the kind.
    pub fn name(self) -> &'static str {
        match self {
            TokioKind::Mutex => "tokio::sync::Mutex",
            TokioKind::RwLock => "tokio::sync::RwLock",
            TokioKind::Semaphore => "tokio::sync::Semaphore",
            TokioKind::Mpsc => "tokio::sync::mpsc",
            TokioKind::Oneshot => "tokio::sync::oneshot",
        }
    }
}

impl std::fmt::Display for ResourceKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ResourceKind::Mutex => "Mutex",
            ResourceKind::RwLock => "RwLock",
            ResourceKind::Semaphore => "Semaphore",
            ResourceKind::Channel => "channel",
            ResourceKind::Task => "task",
            ResourceKind::Declared(kind) => kind,
            ResourceKind::Tokio(kind) => kind.name(),
        })
    }
}

/// How a resource is held, in Holt's terms: whether a waiter waits for one
/// holder or for any of several. Given when a resource is declared
/// ([`crate::resource::Resource::new`]); it decides which [`Access`] fits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Class {
    /// One unit (a mutex, a lease, a read-write lock): held by one task
    /// exclusively ([`Access::Exclusive`]) or shared by several
    /// ([`Access::Shared`]); a waiter waits for every holder.
    Exclusive,
    /// `capacity` interchangeable units (a semaphore, a pool of
    /// connections): each holder holds some ([`Access::Permits`]), and a
    /// waiter waits for *any* holder to give units back, so it is stuck
    /// only when every holder is itself waiting.
    Cumulative {
        /// Units in all (a pool's connections); it may change later
        /// ([`crate::resource::Resource::add_capacity`]).
        capacity: usize,
    },
    /// Produced and consumed (a channel): held by its ends, each a sender
    /// ([`Access::Send`]) or a receiver ([`Access::Receive`]); a receiver
    /// waits for every sender, a sender blocked on a full buffer for the
    /// receivers.
    Channel,
}

/// The class of a resource without its capacity (which changes, and is
/// kept in an atomic).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ClassTag {
    Exclusive,
    Cumulative,
    Channel,
}

impl ClassTag {
    /// Whether `access` fits a resource of this class.
    #[inline]
    pub(crate) fn admits(self, access: Access) -> bool {
        match (self, access) {
            (ClassTag::Exclusive, Access::Exclusive | Access::Shared) => true,
            (ClassTag::Cumulative, Access::Permits(n)) => n > 0,
            (ClassTag::Channel, Access::Send | Access::Receive) => true,
            _ => false,
        }
    }
}

/// How a holder holds, or a waiter wants, a resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Access {
    /// A mutex guard or a write guard.
    Exclusive,
    /// A read guard.
    Shared,
    /// Semaphore permits.
    Permits(u32),
    /// A channel's sending side: held by the tasks holding senders; waited
    /// on by a sender blocked on a full channel, which waits for the receiver.
    Send,
    /// A channel's receiving side: held by the receiver's task; waited on by
    /// a receiver on an empty channel, which waits for the senders' tasks.
    Receive,
}

impl Access {
    /// Whether a waiter wanting `self` waits for a holder holding `held`.
    /// A receiver waits for the senders and a blocked sender for the
    /// receiver; on locks and semaphores every holder blocks every waiter.
    pub fn waits_for(self, held: Access) -> bool {
        match (self, held) {
            (Access::Receive, held) => held == Access::Send,
            (Access::Send, held) => held == Access::Receive,
            (_, Access::Send | Access::Receive) => false,
            _ => true,
        }
    }
}

/// Which task a holder or waiter is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TaskRef {
    /// A task spawned through TurboWish, by its TurboWish id (as
    /// [`Owner::Task`](crate::task::Owner::Task)).
    Task(u64),
    /// Another tokio task, by tokio id (as
    /// [`Owner::TokioTask`](crate::task::Owner::TokioTask)).
    TokioTask(u64),
    /// Code outside any task (`main`, a plain thread, `block_on`), by a
    /// process-unique number of the thread (threads are distinct parties:
    /// two of them waiting on each other's locks is no single task's wait).
    Thread(u64),
}

impl TaskRef {
    pub(crate) fn current() -> TaskRef {
        if let Some(id) = registry::current_task_id() {
            return TaskRef::Task(id);
        }
        match tokio::task::try_id() {
            Some(id) => TaskRef::TokioTask(turbowish_alloc::tokio_task_number(id)),
            None => TaskRef::Thread(thread_number()),
        }
    }

    /// A human name: the task's name, `tokio task N`, or `main/thread`.
    pub fn name(&self) -> String {
        match *self {
            TaskRef::Task(id) => {
                registry::task_name(id).unwrap_or_else(|| format!("task #{id} (ended)"))
            }
            TaskRef::TokioTask(id) => format!("tokio task {id}"),
            TaskRef::Thread(n) => format!("thread #{n} (outside tasks)"),
        }
    }
}

/// A number for the current thread, assigned on first use; never reused.
/// (`std::thread::ThreadId::as_u64` is unstable.)
fn thread_number() -> u64 {
    use std::cell::Cell;
    use std::sync::atomic::AtomicU64;
    static NEXT: AtomicU64 = AtomicU64::new(1);
    thread_local! {
        static NUMBER: Cell<u64> = const { Cell::new(0) };
    }
    NUMBER.with(|n| {
        if n.get() == 0 {
            n.set(NEXT.fetch_add(1, Ordering::Relaxed));
        }
        n.get()
    })
}

/// One holder or waiter, as recorded.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Record {
    task: TaskRef,
    frames: FramePath,
    location: &'static Location<'static>,
    since: u64,
    access: Access,
    movable: bool,
}

impl Record {
    pub(crate) fn now(
        location: &'static Location<'static>,
        access: Access,
        movable: bool,
    ) -> Record {
        Record {
            task: TaskRef::current(),
            frames: current_path(),
            location,
            since: now_ns(),
            access,
            movable,
        }
    }
}

/// Where a holder's record sits, to clear it on release.
#[derive(Debug, Clone, Copy)]
pub(crate) enum HolderSlot {
    Named(usize),
    Extra,
}

#[derive(Debug, Default)]
struct Table {
    holders: [Option<Record>; HOLDER_SLOTS],
    extra_holders: usize,
    waiters: Vec<(u64, Record)>,
    next_waiter: u64,
}

/// The shared, recorded side of one resource.
#[derive(Debug)]
pub(crate) struct ResourceState {
    id: u64,
    kind: ResourceKind,
    class: ClassTag,
    name: Option<Cow<'static, str>>,
    location: &'static Location<'static>,
    /// Total units of a cumulative resource (a semaphore's permits;
    /// `usize::MAX`: not cumulative); grows with `add_permits`.
    permits: std::sync::atomic::AtomicUsize,
    table: SpinLock<Table>,
    /// Where the lock itself was last seen (`&self` of a lock, acquire or
    /// try call), and where the `Arc` block holding it would start: what a
    /// pointer in a task's state to the lock, or to the `Arc` owning it,
    /// holds (see [`crate::ownership`]). 0 until first used; channels keep
    /// 0 (their ends carry marks instead).
    home: std::sync::atomic::AtomicUsize,
    arc_home: std::sync::atomic::AtomicUsize,
}

impl ResourceState {
    pub(crate) fn new(
        kind: ResourceKind,
        name: Option<Cow<'static, str>>,
        location: &'static Location<'static>,
        class: Class,
    ) -> Arc<ResourceState> {
        let _internal = turbowish_alloc::internal();
        let id = NEXT_ID.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let (class, permits) = match class {
            Class::Exclusive => (ClassTag::Exclusive, None),
            Class::Cumulative { capacity } => (ClassTag::Cumulative, Some(capacity)),
            Class::Channel => (ClassTag::Channel, None),
        };
        let state = Arc::new(ResourceState {
            id,
            kind,
            class,
            name,
            location,
            permits: std::sync::atomic::AtomicUsize::new(permits.unwrap_or(usize::MAX)),
            table: SpinLock::new(Table::default()),
            home: std::sync::atomic::AtomicUsize::new(0),
            arc_home: std::sync::atomic::AtomicUsize::new(0),
        });
        RESOURCES.insert(id, Arc::downgrade(&state));
        state
    }

    /// The resource's process-unique id.
    pub(crate) fn id(&self) -> u64 {
        self.id
    }

    pub(crate) fn kind(&self) -> ResourceKind {
        self.kind
    }

    pub(crate) fn class_tag(&self) -> ClassTag {
        self.class
    }

    pub(crate) fn location(&self) -> &'static Location<'static> {
        self.location
    }

    /// The class, with the capacity now.
    pub(crate) fn class(&self) -> Class {
        match self.class {
            ClassTag::Exclusive => Class::Exclusive,
            ClassTag::Cumulative => Class::Cumulative {
                capacity: self.permits.load(Ordering::Relaxed),
            },
            ClassTag::Channel => Class::Channel,
        }
    }

    /// The resource's name, or its creation location when it has none.
    pub(crate) fn name(&self) -> Cow<'_, str> {
        match &self.name {
            Some(name) => Cow::Borrowed(name),
            None => Cow::Owned(format!("{}:{}", self.location.file(), self.location.line())),
        }
    }

    fn table(&self) -> SpinGuard<'_, Table> {
        self.table.lock()
    }

    /// Records the calling task as a new holder. Never allocates.
    ///
    /// The record is written in place, its frame path copied straight from
    /// the thread's frame stack into the table: building a `Record` and
    /// moving it in cost two copies of its ~150 bytes on every lock, a
    /// fifth of the instrumented mutex's extra instructions (callgrind).
    #[inline]
    pub(crate) fn hold(
        &self,
        location: &'static Location<'static>,
        access: Access,
        movable: bool,
    ) -> HolderSlot {
        let task = TaskRef::current();
        let since = now_ns();
        let mut table = self.table();
        match table.holders.iter().position(Option::is_none) {
            Some(i) => {
                let record = table.holders[i].insert(Record {
                    task,
                    frames: FramePath::default(),
                    location,
                    since,
                    access,
                    movable,
                });
                fill_path(&mut record.frames);
                HolderSlot::Named(i)
            }
            None => {
                table.extra_holders += 1;
                HolderSlot::Extra
            }
        }
    }

    /// Records `task` as the holder of a task resource (what awaiting its
    /// `JoinHandle` waits for): the task itself, since it was spawned.
    pub(crate) fn hold_for_task(
        &self,
        task: TaskRef,
        location: &'static Location<'static>,
    ) -> HolderSlot {
        let record = Record {
            task,
            frames: FramePath::default(),
            location,
            since: now_ns(),
            access: Access::Exclusive,
            movable: false,
        };
        let mut table = self.table();
        match table.holders.iter().position(Option::is_none) {
            Some(i) => {
                table.holders[i] = Some(record);
                HolderSlot::Named(i)
            }
            None => {
                table.extra_holders += 1;
                HolderSlot::Extra
            }
        }
    }

    /// Sets the units of a cumulative resource (what tokio reports of a
    /// semaphore it creates).
    #[cfg_attr(
        not(all(feature = "tokio-resources", tokio_unstable)),
        allow(dead_code)
    )]
    pub(crate) fn set_permits(&self, n: usize) {
        if self.class == ClassTag::Cumulative {
            self.permits.store(n, Ordering::Relaxed);
        }
    }

    /// Counts `n` more holders without naming them (holders tokio's
    /// instrumentation does not name).
    #[cfg_attr(
        not(all(feature = "tokio-resources", tokio_unstable)),
        allow(dead_code)
    )]
    pub(crate) fn add_unnamed(&self, n: usize) {
        self.table().extra_holders += n;
    }

    /// Counts `n` fewer unnamed holders.
    #[cfg_attr(
        not(all(feature = "tokio-resources", tokio_unstable)),
        allow(dead_code)
    )]
    pub(crate) fn remove_unnamed(&self, n: usize) {
        let mut table = self.table();
        table.extra_holders = table.extra_holders.saturating_sub(n);
    }

    /// Records permits added to a semaphore.
    pub(crate) fn add_permits(&self, n: usize) {
        self.permits.fetch_add(n, Ordering::Relaxed);
    }

    /// Records permits taken out of a semaphore for good.
    pub(crate) fn remove_permits(&self, n: usize) {
        // Saturating: `fetch_sub` could wrap into the "not a semaphore"
        // sentinel, `usize::MAX`.
        let _ = self
            .permits
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |p| {
                Some(p.saturating_sub(n))
            });
    }

    /// Re-records an existing holder (a sender used by another task).
    pub(crate) fn update(&self, slot: HolderSlot, record: Record) {
        if let HolderSlot::Named(i) = slot {
            self.table().holders[i] = Some(record);
        }
    }

    pub(crate) fn release(&self, slot: HolderSlot) {
        let mut table = self.table();
        match slot {
            HolderSlot::Named(i) => table.holders[i] = None,
            HolderSlot::Extra => table.extra_holders = table.extra_holders.saturating_sub(1),
        }
    }

    /// Records a waiter (the contended path; may allocate). Returns its key.
    pub(crate) fn wait(&self, record: Record) -> u64 {
        let _internal = turbowish_alloc::internal();
        let mut table = self.table();
        table.next_waiter += 1;
        let key = table.next_waiter;
        table.waiters.push((key, record));
        key
    }

    pub(crate) fn stop_waiting(&self, key: u64) {
        let _internal = turbowish_alloc::internal();
        self.table().waiters.retain(|(k, _)| *k != key);
    }

    /// Notes where the lock `owner` (the wrapper holding this state) lives
    /// now. Two relaxed stores to a line the caller is about to touch
    /// anyway; a lock is not moved while borrowed, and one inside an `Arc`
    /// never moves.
    #[inline]
    pub(crate) fn note_home<L>(&self, owner: &L) {
        let addr = owner as *const L as usize;
        // `ArcInner` is `repr(C)`: two counters, then the value at its
        // alignment.
        let offset = (2 * size_of::<usize>()).next_multiple_of(align_of::<L>());
        self.home.store(addr, Ordering::Relaxed);
        self.arc_home
            .store(addr.wrapping_sub(offset), Ordering::Relaxed);
    }

    /// The record's address: what marks encode.
    pub(crate) fn record_addr(&self) -> usize {
        self as *const ResourceState as usize
    }

    fn info(&self) -> ResourceInfo {
        let now = now_ns();
        // What tokio's instrumentation reports is its own kind of record:
        // the task that was current at tokio's event, no place in its code.
        let provenance = match self.kind {
            ResourceKind::Tokio(_) => Provenance::Tokio,
            _ => Provenance::Recorded,
        };
        let party = |r: &Record| Party {
            task: r.task,
            task_name: r.task.name(),
            frames: r.frames,
            location: r.location,
            since: Duration::from_nanos(now.saturating_sub(r.since)),
            access: r.access,
            movable: r.movable,
            parked_in: None,
            provenance: provenance.clone(),
            slot: None,
        };
        let holder = |(slot, r): (usize, &Record)| Party {
            parked_in: match r.task {
                TaskRef::Task(id) => registry::parked_path(id),
                _ => None,
            },
            slot: Some(slot),
            ..party(r)
        };
        // Copy the records out and name their tasks after unlocking: naming
        // allocates and takes the task registry's lock, which must not
        // lengthen every lock/unlock's spin on this table.
        let table = self.table();
        let named = table.holders;
        let recorded = table.waiters.clone();
        let extra_holders = table.extra_holders;
        drop(table);
        let holders = named
            .iter()
            .enumerate()
            .filter_map(|(i, r)| r.as_ref().map(|r| holder((i, r))))
            .collect();
        let waiters = recorded.iter().map(|(_, r)| party(r)).collect();
        ResourceInfo {
            id: self.id,
            kind: self.kind,
            name: self.name().into_owned(),
            location: self.location,
            holders,
            extra_holders,
            waiters,
            permits: match self.permits.load(Ordering::Relaxed) {
                usize::MAX => None,
                n => Some(n),
            },
            owners: Vec::new(),
        }
    }
}

impl Drop for ResourceState {
    fn drop(&mut self) {
        let _internal = turbowish_alloc::internal();
        RESOURCES.remove(&self.id);
    }
}

/// The lock around a resource's record table. A spin lock rather than
/// `std::sync::Mutex`: every acquisition of the instrumented resource takes
/// it twice (record the holder, clear it), its critical sections are a few
/// stores, and acquiring it costs one atomic swap and releasing it a plain
/// store, where `std`'s mutex costs two locked instructions a round trip
/// (measured: the uncontended lock+unlock bench went from 1.76x tokio's time
/// to the figure in the README).
#[derive(Debug)]
struct SpinLock<T> {
    locked: AtomicBool,
    value: UnsafeCell<T>,
}

// SAFETY: the value is only reached through a `SpinGuard`, and `locked`
// admits one guard at a time, so sharing the lock shares `T` as a `Mutex`
// would: `T: Send` suffices.
unsafe impl<T: Send> Sync for SpinLock<T> {}

impl<T> SpinLock<T> {
    fn new(value: T) -> SpinLock<T> {
        SpinLock {
            locked: AtomicBool::new(false),
            value: UnsafeCell::new(value),
        }
    }

    fn lock(&self) -> SpinGuard<'_, T> {
        let mut spins = 0u32;
        while self.locked.swap(true, Ordering::Acquire) {
            spins += 1;
            if spins.is_multiple_of(64) {
                // The holder may have been preempted: let it run.
                std::thread::yield_now();
            } else {
                std::hint::spin_loop();
            }
        }
        SpinGuard { lock: self }
    }
}

struct SpinGuard<'a, T> {
    lock: &'a SpinLock<T>,
}

impl<T> std::ops::Deref for SpinGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: this guard is the only one (see `SpinLock::lock`).
        unsafe { &*self.lock.value.get() }
    }
}

impl<T> std::ops::DerefMut for SpinGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: this guard is the only one (see `SpinLock::lock`).
        unsafe { &mut *self.lock.value.get() }
    }
}

impl<T> Drop for SpinGuard<'_, T> {
    fn drop(&mut self) {
        self.lock.locked.store(false, Ordering::Release);
    }
}

/// The kinds of handle a mark word says it sits in. Each has its own
/// constant, whose top 16 bits no user-space address has, XORed with the
/// address of the resource's record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum MarkKind {
    /// An owned guard or permit.
    Guard,
    /// A channel's sending end.
    Sender,
    /// A channel's receiving end.
    Receiver,
    /// A lock or semaphore itself (found inside the `Arc` block owning it).
    Lock,
    /// A `JoinHandle` being awaited: a handle to its task resource.
    Join,
}

const GUARD_MAGIC: usize = 0x7E57 << (usize::BITS - 16);
const SENDER_MAGIC: usize = 0x7E58 << (usize::BITS - 16);
const RECEIVER_MAGIC: usize = 0x7E59 << (usize::BITS - 16);
const LOCK_MAGIC: usize = 0x7E5A << (usize::BITS - 16);
const JOIN_MAGIC: usize = 0x7E5B << (usize::BITS - 16);
/// Tags an end's slot word, so a mark followed by arbitrary data is not
/// taken for an end.
const SLOT_MAGIC: usize = 0x51D7 << (usize::BITS - 16);

impl MarkKind {
    fn magic(self) -> usize {
        match self {
            MarkKind::Guard => GUARD_MAGIC,
            MarkKind::Sender => SENDER_MAGIC,
            MarkKind::Receiver => RECEIVER_MAGIC,
            MarkKind::Lock => LOCK_MAGIC,
            MarkKind::Join => JOIN_MAGIC,
        }
    }
}

/// A word inside every owned guard and permit, and inside every lock, that
/// lets the walker recognise it inside opaque memory (a task's future, a
/// block only a conservative scan reaches): the address of the resource's
/// record XORed with its kind's constant. Cleared when dropped, so a
/// dropped handle's bytes are not taken for a live one (a moved-from copy
/// keeps its mark; the walker only believes marks of resources that are
/// live, and for guards held, now).
#[derive(Debug)]
pub(crate) struct Mark(usize);

impl Mark {
    pub(crate) fn new(kind: MarkKind, state: &ResourceState) -> Mark {
        Mark(kind.magic() ^ state.record_addr())
    }
}

impl Drop for Mark {
    fn drop(&mut self) {
        // SAFETY: `self.0` is a valid, aligned `usize` we own. Volatile, so
        // the store to memory about to die is not optimised away.
        unsafe { std::ptr::write_volatile(&mut self.0, 0) };
    }
}

/// The two words inside every channel end: its [`Mark`], then the slot of
/// its holder record (tagged), so the walker knows which of the channel's
/// holders a found end is. `repr(C)` keeps the two adjacent and in order.
#[derive(Debug)]
#[repr(C)]
pub(crate) struct EndMark {
    mark: Mark,
    slot: usize,
}

impl EndMark {
    pub(crate) fn new(kind: MarkKind, state: &ResourceState, slot: HolderSlot) -> EndMark {
        let index = match slot {
            HolderSlot::Named(i) => i + 1,
            HolderSlot::Extra => 0,
        };
        EndMark {
            mark: Mark::new(kind, state),
            slot: SLOT_MAGIC ^ index,
        }
    }
}

/// What a word of memory marks, if it looks like a [`Mark`]: the kind and
/// the record address.
#[inline]
pub(crate) fn marked(word: usize) -> Option<(MarkKind, usize)> {
    let kind = match word >> (usize::BITS - 16) {
        0x7E57 => MarkKind::Guard,
        0x7E58 => MarkKind::Sender,
        0x7E59 => MarkKind::Receiver,
        0x7E5A => MarkKind::Lock,
        0x7E5B => MarkKind::Join,
        _ => return None,
    };
    let addr = word ^ kind.magic();
    (addr != 0).then_some((kind, addr))
}

/// The holder slot an end's second word names: `Some(Some(i))` for named
/// slot `i`, `Some(None)` for a counted (unnamed) holder, `None` when the
/// word is not an end's slot word.
#[inline]
pub(crate) fn marked_slot(word: usize) -> Option<Option<usize>> {
    let index = word ^ SLOT_MAGIC;
    match index {
        0 => Some(None),
        i if i <= HOLDER_SLOTS => Some(Some(i - 1)),
        _ => None,
    }
}

/// Every live resource, as the walker looks its handles up: by record
/// address (what marks encode) and by where its lock was last seen.
#[derive(Debug)]
pub(crate) struct LiveResources {
    /// Record address -> (id, kind, occupied named holder slots as bits).
    pub(crate) by_record: std::collections::HashMap<usize, (u64, ResourceKind, u32)>,
    /// Names of the resources held now (a named or a counted holder), by
    /// id: only their guards' marks count.
    pub(crate) held: std::collections::HashMap<u64, String>,
    /// Sorted (address, id): a lock's `home` and `arc_home`.
    pub(crate) homes: Vec<(usize, u64)>,
    /// One bit per 16-byte granule modulo [`HOME_FILTER_BITS`], set for
    /// each home: a scan tests every word of every cell (and, in a heap
    /// walk, of the heap) against the homes, and most words are pointers
    /// that are no home; one bit test turns them away before a binary
    /// search.
    home_filter: [u64; HOME_FILTER_BITS / 64],
}

/// Bits in [`LiveResources::home_filter`]: 512 bytes, with a few hundred
/// locks a few percent of other pointers pass.
const HOME_FILTER_BITS: usize = 4096;

impl Default for LiveResources {
    fn default() -> LiveResources {
        LiveResources::new()
    }
}

impl LiveResources {
    fn new() -> LiveResources {
        LiveResources {
            by_record: Default::default(),
            held: Default::default(),
            homes: Vec::new(),
            home_filter: [0; HOME_FILTER_BITS / 64],
        }
    }

    #[inline]
    fn filter_bit(addr: usize) -> (usize, u64) {
        let bit = (addr >> 4) % HOME_FILTER_BITS;
        (bit / 64, 1 << (bit % 64))
    }

    /// The resource a lock pointer (to the lock, or to the `Arc` block
    /// owning it) names.
    #[inline]
    pub(crate) fn home(&self, word: usize) -> Option<u64> {
        let (at, bit) = Self::filter_bit(word);
        if self.home_filter[at] & bit == 0 {
            return None;
        }
        self.homes
            .binary_search_by_key(&word, |&(a, _)| a)
            .ok()
            .map(|i| self.homes[i].1)
    }
}

/// The live resources now, for looking handles up.
pub(crate) fn live_resources() -> LiveResources {
    let _internal = turbowish_alloc::internal();
    let live: Vec<Arc<ResourceState>> = RESOURCES
        .iter()
        .filter_map(|r| r.value().upgrade())
        .collect();
    let mut out = LiveResources::new();
    for r in &live {
        let (occupied, extra) = {
            let table = r.table();
            let occupied = table
                .holders
                .iter()
                .enumerate()
                .filter(|(_, h)| h.is_some())
                .fold(0u32, |bits, (i, _)| bits | 1 << i);
            (occupied, table.extra_holders)
        };
        if occupied != 0 || extra > 0 {
            out.held.insert(r.id, r.name().into_owned());
        }
        out.by_record
            .insert(r.record_addr(), (r.id, r.kind, occupied));
        for home in [&r.home, &r.arc_home] {
            let addr = home.load(Ordering::Relaxed);
            if addr != 0 {
                out.homes.push((addr, r.id));
            }
        }
    }
    out.homes.sort_unstable();
    out.homes.dedup_by_key(|h| h.0);
    for &(addr, _) in &out.homes {
        let (at, bit) = LiveResources::filter_bit(addr);
        out.home_filter[at] |= bit;
    }
    out
}

/// A holder or waiter of a resource, in [`ResourceInfo`].
#[derive(Debug, Clone)]
pub struct Party {
    /// Which task.
    pub task: TaskRef,
    /// The task's name (see [`TaskRef::name`]).
    pub task_name: String,
    /// The frame path inside the task when it acquired or started waiting.
    pub frames: FramePath,
    /// Where it acquired or started waiting.
    pub location: &'static Location<'static>,
    /// How long it has held or waited.
    pub since: Duration,
    /// How it holds or what it waits for.
    pub access: Access,
    /// Whether the guard can move to another task (an owned guard or
    /// permit): the holder recorded is the task that acquired it.
    pub movable: bool,
    /// For a holder that is a TurboWish task: the frame path it is parked
    /// in now (where its last poll returned `Pending`), which names the
    /// future a held lock is waiting on; `None` when unknown or outside
    /// frames.
    pub parked_in: Option<FramePath>,
    /// Where this holder comes from: the record of who took, created or
    /// last used the handle, or the task whose state owns it (found by
    /// [`crate::ownership`]), or what tokio's instrumentation reported.
    /// Waiters are recorded, or reported by tokio.
    pub provenance: Provenance,
    /// For a holder: its record's slot in the resource's table, which the
    /// handle that holds it carries (see [`crate::ownership`]). `None` for
    /// waiters and for holders named by ownership.
    pub slot: Option<usize>,
}

/// Where a holder in [`ResourceInfo::holders`] comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Provenance {
    /// Recorded when the guard was taken, or the channel end created,
    /// cloned or last used: the fallback, right for guards, stale for a
    /// channel end moved into another task and not used there yet.
    Recorded,
    /// The task's state owns the handle, found by the walker at `path`
    /// (`future state +0x28`, or a field path when traced precisely).
    Owns {
        /// Where in the task's state the handle is.
        path: String,
    },
    /// Reported by tokio's own instrumentation (a [`ResourceKind::Tokio`]
    /// resource): the task that was current when tokio reported the lock
    /// taken, or the wait begun. tokio does not say where in the task's
    /// code, so [`Party::location`] means nothing here (the frames still
    /// say which future).
    Tokio,
}

/// One resource of the wait-for graph: see [`crate::sync::resources`].
#[derive(Debug, Clone)]
pub struct ResourceInfo {
    /// Process-unique id.
    pub id: u64,
    /// What kind of resource.
    pub kind: ResourceKind,
    /// Its name, or its creation location when unnamed.
    pub name: String,
    /// Where it was created.
    pub location: &'static Location<'static>,
    /// Holders, each named (up to 8).
    pub holders: Vec<Party>,
    /// Further holders, counted only.
    pub extra_holders: usize,
    /// Waiters, oldest first.
    pub waiters: Vec<Party>,
    /// Total permits, for a semaphore.
    pub permits: Option<usize>,
    /// The tasks whose state owns a handle to this resource (a sender, the
    /// receiver, an `Arc` to the lock, a guard), as the walker found them;
    /// empty until [`crate::ownership::apply`] fills it.
    pub owners: Vec<crate::ownership::HandleOwner>,
}

/// The wait-for graph now: every live instrumented resource with its holders
/// and waiters. Analyse it with [`crate::chains`] and [`crate::chains::cycles`].
///
/// A resource is listed until its last reference goes. While this runs it
/// holds a reference to each resource it lists, so a resource dropped on
/// another thread meanwhile leaves the graph when this call returns, not
/// at its owner's drop.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let lock = turbowish_trace::sync::Mutex::new_named("config", 0);
/// let _guard = lock.lock().await;
/// let graph = turbowish_trace::sync::resources();
/// let config = graph.iter().find(|r| r.name == "config").unwrap();
/// assert_eq!(config.holders.len(), 1);
/// # }
/// ```
pub fn resources() -> Vec<ResourceInfo> {
    let _internal = turbowish_alloc::internal();
    let live: Vec<Arc<ResourceState>> = RESOURCES
        .iter()
        .filter_map(|r| r.value().upgrade())
        .collect();
    let mut infos: Vec<ResourceInfo> = live.iter().map(|r| r.info()).collect();
    infos.sort_by_key(|r| r.id);
    infos
}

/// Monotonic nanoseconds, from the coarse clock where there is one: a lock
/// records a time on every acquisition, and "held since 2.1 s" needs no
/// better than milliseconds.
fn now_ns() -> u64 {
    #[cfg(target_os = "linux")]
    {
        let mut ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: `ts` is a valid, writable timespec; CLOCK_MONOTONIC_COARSE
        // exists on every Linux since 2.6.32.
        if unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC_COARSE, &mut ts) } == 0 {
            return ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64;
        }
    }
    static START: LazyLock<std::time::Instant> = LazyLock::new(std::time::Instant::now);
    START.elapsed().as_nanos() as u64
}
