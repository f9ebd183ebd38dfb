//! Multi-threaded stress test of the TurboWish global allocator.
//!
//! Eight threads each run `TURBOWISH_STRESS_OPS` (default 1,000,000) random
//! operations through `std::alloc`: `alloc`, `alloc_zeroed` (checked to be
//! zero), `realloc` growing and shrinking (the kept prefix is checked) and
//! `dealloc`, with sizes from 1 B to 1 MiB (mostly small) and alignments from
//! 1 to 4096 bytes and occasionally 64 KiB. Every pointer is checked to be
//! non-null and aligned, and every block is filled with a pattern derived from
//! the thread and operation that made it and checked before each `realloc`
//! and `dealloc`.
//!
//! Blocks are passed between threads, so many are freed or resized on a
//! thread other than the one that allocated them; operations run in no task,
//! in long-lived and short-lived task contexts (nested too, so frees cross
//! tags), and with tagging switched off, so blocks allocated while tagging is
//! off are freed while it is on and the other way round. Meanwhile a ninth
//! thread recycles the records of finished tasks, churns through new ones so
//! recycled records are soon reused, and reads `stats()`.
//!
//! When every thread has joined and every block has been freed, `stats()`
//! must be back to its baseline exactly: the `untracked`, `overflow` and
//! `internal` rows, and every task row at zero live bytes and blocks, also
//! after `sweep_idle_records()` has recycled the records of finished tasks.
//!
//! This binary has a single test, so that no other test allocates while the
//! counters are compared.

use std::alloc::{alloc, alloc_zeroed, dealloc, realloc, Layout};
use std::ptr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Barrier, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use turbowish_alloc::{context, Owner, Stats, TaskStats, TaskTag, TurboWish};

// Sampling compiled out: the sample table's storage is charged to
// `internal` and need not come back to its exact size when the samples are
// gone, which the exact `internal` baseline below would see. Sampling under
// churn is tested by `sampling_stress.rs`.
#[global_allocator]
static A: TurboWish = TurboWish::system().sample_interval(0);

/// Worker threads.
const THREADS: usize = 8;
/// Operations per thread unless `TURBOWISH_STRESS_OPS` says otherwise.
const DEFAULT_OPS: usize = 1_000_000;
/// Largest block size.
const MAX_SIZE: usize = 1 << 20;
/// Number of distinct starting offsets of a block's pattern in the table.
const OFFSETS: usize = 1 << 16;
/// Long-lived task tags shared by all threads.
const SHARED_TAGS: usize = 16;
/// A thread holding this many blocks (or bytes) mostly frees.
const MAX_LOCAL_BLOCKS: usize = 256;
const MAX_LOCAL_BYTES: usize = 8 << 20;

/// Compared against `alloc_zeroed` blocks (memcmp is fast even in debug).
static ZEROS: [u8; MAX_SIZE] = [0; MAX_SIZE];

/// xorshift64*: tiny, deterministic, good enough for choosing operations.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(mix(seed) | 1)
    }

    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in `0..n`.
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    /// Uniform in `lo..=hi`.
    fn range(&mut self, lo: usize, hi: usize) -> usize {
        lo + self.below(hi - lo + 1)
    }
}

/// splitmix64's finaliser.
fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// A block's size: 83% up to 256 B, 17% up to 64 KiB, 0.1% up to 1 MiB.
fn random_size(rng: &mut Rng) -> usize {
    match rng.below(1000) {
        0 => rng.range((64 << 10) + 1, MAX_SIZE),
        1..=170 => {
            let bits = rng.range(9, 16);
            rng.range((1 << (bits - 1)) + 1, 1 << bits)
        }
        _ => rng.range(1, 256),
    }
}

/// A block's alignment: mostly 1..=16, 15% 32..=4096, 0.1% 64 KiB.
fn random_align(rng: &mut Rng) -> usize {
    match rng.below(1000) {
        0 => 1 << 16,
        1..=150 => 1 << rng.range(5, 12),
        _ => 1 << rng.range(0, 4),
    }
}

/// Where the pattern of the block made by `thread` at operation `op` starts
/// in the pattern table.
fn pattern_offset(thread: usize, op: usize) -> usize {
    mix(((thread as u64) << 40) ^ op as u64) as usize % OFFSETS
}

