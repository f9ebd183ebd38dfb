//! The record table: one fixed array of per-task counter records, indexed by
//! the *slot* stored in each block's header.
//!
//! The table is a `static` (zeroed `.bss`), so it exists before `main`, never
//! allocates, survives `fork()`, and costs resident memory only for the pages
//! whose records have been used. Its size bounds TurboWish's own memory no
//! matter how many tasks a process runs over its life: records of tasks that
//! hold no live bytes are recycled.
//!
//! # Owners and recycling
//!
//! Each record has an *owner key* saying whose counters it holds:
//!
//! * `FREE`: unused;
//! * `BUSY`: being reclaimed, momentarily;
//! * a bucket key (`BUCKET_BIT | n`): the fixed slots below `FIRST_TASK_SLOT`;
//! * a tokio task id (below `BUCKET_BIT`): a task attributed through
//!   `tokio::task::try_id()`;
//! * a handle key (`HANDLE_BIT | n`): a [`TaskTag`] owned by the task registry.
//!
//! A record may be reclaimed when nobody pins it (no live [`TaskTag`]), no
//! thread's shard is batching counts for it, and its live block count is zero.
//! Reclaiming happens when the last clone of a [`TaskTag`] is dropped (if the
//! record holds nothing then), lazily when a new owner probes for a record and
//! finds none free, and through [`crate::sweep_idle_records`].
//!
//! The "no shard is batching for it" test races with a thread that is about
//! to start batching for the record. Both sides use the Dekker pattern with
//! `SeqCst`: the reclaimer marks the owner `BUSY` and then scans the shards;
//! the thread publishes its shard's slot and then re-reads the owner. At least
//! one of them sees the other, so either the reclaim backs off or the thread
//! picks another record. A thread switching to an entered context skips the
//! re-read: the context's [`TaskTag`] is pinned, which keeps reclaimers away
//! on its own (see `shard::switch_to`).
//!
//! Reclaiming zeroes the counters while other threads may be reading them for
//! `stats()`; each record's `epoch` (odd while it is being zeroed) lets those
//! readers discard a copy that a reset tore (see [`Record::read`]).

use core::sync::atomic::{fence, AtomicU32, AtomicU64, Ordering};

use crate::shard;

/// Number of records, buckets included. 65,536 records cost 4 MiB of address
/// space; only the pages of records in use become resident.
pub(crate) const CAPACITY: usize = 1 << 16;
const MASK: usize = CAPACITY - 1;

/// How many consecutive records a new owner looks at before falling back to
/// the overflow bucket. A tokio task looks at one window, around a hash of its
/// id; a [`TaskTag`] at up to four. So a task can land in `overflow` before
/// the table is full: when every record of its window(s) holds memory.
const PROBE: usize = 16;

/// Tag written for blocks allocated while tagging is switched off; counted
/// nowhere, so freeing them touches no counter.
pub(crate) const OFF: u32 = 0;
/// Allocations outside any task: `main`, plain threads, before `main`, during
/// thread exit.
pub(crate) const UNTRACKED: u32 = 1;
/// TurboWish's own allocations and anything allocated re-entrantly.
pub(crate) const INTERNAL: u32 = 2;
/// Tasks that could not get a record of their own (every record they probed
/// was taken).
pub(crate) const OVERFLOW: u32 = 3;
/// First slot that belongs to a task.
pub(crate) const FIRST_TASK_SLOT: u32 = 4;

pub(crate) const FREE: u64 = 0;
pub(crate) const BUSY: u64 = u64::MAX;
pub(crate) const BUCKET_BIT: u64 = 1 << 62;
pub(crate) const HANDLE_BIT: u64 = 1 << 63;

/// Owner key of a bucket slot.
pub(crate) const fn bucket_key(slot: u32) -> u64 {
    BUCKET_BIT | slot as u64
}

