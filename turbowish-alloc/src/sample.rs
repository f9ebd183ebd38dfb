//! Sampled allocation sites (issue #5): byte-based Poisson sampling with raw
//! backtraces.
//!
//! Every thread counts allocated bytes down from a gap drawn from an
//! exponential distribution with the configured mean. The allocation that
//! runs the countdown out is sampled, and a fresh gap is drawn. That is a
//! Poisson process over the allocated bytes: a block of `s` bytes is sampled
//! with probability `1 - exp(-s / T)` whatever came before it, so weighting
//! each sample by the inverse of that probability gives unbiased estimates
//! (tcmalloc's estimator). At interval 1 every allocation is sampled.
//!
//! The hot path pays one subtract and compare on a thread-local countdown.
//! Everything else happens in [`on_due`], under the re-entrancy guard: the
//! environment override is read, the unwinders warmed up, the return
//! addresses captured (raw: never symbolised here; through
//! `crate::unwind`'s cached rules where it applies, else libgcc's
//! unwinder, unsynchronised: never through `backtrace`'s global lock, which
//! deadlocks an allocator that allocates while holding it, dhat-rs#38),
//! and the sample inserted into a
//! lock-striped table keyed by address. Allocations made meanwhile are
//! charged to `internal` and never sampled, so the table's locks are never
//! taken twice by one thread. A sampled block carries `SAMPLED` in its
//! header, so frees of other blocks never look at the table. Fork handlers
//! take every stripe across a `fork()`, so a child never inherits a stripe
//! locked by a thread it does not have.

use core::cell::UnsafeCell;
use core::hash::{BuildHasherDefault, Hasher};
use core::sync::atomic::{AtomicBool, AtomicPtr, AtomicU64, AtomicUsize, Ordering};
use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

use crate::shard::{self, Local};
use crate::Owner;

/// The default mean sampling interval: 512 KiB, as in tcmalloc's
/// `profile_sampling_interval` default of old and jemalloc's `lg_prof_sample`.
pub const DEFAULT_SAMPLE_INTERVAL: u64 = 512 * 1024;

/// The most return addresses kept per sample (innermost first).
pub const MAX_FRAMES: usize = 64;

/// The environment variable that overrides the configured interval (bytes;
/// 0 turns sampling off, 1 samples every allocation). Read once, at the
/// first sampling decision of the process. A value that is not a decimal
/// `u64` is ignored (the configured interval stays).
pub const SAMPLE_INTERVAL_ENV: &str = "TURBOWISH_SAMPLE_INTERVAL";

/// One live sampled block.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// The user address of the block.
    pub address: usize,
    /// Its size in bytes (as the caller asked).
    pub size: usize,
    /// How many blocks of this size the sample stands for:
    /// `1 / (1 - exp(-size / interval))` (1.0 at interval 1), so the
    /// unbiased estimate of live bytes at a site is `sum(weight * size)`.
    pub weight: f64,
    /// The task that allocated it.
    pub owner: Owner,
    /// Return addresses, innermost first. The unwinder's and the sampler's
    /// frames are removed, not the allocator's entry point: the first frame
    /// is TurboWish's `GlobalAlloc` method where it is not inlined
    /// (`realloc`, `alloc_zeroed` in debug builds) or else the shim it is
    /// inlined into (`__rust_alloc`, `__rust_realloc`, ...; `alloc` and
    /// `dealloc` always are); the code that allocated follows.
    pub frames: Vec<usize>,
}

/// The mean sampling interval in bytes in effect (0: sampling off).
///
/// That is the global allocator's configured interval
/// ([`crate::TurboWish::sample_interval`]), or the value of
/// `TURBOWISH_SAMPLE_INTERVAL` if set. It is known from the first
/// allocation on; before it, or when the global allocator is not
/// TurboWish, or is one built with `sample_interval(0)`, this is 0.
pub fn sample_interval() -> u64 {
    match IN_EFFECT.load(Ordering::Acquire) {
        NOT_YET => 0,
        interval => interval,
    }
}

