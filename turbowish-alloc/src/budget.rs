//! Memory budgets: limits on a task's live bytes, and on the whole
//! process's, whose crossing wakes a watcher thread.
//!
//! The allocator never compares an allocation against a limit. A limit is
//! checked where counts are folded together anyway: a task's budget when a
//! thread's batch for the task is flushed into its record (on a task switch,
//! after 1 MiB of growth, and at the end of each poll of a budgeted
//! TurboWish task), the process-wide limits when a thread's unpublished
//! change (up to 1 MiB) is added to the global total. A crossing sets a
//! *pending* flag and unparks the watcher thread registered with
//! [`set_watcher`] (a futex wake: no lock, no allocation); the watcher
//! collects the flags with [`TaskTag::take_budget_crossed`],
//! [`take_live_limit_crossed`] and [`take_growth_limit_crossed`], and does
//! the rest (snapshot, callback) on its own time. `turbowish-capture`'s
//! `Budgets` is that watcher.
//!
//! A crossing is upward: the limit fires once when live bytes first pass
//! it, and again only after they have dropped back to it or below. Because
//! counts are batched per thread, a crossing is seen up to 1 MiB (per
//! thread) late, and a brief excursion of less than that above the limit
//! may go unseen.
//!
//! ```
//! let tag = turbowish_alloc::TaskTag::new();
//! tag.set_budget(Some(64 * 1024));
//! assert_eq!(tag.budget(), Some(64 * 1024));
//! assert!(!tag.take_budget_crossed());
//! ```

use core::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::thread::Thread;

use crate::record::{self, TaskTag};

/// Set in a limit word once live bytes are above the limit; cleared when
/// they are seen at or below it again.
const ABOVE: u64 = 1 << 62;
/// Set with `ABOVE` on an upward crossing; cleared by the watcher's take.
const PENDING: u64 = 1 << 63;
/// The limit itself: the low 62 bits (0: no limit).
const LIMIT: u64 = ABOVE - 1;

/// The thread unparked on every crossing.
static WATCHER: OnceLock<Thread> = OnceLock::new();
/// The process-wide live-bytes limit (a limit word).
static LIVE_LIMIT: AtomicU64 = AtomicU64::new(0);
/// The growth limit: a live-bytes level the watcher moves at the start of
/// each growth window (a limit word).
static GROWTH_LIMIT: AtomicU64 = AtomicU64::new(0);

/// Registers the thread to unpark when any limit is crossed. The first
/// registration wins; returns whether this one did.
pub fn set_watcher(thread: Thread) -> bool {
    WATCHER.set(thread).is_ok()
}

/// Unparks the registered watcher, if any (as a crossing does).
pub fn wake_watcher() {
    if let Some(watcher) = WATCHER.get() {
        watcher.unpark();
    }
}

/// Sets (or with `None` removes) the process-wide live-bytes limit. Setting
/// it re-arms it: a process already above it crosses it at the next
/// publish of the global total.
pub fn set_live_limit(bytes: Option<u64>) {
    LIVE_LIMIT.store(limit_word(bytes), Ordering::Relaxed);
}

/// The process-wide live-bytes limit, if any.
pub fn live_limit() -> Option<u64> {
    limit_of(LIVE_LIMIT.load(Ordering::Relaxed))
}

/// Whether the process-wide limit was crossed since the last call.
pub fn take_live_limit_crossed() -> bool {
    take(&LIVE_LIMIT)
}

/// Sets (or removes) the growth limit: the live-bytes level that counts as
/// too much growth for the current window (the watcher sets it to the
/// window's starting level plus the allowed growth).
pub fn set_growth_limit(bytes: Option<u64>) {
    GROWTH_LIMIT.store(limit_word(bytes), Ordering::Relaxed);
}

/// Whether the growth limit was crossed since the last call.
pub fn take_growth_limit_crossed() -> bool {
    take(&GROWTH_LIMIT)
}

/// The process's live bytes as last published: exact to 1 MiB per thread,
/// and free to read (one load), unlike [`crate::stats`].
pub fn published_live_bytes() -> u64 {
    crate::shard::published_live().max(0) as u64
}

/// Folds the calling thread's batch into its record now, so that a budget
/// check (and any reader) sees it. TurboWish tasks with a budget do this at
/// the end of each poll.
pub fn flush_thread_batch() {
    crate::shard::flush_current_thread();
}

