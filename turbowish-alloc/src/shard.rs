//! Per-thread batching of counter updates: the allocator's hot path.
//!
//! An atomic read-modify-write costs about 4.5 ns on this project's machines
//! (measured: four relaxed `fetch_add`s turn a 4.9 ns malloc+free pair into
//! 22.9 ns), so the hot path does none. Each thread owns a [`Shard`] in a
//! static array and adds its current task's allocations and frees to it with
//! plain loads and stores (single writer; the atomics only make the values
//! readable by `stats()` on other threads). The batch is flushed into the
//! task's [`Record`] with real atomic adds when the thread switches to another
//! task, when the batch's net growth passes [`FLUSH_BYTES`], and at thread
//! exit. Frees of another task's blocks go straight to that task's record.
//!
//! Readers add every shard's batch to the records, so counts are exact at any
//! quiescent moment. A flush, or a batch moving to another record, racing with
//! a reader is detected with a per-shard sequence number (a seqlock) and the
//! read is retried. Single allocations and frees do not touch the sequence
//! number (that would double the hot path's stores); readers instead read a
//! record and then the batches for it, frees before allocations, so that a
//! block allocated and freed during the read is at worst counted as still
//! live, never freed without having been allocated (see
//! [`read_consistent`]).

use core::cell::Cell;
use core::sync::atomic::{
    fence, AtomicBool, AtomicI64, AtomicU32, AtomicU64, AtomicUsize, Ordering,
};

use crate::record::{self, Record, FIRST_TASK_SLOT, INTERNAL, OFF, OVERFLOW, UNTRACKED};

/// A batch that has grown this many net bytes is flushed, which bounds how
/// stale the global peak can be (see [`crate::Counters::peak_live_bytes`]).
pub(crate) const FLUSH_BYTES: i64 = 1 << 20;

/// Threads that can batch at once. Threads beyond this (or a thread that has
/// passed its exit) update records directly: correct, only slower.
pub(crate) const MAX_SHARDS: usize = 1024;

/// `Shard::slot` value when the shard batches for no record.
const NO_SLOT: u32 = u32::MAX;

/// "Who" key of allocations outside any task. Zero, which is also the
/// context key meaning "no context" and never a tokio task id (those are
/// non-zero), so `current_key` needs no separate "none" case.
const UNTRACKED_KEY: u64 = 0;
/// `Local::batch_key` when no batch is open: matches no "who" key.
const NO_BATCH: u64 = u64::MAX;
/// "Who" key inside `internal()`.
const INTERNAL_KEY: u64 = record::BUCKET_BIT | INTERNAL as u64;

/// One thread's batch.
#[repr(C, align(128))]
#[derive(Debug)]
pub(crate) struct Shard {
    in_use: AtomicBool,
    /// The record this batch belongs to. Changed only inside a seqlock write
    /// section (see [`Shard::publish_slot`]).
    slot: AtomicU32,
    /// Odd while a flush, or a change of `slot`, is in progress.
    seq: AtomicU32,
    alloc_bytes: AtomicU64,
    alloc_blocks: AtomicU64,
    free_bytes: AtomicU64,
    free_blocks: AtomicU64,
    /// Highest `alloc_bytes - free_bytes` reached in this batch.
    peak_net: AtomicI64,
    /// Global live-bytes change not yet added to `GLOBAL_LIVE`: published
    /// once it reaches `FLUSH_BYTES` either way, so that switching tasks
    /// touches no cache line shared by all threads.
    unpublished: AtomicI64,
    /// This thread's allocations and frees charged to the `internal` bucket
    /// (TurboWish's bookkeeping), kept apart from the task batch so that
    /// bookkeeping inside a task's poll neither flushes the task's batch nor
    /// contends on the bucket's record. Cumulative; folded into the record
    /// only when the thread exits.
    internal: [AtomicU64; 4],
    /// Non-zero while the owning thread frees a block registered in
    /// heap-walk mode (see `crate::registry`): a heap view waits for it to
    /// drop to zero after pausing frees. Single writer.
    in_free: AtomicU32,
}

/// Indices into `Shard::internal`.
const IA_BYTES: usize = 0;
const IA_BLOCKS: usize = 1;
const IF_BYTES: usize = 2;
const IF_BLOCKS: usize = 3;

/// The frees a shard's batch holds, and the record it is for (see
/// [`read_consistent`]).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Frees {
    pub(crate) slot: u32,
    pub(crate) bytes: u64,
    pub(crate) blocks: u64,
    /// Frees in the shard's `internal` mini-batch.
    pub(crate) internal_bytes: u64,
    pub(crate) internal_blocks: u64,
}

/// The allocations a shard's batch holds, and the record it is for.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Allocs {
    pub(crate) slot: u32,
    pub(crate) bytes: u64,
    pub(crate) blocks: u64,
    pub(crate) peak_net: i64,
    /// Allocations in the shard's `internal` mini-batch.
    pub(crate) internal_bytes: u64,
    pub(crate) internal_blocks: u64,
}

static SHARDS: [Shard; MAX_SHARDS] = [const { Shard::new() }; MAX_SHARDS];
/// One past the highest shard index ever claimed: readers scan no further.
static SHARDS_HIGH: AtomicUsize = AtomicUsize::new(0);

/// Global live bytes as of the last flush of every shard, and its peak.
static GLOBAL_LIVE: AtomicI64 = AtomicI64::new(0);
static GLOBAL_PEAK: AtomicU64 = AtomicU64::new(0);

/// Global switch (see [`crate::set_enabled`]).
pub(crate) static ENABLED: AtomicBool = AtomicBool::new(true);

