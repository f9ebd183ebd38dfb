//! The `leaky_service` example finds its own leak: it exits 0 only when the
//! diff of its two snapshots names `session-cache` growing in
//! `remember_session`, and it leaves both snapshots for the CLI.
//!
//! Runs `target/<profile>/examples/leaky_service`, which
//! `support::example_binary` first brings up to date.

mod support;

use std::path::Path;
use std::process::Command;

use turbowish::snapshot::Snapshot;

use support::example_binary;

#[test]
fn leaky_service_names_the_leaking_task_and_function() {
    let dir = std::env::temp_dir().join(format!("turbowish-leaky-test-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();

    let out = Command::new(example_binary("leaky_service"))
        .env("TURBOWISH_DIR", &dir)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let verdict = stdout
        .lines()
        .find(|l| l.starts_with("verdict: "))
        .expect("a verdict line");
    assert!(
        verdict.starts_with("verdict: task \"session-cache\" grew most"),
        "{verdict}"
    );
    assert!(
        verdict.ends_with("leaky_service::remember_session"),
        "{verdict}"
    );
    assert!(stdout.contains("growth by task:"), "{stdout}");

    // The command it prints names the two snapshots it wrote, in order.
    let command = stdout
        .lines()
        .find_map(|l| l.strip_prefix("the same from the command line: turbowish diff "))
        .expect("the CLI command");
    let paths: Vec<&Path> = command.split(' ').map(Path::new).collect();
    assert_eq!(paths.len(), 2, "{command}");
    let old = Snapshot::load(paths[0]).unwrap();
    let new = Snapshot::load(paths[1]).unwrap();
    assert!(paths.iter().all(|p| p.starts_with(&dir)));
    assert_eq!(old.process.pid, new.process.pid);
    assert!(old.taken_at_ms <= new.taken_at_ms);
    let live = |snap: &Snapshot| -> u64 {
        snap.tasks
            .iter()
            .filter(|t| t.name == "session-cache")
            .map(|t| t.memory.live_bytes)
            .sum()
    };
    // 2000 more sessions of 4 KiB each, at the least.
    assert!(live(&new) >= live(&old) + 2000 * 4096, "{stdout}");

    std::fs::remove_dir_all(&dir).unwrap();
}
