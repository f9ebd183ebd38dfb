//! Reading the counters: [`stats`] and [`sweep_idle_records`].

use core::sync::atomic::Ordering;

use crate::record::{self, Tag, BUCKET_BIT, BUSY, FIRST_TASK_SLOT, FREE, HANDLE_BIT};
use crate::record::{INTERNAL, OFF, OVERFLOW, UNTRACKED};
use crate::shard::{self, InternalGuard};

/// Byte and block counters, for one task or for the whole process.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counters {
    /// Bytes allocated and not yet freed (the sizes callers asked for; the
    /// header is not included).
    pub live_bytes: u64,
    /// Blocks allocated and not yet freed.
    pub live_blocks: u64,
    /// Bytes ever allocated (a `realloc` counts as a free plus an allocation).
    pub total_bytes: u64,
    /// Blocks ever allocated.
    pub total_blocks: u64,
    /// The highest `live_bytes` seen.
    ///
    /// Exact for a task whose blocks are freed on the thread running it.
    /// Counts are batched per thread and folded in when a thread switches
    /// task or has grown by 1 MiB, so when other threads free a task's
    /// blocks concurrently, or for the process-wide peak, the figure may be
    /// off by up to 1 MiB per thread.
    pub peak_live_bytes: u64,
}

/// Who a row of [`Stats::tasks`] belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Owner {
    /// Allocations outside any task: `main`, plain threads, before `main`,
    /// and thread exit. (`spawn_blocking` closures run as tokio tasks, so
    /// with the `tokio` feature they get a [`Owner::TokioTask`] row.)
    Untracked,
    /// TurboWish's own allocations, and allocations made re-entrantly while
    /// TurboWish was running code that allocates.
    Internal,
    /// Tasks that found no free record (more tasks holding memory at once
    /// than the record table has room for).
    Overflow,
    /// A task entered through [`crate::context::enter`]; the value is its
    /// [`crate::TaskTag::id`].
    Task(u64),
    /// A tokio task attributed through `tokio::task::try_id()`; the value is
    /// the number tokio's `task::Id` displays as.
    TokioTask(u64),
}

/// One row of [`Stats::tasks`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TaskStats {
    /// Whose counters these are.
    pub owner: Owner,
    /// The record's slot (recycled after the task holds nothing).
    pub tag: Tag,
    /// The counters.
    pub counters: Counters,
}

/// A copy of all counters, from [`stats`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stats {
    /// Whole-process counters: the sums of the rows (peak: see
    /// [`Counters::peak_live_bytes`]).
    pub total: Counters,
    /// One row per bucket and per task that has a record, buckets first.
    pub tasks: Vec<TaskStats>,
    /// Records currently claimed by tasks (buckets excluded).
    pub records_in_use: usize,
    /// Size of the record table: the most tasks that can hold memory at once
    /// before new ones share the `overflow` bucket.
    pub record_capacity: usize,
    /// Whether tagging is switched on (see [`crate::set_enabled`]).
    pub enabled: bool,
}

impl Stats {
    /// The row of `owner`, if it has one.
    pub fn task(&self, owner: Owner) -> Option<&TaskStats> {
        self.tasks.iter().find(|t| t.owner == owner)
    }

    /// Counters of `owner`, zero if it has no row.
    pub fn counters(&self, owner: Owner) -> Counters {
        self.task(owner).map(|t| t.counters).unwrap_or_default()
    }
}

/// A copy of every counter, global and per task.
///
/// This walks the record table and every thread's batch, so it costs about
/// a millisecond and allocates (charged to the `internal` bucket); call it
/// from reporting code, not per request. At a quiescent moment the counts
/// are exact; while other threads allocate, each row is exact as of some
/// moment during the call.
///
/// ```
/// let stats = turbowish_alloc::stats();
/// let sum: u64 = stats.tasks.iter().map(|t| t.counters.live_bytes).sum();
/// assert_eq!(sum, stats.total.live_bytes);
/// ```
pub fn stats() -> Stats {
    let _internal = InternalGuard::new();
    shard::flush_current_thread();
    let records = record::all();
    let mut rows: Vec<TaskStats> = Vec::with_capacity(64);
    let records_in_use = shard::read_consistent(|batches| {
        rows.clear();
        let mut in_use = 0;
        for (slot, rec) in records.iter().enumerate().skip(OFF as usize + 1) {
            let key = rec.owner.load(Ordering::Acquire);
            if key == FREE || key == BUSY {
                continue;
            }
            if slot >= FIRST_TASK_SLOT as usize {
                in_use += 1;
            }
            let c = counters_of(rec, slot as u32, batches);
            // A handle record nobody pins belongs to a task that has ended;
            // holding nothing, it is only waiting to be recycled.
            let ended_empty = key & HANDLE_BIT != 0
                && rec.pins.load(Ordering::Relaxed) == 0
                && c.live_blocks == 0;
            if slot < FIRST_TASK_SLOT as usize || (c.total_blocks > 0 && !ended_empty) {
                rows.push(TaskStats {
                    owner: owner_of(key),
                    tag: Tag(slot as u32),
                    counters: c,
                });
            }
        }
        in_use
    });
    rows.sort_by_key(|r| r.owner);
    rows.dedup_by(|later, kept| {
        // Two records can briefly share an owner when two threads claim one
        // for the same tokio task at once; report them as one row.
        if later.owner != kept.owner {
            return false;
        }
        let (a, b) = (&mut kept.counters, later.counters);
        a.live_bytes = a.live_bytes.wrapping_add(b.live_bytes);
        a.live_blocks = a.live_blocks.wrapping_add(b.live_blocks);
        a.total_bytes += b.total_bytes;
        a.total_blocks += b.total_blocks;
        a.peak_live_bytes += b.peak_live_bytes;
        true
    });

    let mut total = Counters::default();
    for row in &rows {
        let c = &row.counters;
        total.live_bytes = total.live_bytes.wrapping_add(c.live_bytes);
        total.live_blocks = total.live_blocks.wrapping_add(c.live_blocks);
        total.total_bytes += c.total_bytes;
        total.total_blocks += c.total_blocks;
    }
    total.peak_live_bytes = shard::global_peak().max(total.live_bytes);
    Stats {
        total,
        tasks: rows,
        records_in_use,
        record_capacity: record::CAPACITY - FIRST_TASK_SLOT as usize,
        enabled: shard::ENABLED.load(Ordering::Relaxed),
    }
}

