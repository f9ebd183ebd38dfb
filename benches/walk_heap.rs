// MERGE: move to benches/ (and add a [[bench]] name = "walk_heap", harness = false
// entry to the root Cargo.toml) once turbowish-alloc has heap-walk mode. Not
// compiled on the `walk` branch; measured on a local merge with `alloc`.

//! `walk()` end to end in heap-walk mode: one TurboWish task whose future
//! holds a million 64-byte boxes (scanned conservatively), with the heap
//! view built from the allocator's registry each time.
//!
//! Run: `cargo bench --bench walk_heap`

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};

#[global_allocator]
static ALLOC: turbowish::TurboWish = turbowish::TurboWish::system().heap_walk();

const BLOCKS: usize = 1_000_000;

fn bench_walk(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let _runtime = rt.enter();
    let handle = turbowish::trace::spawn("holder", async move {
        let cells: Vec<Box<[u64; 8]>> = (0..BLOCKS as u64)
            .map(|i| Box::new([i.wrapping_mul(0x9E37_79B9_7F4A_7C15); 8]))
            .collect();
        let _ = rx.await;
        cells.len()
    });
    rt.block_on(async {
        for _ in 0..3 {
            tokio::task::yield_now().await;
        }
    });
    let mut group = c.benchmark_group("walk_heap_1m_blocks");
    group.sample_size(10);
    group.throughput(Throughput::Bytes((BLOCKS * 64 + BLOCKS * 8) as u64));
    group.bench_function("walk", |b| {
        b.iter(|| {
            let report = turbowish::trace::walk::walk().expect("heap-walk mode");
            let holder = report.tasks.iter().find(|t| t.name == "holder").unwrap();
            assert!(holder.retained.blocks > BLOCKS as u64);
            black_box(report)
        })
    });
    group.finish();
    tx.send(()).unwrap();
    assert_eq!(rt.block_on(handle).unwrap(), BLOCKS);
}

criterion_group!(benches, bench_walk);
criterion_main!(benches);
