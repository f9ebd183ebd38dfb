//! `chains()` and `cycles()` on wait-for graphs of thousands of tasks, the
//! shapes a hung service takes:
//!
//! * `line`: task 1 waits for a lock task 2 holds, which waits for one task
//!   3 holds, …, the last task running: one chain through every task.
//! * `workers`: every worker holds a sender of the job queue (a
//!   multi-consumer channel) and waits to receive from it: nobody can send,
//!   a deadlock among all of them.
//! * `fan_in`: every task waits for a lock the dispatcher holds, and the
//!   dispatcher waits to receive from a channel whose senders those tasks
//!   hold: a deadlock of the dispatcher with each of them.
//!
//! Run: `cargo bench --bench chains` (3,000 tasks; another number with
//! `TURBOWISH_BENCH_TASKS=N`). Under `cargo test` each runs once with 300.

use std::hint::black_box;
use std::panic::Location;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use turbowish::trace::chains::{chains, cycles};
use turbowish::trace::frame::FramePath;
use turbowish::trace::sync::{Access, Party, Provenance, ResourceInfo, ResourceKind, TaskRef};

fn party(task: u64, access: Access) -> Party {
    Party {
        task: TaskRef::Task(task),
        task_name: format!("worker-{task}"),
        frames: FramePath::default(),
        location: Location::caller(),
        since: Duration::from_millis(1500),
        access,
        movable: access == Access::Send || access == Access::Receive,
        parked_in: None,
        provenance: Provenance::Recorded,
        slot: None,
    }
}

fn resource(id: u64, kind: ResourceKind, holders: Vec<Party>, waiters: Vec<Party>) -> ResourceInfo {
    ResourceInfo {
        id,
        kind,
        name: format!("r{id}"),
        location: Location::caller(),
        holders,
        extra_holders: 0,
        waiters,
        permits: None,
        owners: Vec::new(),
    }
}

/// Task `i` (1..n) waits for mutex `i`, held by task `i + 1`.
fn line(n: u64) -> Vec<ResourceInfo> {
    (1..n)
        .map(|i| {
            resource(
                i,
                ResourceKind::Mutex,
                vec![party(i + 1, Access::Exclusive)],
                vec![party(i, Access::Exclusive)],
            )
        })
        .collect()
}

/// Tasks 1..=n each hold a sender of one channel and wait to receive.
fn workers(n: u64) -> Vec<ResourceInfo> {
    let kind = ResourceKind::Declared("job queue");
    vec![resource(
        1,
        kind,
        (1..=n).map(|t| party(t, Access::Send)).collect(),
        (1..=n).map(|t| party(t, Access::Receive)).collect(),
    )]
}

/// Tasks 1..=n wait for a mutex task 0 holds; task 0 waits to receive
/// from a channel whose senders tasks 1..=n hold (and whose receiver it
/// holds).
fn fan_in(n: u64) -> Vec<ResourceInfo> {
    let mut senders: Vec<Party> = (1..=n).map(|t| party(t, Access::Send)).collect();
    senders.push(party(0, Access::Receive));
    vec![
        resource(
            1,
            ResourceKind::Mutex,
            vec![party(0, Access::Exclusive)],
            (1..=n).map(|t| party(t, Access::Exclusive)).collect(),
        ),
        resource(
            2,
            ResourceKind::Declared("results"),
            senders,
            vec![party(0, Access::Receive)],
        ),
    ]
}

fn bench_chains(c: &mut Criterion) {
    let testing = !std::env::args().any(|a| a == "--bench");
    let n: u64 = std::env::var("TURBOWISH_BENCH_TASKS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if testing { 300 } else { 3000 });
    let mut group = c.benchmark_group("chains_cycles");
    group.sample_size(10);
    for (shape, graph) in [
        ("line", line(n)),
        ("workers", workers(n)),
        ("fan_in", fan_in(n)),
    ] {
        group.bench_with_input(BenchmarkId::new("chains", shape), &graph, |b, g| {
            b.iter(|| black_box(chains(g)))
        });
        group.bench_with_input(BenchmarkId::new("cycles", shape), &graph, |b, g| {
            b.iter(|| black_box(cycles(g)))
        });
    }
    group.finish();
}

criterion_group!(benches, bench_chains);
criterion_main!(benches);
