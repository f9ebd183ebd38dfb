//! Edge cases of the allocator itself, each checked with exact counts on a
//! `TaskTag` row of its own (the process-wide buckets see other threads of
//! the test harness):
//!
//! * (a) `alignments_up_to_64k`: every power-of-two alignment from 1 to
//!   65,536 with sizes around it returns an aligned, writable block, all
//!   counted exactly and freed cleanly;
//! * (b) `alloc_zeroed_is_zeroed`: `alloc_zeroed` returns zeroed memory even
//!   right after a garbage-filled block of the same layout was freed;
//! * (c) `realloc_keeps_contents`: growing and shrinking (alignments 1 to
//!   4096, across the mmap threshold) keeps contents and counts a realloc as
//!   a free plus an allocation;
//! * (d) `enable_switch`: blocks allocated while tagging is off move no
//!   counter, not even when freed (or reallocated) while on; blocks
//!   allocated while on and freed while off are still decremented;
//! * (e) `thread_exit_allocations`: allocations in a Rust thread-local
//!   destructor, in a pthread key destructor that runs after TurboWish has
//!   released the thread's shard, and in the body of a thread that exits,
//!   all work and are charged to `Owner::Main`, which returns exactly to
//!   its baseline once they are freed. Run in a forked child, where no
//!   thread of the test harness can move the shared `untracked` bucket;
//! * (f) `fork_while_another_thread_allocates`: `fork()` while another thread
//!   allocates, reallocates, reads stats and claims tags hard; the child
//!   allocates and frees thousands of blocks, frees blocks inherited from
//!   the parent, checks its counts and exits 0;
//! * (g) `allocation_before_main`: a function in `.init_array` allocates a
//!   `Box` before `main` (and before the Rust runtime is set up); it works,
//!   is counted under `Owner::Main` and its header names that bucket.
//!
//! The tests are serialised with a mutex: (d) switches tagging off for the
//! whole process.

use std::alloc::{GlobalAlloc, Layout};
use std::hint::black_box;
use std::ptr;
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

use turbowish_alloc::{context, stats, Counters, Owner, TaskTag, TurboWish};

mod common;
use common::{fork_between, in_forked_child, row, serial};

#[global_allocator]
static A: TurboWish = TurboWish::system();

/// Live bytes, live blocks, total bytes, total blocks of a row.
fn counts(c: Counters) -> (u64, u64, u64, u64) {
    (c.live_bytes, c.live_blocks, c.total_bytes, c.total_blocks)
}

fn pattern(i: usize, seed: usize) -> u8 {
    (i.wrapping_mul(31).wrapping_add(seed * 7)) as u8
}

/// Fills `len` bytes at `p` with a pattern.
///
/// # Safety
///
/// `p` must be valid for writes of `len` bytes.
unsafe fn fill(p: *mut u8, len: usize, seed: usize) {
    for i in 0..len {
        // SAFETY: `i < len` and the caller guarantees `len` writable bytes.
        unsafe { p.add(i).write(pattern(i, seed)) };
    }
}

/// Checks the pattern written by [`fill`].
///
/// # Safety
///
/// `p` must be valid for reads of `len` initialised bytes.
unsafe fn check(p: *const u8, len: usize, seed: usize) -> bool {
    // SAFETY: guaranteed by the caller.
    let bytes = unsafe { std::slice::from_raw_parts(p, len) };
    bytes
        .iter()
        .enumerate()
        .all(|(i, &b)| b == pattern(i, seed))
}

// ---------------------------------------------------------------- (a)

