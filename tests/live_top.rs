//! The live view end to end on the `live_growth` example:
//!
//! - over the socket, with the viewer's own client and model: the growing
//!   task rises to the top of the table (by live bytes and by growth)
//!   within 3 s, the held mutex shows its holder and waiters (recorded),
//!   the channel `audit` the tasks owning its ends (`owns`), a snapshot
//!   request writes a file to `$TURBOWISH_DIR`, and when the program exits
//!   the stream ends and the socket is gone;
//! - the real `turbowish top` in tmux: `s` writes a snapshot, `q` quits and
//!   leaves the terminal usable (canonical mode and echo back), and so do a
//!   panic in the viewer and the program exiting under it (one line each).
//!
//! The tmux test is skipped, saying so, where tmux is not installed
//! (`.ci/run` installs it; with `CI` set a missing tmux fails the test).

mod support;

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

use turbowish::snapshot::live::{ServerFrame, WireError};
use turbowish::snapshot::schema::{Access, Provenance};
use turbowish::snapshot::Snapshot;
use turbowish_report::top::app::App;
use turbowish_report::top::client::{Connection, Target};
use turbowish_report::top::model::{visible_rows, SortKey};
use turbowish_report::top::TopError;

use support::example_binary;

/// The example, running, with the socket it printed.
struct Program {
    child: Child,
    stdin: Option<ChildStdin>,
    pid: u32,
    socket: PathBuf,
}

impl Program {
    fn start(dir: &Path) -> Program {
        let mut child = Command::new(example_binary("live_growth"))
            .env("TURBOWISH_DIR", dir)
            .env_remove("TURBOWISH_LIVE")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("the live_growth example runs");
        let stdin = child.stdin.take();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let first = lines.next().expect("a first line").unwrap();
        let socket = PathBuf::from(
            first
                .strip_prefix("live socket: ")
                .unwrap_or_else(|| panic!("unexpected first line {first:?}")),
        );
        // The rest of its output is not needed; keep the pipe drained.
        std::thread::spawn(move || lines.for_each(drop));
        Program {
            pid: child.id(),
            child,
            stdin,
            socket,
        }
    }

    /// Ends the program as a user does (its standard input closes) and
    /// checks it exited 0.
    fn stop(&mut self) {
        drop(self.stdin.take());
        let status = self.child.wait().unwrap();
        assert!(status.success(), "live_growth exited with {status}");
    }
}