/// Every live sampled block, sorted by address. Allocates (charged to
/// `internal`).
///
/// ```
/// use turbowish_alloc::TurboWish;
///
/// #[global_allocator]
/// static ALLOC: TurboWish = TurboWish::system().sample_interval(1);
///
/// fn main() {
///     let block = vec![7u8; 100];
///     let samples = turbowish_alloc::samples();
///     let sample = samples
///         .iter()
///         .find(|s| s.address == block.as_ptr() as usize)
///         .expect("interval 1 samples every allocation");
///     assert_eq!((sample.size, sample.weight), (100, 1.0));
///     assert!(!sample.frames.is_empty());
/// }
/// ```
pub fn samples() -> Vec<Sample> {
    // The guard keeps the allocations below (which happen while a stripe is
    // locked) out of the sampler, which would lock the stripe again.
    let was = shard::enter_busy();
    guard_against_fork();
    let mut out = Vec::new();
    for stripe in 0..STRIPES {
        with_stripe(stripe, |map| {
            out.reserve(map.len());
            out.extend(map.iter().map(|(&address, entry)| Sample {
                address,
                size: entry.size,
                weight: weight(entry.size, entry.interval),
                owner: entry.owner,
                frames: entry.frames[..usize::from(entry.depth)].to_vec(),
            }));
        });
    }
    out.sort_unstable_by_key(|s| s.address);
    shard::leave_busy(was);
    out
}

/// Called by the allocator when this thread's countdown has run out on an
/// allocation of `size` bytes at `user`, tagged `tag`; `configured` is the
/// allocator's interval (non-zero). Returns whether the block was sampled
/// (then the caller marks its header `SAMPLED`).
///
/// Not inlined, and it calls [`capture`] straight from its body (not from
/// a closure), so that its frame is the one the backtrace is cut after.
#[cold]
#[inline(never)]
pub(crate) fn on_due(configured: u64, user: usize, size: usize, tag: u32) -> bool {
    if shard::is_busy() {
        // TurboWish's own allocation: never sampled (`sample_due` does not
        // even count it; this is a second line of defence).
        return false;
    }
    let was = shard::enter_busy();
    let local = shard::local();
    let interval = in_effect(configured);
    let sampled = decide(local, interval, size);
    if sampled {
        let mut raw = [0usize; MAX_FRAMES + CUT_ROOM];
        let frames = capture(&mut raw, Unwind::Fastest);
        insert(user, size, interval, tag, frames);
    }
    shard::leave_busy(was);
    sampled
}

/// Removes the sample of the block at `user`, which is being freed (or
/// moved by `realloc`). Must run before the block goes back to the inner
/// allocator: once it has, another thread may be handed the same address
/// and sample it.
#[cold]
#[inline(never)]
pub(crate) fn forget(user: usize) {
    let was = shard::enter_busy();
    with_stripe(stripe_of(user), |map| {
        map.remove(&user);
        // Give back the storage of a stripe that a burst of samples grew,
        // once it is a quarter full: that leaves room for as many samples
        // again as it holds before it must grow, so no thrashing. (Small
        // stripes keep their storage: freeing and reallocating it with
        // every sample would fragment the inner allocator, see `Entry`.)
        if map.capacity() > 64 && map.len() * 4 <= map.capacity() {
            map.shrink_to_fit();
        }
    });
    shard::leave_busy(was);
}

/// What the table keeps per sampled block. The frames are kept inline, not
/// in a block of their own: a block allocated and freed with every sample
/// sits between the program's blocks in the inner allocator and measurably
/// fragments its free lists (glibc: a 4 KiB alloc+free pair went from 13 to
/// 28 ns on average at the default interval, mostly in `unlink_chunk`).
/// With the table at its working size, sampling allocates nothing.
#[derive(Debug)]
struct Entry {
    size: usize,
    /// The interval it was sampled at: its weight is worked out when it is
    /// read (an `exp_m1` and two divisions off the sampling path: ~20 ns a
    /// sample measured).
    interval: u64,
    owner: Owner,
    depth: u8,
    frames: [usize; MAX_FRAMES],
}

/// Lock stripes of the sample table: enough that threads sampling at once
/// rarely meet, few enough that `samples()` is quick.
const STRIPES: usize = 16;

