//! Cost of allocation sampling: one `alloc` + `dealloc` pair of 16, 64, 256
//! and 4096 bytes through TurboWish sampling at the default interval
//! (512 KiB), against TurboWish with sampling compiled out
//! (`sample_interval(0)`: counting only) and `System`, calling `GlobalAlloc`
//! on each instance directly, on one thread.
//!
//! Run: `cargo bench --bench sampling`. The figures are in
//! `turbowish-alloc/README.md`.

use std::alloc::System;

use criterion::{criterion_group, criterion_main, Criterion};
use turbowish_alloc::TurboWish;

mod support {
    pub(crate) mod pairs;
    pub(crate) mod timed;
}
use support::pairs::{pair_group, pairs};

static SAMPLING: TurboWish = TurboWish::system();
static COUNTING: TurboWish = TurboWish::system().sample_interval(0);

fn bench_sampling(c: &mut Criterion) {
    pair_group(
        c,
        "sampling_pair",
        &[
            ("System", &|l, n| pairs(|| &System, l, n)),
            ("counting", &|l, n| pairs(|| &COUNTING, l, n)),
            ("sampling", &|l, n| pairs(|| &SAMPLING, l, n)),
        ],
    );
}

criterion_group!(benches, bench_sampling);
criterion_main!(benches);
