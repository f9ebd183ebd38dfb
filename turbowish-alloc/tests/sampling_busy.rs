//! TurboWish's own allocations (made under its re-entrancy guard, such as
//! a heap view's list of blocks) are never sampled, and do not count down
//! the sampling countdown either: otherwise the sample they would have
//! earned moves to the thread's next allocation, whatever its size, with a
//! weight computed for that size.

use turbowish_alloc::{heap_view, samples, TurboWish};

/// Mean bytes between samples.
const INTERVAL: u64 = 64 << 10;

#[global_allocator]
static A: TurboWish = TurboWish::system().heap_walk().sample_interval(INTERVAL);

#[test]
fn internal_allocations_do_not_move_a_sample_to_the_next_allocation() {
    // Enough registered blocks that each view's list (allocated under the
    // guard) is about 100 intervals long: that surely runs the countdown
    // out, had it been counted.
    let blocks: Vec<Box<u64>> = (0..200_000).map(Box::new).collect();
    for _ in 0..4 {
        let view = heap_view().expect("heap-walk mode");
        assert!(view.blocks().len() >= blocks.len());
    }
    // The next allocation is a single byte: sampled with probability about
    // 1 / 65,536 (and the same every run: each thread's sampler is seeded
    // by its rank).
    let small = std::hint::black_box(Box::new(1u8));
    let address = &*small as *const u8 as usize;
    let sample = samples().into_iter().find(|s| s.address == address);
    assert!(
        sample.is_none(),
        "a 1-byte block got the sample of internal allocations: {sample:?}"
    );
    drop(small);
    drop(blocks);
}
