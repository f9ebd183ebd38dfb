//! Output is never lost silently and the input never destroyed: a closed
//! standard output is exit 1, `| head` is not an error, `-o` never
//! replaces the snapshot being read (standard input included), any valid
//! file name works, and a write cut short leaves nothing behind.

mod cli_support;

use std::fs::File;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use cli_support::{fixture, text, turbowish_binary};

/// Every command that writes to standard output, on a snapshot with a
/// deadlock (so `chains` would exit 3 if it succeeded).
fn stdout_commands(snap: &str, other: &str) -> Vec<Vec<String>> {
    let list: Vec<Vec<&str>> = vec![
        vec!["report", snap],
        vec!["report", snap, "--json"],
        vec!["report", snap, "--task", "request-handler"],
        vec!["chains", snap],
        vec!["chains", snap, "--json"],
        vec!["chains", snap, "--dot", "-"],
        vec!["flamegraph", snap, "-o", "-"],
        vec!["flamegraph", snap, "-o", "-", "--folded"],
        vec!["diff", snap, other],
        vec!["diff", snap, other, "--json"],
        vec!["export", "--format", "pprof", snap, "-o", "-"],
        vec!["html", snap, "-o", "-"],
    ];
    list.into_iter()
        .map(|args| args.into_iter().map(str::to_owned).collect())
        .collect()
}

fn turbowish() -> Command {
    Command::new(turbowish_binary())
}

#[test]
fn a_closed_standard_output_is_exit_1_with_one_line() {
    let snap = fixture("service.json");
    let other = fixture("service-later.json");
    for args in stdout_commands(snap.to_str().unwrap(), other.to_str().unwrap()) {
        let mut command = turbowish();
        command.args(&args).stderr(Stdio::piped());
        // SAFETY: `close` is async-signal-safe, as code between fork and
        // exec must be; it closes the child's descriptor 1 only.
        unsafe {
            command.pre_exec(|| {
                libc::close(1);
                Ok(())
            });
        }
        let out = command.output().unwrap();
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {stderr}");
        assert_eq!(
            stderr, "turbowish: standard output: cannot write: Bad file descriptor (os error 9)\n",
            "{args:?}"
        );
    }
}

/// `turbowish ... | head`: the reader leaves early. Documented in CLI.md:
/// what was read stands, the rest is dropped, exit 0, nothing on stderr.
#[test]
fn a_reader_that_leaves_early_is_not_an_error() {
    let snap = fixture("service-walk.json");
    let other = fixture("service.json");
    for args in stdout_commands(snap.to_str().unwrap(), other.to_str().unwrap()) {
        let mut child = turbowish()
            .args(&args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // The reader is gone before the first byte is written.
        drop(child.stdout.take());
        let out = child.wait_with_output().unwrap();
        let code = out.status.code();
        let stderr = text(&out.stderr);
        // `chains` still reports the deadlock it found by its status.
        let expected = if args[0] == "chains" {
            chains_status(&args)
        } else {
            0
        };
        assert_eq!(code, Some(expected), "{args:?}: {stderr}");
        assert!(!stderr.contains("cannot write"), "{args:?}: {stderr}");
    }
}

/// The status `chains` exits with on this snapshot when its output works.
fn chains_status(args: &[String]) -> i32 {
    let out = turbowish().args(args).output().unwrap();
    out.status.code().unwrap()
}

fn run_with_stdin(args: &[&str], stdin: &Path) -> Output {
    turbowish()
        .args(args)
        .stdin(File::open(stdin).unwrap())
        .output()
        .unwrap()
}

#[test]
fn output_onto_the_snapshot_read_from_standard_input_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let snap = dir.path().join("snap.json");
    std::fs::copy(fixture("service.json"), &snap).unwrap();
    let before = std::fs::read(&snap).unwrap();
    let s = snap.to_str().unwrap();
    let other = fixture("service-later.json");
    let o = other.to_str().unwrap();
    let cases: Vec<Vec<&str>> = vec![
        vec!["flamegraph", "-", "-o", s],
        vec!["flamegraph", "-", "-o", s, "--folded"],
        vec!["export", "--format", "pprof", "-", "-o", s],
        vec!["html", "-", "-o", s],
        vec!["html", o, "--base", "-", "-o", s],
        vec!["chains", "-", "--dot", s],
    ];
    for args in cases {
        let out = run_with_stdin(&args, &snap);
        assert_eq!(
            out.status.code(),
            Some(2),
            "{args:?}: {}",
            text(&out.stderr)
        );
        assert_eq!(
            text(&out.stderr),
            format!("turbowish: {s}: cannot write: it is the snapshot being read\n"),
            "{args:?}"
        );
        assert_eq!(std::fs::read(&snap).unwrap(), before, "{args:?}");
    }
    // Through another name for the same file, too.
    let link = dir.path().join("alias.json");
    std::fs::hard_link(&snap, &link).unwrap();
    let out = run_with_stdin(&["flamegraph", "-", "-o", link.to_str().unwrap()], &snap);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert_eq!(std::fs::read(&snap).unwrap(), before);
}

