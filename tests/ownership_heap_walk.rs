//! Chains from ownership in heap-walk mode: the walk finds handles anywhere
//! a task reaches alone, on top of the scan of its root cell.

#[path = "../turbowish-report/tests/cli_support/mod.rs"]
mod cli_support;
mod ownership_story;

#[global_allocator]
static A: turbowish::TurboWish = turbowish::TurboWish::system().heap_walk();

#[test]
fn a_channel_cycle_is_found_from_the_senders_the_tasks_own() {
    let (runtime, snap) = ownership_story::hung_story();
    assert!(snap.walk.is_some(), "heap-walk mode walks");
    let dir = tempfile::tempdir().unwrap();
    ownership_story::check(&snap, dir.path());
    runtime.shutdown_background();
}