/// Random bytes; a block's contents are `table[off..off + size]`.
fn pattern_table() -> Vec<u8> {
    let mut rng = Rng::new(0x7AB1E);
    let mut table = Vec::with_capacity(OFFSETS + MAX_SIZE);
    while table.len() < OFFSETS + MAX_SIZE {
        table.extend_from_slice(&rng.next().to_le_bytes());
    }
    table.truncate(OFFSETS + MAX_SIZE);
    table
}

/// A live allocation and what it must contain.
struct Block {
    ptr: *mut u8,
    size: usize,
    align: usize,
    /// Start of its pattern in the table.
    off: usize,
    /// Thread and operation that allocated it, for failure messages.
    thread: usize,
    op: usize,
}

// SAFETY: a `Block` is the only handle to its allocation (it is moved, never
// copied, between threads), and the global allocator may free a block on any
// thread.
unsafe impl Send for Block {}

impl Block {
    fn layout(&self) -> Layout {
        Layout::from_size_align(self.size, self.align).expect("valid layout")
    }

    /// Checks that the first `len` bytes hold the block's pattern.
    fn verify(&self, table: &[u8], len: usize, when: &str, by: usize) {
        debug_assert!(len <= self.size);
        // SAFETY: `ptr` is a live allocation of `size >= len` bytes owned by
        // this `Block`, all of them initialised (written with the pattern).
        let bytes = unsafe { std::slice::from_raw_parts(self.ptr, len) };
        let want = &table[self.off..self.off + len];
        if bytes != want {
            let at = bytes
                .iter()
                .zip(want)
                .position(|(a, b)| a != b)
                .unwrap_or(0);
            panic!(
                "{when} (thread {by}): block {:p} of {} B align {} made by thread {} at op {} \
                 is corrupt at byte {at}: {:#04x}, expected {:#04x}",
                self.ptr, self.size, self.align, self.thread, self.op, bytes[at], want[at],
            );
        }
    }
}

/// Panics unless `ptr` is a non-null pointer aligned for `layout`.
fn check_ptr(ptr: *mut u8, layout: Layout, what: &str) {
    assert!(!ptr.is_null(), "{what} returned null for {layout:?}");
    assert_eq!(
        ptr as usize & (layout.align() - 1),
        0,
        "{what} returned {ptr:p}, misaligned for {layout:?}",
    );
}

/// How often each operation ran, for the sanity checks and the summary.
#[derive(Debug, Default, Clone, Copy)]
struct Counts {
    alloc: usize,
    alloc_zeroed: usize,
    grow: usize,
    shrink: usize,
    dealloc: usize,
    sent: usize,
    received: usize,
    in_task: usize,
    ephemeral_tags: usize,
    tagging_off: usize,
    /// Calls of `sweep_idle_records` while the workers ran.
    sweeps: usize,
    /// Records it recycled.
    swept: usize,
}

impl Counts {
    fn add(&mut self, o: Counts) {
        self.alloc += o.alloc;
        self.alloc_zeroed += o.alloc_zeroed;
        self.grow += o.grow;
        self.shrink += o.shrink;
        self.dealloc += o.dealloc;
        self.sent += o.sent;
        self.received += o.received;
        self.in_task += o.in_task;
        self.ephemeral_tags += o.ephemeral_tags;
        self.tagging_off += o.tagging_off;
        self.sweeps += o.sweeps;
        self.swept += o.swept;
    }
}

/// State shared by the workers of one run.
struct Shared<'a> {
    table: &'a [u8],
    tags: &'a [TaskTag],
    /// Blocks sent to each thread, freed or adopted by it.
    inboxes: [Mutex<Vec<Block>>; THREADS],
    /// Workers done with their random operations.
    done: AtomicUsize,
    /// Set when a worker panics, so the others stop waiting for it.
    failed: AtomicBool,
}

/// Sets `failed` if the worker unwinds.
struct FailOnPanic<'a>(&'a AtomicBool);

impl Drop for FailOnPanic<'_> {
    fn drop(&mut self) {
        if thread::panicking() {
            self.0.store(true, Ordering::SeqCst);
        }
    }
}

struct Worker<'a> {
    id: usize,
    rng: Rng,
    shared: &'a Shared<'a>,
    pool: Vec<Block>,
    pool_bytes: usize,
    op: usize,
    counts: Counts,
}