/// What the allocator keeps per thread. Const-initialised and without `Drop`,
/// so it is usable at any time: before `main`, inside TLS destructors and
/// during thread exit, without lazy initialisation that might allocate.
#[derive(Debug)]
pub(crate) struct Local {
    /// This thread's shard when the hot path may use it, else null (no shard
    /// claimed yet, thread exited, or `busy`). One load and test decides
    /// between the hot path and `on_alloc_cold`.
    hot: Cell<*const Shard>,
    /// This thread's claimed shard: null before the first allocation,
    /// [`dead()`] after thread exit or when no shard was free.
    shard: Cell<*const Shard>,
    /// Re-entrancy guard: set while TurboWish runs code that may allocate.
    busy: Cell<bool>,
    /// Whether `tokio::task::try_id()` has run once on this thread (the
    /// first call may allocate; later ones never do).
    tokio_warm: Cell<bool>,
    /// The task context set by `context::enter` (key 0: none).
    pub(crate) context_slot: Cell<u32>,
    pub(crate) context_key: Cell<u64>,
    /// Whose allocations the shard's current batch holds ([`NO_BATCH`]:
    /// none) and the slot they are charged to. A "who" key is a context's
    /// owner key, a tokio task id, or [`UNTRACKED_KEY`].
    batch_key: Cell<u64>,
    batch_slot: Cell<u32>,
    /// Bytes left until this thread's next sampled allocation (see
    /// `crate::sample`). Starts at 0, so the first allocation takes the
    /// sampling cold path, which sets the thread's sampler up.
    pub(crate) sample_left: Cell<i64>,
    /// Whether the cold path has set this thread's sampler up.
    pub(crate) sample_ready: Cell<bool>,
    /// This thread's sampling PRNG state (xorshift64*; never 0 once set up).
    pub(crate) sample_rng: Cell<u64>,
    /// Heap-walk mode: this thread's lists of free registry indices (linked
    /// through the entries, 0 ends a list) and their lengths (see
    /// `crate::registry`).
    pub(crate) reg_free: Cell<u32>,
    pub(crate) reg_free_len: Cell<u32>,
    pub(crate) reg_spare: Cell<u32>,
    pub(crate) reg_spare_len: Cell<u32>,
    /// This thread's stack, lowest and highest address (0, 0: unknown), for
    /// the sampler's fast unwinder.
    pub(crate) stack_low: Cell<usize>,
    pub(crate) stack_high: Cell<usize>,
}

thread_local! {
    pub(crate) static LOCAL: Local = const {
        Local {
            hot: Cell::new(core::ptr::null()),
            shard: Cell::new(core::ptr::null()),
            busy: Cell::new(false),
            tokio_warm: Cell::new(false),
            context_slot: Cell::new(0),
            context_key: Cell::new(0),
            batch_key: Cell::new(NO_BATCH),
            batch_slot: Cell::new(NO_SLOT),
            sample_left: Cell::new(0),
            sample_ready: Cell::new(false),
            sample_rng: Cell::new(0),
            reg_free: Cell::new(0),
            reg_free_len: Cell::new(crate::registry::UNHOOKED),
            reg_spare: Cell::new(0),
            reg_spare_len: Cell::new(0),
            stack_low: Cell::new(0),
            stack_high: Cell::new(0),
        }
    };
}

fn dead() -> *const Shard {
    core::ptr::dangling()
}

impl Local {
    /// Sets or clears the re-entrancy guard and returns the previous value.
    /// It also recomputes `hot`, so that the hot path's one null test covers
    /// "busy" as well as "no shard".
    fn set_busy(&self, busy: bool) -> bool {
        let was = self.busy.replace(busy);
        let shard = self.shard.get();
        let usable = !busy && !shard.is_null() && shard != dead();
        self.hot.set(if usable { shard } else { core::ptr::null() });
        was
    }
}

/// Charges an allocation of `size` bytes to the current task and returns the
/// tag to write in its header.
#[inline(always)]
pub(crate) fn on_alloc(size: usize) -> u32 {
    if !ENABLED.load(Ordering::Relaxed) {
        return OFF;
    }
    let local = local();
    let shard = local.hot.get();
    if shard.is_null() {
        return on_alloc_cold(local, size);
    }
    // SAFETY: a non-null `hot` points into the static SHARDS array, at the
    // shard this thread claimed and alone writes.
    let shard = unsafe { &*shard };
    let key = local.current_key();
    if key != local.batch_key.get() {
        return switch_and_alloc(local, shard, key, size);
    }
    shard.add_alloc(size as u64);
    local.batch_slot.get()
}

/// Charges the free of a block of `size` bytes tagged `tag`.
#[inline(always)]
pub(crate) fn on_free(tag: u32, size: usize) {
    if tag == OFF {
        return;
    }
    let local = local();
    let shard = local.hot.get();
    if shard.is_null() {
        record::get(tag).add_free(size as u64);
        GLOBAL_LIVE.fetch_sub(size as i64, Ordering::Relaxed);
        return;
    }
    // SAFETY: as in `on_alloc`.
    let shard = unsafe { &*shard };
    if tag == local.batch_slot.get() {
        shard.add_free(size as u64);
    } else {
        free_foreign(local, shard, tag, size);
    }
}

