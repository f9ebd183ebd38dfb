//! The workload of `benches/app.rs` with the plain `System` allocator: the
//! anchor for "TurboWish off".
//!
//! Run: `cargo bench --bench app --bench app_system`

use criterion::{criterion_group, criterion_main, Criterion};

mod support {
    pub(crate) mod workload;
}
use support::workload;

fn bench_app_system(c: &mut Criterion) {
    let rt = workload::runtime();
    let mut group = c.benchmark_group("app");
    workload::configure(&mut group);
    group.bench_function("system", |b| b.iter(|| workload::run(&rt)));
    group.finish();
}

criterion_group!(benches, bench_app_system);
criterion_main!(benches);
