//! The heap walker's engine (`walk_with`) over 1,000,000 live blocks, on
//! its two paths:
//!
//! * `conservative`: an opaque root cell (a `Vec` of a million pointers,
//!   standing for a task's future state) whose words point to 64-byte
//!   blocks; every block is scanned word by word. Throughput is the bytes
//!   scanned.
//! * `precise`: a named root `Vec<String>` of a million strings, traced
//!   through `Trace`.
//! * `shared_by_1000_tasks`: 1,000 opaque task cells that all point at
//!   one structure of 100,001 blocks (an `Arc`'d cache, say), each also
//!   sharing a small value with each neighbour (values that point at the
//!   structure too), so that no two point into shared memory at the same
//!   places: the cost of working out what each task retains and shares.
//!
//! The block index is built by hand from the known allocations (the
//! allocator's heap view, which `walk()` uses, lives in heap-walk mode);
//! building it is not timed.
//!
//! Run: `cargo bench --bench walk`

use std::hint::black_box;
use std::mem::size_of;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use turbowish::alloc::Owner;
use turbowish::trace::walk::{walk_with, Block, BlockIndex, WalkRoot};

const BLOCKS: usize = 1_000_000;

fn bench_walk(c: &mut Criterion) {
    let mut group = c.benchmark_group("walk_1m_blocks");
    group.sample_size(10);

    // Each 64-byte block holds integers that point nowhere (hashes).
    let cells: Vec<Box<[usize; 8]>> = (0..BLOCKS)
        .map(|i| Box::new([i.wrapping_mul(0x9E37_79B9_7F4A_7C15); 8]))
        .collect();
    let root: Vec<usize> = cells.iter().map(|c| &**c as *const _ as usize).collect();
    let mut blocks: Vec<Block> = boxed(&cells).collect();
    blocks.push(buffer(&root));
    let scanned = (BLOCKS * 64 + root.capacity() * size_of::<usize>()) as u64;
    // SAFETY: the blocks are `cells`' boxes and `root`'s buffer, alive
    // until the end of this function.
    let index = unsafe { BlockIndex::new(blocks) }.expect("disjoint blocks");
    group.throughput(Throughput::Bytes(scanned));
    group.bench_function("conservative", |b| {
        b.iter(|| {
            let report = walk_with(
                &index,
                &[WalkRoot::task_cell(1, "cells", root.as_ptr() as usize, 0)],
            );
            assert_eq!(report.tasks[0].retained.blocks, BLOCKS as u64 + 1);
            black_box(report)
        })
    });

    let strings: Vec<String> = (0..BLOCKS).map(|i| format!("string number {i}")).collect();
    let mut blocks: Vec<Block> = strings
        .iter()
        .map(|s| untracked(s.as_ptr() as usize, s.capacity()))
        .collect();
    blocks.push(buffer(&strings));
    // SAFETY: the blocks are `strings`' buffers, alive until the end.
    let index = unsafe { BlockIndex::new(blocks) }.expect("disjoint blocks");
    group.throughput(Throughput::Elements(BLOCKS as u64 + 1));
    group.bench_function("precise", |b| {
        b.iter(|| {
            let report = walk_with(&index, &[WalkRoot::named("strings", &strings)]);
            assert_eq!(report.roots[0].retained.blocks, BLOCKS as u64 + 1);
            black_box(report)
        })
    });

    // Many tasks sharing one large structure (say, an `Arc` of a cache):
    // every task's cell points at the structure's root buffer.
    const TASKS: usize = 1_000;
    const SHARED: usize = 100_000;
    let shared: Vec<Box<[usize; 8]>> = (0..SHARED).map(|i| Box::new([i; 8])).collect();
    // Besides the structure, each task shares a small value with its
    // neighbour (task i holds values i - 1 and i): no two tasks point into
    // shared memory at the same places. Each value points at the
    // structure too (a handle, say): the structure's buffer is a hub that
    // 1,000 differently shared values point to.
    let pairs: Vec<Box<[usize; 2]>> = (0..TASKS)
        .map(|i| Box::new([i, shared.as_ptr() as usize]))
        .collect();
    let task_cells: Vec<Box<[usize; 4]>> = (0..TASKS)
        .map(|i| {
            let value = |j: usize| &*pairs[j % TASKS] as *const [usize; 2] as usize;
            Box::new([shared.as_ptr() as usize, i, value(i + TASKS - 1), value(i)])
        })
        .collect();
    let mut blocks: Vec<Block> = boxed(&shared)
        .chain(boxed(&task_cells))
        .chain(boxed(&pairs))
        .collect();
    blocks.push(buffer(&shared));
    // SAFETY: the blocks are `shared`'s boxes and buffer, the task cells
    // and the pairs' values, alive until the end of this function.
    let index = unsafe { BlockIndex::new(blocks) }.expect("disjoint blocks");
    let roots: Vec<WalkRoot<'_>> = task_cells
        .iter()
        .enumerate()
        .map(|(i, c)| WalkRoot::task_cell(i as u64, "task", &**c as *const _ as usize, 0))
        .collect();
    group.throughput(Throughput::Elements(TASKS as u64));
    group.bench_function("shared_by_1000_tasks", |b| {
        b.iter(|| {
            let report = walk_with(&index, &roots);
            assert_eq!(report.tasks[0].retained.blocks, 1);
            // The structure, its buffer, and the two values it shares.
            assert_eq!(report.tasks[0].shared.blocks, SHARED as u64 + 3);
            black_box(report)
        })
    });
    group.finish();
    drop(cells);
}

/// A block allocated outside any task.
fn untracked(start: usize, size: usize) -> Block {
    Block {
        start,
        size,
        owner: Owner::Main,
    }
}

/// The blocks of `boxes`' values.
fn boxed<T>(boxes: &[Box<T>]) -> impl Iterator<Item = Block> + '_ {
    boxes
        .iter()
        .map(|b| untracked(&**b as *const T as usize, size_of::<T>()))
}

/// The block of `vec`'s buffer.
fn buffer<T>(vec: &Vec<T>) -> Block {
    untracked(vec.as_ptr() as usize, vec.capacity() * size_of::<T>())
}

criterion_group!(benches, bench_walk);
criterion_main!(benches);