impl TaskTag {
    /// Gives this task a budget of `bytes` live bytes (or, with `None`,
    /// none). For a tag that got no record of its own (the `overflow`
    /// bucket, see [`TaskTag::new`]) this does nothing.
    pub fn set_budget(&self, bytes: Option<u64>) {
        if self.slot() >= record::FIRST_TASK_SLOT {
            record::get(self.slot())
                .budget
                .store(limit_word(bytes), Ordering::Relaxed);
        }
    }

    /// This task's budget, if it has one.
    pub fn budget(&self) -> Option<u64> {
        if self.slot() < record::FIRST_TASK_SLOT {
            return None;
        }
        limit_of(record::get(self.slot()).budget.load(Ordering::Relaxed))
    }

    /// Whether this task's live bytes crossed its budget since the last
    /// call.
    pub fn take_budget_crossed(&self) -> bool {
        self.slot() >= record::FIRST_TASK_SLOT && take(&record::get(self.slot()).budget)
    }
}

/// Checks a limit word (its value `seen`) against a fold of counts: `peak`
/// is the highest live level the fold may have passed through, `after` the
/// level it leaves. Inline, and a few compares when nothing changes (the
/// usual case: a task well under its budget, or still over it); the rare
/// change of state goes out of line.
#[inline(always)]
pub(crate) fn check_word(word: &AtomicU64, seen: u64, peak: u64, after: u64) {
    let limit = seen & LIMIT;
    let changes = if seen & ABOVE == 0 {
        peak > limit
    } else {
        after <= limit
    };
    if changes && limit != 0 {
        check(word, peak, after);
    }
}

/// The out-of-line part of [`check_word`]: moves the word's state, and
/// wakes the watcher on an upward crossing.
#[cold]
#[inline(never)]
pub(crate) fn check(word: &AtomicU64, peak: u64, after: u64) {
    // Live levels read mid-fold can be transiently "negative" (wrapped):
    // those are no crossing.
    let valid = |v: u64| v < (1 << 62);
    let crossed = word.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |w| {
        let limit = w & LIMIT;
        if limit == 0 {
            None
        } else if w & ABOVE == 0 {
            (valid(peak) && peak > limit).then_some(w | ABOVE | PENDING)
        } else if valid(after) && after <= limit {
            Some(w & !ABOVE)
        } else {
            None
        }
    });
    if let Ok(before) = crossed {
        if before & ABOVE == 0 {
            wake_watcher();
        }
    }
}

/// Checks the process-wide limits after the global total moved from
/// `before` to `after`.
#[inline]
pub(crate) fn check_global(before: i64, after: i64) {
    let (peak, after) = (before.max(after).max(0) as u64, after.max(0) as u64);
    for word in [&LIVE_LIMIT, &GROWTH_LIMIT] {
        let seen = word.load(Ordering::Relaxed);
        if seen != 0 {
            check_word(word, seen, peak, after);
        }
    }
}

fn take(word: &AtomicU64) -> bool {
    word.fetch_and(!PENDING, Ordering::Relaxed) & PENDING != 0
}

fn limit_word(bytes: Option<u64>) -> u64 {
    // A limit of 0 would mean "none": the smallest limit is one byte.
    bytes.map_or(0, |b| b.clamp(1, LIMIT))
}

fn limit_of(word: u64) -> Option<u64> {
    match word & LIMIT {
        0 => None,
        limit => Some(limit),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_limit_fires_once_per_upward_crossing() {
        let word = AtomicU64::new(limit_word(Some(100)));
        check(&word, 90, 90);
        assert!(!take(&word), "below the limit");
        check(&word, 150, 40);
        assert!(take(&word), "passed it within the fold");
        assert!(!take(&word), "taken once");
        // Back at the limit re-arms; above it again fires again.
        check(&word, 120, 100);
        assert!(
            !take(&word),
            "ended at the limit: re-armed, no new crossing"
        );
        check(&word, 100, 100);
        check(&word, 101, 101);
        assert!(take(&word));
        // Wrapped ("negative") levels are ignored.
        check(&word, 50, 50);
        check(&word, u64::MAX - 5, u64::MAX - 5);
        assert!(!take(&word));
    }

    #[test]
    fn no_limit_no_crossing() {
        let word = AtomicU64::new(limit_word(None));
        check(&word, u64::MAX >> 3, 0);
        assert!(!take(&word));
        assert_eq!(limit_of(limit_word(Some(0))), Some(1));
    }
}
