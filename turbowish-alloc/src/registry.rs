//! Heap-walk mode (issue #7): a registry of live blocks, so that a heap
//! walker can map any address to the block containing it, and a way to pause
//! frees while it looks.
//!
//! Every block allocated in heap-walk mode gets an *entry* in one global
//! array (user pointer, size, alignment; the tag and sampled bit stay in the
//! block's header, written before the entry is published), and its header's
//! `flags` hold the entry's index (31 bits, beside the `SAMPLED` bit). The
//! array is reserved with `mmap` on first use and never moves, so an index
//! is all a free needs. Indices are handed out from per-thread free lists
//! (plain thread-local loads and stores), refilled in chunks of [`CHUNK`]
//! from a global stack of chunks or a bump index, and given back to the
//! freeing thread's list: no lock, no hashing, no allocation per block.
//!
//! [`heap_view`] pauses frees: it sets [`PAUSED`], makes sure every thread
//! either has seen it or has finished the free it was in (Dekker-style: a
//! free raises its thread's `in_free` counter, then reads `PAUSED`; the view
//! sets `PAUSED`, then reads the counters), and lists the entries. While
//! frees are paused, a free does not reach the inner allocator: it pushes
//! the entry on a lock-free stack linked through the entries (for a block
//! of 4 GiB or more, through its header; no allocation, no waiting), and
//! dropping the view frees them. The free path pays only a compiler fence
//! for its side of the handshake: the view runs
//! `membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED)`, which executes a full
//! barrier on every thread of the process (asymmetric Dekker, as in
//! liburcu). Where membarrier is missing (old kernels, valgrind), both
//! sides use a SeqCst fence.

use core::alloc::Layout;
use core::sync::atomic::{
    compiler_fence, fence, AtomicBool, AtomicPtr, AtomicU32, AtomicU64, AtomicU8, AtomicUsize,
    Ordering,
};

use crate::header::SAMPLED;
use crate::shard::{self, Local};
use crate::Owner;

/// Whether the global allocator runs in heap-walk mode: true once a
/// TurboWish allocator built with [`crate::TurboWish::heap_walk`] has
/// allocated (false before its first allocation, and when none is
/// installed).
///
/// ```
/// use turbowish_alloc::TurboWish;
///
/// #[global_allocator]
/// static ALLOC: TurboWish = TurboWish::system().heap_walk();
///
/// fn main() {
///     assert!(turbowish_alloc::heap_walk_enabled());
/// }
/// ```
pub fn heap_walk_enabled() -> bool {
    STATE.load(Ordering::Acquire) == READY
}

/// Pauses frees and returns every live block, sorted by start; `None`
/// unless in heap-walk mode, while another view exists (a second caller
/// does not wait: it could be the thread holding the first view), or when
/// frees cannot be paused safely (the `membarrier` system call the pause
/// relies on worked at start-up but fails now, e.g. under a seccomp filter
/// installed later).
///
/// In a child process forked while another thread of the parent held a
/// view, that view is gone: frees run normally in the child and
/// `heap_view` works again there. (A view moved to another thread than the
/// one that took it counts as held by the thread that took it.)
///
/// While the view lives, frees from any thread are deferred (queued without
/// allocating and without blocking), so no block in the view goes back to
/// the inner allocator, and its memory stays readable; dropping the view
/// frees them. Allocations go on; blocks allocated while the view is built
/// may or may not be in it. Blocks freed while the view lives still count as
/// live in [`crate::stats()`] until it is dropped, and their memory is not
/// reused meanwhile: a view held long in a program that frees quickly lets
/// the heap grow by what is freed meanwhile. A drop that frees 64 MiB or
/// more at once then trims glibc's heap (`malloc_trim`), which would
/// otherwise keep the space.
///
/// Building a view reads every registry entry ever used (a high-water mark
/// that never goes down): about 16 ms per 16 million, however few blocks
/// are live now.
///
/// TurboWish's own bookkeeping blocks (allocated under its re-entrancy
/// guard, such as the view's own list) are not registered, nor are blocks
/// allocated once the registry's 16,777,215 entries are all in use.
/// Building the view allocates (charged to `internal`), and over 256 Ki
/// blocks sorts them on up to four threads of its own, started and joined
/// inside this call.
///
/// ```
/// use turbowish_alloc::{Owner, TurboWish};
///
/// #[global_allocator]
/// static ALLOC: TurboWish = TurboWish::system().heap_walk();
///
/// fn main() {
///     let block = vec![1u32; 10];
///     let view = turbowish_alloc::heap_view().expect("heap-walk mode");
///     let inside = block.as_ptr() as usize + 12;
///     let found = view.find(inside).expect("a live block");
///     assert_eq!((found.start, found.size), (block.as_ptr() as usize, 40));
///     assert_eq!(found.owner, Owner::Main);
/// }
/// ```
pub fn heap_view() -> Option<HeapView> {
    if !heap_walk_enabled() || VIEW_ACTIVE.swap(true, Ordering::AcqRel) {
        return None;
    }
    // SAFETY: pthread_self has no preconditions.
    VIEW_THREAD.store(unsafe { libc::pthread_self() } as usize, Ordering::Relaxed);
    PAUSED.store(true, Ordering::SeqCst);
    if !barrier_all() {
        // membarrier worked when asymmetric mode was chosen but fails now
        // (a seccomp filter installed since, say): frees pay only a
        // compiler fence, so without the barrier a free may still read
        // `PAUSED` unset after the counters below read zero, and release a
        // block the view lists. No safe view: undo the pause. Frees that
        // did see it queued their blocks; free them now (a free that
        // queues after the drain leaves its block to the next one).
        PAUSED.store(false, Ordering::SeqCst);
        wait_frees_done();
        drain_deferred();
        VIEW_THREAD.store(0, Ordering::Relaxed);
        VIEW_ACTIVE.store(false, Ordering::Release);
        return None;
    }
    wait_frees_done();
    // From here on no registered block goes back to the inner allocator.
    let was = shard::enter_busy();
    let blocks = list_live();
    shard::leave_busy(was);
    Some(HeapView {
        blocks,
        listed: std::sync::OnceLock::new(),
        _pause: PauseGuard(()),
    })
}

