//! Fast stack capture for sampled allocations (x86_64 Linux).
//!
//! libgcc's `_Unwind_Backtrace` finds and interprets every frame's DWARF
//! call-frame information anew on each capture: about 100 ns a frame here,
//! 1–2 µs a sample, most of what sampling costs (perf: 34% of a loop of
//! sampled 4 KiB pairs in libgcc, 2% in `strlen` alone, parsing CIE
//! augmentation strings). This module unwinds with `framehop`, which keeps
//! the rule it derived for each return address in a cache, so a capture
//! from a site seen before reads one cached rule a frame.
//!
//! Set-up ([`set_up`], once, under the re-entrancy guard) lists the loaded
//! objects with `dl_iterate_phdr` and hands framehop each one's
//! `.eh_frame_hdr`, `.eh_frame` and executable segment, read in place from
//! the process's own mapping. A capture then:
//!
//! * starts from its own registers (`rip`, `rsp`, `rbp`), read by an
//!   `asm!` block in [`capture`], a function that is never inlined, so the
//!   first frame's rule is that of `capture` itself;
//! * reads stack words only between its own stack pointer and the top of
//!   the thread's stack (found once per thread with
//!   `pthread_getattr_np`): everything the unwinder asks for outside that
//!   range is refused, so a wrong rule ends the capture, never faults;
//! * borrows one of a few slots of caches made at set-up (a thread that
//!   finds all in use falls back), so a capture allocates nothing (but for
//!   a rebuild, below).
//!
//! Each capture first asks the loader whether any object was loaded or
//! unloaded since the unwinder was built (`dlpi_adds`/`dlpi_subs`). If so,
//! the unwinder is rebuilt from the objects loaded now (glibc's NSS alone
//! loads libraries on a program's first host-name lookup), and that one
//! sample is captured by libgcc; the unwinder it replaces is kept, never
//! freed, as another thread may still be walking with it, so rebuilds are
//! capped at [`MAX_REBUILDS`] (a program that keeps loading and unloading
//! objects then stays on libgcc).
//!
//! The counts are read before the walk, so an object unloaded by another
//! thread during a walk could be read after it is unmapped; the walk reads
//! only the unwind sections of objects holding return addresses on its own
//! stack, which no correct program unloads while they run.
//!
//! Whenever this path cannot give a complete stack (a rebuild pending or
//! refused, a frame without unwind information, a signal handler on an
//! alternate stack, no cache free) it returns `None` and the caller
//! captures with libgcc as before: never a wrong stack, at worst the old
//! cost.

use core::ffi::{c_int, c_void};
use core::sync::atomic::{AtomicBool, AtomicPtr, AtomicU32, AtomicU8, AtomicUsize, Ordering};

use framehop::x86_64::{CacheX86_64, UnwindRegsX86_64, UnwinderX86_64};
use framehop::{
    ExplicitModuleSectionInfo, FrameAddress, Module, MustNotAllocateDuringUnwind, Unwinder,
};

use crate::shard::Local;

/// Section data: the loaded object's own bytes, which stay mapped as long
/// as it is loaded (a capture walks only with an unwinder built from the
/// objects loaded at that moment, see [`loader_counts`]).
type Data = &'static [u8];
type Fast = UnwinderX86_64<Data, MustNotAllocateDuringUnwind>;
type Cache = CacheX86_64<MustNotAllocateDuringUnwind>;

/// The unwinder and the loader's object counts it was built at.
struct Loaded {
    unwinder: Fast,
    /// How many objects `unwinder` knows (for tests).
    #[cfg_attr(not(test), allow(dead_code))]
    objects: usize,
    adds: u64,
    subs: u64,
}

const UNSET: u8 = 0;
const BUILDING: u8 = 1;
const READY: u8 = 2;
const OFF: u8 = 3;

static STATE: AtomicU8 = AtomicU8::new(UNSET);
static LOADED: AtomicPtr<Loaded> = AtomicPtr::new(core::ptr::null_mut());

/// Cache slots lent to capturing threads (each slot [`WAYS`] caches).
/// Samples are rare (one per 512 KiB allocated by default) and a capture
/// takes well under a microsecond: even at 10 GiB/s allocated, captures
/// keep a slot busy under 1% of the time, so a second thread rarely finds
/// it taken; when it does, it uses libgcc for that sample (about 2 µs
/// instead of 0.2–0.3). Every slot costs its caches' memory for the whole
/// life of the process, charged to `internal`: four slots of four ways were
/// 0.5 MiB, most of a small program's `internal` row, for a contention
/// that almost never happens.
const CACHES: usize = 1;

