//! Helpers shared by the integration tests. Each test file includes this
//! module with `mod common;` and keeps its own `#[global_allocator]`.

// Each test binary uses a different subset of these.
#![allow(dead_code)]

use std::sync::{Mutex, MutexGuard};

use turbowish_alloc::{stats, Counters, Owner, TaskTag};

/// Serialises the tests of one binary that must not run at the same time.
/// A lock poisoned by a failed test is taken over, so that one failure does
/// not fail every later test.
pub(crate) fn serial() -> MutexGuard<'static, ()> {
    static SERIAL: Mutex<()> = Mutex::new(());
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// The `stats()` owner of a tokio task: the number its id displays as.
pub(crate) fn tokio_owner(id: tokio::task::Id) -> Owner {
    Owner::TokioTask(id.to_string().parse::<u64>().expect("task id is a u64"))
}

/// `tag`'s row in a fresh `stats()` (all zero if it has none).
pub(crate) fn row(tag: &TaskTag) -> Counters {
    stats().counters(Owner::Task(tag.id()))
}

/// Forks `forks` times, each time after `rounds` (a busy thread's progress
/// counter) has moved on by `gap`, and runs `child` in the child; returns
/// one line per child that failed (see [`in_forked_child`]).
pub(crate) fn fork_between(
    forks: usize,
    rounds: &std::sync::atomic::AtomicU64,
    gap: u64,
    mut child: impl FnMut(),
) -> Vec<String> {
    use std::sync::atomic::Ordering;
    let mut failures = Vec::new();
    for fork in 0..forks {
        let seen = rounds.load(Ordering::Relaxed);
        while rounds.load(Ordering::Relaxed) < seen + gap {
            std::thread::yield_now();
        }
        if let Err(message) = in_forked_child(&mut child) {
            failures.push(format!("fork {fork}: {message}"));
        }
    }
    failures
}

/// How long a forked child may run (see [`in_forked_child`]).
pub(crate) const CHILD_DEADLINE_SECS: u32 = 60;

/// Runs `f` in a forked child and returns `Ok` if it returned normally and
/// the child exited with status 0, else the panic message or wait status.
///
/// In the child only the calling thread exists, so the shared buckets move
/// only through `f`: nothing else (the test harness's threads) allocates.
/// A child that hangs (a lock held at the fork by a thread it does not
/// have) is killed by `SIGALRM` after [`CHILD_DEADLINE_SECS`], so the test
/// fails instead of waiting forever.
pub(crate) fn in_forked_child(f: impl FnOnce()) -> Result<(), String> {
    let mut fds = [0; 2];
    // SAFETY: `fds` is a valid out-pointer for two descriptors.
    assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0, "pipe failed");
    let [read_fd, write_fd] = fds;
    // SAFETY: the child runs only `f` (which touches memory it inherited,
    // the allocator and threads it spawns itself), reports through the pipe
    // and leaves with `_exit`: no atexit handlers, no unwinding into the
    // test harness.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork failed");
    if pid == 0 {
        // SAFETY: a plain system call; the default action of SIGALRM ends
        // the child.
        unsafe { libc::alarm(CHILD_DEADLINE_SECS) };
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
        let code = match outcome {
            Ok(()) => 0,
            Err(payload) => {
                let message = payload
                    .downcast_ref::<String>()
                    .map(String::as_str)
                    .or_else(|| payload.downcast_ref::<&str>().copied())
                    .unwrap_or("non-string panic payload");
                let mut rest = message.as_bytes();
                while !rest.is_empty() {
                    // SAFETY: `rest` is valid for reads of its length;
                    // `write_fd` is the pipe's write end, open in the child.
                    let n = unsafe { libc::write(write_fd, rest.as_ptr().cast(), rest.len()) };
                    if n <= 0 {
                        break;
                    }
                    rest = &rest[n as usize..];
                }
                1
            }
        };
        // SAFETY: ends the child at once, as a forked child should.
        unsafe { libc::_exit(code) };
    }
    // SAFETY: the parent's copy of the write end is ours to close; closing
    // it lets the read below see end-of-file when the child exits.
    unsafe { libc::close(write_fd) };
    // SAFETY: `read_fd` is the pipe's read end, owned by nothing else.
    let mut pipe = unsafe { <std::fs::File as std::os::fd::FromRawFd>::from_raw_fd(read_fd) };
    let mut message = String::new();
    std::io::Read::read_to_string(&mut pipe, &mut message).expect("read the child's report");
    let mut status = 0;
    loop {
        // SAFETY: `pid` is our child; `status` is a valid out-pointer.
        let rc = unsafe { libc::waitpid(pid, &mut status, 0) };
        if rc == pid {
            break;
        }
        assert_eq!(
            std::io::Error::last_os_error().raw_os_error(),
            Some(libc::EINTR),
            "waitpid failed"
        );
    }
    if libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0 {
        Ok(())
    } else {
        Err(format!(
            "child status {status:#x}{}: {message}",
            if libc::WIFSIGNALED(status) && libc::WTERMSIG(status) == libc::SIGALRM {
                " (killed by SIGALRM: hung)"
            } else {
                ""
            }
        ))
    }
}