type Map = HashMap<usize, Entry, BuildHasherDefault<AddressHasher>>;

static TABLE: [Mutex<Map>; STRIPES] =
    [const { Mutex::new(HashMap::with_hasher(BuildHasherDefault::new())) }; STRIPES];

/// `IN_EFFECT` before the first sampling decision.
const NOT_YET: u64 = u64::MAX;
/// The interval in effect, published by the first sampling decision.
static IN_EFFECT: AtomicU64 = AtomicU64::new(NOT_YET);

/// `ENV_OVERRIDE` values besides an interval.
const ENV_UNREAD: u64 = u64::MAX;
const ENV_UNSET: u64 = u64::MAX - 1;
/// `TURBOWISH_SAMPLE_INTERVAL`, once read.
static ENV_OVERRIDE: AtomicU64 = AtomicU64::new(ENV_UNREAD);

/// Whether the unwinder has been run once (see `warm_up`).
static WARM: AtomicBool = AtomicBool::new(false);

/// Threads whose sampler has been set up: seeds their PRNGs.
static THREADS: AtomicU64 = AtomicU64::new(0);

/// The interval in effect for an allocator configured with `configured`.
/// Runs under the re-entrancy guard: the first call reads the environment.
fn in_effect(configured: u64) -> u64 {
    let mut env = ENV_OVERRIDE.load(Ordering::Acquire);
    if env == ENV_UNREAD {
        env = read_env().unwrap_or(ENV_UNSET);
        ENV_OVERRIDE.store(env, Ordering::Release);
    }
    let interval = if env == ENV_UNSET { configured } else { env };
    if IN_EFFECT.load(Ordering::Relaxed) != interval {
        IN_EFFECT.store(interval, Ordering::Release);
    }
    interval
}

/// The override from the environment, read with `getenv`: unlike
/// `std::env::var` it neither allocates nor takes std's environment lock,
/// which a thread inside `std::env::set_var` holds while it allocates.
fn read_env() -> Option<u64> {
    let name = c"TURBOWISH_SAMPLE_INTERVAL";
    debug_assert_eq!(name.to_bytes(), SAMPLE_INTERVAL_ENV.as_bytes());
    // SAFETY: `name` is a NUL-terminated string; getenv returns null or a
    // NUL-terminated string that stays valid until the environment is
    // changed, and it is copied out (parsed) at once.
    let value = unsafe { libc::getenv(name.as_ptr()) };
    if value.is_null() {
        return None;
    }
    // SAFETY: as above, a valid NUL-terminated string.
    let value = unsafe { core::ffi::CStr::from_ptr(value) };
    parse_interval(value.to_bytes())
}

/// A decimal `u64`, surrounding blanks allowed; anything else is `None`.
fn parse_interval(text: &[u8]) -> Option<u64> {
    let text = core::str::from_utf8(text).ok()?.trim();
    let interval: u64 = text.parse().ok()?;
    // The two values above every interval are `ENV_OVERRIDE`'s markers.
    Some(interval.min(ENV_UNSET - 1))
}

/// Sets the countdown for the next sample and says whether the allocation
/// of `size` bytes that ran the countdown out is sampled.
fn decide(local: &Local, interval: u64, size: usize) -> bool {
    let first = !local.sample_ready.get();
    if first {
        set_up(local);
    }
    match interval {
        0 => {
            local.sample_left.set(i64::MAX);
            false
        }
        1 => {
            local.sample_left.set(0);
            true
        }
        _ => {
            if first {
                // The countdown started at 0, not at a drawn gap: draw one
                // now and count this allocation against it.
                let left = gap(local, interval).saturating_sub(size as i64);
                if left > 0 {
                    local.sample_left.set(left);
                    return false;
                }
            }
            local.sample_left.set(gap(local, interval));
            true
        }
    }
}