/// Lists the live entries in compact form (see [`CompactBlocks`]), with
/// frees paused: 8 bytes per block, sorted in place.
///
/// Two passes over the entries ever used: the first counts the blocks of
/// each 4 GiB window of addresses and marks the live entries in a bitset,
/// the second packs exactly the marked ones. A block allocated between the
/// passes is left out (blocks allocated while the view is built may or may
/// not be in it), and a block marked in the first pass is still there in
/// the second: frees are paused.
fn list_live() -> CompactBlocks {
    let high = NEXT.load(Ordering::Acquire).min(CAPACITY) as usize;
    let entries = &entries()[..high.max(1)];
    let mut live = vec![0u64; high.div_ceil(64)];
    // (window base, blocks in it), sorted by base: a handful of windows
    // (the main heap, the thread arenas, the mapped area).
    let mut windows: Vec<(usize, u32)> = Vec::new();
    let mut last = usize::MAX;
    let mut last_at = 0;
    for (index, entry) in entries.iter().enumerate().skip(1) {
        let start = entry.ptr.load(Ordering::Acquire);
        if start == 0 {
            continue;
        }
        live[index / 64] |= 1 << (index % 64);
        let base = start & !WINDOW_MASK;
        if base != last {
            last_at = match windows.binary_search_by_key(&base, |&(b, _)| b) {
                Ok(at) => at,
                Err(at) => {
                    windows.insert(at, (base, 0));
                    at
                }
            };
            last = base;
        }
        windows[last_at].1 += 1;
    }
    let mut first = Vec::with_capacity(windows.len());
    let mut total = 0u32;
    for &(_, count) in &windows {
        first.push(total);
        total += count;
    }
    let mut packed = vec![0u64; total as usize];
    let mut cursor = first.clone();
    let mut large_starts: Vec<(usize, usize)> = Vec::new();
    last = usize::MAX;
    for (word_at, &word) in live.iter().enumerate() {
        let mut bits = word;
        while bits != 0 {
            let index = word_at * 64 + bits.trailing_zeros() as usize;
            bits &= bits - 1;
            let entry = &entries[index];
            // Published before `ptr` (see `publish`), and not changed while
            // frees are paused: a consistent entry.
            let start = entry.ptr.load(Ordering::Acquire);
            let size = entry.size();
            let base = start & !WINDOW_MASK;
            if base != last {
                last_at = windows
                    .binary_search_by_key(&base, |&(b, _)| b)
                    .expect("counted in the first pass");
                last = base;
            }
            if size >= LARGE as usize {
                large_starts.push((start, size));
            }
            packed[cursor[last_at] as usize] = pack(start - base, size);
            cursor[last_at] += 1;
        }
    }
    let groups: Vec<(usize, u32)> = windows
        .iter()
        .zip(&first)
        .map(|(&(base, _), &first)| (base, first))
        .collect();
    let mut blocks = CompactBlocks {
        groups,
        packed,
        large: Vec::new(),
    };
    let spans: Vec<core::ops::Range<usize>> = (0..blocks.groups.len())
        .map(|g| blocks.group_span(g))
        .collect();
    let workers = sort_workers(blocks.packed.len());
    sort_windows(&mut blocks.packed, &spans, workers);
    blocks.large = large_starts
        .into_iter()
        .map(|(start, size)| {
            let at = blocks
                .position(start)
                .expect("a listed block is in the view");
            (at as u32, size)
        })
        .collect();
    blocks.large.sort_unstable();
    blocks
}

/// Sorts each window's span of `packed` (the spans cover it, in order)
/// on up to `workers` threads, the calling one included. Most of a big
/// heap sits in one or two windows, so a window larger than a worker's
/// share is first cut in two around its median (`select_nth_unstable`,
/// one pass, a pass more for each further cut), whose halves then sort
/// apart: no scratch memory, where merging sorted halves would need 8
/// bytes a block more.
fn sort_windows(packed: &mut [u64], spans: &[core::ops::Range<usize>], workers: usize) {
    let mut jobs: Vec<&mut [u64]> = Vec::with_capacity(spans.len() + 2 * workers);
    let mut rest = packed;
    let mut at = 0;
    for span in spans {
        let (this, after) = core::mem::take(&mut rest).split_at_mut(span.end - at);
        jobs.push(&mut this[span.start - at..]);
        rest = after;
        at = span.end;
    }
    if workers <= 1 {
        for job in jobs {
            job.sort_unstable();
        }
        return;
    }
    let total: usize = jobs.iter().map(|j| j.len()).sum();
    let share = total.div_ceil(workers).max(1);
    let mut cut: Vec<&mut [u64]> = Vec::with_capacity(jobs.len() + 2 * workers);
    while let Some(job) = jobs.pop() {
        if job.len() <= share || job.len() < 2 {
            cut.push(job);
            continue;
        }
        let mid = job.len() / 2;
        job.select_nth_unstable(mid);
        let (low, high) = job.split_at_mut(mid);
        jobs.push(low);
        jobs.push(high);
    }
    // Largest first, taken one at a time by whichever worker is free. Each
    // job sits behind a lock only to hand its slice to one thread: the
    // counter gives every job to exactly one worker, so no lock is ever
    // contended (and a worker that cannot be started leaves its share to
    // the others).
    cut.sort_unstable_by_key(|j| core::cmp::Reverse(j.len()));
    let cut: Vec<std::sync::Mutex<&mut [u64]>> =
        cut.into_iter().map(std::sync::Mutex::new).collect();
    let next = AtomicUsize::new(0);
    let work = || loop {
        let k = next.fetch_add(1, Ordering::Relaxed);
        let Some(job) = cut.get(k) else { break };
        job.lock()
            .unwrap_or_else(|e| e.into_inner())
            .sort_unstable();
    };
    std::thread::scope(|scope| {
        for _ in 1..workers {
            // A thread that cannot start leaves its share to the others.
            let _ = std::thread::Builder::new()
                .name("turbowish-view".into())
                .spawn_scoped(scope, || {
                    // Its allocations, if any, are TurboWish's own, as the
                    // view thread's are.
                    let was = shard::enter_busy();
                    work();
                    shard::leave_busy(was);
                });
        }
        work();
    });
}

/// How many threads sort a heap view of `blocks` blocks: one per core (at
/// most four) from [`PARALLEL_SORT`] blocks on.
fn sort_workers(blocks: usize) -> usize {
    helper_threads(blocks, PARALLEL_SORT)
}

/// How many threads (the calling one included) share work over `items`
/// items: one per core, at most four, from `from` items on; one below
/// that. For TurboWish's own crates (the heap view's sort, the walk's
/// marking), so that both decide alike.
#[doc(hidden)]
pub fn helper_threads(items: usize, from: usize) -> usize {
    if items < from {
        return 1;
    }
    std::thread::available_parallelism().map_or(1, |n| n.get().min(4))
}

/// The view size from which its sort is shared out among threads: a
/// quarter of a million blocks sort in about 10 ms, a thread starts in
/// tens of microseconds.
const PARALLEL_SORT: usize = 1 << 18;

/// Addresses sharing their bits above these make one window of
/// [`CompactBlocks`]: a block's start is its window's base plus 32 bits.
const WINDOW_MASK: usize = u32::MAX as usize;

/// The size field of a packed block of this size or more: the size itself
/// is in [`CompactBlocks::large`].
const LARGE: u32 = u32::MAX;