fn entries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn output_names_up_to_the_longest_valid_name_are_written() {
    let dir = tempfile::tempdir().unwrap();
    let snap = fixture("service.json");
    for len in [243, 250, 255] {
        let name = format!("{}.svg", "o".repeat(len - 4));
        let out_path = dir.path().join(&name);
        let out = turbowish()
            .args(["flamegraph", snap.to_str().unwrap(), "-o"])
            .arg(&out_path)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "{len}: {}", text(&out.stderr));
        assert!(std::fs::read(&out_path).unwrap().starts_with(b"<?xml"));
        assert_eq!(
            entries(dir.path()),
            std::slice::from_ref(&name),
            "no temporary file left"
        );
        std::fs::remove_file(&out_path).unwrap();
    }
}

/// A file-size limit reached mid-write: exit 1 with one line, and neither
/// the target nor a temporary file is left.
#[test]
fn a_write_cut_short_by_a_file_size_limit_leaves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("page.html");
    let mut command = turbowish();
    command
        .args(["html", fixture("service-walk.json").to_str().unwrap(), "-o"])
        .arg(&target);
    // SAFETY: `setrlimit` is async-signal-safe and changes only the child.
    unsafe {
        command.pre_exec(|| {
            let limit = libc::rlimit {
                rlim_cur: 4096,
                rlim_max: libc::RLIM_INFINITY,
            };
            libc::setrlimit(libc::RLIMIT_FSIZE, &limit);
            Ok(())
        });
    }
    let out = command.output().unwrap();
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("File too large"), "{stderr}");
    assert_eq!(entries(dir.path()), Vec::<String>::new());
}

/// SIGTERM or SIGINT at any moment: the target is absent or complete, and
/// no temporary file is left (the handler removes the one being written).
/// Signals land at random points; the property holds at every one.
#[test]
fn a_signal_at_any_moment_leaves_no_temporary_file() {
    let dir = tempfile::tempdir().unwrap();
    let snap = fixture("service-walk.json");
    let complete = {
        let full = dir.path().join("full.html");
        let out = turbowish()
            .args(["html", snap.to_str().unwrap(), "-o"])
            .arg(&full)
            .output()
            .unwrap();
        assert!(out.status.success());
        let bytes = std::fs::read(&full).unwrap();
        std::fs::remove_file(&full).unwrap();
        bytes
    };
    let target = dir.path().join("page.html");
    let mut killed = 0;
    for round in 0..30u64 {
        let mut child = turbowish()
            .args(["html", snap.to_str().unwrap(), "-o"])
            .arg(&target)
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_micros(200 * round));
        let signal = if round % 2 == 0 {
            libc::SIGTERM
        } else {
            libc::SIGINT
        };
        // SAFETY: signalling our own child, which has not been waited for.
        unsafe { libc::kill(child.id() as libc::pid_t, signal) };
        let status = child.wait().unwrap();
        if !status.success() {
            killed += 1;
        }
        let names = entries(dir.path());
        assert!(
            names.is_empty() || names == ["page.html"],
            "round {round}: {names:?}"
        );
        if let Ok(bytes) = std::fs::read(&target) {
            assert_eq!(bytes, complete, "round {round}: a partial page");
            std::fs::remove_file(&target).unwrap();
        }
    }
    assert!(killed > 0, "no round was interrupted");
}

/// `> /dev/null` discards output on purpose: that is a success.
#[test]
fn output_sent_to_dev_null_on_purpose_is_a_success() {
    let snap = fixture("service.json");
    let null = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/null")
        .unwrap();
    let out = turbowish()
        .args(["report", snap.to_str().unwrap()])
        .stdout(null)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(text(&out.stderr), "");
}

/// A `format_version` given twice is named as such.
#[test]
fn a_repeated_format_version_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("twice.json");
    let text_in = std::fs::read_to_string(fixture("service.json")).unwrap();
    let twice = text_in.replacen('{', "{\"format_version\": 2, ", 1);
    std::fs::write(&path, twice).unwrap();
    let p = path.to_str().unwrap();
    let out = turbowish().args(["report", p]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        text(&out.stderr),
        format!(
            "turbowish: {p}: not a TurboWish snapshot: field `format_version`: appears twice\n"
        )
    );
}

/// Totals that disagree with the rows show as `>100%`, not as an absurd
/// percentage.
#[test]
fn inconsistent_totals_show_no_absurd_percentage() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("totals.json");
    let mut snap: serde_json::Value =
        serde_json::from_slice(&std::fs::read(fixture("service.json")).unwrap()).unwrap();
    snap["totals"]["live_bytes"] = 1.into();
    std::fs::write(&path, serde_json::to_vec(&snap).unwrap()).unwrap();
    let out = turbowish()
        .args(["report", path.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let report = text(&out.stdout);
    assert!(
        report.contains("(>100%) is outside TurboWish tasks"),
        "{report}"
    );
    assert!(!report.contains("00000000"), "no absurd figure: {report}");
}