/// Seeds this thread's PRNG and, once per process, runs the unwinder once:
/// its first use initialises state (and may allocate, or take the dynamic
/// loader's lock) that later captures then find ready.
fn set_up(local: &Local) {
    let thread = THREADS.fetch_add(1, Ordering::Relaxed);
    local.sample_rng.set(splitmix64(thread) | 1);
    local.sample_ready.set(true);
    guard_against_fork();
    #[cfg(all(target_arch = "x86_64", target_os = "linux"))]
    {
        crate::unwind::set_up();
        crate::unwind::set_up_thread(local);
    }
    if !WARM.swap(true, Ordering::AcqRel) {
        // Both unwinders: libgcc's is the fallback of the fast one.
        let mut raw = [0usize; MAX_FRAMES + CUT_ROOM];
        capture(&mut raw, Unwind::Libgcc);
        capture(&mut raw, Unwind::Fastest);
    }
}

/// Bytes until the next sample: exponential with mean `interval`, at least
/// 1 and small enough never to overflow the countdown.
fn gap(local: &Local, interval: u64) -> i64 {
    // xorshift64*: a few cycles, no allocation, good enough to space samples.
    let mut x = local.sample_rng.get();
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    local.sample_rng.set(x);
    let bits = x.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 11;
    // Uniform in (0, 1): never 0, so the logarithm is finite.
    let uniform = (bits as f64 + 0.5) * (1.0 / (1u64 << 53) as f64);
    let gap = -uniform.ln() * interval as f64;
    gap.clamp(1.0, (1u64 << 62) as f64) as i64
}

/// The number of blocks of `size` bytes one sample stands for (see
/// [`Sample::weight`]).
fn weight(size: usize, interval: u64) -> f64 {
    if interval <= 1 || size == 0 {
        // Every allocation is sampled (a size-0 block is sampled only then).
        return 1.0;
    }
    let p = -(-(size as f64) / interval as f64).exp_m1();
    1.0 / p
}

/// Which unwinder [`capture`] uses.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Unwind {
    /// The fast one where it can give the whole stack (x86_64 Linux, see
    /// `crate::unwind`), else libgcc's.
    Fastest,
    /// libgcc's `_Unwind_Backtrace` (through `backtrace`), always.
    Libgcc,
}

/// Room for the frames [`capture`] cuts off besides [`MAX_FRAMES`] kept.
const CUT_ROOM: usize = 16;

/// A capture's buffer: the frames to cut, then those kept.
type Frames = [usize; MAX_FRAMES + CUT_ROOM];

/// How many frames [`capture`] cuts off: the unwinder's own, `capture`'s,
/// and its caller's ([`on_due`]'s). The same on every call, so it is found
/// once (by symbol lookups, which cost as much as the unwinding itself) and
/// kept. `CUT_UNKNOWN` until then; 0 if `capture`'s frame could not be found.
static CUT: AtomicUsize = AtomicUsize::new(CUT_UNKNOWN);
const CUT_UNKNOWN: usize = usize::MAX;

/// Captures the return addresses of the current call stack, innermost
/// first, and returns them with the frames of the unwinder, of `capture`
/// and of its caller cut off.
#[inline(never)]
fn capture(raw: &mut Frames, unwind: Unwind) -> &[usize] {
    #[cfg(all(target_arch = "x86_64", target_os = "linux"))]
    if let Unwind::Fastest = unwind {
        if let Some(depth) = crate::unwind::capture(shard::local(), &mut raw[..MAX_FRAMES]) {
            return &raw[..depth];
        }
    }
    let mut cut = CUT.load(Ordering::Relaxed);
    let measuring = cut == CUT_UNKNOWN;
    let this = capture as *const () as usize;
    let mut depth = 0;
    let mut record = |frame: &backtrace::Frame| {
        if measuring
            && cut == CUT_UNKNOWN
            && depth < CUT_ROOM - 1
            && frame.symbol_address() as usize == this
        {
            cut = depth + 2;
        }
        raw[depth] = frame.ip() as usize;
        depth += 1;
        depth < raw.len()
    };
    // SAFETY: `trace_unsynchronized` is unsafe only because some platforms'
    // unwinders are not thread-safe (dbghelp on Windows, serialised by the
    // crate's own lock in `trace`). Where TurboWish runs (Unix), it calls
    // `_Unwind_Backtrace`, which is; the crate's lock is exactly what must
    // not be taken inside an allocator (dhat-rs#38).
    unsafe { backtrace::trace_unsynchronized(&mut record) };
    if measuring {
        if cut == CUT_UNKNOWN {
            cut = 0;
        }
        CUT.store(cut, Ordering::Relaxed);
    }
    let start = cut.min(depth);
    &raw[start..depth.min(start + MAX_FRAMES)]
}