/// framehop caches each rule in a direct-mapped table of 509 entries keyed
/// by address, so two frames of one stack whose addresses are equal modulo
/// 509 evict each other on every capture of that stack, and each capture
/// parses both frames' DWARF again. With ~12 frames that happens to one
/// stack in eight, and to most stacks of 30 frames or more; when it hit
/// the sampling bench (after an unrelated change moved code), a sample
/// from the bench's stack went from ~300 ns to ~750 ns. A slot can
/// therefore have `WAYS` caches, and a frame uses the one a second,
/// independent hash of its address picks: two frames then collide only if
/// both hashes agree, half as often.
///
/// A framehop cache is ~33 KB (its rule table and gimli's scratch
/// context), for the whole life of the process, charged to `internal`. The
/// first way is made at set-up; the second only once [`BUILD_AFTER`]
/// captures have seen two of their frames share a framehop entry (see
/// [`shares_an_entry`]). A collision costs a sample about 0.45 µs, so a
/// program that samples little (a small one: a few dozen samples) keeps
/// the 33 KB, and one that samples a colliding stack often builds the way
/// after spending ~30 µs on collisions.
const WAYS: usize = 2;
const _: () = assert!(WAYS.is_power_of_two() && WAYS > 1);

/// Captures with a collision in the first way after which a slot builds
/// its other ways (see [`WAYS`]).
const BUILD_AFTER: u32 = 64;

/// framehop's rule-cache size (`CACHE_ENTRY_COUNT` in its `rule_cache.rs`):
/// it files a rule under its lookup address modulo this.
const FRAMEHOP_ENTRIES: u64 = 509;

/// Stack a capture must have left below it to build a way: building one
/// puts gimli's unwind context (tens of KiB) on the stack as a temporary.
const BUILD_STACK_ROOM: u64 = 256 * 1024;

struct CacheSlot {
    taken: AtomicBool,
    ways: [AtomicPtr<Cache>; WAYS],
    /// Captures that found a collision while the slot had one way (written
    /// only by the slot's holder).
    collisions: AtomicU32,
}

static SLOTS: [CacheSlot; CACHES] = [const {
    CacheSlot {
        taken: AtomicBool::new(false),
        ways: [const { AtomicPtr::new(core::ptr::null_mut()) }; WAYS],
        collisions: AtomicU32::new(0),
    }
}; CACHES];

/// The way (see [`WAYS`]) that caches the rule for `address`: the top bits
/// of a Fibonacci hash, unrelated to framehop's `address % 509`.
fn way_of(address: u64) -> usize {
    (address.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> (64 - WAYS.trailing_zeros())) as usize
}

/// Frames of every fast capture that are not the program's: the first is
/// inside [`capture`], the second its return into `crate::sample::capture`,
/// the third that one's return into `crate::sample::on_due` (none of them
/// is ever inlined). The first frame kept is `on_due`'s return into the
/// allocator, as with the libgcc path.
const SKIP: usize = 3;

/// Rebuilds of the unwinder allowed after loads and unloads, over the
/// process's life. Each one keeps the unwinder it replaces (a few hundred
/// bytes an object). framehop also tells cached rules apart by a 16-bit
/// generation that every object added advances (process-wide, shared with
/// any other framehop user): a wrap-around could let a rule cached for an
/// old object at the same address be used. With the cap, a process loading
/// under about 2,000 objects stays clear of that.
pub(crate) const MAX_REBUILDS: u32 = 32;

static REBUILDS: AtomicU32 = AtomicU32::new(0);

/// Builds the unwinder from the objects loaded now, and its caches. Runs
/// once, under the re-entrancy guard (it allocates). Later calls return at
/// once.
pub(crate) fn set_up() {
    if STATE
        .compare_exchange(UNSET, BUILDING, Ordering::AcqRel, Ordering::Acquire)
        .is_err()
    {
        return;
    }
    let loaded = match build() {
        Ok(loaded) => loaded,
        // A fork is under way: a later capture (or thread) tries again.
        Err(Refused::Forking) => return STATE.store(UNSET, Ordering::Release),
        Err(Refused::NoObjects) => return STATE.store(OFF, Ordering::Release),
    };
    // Each slot's first way now: building one puts a large temporary
    // (gimli's unwind context, tens of KiB) on the stack, and set-up runs
    // early, on a thread with a normal stack. (A second way is built by a
    // capture that has room, see `BUILD_STACK_ROOM`.) Caches serve every
    // later unwinder too: framehop keys cached rules by the unwinder's
    // generation.
    for slot in &SLOTS {
        slot.ways[0].store(Box::into_raw(Box::new(Cache::new_in())), Ordering::Release);
    }
    LOADED.store(Box::into_raw(loaded), Ordering::Release);
    STATE.store(READY, Ordering::Release);
}

