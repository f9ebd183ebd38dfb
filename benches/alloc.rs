//! Allocator hot-path overhead: one `alloc` + `dealloc` pair of 16, 64, 256
//! and 4096 bytes, calling `GlobalAlloc` on each allocator instance directly,
//! on one thread and on two threads at once. Besides TurboWish and its
//! peers, two floors (`support::floor`): a bare header + thread-local
//! counter, and the same plus tokio's `try_id()` per allocation.
//!
//! Run: `cargo bench --bench alloc`. The figures are in
//! `turbowish-alloc/README.md`.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::Barrier;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use tracking_allocator::{AllocationGroupId, AllocationRegistry, AllocationTracker};
use turbowish_alloc::{context, TaskTag, TurboWish};

mod support {
    pub(crate) mod timed;
    // `FloorRegistry` is for the heap-walk bench.
    #[allow(dead_code)]
    pub(crate) mod floor;
}
use support::floor::{Floor, FloorTokio};

const SIZES: [usize; 4] = [16, 64, 256, 4096];

/// The lightest possible tracker, so the figure is tracking-allocator's own
/// machinery (group stack, header, tracker dispatch), not our callback.
struct NullTracker;

impl AllocationTracker for NullTracker {
    fn allocated(&self, _: usize, _: usize, _: usize, _: AllocationGroupId) {}
    fn deallocated(
        &self,
        _: usize,
        _: usize,
        _: usize,
        _: AllocationGroupId,
        _: AllocationGroupId,
    ) {
    }
}

static TURBOWISH: TurboWish = TurboWish::system();
static STATS_ALLOC: stats_alloc::StatsAlloc<System> = stats_alloc::StatsAlloc::system();
static TRACKING: tracking_allocator::Allocator<System> = tracking_allocator::Allocator::system();
static DHAT: dhat::Alloc = dhat::Alloc;

/// Where the timed thread runs: outside any task (TurboWish asks tokio's
/// `try_id()` on every allocation, finds none and charges `untracked`), or
/// inside a task context entered with `context::enter` (what every poll of
/// a traced task does: the allocation is charged to that task).
#[derive(Clone, Copy)]
enum Site {
    NoTask,
    InTask,
}

/// Times `iters` alloc+free pairs on each of `threads` threads started
/// together; returns wall time divided so that the figure is per pair per
/// thread (equal to the single-thread figure when threads scale perfectly).
/// The allocator is named by a closure returning its static (see
/// `support::timed::time_pairs`).
fn pairs<A: GlobalAlloc + Sync + 'static>(
    instance: impl Fn() -> &'static A + Copy + Sync,
    layout: Layout,
    iters: u64,
    threads: usize,
) -> Duration {
    pairs_at(Site::NoTask, instance, layout, iters, threads)
}

fn pairs_at<A: GlobalAlloc + Sync + 'static>(
    site: Site,
    instance: impl Fn() -> &'static A + Copy + Sync,
    layout: Layout,
    iters: u64,
    threads: usize,
) -> Duration {
    // Per thread: enter the task (if any), arrange the heap, then time.
    let run = || {
        let tag = matches!(site, Site::InTask).then(TaskTag::new);
        let _entered = tag.as_ref().map(context::enter);
        support::timed::fenced(instance(), layout, || {
            support::timed::time_pairs(instance, layout, iters)
        })
    };
    if threads == 1 {
        return run();
    }
    let barrier = Barrier::new(threads);
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                s.spawn(|| {
                    barrier.wait();
                    run()
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap())
            .max()
            .unwrap()
    })
}