#[test]
fn alignments_up_to_64k() {
    let _serial = serial();
    let tag = TaskTag::new();
    let mut layouts = Vec::new();
    for shift in 0..=16 {
        let align = 1usize << shift;
        let mut sizes = vec![1, 2, 7, 8, 9, 15, 16, 17, 100, 4095, 4096, 4097];
        sizes.extend([align - 1, align, align + 1, 3 * align + 5]);
        sizes.retain(|&s| s >= 1);
        sizes.sort_unstable();
        sizes.dedup();
        for size in sizes {
            layouts.push(Layout::from_size_align(size, align).unwrap());
        }
    }
    let mut blocks: Vec<(*mut u8, Layout)> = Vec::with_capacity(layouts.len());

    let entered = context::enter(&tag);
    let mut bytes = 0u64;
    for (n, &layout) in layouts.iter().enumerate() {
        // SAFETY: the layout has a non-zero size.
        let p = unsafe { A.alloc(layout) };
        assert!(!p.is_null(), "{layout:?}");
        assert_eq!(p as usize % layout.align(), 0, "{layout:?} -> {p:p}");
        // SAFETY: `p` is a fresh block of `layout.size()` bytes.
        unsafe { fill(p, layout.size(), n) };
        blocks.push((p, layout));
        bytes += layout.size() as u64;
    }
    let n = blocks.len() as u64;
    assert_eq!(counts(row(&tag)), (bytes, n, bytes, n));
    // Every block still holds its own pattern: no block overlaps another's
    // header or contents.
    for (i, &(p, layout)) in blocks.iter().enumerate() {
        // SAFETY: live block of `layout`, filled above.
        assert!(unsafe { check(p, layout.size(), i) }, "{layout:?}");
    }
    // Free every other block first, then the rest in reverse.
    let evens = blocks.iter().step_by(2);
    let odds = blocks.iter().skip(1).step_by(2).rev();
    for &(p, layout) in evens.chain(odds) {
        // SAFETY: each block is freed once, with its layout.
        unsafe { A.dealloc(p, layout) };
    }
    drop(entered);
    assert_eq!(counts(row(&tag)), (0, 0, bytes, n));
}

// ---------------------------------------------------------------- (b)

#[test]
fn alloc_zeroed_is_zeroed() {
    let _serial = serial();
    let tag = TaskTag::new();
    let mut expected_bytes = 0u64;
    let mut expected_blocks = 0u64;
    let _entered = context::enter(&tag);
    for align in [1usize, 8, 16, 64, 4096, 65536] {
        for size in [1usize, 8, 24, 100, 1000, 4096, 40_000, 200_000, 1 << 20] {
            let layout = Layout::from_size_align(size, align).unwrap();
            // Dirty a block of the same layout and free it, so that malloc's
            // reuse of it would show through a missing zeroing.
            for _ in 0..2 {
                // SAFETY: non-zero size.
                let dirty = unsafe { A.alloc(layout) };
                assert!(!dirty.is_null());
                // SAFETY: fresh block of `size` bytes.
                unsafe { ptr::write_bytes(dirty, 0xEE, size) };
                // SAFETY: allocated above with `layout`.
                unsafe { A.dealloc(dirty, layout) };
                // SAFETY: non-zero size.
                let zeroed = unsafe { A.alloc_zeroed(layout) };
                assert!(!zeroed.is_null());
                assert_eq!(zeroed as usize % align, 0);
                // SAFETY: `alloc_zeroed` returned `size` initialised bytes.
                let bytes = unsafe { std::slice::from_raw_parts(zeroed, size) };
                assert!(bytes.iter().all(|&b| b == 0), "{layout:?} not zeroed");
                assert_eq!(row(&tag).live_bytes, size as u64);
                // SAFETY: allocated above with `layout`.
                unsafe { A.dealloc(zeroed, layout) };
                expected_bytes += 2 * size as u64;
                expected_blocks += 2;
            }
        }
    }
    assert_eq!(counts(row(&tag)), (0, 0, expected_bytes, expected_blocks));
}

// ---------------------------------------------------------------- (c)