/// How many times the unwinder has been rebuilt after objects were loaded
/// or unloaded.
#[cfg(test)]
fn rebuilds() -> u32 {
    REBUILDS.load(Ordering::Relaxed)
}

/// How many objects the unwinder in use knows.
#[cfg(test)]
fn objects() -> usize {
    // SAFETY: as in `capture`: published unwinders are never freed.
    unsafe { LOADED.load(Ordering::Acquire).as_ref() }.map_or(0, |l| l.objects)
}

/// Sets this thread's stack bounds for [`capture`] (once per thread, under
/// the re-entrancy guard: `pthread_getattr_np` may allocate).
pub(crate) fn set_up_thread(local: &Local) {
    let (low, high) = thread_stack().unwrap_or((0, 0));
    local.stack_low.set(low);
    local.stack_high.set(high);
}

/// Writes the return addresses of the calling stack, from the allocator's
/// caller outwards, into `out`; returns how many, or `None` if this path
/// cannot give the whole stack (then capture another way).
#[inline(never)]
pub(crate) fn capture(local: &Local, out: &mut [usize]) -> Option<usize> {
    let (rip, rsp, rbp): (u64, u64, u64);
    // SAFETY: reads three registers into outputs; touches no memory and
    // leaves the stack and flags as they were.
    unsafe {
        core::arch::asm!(
            "lea {ip}, [rip]",
            "mov {sp}, rsp",
            "mov {bp}, rbp",
            ip = out(reg) rip,
            sp = out(reg) rsp,
            bp = out(reg) rbp,
            options(nomem, nostack, preserves_flags),
        );
    }
    let mut state = STATE.load(Ordering::Acquire);
    if state == UNSET {
        // Set-up was refused by a fork under way: try again (this thread
        // is under the re-entrancy guard, as set-up needs).
        set_up();
        state = STATE.load(Ordering::Acquire);
    }
    if state != READY || out.is_empty() {
        return None;
    }
    // SAFETY: READY is stored after LOADED, and no unwinder stored there
    // is ever freed (see `rebuild`).
    let loaded = unsafe { &*LOADED.load(Ordering::Acquire) };
    let (low, high) = (local.stack_low.get() as u64, local.stack_high.get() as u64);
    if !(low < rsp && rsp < high) {
        // Unknown bounds, or running on another stack (a signal handler's).
        return None;
    }
    match loader_counts() {
        Some(counts) if counts == (loaded.adds, loaded.subs) => {}
        Some(_) => {
            rebuild(loaded);
            return None;
        }
        None => return None,
    }
    let mut read_stack = |address: u64| -> Result<u64, ()> {
        if !address.is_multiple_of(8) || address < rsp || address > high - 8 {
            return Err(());
        }
        // SAFETY: `address` is 8-aligned and between this function's own
        // stack pointer and the top of this thread's stack, which is
        // mapped and readable.
        Ok(unsafe { (address as *const u64).read() })
    };
    let room = rsp - low;
    with_caches(|ways, collisions| {
        let written = walk(loaded, ways, rip, rsp, rbp, &mut read_stack, out)?;
        if ways.iter().any(Option::is_none) && shares_an_entry(&out[..written]) {
            let seen = collisions.load(Ordering::Relaxed) + 1;
            collisions.store(seen, Ordering::Relaxed);
            if seen >= BUILD_AFTER && room >= BUILD_STACK_ROOM {
                for way in ways.iter_mut().filter(|w| w.is_none()) {
                    *way = Some(Box::leak(Box::new(Cache::new_in())));
                }
            }
        }
        Some(written)
    })
    .flatten()
}