/// One task's counters. Cache-line sized and aligned so that two tasks
/// running on two cores never share a line.
#[repr(C, align(64))]
#[derive(Debug)]
pub(crate) struct Record {
    pub(crate) owner: AtomicU64,
    pub(crate) pins: AtomicU32,
    /// Odd while [`Record::reset`] zeroes the counters; moves on every reset,
    /// so that a reader can tell a copy torn by recycling (a seqlock whose
    /// only writer is the reclaimer holding the record `BUSY`).
    epoch: AtomicU32,
    pub(crate) alloc_bytes: AtomicU64,
    pub(crate) alloc_blocks: AtomicU64,
    pub(crate) free_bytes: AtomicU64,
    pub(crate) free_blocks: AtomicU64,
    pub(crate) peak_bytes: AtomicU64,
    /// The task's budget as a limit word (see `crate::budget`); 0: none.
    /// It fills the line's last 8 bytes.
    pub(crate) budget: AtomicU64,
}

impl Record {
    const fn new(owner: u64) -> Record {
        Record {
            owner: AtomicU64::new(owner),
            pins: AtomicU32::new(0),
            epoch: AtomicU32::new(0),
            alloc_bytes: AtomicU64::new(0),
            alloc_blocks: AtomicU64::new(0),
            free_bytes: AtomicU64::new(0),
            free_blocks: AtomicU64::new(0),
            peak_bytes: AtomicU64::new(0),
            budget: AtomicU64::new(0),
        }
    }

    /// Live bytes as far as this record alone knows (without shard batches).
    #[inline]
    pub(crate) fn live_bytes(&self) -> u64 {
        // Frees are read first: an allocation racing with this read can only
        // make the result larger than the truth; reading allocations first
        // would let a racing free make it smaller, even "negative".
        let freed = self.free_bytes.load(Ordering::Relaxed);
        self.alloc_bytes.load(Ordering::Relaxed).wrapping_sub(freed)
    }

    fn live_blocks(&self) -> u64 {
        // Acquire pairs with the Release in `add_free`: a reclaimer that sees
        // a free here also sees its `free_bytes` add, so the `reset` that may
        // follow cannot be overtaken by it.
        let freed = self.free_blocks.load(Ordering::Acquire);
        self.alloc_blocks
            .load(Ordering::Relaxed)
            .wrapping_sub(freed)
    }

    /// The counters, for a reader that knows the record cannot be recycled
    /// meanwhile (a pinned or bucket record). Frees are read first, for the
    /// reason given in [`Record::live_bytes`].
    pub(crate) fn counts(&self, owner: u64) -> Snapshot {
        let free_blocks = self.free_blocks.load(Ordering::Acquire);
        let free_bytes = self.free_bytes.load(Ordering::Acquire);
        Snapshot {
            owner,
            pins: self.pins.load(Ordering::Relaxed),
            alloc_bytes: self.alloc_bytes.load(Ordering::Relaxed),
            alloc_blocks: self.alloc_blocks.load(Ordering::Relaxed),
            free_bytes,
            free_blocks,
            peak_bytes: self.peak_bytes.load(Ordering::Relaxed),
        }
    }

    /// The owner and counters of a claimed record, or `None` if it is free,
    /// `BUSY`, or was recycled while being read (a recycled record held
    /// nothing live, so skipping it loses no live byte).
    pub(crate) fn read(&self) -> Option<Snapshot> {
        // Owner first: a reader that sees the key published after a claim's
        // reset then also sees that reset's final epoch.
        let mut owner = self.owner.load(Ordering::Acquire);
        // A reclaim attempt marks even a record in use BUSY while it checks
        // the shards, and usually puts the owner back: wait it out (briefly;
        // a reclaimer preempted for longer is given up on) rather than drop
        // a row that may hold live bytes from this read.
        let mut spins = 0u32;
        while owner == BUSY && spins < 4096 {
            spins += 1;
            if spins.is_multiple_of(64) {
                std::thread::yield_now();
            } else {
                core::hint::spin_loop();
            }
            owner = self.owner.load(Ordering::Acquire);
        }
        if owner == FREE || owner == BUSY {
            return None;
        }
        let epoch = self.epoch.load(Ordering::Acquire);
        if epoch % 2 == 1 {
            return None;
        }
        let counts = self.counts(owner);
        // Pairs with the Release fence in `reset`: if any count read above
        // was written by a reset, the epoch read below has moved.
        fence(Ordering::Acquire);
        (self.epoch.load(Ordering::Relaxed) == epoch).then_some(counts)
    }