/// A block as [`CompactBlocks::packed`] holds it: the offset of its start
/// in its window above, the size (or [`LARGE`]) below, so that packed
/// blocks sort by start.
#[inline]
fn pack(offset: usize, size: usize) -> u64 {
    debug_assert!(offset <= WINDOW_MASK);
    ((offset as u64) << 32) | size.min(LARGE as usize) as u64
}

/// Live blocks in compact form, sorted by start: 8 bytes a block (a
/// million blocks in 8 MB; [`LiveBlock`]s take 40), for walkers that keep
/// millions of them while they look.
///
/// Blocks are grouped by the 4 GiB window of addresses their start lies
/// in (`start & !0xffff_ffff`, a handful of windows in a real heap); within
/// a window a block is one `u64`: the start's low 32 bits above, the size
/// below, or `u32::MAX` for a size of `u32::MAX` (4 GiB - 1) or more, which
/// is then listed in `large`. Packed values sort by start, so each window's
/// run is sorted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CompactBlocks {
    /// Per window, in address order: its base (low 32 bits zero) and the
    /// index in `packed` of its first block. Window `k`'s blocks run up to
    /// the next window's first block (or the end).
    groups: Vec<(usize, u32)>,
    /// Every block, window by window.
    packed: Vec<u64>,
    /// The blocks of 4 GiB or more, by index: (index, size), sorted.
    large: Vec<(u32, usize)>,
}

impl CompactBlocks {
    /// Compact blocks from `(start, size)` pairs sorted by start (then by
    /// size), none of which runs past the end of the address space, or
    /// `None` when they are not sorted or are more than `u32::MAX`.
    pub fn from_sorted(blocks: impl IntoIterator<Item = (usize, usize)>) -> Option<CompactBlocks> {
        let mut out = CompactBlocks::default();
        let mut previous: Option<(usize, usize)> = None;
        for (start, size) in blocks {
            if previous.is_some_and(|p| p > (start, size)) {
                return None;
            }
            previous = Some((start, size));
            let index = u32::try_from(out.packed.len()).ok()?;
            let base = start & !WINDOW_MASK;
            if out.groups.last().is_none_or(|&(b, _)| b != base) {
                out.groups.push((base, index));
            }
            if size >= LARGE as usize {
                out.large.push((index, size));
            }
            out.packed.push(pack(start - base, size));
        }
        Some(out)
    }

    /// Number of blocks.
    #[inline]
    pub fn len(&self) -> usize {
        self.packed.len()
    }

    /// Whether there are none.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.packed.is_empty()
    }

    /// The windows: (base, index of the first block), in address order.
    #[inline]
    pub fn groups(&self) -> &[(usize, u32)] {
        &self.groups
    }

    /// The packed blocks (see the type's docs).
    #[inline]
    pub fn packed(&self) -> &[u64] {
        &self.packed
    }

    /// The index range in [`CompactBlocks::packed`] of window `g`.
    #[inline]
    pub fn group_span(&self, g: usize) -> core::ops::Range<usize> {
        let first = self.groups[g].1 as usize;
        let end = self
            .groups
            .get(g + 1)
            .map_or(self.packed.len(), |&(_, f)| f as usize);
        first..end
    }

    /// The window block `i` lies in.
    #[inline]
    pub fn group_of(&self, i: usize) -> usize {
        self.groups
            .partition_point(|&(_, first)| first as usize <= i)
            - 1
    }

    /// The start of block `i`, whose window's base is `base`.
    #[inline]
    pub fn start_in(&self, base: usize, i: usize) -> usize {
        base + (self.packed[i] >> 32) as usize
    }

    /// The start of block `i`.
    #[inline]
    pub fn start(&self, i: usize) -> usize {
        self.start_in(self.groups[self.group_of(i)].0, i)
    }

    /// The size of block `i`.
    #[inline]
    pub fn size(&self, i: usize) -> usize {
        let small = self.packed[i] as u32;
        if small != LARGE {
            return small as usize;
        }
        self.large_size(i)
    }

    #[cold]
    fn large_size(&self, i: usize) -> usize {
        let at = self
            .large
            .binary_search_by_key(&(i as u32), |&(index, _)| index)
            .expect("every block of LARGE size is listed");
        self.large[at].1
    }

    /// The index of the block starting at `start`, if any.
    pub fn position(&self, start: usize) -> Option<usize> {
        let base = start & !WINDOW_MASK;
        let g = self.groups.binary_search_by_key(&base, |&(b, _)| b).ok()?;
        let span = self.group_span(g);
        let key = ((start - base) as u64) << 32;
        let run = &self.packed[span.clone()];
        let at = run.partition_point(|&p| p < key);
        (at < run.len() && run[at] >> 32 == key >> 32).then_some(span.start + at)
    }
}

/// Keeps frees paused: the part of a [`HeapView`] that
/// [`HeapView::into_parts`] hands over with its blocks. Dropping it lets
/// frees go on and frees the blocks whose frees were deferred.
#[derive(Debug)]
pub struct PauseGuard(());

/// The live blocks at one moment, with frees paused while it lives (see
/// [`heap_view`]).
#[derive(Debug)]
pub struct HeapView {
    blocks: CompactBlocks,
    /// The blocks as [`LiveBlock`]s, made on the first call that needs
    /// them.
    listed: std::sync::OnceLock<Vec<LiveBlock>>,
    _pause: PauseGuard,
}

/// One live block of a [`HeapView`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LiveBlock {
    /// The user address (what the allocation returned).
    pub start: usize,
    /// Its size in bytes (as the caller asked).
    pub size: usize,
    /// The task that allocated it.
    pub owner: Owner,
    /// Whether it has a sample (see [`crate::samples`]).
    pub sampled: bool,
}

impl HeapView {
    /// Every live block, sorted by start; blocks do not overlap.
    ///
    /// Made on the first call (40 bytes a block, and a read of each
    /// block's header); [`HeapView::compact`] is the view as it is held.
    pub fn blocks(&self) -> &[LiveBlock] {
        self.listed.get_or_init(|| {
            let _internal = crate::internal();
            let blocks = &self.blocks;
            let mut listed = Vec::with_capacity(blocks.len());
            for g in 0..blocks.groups.len() {
                let base = blocks.groups[g].0;
                for i in blocks.group_span(g) {
                    let start = blocks.start_in(base, i);
                    // SAFETY: `start` is a block of this view: its header
                    // was written before its entry was published (read
                    // with Acquire when listed), it stays allocated while
                    // the view pauses frees, and a deferred free changes
                    // only its index bits, atomically.
                    let header = unsafe { crate::header::read_shared(start as *const u8) };
                    listed.push(LiveBlock {
                        start,
                        size: blocks.size(i),
                        owner: crate::stats::owner_of_tag(header.tag),
                        sampled: header.flags & SAMPLED != 0,
                    });
                }
            }
            listed
        })
    }

    /// The live blocks in the compact form the view holds them in.
    pub fn compact(&self) -> &CompactBlocks {
        &self.blocks
    }

