//! Alloc+free pair timing shared by the single-thread allocator benches
//! (`sampling`, `heap_walk`): each contender is timed by the same
//! monomorphic loop, so only the allocator differs.

use std::alloc::{GlobalAlloc, Layout};
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput};

/// Block sizes every pair bench measures.
const SIZES: [usize; 4] = [16, 64, 256, 4096];

/// Times `iters` alloc+free pairs of `layout` through the allocator
/// `instance` returns (a closure naming its static, see
/// `timed::time_pairs`), on a heap arranged alike for every contender.
pub(crate) fn pairs<A: GlobalAlloc + 'static>(
    instance: impl Fn() -> &'static A + Copy,
    layout: Layout,
    iters: u64,
) -> Duration {
    super::timed::fenced(instance(), layout, || {
        super::timed::time_pairs(instance, layout, iters)
    })
}

/// A timing function for one contender: `pairs` on one allocator.
pub(crate) type Contender<'a> = (&'a str, &'a dyn Fn(Layout, u64) -> Duration);

/// Benchmarks every contender at every size in one group (the dynamic call
/// is per batch of `iters` pairs, not per pair).
pub(crate) fn pair_group(c: &mut Criterion, group: &str, contenders: &[Contender<'_>]) {
    let mut group = c.benchmark_group(group);
    group.throughput(Throughput::Elements(1));
    group.warm_up_time(Duration::from_millis(500));
    group.measurement_time(Duration::from_secs(3));
    for size in SIZES {
        let layout = Layout::from_size_align(size, 8).expect("valid layout");
        for (name, time) in contenders {
            group.bench_with_input(BenchmarkId::new(*name, size), &layout, |b, &l| {
                b.iter_custom(|n| time(l, n))
            });
        }
    }
    group.finish();
}