/// [`on_alloc`] and the sampling countdown in one visit to the thread's
/// state: returns the tag and whether the countdown ran out (the allocation
/// may be sampled, see `crate::sample::on_due`). With `sampling` false (an
/// allocator built with `sample_interval(0)`) the countdown compiles away.
///
/// Allocations made while tagging is off are not sampled either, and do
/// not run the countdown: switched off, TurboWish records nothing new.
/// Nor are TurboWish's own (made under the re-entrancy guard): counting
/// them would move the sample they earned to the thread's next allocation,
/// whatever its size, with a weight computed for that size.
#[inline(always)]
pub(crate) fn on_alloc_sampled(size: usize, sampling: bool) -> (u32, bool) {
    if !ENABLED.load(Ordering::Relaxed) {
        return (OFF, false);
    }
    let local = local();
    let shard = local.hot.get();
    if shard.is_null() {
        let tag = on_alloc_cold(local, size);
        let due = sampling && !local.busy.get() && count_down(local, size);
        return (tag, due);
    }
    // SAFETY: as in `on_alloc`.
    let shard = unsafe { &*shard };
    let key = local.current_key();
    let tag = if key != local.batch_key.get() {
        switch_and_alloc(local, shard, key, size)
    } else {
        shard.add_alloc(size as u64);
        local.batch_slot.get()
    };
    // A non-null `hot` means the thread is not busy (see `Local::set_busy`).
    (tag, sampling && count_down(local, size))
}

/// Counts `size` bytes off the thread's sampling countdown; true when it
/// has run out. One subtract, store and compare.
#[inline(always)]
fn count_down(local: &Local, size: usize) -> bool {
    let left = local.sample_left.get().wrapping_sub(size as i64);
    local.sample_left.set(left);
    left <= 0
}

/// Sets the re-entrancy guard and returns its previous value, for
/// [`leave_busy`]: allocations made meanwhile are charged to `internal`
/// directly and are never sampled or registered. (A pair of calls rather
/// than a closure: the sampler finds its own frame by its function's
/// address, which a closure would hide.)
pub(crate) fn enter_busy() -> bool {
    local().set_busy(true)
}

/// Restores the re-entrancy guard saved by [`enter_busy`].
pub(crate) fn leave_busy(was: bool) {
    local().set_busy(was);
}

/// Whether the calling thread is inside TurboWish code that may allocate.
pub(crate) fn is_busy() -> bool {
    local().busy.get()
}

impl Local {
    /// Whether this thread is inside TurboWish code that may allocate.
    #[inline(always)]
    pub(crate) fn busy(&self) -> bool {
        self.busy.get()
    }

    /// Whether this thread has passed its exit destructor (or found no
    /// shard): it keeps nothing per thread any more.
    pub(crate) fn exiting(&self) -> bool {
        self.shard.get() == dead()
    }

    /// This thread's "freeing a registered block" counter, if it has a
    /// shard to keep it in (see [`wait_frees_done`]).
    #[inline(always)]
    pub(crate) fn in_free(&self) -> Option<&'static AtomicU32> {
        let shard = self.shard.get();
        if shard.is_null() || shard == dead() {
            return None;
        }
        // SAFETY: a claimed shard lives in the static SHARDS array.
        Some(&unsafe { &*shard }.in_free)
    }
}

/// In a child process just forked: zeroes the "freeing a registered block"
/// counters of every shard but the calling thread's. The threads that
/// raised them do not exist in the child, so their frees never finish.
pub(crate) fn clear_in_free_of_others() {
    let mine = local().in_free().map(|c| c as *const AtomicU32);
    let high = SHARDS_HIGH.load(Ordering::SeqCst);
    for shard in &SHARDS[..high] {
        if Some(&shard.in_free as *const AtomicU32) != mine {
            shard.in_free.store(0, Ordering::SeqCst);
        }
    }
}

/// Claims a shard for the calling thread if it never had one, so that its
/// exit runs `release_shard` (and so `crate::registry::thread_exit`).
/// Afterwards the thread has a shard or is `exiting` (none was free).
pub(crate) fn claim_for_exit_hook(local: &Local) {
    if local.shard.get().is_null() {
        claim_shard(local);
    }
}

/// Waits until no thread is inside a registered block's free (each shard's
/// `in_free` counter is zero). Frees started after the caller paused them
/// (see `crate::registry`) only pass through, so this ends.
pub(crate) fn wait_frees_done() {
    let high = SHARDS_HIGH.load(Ordering::SeqCst);
    for shard in &SHARDS[..high] {
        spin_until(|| shard.in_free.load(Ordering::SeqCst) == 0);
    }
}

/// Waits until `done()` holds, for a wait that other threads end within a
/// few instructions: spins, and every 64 tries lets the others run (the
/// thread awaited may have been preempted).
pub(crate) fn spin_until(mut done: impl FnMut() -> bool) {
    let mut spins = 0u32;
    while !done() {
        spins = spins.wrapping_add(1);
        if spins.is_multiple_of(64) {
            std::thread::yield_now();
        } else {
            core::hint::spin_loop();
        }
    }
}

/// This thread's [`Local`].
///
/// The hot path takes a plain reference instead of running its body inside
/// `LOCAL.with(..)`: rustc does not always inline that closure, and an
/// out-of-line call per `dealloc` measurably costs (callgrind: 21
/// instructions per free).
#[inline(always)]
pub(crate) fn local() -> &'static Local {
    let ptr: *const Local = LOCAL.with(|local| local as *const Local);
    // SAFETY: `LOCAL` is const-initialised and has no destructor, so its
    // storage is valid for the whole life of this thread and never torn
    // down while the thread runs; the reference is used only on this
    // thread, during the allocator call that took it (it is never stored),
    // and `Local` is `!Sync`, so it cannot reach another thread.
    unsafe { &*ptr }
}

