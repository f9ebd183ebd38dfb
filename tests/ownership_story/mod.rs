//! The channel story of the ownership issue, shared by the counting-mode
//! and heap-walk-mode test files (one global allocator each): two channels
//! created outside any task, each sender moved into one task and each
//! receiver into the other, neither sender used before its task waits; and
//! a third task, waiting on a timer, outside the cycle.

use std::path::Path;
use std::time::Duration;

use turbowish::snapshot::schema::{HandleKind, Provenance, Snapshot};
use turbowish::trace::sync::mpsc;
use turbowish::trace::TracedExt;

/// Runs the story on a runtime that is kept (the tasks stay hung) and
/// returns it with the snapshot taken while they wait.
pub(crate) fn hung_story() -> (tokio::runtime::Runtime, Snapshot) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    // Created here, outside any task: the recorded holder of every end is
    // this thread until a task uses it.
    let (move_tx, mut move_rx) = mpsc::channel_named::<String>("player move", 4);
    let (board_tx, mut board_rx) = mpsc::channel_named::<String>("board update", 4);
    runtime.block_on(async move {
        turbowish::trace::spawn("ui", async move {
            // Waits for the board before ever sending a move.
            let board = async { board_rx.recv().await }.traced("await_board").await;
            move_tx.send(format!("e2e4 after {board:?}")).await.unwrap();
        });
        turbowish::trace::spawn("validator", async move {
            while let Some(mv) = async { move_rx.recv().await }.traced("await_move").await {
                board_tx.send(format!("board after {mv}")).await.unwrap();
            }
        });
        turbowish::trace::spawn("clock", async {
            tokio::time::sleep(Duration::from_secs(3600)).await;
        });
        tokio::time::sleep(Duration::from_millis(300)).await;
    });
    let snapshot = turbowish::capture::snapshot();
    (runtime, snapshot)
}

/// What the story's snapshot must say, in the snapshot and through the
/// `turbowish chains` binary.
pub(crate) fn check(snap: &Snapshot, dir: &Path) {
    // Ownership in the snapshot: each channel's sender is owned by the
    // task whose future holds it, found in its state.
    for (channel, owner) in [("player move", "ui"), ("board update", "validator")] {
        let r = snap
            .resources
            .iter()
            .find(|r| r.name == channel)
            .unwrap_or_else(|| panic!("no channel {channel}: {:?}", snap.resources));
        let sender = r
            .owners
            .iter()
            .find(|o| o.handle == HandleKind::Sender)
            .unwrap_or_else(|| panic!("no sender owner of {channel}: {:?}", r.owners));
        assert_eq!(sender.name, owner, "{channel}: {:?}", r.owners);
        let holder = r
            .holders
            .iter()
            .find(|h| h.task_name == owner)
            .unwrap_or_else(|| panic!("{owner} does not hold {channel}: {:?}", r.holders));
        assert!(
            matches!(&holder.provenance, Provenance::Owns { path } if !path.is_empty()),
            "{holder:?}"
        );
    }
    // Other tests of the same file may have cycles of their own.
    let cycle = &snap
        .cycles
        .iter()
        .find(|c| c.text.contains("\"player move\""))
        .unwrap_or_else(|| panic!("no cycle through the channels: {:#?}", snap.chains))
        .text;
    for name in [
        "\"ui\"",
        "\"validator\"",
        "\"player move\"",
        "\"board update\"",
    ] {
        assert!(cycle.contains(name), "{name} missing: {cycle}");
    }
    assert!(!cycle.contains("clock"), "{cycle}");

    let path = dir.join("story.json");
    std::fs::write(&path, serde_json::to_vec(snap).unwrap()).unwrap();
    let out = std::process::Command::new(crate::cli_support::turbowish_binary())
        .arg("chains")
        .arg(&path)
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert_eq!(
        out.status.code(),
        Some(3),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let deadlock = text
        .lines()
        .find(|l| l.starts_with("deadlock: ") && l.contains("\"player move\""))
        .unwrap_or_else(|| panic!("no deadlock line:\n{text}"));
    for name in [
        "\"ui\"",
        "\"validator\"",
        "\"player move\"",
        "\"board update\"",
    ] {
        assert!(deadlock.contains(name), "{name} missing: {deadlock}");
    }
    assert!(!deadlock.contains("clock"), "{deadlock}");
    assert!(text.contains("(send, owns)"), "{text}");
}