    /// The blocks, and the guard that keeps frees paused (and so the
    /// blocks allocated) for as long as it lives.
    pub fn into_parts(self) -> (CompactBlocks, PauseGuard) {
        (self.blocks, self._pause)
    }

    /// The block containing `addr` (`start <= addr < start + size`), in
    /// O(log n) once [`HeapView::blocks`]' list exists: the first call
    /// builds it (40 bytes a block, allocated). A walk looks blocks up with
    /// [`HeapView::index_of`], which allocates nothing.
    pub fn find(&self, addr: usize) -> Option<&LiveBlock> {
        self.index_of(addr).map(|i| &self.blocks()[i])
    }

    /// The index in [`HeapView::blocks`] of the block containing `addr`.
    pub fn index_of(&self, addr: usize) -> Option<usize> {
        let blocks = &self.blocks;
        // The last window starting at or below `addr`, then the last block
        // in it starting at or below; a block of an earlier window may
        // reach into this one only if this one has no block before `addr`.
        let mut g = blocks
            .groups
            .partition_point(|&(b, _)| b <= addr)
            .checked_sub(1)?;
        loop {
            let (base, _) = blocks.groups[g];
            let span = blocks.group_span(g);
            let key = (((addr - base).min(WINDOW_MASK) as u64) << 32) | u64::from(u32::MAX);
            let after = blocks.packed[span.clone()].partition_point(|&p| p <= key);
            if after > 0 {
                let i = span.start + after - 1;
                let start = blocks.start_in(base, i);
                return (addr - start < blocks.size(i)).then_some(i);
            }
            g = g.checked_sub(1)?;
        }
    }
}

/// Whether a block listed by a [`HeapView`] is TurboWish's own
/// (`Owner::Internal`): [`owner_of_block`] without its look-up of the
/// task's record, for walkers that ask for every block they enter.
///
/// # Safety
///
/// As for [`owner_of_block`].
#[inline]
pub unsafe fn is_internal_block(start: usize) -> bool {
    // SAFETY: as in `owner_of_block`.
    let header = unsafe { crate::header::read_shared(start as *const u8) };
    // Only the fixed `internal` slot holds the internal bucket: task slots
    // hold task keys.
    header.tag == crate::record::INTERNAL
}

/// The owner of a block listed by a [`HeapView`], read from its header.
///
/// # Safety
///
/// `start` must be the start of a block of a heap view (or of its
/// [`CompactBlocks`]) whose frees are still paused: a registered block,
/// allocated for the length of the call.
pub unsafe fn owner_of_block(start: usize) -> Owner {
    // SAFETY: the caller vouches that `start` is a registered block that
    // stays allocated; its header was written before its entry was
    // published, and while frees are paused only a deferred free changes
    // it (its index bits, atomically: see `defer`).
    let header = unsafe { crate::header::read_shared(start as *const u8) };
    crate::stats::owner_of_tag(header.tag)
}

impl Drop for PauseGuard {
    fn drop(&mut self) {
        PAUSED.store(false, Ordering::SeqCst);
        // Should the barrier fail (see `heap_view`), a free that still reads
        // `PAUSED` set only queues its block after the drain: it waits for
        // the next one, which is no harm.
        let _ = barrier_all();
        // A free that saw `PAUSED` set is done queueing once its counter
        // drops; later ones free directly.
        wait_frees_done();
        drain_deferred();
        VIEW_THREAD.store(0, Ordering::Relaxed);
        VIEW_ACTIVE.store(false, Ordering::Release);
    }
}

/// Frees the blocks whose frees were deferred while frees were paused.
/// Runs once `PAUSED` is unset again; a free that queues meanwhile pushes
/// onto the emptied stack, never onto the list taken here.
fn drain_deferred() {
    let mut index = DEFERRED.swap(0, Ordering::Acquire);
    let release = RELEASE.load(Ordering::Acquire);
    let owner = OWNER.load(Ordering::Acquire);
    let mut drained = 0usize;
    while index != 0 {
        let entry = entry(index);
        let user = entry.ptr.load(Ordering::Relaxed);
        let word = entry.word.load(Ordering::Relaxed);
        let size = size_of_word(word);
        let next = if word & DEFERRED_LINK != 0 {
            ((word >> 32) & FIELD) as u32
        } else {
            // SAFETY: a deferred block of 4 GiB or more holds its link in
            // its header's index bits (see `defer`); it is not freed yet,
            // and its header is accessed atomically while a view may read.
            unsafe { crate::header::read_shared(user as *const u8) }.flags & INDEX_MASK
        };
        let align = 1usize << ((word >> ALIGN_SHIFT) & 0x3f);
        entry.ptr.store(0, Ordering::Relaxed);
        // SAFETY: `release` was stored by the allocator that owns the
        // registry (`OWNER`), with its type; the entry is a block of
        // that allocator, allocated with this size and alignment, whose
        // free was deferred and happens exactly once, here.
        unsafe {
            let release: ReleaseFn = core::mem::transmute::<*mut (), ReleaseFn>(release);
            let layout = Layout::from_size_align_unchecked(size, align);
            release(owner.cast_const(), user as *mut u8, layout);
        }
        put_index(shard::local(), index);
        drained = drained.saturating_add(size);
        index = next;
    }
    if drained >= TRIM_AFTER {
        trim();
    }
}

/// Bytes freed at once by a drain past which the heap is trimmed: a long
/// walk of a program that frees quickly piles up everything it freed
/// meanwhile, and glibc keeps the arena space those blocks leave once they
/// all go back together (seen: 5 GB resident for 9 MB live after 30 s of
/// walks under four threads of churn; 67 MB after a trim).
const TRIM_AFTER: usize = 64 << 20;

/// Gives the system allocator's free memory back to the system (glibc's
/// `malloc_trim`; nothing elsewhere). It frees memory TurboWish's inner
/// allocator holds only when that is the system allocator, and costs a
/// walk of glibc's arenas otherwise: once per large drain. It holds each
/// arena's lock while it returns that arena's free pages, so other
/// threads' allocations in that arena wait meanwhile (milliseconds on a
/// heap of gigabytes).
fn trim() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim takes the arenas' own locks; it may be called at
    // any time from any thread that is not inside malloc.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Header `flags` bits holding a block's registry index (0: none).
pub(crate) const INDEX_MASK: u32 = !SAMPLED;

/// Frees a block of the allocator `owner` (type-erased `&TurboWish<A>`):
/// what `dealloc` does once the registry is done with the block.
pub(crate) type ReleaseFn = unsafe fn(*const (), *mut u8, Layout);