/// A free whose tag is not the open batch's. Switching is lazy (done by the
/// first allocation after a task switch), so a poll that starts by freeing
/// its task's blocks lands here: open the current task's batch first, so
/// those frees are batched too rather than each paying two locked adds.
#[cold]
#[inline(never)]
fn free_foreign(local: &Local, shard: &Shard, tag: u32, size: usize) {
    if tag == INTERNAL {
        shard.add_internal_free(size as u64);
        return;
    }
    let key = local.current_key();
    if key != local.batch_key.get() && key != INTERNAL_KEY {
        switch_to(local, shard, key);
        if tag == local.batch_slot.get() {
            shard.add_free(size as u64);
            return;
        }
    }
    record::get(tag).add_free(size as u64);
    bump_i64(&shard.unpublished, -(size as i64));
}

impl Local {
    /// Owner key of the task allocations should be charged to now.
    #[inline(always)]
    fn current_key(&self) -> u64 {
        let key = self.context_key.get();
        if key != 0 {
            return key;
        }
        self.tokio_key()
    }

    #[cfg(feature = "tokio")]
    #[inline(always)]
    fn tokio_key(&self) -> u64 {
        if !self.tokio_warm.get() {
            return self.tokio_key_first();
        }
        tokio::task::try_id().map_or(UNTRACKED_KEY, tokio_id_to_key)
    }

    /// The first `try_id` on a thread may initialise tokio's thread-local,
    /// which registers a TLS destructor, which allocates: the guard makes
    /// that nested allocation take the re-entrant path instead of recursing.
    #[cfg(feature = "tokio")]
    #[cold]
    #[inline(never)]
    fn tokio_key_first(&self) -> u64 {
        let was_busy = self.set_busy(true);
        let id = tokio::task::try_id();
        self.set_busy(was_busy);
        self.tokio_warm.set(true);
        id.map_or(UNTRACKED_KEY, tokio_id_to_key)
    }

    #[cfg(not(feature = "tokio"))]
    #[inline(always)]
    fn tokio_key(&self) -> u64 {
        UNTRACKED_KEY
    }
}

/// RAII guard from [`crate::internal`]: while it lives, this thread's
/// allocations are charged to the `internal` bucket. `Drop` restores the
/// previous context, also when unwinding.
#[derive(Debug)]
#[must_use = "allocations are charged to `internal` only while the guard lives"]
pub struct InternalGuard {
    saved: (u32, u64),
    _not_send: core::marker::PhantomData<*const ()>,
}

impl InternalGuard {
    pub(crate) fn new() -> InternalGuard {
        let saved = LOCAL.with(|l| {
            (
                l.context_slot.replace(INTERNAL),
                l.context_key.replace(INTERNAL_KEY),
            )
        });
        InternalGuard {
            saved,
            _not_send: core::marker::PhantomData,
        }
    }
}

impl Drop for InternalGuard {
    fn drop(&mut self) {
        let _ = LOCAL.try_with(|l| {
            l.context_slot.set(self.saved.0);
            l.context_key.set(self.saved.1);
        });
    }
}

#[cfg(feature = "tokio")]
#[inline(always)]
fn tokio_id_to_key(id: tokio::task::Id) -> u64 {
    crate::tokio_task_number(id)
}

#[cold]
#[inline(never)]
fn on_alloc_cold(local: &Local, size: usize) -> u32 {
    if local.busy.get() {
        charge_direct(INTERNAL, size);
        return INTERNAL;
    }
    if local.shard.get().is_null() {
        claim_shard(local);
        if !local.hot.get().is_null() {
            return on_alloc(size);
        }
    }
    // No shard: charge directly. Only a pinned context slot is safe to
    // charge without the shard protocol, so tokio-only attribution falls
    // back to `untracked` here.
    let key = local.context_key.get();
    let slot = if key != 0 {
        local.context_slot.get()
    } else {
        UNTRACKED
    };
    charge_direct(slot, size);
    slot
}

/// Charges an allocation straight to record `slot` and the global total,
/// with atomic adds: for a thread whose batch cannot be used (no shard, or
/// re-entrant inside TurboWish).
fn charge_direct(slot: u32, size: usize) {
    record::get(slot).add_alloc(size as u64);
    let before = GLOBAL_LIVE.fetch_add(size as i64, Ordering::Relaxed);
    raise_global_peak(before + size as i64);
    crate::budget::check_global(before, before + size as i64);
}

#[cold]
#[inline(never)]
fn switch_and_alloc(local: &Local, shard: &Shard, key: u64, size: usize) -> u32 {
    if key == INTERNAL_KEY {
        // Bookkeeping inside `internal()`: counted beside the task's batch,
        // which stays open for when the guard ends.
        shard.add_internal_alloc(size as u64);
        return INTERNAL;
    }
    switch_to(local, shard, key);
    shard.add_alloc(size as u64);
    local.batch_slot.get()
}

