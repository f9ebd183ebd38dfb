//! Reading the counters: [`stats`] and [`sweep_idle_records`].

use core::sync::atomic::Ordering;

use crate::record::{self, Tag, BUCKET_BIT, FIRST_TASK_SLOT, HANDLE_BIT};
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
    /// Exact for a task whose allocations and frees all happen on one
    /// thread. Counts are batched per thread and folded in when a thread
    /// switches task or has grown by 1 MiB, so for a task that runs on
    /// several threads (a tokio task moving between workers) or whose blocks
    /// other threads free, and for the process-wide peak, the figure may be
    /// off by up to 1 MiB per thread.
    pub peak_live_bytes: u64,
}

/// Who a row of [`Stats::tasks`] belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Owner {
    /// Allocations outside any task: `main`, plain threads, before `main`,
    /// and thread exit. (`spawn_blocking` closures run as tokio tasks, so
    /// with the `tokio` feature they get a [`Owner::TokioTask`] row.)
    /// Shown as `main (outside tasks)`.
    Main,
    /// TurboWish's own allocations, and allocations made re-entrantly while
    /// TurboWish was running code that allocates.
    Internal,
    /// Tasks that found no free record: every record they looked at (16
    /// around a hash of a tokio task's id, 64 for a [`crate::TaskTag`]) was
    /// held by a task holding memory, which in practice means the record
    /// table is nearly full.
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
    /// Size of the record table: a bound on the tasks that can hold memory
    /// at once; new tasks start sharing the `overflow` bucket as the table
    /// nears it (see [`Owner::Overflow`]).
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
/// from reporting code, not per request.
///
/// At a quiescent moment the counts are exact. While other threads allocate
/// and free, a row can be off by what they do during the call: a block
/// allocated meanwhile may be missing, one allocated and freed meanwhile may
/// still count as live, and a batch a thread flushes into its record while
/// the row is read may be missed (up to about 1 MiB). But a free is not
/// counted without its block's allocation: a row whose live counts read
/// below zero is read again on its own. A record being recycled (or checked
/// for it) during the call is left out: it holds nothing live.
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
    let mut read = Read {
        shards: Vec::with_capacity(shard::shards_high()),
        rows: Vec::with_capacity(64),
        in_use: 0,
    };
    shard::read_consistent(
        &mut read,
        |read, index, slot| read.shards.push((index, slot)),
        |read, _| {
            let Read {
                shards,
                rows,
                in_use,
            } = read;
            rows.clear();
            *in_use = 0;
            for (slot, rec) in records.iter().enumerate().skip(OFF as usize + 1) {
                let slot = slot as u32;
                // `None`: free, or being claimed or recycled (holding nothing).
                let Some(mut snapshot) = rec.read() else {
                    continue;
                };
                let mut sum = Sum::of(&snapshot);
                if slot == INTERNAL {
                    sum.add_shards(slot, true, shards.iter().map(|&(index, _)| index));
                }
                let batching = shards.iter().filter(|&&(_, s)| s == slot);
                sum.add_shards(slot, false, batching.map(|&(index, _)| index));
                let mut c = sum.finish();
                if negative(&c) {
                    // Impossible in truth (a block is allocated before it
                    // is freed): a batch moved between reading the record
                    // and its batches, in an attempt that may be the last.
                    // Read this one row again on its own: that read is short,
                    // so its retries succeed.
                    match read_row(rec, slot, record::Record::read) {
                        Some((s, row)) => (snapshot, c) = (s, row),
                        None => continue,
                    }
                }
                if slot >= FIRST_TASK_SLOT {
                    *in_use += 1;
                }
                // A handle record nobody pins belongs to a task that has
                // ended; holding nothing, it is only waiting to be recycled.
                let ended_empty =
                    snapshot.owner & HANDLE_BIT != 0 && snapshot.pins == 0 && c.live_blocks == 0;
                if slot < FIRST_TASK_SLOT || (c.total_blocks > 0 && !ended_empty) {
                    rows.push(TaskStats {
                        owner: owner_of(snapshot.owner),
                        tag: Tag(slot),
                        counters: c,
                    });
                }
            }
            // The next attempt, if any, lists the shards afresh.
            shards.clear();
        },
    );
    let records_in_use = read.in_use;
    let mut rows = read.rows;
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
    /// allocate. For a tag that got no record of its own (see
    /// [`crate::TaskTag::new`]) these are the shared `overflow` bucket's.
    ///
    /// ```
    /// let tag = turbowish_alloc::TaskTag::new();
    /// assert_eq!(tag.counters().live_bytes, 0);
    /// ```
    pub fn counters(&self) -> Counters {
        let slot = self.tag().slot();
        // The tag pins its record (or the record is a bucket), so unlike
        // `stats` this need not guard against recycling.
        let key = self.key();
        read_row(record::get(slot), slot, |rec| Some(rec.counts(key)))
            .map_or_else(Counters::default, |(_, c)| c)
    }
}

/// Record `slot`'s counters plus every batch for it, in a seqlock read of
/// their own; `read` copies the record (`None`: skip it).
fn read_row(
    rec: &record::Record,
    slot: u32,
    read: impl Fn(&record::Record) -> Option<record::Snapshot>,
) -> Option<(record::Snapshot, Counters)> {
    let mut row = None;
    shard::read_consistent(
        &mut row,
        |_, _, _| {},
        |row, shards| {
            *row = read(rec).map(|snapshot| {
                let mut sum = Sum::of(&snapshot);
                if slot == INTERNAL {
                    sum.add_shards(slot, true, 0..shards);
                }
                sum.add_shards(slot, false, 0..shards);
                (snapshot, sum.finish())
            });
        },
    );
    row
}