/// framehop's `iter_frames`, one frame at a time, so that each frame can use
/// its own way's cache (the first way while the others are not built).
fn walk(
    loaded: &Loaded,
    ways: &mut [Option<&mut Cache>; WAYS],
    rip: u64,
    rsp: u64,
    rbp: u64,
    read_stack: &mut impl FnMut(u64) -> Result<u64, ()>,
    out: &mut [usize],
) -> Option<usize> {
    let mut regs = UnwindRegsX86_64::new(rip, rsp, rbp);
    let mut frame = FrameAddress::InstructionPointer(rip);
    let mut index = 0;
    let mut written = 0;
    loop {
        if index >= SKIP {
            out[written] = frame.address() as usize;
            written += 1;
            if written == out.len() {
                return Some(written);
            }
        }
        index += 1;
        let way = way_of(frame.address_for_lookup());
        let cache = match ways[way] {
            Some(ref mut cache) => &mut **cache,
            None => ways[0].as_deref_mut()?,
        };
        match loaded
            .unwinder
            .unwind_frame(frame, &mut regs, cache, read_stack)
        {
            Ok(Some(ret)) => frame = FrameAddress::from_return_address(ret)?,
            Ok(None) => return Some(written),
            Err(_) => return None,
        }
    }
}

/// Whether two of `frames` (return addresses, as [`capture`] writes them)
/// are filed under the same framehop cache entry, so that with one cache
/// they evict each other on every capture of this stack. A bitmap of the
/// entries on the stack: no allocation, one pass.
fn shares_an_entry(frames: &[usize]) -> bool {
    let mut seen = [0u64; FRAMEHOP_ENTRIES.div_ceil(64) as usize];
    let mut addresses = frames.iter().map(|&f| (f as u64).wrapping_sub(1));
    addresses.any(|lookup| {
        let entry = (lookup % FRAMEHOP_ENTRIES) as usize;
        let (word, bit) = (entry / 64, 1u64 << (entry % 64));
        let taken = seen[word] & bit != 0;
        seen[word] |= bit;
        taken
    })
}

/// Runs `f` with a slot's caches (`None` for a way not built yet, which
/// `f` may build) and its collision count, which no other thread uses
/// meanwhile; `None` if all slots are taken.
fn with_caches<R>(f: impl FnOnce(&mut [Option<&mut Cache>; WAYS], &AtomicU32) -> R) -> Option<R> {
    let slot = SLOTS.iter().find(|slot| {
        !slot.taken.load(Ordering::Relaxed) && !slot.taken.swap(true, Ordering::Acquire)
    })?;
    // The borrows of the caches end with this block, before the slot is
    // given back.
    let result = {
        let mut ways = slot.ways.each_ref().map(|way| {
            // The first way was made by `set_up` before it published READY,
            // which the caller saw; the others by an earlier holder of this
            // slot, published by its Release of `taken`.
            let cache = way.load(Ordering::Acquire);
            // SAFETY: the slot is taken by this thread until the store
            // below, so nobody else touches its caches; a cache, once made,
            // is never freed, and each way is a distinct cache.
            unsafe { cache.as_mut() }
        });
        debug_assert!(ways[0].is_some());
        let result = f(&mut ways, &slot.collisions);
        // Publish the ways `f` built (a cache is leaked, never freed).
        for (way, cache) in slot.ways.iter().zip(ways) {
            if let Some(cache) = cache {
                way.store(cache, Ordering::Release);
            }
        }
        result
    };
    slot.taken.store(false, Ordering::Release);
    Some(result)
}

/// The loader's counts of objects added and removed over the process's
/// life (`dlpi_adds`, `dlpi_subs`): equal to an unwinder's, they say that
/// it was built from the objects loaded now. `None` while a fork is under
/// way.
fn loader_counts() -> Option<(u64, u64)> {
    let mut counts = (0u64, 0u64);
    // SAFETY: `counts_only` has the signature dl_iterate_phdr expects and
    // treats `data` as the tuple passed here, which outlives the call.
    unsafe { iterate_objects(counts_only, (&raw mut counts).cast()) }.then_some(counts)
}

/// Why no unwinder could be built.
enum Refused {
    /// A fork is under way (see [`hold_forks`]); try again later.
    Forking,
    /// No loaded object has unwind information framehop can use.
    NoObjects,
}