/// Flushes the current batch and starts one for `key`.
fn switch_to(local: &Local, shard: &Shard, key: u64) {
    shard.flush();
    // (Context key 0 means "no context": untracked, handled below.)
    if key != UNTRACKED_KEY && key == local.context_key.get() {
        // An entered context's `TaskTag` is pinned (the guard borrows it), so
        // its record cannot be recycled under us: no handshake needed, which
        // saves a full fence on every poll of a TurboWish task. A reclaimer
        // runs only after the tag is unpinned, which happens after this
        // poll; the Release store makes the slot visible to it then.
        let slot = local.context_slot.get();
        shard.publish_slot(slot, Ordering::Release);
        local.batch_key.set(key);
        local.batch_slot.set(slot);
        return;
    }
    let mut attempts = 0;
    let slot = loop {
        let slot = if key == UNTRACKED_KEY {
            UNTRACKED
        } else if key < record::BUCKET_BIT {
            record::find_or_claim(key)
        } else {
            // A tokio id beyond 2^62 (never seen in practice) would collide
            // with TurboWish's own keys.
            OVERFLOW
        };
        // Dekker with `record::reclaim`: publish the slot, then check the
        // record is still ours. Bucket slots are never reclaimed.
        shard.publish_slot(slot, Ordering::SeqCst);
        // A tokio task's record is owned under its id, the "who" key.
        if slot < FIRST_TASK_SLOT || owner_settled(slot) == key {
            break slot;
        }
        attempts += 1;
        if attempts == 4 {
            shard.publish_slot(OVERFLOW, Ordering::SeqCst);
            break OVERFLOW;
        }
    };
    local.batch_key.set(key);
    local.batch_slot.set(slot);
}

/// The owner of record `slot`, waiting out a reclaim attempt in progress. A
/// reclaimer marks even a record in use `BUSY` while it checks the shards,
/// then puts the owner back when it sees this thread batching for it;
/// re-probing at that moment would give one task a second record, or the
/// `overflow` bucket. The wait is bounded (100 ms) so that a child process
/// forked while another thread held a record `BUSY` cannot hang on it.
pub(crate) fn owner_settled(slot: u32) -> u64 {
    let owner = &record::get(slot).owner;
    let mut started = None;
    let mut spins = 0u32;
    loop {
        let key = owner.load(Ordering::SeqCst);
        if key != record::BUSY {
            return key;
        }
        spins = spins.wrapping_add(1);
        if !spins.is_multiple_of(64) {
            core::hint::spin_loop();
            continue;
        }
        // The reclaimer may have been preempted mid-check: let it run.
        std::thread::yield_now();
        let started = *started.get_or_insert_with(std::time::Instant::now);
        if started.elapsed() > std::time::Duration::from_millis(100) {
            return key;
        }
    }
}

impl Shard {
    const fn new() -> Shard {
        Shard {
            in_use: AtomicBool::new(false),
            slot: AtomicU32::new(NO_SLOT),
            seq: AtomicU32::new(0),
            alloc_bytes: AtomicU64::new(0),
            alloc_blocks: AtomicU64::new(0),
            free_bytes: AtomicU64::new(0),
            free_blocks: AtomicU64::new(0),
            peak_net: AtomicI64::new(0),
            unpublished: AtomicI64::new(0),
            internal: [const { AtomicU64::new(0) }; 4],
            in_free: AtomicU32::new(0),
        }
    }

    #[inline(always)]
    fn add_alloc(&self, size: u64) {
        let allocated = bump(&self.alloc_bytes, size);
        bump(&self.alloc_blocks, 1);
        let net = allocated.wrapping_sub(self.free_bytes.load(Ordering::Relaxed)) as i64;
        // Only a new batch peak can need a flush, so steady-state churn pays
        // one compare here.
        if net > self.peak_net.load(Ordering::Relaxed) {
            self.peak_net.store(net, Ordering::Relaxed);
            if net > FLUSH_BYTES {
                self.flush();
            }
        }
    }

    #[inline(always)]
    fn add_free(&self, size: u64) {
        // Release (a plain store on x86): a reader that sees this free also
        // sees the allocations made before it (see `Shard::frees`).
        bump_release(&self.free_bytes, size);
        bump_release(&self.free_blocks, 1);
    }

    /// Points the batch, which must be empty (just flushed), at record
    /// `slot`, inside a seqlock write section like a flush. Otherwise a
    /// reader could read the old slot and then counts made for the new
    /// record, and charge them to the old one, with no sequence number moved
    /// to tell it. `order` is the slot store's: `SeqCst` for the Dekker
    /// handshake with `record::reclaim`.
    fn publish_slot(&self, slot: u32, order: Ordering) {
        let seq = self.seq.load(Ordering::Relaxed);
        self.seq.store(seq.wrapping_add(1), Ordering::Relaxed);
        fence(Ordering::Release);
        self.slot.store(slot, order);
        self.seq.store(seq.wrapping_add(2), Ordering::Release);
    }