/// Registers a fresh block: writes its header (`tag`, and `flags` with the
/// entry's index) and then publishes its entry, so that a view that lists
/// the block can read its header. Returns false, writing nothing, when the
/// block is not registered. `owner` identifies the allocator (only the
/// first heap-walk allocator to allocate owns the registry) and `release`
/// frees its blocks.
///
/// # Safety
///
/// `user` must be the user pointer of a fresh block of ours, whose header
/// has not been written yet.
#[inline(always)]
pub(crate) unsafe fn register(
    owner: *const (),
    release: ReleaseFn,
    user: usize,
    layout: Layout,
    tag: u32,
    flags: u32,
) -> bool {
    let local = shard::local();
    // The length, not the head, says whether the list can be taken from:
    // 1..=CHUNK entries. An empty list (0) and the markers `UNHOOKED` and
    // `EXITED` go to the cold path.
    let len = local.reg_free_len.get();
    if len.wrapping_sub(1) >= CHUNK
        || layout.size() >= MAX_SIZE
        || local.busy()
        || OWNER.load(Ordering::Relaxed).cast_const() != owner
    {
        // SAFETY: as for this function.
        return unsafe { register_cold(local, owner, release, user, layout, tag, flags) };
    }
    let index = local.reg_free.get();
    let entry = entry(index);
    local.reg_free.set(entry.next());
    local.reg_free_len.set(local.reg_free_len.get() - 1);
    // SAFETY: the caller hands over a fresh block's header to write.
    unsafe { write_header(user, tag, flags | index) };
    publish(entry, user, layout);
    true
}

/// Writes a registered block's header.
///
/// # Safety
///
/// As for [`crate::header::write`].
#[inline(always)]
unsafe fn write_header(user: usize, tag: u32, flags: u32) {
    // SAFETY: guaranteed by the caller.
    unsafe { crate::header::write(user as *mut u8, crate::header::Header { tag, flags }) }
}

/// Frees registered block `index`: `release` (the allocator's own free)
/// runs unless frees are paused, in which case the block is queued for the
/// view's drop.
#[inline(always)]
pub(crate) fn free(index: u32, release: impl FnOnce()) {
    let gate = Gate::enter();
    // SeqCst: a plain load on x86; it orders the slow path's `fetch_add`
    // before it in the C++ model too.
    if PAUSED.load(Ordering::SeqCst) {
        defer(index);
        gate.leave();
        return;
    }
    entry(index).ptr.store(0, Ordering::Relaxed);
    release();
    put_index(shard::local(), index);
    gate.leave();
}

/// `realloc` of registered block `index`: runs `resize` (the allocator's
/// own realloc, which returns the new user pointer, or `None` if it
/// failed) with frees held off, and points the entry at the new block (or,
/// should it be too large for an entry, unregisters it). Returns `None`
/// without calling `resize` while frees are paused: the caller must then
/// allocate, copy and free (deferred).
#[inline(always)]
pub(crate) fn resize(
    index: u32,
    layout: Layout,
    resize: impl FnOnce() -> Option<usize>,
) -> Option<Option<usize>> {
    let gate = Gate::enter();
    // SeqCst: a plain load on x86; it orders the slow path's `fetch_add`
    // before it in the C++ model too.
    if PAUSED.load(Ordering::SeqCst) {
        gate.leave();
        return None;
    }
    let result = resize();
    // (On failure the block stays as it was; its header says whether it
    // is still sampled.)
    if let Some(user) = result {
        if layout.size() < MAX_SIZE {
            publish(entry(index), user, layout);
        } else {
            // No real allocator gets here (see `MAX_SIZE`); should one, the
            // block goes on unregistered rather than misdescribed.
            entry(index).ptr.store(0, Ordering::Relaxed);
            // SAFETY: `user` is the live block `resize` just returned, whose
            // header it wrote.
            unsafe {
                let header = crate::header::read(user as *const u8);
                crate::header::write(
                    user as *mut u8,
                    crate::header::Header {
                        flags: header.flags & !INDEX_MASK,
                        ..header
                    },
                );
            }
            put_index(shard::local(), index);
        }
    }
    gate.leave();
    Some(result)
}

/// Hands this exiting thread's free indices back to the global stack, so
/// that they are not lost with it.
pub(crate) fn thread_exit(local: &Local) {
    for (head, len) in [
        (
            local.reg_free.replace(0),
            local.reg_free_len.replace(EXITED),
        ),
        (local.reg_spare.replace(0), local.reg_spare_len.replace(0)),
    ] {
        if head != 0 {
            push_chunk(head, len);
        }
    }
}

/// `reg_free_len` of an exited thread: above [`CHUNK`], so its frees take
/// the cold path, which gives their indices straight back.
const EXITED: u32 = u32::MAX / 2;

/// `reg_free_len` of a thread that has not used the registry yet: above
/// [`CHUNK`], so its first registration or free takes the cold path, which
/// makes sure the thread has an exit hook (`thread_exit`) before it keeps
/// any index. Without one, a thread that never claims a shard (one that
/// only frees blocks other threads allocated, or any thread while tagging
/// is disabled) would take its indices with it when it exits.
pub(crate) const UNHOOKED: u32 = u32::MAX / 2 + 1;

/// Entries the registry holds at most (index 0 is never used): 256 MiB of
/// address space, resident only as far as used.
const CAPACITY: u32 = 1 << 24;

/// Indices moved between a thread and the global pool at a time.
const CHUNK: u32 = 64;

/// One registry entry: 16 bytes, the steady cost of heap-walk mode per
/// live block (it was 32 with the tag, alignment and links kept apart:
/// 122 MiB for 4,000,000 blocks). The tag and sampled bit are in the
/// block's header.
///
/// Live: `ptr` non-zero, `word` the size, and log2 of the alignment at
/// [`ALIGN_SHIFT`]. Deferred (freed while paused): still live; a block
/// under 4 GiB keeps its size in `word`'s low half, its alignment, and the
/// next deferred index at bits 32..56, flagged [`DEFERRED_LINK`]; a larger
/// one keeps its word and the link in its header's index bits (never in
/// its own bytes, which a walker may be reading). Free:
/// `ptr` zero, `word` holds the next index of the list the entry is on
/// (bits 0..24), and for a chunk's first entry the next chunk (24..48) and
/// the chunk's length (48..56).
#[repr(C, align(16))]
#[derive(Debug)]
struct Entry {
    ptr: AtomicUsize,
    word: AtomicU64,
}

/// `Entry::word` of a deferred block under 4 GiB: bits 32..56 link the
/// deferred stack (the alignment stays at [`ALIGN_SHIFT`]).
const DEFERRED_LINK: u64 = 1 << 63;

/// One index field of a free entry's word.
const FIELD: u64 = (1 << 24) - 1;

/// The size a live or deferred entry's word gives.
#[inline(always)]
fn size_of_word(word: u64) -> usize {
    if word & DEFERRED_LINK != 0 {
        word as u32 as usize
    } else {
        (word & (MAX_SIZE as u64 - 1)) as usize
    }
}

impl Entry {
    /// The size of a live (or deferred) block.
    #[inline(always)]
    fn size(&self) -> usize {
        size_of_word(self.word.load(Ordering::Relaxed))
    }