impl<'a> Worker<'a> {
    fn run(shared: &'a Shared<'a>, id: usize, ops: usize) -> Counts {
        let _fail = FailOnPanic(&shared.failed);
        let mut w = Worker {
            id,
            rng: Rng::new(0x5EED_0000 + id as u64),
            shared,
            pool: Vec::with_capacity(2 * MAX_LOCAL_BLOCKS),
            pool_bytes: 0,
            op: 0,
            counts: Counts::default(),
        };
        while w.op < ops {
            let len = w.rng.range(1, 256).min(ops - w.op);
            w.chunk_in_context(len);
        }
        // No more sends after this point: once every worker is here, an
        // inbox only ever shrinks.
        shared.done.fetch_add(1, Ordering::SeqCst);
        while shared.done.load(Ordering::SeqCst) < THREADS {
            assert!(
                !shared.failed.load(Ordering::SeqCst),
                "another worker failed"
            );
            thread::sleep(Duration::from_millis(1));
        }
        w.receive(true);
        while let Some(block) = w.pool.pop() {
            w.free(block, "final dealloc");
        }
        w.counts
    }

    /// Runs `len` operations in a randomly chosen task context.
    fn chunk_in_context(&mut self, len: usize) {
        let tags = self.shared.tags;
        match self.rng.below(16) {
            0..=3 => self.chunk(len),
            4..=8 => {
                let _task = context::enter(&tags[self.rng.below(tags.len())]);
                self.counts.in_task += len;
                self.chunk(len);
            }
            9 | 10 => {
                // Nested contexts: inner, then back in outer.
                let _outer = context::enter(&tags[self.rng.below(tags.len())]);
                let half = len / 2;
                {
                    let _inner = context::enter(&tags[self.rng.below(tags.len())]);
                    self.chunk(half);
                }
                self.chunk(len - half);
                self.counts.in_task += len;
            }
            11 | 12 => {
                // A short-lived task: its tag is dropped while blocks it
                // allocated may still be live here or on other threads.
                let tag = TaskTag::new();
                {
                    let _task = context::enter(&tag);
                    self.chunk(len);
                }
                drop(tag);
                self.counts.in_task += len;
                self.counts.ephemeral_tags += 1;
            }
            _ => {
                // Tagging off (globally: other threads' operations too), in
                // a task half of the time.
                let tag = &tags[self.rng.below(tags.len())];
                let _task = (self.rng.below(2) == 0).then(|| context::enter(tag));
                turbowish_alloc::set_enabled(false);
                self.chunk(len);
                turbowish_alloc::set_enabled(true);
                self.counts.tagging_off += len;
            }
        }
    }

    fn chunk(&mut self, len: usize) {
        for _ in 0..len {
            self.step();
            self.op += 1;
        }
    }

    fn step(&mut self) {
        let full = self.pool.len() >= MAX_LOCAL_BLOCKS || self.pool_bytes >= MAX_LOCAL_BYTES;
        let choice = if self.pool.is_empty() {
            self.rng.below(40)
        } else if full {
            self.rng.range(40, 99)
        } else {
            self.rng.below(100)
        };
        match choice {
            0..=29 => self.alloc(false),
            30..=39 => self.alloc(true),
            40..=54 => self.realloc(),
            55..=79 => {
                let block = self.take_random();
                self.free(block, "dealloc");
            }
            80..=91 => self.send(),
            _ => self.receive(false),
        }
    }

    fn alloc(&mut self, zeroed: bool) {
        let size = random_size(&mut self.rng);
        let align = random_align(&mut self.rng);
        let layout = Layout::from_size_align(size, align).expect("valid layout");
        let ptr = if zeroed {
            // SAFETY: `layout` has a non-zero size.
            unsafe { alloc_zeroed(layout) }
        } else {
            // SAFETY: `layout` has a non-zero size.
            unsafe { alloc(layout) }
        };
        check_ptr(ptr, layout, if zeroed { "alloc_zeroed" } else { "alloc" });
        if zeroed {
            // SAFETY: `ptr` is a fresh zeroed allocation of `size` bytes.
            let bytes = unsafe { std::slice::from_raw_parts(ptr, size) };
            assert!(
                bytes == &ZEROS[..size],
                "alloc_zeroed returned non-zero bytes for {layout:?}",
            );
            self.counts.alloc_zeroed += 1;
        } else {
            self.counts.alloc += 1;
        }
        let off = pattern_offset(self.id, self.op);
        // SAFETY: `ptr` is valid for `size` bytes of writes and does not
        // overlap the table, which holds `off + size` bytes.
        unsafe { ptr::copy_nonoverlapping(self.shared.table[off..].as_ptr(), ptr, size) };
        self.pool_bytes += size;
        self.pool.push(Block {
            ptr,
            size,
            align,
            off,
            thread: self.id,
            op: self.op,
        });
    }