    /// Charges an allocation straight to the record: the path for threads
    /// without a shard and for re-entrant allocations.
    #[inline]
    pub(crate) fn add_alloc(&self, size: u64) {
        let before = self.alloc_bytes.fetch_add(size, Ordering::Relaxed);
        self.alloc_blocks.fetch_add(1, Ordering::Relaxed);
        let live = before
            .wrapping_add(size)
            .wrapping_sub(self.free_bytes.load(Ordering::Relaxed));
        self.raise_peak(live);
        let budget = self.budget.load(Ordering::Relaxed);
        if budget != 0 {
            crate::budget::check_word(&self.budget, budget, live, live);
        }
    }

    /// Charges a free straight to the record.
    #[inline]
    pub(crate) fn add_free(&self, size: u64) {
        self.free_bytes.fetch_add(size, Ordering::Relaxed);
        // Release: see `live_blocks`. (On x86 every locked add is ordered
        // anyway; this costs nothing there.)
        self.free_blocks.fetch_add(1, Ordering::Release);
    }

    #[inline]
    pub(crate) fn raise_peak(&self, candidate: u64) {
        // Live counts can be transiently "negative" (wrapped) while a batch
        // elsewhere is unflushed; such a value is no peak.
        if candidate < (1 << 62) && candidate > self.peak_bytes.load(Ordering::Relaxed) {
            self.peak_bytes.fetch_max(candidate, Ordering::Relaxed);
        }
    }

    /// Zeroes the counters for a new owner. Only called while the owner is
    /// `BUSY`, by the thread that made it so: the epoch has one writer.
    fn reset(&self, pins: u32) {
        let epoch = self.epoch.load(Ordering::Relaxed);
        self.epoch.store(epoch.wrapping_add(1), Ordering::Relaxed);
        // Orders the odd epoch before the zeroing stores, for `read`.
        fence(Ordering::Release);
        self.pins.store(pins, Ordering::Relaxed);
        self.alloc_bytes.store(0, Ordering::Relaxed);
        self.alloc_blocks.store(0, Ordering::Relaxed);
        self.free_bytes.store(0, Ordering::Relaxed);
        self.free_blocks.store(0, Ordering::Relaxed);
        self.peak_bytes.store(0, Ordering::Relaxed);
        self.budget.store(0, Ordering::Relaxed);
        self.epoch.store(epoch.wrapping_add(2), Ordering::Release);
    }
}

/// What [`Record::read`] and [`Record::counts`] return.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Snapshot {
    pub(crate) owner: u64,
    pub(crate) pins: u32,
    pub(crate) alloc_bytes: u64,
    pub(crate) alloc_blocks: u64,
    pub(crate) free_bytes: u64,
    pub(crate) free_blocks: u64,
    pub(crate) peak_bytes: u64,
}

static TABLE: [Record; CAPACITY] = {
    let mut table = [const { Record::new(FREE) }; CAPACITY];
    let mut slot = 0;
    while slot < FIRST_TASK_SLOT as usize {
        table[slot] = Record::new(bucket_key(slot as u32));
        slot += 1;
    }
    table
};

/// Where the next handle probe starts; rotating spreads handle records over
/// the table so lazily reclaimable ones are found again.
static HANDLE_CURSOR: AtomicU64 = AtomicU64::new(0);
static HANDLE_SEQ: AtomicU64 = AtomicU64::new(1);

/// The record at `slot`.
#[inline(always)]
pub(crate) fn get(slot: u32) -> &'static Record {
    // Slots come from headers we wrote or from this module, so they are in
    // range; masking makes an out-of-range slot (a corrupted header) land on
    // some record instead of out of bounds.
    &TABLE[slot as usize & MASK]
}

/// All records, for readers (`stats`, sweeps).
pub(crate) fn all() -> &'static [Record; CAPACITY] {
    &TABLE
}

/// The record of tokio task `key` (its id), claiming (or reclaiming) one if it
/// has none. Returns [`OVERFLOW`] when every probed record is taken.
pub(crate) fn find_or_claim(key: u64) -> u32 {
    debug_assert!(key != FREE && key & (BUCKET_BIT | HANDLE_BIT) == 0);
    // Fibonacci hashing spreads ids over the whole table. Tokio hands out
    // ids consecutively, and mapping them to consecutive records would pack
    // the tasks alive at one time into one dense run, where a task started
    // out of order finds its whole probe window taken. This runs only when a
    // thread switches to a task its batch does not already hold.
    let start =
        (key.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> (64 - CAPACITY.trailing_zeros())) as usize;
    let mut free = None;
    for i in 0..PROBE {
        let slot = probe_slot(start, i);
        match TABLE[slot as usize].owner.load(Ordering::Acquire) {
            owner if owner == key => return slot,
            FREE if free.is_none() => free = Some(slot),
            _ => {}
        }
    }
    if let Some(slot) = free {
        if claim_free(slot, key, 0) {
            return slot;
        }
    }
    claim_any(start, key, 0).unwrap_or(OVERFLOW)
}