    /// A free entry's link in its list.
    #[inline(always)]
    fn next(&self) -> u32 {
        (self.word.load(Ordering::Relaxed) & FIELD) as u32
    }

    /// Links a free entry (and forgets any chunk fields: it heads no
    /// chunk until [`Entry::set_chunk`] says so). Only the thread that
    /// holds the index writes its entry.
    #[inline(always)]
    fn set_next(&self, next: u32) {
        self.word.store(u64::from(next), Ordering::Relaxed);
    }

    /// A chunk head's (next chunk, length). Possibly stale: see
    /// `take_chunk`.
    #[inline(always)]
    fn chunk(&self) -> (u32, u32) {
        let word = self.word.load(Ordering::Relaxed);
        (((word >> 24) & FIELD) as u32, ((word >> 48) & 0xff) as u32)
    }

    /// Makes a free entry a chunk head, keeping its link.
    #[inline(always)]
    fn set_chunk(&self, chunk_next: u32, len: u32) {
        let next = self.word.load(Ordering::Relaxed) & FIELD;
        let word = next | (u64::from(chunk_next) & FIELD) << 24 | u64::from(len) << 48;
        self.word.store(word, Ordering::Relaxed);
    }
}

/// Where an entry's word keeps log2 of the block's alignment (six bits);
/// sizes are below [`MAX_SIZE`], so the bits above them are free.
const ALIGN_SHIFT: u32 = 56;

/// Blocks of this size or more are not registered: 64 PiB, more than any
/// 64-bit address space a process has (57-bit virtual addresses at most),
/// so no block a real allocator returns.
const MAX_SIZE: usize = 1 << ALIGN_SHIFT;

/// `STATE` values.
const UNSET: u8 = 0;
const SETTING_UP: u8 = 1;
const READY: u8 = 2;
const FAILED: u8 = 3;

static STATE: AtomicU8 = AtomicU8::new(UNSET);
/// The entry array (`CAPACITY` entries, zeroed by `mmap`).
static ENTRIES: AtomicPtr<Entry> = AtomicPtr::new(core::ptr::null_mut());
/// The allocator that owns the registry, and its `ReleaseFn`.
static OWNER: AtomicPtr<()> = AtomicPtr::new(core::ptr::null_mut());
static RELEASE: AtomicPtr<()> = AtomicPtr::new(core::ptr::null_mut());
/// The next never-used index.
static NEXT: AtomicU32 = AtomicU32::new(1);
/// Global stack of free chunks: the first entry's index in the low 32
/// bits, a counter bumped by every change in the high 32 (against ABA).
static FREE_CHUNKS: AtomicU64 = AtomicU64::new(0);
/// Set while a view lives: frees are deferred.
static PAUSED: AtomicBool = AtomicBool::new(false);
/// Set while a view exists (one at a time).
static VIEW_ACTIVE: AtomicBool = AtomicBool::new(false);
/// The thread that took the current view (`pthread_self`; 0 while none
/// holds it, or just before the taker stores itself), for
/// `after_fork_child`.
static VIEW_THREAD: AtomicUsize = AtomicUsize::new(0);
/// Top of the stack of deferred frees (an entry index, 0: empty).
static DEFERRED: AtomicU32 = AtomicU32::new(0);
/// Frees in progress on threads without a shard to count them in.
static SLOW_FREES: AtomicUsize = AtomicUsize::new(0);
/// Whether `membarrier` serves the view's side of the handshake, so the
/// free's side needs only a compiler fence.
static ASYMMETRIC: AtomicBool = AtomicBool::new(false);

/// The entry array. Only called once the registry is `READY`.
fn entries() -> &'static [Entry] {
    let base = ENTRIES.load(Ordering::Acquire);
    debug_assert!(!base.is_null());
    // SAFETY: once READY, `base` points to CAPACITY zero-initialised
    // entries (an all-zero `Entry` is valid: atomics), mapped for the life
    // of the process and only accessed through atomics.
    unsafe { core::slice::from_raw_parts(base, CAPACITY as usize) }
}

#[inline(always)]
fn entry(index: u32) -> &'static Entry {
    let base = ENTRIES.load(Ordering::Relaxed);
    debug_assert!(index != 0 && index < CAPACITY && !base.is_null());
    // SAFETY: indices are only handed out below CAPACITY once the array is
    // mapped (READY, which happens-before any index reaches another thread
    // through a header or a list); entries are never unmapped.
    unsafe { &*base.add(index as usize) }
}

/// Fills an entry and publishes it: the view reads `ptr` (Acquire) first,
/// so it never sees a half-written entry.
#[inline(always)]
fn publish(entry: &Entry, user: usize, layout: Layout) {
    debug_assert!(layout.size() < MAX_SIZE);
    let word = layout.size() as u64 | u64::from(layout.align().trailing_zeros()) << ALIGN_SHIFT;
    entry.word.store(word, Ordering::Relaxed);
    entry.ptr.store(user, Ordering::Release);
}

/// [`register`]'s slow path: the thread's list is empty or not set up, or
/// the registry is not.
///
/// # Safety
///
/// As for [`register`].
#[cold]
#[inline(never)]
unsafe fn register_cold(
    local: &Local,
    owner: *const (),
    release: ReleaseFn,
    user: usize,
    layout: Layout,
    tag: u32,
    flags: u32,
) -> bool {
    if local.busy() || layout.size() >= MAX_SIZE || !set_up(owner, release) {
        return false;
    }
    hook_exit(local);
    let index = if local.exiting() {
        // Keep nothing in a thread that is going away: one index straight
        // from the pool.
        match take_chunk() {
            Some((head, len)) => {
                if len > 1 {
                    push_chunk(entry(head).next(), len - 1);
                }
                head
            }
            None => return false,
        }
    } else {
        if local.reg_free_len.get() == 0 {
            if local.reg_spare.get() != 0 {
                swap_lists(local);
            } else {
                let Some((head, len)) = take_chunk() else {
                    return false;
                };
                local.reg_free.set(head);
                local.reg_free_len.set(len);
            }
        }
        let index = local.reg_free.get();
        local.reg_free.set(entry(index).next());
        local.reg_free_len.set(local.reg_free_len.get() - 1);
        index
    };
    // SAFETY: the caller hands over a fresh block's header to write.
    unsafe { write_header(user, tag, flags | index) };
    publish(entry(index), user, layout);
    true
}

/// Before a thread first keeps registry indices: makes sure it has an exit
/// hook that gives them back ([`thread_exit`], run when its shard is
/// released), claiming a shard for it if it has none yet. A thread that
/// cannot get one is treated as exiting: it keeps no index.
#[cold]
fn hook_exit(local: &Local) {
    if local.reg_free_len.get() != UNHOOKED {
        return;
    }
    shard::claim_for_exit_hook(local);
    local
        .reg_free_len
        .set(if local.exiting() { EXITED } else { 0 });
}

