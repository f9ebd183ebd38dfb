//! The deadlock example, hung with every tokio worker blocked, answers
//! `SIGUSR1` with a snapshot that contains the deadlock.
//!
//! Runs `target/<profile>/examples/deadlock`, which
//! `support::example_binary` first brings up to date.

mod support;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use turbowish::snapshot::schema::TaskState;
use turbowish::snapshot::Snapshot;

use support::example_binary;

#[test]
fn hung_deadlock_example_answers_sigusr1_with_the_cycle() {
    let example = example_binary("deadlock");
    let dir = std::env::temp_dir().join(format!("turbowish-deadlock-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();

    let mut child = KillOnDrop(
        Command::new(&example)
            .arg("--hang")
            .env("TURBOWISH_DIR", &dir)
            .stdout(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    // Read on a thread, so a child that never says it hung fails the test
    // rather than hanging it.
    let stdout = BufReader::new(child.0.stdout.take().unwrap());
    let (lines, said) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in stdout.lines().map_while(Result::ok) {
            if lines.send(line).is_err() {
                break;
            }
        }
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match said.recv_timeout(left) {
            Ok(line) if line.starts_with("hung:") => break,
            Ok(_) => {}
            Err(e) => panic!("{} did not say it hung ({e})", example.display()),
        }
    }

    let pid = child.0.id() as libc::pid_t;
    // SAFETY: signalling our child, which installed its handler before
    // saying it hung.
    let sent = unsafe { libc::kill(pid, libc::SIGUSR1) };
    assert_eq!(sent, 0);
    let file = wait_for_file(&dir, Duration::from_secs(60));
    let snapshot = Snapshot::load(&file).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(snapshot.process.pid, child.0.id());

    assert_eq!(snapshot.cycles.len(), 1, "{:#?}", snapshot.cycles);
    let cycle = &snapshot.cycles[0];
    let mut waiters: Vec<&str> = cycle
        .links
        .iter()
        .map(|l| l.waiter.task_name.as_str())
        .collect();
    waiters.sort_unstable();
    assert_eq!(waiters, ["transfer-a", "transfer-b"]);
    assert!(cycle.text.contains("\"transfer-a\""), "{}", cycle.text);
    assert!(cycle.text.contains("accounts[1]") && cycle.text.contains("accounts[2]"));
    // Both workers were stuck in blocking code when the snapshot was taken.
    let blocked = snapshot
        .tasks
        .iter()
        .filter(|t| t.name.starts_with("blocked-worker") && t.state == Some(TaskState::Running))
        .count();
    assert_eq!(blocked, 2);

    drop(child);
    std::fs::remove_dir_all(&dir).unwrap();
}

fn wait_for_file(dir: &Path, timeout: Duration) -> PathBuf {
    let deadline = Instant::now() + timeout;
    loop {
        let found = std::fs::read_dir(dir).unwrap().find_map(|e| {
            let path = e.unwrap().path();
            let name = path.file_name()?.to_str()?;
            (name.starts_with("turbowish-") && name.ends_with(".json")).then_some(path)
        });
        if let Some(path) = found {
            return path;
        }
        assert!(
            Instant::now() < deadline,
            "no snapshot in {}",
            dir.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Kills the hung child however the test ends.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
