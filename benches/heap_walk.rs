//! Heap-walk mode: one `alloc` + `dealloc` pair of 16, 64, 256 and 4096
//! bytes through TurboWish in heap-walk mode, against TurboWish counting
//! (both sampling at the default interval), `System` and a floor (the
//! least a per-task tagging allocator with a block registry costs, see
//! `support::floor`), calling
//! `GlobalAlloc` on each instance directly, on one thread; and the time to
//! build (and drop) a heap view of 1,000,000 live blocks.
//!
//! Run: `cargo bench --bench heap_walk`. The figures are in
//! `turbowish-alloc/README.md`.

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
use turbowish_alloc::TurboWish;

mod support {
    #[allow(dead_code)]
    pub(crate) mod floor;
    pub(crate) mod pairs;
    pub(crate) mod timed;
}
use support::floor::FloorRegistry;
use support::pairs::{pair_group, pairs};

static COUNTING: TurboWish = TurboWish::system();
/// The one heap-walk allocator of the process: the registry belongs to the
/// first that allocates.
static HEAP_WALK: TurboWish = TurboWish::system().heap_walk();

fn bench_pairs(c: &mut Criterion) {
    pair_group(
        c,
        "heap_walk_pair",
        &[
            ("System", &|l, n| pairs(|| &System, l, n)),
            ("counting", &|l, n| pairs(|| &COUNTING, l, n)),
            ("heap_walk", &|l, n| pairs(|| &HEAP_WALK, l, n)),
            // The least a registry of this kind costs (`support::floor`).
            ("floor_registry", &|l, n| pairs(|| &FloorRegistry, l, n)),
        ],
    );
}

fn bench_view(c: &mut Criterion) {
    const LIVE: usize = 1_000_000;
    let layout = Layout::from_size_align(16, 8).unwrap();
    let blocks: Vec<*mut u8> = (0..LIVE)
        // SAFETY: non-zero size; freed below with the same layout.
        .map(|_| unsafe { HEAP_WALK.alloc(layout) })
        .collect();
    assert!(turbowish_alloc::heap_walk_enabled());
    let mut group = c.benchmark_group("heap_view");
    group.sample_size(10);
    group.bench_function("1M_live_blocks", |b| {
        b.iter(|| {
            let view = turbowish_alloc::heap_view().expect("heap-walk mode");
            assert!(view.blocks().len() >= LIVE);
            drop(black_box(view));
        })
    });
    group.finish();
    for p in blocks {
        // SAFETY: allocated above with this layout.
        unsafe { HEAP_WALK.dealloc(p, layout) };
    }
}

criterion_group!(benches, bench_pairs, bench_view);
criterion_main!(benches);
