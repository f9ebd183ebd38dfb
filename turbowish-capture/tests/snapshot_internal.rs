//! Taking a snapshot charges its allocations to `internal`: the calling
//! task's counters, and those of `main` when the signal thread takes one,
//! do not move.

use std::time::Duration;

use turbowish_alloc::{Owner, TaskTag, TurboWish};

#[global_allocator]
static ALLOC: TurboWish = TurboWish::system();

fn owner_blocks(owner: Owner) -> u64 {
    turbowish_alloc::stats().counters(owner).total_blocks
}

// One test: the counts of `main` must not be moved by another test thread.
#[test]
fn snapshots_are_charged_to_internal() {
    let dir = std::env::temp_dir().join(format!("turbowish-internal-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();

    // Called from inside a task: the task's counters stay as they were,
    // while `internal` grows by what the snapshot allocated.
    let tag = TaskTag::new();
    let entered = turbowish_alloc::context::enter(&tag);
    let kept = vec![1u8; 1000];
    let before = tag.counters();
    let internal_before = owner_blocks(Owner::Internal);
    let snapshot = turbowish_capture::snapshot();
    let path = turbowish_capture::snapshot_to_dir(&dir).unwrap();
    assert_eq!(tag.counters(), before);
    assert!(owner_blocks(Owner::Internal) > internal_before);
    // The task's row in both snapshots is its counters as they were.
    let loaded = turbowish_snapshot::Snapshot::load(&path).unwrap();
    for taken in [&snapshot, &loaded] {
        let row = taken.tasks.iter().find(|t| t.id == tag.id()).unwrap();
        assert_eq!(
            (row.memory.live_bytes, row.memory.total_blocks),
            (before.live_bytes, before.total_blocks)
        );
    }

    // Taken by the signal thread: `main` (where a plain thread's
    // allocations go) does not move either. This thread stays in its task
    // meanwhile (waiting allocates the returned path there), so nothing
    // else here allocates as `main`.
    let trigger = turbowish_capture::SignalConfig::new()
        .dir(&dir)
        .install()
        .unwrap();
    let main_before = owner_blocks(Owner::Main);
    let written = trigger.snapshots_written();
    // SAFETY: the trigger handles SIGUSR1.
    assert_eq!(unsafe { libc::raise(libc::SIGUSR1) }, 0);
    let file = trigger
        .wait_for_snapshot(written, Duration::from_secs(30))
        .unwrap();
    assert!(trigger.wait_idle(Duration::from_secs(30)));
    assert_eq!(owner_blocks(Owner::Main), main_before);
    assert!(file.exists());

    drop(kept);
    drop(entered);
    std::fs::remove_dir_all(&dir).unwrap();
}
