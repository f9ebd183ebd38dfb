#![doc = include_str!("../README.md")]

pub use turbowish_alloc as alloc;
pub use turbowish_capture as capture;
pub use turbowish_snapshot as snapshot;
pub use turbowish_trace as trace;

pub use turbowish_alloc::TurboWish;
pub use turbowish_capture::testing;
pub use turbowish_capture::{
    assert_no_leaked_tasks, assert_no_live_growth, assert_retained_at_most,
    assert_task_live_at_most,
};

/// The book's chapters, compiled as doc tests so that every Rust sample in
/// `book/` builds and runs against this workspace (mdBook's own test
/// runner cannot link the workspace's crates).
#[cfg(doctest)]
mod book {
    #[doc = include_str!("../book/src/introduction.md")]
    mod introduction {}
    #[doc = include_str!("../book/src/quick-start.md")]
    mod quick_start {}
    #[doc = include_str!("../book/src/tasks-and-frames.md")]
    mod tasks_and_frames {}
    #[doc = include_str!("../book/src/resources.md")]
    mod resources {}
    #[doc = include_str!("../book/src/own-resources.md")]
    mod own_resources {}
    #[doc = include_str!("../book/src/allocator.md")]
    mod allocator {}
    #[doc = include_str!("../book/src/snapshots.md")]
    mod snapshots {}
    #[doc = include_str!("../book/src/heap-walker.md")]
    mod heap_walker {}
    #[doc = include_str!("../book/src/testing.md")]
    mod testing {}
    #[doc = include_str!("../book/src/live.md")]
    mod live {}
}
