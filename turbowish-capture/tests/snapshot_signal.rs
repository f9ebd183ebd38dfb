//! The `SIGUSR1` trigger in this process: one file per signal, never through
//! a symlink, errors reported without stopping the thread, idempotent
//! install. One test: the trigger is process-wide.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use turbowish_capture::{SignalConfig, SignalHandle, SnapshotError};
use turbowish_snapshot::atomic_write::WriteError;
use turbowish_snapshot::Snapshot;

const WAIT: Duration = Duration::from_secs(30);

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("turbowish-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn raise() {
    // SAFETY: the trigger handles SIGUSR1 in this process.
    assert_eq!(unsafe { libc::raise(libc::SIGUSR1) }, 0);
}

/// Raises SIGUSR1 and returns the file it produced.
fn signal_and_wait(trigger: &SignalHandle) -> PathBuf {
    let before = trigger.snapshots_written();
    raise();
    trigger
        .wait_for_snapshot(before, WAIT)
        .expect("a snapshot file")
}

fn seq(path: &Path) -> u64 {
    let name = path.file_name().unwrap().to_str().unwrap();
    let prefix = format!("turbowish-{}-", std::process::id());
    name.strip_prefix(&prefix)
        .and_then(|rest| rest.strip_suffix(".json"))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("unexpected file name {name}"))
}

#[test]
fn sigusr1_writes_one_file_per_signal() {
    let dir = temp_dir("signal");
    let other = temp_dir("signal-other");

    let err = SignalConfig::new()
        .dir(dir.join("missing"))
        .install()
        .unwrap_err();
    assert!(
        matches!(err, SnapshotError::File(WriteError::Dir { .. })),
        "{err:?}"
    );

    // Installing: explicitly, then again by TURBOWISH_DIR (same directory:
    // the same trigger), then for another directory (refused).
    let trigger = SignalConfig::new().dir(&dir).install().unwrap();
    assert_eq!(trigger.dir(), dir);
    std::env::set_var("TURBOWISH_DIR", &dir);
    let again = turbowish_capture::install_signal_handler().unwrap();
    assert_eq!(again.dir(), dir);
    std::env::set_var("TURBOWISH_DIR", &other);
    match turbowish_capture::install_signal_handler().unwrap_err() {
        SnapshotError::AlreadyInstalled { dir: installed } => assert_eq!(installed, dir),
        e => panic!("expected AlreadyInstalled, got {e:?}"),
    }

    // One signal, one file, numbered in order, private, complete.
    let mut seqs = Vec::new();
    for _ in 0..3 {
        let path = signal_and_wait(&trigger);
        assert_eq!(path.parent(), Some(dir.as_path()));
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        Snapshot::load(&path).unwrap();
        seqs.push(seq(&path));
    }
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{seqs:?}");
    assert!(trigger.wait_idle(WAIT));
    assert_eq!(trigger.snapshots_written(), 3);
    assert_eq!(trigger.signals_received(), 3);

    // Symlinks (one dangling) at the next names are skipped, not followed.
    let victim = other.join("victim");
    std::fs::write(&victim, b"untouched").unwrap();
    let next = seqs[2] + 1;
    let pid = std::process::id();
    let link_a = dir.join(format!("turbowish-{pid}-{next}.json"));
    let link_b = dir.join(format!("turbowish-{pid}-{}.json", next + 1));
    std::os::unix::fs::symlink(&victim, &link_a).unwrap();
    std::os::unix::fs::symlink(other.join("nothing"), &link_b).unwrap();
    let path = signal_and_wait(&trigger);
    assert_eq!(seq(&path), next + 2);
    assert_eq!(std::fs::read(&victim).unwrap(), b"untouched");
    assert!(!other.join("nothing").exists());
    for link in [&link_a, &link_b] {
        assert!(std::fs::symlink_metadata(link).unwrap().is_symlink());
    }

    // A failed write is counted (and reported on stderr); the thread
    // carries on once the directory is back.
    std::fs::remove_dir_all(&dir).unwrap();
    raise();
    assert!(trigger.wait_idle(WAIT));
    assert_eq!(trigger.failures(), 1);
    std::fs::create_dir_all(&dir).unwrap();
    let path = signal_and_wait(&trigger);
    Snapshot::load(&path).unwrap();
    assert_eq!(trigger.snapshots_written(), 5);

    std::fs::remove_dir_all(&dir).unwrap();
    std::fs::remove_dir_all(&other).unwrap();
}