fn insert(user: usize, size: usize, interval: u64, tag: u32, frames: &[usize]) {
    let mut entry = Entry {
        size,
        interval,
        owner: crate::stats::owner_of_tag(tag),
        depth: frames.len() as u8,
        frames: [0; MAX_FRAMES],
    };
    entry.frames[..frames.len()].copy_from_slice(frames);
    with_stripe(stripe_of(user), |map| map.insert(user, entry));
}

fn stripe_of(user: usize) -> usize {
    // Blocks are at least 8-aligned; Fibonacci hashing spreads the rest.
    let index = ((user >> 3).wrapping_mul(0x9e37_79b9_7f4a_7c15_u64 as usize)) >> 58;
    index % STRIPES
}

/// Runs `f` on stripe `index`'s map, locked.
///
/// A thread between its own `fork_prepare` and `fork_parent` already holds
/// every stripe (another library's fork handler may free a sampled block
/// then): it uses the guard it holds instead of locking the stripe again,
/// which would wait forever.
fn with_stripe<R>(index: usize, f: impl FnOnce(&mut Map) -> R) -> R {
    let me = core::ptr::from_ref(shard::local()).cast_mut();
    if FORK_HOLDER.load(Ordering::Acquire) == me {
        // SAFETY: this thread published itself as `FORK_HOLDER` after
        // filling `FORK_HOLD` in `fork_prepare`, and only it empties the
        // cell (in `fork_parent`/`fork_child`, after this call returns):
        // nobody else touches the cell meanwhile.
        let held = unsafe { &mut *FORK_HOLD.0.get() };
        if let Some(guards) = held {
            return f(&mut guards[index]);
        }
    }
    f(&mut lock(&TABLE[index]))
}

/// A stripe's map. A panic while it was held (which would only come from an
/// allocation failure inside the map) leaves the map usable: take it over.
fn lock(stripe: &Mutex<Map>) -> MutexGuard<'_, Map> {
    stripe
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

// ------------------------------------------------------------------ fork
//
// `fork()` copies only the calling thread. Had another thread held a stripe
// then (sampling or freeing a sampled block), the child would find that
// stripe locked by a thread it does not have, and its first sample or free
// of a sampled block there would wait forever. So, as glibc does for
// malloc's own arenas, the forking thread takes every stripe before the
// fork (the maps are then consistent) and lets go of them on both sides
// after it.

