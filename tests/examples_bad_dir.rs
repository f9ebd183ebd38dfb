//! Examples are what users copy, so they show the error handling: a
//! `TURBOWISH_DIR` that is missing or is a file gets one line on standard
//! error and exit status 1, never a panic.

mod support;

use std::process::Command;

use support::example_binary;

#[test]
fn a_bad_snapshot_directory_is_one_line_and_exit_1() {
    let scratch = tempfile::tempdir().unwrap();
    let missing = scratch.path().join("not-there");
    let file = scratch.path().join("a-file");
    std::fs::write(&file, b"").unwrap();
    // deadlock --hang waits for signals forever once set up; here it stops
    // at the trigger's install.
    let cases: [(&str, &[&str]); 5] = [
        ("quickstart", &[]),
        ("deadlock", &[]),
        ("deadlock", &["--hang"]),
        ("held_guard", &[]),
        ("signal", &[]),
    ];
    for dir in [&file, &missing] {
        // leaky_service makes its directory when it is missing (it defaults
        // to a fresh one); a file in the way is an error for it too.
        let leaky = (dir == &file).then_some(("leaky_service", &[][..]));
        for (example, args) in cases.iter().chain(leaky.iter()) {
            let out = Command::new(example_binary(example))
                .args(*args)
                .env("TURBOWISH_DIR", dir)
                .output()
                .unwrap();
            let stderr = String::from_utf8_lossy(&out.stderr);
            let what = format!("{example} {args:?} with {}", dir.display());
            assert_eq!(out.status.code(), Some(1), "{what}: {stderr}");
            assert_eq!(stderr.lines().count(), 1, "{what}: {stderr}");
            assert!(
                stderr.starts_with(&format!("{example}: ")),
                "{what}: {stderr}"
            );
            assert!(stderr.contains(&*dir.to_string_lossy()), "{what}: {stderr}");
            assert!(!stderr.contains("panicked"), "{what}: {stderr}");
        }
    }
}