/// A new handle-owned record (see [`TaskTag`]), or `None` if the table is full.
fn claim_handle() -> Option<(u32, u64)> {
    let key = HANDLE_BIT | HANDLE_SEQ.fetch_add(1, Ordering::Relaxed);
    for _ in 0..4 {
        let start = HANDLE_CURSOR.fetch_add(PROBE as u64, Ordering::Relaxed) as usize;
        // Pinned before its owner is published: an unpinned record with a
        // handle owner and nothing live looks reclaimable.
        if let Some(slot) = claim_any(start, key, 1) {
            return Some((slot, key));
        }
    }
    None
}

/// The `i`th record a probe starting at `start` looks at. Bucket slots may
/// come up; their owner is never `FREE` and `try_reclaim` refuses them, so
/// they are passed over.
fn probe_slot(start: usize, i: usize) -> u32 {
    (start.wrapping_add(i) & MASK) as u32
}

/// Claims a free or reclaimable record in the probe window at `start` for
/// `key`, with `pins` pins set before the owner is published.
fn claim_any(start: usize, key: u64, pins: u32) -> Option<u32> {
    for i in 0..PROBE {
        let slot = probe_slot(start, i);
        if claim_free(slot, key, pins) {
            return Some(slot);
        }
    }
    (0..PROBE)
        .map(|i| probe_slot(start, i))
        .find(|&slot| reclaim(slot, Some((key, pins))))
}

fn claim_free(slot: u32, key: u64, pins: u32) -> bool {
    let rec = &TABLE[slot as usize];
    if rec
        .owner
        .compare_exchange(FREE, BUSY, Ordering::SeqCst, Ordering::Relaxed)
        .is_err()
    {
        return false;
    }
    rec.reset(pins);
    rec.owner.store(key, Ordering::SeqCst);
    true
}

/// Reclaims `slot` if nobody pins it, no shard batches for it and it holds no
/// live blocks, and frees it.
pub(crate) fn try_reclaim(slot: u32) -> bool {
    reclaim(slot, None)
}

/// As [`try_reclaim`], giving the record to `new_owner` (key, pins) instead.
fn reclaim(slot: u32, new_owner: Option<(u64, u32)>) -> bool {
    if slot < FIRST_TASK_SLOT {
        return false;
    }
    let rec = &TABLE[slot as usize];
    let owner = rec.owner.load(Ordering::Relaxed);
    if owner == FREE || owner == BUSY || owner & BUCKET_BIT != 0 {
        return false;
    }
    // Cheap early outs before marking the record BUSY, which makes a thread
    // switching to it wait: records in use are never touched that way.
    if rec.pins.load(Ordering::Acquire) != 0
        || rec.live_blocks() != 0
        || shard::any_batching_for(slot)
    {
        return false;
    }
    if rec
        .owner
        .compare_exchange(owner, BUSY, Ordering::SeqCst, Ordering::Relaxed)
        .is_err()
    {
        return false;
    }
    // Dekker with `shard::switch_to`: owner is BUSY (SeqCst) before the
    // shards are read (SeqCst), so a thread that starts batching for `slot`
    // after this scan re-reads the owner, sees BUSY and waits or backs off.
    let reclaimable = rec.pins.load(Ordering::SeqCst) == 0
        && !shard::any_batching_for(slot)
        && rec.live_blocks() == 0;
    if !reclaimable {
        rec.owner.store(owner, Ordering::SeqCst);
        return false;
    }
    let (key, pins) = new_owner.unwrap_or((FREE, 0));
    rec.reset(pins);
    rec.owner.store(key, Ordering::SeqCst);
    true
}