/// Every stripe's guard, held across a `fork()` by the forking thread.
struct ForkHold(UnsafeCell<Option<[MutexGuard<'static, Map>; STRIPES]>>);

// SAFETY: only the forking thread touches the cell: it fills it in
// `fork_prepare` and empties it in `fork_parent`/`fork_child`, all run by
// that thread around its `fork()`. A second thread forking at the same
// time waits in its own `fork_prepare` for the first stripe, which the
// first forker holds until it has emptied the cell.
unsafe impl Sync for ForkHold {}

static FORK_HOLD: ForkHold = ForkHold(UnsafeCell::new(None));

/// The `Local` of the thread that holds every stripe across its `fork()`,
/// or null.
static FORK_HOLDER: AtomicPtr<Local> = AtomicPtr::new(core::ptr::null_mut());

/// Whether the fork handlers are registered.
static FORK_GUARDED: AtomicBool = AtomicBool::new(false);

/// Registers the fork handlers once per process. Runs under the
/// re-entrancy guard: libc allocates to record them.
fn guard_against_fork() {
    if FORK_GUARDED.load(Ordering::Relaxed) || FORK_GUARDED.swap(true, Ordering::AcqRel) {
        return;
    }
    debug_assert!(shard::is_busy());
    // SAFETY: three handlers with the signature pthread_atfork expects;
    // each touches only the stripes, the cell above and this thread's
    // `Local`. A failure (ENOMEM) leaves forks as unguarded as before.
    unsafe { libc::pthread_atfork(Some(fork_prepare), Some(fork_parent), Some(fork_child)) };
}

extern "C" fn fork_prepare() {
    // The forker must not sample while it holds every stripe: its sample
    // would lock one of them again. `fork_parent`/`fork_child` undo this.
    let was = shard::enter_busy();
    let guards = core::array::from_fn(|index| lock(&TABLE[index]));
    FORK_WAS_BUSY.store(was, Ordering::Relaxed);
    #[cfg(all(target_arch = "x86_64", target_os = "linux"))]
    crate::unwind::hold_forks();
    // SAFETY: this thread holds every stripe now, so no other thread is
    // between its own prepare and parent/child handlers: the cell is ours.
    unsafe { *FORK_HOLD.0.get() = Some(guards) };
    FORK_HOLDER.store(
        core::ptr::from_ref(shard::local()).cast_mut(),
        Ordering::Release,
    );
}

extern "C" fn fork_parent() {
    release_fork_hold();
}

extern "C" fn fork_child() {
    // The child's only thread is the forker's copy: the guards it holds
    // are its own, so dropping them unlocks the stripes as in the parent.
    release_fork_hold();
    #[cfg(all(target_arch = "x86_64", target_os = "linux"))]
    crate::unwind::in_child();
}

/// Whether the forker was already busy before `fork_prepare`.
static FORK_WAS_BUSY: AtomicBool = AtomicBool::new(false);

fn release_fork_hold() {
    #[cfg(all(target_arch = "x86_64", target_os = "linux"))]
    crate::unwind::release_forks();
    FORK_HOLDER.store(core::ptr::null_mut(), Ordering::Release);
    // SAFETY: run by the thread that filled the cell in `fork_prepare` (or
    // by its copy in the child), which still holds every stripe.
    let guards = unsafe { (*FORK_HOLD.0.get()).take() };
    drop(guards);
    shard::leave_busy(FORK_WAS_BUSY.load(Ordering::Relaxed));
}

/// The table's keys are block addresses: a multiplicative hash is enough,
/// and, unlike the default SipHash with its random keys, needs no entropy
/// (and no allocation) to set up.
#[derive(Debug, Default)]
struct AddressHasher(u64);

impl Hasher for AddressHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(b)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        }
    }

    fn write_usize(&mut self, value: usize) {
        self.0 = (value as u64 >> 3).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
}

fn splitmix64(seed: u64) -> u64 {
    let mut z = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weights_follow_the_inclusion_probability() {
        assert_eq!(weight(100, 1), 1.0);
        assert_eq!(weight(0, 4096), 1.0);
        let w = weight(512 * 1024, 512 * 1024);
        assert!((w - 1.0 / (1.0 - (-1.0f64).exp())).abs() < 1e-12);
        // Small blocks stand for about interval / size blocks each.
        let w = weight(16, 512 * 1024);
        assert!((w - 32768.5).abs() < 0.1, "{w}");
    }

    #[test]
    fn env_values_parse_or_are_ignored() {
        assert_eq!(parse_interval(b"1"), Some(1));
        assert_eq!(parse_interval(b" 4096\n"), Some(4096));
        assert_eq!(parse_interval(b"0"), Some(0));
        assert_eq!(parse_interval(b"-5"), None);
        assert_eq!(parse_interval(b"1k"), None);
        assert_eq!(parse_interval(b""), None);
        assert_eq!(parse_interval(&[0xff]), None);
        assert_eq!(parse_interval(b"18446744073709551615"), Some(ENV_UNSET - 1));
    }

    #[test]
    fn gaps_average_the_interval() {
        let local = shard::local();
        let saved = local.sample_rng.replace(splitmix64(42) | 1);
        let n = 100_000;
        let sum: f64 = (0..n).map(|_| gap(local, 1000) as f64).sum();
        local.sample_rng.set(saved);
        // The mean of 100,000 exponential draws has a standard deviation of
        // 1000 / sqrt(100,000) = 3.2: 2% is more than 6 of them.
        let mean = sum / n as f64;
        assert!((mean - 1000.0).abs() < 20.0, "{mean}");
    }
}
