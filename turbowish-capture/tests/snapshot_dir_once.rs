//! The snapshot directory is resolved once, at install: renaming it or
//! putting a symlink to elsewhere at its path does not move where later
//! snapshots go (the trigger writes into the directory it opened).

use std::time::Duration;

use turbowish_alloc::TurboWish;

#[global_allocator]
static ALLOC: TurboWish = TurboWish::system();

fn json_files(dir: &std::path::Path) -> usize {
    std::fs::read_dir(dir)
        .map(|d| {
            d.filter(|e| {
                e.as_ref()
                    .is_ok_and(|e| e.path().extension().is_some_and(|x| x == "json"))
            })
            .count()
        })
        .unwrap_or(0)
}

#[test]
fn a_swapped_directory_path_does_not_redirect_snapshots() {
    let base = tempfile::tempdir().unwrap();
    let configured = base.path().join("snapshots");
    let elsewhere = base.path().join("elsewhere");
    std::fs::create_dir_all(&configured).unwrap();
    std::fs::create_dir_all(&elsewhere).unwrap();
    let trigger = turbowish_capture::SignalConfig::new()
        .dir(&configured)
        .install()
        .unwrap();

    // The path now leads elsewhere; the directory it named lives on.
    let moved = base.path().join("snapshots.moved");
    std::fs::rename(&configured, &moved).unwrap();
    std::os::unix::fs::symlink(&elsewhere, &configured).unwrap();

    let written = trigger.snapshots_written();
    // SAFETY: raising a signal whose handler the trigger installed.
    assert_eq!(unsafe { libc::raise(libc::SIGUSR1) }, 0);
    let file = trigger
        .wait_for_snapshot(written, Duration::from_secs(30))
        .expect("a snapshot");
    assert_eq!(
        json_files(&moved),
        1,
        "written into the directory opened at install"
    );
    assert_eq!(json_files(&elsewhere), 0, "not through the new symlink");
    // The path reported is under the name the directory had at install.
    assert_eq!(file.parent(), Some(configured.as_path()));
}
