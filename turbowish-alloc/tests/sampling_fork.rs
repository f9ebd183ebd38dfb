//! Sampling and `fork()`: the child has only the forking thread, so a
//! sample-table lock that another thread held at the fork would never be
//! released in it. The table's fork handlers take every lock before the
//! fork and release them on both sides after it.
//!
//! Two threads sample every allocation (interval 1) and free sampled blocks
//! without pause while the main thread forks again and again; each child
//! allocates and frees sampled blocks, frees sampled blocks it inherited and
//! reads the table, then exits 0. Without the handlers a child hangs within
//! a few dozen forks (it is then killed by `SIGALRM` and the test fails).

use std::hint::black_box;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use turbowish_alloc::{context, samples, Owner, TaskTag, TurboWish};

mod common;
use common::fork_between;

#[global_allocator]
static A: TurboWish = TurboWish::system().sample_interval(1);

const FORKS: usize = 200;

#[test]
fn a_child_forked_while_others_sample_can_sample_and_free() {
    let inherited_tag = TaskTag::new();
    // The list itself is not the tag's: only the 500 blocks are.
    let mut inherited: Vec<Vec<u8>> = Vec::with_capacity(500);
    {
        let _entered = context::enter(&inherited_tag);
        inherited.extend((0..500).map(|i| vec![i as u8; 8 + i % 300]));
    }

    let stop = Arc::new(AtomicBool::new(false));
    let rounds = Arc::new(AtomicU64::new(0));
    let samplers: Vec<_> = (0..2)
        .map(|seed| {
            let (stop, rounds) = (Arc::clone(&stop), Arc::clone(&rounds));
            std::thread::spawn(move || sample_hard(seed, &stop, &rounds))
        })
        .collect();

    // The samplers run 50 rounds between forks.
    let failures = fork_between(FORKS, &rounds, 50, || child(&mut inherited, &inherited_tag));
    stop.store(true, Ordering::Relaxed);
    for sampler in samplers {
        sampler.join().unwrap();
    }
    assert!(failures.is_empty(), "{failures:#?}");

    // The parent's table is intact: every inherited block is still sampled.
    let owner = Owner::Task(inherited_tag.id());
    let sampled = samples().iter().filter(|s| s.owner == owner).count();
    assert_eq!(sampled, inherited.len());
}

/// Allocates, grows and frees sampled blocks until told to stop.
fn sample_hard(seed: u64, stop: &AtomicBool, rounds: &AtomicU64) {
    let tag = TaskTag::new();
    let _entered = context::enter(&tag);
    let mut ring: Vec<Vec<u8>> = (0..32).map(|_| Vec::new()).collect();
    let mut i = seed as usize;
    while !stop.load(Ordering::Relaxed) {
        let slot = &mut ring[i % 32];
        if i.is_multiple_of(3) {
            slot.resize(i % 3000 + 1, i as u8);
        } else {
            *slot = vec![i as u8; (i * 7919) % 5000 + 1];
        }
        if i.is_multiple_of(1000) {
            black_box(samples());
        }
        i += 1;
        rounds.fetch_add(1, Ordering::Relaxed);
    }
}

/// The child's work: samples, frees sampled blocks (its own and inherited
/// ones) and reads the table, checking what it finds.
fn child(inherited: &mut Vec<Vec<u8>>, inherited_tag: &TaskTag) {
    let tag = TaskTag::new();
    let owner = Owner::Task(tag.id());
    let mine: Vec<Vec<u8>> = {
        let _entered = context::enter(&tag);
        (0..1000).map(|i| vec![1u8; i % 200 + 1]).collect()
    };
    let table = samples();
    for block in &mine {
        let address = block.as_ptr() as usize;
        let found = table.iter().find(|s| s.address == address);
        assert!(
            found.is_some_and(|s| s.owner == owner && s.size == block.len()),
            "the child's block at {address:#x} is not sampled as its own"
        );
    }
    drop(mine);
    drop(std::mem::take(inherited));
    let inherited_owner = Owner::Task(inherited_tag.id());
    let left: Vec<_> = samples()
        .into_iter()
        .filter(|s| s.owner == owner || s.owner == inherited_owner)
        .collect();
    assert!(left.is_empty(), "freed blocks still sampled: {left:?}");
}
