//! The clock of task busy time: read twice per poll of every traced task,
//! converted to nanoseconds only when a report reads it.
//!
//! `Instant::now()` costs about 36 ns here (a vDSO `clock_gettime` on a
//! 2-core VM), so two per poll were about 3.5 % of a request-like service's
//! CPU time with 1,000 tasks. Where the kernel keeps time with the TSC
//! itself (its clocksource is `tsc`: it found the counter invariant and in
//! step across cores), a poll reads the TSC instead (about 12 ns), and a
//! reader converts ticks to nanoseconds by the rate the TSC and `Instant`
//! moved at since the first reading. Elsewhere ticks are nanoseconds of
//! `Instant` since that first reading.

use std::sync::OnceLock;
use std::time::Instant;

/// A point in time on the busy clock, in ticks (see [`tick_scale`]).
pub(crate) fn now() -> u64 {
    source().now()
}

/// The scale from ticks (differences of [`now`] readings) to nanoseconds,
/// with the clocks read once: a reader of every task's busy time converts
/// them all with one.
///
/// The TSC's rate is measured against `Instant` over the time since the
/// first reading, so it is exact to the jitter of two clock reads over that
/// span: under 0.01 % once the program has run a millisecond, which is also
/// the most busy time a task can have by then.
pub(crate) fn tick_scale() -> TickScale {
    match *source() {
        #[cfg(all(target_arch = "x86_64", target_os = "linux"))]
        Source::Tsc { base, base_tsc } => TickScale {
            ns: base.elapsed().as_nanos(),
            ticks: u128::from(tsc().saturating_sub(base_tsc)),
        },
        Source::Monotonic { .. } => TickScale { ns: 1, ticks: 1 },
    }
}

/// Nanoseconds per tick as a ratio, from [`tick_scale`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct TickScale {
    ns: u128,
    ticks: u128,
}

impl TickScale {
    /// `ticks` in nanoseconds.
    pub(crate) fn ns(&self, ticks: u64) -> u64 {
        if self.ticks == 0 {
            return 0;
        }
        saturating_ns(u128::from(ticks) * self.ns / self.ticks)
    }
}

/// Where [`now`] reads the time.
#[derive(Debug, Clone, Copy)]
enum Source {
    /// The TSC, and a reading of it taken with `base`.
    #[cfg(all(target_arch = "x86_64", target_os = "linux"))]
    Tsc { base: Instant, base_tsc: u64 },
    /// Nanoseconds of `Instant` since `base`.
    Monotonic { base: Instant },
}

fn source() -> &'static Source {
    static SOURCE: OnceLock<Source> = OnceLock::new();
    SOURCE.get_or_init(|| {
        // Reading the clocksource allocates: TurboWish's, not the task's.
        let _internal = turbowish_alloc::internal();
        #[cfg(all(target_arch = "x86_64", target_os = "linux"))]
        if kernel_keeps_time_with_tsc() {
            let (base, base_tsc) = paired_reading();
            return Source::Tsc { base, base_tsc };
        }
        Source::Monotonic {
            base: Instant::now(),
        }
    })
}

impl Source {
    #[inline]
    fn now(&self) -> u64 {
        match *self {
            #[cfg(all(target_arch = "x86_64", target_os = "linux"))]
            Source::Tsc { .. } => tsc(),
            Source::Monotonic { base } => saturating_ns(base.elapsed().as_nanos()),
        }
    }
}

fn saturating_ns(ns: u128) -> u64 {
    ns.min(u128::from(u64::MAX)) as u64
}

#[cfg(all(target_arch = "x86_64", target_os = "linux"))]
#[inline]
fn tsc() -> u64 {
    // SAFETY: `rdtsc` reads the time-stamp counter into registers; it
    // exists on every x86_64 processor and touches no memory. (Not
    // serialising: a reading may move a few instructions either way, which
    // is nothing next to a poll.)
    unsafe { core::arch::x86_64::_rdtsc() }
}

/// An `Instant` and a TSC reading taken together: the TSC is read on both
/// sides of the `Instant`, and the pair is taken again (a few times at
/// most) if the thread was preempted in between, which would skew every
/// later conversion by the preemption over the program's run time.
#[cfg(all(target_arch = "x86_64", target_os = "linux"))]
fn paired_reading() -> (Instant, u64) {
    /// About 10 µs at 3 GHz; an uninterrupted `Instant::now()` takes well
    /// under 1 µs.
    const TOGETHER: u64 = 30_000;
    let mut best = (Instant::now(), tsc(), u64::MAX);
    for _ in 0..8 {
        let before = tsc();
        let instant = Instant::now();
        let after = tsc();
        let gap = after.saturating_sub(before);
        if gap < best.2 {
            best = (instant, before + gap / 2, gap);
        }
        if gap < TOGETHER {
            break;
        }
    }
    (best.0, best.1)
}

/// Whether Linux's current clocksource is the TSC: it picks the TSC only
/// after checking it is invariant and synchronised across CPUs, and falls
/// back from it at run time if that ever stops holding (then this process
/// keeps reading the TSC: its rate measured against `Instant` still
/// converts, a cross-core skew would show as noise in busy times).
#[cfg(all(target_arch = "x86_64", target_os = "linux"))]
fn kernel_keeps_time_with_tsc() -> bool {
    std::fs::read_to_string("/sys/devices/system/clocksource/clocksource0/current_clocksource")
        .is_ok_and(|name| name.trim() == "tsc")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A span of ticks converts to the time `Instant` saw pass around it:
    /// at least the time measured inside the span, at most the time
    /// measured outside it (5 % slack for the rate's own measurement). It
    /// compares two clocks over one span, so a loaded machine only widens
    /// the bracket.
    #[test]
    fn ticks_convert_to_the_time_that_passed() {
        let _ = now();
        let outer = Instant::now();
        let start = now();
        let inner = Instant::now();
        std::thread::sleep(std::time::Duration::from_millis(20));
        let inner = inner.elapsed().as_nanos() as f64;
        let ticks = now() - start;
        let outer = outer.elapsed().as_nanos() as f64;
        let measured = tick_scale().ns(ticks) as f64;
        assert!(
            inner * 0.95 <= measured && measured <= outer * 1.05,
            "{measured} ns measured, {inner}..{outer} ns passed: {:?}",
            source()
        );
    }

    /// No ticks, no time; readings never go backwards on one thread.
    #[test]
    fn readings_are_monotonic() {
        assert_eq!(tick_scale().ns(0), 0);
        let mut last = now();
        for _ in 0..10_000 {
            let next = now();
            assert!(next >= last);
            last = next;
        }
    }
}