/// Makes sure the registry is set up and owned by `owner`; false if it is
/// another allocator's or could not be mapped.
fn set_up(owner: *const (), release: ReleaseFn) -> bool {
    loop {
        match STATE.compare_exchange(UNSET, SETTING_UP, Ordering::AcqRel, Ordering::Acquire) {
            Ok(_) => break,
            Err(READY) => return OWNER.load(Ordering::Acquire).cast_const() == owner,
            Err(FAILED) => return false,
            Err(_) => std::thread::yield_now(),
        }
    }
    let bytes = CAPACITY as usize * core::mem::size_of::<Entry>();
    // SAFETY: an anonymous private mapping with no address hint; the result
    // is checked. MAP_NORESERVE: only the pages touched become resident.
    let base = unsafe {
        libc::mmap(
            core::ptr::null_mut(),
            bytes,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
            -1,
            0,
        )
    };
    if base == libc::MAP_FAILED {
        STATE.store(FAILED, Ordering::Release);
        return false;
    }
    ASYMMETRIC.store(register_membarrier(), Ordering::Relaxed);
    // Under the re-entrancy guard: libc may allocate to record the
    // handler, and that allocation must not come back here (it would wait
    // for this set-up to finish). Should registration fail, a child forked
    // during a free may wait for it forever, as before.
    let was = shard::enter_busy();
    // SAFETY: a handler with the signature pthread_atfork expects, which
    // only touches atomics and this thread's `Local`. Registered once:
    // set-up runs once.
    unsafe { libc::pthread_atfork(None, None, Some(after_fork_child)) };
    shard::leave_busy(was);
    ENTRIES.store(base.cast(), Ordering::Release);
    OWNER.store(owner.cast_mut(), Ordering::Release);
    RELEASE.store(release as *mut (), Ordering::Release);
    STATE.store(READY, Ordering::Release);
    true
}

/// A chunk of free indices: from the global stack, or fresh ones.
fn take_chunk() -> Option<(u32, u32)> {
    let mut top = FREE_CHUNKS.load(Ordering::Acquire);
    loop {
        let head = top as u32;
        if head == 0 {
            break;
        }
        // Possibly stale if another thread takes this chunk first; the
        // counter in `top` then makes the exchange fail.
        let (next, _) = entry(head).chunk();
        let new = (((top >> 32) + 1) << 32) | u64::from(next);
        match FREE_CHUNKS.compare_exchange_weak(top, new, Ordering::Acquire, Ordering::Acquire) {
            Ok(_) => return Some((head, entry(head).chunk().1)),
            Err(now) => top = now,
        }
    }
    let start = NEXT.fetch_add(CHUNK, Ordering::Relaxed);
    if start >= CAPACITY {
        NEXT.store(CAPACITY, Ordering::Relaxed);
        return None;
    }
    let end = (start + CHUNK).min(CAPACITY);
    for index in start..end {
        let next = if index + 1 < end { index + 1 } else { 0 };
        entry(index).set_next(next);
    }
    Some((start, end - start))
}

/// Puts the list starting at `head` (`len` entries) on the global stack.
fn push_chunk(head: u32, len: u32) {
    let first = entry(head);
    let mut top = FREE_CHUNKS.load(Ordering::Relaxed);
    loop {
        first.set_chunk(top as u32, len);
        let new = (((top >> 32) + 1) << 32) | u64::from(head);
        match FREE_CHUNKS.compare_exchange_weak(top, new, Ordering::Release, Ordering::Relaxed) {
            Ok(_) => return,
            Err(now) => top = now,
        }
    }
}

/// Gives a freed index to this thread's list. Two lists of at most
/// [`CHUNK`] per thread, as in Bonwick's magazines: a full list is swapped
/// with an empty spare, and only when both are full does one go to the
/// global stack, so a thread that allocates and frees around a boundary
/// does not go back and forth to the global stack.
#[inline(always)]
fn put_index(local: &Local, index: u32) {
    let len = local.reg_free_len.get();
    if len >= CHUNK {
        return put_index_cold(local, index);
    }
    entry(index).set_next(local.reg_free.get());
    local.reg_free.set(index);
    local.reg_free_len.set(len + 1);
}

#[cold]
#[inline(never)]
fn put_index_cold(local: &Local, index: u32) {
    hook_exit(local);
    if local.exiting() {
        // (`thread_exit` left the length at `EXITED`, which leads here.)
        // A chunk of one: its link must end it, not point into the list
        // the entry was last on.
        entry(index).set_next(0);
        push_chunk(index, 1);
        return;
    }
    if local.reg_spare_len.get() == 0 {
        swap_lists(local);
    } else {
        push_chunk(local.reg_spare.get(), local.reg_spare_len.get());
        local.reg_spare.set(local.reg_free.replace(0));
        local.reg_spare_len.set(local.reg_free_len.replace(0));
    }
    put_index(local, index);
}

/// Swaps a thread's free list and its spare.
fn swap_lists(local: &Local) {
    local.reg_free.swap(&local.reg_spare);
    local.reg_free_len.swap(&local.reg_spare_len);
}

/// Queues a block freed while frees are paused.
fn defer(index: u32) {
    let entry = entry(index);
    let user = entry.ptr.load(Ordering::Relaxed);
    let live = entry.word.load(Ordering::Relaxed);
    let size = size_of_word(live);
    let align = live & (0x3f << ALIGN_SHIFT);
    let mut top = DEFERRED.load(Ordering::Relaxed);
    loop {
        if size <= u32::MAX as usize {
            let word = DEFERRED_LINK | align | u64::from(top) << 32 | size as u64;
            entry.word.store(word, Ordering::Relaxed);
        } else {
            // Not in the block's own bytes: a walker may be scanning them
            // (a view lists the block until its drop), and would race with
            // the store and read the link in place of the program's data.
            // SAFETY: the block is being freed by its owner, so its header
            // is ours until the drain releases it, and only this free
            // writes it now; while a view may read it, its readers load it
            // atomically (`header::read_shared`). Its index bits are the
            // entry's own index, which the drain knows: the tag and the
            // sampled bit, which readers and the release use, are kept.
            let header = unsafe { crate::header::shared(user as *const u8) };
            let kept = header.load(Ordering::Relaxed) & !(u64::from(INDEX_MASK) << 32);
            header.store(kept | u64::from(top) << 32, Ordering::Relaxed);
        }
        match DEFERRED.compare_exchange_weak(top, index, Ordering::Release, Ordering::Relaxed) {
            Ok(_) => return,
            Err(now) => top = now,
        }
    }
}