#[test]
fn realloc_keeps_contents() {
    let _serial = serial();
    let steps = [100usize, 5_000, 70_000, 300_000, 1_000, 3, 200_000, 17];
    for align in [1usize, 2, 8, 16, 64, 4096] {
        let tag = TaskTag::new();
        let _entered = context::enter(&tag);
        let mut size = 10;
        let mut layout = Layout::from_size_align(size, align).unwrap();
        // SAFETY: non-zero size.
        let mut p = unsafe { A.alloc(layout) };
        assert!(!p.is_null());
        // SAFETY: fresh block of `size` bytes.
        unsafe { fill(p, size, align) };
        let mut total_bytes = size as u64;
        let mut total_blocks = 1;
        for &new_size in &steps {
            // SAFETY: `p` is a live block of `layout`; `new_size` is non-zero
            // and far below `isize::MAX`.
            let q = unsafe { A.realloc(p, layout, new_size) };
            assert!(!q.is_null(), "align {align}: {size} -> {new_size}");
            assert_eq!(q as usize % align, 0, "align {align}: {size} -> {new_size}");
            let kept = size.min(new_size);
            // SAFETY: `q` holds `new_size >= kept` bytes, the first `kept`
            // copied from the old block.
            let intact = unsafe { check(q, kept, align) };
            assert!(intact, "align {align}: {size} -> {new_size} lost contents");
            if new_size > size {
                // SAFETY: the block is `new_size` bytes long.
                unsafe { fill(q, new_size, align) };
            }
            p = q;
            size = new_size;
            layout = Layout::from_size_align(size, align).unwrap();
            total_bytes += size as u64;
            total_blocks += 1;
            assert_eq!(
                counts(row(&tag)),
                (size as u64, 1, total_bytes, total_blocks),
                "align {align}: after realloc to {size}"
            );
        }
        // SAFETY: live block of `layout`.
        unsafe { A.dealloc(p, layout) };
        assert_eq!(counts(row(&tag)), (0, 0, total_bytes, total_blocks));
    }
}

// ---------------------------------------------------------------- (d)

/// Switches tagging back on when dropped, also if an assertion fails.
struct EnableOnDrop;

impl Drop for EnableOnDrop {
    fn drop(&mut self) {
        turbowish_alloc::set_enabled(true);
    }
}

#[test]
fn enable_switch() {
    let _serial = serial();
    let _restore = EnableOnDrop;
    let tag = TaskTag::new();
    let _entered = context::enter(&tag);
    assert!(stats().enabled);
    let before = counts(row(&tag));
    assert_eq!(before, (0, 0, 0, 0));

    // Allocated while off: no counter moves, now or when freed while on.
    turbowish_alloc::set_enabled(false);
    assert!(!turbowish_alloc::is_enabled());
    let off_block = vec![1u8; 1000];
    let off_realloced = {
        let mut v = Vec::<u8>::with_capacity(10);
        v.extend_from_slice(&[2; 10]);
        v
    };
    let s = stats();
    assert!(!s.enabled);
    assert_eq!(counts(s.counters(Owner::Task(tag.id()))), before);
    drop(s);
    turbowish_alloc::set_enabled(true);
    assert_eq!(counts(row(&tag)), before);
    drop(off_block);
    assert_eq!(counts(row(&tag)), before);

    // Allocated while off, reallocated while on: only the new block counts.
    let mut grown = off_realloced;
    grown.reserve_exact(4000 - grown.len());
    assert_eq!(grown.capacity(), 4000);
    assert_eq!(&grown[..], &[2; 10]);
    assert_eq!(counts(row(&tag)), (4000, 1, 4000, 1));
    drop(grown);
    assert_eq!(counts(row(&tag)), (0, 0, 4000, 1));

    // Allocated while on, freed while off: still decremented.
    let on_block = vec![3u8; 2000];
    assert_eq!(counts(row(&tag)), (2000, 1, 6000, 2));
    turbowish_alloc::set_enabled(false);
    drop(on_block);
    assert_eq!(counts(row(&tag)), (0, 0, 6000, 2));

    // Allocated while on, reallocated while off: the old block is freed from
    // the counts, the new one is not counted, and freeing it later moves
    // nothing.
    turbowish_alloc::set_enabled(true);
    let mut on_then_off = Vec::<u8>::with_capacity(300);
    on_then_off.extend_from_slice(&[4; 300]);
    assert_eq!(counts(row(&tag)), (300, 1, 6300, 3));
    turbowish_alloc::set_enabled(false);
    on_then_off.reserve_exact(5000);
    assert_eq!(counts(row(&tag)), (0, 0, 6300, 3));
    turbowish_alloc::set_enabled(true);
    assert_eq!(&on_then_off[..], &[4; 300][..]);
    drop(on_then_off);
    assert_eq!(counts(row(&tag)), (0, 0, 6300, 3));
}

// ---------------------------------------------------------------- (e)

const TLS_DTOR_KEEP: usize = 1111;
const KEY_DTOR_KEEP: usize = 2222;
const BODY_KEEP: usize = 4444;

