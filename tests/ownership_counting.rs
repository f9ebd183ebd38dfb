//! Chains from ownership in counting mode (no block registry): each task's
//! root cell is scanned for the channel ends its future holds.

#[path = "../turbowish-report/tests/cli_support/mod.rs"]
mod cli_support;
mod ownership_story;

#[global_allocator]
static A: turbowish::TurboWish = turbowish::TurboWish::system();

#[test]
fn a_channel_cycle_is_found_from_the_senders_the_tasks_own() {
    let (runtime, snap) = ownership_story::hung_story();
    assert!(snap.walk.is_none(), "counting mode has no walk");
    let dir = tempfile::tempdir().unwrap();
    ownership_story::check(&snap, dir.path());
    runtime.shutdown_background();
}