/// An unwinder for the objects loaded now. Allocates: call it under the
/// re-entrancy guard.
fn build() -> Result<Box<Loaded>, Refused> {
    let mut found = Found::default();
    // SAFETY: `collect` has the signature dl_iterate_phdr expects and
    // treats `data` as the `Found` passed here, which outlives the call.
    if !unsafe { iterate_objects(collect, (&raw mut found).cast()) } {
        return Err(Refused::Forking);
    }
    if found.modules.is_empty() {
        return Err(Refused::NoObjects);
    }
    let mut unwinder = Fast::new();
    let objects = found.modules.len();
    for module in found.modules {
        unwinder.add_module(module);
    }
    Ok(Box::new(Loaded {
        unwinder,
        objects,
        adds: found.adds,
        subs: found.subs,
    }))
}

/// Replaces the unwinder after objects were loaded or unloaded (called by
/// the capture that noticed, under the re-entrancy guard). One thread
/// rebuilds; captures meanwhile use libgcc. The unwinder replaced is not
/// freed: another thread may be walking with it now, and telling when none
/// is would cost every capture two more atomic operations; hence the cap.
#[cold]
#[inline(never)]
fn rebuild(stale: &Loaded) {
    if STATE
        .compare_exchange(READY, BUILDING, Ordering::AcqRel, Ordering::Acquire)
        .is_err()
    {
        return;
    }
    if !core::ptr::eq(LOADED.load(Ordering::Acquire), stale) {
        // Another thread that noticed the same change rebuilt already.
        return STATE.store(READY, Ordering::Release);
    }
    if REBUILDS.load(Ordering::Relaxed) >= MAX_REBUILDS {
        return STATE.store(OFF, Ordering::Release);
    }
    match build() {
        Ok(loaded) => {
            REBUILDS.fetch_add(1, Ordering::Relaxed);
            LOADED.store(Box::into_raw(loaded), Ordering::Release);
            STATE.store(READY, Ordering::Release);
        }
        // The next capture after the fork notices the change again.
        Err(Refused::Forking) => STATE.store(READY, Ordering::Release),
        Err(Refused::NoObjects) => STATE.store(OFF, Ordering::Release),
    }
}

/// Calls dl_iterate_phdr with `callback` and `data`, unless a fork is under
/// way (then returns false without calling it).
///
/// dl_iterate_phdr holds the loader's lock while it runs, and a child
/// forked meanwhile would find that lock taken by a thread it does not have
/// (its own first capture then waits forever: seen in
/// `tests/sampling_fork.rs`). So the count of threads inside it is kept,
/// and the fork handler waits for it to reach zero (see [`hold_forks`]).
///
/// # Safety
///
/// `callback` must treat `data` as what the caller passes, which must
/// outlive the call.
unsafe fn iterate_objects(
    callback: unsafe extern "C" fn(*mut libc::dl_phdr_info, usize, *mut c_void) -> c_int,
    data: *mut c_void,
) -> bool {
    ITERATING.fetch_add(1, Ordering::SeqCst);
    if FORKING.load(Ordering::SeqCst) {
        ITERATING.fetch_sub(1, Ordering::SeqCst);
        return false;
    }
    // SAFETY: guaranteed by the caller.
    unsafe { libc::dl_iterate_phdr(Some(callback), data) };
    ITERATING.fetch_sub(1, Ordering::SeqCst);
    true
}

/// Threads inside [`iterate_objects`]' dl_iterate_phdr.
static ITERATING: AtomicUsize = AtomicUsize::new(0);
/// Set by a thread that is about to fork: no new dl_iterate_phdr from here.
static FORKING: AtomicBool = AtomicBool::new(false);

/// Before a `fork()` (from the sampler's fork handler): keeps captures out
/// of the loader's lock and waits for those inside to leave, so the child
/// never inherits that lock taken. Captures meanwhile use libgcc's walk.
/// Dekker with `iterate_objects`: each side writes its flag, then reads
/// the other's, all SeqCst.
pub(crate) fn hold_forks() {
    FORKING.store(true, Ordering::SeqCst);
    crate::shard::spin_until(|| ITERATING.load(Ordering::SeqCst) == 0);
}

/// After a `fork()`, in parent and child: undoes [`hold_forks`].
pub(crate) fn release_forks() {
    FORKING.store(false, Ordering::SeqCst);
}