static FROM_TLS_DTOR: AtomicPtr<u8> = AtomicPtr::new(ptr::null_mut());
static FROM_KEY_DTOR: AtomicPtr<u8> = AtomicPtr::new(ptr::null_mut());
static FROM_BODY: AtomicPtr<u8> = AtomicPtr::new(ptr::null_mut());
/// `records_in_use + 1` as seen by `stats()` called from the key destructor.
static STATS_IN_KEY_DTOR: AtomicUsize = AtomicUsize::new(0);

/// Leaks a block of `N` bytes (filled with `N as u8`) into `slot`.
fn leak_into<const N: usize>(slot: &AtomicPtr<u8>) {
    let block = Box::into_raw(Box::new([N as u8; N])).cast::<u8>();
    assert!(slot.swap(block, Ordering::SeqCst).is_null());
}

/// Frees a block leaked by [`leak_into`] and checks its contents.
fn free_from<const N: usize>(slot: &AtomicPtr<u8>) {
    let block = slot.swap(ptr::null_mut(), Ordering::SeqCst);
    assert!(!block.is_null(), "no {N}-byte block was leaked");
    // SAFETY: `leak_into::<N>` stored a `Box<[u8; N]>` here, and the swap
    // gives this call sole ownership.
    let block = unsafe { Box::from_raw(block.cast::<[u8; N]>()) };
    assert!(block.iter().all(|&b| b == N as u8));
}

struct AllocOnDrop;

impl Drop for AllocOnDrop {
    fn drop(&mut self) {
        let scratch = vec![9u8; 333];
        black_box(&scratch);
        drop(scratch);
        leak_into::<TLS_DTOR_KEEP>(&FROM_TLS_DTOR);
    }
}

thread_local! {
    static ON_EXIT: AllocOnDrop = const { AllocOnDrop };
}

/// A pthread key destructor: created after TurboWish's own exit key, it runs
/// after TurboWish has flushed and released the exiting thread's shard.
unsafe extern "C" fn key_dtor(_value: *mut libc::c_void) {
    let scratch = vec![8u8; 555];
    black_box(&scratch);
    drop(scratch);
    leak_into::<KEY_DTOR_KEEP>(&FROM_KEY_DTOR);
    STATS_IN_KEY_DTOR.store(stats().records_in_use + 1, Ordering::SeqCst);
}

fn exit_key() -> libc::pthread_key_t {
    static KEY: std::sync::OnceLock<libc::pthread_key_t> = std::sync::OnceLock::new();
    *KEY.get_or_init(|| {
        let mut key: libc::pthread_key_t = 0;
        // SAFETY: `key` is a valid out-pointer and `key_dtor` has the
        // destructor signature pthread expects.
        let rc = unsafe { libc::pthread_key_create(&mut key, Some(key_dtor)) };
        assert_eq!(rc, 0);
        key
    })
}

/// Runs a thread that allocates in its body, in a Rust TLS destructor and in
/// a pthread key destructor, and leaks one block from each.
fn run_exiting_thread() {
    let key = exit_key();
    std::thread::spawn(move || {
        ON_EXIT.with(|_| {});
        // SAFETY: `key` is a live key; the value is only a non-null marker
        // that makes the destructor run and is never dereferenced.
        let rc = unsafe {
            libc::pthread_setspecific(key, ptr::NonNull::<u8>::dangling().as_ptr().cast())
        };
        assert_eq!(rc, 0);
        let churn: Vec<Vec<u8>> = (0..100).map(|i| vec![i as u8; i * 3 + 1]).collect();
        black_box(&churn);
        drop(churn);
        leak_into::<BODY_KEEP>(&FROM_BODY);
    })
    .join()
    .unwrap();
}

fn free_exiting_thread_blocks() {
    free_from::<TLS_DTOR_KEEP>(&FROM_TLS_DTOR);
    free_from::<KEY_DTOR_KEEP>(&FROM_KEY_DTOR);
    free_from::<BODY_KEEP>(&FROM_BODY);
}