/// Whether live counts wrapped "below zero".
fn negative(c: &Counters) -> bool {
    c.live_bytes >= 1 << 62 || c.live_blocks >= 1 << 62
}

/// What `stats` collects inside its consistent read.
struct Read {
    /// Every shard's index and the record its batch was for when the
    /// attempt began.
    shards: Vec<(usize, u32)>,
    rows: Vec<TaskStats>,
    /// Claimed task records (`Stats::records_in_use`).
    in_use: usize,
}

/// Counters being summed from a record and the shards' batches.
#[derive(Default)]
struct Sum {
    c: Counters,
    /// Live bytes of the record alone: the base each batch's peak sits on.
    record_live: u64,
}

impl Sum {
    fn of(rec: &record::Snapshot) -> Sum {
        let c = Counters {
            live_bytes: rec.alloc_bytes.wrapping_sub(rec.free_bytes),
            live_blocks: rec.alloc_blocks.wrapping_sub(rec.free_blocks),
            total_bytes: rec.alloc_bytes,
            total_blocks: rec.alloc_blocks,
            peak_live_bytes: rec.peak_bytes,
        };
        Sum {
            record_live: c.live_bytes,
            c,
        }
    }

    /// Takes frees away from the live counts.
    fn sub(&mut self, bytes: u64, blocks: u64) {
        self.c.live_bytes = self.c.live_bytes.wrapping_sub(bytes);
        self.c.live_blocks = self.c.live_blocks.wrapping_sub(blocks);
    }

    /// Adds allocations; `peak_net` is a batch's highest net growth, which
    /// happened on top of what the record held then.
    fn add_allocs(&mut self, bytes: u64, blocks: u64, peak_net: Option<i64>) {
        let c = &mut self.c;
        c.live_bytes = c.live_bytes.wrapping_add(bytes);
        c.live_blocks = c.live_blocks.wrapping_add(blocks);
        c.total_bytes += bytes;
        c.total_blocks += blocks;
        if let Some(peak_net) = peak_net {
            // A value wrapped "below zero" is no peak.
            let batch_peak = self.record_live.wrapping_add(peak_net.max(0) as u64);
            if batch_peak < 1 << 62 {
                c.peak_live_bytes = c.peak_live_bytes.max(batch_peak);
            }
        }
    }

    /// Adds the batches of the shards among `shards` that batch for record
    /// `slot` (their `internal` mini-batches instead, if `internal`).
    ///
    /// Frees are read before allocations (see `shard::read_consistent`), and
    /// then again: a reader delayed between the two (preempted, say) would
    /// otherwise count every block allocated and freed meanwhile as live.
    /// If the frees moved, the allocations are read again after them, a few
    /// times at most; the last frees read before the last allocations stand.
    fn add_shards(
        &mut self,
        slot: u32,
        internal: bool,
        shards: impl Iterator<Item = usize> + Clone,
    ) {
        let freed = || {
            shards.clone().fold((0u64, 0u64), |(bytes, blocks), index| {
                let f = shard::frees_of(index);
                if internal {
                    (
                        bytes.wrapping_add(f.internal_bytes),
                        blocks.wrapping_add(f.internal_blocks),
                    )
                } else if f.slot == slot {
                    (bytes.wrapping_add(f.bytes), blocks.wrapping_add(f.blocks))
                } else {
                    (bytes, blocks)
                }
            })
        };
        let allocated = || {
            shards
                .clone()
                .fold((0u64, 0u64, None), |(bytes, blocks, peak), index| {
                    let a = shard::allocs_of(index);
                    if internal {
                        (bytes + a.internal_bytes, blocks + a.internal_blocks, None)
                    } else if a.slot == slot {
                        (
                            bytes + a.bytes,
                            blocks + a.blocks,
                            peak.max(Some(a.peak_net)),
                        )
                    } else {
                        (bytes, blocks, peak)
                    }
                })
        };
        let mut frees = freed();
        let mut allocs = allocated();
        for _ in 0..4 {
            let again = freed();
            if again == frees {
                break;
            }
            frees = again;
            allocs = allocated();
        }
        self.sub(frees.0, frees.1);
        self.add_allocs(allocs.0, allocs.1, allocs.2);
    }

    fn finish(mut self) -> Counters {
        if self.c.live_bytes < 1 << 62 {
            self.c.peak_live_bytes = self.c.peak_live_bytes.max(self.c.live_bytes);
        }
        self.c
    }
}

/// The owner of an allocation tagged `tag` made just now on this thread
/// (whose record, if a task's, cannot be recycled meanwhile: the thread's
/// batch holds the allocation).
pub(crate) fn owner_of_tag(tag: u32) -> Owner {
    match tag {
        record::OFF | record::UNTRACKED => Owner::Main,
        record::INTERNAL => Owner::Internal,
        record::OVERFLOW => Owner::Overflow,
        _ => owner_of(crate::shard::owner_settled(tag)),
    }
}

fn owner_of(key: u64) -> Owner {
    if key & HANDLE_BIT != 0 {
        Owner::Task(key & !HANDLE_BIT)
    } else if key & BUCKET_BIT != 0 {
        match (key & !BUCKET_BIT) as u32 {
            UNTRACKED => Owner::Main,
            INTERNAL => Owner::Internal,
            OVERFLOW => Owner::Overflow,
            _ => Owner::Overflow,
        }
    } else {
        Owner::TokioTask(key)
    }
}