    fn realloc(&mut self) {
        let i = self.rng.below(self.pool.len());
        let grow = self.pool[i].size == 1 || self.rng.below(2) == 0;
        let extra = random_size(&mut self.rng);
        let table = self.shared.table;
        let block = &mut self.pool[i];
        let old = block.size;
        let new = if grow {
            (old + extra).min(MAX_SIZE)
        } else {
            extra.min(old - 1).max(1)
        };
        block.verify(table, old, "before realloc", self.id);
        // SAFETY: the block was allocated by the global allocator with
        // `block.layout()`; `new` is non-zero and at most 1 MiB, so it is a
        // valid size for the alignment.
        let ptr = unsafe { realloc(block.ptr, block.layout(), new) };
        let new_layout = Layout::from_size_align(new, block.align).expect("valid layout");
        check_ptr(ptr, new_layout, "realloc");
        block.ptr = ptr;
        block.size = new;
        block.verify(table, old.min(new), "after realloc", self.id);
        if new > old {
            // SAFETY: the new block holds `new` bytes; the table holds
            // `off + new` bytes and does not overlap it.
            unsafe {
                ptr::copy_nonoverlapping(table[block.off + old..].as_ptr(), ptr.add(old), new - old)
            };
            self.counts.grow += 1;
        } else {
            self.counts.shrink += 1;
        }
        self.pool_bytes = self.pool_bytes + new - old;
    }

    fn take_random(&mut self) -> Block {
        let i = self.rng.below(self.pool.len());
        let block = self.pool.swap_remove(i);
        self.pool_bytes -= block.size;
        block
    }

    fn free(&mut self, block: Block, when: &str) {
        block.verify(self.shared.table, block.size, when, self.id);
        // SAFETY: the block was allocated by the global allocator with this
        // layout and is not used after this.
        unsafe { dealloc(block.ptr, block.layout()) };
        self.counts.dealloc += 1;
    }

    /// Moves a random block to another thread, which will free or adopt it.
    fn send(&mut self) {
        let block = self.take_random();
        let to = (self.id + 1 + self.rng.below(THREADS - 1)) % THREADS;
        self.shared.inboxes[to].lock().unwrap().push(block);
        self.counts.sent += 1;
    }

    /// Takes this thread's inbox: frees half of the blocks and adopts the
    /// rest (frees all of them when `free_all`).
    fn receive(&mut self, free_all: bool) {
        let received = std::mem::take(&mut *self.shared.inboxes[self.id].lock().unwrap());
        self.counts.received += received.len();
        for block in received {
            let full = self.pool.len() >= MAX_LOCAL_BLOCKS || self.pool_bytes >= MAX_LOCAL_BYTES;
            if free_all || full || self.rng.below(2) == 0 {
                self.free(block, "dealloc of a received block");
            } else {
                block.verify(self.shared.table, block.size, "adopting a block", self.id);
                self.pool_bytes += block.size;
                self.pool.push(block);
            }
        }
    }
}

/// Until the workers are done: recycles the records of finished tasks while
/// the workers run (`sweep_idle_records`), claims and drops records in
/// bursts so that the table's claim cursor wraps and recycled records are
/// soon handed to new tasks, and reads `stats()` now and then (its values are
/// not checked: they race with the workers).
fn recycle(shared: &Shared<'_>) -> Counts {
    let _fail = FailOnPanic(&shared.failed);
    let mut counts = Counts::default();
    while shared.done.load(Ordering::SeqCst) < THREADS && !shared.failed.load(Ordering::SeqCst) {
        for _ in 0..256 {
            drop(TaskTag::new());
        }
        counts.swept += turbowish_alloc::sweep_idle_records();
        counts.sweeps += 1;
        if counts.sweeps % 16 == 0 {
            drop(turbowish_alloc::stats());
        }
        thread::sleep(Duration::from_millis(1));
    }
    counts
}

