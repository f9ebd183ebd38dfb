//! Each example keeps a snapshot when `TURBOWISH_DIR` is set, and every
//! `turbowish` command runs on it: the figures match the snapshot, the SVG
//! is valid, the pprof profile decodes (`check_all_commands`), and each
//! example's own story shows (its task names, its chain, its cycle, its
//! leak).
//!
//! Runs `target/<profile>/examples/*` and `target/<profile>/turbowish`,
//! which `support::example_binary` first brings up to date.

#[path = "../turbowish-report/tests/cli_support/mod.rs"]
mod cli_support;
mod support;

use std::path::PathBuf;
use std::process::Command;

use cli_support::{check_all_commands, check_html, run, run_ok, text};
use support::example_binary;

#[test]
fn quickstart_snapshot_names_every_task_with_its_memory() {
    let (_dir, path) = example_snapshot("quickstart");
    check_all_commands(&path);
    let p = path.to_str().unwrap();
    let report = text(&run_ok(&["report", p]).stdout);
    for name in ["cache", "buffer-pool", "request-handler", "leaky-logger"] {
        assert!(
            report.lines().any(|l| l.starts_with(&format!("{name} "))),
            "no row {name}:\n{report}"
        );
    }
    // The cache holds its 1536 entries of 4 KiB, the pool its 32 buffers of
    // 64 KiB, when the snapshot is taken.
    let json: serde_json::Value =
        serde_json::from_slice(&run_ok(&["report", p, "--json"]).stdout).unwrap();
    let live = |name: &str| -> u64 {
        let rows = json["rows"].as_array().unwrap();
        let row = rows.iter().find(|r| r["name"] == name).expect(name);
        row["memory"]["live_bytes"].as_u64().unwrap()
    };
    assert!(live("cache") >= 1536 * 4096, "{report}");
    assert!(live("buffer-pool") >= 32 * 64 * 1024, "{report}");
}

#[test]
fn held_guard_snapshot_chains_name_the_holder_and_its_frame() {
    let (_dir, path) = example_snapshot("held_guard");
    check_all_commands(&path);
    let out = run(&["chains", path.to_str().unwrap()], b"");
    let chains = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{chains}");
    assert!(
        chains.starts_with("0 deadlocks, 8 wait chains\n"),
        "{chains}"
    );
    // Each queued request's chain names the holder and the future it is
    // parked in.
    let summaries: Vec<&str> = chains.lines().filter(|l| l.starts_with("chain ")).collect();
    assert_eq!(summaries.len(), 8, "{chains}");
    for line in summaries {
        assert!(line.contains("held by task \"config-reload\""), "{line}");
        assert!(line.contains("fetch_remote"), "{line}");
    }
}

#[test]
fn deadlock_snapshot_shows_the_channel_cycle_from_ownership() {
    // The last snapshot: the chess story, whose senders no task used
    // before waiting.
    let (_dir, path) = example_snapshot("deadlock");
    check_all_commands(&path);
    let out = run(&["chains", path.to_str().unwrap()], b"");
    let chains = text(&out.stdout);
    assert_eq!(out.status.code(), Some(3), "{chains}");
    assert!(chains.starts_with("1 deadlock"), "{chains}");
    let deadlock = chains
        .lines()
        .find(|l| l.starts_with("deadlock: "))
        .unwrap();
    for name in [
        "\"ui\"",
        "\"validator\"",
        "\"player move\"",
        "\"board update\"",
    ] {
        assert!(deadlock.contains(name), "no {name}:\n{chains}");
    }
    assert!(!deadlock.contains("clock"), "{chains}");
    assert!(chains.contains("(send, owns)"), "{chains}");
    // The page: the channel cycle red, named in the banner.
    if let Some(dom) = check_html(&path, "example-channel-cycle") {
        assert!(dom.contains("class=\"banner deadlock\""));
        assert!(dom.contains("<g class=\"node resource cycle\""));
    }
}

#[test]
fn deadlock_example_pages_show_the_lock_cycle() {
    // The first snapshot: two transfers locking two accounts in opposite
    // orders.
    let (dir, _) = example_snapshot("deadlock");
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    let first = files.first().expect("a snapshot");
    let snap = turbowish::snapshot::Snapshot::load(first).unwrap();
    assert!(
        snap.resources
            .iter()
            .any(|r| r.kind == turbowish::snapshot::schema::ResourceKind::Mutex),
        "{}",
        first.display()
    );
    assert!(!snap.cycles.is_empty());
    if let Some(dom) = check_html(first, "example-lock-deadlock") {
        assert!(dom.contains("class=\"edge holds cycle\""));
    }
}

