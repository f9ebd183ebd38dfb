//! Application-level overhead: a request-like tokio workload (thousands of
//! concurrent tasks spawned through TurboWish, each allocating, transforming
//! and freeing buffers and maps) with TurboWish as the global allocator,
//! tagging on vs off in one run. `benches/app_system.rs` runs the same
//! workload over plain `System` to anchor "off".
//!
//! Run: `cargo bench --bench app --bench app_system`

use criterion::{criterion_group, criterion_main, Criterion};

#[global_allocator]
static ALLOC: turbowish::TurboWish = turbowish::TurboWish::system();

mod support {
    pub(crate) mod workload;
}
use support::workload;

fn bench_app(c: &mut Criterion) {
    let rt = workload::runtime();
    let mut group = c.benchmark_group("app");
    workload::configure(&mut group);
    group.bench_function("turbowish_tagging_on", |b| {
        turbowish::alloc::set_enabled(true);
        b.iter(|| workload::run(&rt))
    });
    group.bench_function("turbowish_tagging_off", |b| {
        turbowish::alloc::set_enabled(false);
        b.iter(|| workload::run(&rt));
        turbowish::alloc::set_enabled(true);
    });
    group.finish();
}

criterion_group!(benches, bench_app);
criterion_main!(benches);