/// Runs `THREADS` workers of `ops` operations each, and a recycler, and
/// returns their counts.
fn run_workers(table: &[u8], tags: &[TaskTag], ops: usize) -> Counts {
    let shared = Shared {
        table,
        tags,
        inboxes: [const { Mutex::new(Vec::new()) }; THREADS],
        done: AtomicUsize::new(0),
        failed: AtomicBool::new(false),
    };
    let mut total = Counts::default();
    thread::scope(|s| {
        let shared = &shared;
        let handles: [_; THREADS] =
            std::array::from_fn(|id| s.spawn(move || Worker::run(shared, id, ops)));
        let recycler = s.spawn(move || recycle(shared));
        for handle in handles {
            total.add(handle.join().expect("worker panicked"));
        }
        total.add(recycler.join().expect("recycler panicked"));
    });
    for inbox in &shared.inboxes {
        assert!(
            inbox.lock().unwrap().is_empty(),
            "a sent block was never freed"
        );
    }
    total
}

/// Live bytes and blocks.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Live {
    bytes: u64,
    blocks: u64,
}

impl Live {
    fn of(row: Option<&TaskStats>) -> Live {
        row.map_or(Live::default(), |r| Live {
            bytes: r.counters.live_bytes,
            blocks: r.counters.live_blocks,
        })
    }

    fn add(&mut self, other: Live) {
        self.bytes = self.bytes.wrapping_add(other.bytes);
        self.blocks = self.blocks.wrapping_add(other.blocks);
    }
}

/// What must be back to its baseline at the end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Balance {
    untracked: Live,
    overflow: Live,
    /// The `internal` row. `stats()` allocates (as internal) the `Vec` it
    /// returns, at a fixed capacity, and scratch space sized by the number of
    /// per-thread shards ever claimed before it reads the counters, and
    /// counts them too: two calls compare exactly only if that number has not
    /// grown in between (see `claim_shards`).
    internal: Live,
    /// Sum over all task rows (each must be zero, see `nonzero_task_rows`).
    tasks: Live,
    /// Sum over all rows but `internal`.
    not_internal: Live,
}

impl Balance {
    fn of(stats: &Stats) -> Balance {
        let mut tasks = Live::default();
        let mut not_internal = Live::default();
        for row in &stats.tasks {
            if matches!(row.owner, Owner::Task(_) | Owner::TokioTask(_)) {
                tasks.add(Live::of(Some(row)));
            }
            if row.owner != Owner::Internal {
                not_internal.add(Live::of(Some(row)));
            }
        }
        Balance {
            untracked: Live::of(stats.task(Owner::Main)),
            overflow: Live::of(stats.task(Owner::Overflow)),
            internal: Live::of(stats.task(Owner::Internal)),
            tasks,
            not_internal,
        }
    }
}

/// Task rows that still hold live bytes or blocks.
fn nonzero_task_rows(stats: &Stats) -> impl Iterator<Item = &TaskStats> {
    stats.tasks.iter().filter(|r| {
        matches!(r.owner, Owner::Task(_) | Owner::TokioTask(_))
            && (r.counters.live_bytes != 0 || r.counters.live_blocks != 0)
    })
}

/// Waits (briefly) for `stats()` to match `before` with no live task row,
/// and returns the matching `Stats` and the number of attempts; panics with
/// both sides if that does not happen.
///
/// Every worker has joined (so its thread-exit frees and its final flush
/// have happened) and freed every block. Only another thread of the test
/// harness could allocate now, and only for a moment (for instance its
/// "running for over 60 seconds" notice), so a mismatch is looked at again a
/// few times before it counts as a failure; a counting error persists.
fn expect_balanced(before: &Balance, when: &str) -> (Stats, usize) {
    let mut attempt = 1;
    loop {
        let stats = turbowish_alloc::stats();
        let after = Balance::of(&stats);
        if after == *before && nonzero_task_rows(&stats).next().is_none() {
            return (stats, attempt);
        }
        if attempt == 20 {
            let rows: Vec<_> = nonzero_task_rows(&stats).collect();
            panic!(
                "{when}: counters are not back to their baseline\nbefore: {before:#?}\nafter: \
                 {after:#?}\ntask rows still live: {rows:#?}"
            );
        }
        attempt += 1;
        drop(stats);
        thread::sleep(Duration::from_millis(50));
    }
}