/// The scenario, run in a forked child where no other thread allocates.
fn thread_exit_scenario() {
    // Once to warm up every lazily initialised global (std's thread
    // machinery, tokio's thread-local, the destructor lists).
    run_exiting_thread();
    free_exiting_thread_blocks();
    assert!(STATS_IN_KEY_DTOR.load(Ordering::SeqCst) > 0);

    let base = stats().counters(Owner::Main);
    run_exiting_thread();
    let after = stats().counters(Owner::Main);
    let kept = (TLS_DTOR_KEEP + KEY_DTOR_KEEP + BODY_KEEP) as u64;
    assert_eq!(
        (after.live_bytes, after.live_blocks),
        (base.live_bytes + kept, base.live_blocks + 3),
        "blocks leaked during thread exit: base {base:?}, after {after:?}"
    );
    assert!(after.total_blocks >= base.total_blocks + 3 + 100 + 2);

    free_exiting_thread_blocks();
    let end = stats().counters(Owner::Main);
    assert_eq!(
        (end.live_bytes, end.live_blocks),
        (base.live_bytes, base.live_blocks),
        "untracked live did not return to its baseline: base {base:?}, end {end:?}"
    );
    // No row went negative on the way.
    let s = stats();
    for t in &s.tasks {
        assert!(t.counters.live_bytes < 1 << 62, "{t:?}");
    }
}

#[test]
fn thread_exit_allocations() {
    let _serial = serial();
    if let Err(message) = in_forked_child(thread_exit_scenario) {
        panic!("thread-exit scenario failed in the child: {message}");
    }
}

// ---------------------------------------------------------------- (f)

/// Allocation storm in the parent while it forks: allocs, reallocs and frees
/// of many sizes, switching between task tags, reading stats, sweeping and
/// claiming new tags.
fn hammer(stop: &AtomicBool, rounds: &AtomicU64) {
    let tags: Vec<TaskTag> = (0..4).map(|_| TaskTag::new()).collect();
    let mut ring: Vec<Vec<u8>> = (0..64).map(|_| Vec::new()).collect();
    let mut i = 0usize;
    while !stop.load(Ordering::Relaxed) {
        {
            let _entered = context::enter(&tags[i % tags.len()]);
            let slot = &mut ring[i % 64];
            if i.is_multiple_of(3) {
                slot.resize(i % 5000 + 1, i as u8);
            } else {
                *slot = vec![i as u8; (i * 7919) % 20_000 + 1];
            }
            if i.is_multiple_of(500) {
                let fresh = TaskTag::new();
                let _nested = context::enter(&fresh);
                black_box(vec![0u8; 64]);
            }
        }
        if i.is_multiple_of(2000) {
            black_box(stats());
            black_box(turbowish_alloc::sweep_idle_records());
        }
        i += 1;
        rounds.fetch_add(1, Ordering::Relaxed);
    }
}

const CHILD_BLOCKS: usize = 3000;

/// The forked child's work: checks inherited blocks and its own counts.
fn forked_child(inherited: &mut Vec<Box<[u8]>>, parent: &TaskTag) {
    let parent_owner = Owner::Task(parent.id());
    // Inherited blocks are intact and counted as at the fork.
    for (i, b) in inherited.iter().enumerate() {
        assert_eq!(b.len(), 16 + i % 100, "inherited block {i}");
        assert!(b.iter().all(|&x| x == i as u8), "inherited block {i}");
    }
    let c = stats().counters(parent_owner);
    assert_eq!(
        c.live_blocks,
        inherited.len() as u64 + 1,
        "parent row in child: {c:?}"
    );

    let tag = TaskTag::new();
    let owner = Owner::Task(tag.id());
    let mut mine: Vec<Vec<u8>> = Vec::with_capacity(CHILD_BLOCKS);
    let mut bytes = 0u64;
    {
        let _entered = context::enter(&tag);
        for i in 0..CHILD_BLOCKS {
            mine.push(vec![i as u8; i + 1]);
            bytes += i as u64 + 1;
        }
    }
    let c = stats().counters(owner);
    assert_eq!(
        counts(c),
        (bytes, CHILD_BLOCKS as u64, bytes, CHILD_BLOCKS as u64),
        "child's own row"
    );

    // Free what the parent allocated: charged to the parent's row.
    drop(std::mem::take(inherited));
    let c = stats().counters(parent_owner);
    assert_eq!(
        (c.live_bytes, c.live_blocks),
        (0, 0),
        "parent row after the child freed it"
    );

    // Grow every other block (a realloc is a free plus an allocation by
    // whoever runs now: untracked here), then free all.
    for v in mine.iter_mut().step_by(2) {
        v.reserve_exact(1000);
    }
    drop(mine);
    let c = stats().counters(owner);
    assert_eq!(
        counts(c),
        (0, 0, bytes, CHILD_BLOCKS as u64),
        "child's own row after freeing"
    );
}

