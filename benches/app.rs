//! Application-level overhead: a request-like tokio workload (thousands of
//! concurrent tasks spawned through TurboWish, each allocating, transforming
//! and freeing buffers and maps) with TurboWish as the global allocator,
//! tagging on vs off in one run. `benches/app_system.rs` runs the same
//! workload over plain `System` to anchor "off".
//!
//! Run: `cargo bench --bench app --bench app_system`

use std::time::{Duration, Instant};

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
    // Each timed run is paired with an untimed run in the other mode, so
    // that drift on a shared machine (other tenants, frequency changes)
    // weighs on both figures alike.
    for (name, on) in [
        ("turbowish_tagging_on", true),
        ("turbowish_tagging_off", false),
    ] {
        group.bench_function(name, |b| {
            b.iter_custom(|iters| {
                let mut timed = Duration::ZERO;
                for _ in 0..iters {
                    turbowish::alloc::set_enabled(!on);
                    workload::run(&rt);
                    turbowish::alloc::set_enabled(on);
                    let start = Instant::now();
                    workload::run(&rt);
                    timed += start.elapsed();
                }
                turbowish::alloc::set_enabled(true);
                timed
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench_app);
criterion_main!(benches);