/// The free side of the handshake with [`heap_view`]: raised before the
/// free reads `PAUSED`, lowered when it is done.
struct Gate(Option<&'static AtomicU32>);

impl Gate {
    #[inline(always)]
    fn enter() -> Gate {
        match shard::local().in_free() {
            Some(counter) => {
                // Single writer: a plain increment (frees may nest).
                counter.store(counter.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
                if ASYMMETRIC.load(Ordering::Relaxed) {
                    // The view's membarrier orders this store before the
                    // load of PAUSED on this thread's behalf.
                    compiler_fence(Ordering::SeqCst);
                } else {
                    fence(Ordering::SeqCst);
                }
                Gate(Some(counter))
            }
            None => {
                SLOW_FREES.fetch_add(1, Ordering::SeqCst);
                Gate(None)
            }
        }
    }

    #[inline(always)]
    fn leave(self) {
        match self.0 {
            Some(counter) => counter.store(counter.load(Ordering::Relaxed) - 1, Ordering::Release),
            None => {
                SLOW_FREES.fetch_sub(1, Ordering::Release);
            }
        }
    }
}

/// The view's side of the handshake: after `PAUSED` changed, every thread
/// has either seen it or shows its free in progress. False if that could
/// not be ensured: in asymmetric mode frees rely on the membarrier, so a
/// failing one cannot be replaced by a fence on this side alone.
fn barrier_all() -> bool {
    if ASYMMETRIC.load(Ordering::Relaxed) {
        return membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED);
    }
    fence(Ordering::SeqCst);
    true
}

/// `pthread_atfork` child handler. The child has only the forking thread:
/// the frees other threads were in when it forked never finish there, so
/// their counters must not keep a view waiting; and a view another thread
/// held is never dropped there, so frees must not stay paused.
///
/// # Safety
///
/// Called only by `pthread_atfork`'s child hook, in a child just forked
/// (one thread, the forking one), before it runs anything else.
unsafe extern "C" fn after_fork_child() {
    shard::clear_in_free_of_others();
    SLOW_FREES.store(0, Ordering::SeqCst);
    // SAFETY: pthread_self has no preconditions.
    let me = unsafe { libc::pthread_self() } as usize;
    if VIEW_ACTIVE.load(Ordering::Acquire) && VIEW_THREAD.load(Ordering::Relaxed) != me {
        // Blocks already queued stay queued until the next view's drop.
        PAUSED.store(false, Ordering::SeqCst);
        VIEW_ACTIVE.store(false, Ordering::Release);
    }
}

fn wait_frees_done() {
    shard::wait_frees_done();
    shard::spin_until(|| SLOW_FREES.load(Ordering::SeqCst) == 0);
}

const MEMBARRIER_CMD_PRIVATE_EXPEDITED: libc::c_int = 1 << 3;
const MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED: libc::c_int = 1 << 4;

/// Registers the process for private expedited membarriers; false where
/// the kernel (or valgrind) does not offer them.
fn register_membarrier() -> bool {
    membarrier(MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED)
}

#[cfg(target_os = "linux")]
fn membarrier(cmd: libc::c_int) -> bool {
    // SAFETY: membarrier takes two integers and touches no memory of ours.
    unsafe { libc::syscall(libc::SYS_membarrier, cmd, 0) == 0 }
}

#[cfg(not(target_os = "linux"))]
fn membarrier(_cmd: libc::c_int) -> bool {
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A view of made-up blocks, for lookups only: never dropped (its
    /// guard would resume frees), never read (the blocks are not there).
    fn view_of(blocks: &[(usize, usize)]) -> core::mem::ManuallyDrop<HeapView> {
        core::mem::ManuallyDrop::new(HeapView {
            blocks: CompactBlocks::from_sorted(blocks.iter().copied()).unwrap(),
            listed: std::sync::OnceLock::new(),
            _pause: PauseGuard(()),
        })
    }

    /// Sorting the view's windows on several threads sorts each window
    /// as one thread does: windows of every size (empty, one block, most
    /// of the view, which is cut around its median, with repeated values),
    /// each sorted within its own span and never across spans.
    #[test]
    fn windows_sort_alike_on_any_number_of_threads() {
        let mut x = 0x853c_49e6_748f_ea9bu64;
        let mut next = move |bound: u64| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x % bound
        };
        for round in 0..20 {
            let mut lengths: Vec<usize> = (0..1 + next(5)).map(|_| next(300) as usize).collect();
            lengths.push(if round % 2 == 0 { 0 } else { 1 });
            lengths.insert(
                next(lengths.len() as u64) as usize,
                20_000 + next(20_000) as usize,
            );
            let mut spans = Vec::new();
            let mut at = 0;
            for len in lengths {
                spans.push(at..at + len);
                at += len;
            }
            // Few distinct values: ties around the cut.
            let values: Vec<u64> = (0..at)
                .map(|_| next(if round % 3 == 0 { 50 } else { 1 << 40 }))
                .collect();
            let mut expected = values.clone();
            for span in &spans {
                expected[span.clone()].sort_unstable();
            }
            for workers in [1, 2, 3, 4] {
                let mut sorted = values.clone();
                sort_windows(&mut sorted, &spans, workers);
                assert!(sorted == expected, "round {round}, {workers} workers");
            }
        }
    }

    /// `HeapView::index_of` and `CompactBlocks` agree with a plain search
    /// over blocks that straddle 4 GiB windows, span several, or have sizes
    /// around `u32::MAX`; and for an empty view and a single block.
    #[test]
    fn view_lookups_agree_with_a_plain_search_across_windows() {
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = |bound: usize| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x % bound as u64) as usize
        };
        assert_eq!(view_of(&[]).index_of(0x1000), None);
        for round in 0..300 {
            // Starting just below a window boundary.
            let mut at = ((next(4) << 32) + WINDOW_MASK - next(1 << 12)) & !7;
            let count = if round == 0 { 1 } else { 1 + next(40) };
            let mut blocks = Vec::new();
            for _ in 0..count {
                let size = match next(6) {
                    0 => (1 << 32) + next(1 << 33),
                    1 => u32::MAX as usize - 8 + next(16),
                    2 => 8 + next(1 << 12),
                    _ => 8 + next(64),
                };
                blocks.push((at, size));
                let gap = if next(4) == 0 {
                    next(1 << 34)
                } else {
                    next(64)
                };
                at = (at + size + gap + 7) & !7;
            }
            let view = view_of(&blocks);
            let plain = |addr: usize| {
                let i = blocks.partition_point(|b| b.0 <= addr).checked_sub(1)?;
                (addr - blocks[i].0 < blocks[i].1).then_some(i)
            };
            for (i, &(start, size)) in blocks.iter().enumerate() {
                assert_eq!((view.blocks.start(i), view.blocks.size(i)), (start, size));
                assert_eq!(view.blocks.position(start), Some(i));
                let probes = [
                    start.wrapping_sub(1),
                    start,
                    start + size / 2,
                    start + size - 1,
                    start + size,
                    start + (1 << 32),
                    (start | WINDOW_MASK) + 1,
                ];
                for addr in probes {
                    assert_eq!(view.index_of(addr), plain(addr), "{addr:#x} in {blocks:x?}");
                }
            }
        }
    }
}