    /// Moves the batch into its record and the global totals. Called only by
    /// the owning thread (or its exit destructor).
    #[inline(never)]
    fn flush(&self) {
        let slot = self.slot.load(Ordering::Relaxed);
        if slot == NO_SLOT {
            return;
        }
        let alloc_bytes = self.alloc_bytes.load(Ordering::Relaxed);
        let alloc_blocks = self.alloc_blocks.load(Ordering::Relaxed);
        let free_bytes = self.free_bytes.load(Ordering::Relaxed);
        let free_blocks = self.free_blocks.load(Ordering::Relaxed);
        let peak_net = self.peak_net.load(Ordering::Relaxed).max(0) as u64;
        if alloc_blocks == 0 && free_blocks == 0 {
            return;
        }

        let seq = self.seq.load(Ordering::Relaxed);
        self.seq.store(seq.wrapping_add(1), Ordering::Relaxed);
        // Pairs with the reader's acquire fence: a reader that sees any of
        // the writes below also sees the odd sequence number.
        fence(Ordering::Release);

        let rec: &Record = record::get(slot);
        let live_before = rec.live_bytes();
        // Only the counters that moved: each add is a locked instruction.
        if alloc_blocks != 0 {
            rec.alloc_bytes.fetch_add(alloc_bytes, Ordering::Relaxed);
            rec.alloc_blocks.fetch_add(alloc_blocks, Ordering::Relaxed);
        }
        if free_blocks != 0 {
            rec.free_bytes.fetch_add(free_bytes, Ordering::Relaxed);
            rec.free_blocks.fetch_add(free_blocks, Ordering::Relaxed);
        }
        rec.raise_peak(live_before.wrapping_add(peak_net));
        // One load of a line the adds above just took: budgets cost a
        // flush nothing more unless the task has one.
        let budget = rec.budget.load(Ordering::Relaxed);
        if budget != 0 {
            let after = live_before
                .wrapping_add(alloc_bytes)
                .wrapping_sub(free_bytes);
            let peak = live_before.wrapping_add(peak_net);
            crate::budget::check_word(&rec.budget, budget, peak, after);
        }

        // The process-wide figure moves only when a thread's unpublished
        // change passes FLUSH_BYTES, so it is exact to that much per thread.
        let unpublished = self.unpublished.load(Ordering::Relaxed);
        raise_global_peak(GLOBAL_LIVE.load(Ordering::Relaxed) + unpublished + peak_net as i64);
        let unpublished = unpublished + alloc_bytes as i64 - free_bytes as i64;
        if unpublished.abs() >= FLUSH_BYTES {
            let before = GLOBAL_LIVE.fetch_add(unpublished, Ordering::Relaxed);
            crate::budget::check_global(before, before + unpublished);
            self.unpublished.store(0, Ordering::Relaxed);
        } else {
            self.unpublished.store(unpublished, Ordering::Relaxed);
        }

        self.clear_batch();
        self.seq.store(seq.wrapping_add(2), Ordering::Release);
    }

    /// Zeroes the batch's counts (the slot stays).
    fn clear_batch(&self) {
        for counter in [
            &self.alloc_bytes,
            &self.alloc_blocks,
            &self.free_bytes,
            &self.free_blocks,
        ] {
            counter.store(0, Ordering::Relaxed);
        }
        self.peak_net.store(0, Ordering::Relaxed);
    }

    /// Folds everything the shard holds into the records and the global
    /// total, at thread exit, so that the shard can be handed to a new thread.
    fn retire(&self) {
        self.flush();
        let seq = self.seq.load(Ordering::Relaxed);
        self.seq.store(seq.wrapping_add(1), Ordering::Relaxed);
        fence(Ordering::Release);
        let internal = record::get(INTERNAL);
        let [ab, an, fb, fnn] = self.internal.each_ref().map(|c| c.load(Ordering::Relaxed));
        internal.alloc_bytes.fetch_add(ab, Ordering::Relaxed);
        internal.alloc_blocks.fetch_add(an, Ordering::Relaxed);
        internal.free_bytes.fetch_add(fb, Ordering::Relaxed);
        internal.free_blocks.fetch_add(fnn, Ordering::Relaxed);
        for counter in &self.internal {
            counter.store(0, Ordering::Relaxed);
        }
        GLOBAL_LIVE.fetch_add(
            self.unpublished.swap(0, Ordering::Relaxed),
            Ordering::Relaxed,
        );
        self.slot.store(NO_SLOT, Ordering::SeqCst);
        self.seq.store(seq.wrapping_add(2), Ordering::Release);
    }

    fn seq(&self) -> u32 {
        self.seq.load(Ordering::Acquire)
    }

    /// A reader's copy of the batch's frees. Acquire pairs with `add_free`'s
    /// Release: the allocation of every block whose free is seen here is
    /// visible to a later [`Shard::allocs`].
    fn frees(&self) -> Frees {
        Frees {
            slot: self.slot.load(Ordering::Relaxed),
            blocks: self.free_blocks.load(Ordering::Acquire),
            bytes: self.free_bytes.load(Ordering::Acquire),
            internal_blocks: self.internal[IF_BLOCKS].load(Ordering::Acquire),
            internal_bytes: self.internal[IF_BYTES].load(Ordering::Acquire),
        }
    }

    /// A reader's copy of the batch's allocations.
    fn allocs(&self) -> Allocs {
        Allocs {
            slot: self.slot.load(Ordering::Relaxed),
            bytes: self.alloc_bytes.load(Ordering::Relaxed),
            blocks: self.alloc_blocks.load(Ordering::Relaxed),
            peak_net: self.peak_net.load(Ordering::Relaxed),
            internal_bytes: self.internal[IA_BYTES].load(Ordering::Relaxed),
            internal_blocks: self.internal[IA_BLOCKS].load(Ordering::Relaxed),
        }
    }

    fn add_internal_alloc(&self, size: u64) {
        bump(&self.internal[IA_BYTES], size);
        bump(&self.internal[IA_BLOCKS], 1);
        bump_i64(&self.unpublished, size as i64);
    }

    fn add_internal_free(&self, size: u64) {
        bump_release(&self.internal[IF_BYTES], size);
        bump_release(&self.internal[IF_BLOCKS], 1);
        bump_i64(&self.unpublished, -(size as i64));
    }
}

/// Single-writer increment: a plain load and store, no locked instruction.
#[inline(always)]
fn bump(counter: &AtomicU64, by: u64) -> u64 {
    let value = counter.load(Ordering::Relaxed).wrapping_add(by);
    counter.store(value, Ordering::Relaxed);
    value
}

/// [`bump`] with a Release store, for the free counters (see `Shard::frees`).
#[inline(always)]
fn bump_release(counter: &AtomicU64, by: u64) {
    counter.store(
        counter.load(Ordering::Relaxed).wrapping_add(by),
        Ordering::Release,
    );
}