/// After a `fork()`, in the child: a rebuild or set-up that another thread
/// of the parent had under way has no thread to finish it here. With an
/// unwinder published, go back to it (a capture notices the change again
/// and rebuilds); without one, set-up starts over.
pub(crate) fn in_child() {
    if STATE.load(Ordering::Acquire) == BUILDING {
        let back = if LOADED.load(Ordering::Acquire).is_null() {
            UNSET
        } else {
            READY
        };
        STATE.store(back, Ordering::Release);
    }
}

/// The objects seen by [`collect`], and the loader's counts then.
#[derive(Default)]
struct Found {
    modules: Vec<Module<Data>>,
    adds: u64,
    subs: u64,
}

/// dl_iterate_phdr callback: records the loader's counts and stops.
unsafe extern "C" fn counts_only(
    info: *mut libc::dl_phdr_info,
    _size: usize,
    data: *mut c_void,
) -> c_int {
    // SAFETY: dl_iterate_phdr passes a valid `info`; `data` is the tuple
    // `loader_counts` passed.
    unsafe {
        let info = &*info;
        *data.cast::<(u64, u64)>() = (info.dlpi_adds, info.dlpi_subs);
    }
    1
}

/// dl_iterate_phdr callback: describes one loaded object to framehop.
unsafe extern "C" fn collect(
    info: *mut libc::dl_phdr_info,
    _size: usize,
    data: *mut c_void,
) -> c_int {
    // SAFETY: dl_iterate_phdr passes a valid `info` whose program headers
    // are `dlpi_phnum` entries at `dlpi_phdr`; `data` is the `Found` that
    // `build` passed.
    let (info, found) = unsafe { (&*info, &mut *data.cast::<Found>()) };
    found.adds = info.dlpi_adds;
    found.subs = info.dlpi_subs;
    if info.dlpi_phdr.is_null() || info.dlpi_phnum == 0 {
        return 0;
    }
    // SAFETY: as above.
    let headers =
        unsafe { core::slice::from_raw_parts(info.dlpi_phdr, usize::from(info.dlpi_phnum)) };
    if let Some(module) = describe(info.dlpi_addr, headers) {
        found.modules.push(module);
    }
    0
}

/// The framehop module of the object loaded at `base` with program headers
/// `headers`, if it has unwind information framehop can use.
fn describe(base: u64, headers: &[libc::Elf64_Phdr]) -> Option<Module<Data>> {
    let loads = || headers.iter().filter(|h| h.p_type == libc::PT_LOAD);
    let low = loads().map(|h| h.p_vaddr).min()?;
    let high = loads().map(|h| h.p_vaddr + h.p_memsz).max()?;
    let text = loads().find(|h| h.p_flags & libc::PF_X != 0)?;
    let hdr = headers.iter().find(|h| h.p_type == libc::PT_GNU_EH_FRAME)?;
    let hdr_range = hdr.p_vaddr..hdr.p_vaddr + hdr.p_memsz;
    // SAFETY: PT_GNU_EH_FRAME lies inside a loaded segment, mapped
    // readable for as long as the object is loaded.
    let hdr_data = unsafe { mapped(base, hdr_range.clone()) };
    let eh_frame_start = eh_frame_address(hdr_data, hdr_range.start)?;
    // `.eh_frame` has no header of its own giving its length: take the
    // rest of the segment that holds it (framehop reads only the entries
    // the header's table points at).
    let segment =
        loads().find(|h| (h.p_vaddr..h.p_vaddr + h.p_filesz).contains(&eh_frame_start))?;
    let eh_frame_range = eh_frame_start..segment.p_vaddr + segment.p_filesz;
    let text_range = text.p_vaddr..text.p_vaddr + text.p_filesz;
    let info = ExplicitModuleSectionInfo {
        base_svma: 0,
        text_svma: Some(text_range.clone()),
        // SAFETY: an executable loaded segment: mapped readable while the
        // object is loaded (its file-backed part, `p_filesz`).
        text: Some(unsafe { mapped(base, text_range) }),
        eh_frame_svma: Some(eh_frame_range.clone()),
        // SAFETY: inside a loaded segment's file-backed part, as checked.
        eh_frame: Some(unsafe { mapped(base, eh_frame_range) }),
        eh_frame_hdr_svma: Some(hdr_range),
        eh_frame_hdr: Some(hdr_data),
        ..Default::default()
    };
    Some(Module::new(
        String::new(),
        base + low..base + high,
        base,
        info,
    ))
}