#[test]
fn fork_while_another_thread_allocates() {
    let _serial = serial();
    let parent = TaskTag::new();
    let mut inherited: Vec<Box<[u8]>> = {
        let _entered = context::enter(&parent);
        (0..1000)
            .map(|i| vec![i as u8; 16 + i % 100].into_boxed_slice())
            .collect()
    };
    let parent_before = row(&parent);
    assert_eq!(parent_before.live_blocks, 1001);

    let stop = Arc::new(AtomicBool::new(false));
    let rounds = Arc::new(AtomicU64::new(0));
    let hammer_thread = {
        let (stop, rounds) = (Arc::clone(&stop), Arc::clone(&rounds));
        std::thread::spawn(move || hammer(&stop, &rounds))
    };
    while rounds.load(Ordering::Relaxed) < 1000 {
        std::thread::yield_now();
    }

    // The hammer runs 200 rounds between forks.
    let failures = fork_between(30, &rounds, 200, || forked_child(&mut inherited, &parent));

    stop.store(true, Ordering::Relaxed);
    hammer_thread.join().unwrap();
    assert!(failures.is_empty(), "{failures:#?}");

    // The children's frees did not touch the parent's counts.
    assert_eq!(counts(row(&parent)), counts(parent_before));
    drop(inherited);
    assert_eq!(row(&parent).live_blocks, 0);
}

// ---------------------------------------------------------------- (g)

const EARLY_SIZE: usize = 777;

static EARLY: AtomicPtr<u8> = AtomicPtr::new(ptr::null_mut());
static EARLY_LIVE_DELTA: AtomicU64 = AtomicU64::new(u64::MAX);
static EARLY_BLOCKS_DELTA: AtomicU64 = AtomicU64::new(u64::MAX);

/// Runs from `.init_array`, before `main` and before the Rust runtime is set
/// up. Only this thread exists, so the `untracked` delta is exact.
extern "C" fn before_main() {
    let before = stats().counters(Owner::Main);
    let early = Box::into_raw(Box::new([0x5A_u8; EARLY_SIZE])).cast::<u8>();
    let after = stats().counters(Owner::Main);
    EARLY_LIVE_DELTA.store(
        after.live_bytes.wrapping_sub(before.live_bytes),
        Ordering::SeqCst,
    );
    EARLY_BLOCKS_DELTA.store(
        after.live_blocks.wrapping_sub(before.live_blocks),
        Ordering::SeqCst,
    );
    EARLY.store(early, Ordering::SeqCst);
}

#[used]
#[link_section = ".init_array"]
static INIT: extern "C" fn() = before_main;

#[test]
fn allocation_before_main() {
    let _serial = serial();
    let early = EARLY.load(Ordering::SeqCst);
    assert!(!early.is_null(), ".init_array function did not run");
    // SAFETY: `before_main` leaked a `[u8; EARLY_SIZE]` here, never freed.
    let bytes = unsafe { &*early.cast::<[u8; EARLY_SIZE]>() };
    assert!(bytes.iter().all(|&b| b == 0x5A));
    assert_eq!(EARLY_LIVE_DELTA.load(Ordering::SeqCst), EARLY_SIZE as u64);
    assert_eq!(EARLY_BLOCKS_DELTA.load(Ordering::SeqCst), 1);

    let s = stats();
    let untracked = s.task(Owner::Main).expect("untracked bucket row");
    assert!(untracked.counters.live_bytes >= EARLY_SIZE as u64);
    // The block's header (the 8 bytes in front of it, documented on
    // `TurboWish`) names the untracked bucket's slot.
    // SAFETY: an align-1 block has an 8-byte prefix whose first 4 bytes are
    // the tag, inside the same inner allocation as the block itself.
    let header_tag = unsafe { early.sub(8).cast::<u32>().read() };
    assert_eq!(header_tag, untracked.tag.slot());
}
