//! Cost of allocation sampling: one `alloc` + `dealloc` pair of 16, 64, 256
//! and 4096 bytes through TurboWish sampling at the default interval
//! (512 KiB), against TurboWish with sampling compiled out
//! (`sample_interval(0)`: counting only) and `System`, calling `GlobalAlloc`
//! on each instance directly, on one thread.
//!
//! Run: `cargo bench --bench sampling`. The figures are in
//! `turbowish-alloc/README.md`.

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use turbowish_alloc::TurboWish;

const SIZES: [usize; 4] = [16, 64, 256, 4096];

static SAMPLING: TurboWish = TurboWish::system();
static COUNTING: TurboWish = TurboWish::system().sample_interval(0);

/// Times `iters` alloc+free pairs.
fn pairs<A: GlobalAlloc>(alloc: &A, layout: Layout, iters: u64) -> Duration {
    let start = Instant::now();
    for _ in 0..iters {
        // SAFETY: `layout` has a non-zero size; the block is freed with the
        // same allocator and layout.
        unsafe {
            let p = alloc.alloc(layout);
            black_box(p);
            alloc.dealloc(p, layout);
        }
    }
    start.elapsed()
}

fn bench_sampling(c: &mut Criterion) {
    let mut group = c.benchmark_group("sampling_pair");
    group.throughput(Throughput::Elements(1));
    group.warm_up_time(Duration::from_millis(500));
    group.measurement_time(Duration::from_secs(3));
    for size in SIZES {
        let layout = Layout::from_size_align(size, 8).unwrap();
        group.bench_with_input(BenchmarkId::new("System", size), &layout, |b, &l| {
            b.iter_custom(|n| pairs(&System, l, n))
        });
        group.bench_with_input(BenchmarkId::new("counting", size), &layout, |b, &l| {
            b.iter_custom(|n| pairs(&COUNTING, l, n))
        });
        group.bench_with_input(BenchmarkId::new("sampling", size), &layout, |b, &l| {
            b.iter_custom(|n| pairs(&SAMPLING, l, n))
        });
    }
    group.finish();
}

criterion_group!(benches, bench_sampling);
criterion_main!(benches);