/// The bytes at stated addresses `range` of the object loaded at `base`.
///
/// # Safety
///
/// `range` must lie inside one of the object's loaded segments (within its
/// file-backed size), and the object must stay loaded while the slice is
/// used.
unsafe fn mapped(base: u64, range: core::ops::Range<u64>) -> Data {
    let len = (range.end - range.start) as usize;
    // SAFETY: guaranteed by the caller.
    unsafe { core::slice::from_raw_parts((base + range.start) as *const u8, len) }
}

/// The stated address of `.eh_frame`, from the `eh_frame_ptr` field of an
/// `.eh_frame_hdr` at stated address `hdr_address` (LSB "Linux Standard
/// Base Core Specification", section 10.6.2: version 1, then the pointer's
/// encoding, then two more encodings, then the pointer at offset 4).
fn eh_frame_address(hdr: &[u8], hdr_address: u64) -> Option<u64> {
    const DW_EH_PE_ABSPTR: u8 = 0x00;
    const DW_EH_PE_UDATA4: u8 = 0x03;
    const DW_EH_PE_SDATA4: u8 = 0x0b;
    const DW_EH_PE_UDATA8: u8 = 0x04;
    const DW_EH_PE_SDATA8: u8 = 0x0c;
    const DW_EH_PE_PCREL: u8 = 0x10;
    const DW_EH_PE_DATAREL: u8 = 0x30;
    if hdr.len() < 12 || hdr[0] != 1 {
        return None;
    }
    let encoding = hdr[1];
    let field = &hdr[4..];
    let value = match encoding & 0x0f {
        DW_EH_PE_ABSPTR | DW_EH_PE_UDATA8 | DW_EH_PE_SDATA8 => {
            u64::from_le_bytes(field.get(..8)?.try_into().ok()?)
        }
        DW_EH_PE_UDATA4 => u64::from(u32::from_le_bytes(field[..4].try_into().ok()?)),
        DW_EH_PE_SDATA4 => i32::from_le_bytes(field[..4].try_into().ok()?) as i64 as u64,
        _ => return None,
    };
    match encoding & 0x70 {
        0 => Some(value),
        DW_EH_PE_PCREL => Some((hdr_address + 4).wrapping_add(value)),
        DW_EH_PE_DATAREL => Some(hdr_address.wrapping_add(value)),
        _ => None,
    }
}

/// The calling thread's stack as (lowest, highest) address.
fn thread_stack() -> Option<(usize, usize)> {
    let mut attr = core::mem::MaybeUninit::<libc::pthread_attr_t>::uninit();
    // SAFETY: `attr` is written by pthread_getattr_np before it is read,
    // and destroyed once, after the stack is read from it.
    unsafe {
        if libc::pthread_getattr_np(libc::pthread_self(), attr.as_mut_ptr()) != 0 {
            return None;
        }
        let mut address = core::ptr::null_mut();
        let mut size = 0;
        let rc = libc::pthread_attr_getstack(attr.as_ptr(), &mut address, &mut size);
        libc::pthread_attr_destroy(attr.as_mut_ptr());
        (rc == 0 && size > 0).then(|| (address as usize, address as usize + size))
    }
}

#[cfg(test)]
mod tests {

    use super::*;

    /// Two return addresses one entry apart in framehop's table of 509
    /// (equal modulo 509 after framehop's `- 1`) share an entry; others do
    /// not.
    #[test]
    fn shares_an_entry_finds_framehop_collisions() {
        let base = 0x55e0_1234_5678usize;
        assert!(!shares_an_entry(&[]));
        assert!(!shares_an_entry(&[base]));
        assert!(!shares_an_entry(&[base, base + 1, base + 508]));
        assert!(shares_an_entry(&[base, base + 7, base + 509]));
        assert!(shares_an_entry(&[base + 3, base + 3]));
        let spread: Vec<usize> = (0..509).map(|k| base + k).collect();
        assert!(!shares_an_entry(&spread));
        assert!(shares_an_entry(
            &[spread.as_slice(), &[base + 2 * 509]].concat()
        ));
    }

    /// Return addresses framehop's cache files in one slot (equal modulo
    /// 509) go to different ways, so they no longer evict each other.
    #[test]
    fn ways_split_what_framehop_files_together() {
        for base in [0x55e0_1234_5678u64, 0x7f3a_0000_1000, 0x40_1000] {
            let ways: std::collections::BTreeSet<usize> =
                (0..16).map(|k| way_of(base + 509 * k)).collect();
            assert_eq!(ways.len(), WAYS, "{base:#x}: {ways:?}");
            assert!(ways.iter().all(|&w| w < WAYS));
        }
    }