/// A record held for one task by its owner (the task registry). While any
/// clone of a `TaskTag` is alive its record is never recycled; once all are
/// dropped the record is recycled as soon as it holds no live block: at once
/// if it holds none then, else by a later probe or
/// [`crate::sweep_idle_records`].
///
/// Allocations are charged to it inside [`crate::context::enter`].
///
/// ```
/// let tag = turbowish_alloc::TaskTag::new();
/// {
///     let _in_task = turbowish_alloc::context::enter(&tag);
///     // Allocations here are charged to `tag`.
///     let v = vec![0u8; 100];
///     # drop(v);
/// }
/// # assert!(tag.tag().slot() >= 4);
/// ```
#[derive(Debug)]
pub struct TaskTag {
    slot: u32,
    key: u64,
}

impl TaskTag {
    /// Takes a record of its own for a new task. If none of the 64 records
    /// it looks at is free or reclaimable (in practice: the table is nearly
    /// full), the tag is the shared `overflow` bucket (reported as such by
    /// `stats()`, and by [`TaskTag::counters`]).
    pub fn new() -> TaskTag {
        match claim_handle() {
            Some((slot, key)) => TaskTag { slot, key },
            None => TaskTag {
                slot: OVERFLOW,
                key: bucket_key(OVERFLOW),
            },
        }
    }

    /// The compact slot index stored in the headers of this task's blocks.
    pub fn tag(&self) -> Tag {
        Tag(self.slot)
    }

    /// A process-unique id of this task's record, never reused (unlike the
    /// slot, which is recycled). `stats()` reports it as [`crate::Owner::Task`].
    pub fn id(&self) -> u64 {
        self.key & !HANDLE_BIT
    }

    pub(crate) fn slot(&self) -> u32 {
        self.slot
    }

    pub(crate) fn key(&self) -> u64 {
        self.key
    }
}

impl Default for TaskTag {
    fn default() -> Self {
        TaskTag::new()
    }
}

impl Clone for TaskTag {
    fn clone(&self) -> Self {
        if self.slot >= FIRST_TASK_SLOT {
            TABLE[self.slot as usize]
                .pins
                .fetch_add(1, Ordering::Relaxed);
        }
        TaskTag {
            slot: self.slot,
            key: self.key,
        }
    }
}

impl Drop for TaskTag {
    fn drop(&mut self) {
        if self.slot >= FIRST_TASK_SLOT {
            let rec = &TABLE[self.slot as usize];
            if rec.pins.fetch_sub(1, Ordering::AcqRel) == 1 {
                // Finished tasks that hold nothing free their record at once,
                // so short-lived tasks do not wait for a probe to recycle it.
                // This thread most likely still batches for the task it just
                // ran: close that batch first.
                shard::close_batch_for(self.slot);
                try_reclaim(self.slot);
            }
        }
    }
}

/// The slot index stored in a block's header: which record its bytes are
/// charged to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Tag(pub(crate) u32);

impl Tag {
    /// The raw slot index.
    pub fn slot(self) -> u32 {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `stats()` may copy a record while a reclaimer zeroes it for a new
    /// owner; the copy would pair the old owner with half-zeroed counts
    /// (live bytes "below zero"). The epoch tells the reader.
    #[test]
    fn readers_can_tell_a_copy_torn_by_recycling() {
        let rec = Record::new(HANDLE_BIT | 7);
        rec.add_alloc(100);
        rec.add_alloc(50);
        rec.add_free(100);
        let copy = rec.read().expect("a claimed record reads");
        assert_eq!((copy.alloc_bytes, copy.free_bytes), (150, 100));

        // A reset in progress: the epoch is odd, the reader backs off.
        rec.epoch.fetch_add(1, Ordering::Relaxed);
        assert!(rec.read().is_none());
        rec.epoch.fetch_sub(1, Ordering::Relaxed);

        // A reset that ran between a reader's two epoch loads moved it.
        let before = rec.epoch.load(Ordering::Relaxed);
        rec.reset(0);
        let after = rec.epoch.load(Ordering::Relaxed);
        assert_eq!(after, before + 2);
        assert_eq!(rec.live_bytes(), 0);

        // Free and busy records are not read at all.
        rec.owner.store(BUSY, Ordering::Relaxed);
        assert!(rec.read().is_none());
        rec.owner.store(FREE, Ordering::Relaxed);
        assert!(rec.read().is_none());
    }
}
