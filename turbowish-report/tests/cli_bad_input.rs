//! Every command on every kind of bad input: one line on stderr,
//! `turbowish: <file>: <problem>`, exit status 2, never a panic.

mod cli_support;

use std::path::Path;

use cli_support::{assert_one_line_error, fixture, run};

/// Runs every command that reads one snapshot on `path` (with `stdin`) and
/// returns the error lines, checking each has the one-line shape.
fn every_command(path: &str, stdin: &[u8], what: &str) -> Vec<String> {
    let good = fixture("service.json");
    let good = good.to_str().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let out = out.to_str().unwrap();
    let commands: Vec<Vec<&str>> = vec![
        vec!["report", path],
        vec!["report", path, "--json"],
        vec!["report", path, "--task", "x"],
        vec!["chains", path],
        vec!["chains", path, "--dot", out],
        vec!["flamegraph", path, "-o", out],
        vec!["flamegraph", path, "-o", out, "--folded"],
        vec!["diff", path, good],
        vec!["diff", good, path],
        vec!["export", "--format", "pprof", path, "-o", out],
        vec!["html", path, "-o", out],
        vec!["html", good, "--base", path, "-o", out],
    ];
    let errors = commands
        .iter()
        .map(|args| assert_one_line_error(&run(args, stdin), &format!("{what}: {args:?}")))
        .collect();
    // No output file appears for a failed command.
    assert!(!Path::new(out).exists(), "{what}");
    errors
}

#[test]
fn missing_file() {
    for e in every_command("/no/such/snapshot.json", b"", "missing") {
        assert!(
            e.starts_with("turbowish: /no/such/snapshot.json: cannot read: No such file"),
            "{e}"
        );
    }
}

#[test]
fn directory() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().to_str().unwrap();
    for e in every_command(p, b"", "directory") {
        assert_eq!(e, format!("turbowish: {p}: not a regular file\n"));
    }
}

#[test]
fn truncated_file() {
    let dir = tempfile::tempdir().unwrap();
    let bytes = std::fs::read(fixture("service.json")).unwrap();
    let path = dir.path().join("cut.json");
    std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
    let p = path.to_str().unwrap();
    for e in every_command(p, b"", "truncated") {
        assert!(e.starts_with(&format!("turbowish: {p}:")), "{e}");
        assert!(e.contains("the file ends early (truncated?)"), "{e}");
    }
}

#[test]
fn invalid_json_names_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.json");
    std::fs::write(&path, "{\n  \"format_version\": 1,\n  oops\n}\n").unwrap();
    let p = path.to_str().unwrap();
    for e in every_command(p, b"", "invalid JSON") {
        assert!(
            e.starts_with(&format!("turbowish: {p}:3:3: not a valid snapshot")),
            "{e}"
        );
    }
}

#[test]
fn wrong_shape_names_the_field() {
    let dir = tempfile::tempdir().unwrap();
    let mut value: serde_json::Value =
        serde_json::from_slice(&std::fs::read(fixture("service.json")).unwrap()).unwrap();
    value["tasks"][2]["memory"]["live_bytes"] = serde_json::json!("lots");
    let path = dir.path().join("shape.json");
    std::fs::write(&path, value.to_string()).unwrap();
    let p = path.to_str().unwrap();
    for e in every_command(p, b"", "wrong shape") {
        assert!(
            e.starts_with(&format!(
                "turbowish: {p}: not a TurboWish snapshot: field `tasks[2].memory.live_bytes`"
            )),
            "{e}"
        );
    }
    // Valid JSON that is not an object at all.
    std::fs::write(&path, "\"a string\"").unwrap();
    for e in every_command(p, b"", "array") {
        assert!(e.contains("expected a JSON object"), "{e}");
    }
}

#[test]
fn unknown_format_version() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("future.json");
    std::fs::write(&path, "{\"format_version\": 7, \"from\": \"the future\"}").unwrap();
    let p = path.to_str().unwrap();
    for e in every_command(p, b"", "version") {
        assert!(
            e.starts_with(&format!(
                "turbowish: {p}: snapshot format_version 7 is not supported"
            )),
            "{e}"
        );
    }
}

#[test]
fn oversized_file_is_refused_without_reading_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("huge.json");
    // Sparse: takes no disk, and the size check comes before any read.
    let file = std::fs::File::create(&path).unwrap();
    file.set_len(1 << 30).unwrap();
    let p = path.to_str().unwrap();
    for e in every_command(p, b"", "1 GiB") {
        assert!(
            e.starts_with(&format!("turbowish: {p}: 1073741824 bytes is too large")),
            "{e}"
        );
    }
}

#[test]
fn bad_stdin() {
    for e in every_command("-", b"not json", "stdin") {
        assert!(e.starts_with("turbowish: -:1:"), "{e}");
        assert!(e.contains("not a valid snapshot"), "{e}");
    }
    for e in every_command("-", b"", "empty stdin") {
        assert!(e.starts_with("turbowish: -:"), "{e}");
    }
}

#[test]
fn usage_errors_exit_2() {
    // No command at all: the help, as an error.
    let out = run(&[], b"");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("Usage: turbowish <COMMAND>"));
    for args in [
        vec!["report"],
        vec!["report", "a", "--sort", "size"],
        vec!["report", "a", "--top", "many"],
        vec!["report", "a", "--top", "0"],
        vec!["flamegraph", "a"],
        vec!["export", "--format", "svg", "a", "-o", "b"],
        vec!["html", "a"],
        vec!["html", "a", "-o", "b", "--force"],
        vec!["frobnicate"],
    ] {
        let e = assert_one_line_error(&run(&args, b""), &format!("{args:?}"));
        assert!(!e.contains("For more information"), "{e}");
    }
}