    /// Tests here that load objects would make a concurrent capture of
    /// another test rebuild and fall back: one at a time.
    static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

    /// The fast unwinder and libgcc's agree on every frame they both see.
    #[test]
    fn agrees_with_libgcc() {
        let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
        set_up();
        set_up_thread(crate::shard::local());
        assert_agrees();
    }

    /// Loading an object makes the next capture rebuild the unwinder with
    /// it (and fall back, once); captures after it take the fast path again
    /// and still agree with libgcc; and so after an unload.
    #[test]
    fn rebuilds_after_objects_are_loaded_and_unloaded() {
        let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
        set_up();
        set_up_thread(crate::shard::local());
        let mut out = [0usize; 64];
        assert!(through_two_frames(&mut out).is_some(), "fast path before");
        let (before, objects_before) = (rebuilds(), objects());

        // Libraries every glibc installs, that no Rust test binary links
        // and that load on their own.
        let handle = ["libBrokenLocale.so.1", "libanl.so.1"]
            .iter()
            .find_map(|name| {
                let name = std::ffi::CString::new(*name).unwrap();
                // SAFETY: a NUL-terminated name; these libraries run no
                // code of consequence when loaded.
                let handle = unsafe { libc::dlopen(name.as_ptr(), libc::RTLD_NOW) };
                (!handle.is_null()).then_some(handle)
            })
            .expect("one of glibc's libraries loads");
        assert!(
            through_two_frames(&mut out).is_none(),
            "the load is noticed"
        );
        assert_eq!(rebuilds(), before + 1);
        assert_eq!(objects(), objects_before + 1, "the new object is known");
        assert_agrees();

        let counts = loader_counts().unwrap();
        // SAFETY: `handle` came from dlopen and is closed once.
        assert_eq!(unsafe { libc::dlclose(handle) }, 0);
        assert_ne!(loader_counts().unwrap(), counts, "the library unloads");
        assert!(
            through_two_frames(&mut out).is_none(),
            "the unload is noticed"
        );
        assert_eq!(rebuilds(), before + 2);
        assert_eq!(objects(), objects_before);
        assert_agrees();
    }

    /// Captures with both unwinders from nested calls and checks the fast
    /// one applies and gives libgcc's frames.
    fn assert_agrees() {
        let (fast, slow) = nested(3);
        assert!(fast.len() >= 5, "fast stack too short: {fast:x?}");
        // The fast capture's first frame is the return into the innermost
        // `nested`, from another call than libgcc's: compare from the one
        // after it (the return into the next `nested`) to the end.
        let start = slow
            .iter()
            .position(|&ip| ip == fast[1])
            .unwrap_or_else(|| panic!("{:x} not in libgcc's stack {slow:x?}", fast[1]));
        // (libgcc ends with a null frame where the fast one just ends.)
        let slow_end = slow.len() - slow.iter().rev().take_while(|&&ip| ip == 0).count();
        assert_eq!(&slow[start..slow_end], &fast[1..], "libgcc {slow:x?}");
    }

    /// Recurses `depth` times, then captures the stack with both unwinders
    /// from one call site each.
    #[inline(never)]
    fn nested(depth: u32) -> (Vec<usize>, Vec<usize>) {
        if depth > 0 {
            let result = nested(depth - 1);
            core::hint::black_box(&result);
            return result;
        }
        let mut fast = [0usize; 64];
        let n = through_two_frames(&mut fast).expect("the fast path applies");
        let mut slow = Vec::new();
        // SAFETY: as in `crate::sample::capture`.
        unsafe {
            backtrace::trace_unsynchronized(|frame| {
                slow.push(frame.ip() as usize);
                slow.len() < 128
            })
        };
        (fast[..n].to_vec(), slow)
    }

    /// Stands in for `sample::capture` and `sample::on_due`, the two frames
    /// between the fast capture and the frames it keeps.
    #[inline(never)]
    fn through_two_frames(out: &mut [usize]) -> Option<usize> {
        let n = through_one_frame(out);
        core::hint::black_box(n)
    }

    #[inline(never)]
    fn through_one_frame(out: &mut [usize]) -> Option<usize> {
        let n = capture(crate::shard::local(), out);
        core::hint::black_box(n)
    }
}