/// Recycles now every record that no [`crate::TaskTag`] pins, that holds no
/// live block, and that no thread is counting into; returns how many.
///
/// Records are also recycled lazily when a new task needs one, so calling
/// this is never required; it makes `records_in_use` reflect the tasks that
/// hold memory. A tokio task attributed through `try_id()` whose record is
/// recycled while it is still running gets a new record when it next
/// allocates; its `total_*` counts then restart from zero.
pub fn sweep_idle_records() -> usize {
    let _internal = InternalGuard::new();
    shard::flush_current_thread();
    (FIRST_TASK_SLOT..record::CAPACITY as u32)
        .filter(|&slot| record::try_reclaim(slot))
        .count()
}

impl crate::TaskTag {
    /// This task's counters now (see [`stats`] for exactness). Does not
    /// allocate.
    ///
    /// ```
    /// let tag = turbowish_alloc::TaskTag::new();
    /// assert_eq!(tag.counters().live_bytes, 0);
    /// ```
    pub fn counters(&self) -> Counters {
        let slot = self.tag().slot();
        let rec = record::get(slot);
        let mut sum = Sum::default();
        shard::read_each_consistent(
            &mut sum,
            |sum| *sum = Sum::of(rec),
            |sum, b| sum.add(slot, b),
        );
        sum.finish()
    }
}

/// A record's counters plus every thread's unflushed batch for it.
fn counters_of(rec: &record::Record, slot: u32, batches: &[shard::Batch]) -> Counters {
    let mut sum = Sum::of(rec);
    for b in batches {
        sum.add(slot, b);
    }
    sum.finish()
}

/// Counters being summed from a record and the shards' batches.
#[derive(Default)]
struct Sum {
    c: Counters,
    /// Live bytes of the record alone: the base each batch's peak sits on.
    record_live: u64,
}

impl Sum {
    fn of(rec: &record::Record) -> Sum {
        let alloc_bytes = rec.alloc_bytes.load(Ordering::Relaxed);
        let alloc_blocks = rec.alloc_blocks.load(Ordering::Relaxed);
        let free_bytes = rec.free_bytes.load(Ordering::Relaxed);
        let free_blocks = rec.free_blocks.load(Ordering::Relaxed);
        let c = Counters {
            live_bytes: alloc_bytes.wrapping_sub(free_bytes),
            live_blocks: alloc_blocks.wrapping_sub(free_blocks),
            total_bytes: alloc_bytes,
            total_blocks: alloc_blocks,
            peak_live_bytes: rec.peak_bytes.load(Ordering::Relaxed),
        };
        Sum {
            record_live: c.live_bytes,
            c,
        }
    }

    fn add(&mut self, slot: u32, b: &shard::Batch) {
        let c = &mut self.c;
        if slot == INTERNAL {
            let [alloc_bytes, alloc_blocks, free_bytes, free_blocks] = b.internal;
            c.live_bytes = c
                .live_bytes
                .wrapping_add(alloc_bytes)
                .wrapping_sub(free_bytes);
            c.live_blocks = c
                .live_blocks
                .wrapping_add(alloc_blocks)
                .wrapping_sub(free_blocks);
            c.total_bytes += alloc_bytes;
            c.total_blocks += alloc_blocks;
        }
        if b.slot != slot {
            return;
        }
        c.live_bytes = c
            .live_bytes
            .wrapping_add(b.alloc_bytes)
            .wrapping_sub(b.free_bytes);
        c.live_blocks = c
            .live_blocks
            .wrapping_add(b.alloc_blocks)
            .wrapping_sub(b.free_blocks);
        c.total_bytes += b.alloc_bytes;
        c.total_blocks += b.alloc_blocks;
        // The batch's peak happened on top of what the record held then; a
        // value wrapped "below zero" is no peak.
        let batch_peak = self.record_live.wrapping_add(b.peak_net.max(0) as u64);
        if batch_peak < 1 << 62 {
            c.peak_live_bytes = c.peak_live_bytes.max(batch_peak);
        }
    }

    fn finish(mut self) -> Counters {
        if self.c.live_bytes < 1 << 62 {
            self.c.peak_live_bytes = self.c.peak_live_bytes.max(self.c.live_bytes);
        }
        self.c
    }
}

fn owner_of(key: u64) -> Owner {
    if key & HANDLE_BIT != 0 {
        Owner::Task(key & !HANDLE_BIT)
    } else if key & BUCKET_BIT != 0 {
        match (key & !BUCKET_BIT) as u32 {
            UNTRACKED => Owner::Untracked,
            INTERNAL => Owner::Internal,
            OVERFLOW => Owner::Overflow,
            _ => Owner::Overflow,
        }
    } else {
        Owner::TokioTask(key)
    }
}