impl Drop for Program {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("turbowish-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn snapshot_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    files
}

#[test]
fn the_growing_task_rises_to_the_top_over_the_socket() {
    let dir = temp_dir("live-e2e");
    let mut program = Program::start(&dir);
    assert_eq!(
        program.socket,
        dir.join(format!("turbowish-{}.sock", program.pid))
    );

    let mut connection = Connection::open(&Target::Pid {
        pid: program.pid,
        dir: dir.clone(),
    })
    .expect("the endpoint answers");
    assert_eq!(connection.hello.pid, program.pid);
    assert_eq!(Path::new(&connection.hello.snapshot_dir), dir);
    let mut app = App::new(connection.hello.clone());

    // Updates until the grower tops both orders, for at most 3 s.
    let deadline = Instant::now() + Duration::from_secs(3);
    let mut first_ranks = None;
    let mut saw_ledger = false;
    let mut saw_audit = false;
    let top_by = |app: &App, key| {
        visible_rows(&app.model, key, true, "")
            .first()
            .map(|r| r.name.clone())
    };
    loop {
        assert!(
            Instant::now() < deadline,
            "within 3 s, the grower did not reach the top (first update: {first_ranks:?}) or the owners of `audit` were not named (seen: {saw_audit}); rows: {:?}; resources: {:?}",
            visible_rows(&app.model, SortKey::Live, true, "")
                .iter()
                .map(|r| (r.name.clone(), r.live_bytes, r.growth))
                .collect::<Vec<_>>(),
            app.model.resources
        );
        let frame = connection.next_frame().expect("an update");
        assert!(matches!(frame, ServerFrame::Update(_)), "{frame:?}");
        app.on_frame(frame);
        let rank = |key| {
            visible_rows(&app.model, key, true, "")
                .iter()
                .position(|r| r.name == "grower")
        };
        first_ranks.get_or_insert((rank(SortKey::Live), rank(SortKey::Growth)));
        saw_ledger |= app.model.resources.iter().any(|r| {
            r.name == "ledger"
                && r.holders
                    .iter()
                    .any(|h| h.task_name == "ledger-writer" && h.provenance == Provenance::Recorded)
                && r.waiters.iter().any(|w| w.task_name.starts_with("reader-"))
        });
        let owns = |r: &turbowish::snapshot::live::LiveResource, task: &str, access| {
            r.holders.iter().any(|h| {
                h.task_name == task
                    && h.access == access
                    && matches!(&h.provenance, Provenance::Owns { path } if path.starts_with("future state +0x"))
            })
        };
        saw_audit |= app.model.resources.iter().any(|r| {
            r.name == "audit"
                && owns(r, "requests", Access::Send)
                && owns(r, "auditor", Access::Receive)
        });
        // Two values of its history at least: on a slow machine the grower
        // may first show (and top both orders) in the second update.
        let grower_values = visible_rows(&app.model, SortKey::Live, true, "")
            .iter()
            .find(|r| r.name == "grower")
            .map_or(0, |r| r.history.len());
        if top_by(&app, SortKey::Live).as_deref() == Some("grower")
            && top_by(&app, SortKey::Growth).as_deref() == Some("grower")
            && app.model.seq >= 2
            && grower_values >= 2
            && saw_audit
        {
            break;
        }
    }
    let grower = visible_rows(&app.model, SortKey::Live, true, "")[0].clone();
    assert!(grower.growth > 0 && grower.alloc_rate > 0, "{grower:?}");
    // One value per update since it appeared (it may start after the
    // first), rising.
    assert!(
        grower.history.len() >= 2 && grower.history.len() as u64 <= app.model.seq,
        "{} values after {} updates",
        grower.history.len(),
        app.model.seq
    );
    assert!(grower.history.back() > grower.history.front(), "{grower:?}");
    assert!(
        saw_ledger,
        "the ledger's holder and waiters: {:?}",
        app.model.resources
    );
    let (holds, _) = app
        .model
        .resources_of(visible_rows(&app.model, SortKey::Name, false, "ledger-writer")[0].owner);
    assert_eq!(holds.len(), 1);

    // A snapshot on request, in $TURBOWISH_DIR, with the grower in it.
    connection.request_snapshot().unwrap();
    let path = loop {
        match connection.next_frame().expect("frames") {
            ServerFrame::SnapshotWritten { path } => break PathBuf::from(path),
            ServerFrame::Update(_) => {}
            other => panic!("unexpected {other:?}"),
        }
    };
    assert_eq!(snapshot_files(&dir), vec![path.clone()]);
    let snapshot = Snapshot::load(&path).unwrap();
    assert_eq!(snapshot.process.pid, program.pid);
    assert!(snapshot.tasks.iter().any(|t| t.name == "grower"));

    // The program exits: the stream ends, as the viewer reports it, and
    // the socket is removed.
    program.stop();
    let end = loop {
        match connection.next_frame() {
            Ok(_) => {}
            Err(e) => break e,
        }
    };
    assert!(matches!(end, WireError::Closed), "{end:?}");
    assert_eq!(
        TopError::Lost {
            pid: program.pid,
            source: end
        }
        .to_string(),
        format!(
            "program {} closed the live connection (it exited, or stopped serving)",
            program.pid
        )
    );
    assert!(!program.socket.exists(), "the socket outlived its program");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A tmux server of this test's own (`-L`), killed when dropped.
struct Tmux {
    server: String,
}

impl Tmux {
    fn available() -> bool {
        Command::new("tmux")
            .arg("-V")
            .output()
            .is_ok_and(|o| o.status.success())
    }

    fn new(name: &str) -> Tmux {
        Tmux {
            server: format!("turbowish-{name}-{}", std::process::id()),
        }
    }

    fn run(&self, args: &[&str]) -> String {
        let out = Command::new("tmux")
            .args(["-L", &self.server, "-f", "/dev/null"])
            .args(args)
            .output()
            .expect("tmux runs");
        assert!(
            out.status.success(),
            "tmux {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// A 160x40 window running `command` in sh, then the exit status and
    /// the terminal's modes (`stty -a`), then waiting.
    fn start(&self, command: &str) {
        let script = format!(
            "{command}; echo \"exit $?\"; stty -a | tr ' ;' '\\n\\n' | grep -x -e icanon -e -icanon -e echo -e -echo | tr '\\n' ' '; echo; sleep 600"
        );
        self.run(&[
            "new-session",
            "-d",
            "-s",
            "top",
            "-x",
            "160",
            "-y",
            "40",
            "sh",
            "-c",
            &script,
        ]);
    }

    fn screen(&self) -> String {
        self.run(&["capture-pane", "-p", "-t", "top"])
    }

    fn keys(&self, keys: &str) {
        self.run(&["send-keys", "-t", "top", keys]);
    }

    /// Waits (at most `limit`) until the screen shows `text`; returns it.
    fn wait_for(&self, text: &str, limit: Duration) -> String {
        let deadline = Instant::now() + limit;
        loop {
            let screen = self.screen();
            if screen.contains(text) {
                return screen;
            }
            assert!(
                Instant::now() < deadline,
                "the screen never showed {text:?}:\n{screen}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .args(["-L", &self.server, "kill-server"])
            .output();
    }
}

/// The modes line the window prints after the viewer: a usable terminal
/// is back in canonical mode with echo.
const RESTORED: &str = "icanon echo";

fn turbowish() -> PathBuf {
    example_binary("live_growth")
        .parent()
        .and_then(Path::parent)
        .unwrap()
        .join(format!("turbowish{}", std::env::consts::EXE_SUFFIX))
}

#[test]
fn the_real_viewer_in_tmux_writes_a_snapshot_and_quits_cleanly() {
    if !Tmux::available() {
        assert!(
            std::env::var_os("CI").is_none(),
            "tmux is missing and CI is set: .ci/run installs it"
        );
        eprintln!("SKIPPED the_real_viewer_in_tmux: tmux is not installed (apt-get install tmux)");
        return;
    }
    let dir = temp_dir("live-tmux");
    let mut program = Program::start(&dir);
    let viewer = format!(
        "TURBOWISH_DIR={} {} top --pid {}",
        dir.display(),
        turbowish().display(),
        program.pid
    );

    // `s`, then `q`.
    let tmux = Tmux::new("top");
    tmux.start(&viewer);
    // A few updates first, so the screen has history to show.
    tmux.wait_for("· update 4", Duration::from_secs(30));
    tmux.keys("s");
    let screen = tmux.wait_for("snapshot written: ", Duration::from_secs(60));
    let files = snapshot_files(&dir);
    assert_eq!(files.len(), 1, "{files:?}");
    assert!(
        screen.contains(&format!("snapshot written: {}", files[0].display())),
        "{screen}"
    );
    assert_eq!(Snapshot::load(&files[0]).unwrap().process.pid, program.pid);
    for line in [
        format!(" turbowish top · pid {} · ", program.pid),
        "TASK ".to_owned(),
        "Mutex \"ledger\"".to_owned(),
        " q quit  s snapshot ".to_owned(),
    ] {
        assert!(
            screen.contains(&line),
            "no {line:?} on the screen:\n{screen}"
        );
    }
    // The screen, for the log (and target/turbowish-top for the book).
    println!("{screen}");
    let keep = turbowish().parent().unwrap().join("../turbowish-top");
    let _ = std::fs::create_dir_all(&keep);
    let _ = std::fs::write(keep.join("screen.txt"), &screen);
    tmux.keys("q");
    let after = tmux.wait_for("exit ", Duration::from_secs(20));
    assert!(after.contains("exit 0"), "{after}");
    tmux.wait_for(RESTORED, Duration::from_secs(20));
    drop(tmux);

    // A panic in the viewer: the message on the normal screen, exit 101,
    // the terminal restored.
    let tmux = Tmux::new("panic");
    tmux.start(&format!("TURBOWISH_TOP_TEST_PANIC=1 {viewer}"));
    let after = tmux.wait_for("exit ", Duration::from_secs(20));
    assert!(after.contains("exit 101"), "{after}");
    assert!(after.contains("TURBOWISH_TOP_TEST_PANIC"), "{after}");
    tmux.wait_for(RESTORED, Duration::from_secs(20));
    drop(tmux);

    // The program exits under the viewer: one line, exit 1, restored.
    let tmux = Tmux::new("gone");
    tmux.start(&viewer);
    tmux.wait_for("grower", Duration::from_secs(20));
    program.stop();
    let after = tmux.wait_for("exit ", Duration::from_secs(20));
    let line = format!(
        "turbowish: program {} closed the live connection (it exited, or stopped serving)",
        program.pid
    );
    assert!(after.contains(&line), "{after}");
    assert!(after.contains("exit 1"), "{after}");
    let screen = tmux.wait_for(RESTORED, Duration::from_secs(20));
    // Nothing of the viewer's screen is left: its one line, the status,
    // the modes.
    let shown: Vec<&str> = screen.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(shown, [line.as_str(), "exit 1", "icanon echo"], "{screen}");

    let _ = std::io::stdout().flush();
    std::fs::remove_dir_all(&dir).unwrap();
}
