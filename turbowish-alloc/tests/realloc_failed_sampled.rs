//! Heap-walk mode with sampling: a `realloc` that fails leaves the block
//! where it was but drops its sample (the sample is forgotten before the
//! inner realloc, which may free the old address). The view must agree:
//! the block is no longer marked sampled there either.

use std::alloc::{GlobalAlloc, Layout};

use turbowish_alloc::{heap_view, samples, TurboWish};

#[global_allocator]
static A: TurboWish = TurboWish::system().heap_walk().sample_interval(1);

#[test]
fn a_failed_realloc_clears_the_views_sampled_bit() {
    let layout = Layout::from_size_align(64, 8).unwrap();
    // SAFETY: `p` is allocated with `layout`, reallocated (which fails, so
    // it stays allocated with `layout`) and freed once.
    unsafe {
        let p = A.alloc(layout);
        assert!(!p.is_null());
        let sampled_in_view = || heap_view().unwrap().find(p as usize).unwrap().sampled;
        assert!(samples().iter().any(|s| s.address == p as usize));
        assert!(sampled_in_view());
        // More than any allocator can give: the inner realloc fails.
        let q = A.realloc(p, layout, isize::MAX as usize / 2);
        assert!(q.is_null());
        assert!(!samples().iter().any(|s| s.address == p as usize));
        assert!(!sampled_in_view());
        A.dealloc(p, layout);
    }
}