/// Single-writer signed add (see [`bump`]).
#[inline(always)]
fn bump_i64(counter: &AtomicI64, by: i64) {
    counter.store(
        counter.load(Ordering::Relaxed).wrapping_add(by),
        Ordering::Relaxed,
    );
}

fn raise_global_peak(candidate: i64) {
    if candidate > 0 && candidate as u64 > GLOBAL_PEAK.load(Ordering::Relaxed) {
        GLOBAL_PEAK.fetch_max(candidate as u64, Ordering::Relaxed);
    }
}

/// Whether any thread is batching counts for record `slot` (SeqCst: see
/// `record::reclaim`).
pub(crate) fn any_batching_for(slot: u32) -> bool {
    let high = SHARDS_HIGH.load(Ordering::SeqCst);
    SHARDS[..high]
        .iter()
        .any(|s| s.slot.load(Ordering::SeqCst) == slot)
}

/// A seqlock read of the records plus the shards' batches, without
/// allocating. Each attempt calls `first` with every shard's index and the
/// record its batch is for, then `rest` (with the number of shards), which
/// reads the records and, through [`frees_of`] and [`allocs_of`], the
/// batches. Attempts repeat while a flush, or a batch switching records,
/// races with the reads; after 16 the last one stands, and may be off by the
/// batches that kept moving (at most about [`FLUSH_BYTES`] each).
///
/// Single allocations and frees move no sequence number, so `rest` must read
/// in an order that keeps a row sane: a record (frees, then allocations),
/// then right after it the batches for it (all their frees, then all their
/// allocations). A block is allocated before it is freed, so if its free is
/// read its allocation is too: it sits in a batch, read last, or was flushed
/// into the record, which the sequence numbers catch. (The exception is an
/// allocation charged straight to a record, by a thread without a shard,
/// and freed into a batch during the read.) Live counts so do not go below
/// zero; a block allocated and freed meanwhile counts as live at worst, and
/// reading a row's parts close together keeps "meanwhile" short.
pub(crate) fn read_consistent<T>(
    state: &mut T,
    mut first: impl FnMut(&mut T, usize, u32),
    mut rest: impl FnMut(&mut T, usize),
) {
    for _ in 0..16 {
        let high = SHARDS_HIGH.load(Ordering::Acquire);
        let mut before = 0u64;
        let mut odd = false;
        for (index, shard) in SHARDS[..high].iter().enumerate() {
            let seq = shard.seq();
            odd |= seq % 2 == 1;
            before = before.wrapping_add(u64::from(seq));
            first(state, index, shard.slot.load(Ordering::Relaxed));
        }
        rest(state, high);
        fence(Ordering::Acquire);
        let after = SHARDS[..high].iter().fold(0u64, |sum, s| {
            sum.wrapping_add(u64::from(s.seq.load(Ordering::Relaxed)))
        });
        // Sequence numbers only grow (a u32 wraps, but not by exactly the
        // others' growth within one read), so equal sums mean no write
        // section ran.
        if !odd && before == after {
            return;
        }
        std::thread::yield_now();
    }
}

/// The frees of shard `index`'s batch, for `read_consistent`'s `rest`.
pub(crate) fn frees_of(index: usize) -> Frees {
    SHARDS[index].frees()
}

/// The allocations of shard `index`'s batch, for `read_consistent`'s `rest`.
pub(crate) fn allocs_of(index: usize) -> Allocs {
    SHARDS[index].allocs()
}

/// One past the highest shard index ever claimed: how many shards a reader
/// looks at (to size its scratch space).
pub(crate) fn shards_high() -> usize {
    SHARDS_HIGH.load(Ordering::Acquire)
}

/// Peak of the global live bytes, as far as flushes have published it.
/// The global live total as last published (see `Shard::unpublished`).
pub(crate) fn published_live() -> i64 {
    GLOBAL_LIVE.load(Ordering::Relaxed)
}

pub(crate) fn global_peak() -> u64 {
    GLOBAL_PEAK.load(Ordering::Relaxed)
}

/// If the calling thread batches for `slot`, folds the batch into the record
/// and closes it, so the record can be recycled at once (used when a task's
/// last `TaskTag` goes).
pub(crate) fn close_batch_for(slot: u32) {
    let _ = LOCAL.try_with(|local| {
        // `shard`, not `hot`: this runs from `TaskTag::drop`, possibly under
        // an `internal()` guard, never from inside the allocator.
        let shard = local.shard.get();
        if shard.is_null() || shard == dead() || local.batch_slot.get() != slot {
            return;
        }
        // SAFETY: a non-null, non-dead `shard` is this thread's claimed
        // shard, written only by this thread.
        let shard = unsafe { &*shard };
        shard.flush();
        shard.publish_slot(NO_SLOT, Ordering::SeqCst);
        local.batch_key.set(NO_BATCH);
        local.batch_slot.set(NO_SLOT);
    });
}

/// Flushes the calling thread's batch, so that the records' peaks include
/// it (by `stats()` and `sweep_idle_records()`, whose records it also frees
/// up for recycling).
pub(crate) fn flush_current_thread() {
    LOCAL.with(|local| {
        let shard = local.shard.get();
        if !shard.is_null() && shard != dead() {
            // SAFETY: this thread's claimed shard (see `on_alloc`).
            unsafe { &*shard }.flush();
        }
    });
}

