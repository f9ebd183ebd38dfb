//! `turbowish top` when it cannot show a program: no endpoint, no such
//! process, a stale socket, a file that is not a socket, none or several
//! endpoints to choose from, a refusal, a stream of another version, and no
//! terminal. Each is one line on stderr and a non-zero exit, before the
//! terminal is touched. (Driving it on a terminal is the root package's
//! `tests/live_top.rs`, in tmux.)

mod cli_support;

use std::os::unix::net::UnixListener;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use cli_support::{text, turbowish_binary};
use turbowish_snapshot::live::{Hello, ServerFrame, MAGIC};

/// Runs `turbowish top ARGS` with `TURBOWISH_DIR=dir` and no terminal.
fn top(dir: &Path, args: &[&str]) -> Output {
    Command::new(turbowish_binary())
        .arg("top")
        .args(args)
        .env("TURBOWISH_DIR", dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .expect("turbowish runs")
}

/// The one stderr line of a failed run with exit status `code`.
fn one_line(out: &Output, code: i32) -> String {
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(code), "stderr: {stderr}");
    assert_eq!(stderr.lines().count(), 1, "stderr: {stderr}");
    assert!(out.stdout.is_empty(), "stdout: {}", text(&out.stdout));
    stderr.trim_end().to_owned()
}

/// A socket file nobody listens on.
fn stale_socket(path: &Path) {
    drop(UnixListener::bind(path).unwrap());
}

/// Serves one connection at `path`, sending `frames` (whole, with their
/// lengths) and closing.
fn serve_once(path: &Path, frames: Vec<u8>) -> std::thread::JoinHandle<()> {
    let listener = UnixListener::bind(path).unwrap();
    std::thread::spawn(move || {
        use std::io::Write;
        let (mut stream, _) = listener.accept().unwrap();
        let _ = stream.write_all(&frames);
    })
}

#[test]
fn no_endpoint_or_no_process_is_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().display();
    let me = std::process::id();
    assert_eq!(
        one_line(&top(dir.path(), &["--pid", &me.to_string()]), 1),
        format!("turbowish: no live endpoint at {d}/turbowish-{me}.sock: run the program with TURBOWISH_LIVE=1 (and this TURBOWISH_DIR), or give --socket PATH")
    );
    // Above the kernel's highest pid (2^22): no such process.
    assert_eq!(
        one_line(&top(dir.path(), &["--pid", "4194304"]), 1),
        format!(
            "turbowish: no process 4194304 is running (and no live endpoint at {d}/turbowish-4194304.sock)"
        )
    );
    assert_eq!(
        one_line(&top(dir.path(), &[]), 1),
        format!("turbowish: no live endpoint (turbowish-<pid>.sock) in {d}: run the program with TURBOWISH_LIVE=1, or give --pid N or --socket PATH")
    );
}

#[test]
fn a_stale_socket_is_named_stale() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("turbowish-77.sock");
    stale_socket(&path);
    let expected = format!(
        "turbowish: {}: stale socket: no program is listening (it ended without removing it; remove the file)",
        path.display()
    );
    assert_eq!(one_line(&top(dir.path(), &["--pid", "77"]), 1), expected);
    assert_eq!(one_line(&top(dir.path(), &[]), 1), expected);
    assert_eq!(
        one_line(&top(dir.path(), &["--socket", path.to_str().unwrap()]), 1),
        expected
    );
}

#[test]
fn a_file_that_is_not_a_socket_is_named_so() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("notes.txt");
    std::fs::write(&path, b"x").unwrap();
    assert_eq!(
        one_line(&top(dir.path(), &["--socket", path.to_str().unwrap()]), 1),
        format!("turbowish: {}: not a socket", path.display())
    );
}

#[test]
fn several_endpoints_need_a_pid() {
    let dir = tempfile::tempdir().unwrap();
    stale_socket(&dir.path().join("turbowish-12.sock"));
    stale_socket(&dir.path().join("turbowish-7.sock"));
    // Neither a socket nor a pid: not counted.
    std::fs::write(dir.path().join("turbowish-9.sock"), b"").unwrap();
    std::fs::write(dir.path().join("turbowish-x.sock"), b"").unwrap();
    assert_eq!(
        one_line(&top(dir.path(), &[]), 1),
        format!(
            "turbowish: several programs serve the live view in {} (pids 7, 12): choose one with --pid N",
            dir.path().display()
        )
    );
}

#[test]
fn another_version_is_refused_with_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("turbowish-5.sock");
    // A hello of version 1 (a program of the release before holders
    // carried their provenance), whatever follows it.
    let mut body = vec![0u8];
    body.extend_from_slice(&MAGIC);
    body.extend_from_slice(&1u32.to_le_bytes());
    body.extend_from_slice(b"a future hello");
    let mut frames = (body.len() as u32).to_le_bytes().to_vec();
    frames.extend_from_slice(&body);
    let server = serve_once(&path, frames);
    assert_eq!(
        one_line(&top(dir.path(), &["--pid", "5"]), 2),
        format!(
            "turbowish: {}: the program speaks live-view format version 1, this turbowish reads version 2: use a turbowish built from the same TurboWish release as the program",
            path.display()
        )
    );
    server.join().unwrap();
}

#[test]
fn something_else_on_the_socket_is_not_live() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("turbowish-6.sock");
    let server = serve_once(&path, b"HTTP/1.1 400 Bad Request\r\n\r\n".to_vec());
    let line = one_line(&top(dir.path(), &["--pid", "6"]), 2);
    assert!(
        line.starts_with(&format!("turbowish: {}: ", path.display())),
        "{line}"
    );
    server.join().unwrap();
}

#[test]
fn a_refusal_is_told() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("turbowish-8.sock");
    let mut frames = Vec::new();
    ServerFrame::Refused {
        message: "4 viewers are connected already".to_owned(),
    }
    .write_to(&mut frames)
    .unwrap();
    let server = serve_once(&path, frames);
    assert_eq!(
        one_line(&top(dir.path(), &["--pid", "8"]), 1),
        format!(
            "turbowish: {}: the program refused the viewer: 4 viewers are connected already",
            path.display()
        )
    );
    server.join().unwrap();
}

#[test]
fn without_a_terminal_it_says_so_after_connecting() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("turbowish-9.sock");
    let mut frames = Vec::new();
    ServerFrame::Hello(Hello {
        version: turbowish_snapshot::live::LIVE_VERSION,
        pid: 9,
        executable: "/bin/service".to_owned(),
        snapshot_dir: dir.path().display().to_string(),
        interval_ms: 1000,
    })
    .write_to(&mut frames)
    .unwrap();
    let server = serve_once(&path, frames);
    assert_eq!(
        one_line(&top(dir.path(), &[]), 1),
        "turbowish: turbowish top needs a terminal: standard input and output must be one"
    );
    server.join().unwrap();
}