fn bench_alloc(c: &mut Criterion) {
    AllocationRegistry::set_global_tracker(NullTracker).expect("no other tracker");
    AllocationRegistry::enable_tracking();
    let _dhat = dhat::Profiler::builder().testing().build();

    for threads in [1usize, 2] {
        let mut group = c.benchmark_group(format!("alloc_free_pair/{threads}_thread"));
        group.throughput(Throughput::Elements(1));
        group.warm_up_time(Duration::from_millis(500));
        group.measurement_time(Duration::from_secs(2));
        for size in SIZES {
            let layout = Layout::from_size_align(size, 8).unwrap();
            group.bench_with_input(BenchmarkId::new("System", size), &layout, |b, &l| {
                b.iter_custom(|n| pairs(|| &System, l, n, threads))
            });
            group.bench_with_input(BenchmarkId::new("TurboWish", size), &layout, |b, &l| {
                b.iter_custom(|n| pairs(|| &TURBOWISH, l, n, threads))
            });
            group.bench_with_input(
                BenchmarkId::new("TurboWish_in_task", size),
                &layout,
                |b, &l| b.iter_custom(|n| pairs_at(Site::InTask, || &TURBOWISH, l, n, threads)),
            );
            group.bench_with_input(BenchmarkId::new("TurboWish_off", size), &layout, |b, &l| {
                turbowish_alloc::set_enabled(false);
                b.iter_custom(|n| pairs(|| &TURBOWISH, l, n, threads));
                turbowish_alloc::set_enabled(true);
            });
            // The least any tagging allocator of this kind can cost: what
            // TurboWish's figure should be read against (`support::floor`).
            group.bench_with_input(BenchmarkId::new("floor", size), &layout, |b, &l| {
                b.iter_custom(|n| pairs(|| &Floor, l, n, threads))
            });
            group.bench_with_input(BenchmarkId::new("floor_tokio", size), &layout, |b, &l| {
                b.iter_custom(|n| pairs(|| &FloorTokio, l, n, threads))
            });
            group.bench_with_input(BenchmarkId::new("stats_alloc", size), &layout, |b, &l| {
                b.iter_custom(|n| pairs(|| &STATS_ALLOC, l, n, threads))
            });
            group.bench_with_input(
                BenchmarkId::new("tracking_allocator", size),
                &layout,
                |b, &l| b.iter_custom(|n| pairs(|| &TRACKING, l, n, threads)),
            );
            if threads == 1 {
                // dhat serialises every call on one global mutex; its
                // two-thread figure would only measure that lock.
                group.bench_with_input(BenchmarkId::new("dhat", size), &layout, |b, &l| {
                    b.iter_custom(|n| pairs(|| &DHAT, l, n, threads))
                });
            }
        }
        group.finish();
    }
}

/// Budgets cost nothing on the pair path: a task's budget is checked only
/// when its batch is folded into its record, on a task switch. So this
/// times the worst case for them: a switch between two tasks around every
/// pair (each switch folds a batch), without budgets, and with both tasks
/// given a budget and the process a live limit (none ever reached).
/// `cargo bench --bench alloc -- budget_check`.
fn bench_budget_check(c: &mut Criterion) {
    let mut group = c.benchmark_group("budget_check/switch_and_pair");
    group.throughput(Throughput::Elements(1));
    group.warm_up_time(Duration::from_millis(500));
    group.measurement_time(Duration::from_secs(3));
    let layout = Layout::from_size_align(64, 8).unwrap();
    for budgets in [false, true] {
        let name = if budgets { "with_budgets" } else { "without" };
        group.bench_function(name, |b| {
            let tags = [TaskTag::new(), TaskTag::new()];
            if budgets {
                for tag in &tags {
                    tag.set_budget(Some(1 << 40));
                }
                turbowish_alloc::budget::set_live_limit(Some(1 << 50));
            }
            b.iter_custom(|n| {
                let start = std::time::Instant::now();
                for i in 0..n {
                    let _in_task = context::enter(&tags[(i & 1) as usize]);
                    // SAFETY: a non-zero-size layout; the block is freed
                    // with the same layout straight away.
                    unsafe {
                        let p = TURBOWISH.alloc(layout);
                        std::hint::black_box(p);
                        TURBOWISH.dealloc(p, layout);
                    }
                }
                start.elapsed()
            });
            for tag in &tags {
                tag.set_budget(None);
            }
            turbowish_alloc::budget::set_live_limit(None);
        });
    }
    group.finish();
}

criterion_group!(benches, bench_alloc, bench_budget_check);
criterion_main!(benches);