/// The pthread key whose destructor releases a thread's shard, plus one
/// (0: not created yet; `u64::MAX`: creation failed, so shards are never
/// released, which only wastes them). An atomic rather than a `OnceLock` so
/// that a `fork()` racing with its creation cannot leave the child waiting on
/// a lock held by a thread that no longer exists.
static EXIT_KEY: AtomicU64 = AtomicU64::new(0);

#[cold]
fn claim_shard(local: &Local) {
    let was_busy = local.set_busy(true);
    // Load before CAS: `in_use` shares a cache line with its owner's hot
    // counters, which a failing CAS would still take away from that core.
    let found = SHARDS.iter().enumerate().find(|(_, s)| {
        !s.in_use.load(Ordering::Relaxed)
            && s.in_use
                .compare_exchange(false, true, Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
    });
    match found {
        Some((index, shard)) => {
            SHARDS_HIGH.fetch_max(index + 1, Ordering::SeqCst);
            register_exit(shard);
            local.shard.set(shard);
            local.batch_key.set(NO_BATCH);
            local.batch_slot.set(NO_SLOT);
        }
        None => local.shard.set(dead()),
    }
    local.set_busy(was_busy);
}

/// Arranges for `shard` to be flushed and released when this thread exits.
/// A pthread key destructor runs after Rust's TLS destructors, so their frees
/// are still batched and flushed.
fn register_exit(shard: &'static Shard) {
    let mut state = EXIT_KEY.load(Ordering::Acquire);
    if state == 0 {
        let mut key: libc::pthread_key_t = 0;
        // SAFETY: `key` is a valid out-pointer and `release_shard` has the
        // destructor signature pthread expects.
        let created = unsafe { libc::pthread_key_create(&mut key, Some(release_shard)) };
        let new = if created == 0 {
            u64::from(key) + 1
        } else {
            u64::MAX
        };
        state = match EXIT_KEY.compare_exchange(0, new, Ordering::AcqRel, Ordering::Acquire) {
            Ok(_) => new,
            Err(winner) => {
                if created == 0 {
                    // Another thread created the key first; ours is unused.
                    // SAFETY: `key` was created above and never set.
                    unsafe { libc::pthread_key_delete(key) };
                }
                winner
            }
        };
    }
    if state != u64::MAX {
        let key = (state - 1) as libc::pthread_key_t;
        // SAFETY: `key` was created by pthread_key_create; the value is a
        // pointer into a static, valid for the whole process.
        unsafe {
            libc::pthread_setspecific(key, (shard as *const Shard).cast());
        }
    }
}

/// Thread-exit destructor (see `register_exit`).
unsafe extern "C" fn release_shard(value: *mut libc::c_void) {
    let shard = value.cast::<Shard>().cast_const();
    // SAFETY: the value was set by `register_exit` to a shard in the static
    // SHARDS array, claimed by the exiting thread.
    let shard = unsafe { &*shard };
    shard.retire();
    // The thread may still allocate (later destructors): from now on it
    // charges records directly.
    let _ = LOCAL.try_with(|local| {
        crate::registry::thread_exit(local);
        local.shard.set(dead());
        local.set_busy(local.busy.get());
        local.batch_key.set(NO_BATCH);
        local.batch_slot.set(NO_SLOT);
    });
    shard.in_use.store(false, Ordering::Release);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A thread-local-free `Local` for driving `switch_to` by hand.
    fn local_for(shard: &'static Shard, context: Option<(u32, u64)>) -> Local {
        let (context_slot, context_key) = context.unwrap_or((0, 0));
        Local {
            hot: Cell::new(shard),
            shard: Cell::new(shard),
            busy: Cell::new(false),
            tokio_warm: Cell::new(true),
            context_slot: Cell::new(context_slot),
            context_key: Cell::new(context_key),
            batch_key: Cell::new(NO_BATCH),
            batch_slot: Cell::new(NO_SLOT),
            sample_left: Cell::new(0),
            sample_ready: Cell::new(false),
            sample_rng: Cell::new(0),
            reg_free: Cell::new(0),
            reg_free_len: Cell::new(0),
            reg_spare: Cell::new(0),
            reg_spare_len: Cell::new(0),
            stack_low: Cell::new(0),
            stack_high: Cell::new(0),
        }
    }

    /// A reader copies a batch's slot and then its counts. If the batch
    /// moved to another record in between, only the sequence number can
    /// tell it that the counts are the new record's: moving must bump it
    /// even when there was nothing to flush (an empty batch is not flushed).
    #[test]
    fn moving_an_empty_batch_moves_the_sequence_number() {
        static SHARD: Shard = Shard::new();
        // Through the Dekker handshake (untracked: a bucket, no table probe)
        // and through the pinned-context shortcut.
        let handle_key = record::HANDLE_BIT | 12_345;
        for (key, context, slot) in [
            (UNTRACKED_KEY, None, UNTRACKED),
            (handle_key, Some((77, handle_key)), 77),
        ] {
            let local = local_for(&SHARD, context);
            let seen = SHARD.seq();
            assert_eq!(seen % 2, 0);
            switch_to(&local, &SHARD, key);
            assert_eq!(SHARD.slot.load(Ordering::Relaxed), slot);
            SHARD.add_alloc(100);
            assert_ne!(
                SHARD.seq(),
                seen,
                "a reader would pair the old slot with new counts"
            );
            assert_eq!(SHARD.seq() % 2, 0);
            SHARD.flush_counts_for_test();
        }
    }

    impl Shard {
        /// Empties the batch without touching any record.
        fn flush_counts_for_test(&self) {
            self.clear_batch();
        }
    }
}