/// A FIFO with no writer is an empty snapshot, not a hang; a pipe with a
/// writer (as `<(cat snapshot.json)` gives) is read like standard input.
#[cfg(unix)]
#[test]
fn fifos_are_read_not_waited_on() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("fifo");
    let name = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: a NUL-terminated path and a mode.
    assert_eq!(unsafe { libc::mkfifo(name.as_ptr(), 0o600) }, 0);
    let p = fifo.to_str().unwrap();
    let e = assert_one_line_error(&run(&["report", p], b""), "fifo without writer");
    assert!(e.contains("the file is empty"), "{e}");

    // A pipe, as bash's process substitution hands one over (`/dev/fd/N`).
    let command = format!(
        "'{}' report <(cat '{}')",
        cli_support::turbowish_binary().display(),
        fixture("service.json").display()
    );
    let out = std::process::Command::new("bash")
        .args(["-c", &command])
        .output()
        .expect("bash runs");
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("TASK"));
}

/// Output paths naming a symbolic link or a FIFO are refused, not
/// replaced by a regular file.
#[cfg(unix)]
#[test]
fn special_output_paths_are_refused() {
    let good = fixture("service.json");
    let good = good.to_str().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let link = dir.path().join("link.svg");
    std::os::unix::fs::symlink(dir.path().join("elsewhere.svg"), &link).unwrap();
    let fifo = dir.path().join("fifo");
    let name = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: a NUL-terminated path and a mode.
    assert_eq!(unsafe { libc::mkfifo(name.as_ptr(), 0o600) }, 0);
    for (target, problem) in [(&link, "is a symbolic link"), (&fifo, "not a regular file")] {
        let t = target.to_str().unwrap();
        for args in [
            vec!["flamegraph", good, "-o", t],
            vec!["chains", good, "--dot", t],
            vec!["export", "--format", "pprof", good, "-o", t],
            vec!["html", good, "-o", t],
        ] {
            let out = run(&args, b"");
            assert_eq!(out.status.code(), Some(1), "{args:?}");
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert_eq!(stderr.lines().count(), 1, "{args:?}: {stderr}");
            assert!(
                stderr.starts_with(&format!("turbowish: {t}: cannot write: {problem}")),
                "{stderr}"
            );
        }
    }
    assert!(std::fs::symlink_metadata(&link)
        .unwrap()
        .file_type()
        .is_symlink());
    assert!(!dir.path().join("elsewhere.svg").exists());
}

/// Names are data: a very long one does not break the table (the
/// formatter refuses column widths from 65,536 on), and control characters
/// reach neither the terminal nor the SVG.
#[test]
fn long_names_and_control_characters_are_harmless() {
    let mut snap: serde_json::Value =
        serde_json::from_slice(&std::fs::read(fixture("service.json")).unwrap()).unwrap();
    let long = format!("{}\u{1b}[31m\u{1}", "x".repeat(70_000));
    snap["tasks"][0]["name"] = serde_json::Value::String(long);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("long.json");
    std::fs::write(&path, serde_json::to_vec(&snap).unwrap()).unwrap();
    let p = path.to_str().unwrap();
    let good = fixture("service.json");
    let good = good.to_str().unwrap();
    for args in [
        vec!["report", p],
        vec!["report", p, "--sort", "name"],
        vec!["diff", good, p],
        vec!["diff", p, good],
    ] {
        let out = run(&args, b"");
        assert!(
            matches!(out.status.code(), Some(0 | 3)),
            "{args:?}: {out:?}"
        );
        assert!(
            !out.stdout.iter().any(|&b| b == 0x1b || b == 0x01),
            "{args:?}"
        );
    }
    // The page: the name escaped, no control byte.
    let out = run(&["html", p, "-o", "-"], b"");
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(!out.stdout.iter().any(|&b| b == 0x1b || b == 0x01));
    assert!(String::from_utf8_lossy(&out.stdout).contains("\\u{1b}[31m\\u{1}"));
    let svg = dir.path().join("out.svg");
    let out = run(
        &[
            "flamegraph",
            p,
            "-o",
            svg.to_str().unwrap(),
            "--title",
            "a\u{1}b",
        ],
        b"",
    );
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let text = std::fs::read(&svg).unwrap();
    assert!(!text
        .iter()
        .any(|&b| b < 0x20 && b != b'\n' && b != b'\t' && b != b'\r'));
}

/// An output path naming the snapshot being read is refused: the
/// snapshot stays as it was.
#[test]
fn output_over_the_input_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("snap.json");
    std::fs::copy(fixture("service.json"), &path).unwrap();
    let before = std::fs::read(&path).unwrap();
    let p = path.to_str().unwrap();
    for args in [
        vec!["flamegraph", p, "-o", p],
        vec!["chains", p, "--dot", p],
        vec!["export", "--format", "pprof", p, "-o", p],
        vec!["html", p, "-o", p],
    ] {
        let e = assert_one_line_error(&run(&args, b""), &format!("{args:?}"));
        assert_eq!(
            e,
            format!("turbowish: {p}: cannot write: it is the snapshot being read\n")
        );
    }
    assert_eq!(std::fs::read(&path).unwrap(), before);
}