fn ops_per_thread() -> usize {
    let ops = match std::env::var("TURBOWISH_STRESS_OPS") {
        Ok(v) => v
            .trim()
            .parse()
            .expect("TURBOWISH_STRESS_OPS must be a number of operations"),
        Err(_) => DEFAULT_OPS,
    };
    assert!(ops > 0, "TURBOWISH_STRESS_OPS must be positive");
    ops
}

/// Has many threads hold a per-thread shard at once, so that the number of
/// shards ever claimed (which sizes `stats()`'s scratch space, counted in the
/// `internal` row) does not grow during the measured run.
fn claim_shards(threads: usize) {
    let barrier = Barrier::new(threads);
    thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                s.spawn(|| {
                    // The first allocation on a thread claims its shard
                    // (`black_box`: an unused box may be optimised away).
                    let held = std::hint::black_box(Box::new(0u64));
                    barrier.wait();
                    drop(held);
                })
            })
            .collect();
        // Joined explicitly: the end of a scope waits for the closures only,
        // not for the threads' exit (whose frees must precede the baseline).
        for handle in handles {
            handle.join().expect("thread panicked");
        }
    });
}

#[test]
fn stress_threads_tasks_and_toggling_balance_exactly() {
    let ops = ops_per_thread();
    let table = pattern_table();
    let tags: Vec<TaskTag> = (0..SHARED_TAGS).map(|_| TaskTag::new()).collect();

    // Warm-up: the first thread spawns, thread-local initialisations and
    // `stats()` call may make lazily-initialised, process-lifetime
    // allocations; let them happen before the baseline.
    {
        let warm_tags: Vec<TaskTag> = (0..2).map(|_| TaskTag::new()).collect();
        run_workers(&table, &warm_tags, ops.min(2_000));
        // More than the workers, the recycler and the harness's threads.
        claim_shards(2 * THREADS + 4);
        drop(turbowish_alloc::stats());
    }

    turbowish_alloc::set_enabled(true);
    let before = Balance::of(&turbowish_alloc::stats());
    assert_eq!(before.tasks, Live::default(), "task rows before the run");

    let started = Instant::now();
    let counts = run_workers(&table, &tags, ops);
    let elapsed = started.elapsed();
    turbowish_alloc::set_enabled(true);

    // Every task row is at zero (checked by `expect_balanced`); with enough
    // operations, check that the run exercised what it should.
    let (stats, attempts) = expect_balanced(&before, "after the run");
    let rows = stats.tasks.len();
    let exercised = ops >= 10_000;
    if exercised {
        for tag in &tags {
            let row = stats.counters(Owner::Task(tag.id()));
            assert!(row.total_blocks > 0, "shared tag {} unused", tag.id());
        }
        let total_ops = THREADS * ops;
        assert!(counts.alloc > 0 && counts.alloc_zeroed > 0 && counts.dealloc > 0);
        assert!(counts.grow > 0 && counts.shrink > 0 && counts.received > 0);
        assert!(counts.in_task > total_ops / 4 && counts.tagging_off > total_ops / 20);
        assert!(counts.ephemeral_tags > 0 && counts.sweeps > 0);
    }
    drop(stats);

    // Recycling the records of the finished short-lived tasks (which hold
    // nothing) must not move any count, and must leave the shared tags'.
    let swept = turbowish_alloc::sweep_idle_records();
    let (stats, _) = expect_balanced(&before, "after sweep_idle_records()");
    if exercised {
        for tag in &tags {
            let row = stats.task(Owner::Task(tag.id()));
            assert!(row.is_some(), "shared tag {} lost its record", tag.id());
        }
    }
    drop(stats);

    println!(
        "{THREADS} threads x {ops} ops in {elapsed:.2?}; balanced at attempt {attempts}; \
         {rows} rows, {swept} records swept; {counts:?}"
    );
    drop(tags);
}