#[test]
fn db_pool_snapshot_shows_the_exhaustion_cycle_by_the_pools_own_kind() {
    let (_dir, path) = example_snapshot("db_pool");
    check_all_commands(&path);
    let out = run(&["chains", path.to_str().unwrap()], b"");
    let chains = text(&out.stdout);
    assert_eq!(out.status.code(), Some(3), "{chains}");
    assert!(chains.starts_with("1 deadlock"), "{chains}");
    let deadlock = chains
        .lines()
        .find(|l| l.starts_with("deadlock: "))
        .unwrap();
    for needle in [
        "\"import-a\"",
        "\"import-b\"",
        "holds pool \"db-batch\"",
        "waits for pool \"db-batch\"",
    ] {
        assert!(deadlock.contains(needle), "no {needle}:\n{chains}");
    }
    // Both connections, each held by an import waiting in its lookup.
    assert_eq!(
        chains
            .matches("(1 permit, recorded)\n         at examples/db_pool.rs:")
            .count(),
        4,
        "{chains}"
    );
    let snap = turbowish::snapshot::Snapshot::load(&path).unwrap();
    let pool = snap
        .resources
        .iter()
        .find(|r| r.name == "db-batch")
        .expect("the pool");
    assert_eq!(
        pool.kind,
        turbowish::snapshot::schema::ResourceKind::Declared("pool".to_owned())
    );
    assert_eq!(pool.permits, Some(2));
}

#[test]
fn signal_snapshot_passes_every_command() {
    let (_dir, path) = example_snapshot("signal");
    check_all_commands(&path);
    let report = text(&run_ok(&["report", path.to_str().unwrap()]).stdout);
    for name in ["cache", "session-1", "session-2"] {
        assert!(
            report.lines().any(|l| l.starts_with(&format!("{name} "))),
            "no row {name}:\n{report}"
        );
    }
}

#[test]
fn leaky_service_snapshot_has_the_leak_on_top() {
    let (_dir, path) = example_snapshot("leaky_service");
    check_all_commands(&path);
    let report = text(&run_ok(&["report", path.to_str().unwrap()]).stdout);
    let first_row = report.lines().nth(1).unwrap_or_default();
    assert!(first_row.starts_with("session-cache "), "{report}");
    check_html(&path, "example-leak");
    // Against the first snapshot: the leak grows most.
    let base = leaky_base(&path);
    let page = text(
        &run_ok(&[
            "html",
            path.to_str().unwrap(),
            "--base",
            base.to_str().unwrap(),
            "-o",
            "-",
        ])
        .stdout,
    );
    let at = page
        .find("<table id=\"diff-tasks\"")
        .expect("a growth table");
    let first = page[at..]
        .lines()
        .find(|l| l.starts_with("<tr data-name="))
        .unwrap();
    assert!(
        first.starts_with("<tr data-name=\"session-cache\""),
        "{first}"
    );
}

/// The snapshot before `later` in its directory: leaky_service's first.
fn leaky_base(later: &std::path::Path) -> PathBuf {
    let mut files: Vec<PathBuf> = std::fs::read_dir(later.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json") && p != later)
        .collect();
    files.sort();
    files.pop().expect("an earlier snapshot")
}

/// Runs the example with `TURBOWISH_DIR` set to a fresh directory and
/// returns the directory (deleted on drop) and the last snapshot the
/// example names: a `snapshot: <path>` line, or the second file of
/// leaky_service's `turbowish diff <old> <new>` line.
fn example_snapshot(name: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(example_binary(name))
        .env("TURBOWISH_DIR", dir.path())
        .output()
        .unwrap();
    let stdout = text(&out.stdout);
    assert!(
        out.status.success(),
        "{name} failed:\n{stdout}\n{}",
        text(&out.stderr)
    );
    let path = stdout
        .lines()
        .rev()
        .find_map(|l| {
            l.strip_prefix("snapshot: ").or_else(|| {
                l.strip_prefix("the same from the command line: turbowish diff ")
                    .and_then(|files| files.rsplit(' ').next())
            })
        })
        .unwrap_or_else(|| panic!("{name} names no snapshot:\n{stdout}"));
    let path = PathBuf::from(path);
    assert!(path.starts_with(dir.path()), "{}", path.display());
    (dir, path)
}
