//! The `SIGUSR1` trigger: a signal wakes one dedicated thread, which writes
//! a snapshot file.
//!
//! The handler (signal-hook's) only records the signal and writes a byte to
//! a pipe; everything else happens on the `turbowish-snapshot` thread, which
//! needs no async runtime, so a process whose every tokio worker is blocked
//! still answers.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::SyncSender;
use std::sync::{Condvar, Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use signal_hook::consts::SIGUSR1;
use signal_hook::iterator::Signals;

use crate::live;
use crate::snapshot_file::{SnapshotDir, SnapshotError};

/// Installs the `SIGUSR1` trigger with the default configuration: snapshots
/// go to `$TURBOWISH_DIR`, or the current directory when it is unset (see
/// [`SignalConfig`]).
///
/// After this, `kill -USR1 <pid>` makes the process write
/// `turbowish-<pid>-<seq>.json` (see [`crate::snapshot_to_dir`]). Each
/// signal produces one new file; signals arriving while a file is being
/// written produce at most one more. A failed write is reported on standard
/// error (one line) and the trigger keeps going. Installing again with the
/// same directory returns the same trigger.
///
/// With `TURBOWISH_LIVE=1` in the environment it also starts the live
/// endpoint `turbowish top` connects to (see [`SignalConfig::live`]); if
/// that fails, the reason goes to standard error in one line and the
/// trigger is installed all the same.
///
/// ```no_run
/// let trigger = turbowish_capture::install_signal_handler()?;
/// println!("kill -USR1 {} writes to {}", std::process::id(), trigger.dir().display());
/// # Ok::<(), turbowish_capture::SnapshotError>(())
/// ```
pub fn install_signal_handler() -> Result<SignalHandle, SnapshotError> {
    SignalConfig::new().install()
}

/// Configuration of the `SIGUSR1` trigger, for [`SignalConfig::install`].
///
/// ```
/// let dir = std::env::temp_dir();
/// let trigger = turbowish_capture::SignalConfig::new().dir(&dir).install()?;
/// assert_eq!(trigger.dir(), std::path::absolute(&dir).unwrap());
/// # Ok::<(), turbowish_capture::SnapshotError>(())
/// ```
#[derive(Debug, Clone, Default)]
pub struct SignalConfig {
    dir: Option<PathBuf>,
    live: Option<bool>,
}

/// Installs the `SIGUSR1` trigger and the live endpoint `turbowish top`
/// connects to: `SignalConfig::new().live(true).install()`.
///
/// ```no_run
/// let trigger = turbowish_capture::serve()?;
/// println!("turbowish top --socket {}", trigger.live_socket().unwrap().display());
/// # Ok::<(), turbowish_capture::SnapshotError>(())
/// ```
pub fn serve() -> Result<SignalHandle, SnapshotError> {
    SignalConfig::new().live(true).install()
}

impl SignalConfig {
    /// The default configuration: the directory comes from `TURBOWISH_DIR`
    /// (read by [`SignalConfig::install`]), else the current directory.
    pub fn new() -> SignalConfig {
        SignalConfig::default()
    }

    /// Writes snapshots to `dir` instead (made absolute at install, so a
    /// later `chdir` does not move them).
    pub fn dir(mut self, dir: impl Into<PathBuf>) -> SignalConfig {
        self.dir = Some(dir.into());
        self
    }

    /// Also serves the live view (`turbowish top`), or not, whatever
    /// `TURBOWISH_LIVE` says. Without this call the environment decides:
    /// `TURBOWISH_LIVE=1` (any value but empty or `0`) turns it on.
    ///
    /// The endpoint is a Unix socket (never TCP), `turbowish-<pid>.sock`
    /// in the snapshot directory, mode 0600 from the moment it has that
    /// name: it is bound in a private directory of mode 0700 and linked
    /// into place. A stale socket of this user at the name is replaced.
    /// The socket is removed when the process exits through `exit` (a
    /// return from `main` included); a process killed by a signal leaves
    /// it, and the viewer then says it is stale.
    ///
    /// With no viewer connected its cost is one thread blocked in
    /// `accept`. Each viewer (at most [`crate::MAX_VIEWERS`] at once) has a
    /// thread of its own that sends an update about once a second and asks
    /// for snapshots by raising `SIGUSR1`.
    ///
    /// Asked for here, a failure to start it fails [`SignalConfig::install`]
    /// ([`SnapshotError::Live`]); asked for by the environment, it is
    /// reported on standard error and the trigger is installed all the
    /// same.
    pub fn live(mut self, on: bool) -> SignalConfig {
        self.live = Some(on);
        self
    }

    /// Registers the handler and starts the `turbowish-snapshot` thread.
    ///
    /// Fails if the directory is not one, if the handler or the thread
    /// cannot be set up, or if the trigger is already installed with
    /// another directory ([`SnapshotError::AlreadyInstalled`]). Installing
    /// again with the live view on starts it if it was not.
    pub fn install(self) -> Result<SignalHandle, SnapshotError> {
        let (live, asked) = match self.live {
            Some(on) => (on, true),
            None => (
                std::env::var_os("TURBOWISH_LIVE").is_some_and(|v| !v.is_empty() && v != "0"),
                false,
            ),
        };
        let handle = self.install_trigger()?;
        if live {
            match start_live(handle) {
                Ok(()) => {}
                Err(e) if asked => return Err(e),
                Err(e) => report_line(&format!("turbowish: live view not started: {e}")),
            }
        }
        Ok(handle)
    }

    fn install_trigger(self) -> Result<SignalHandle, SnapshotError> {
        let _internal = turbowish_alloc::internal();
        // Read first, so that a bad value installs nothing.
        let budgets = crate::budget::Budgets::from_env()?;
        let dir = crate::snapshot_file::resolve_dir(self.dir)?;

        let mut installed = lock(&INSTALLED);
        if let Some(trigger) = *installed {
            return if trigger.dir == dir {
                Ok(SignalHandle { trigger })
            } else {
                Err(SnapshotError::AlreadyInstalled {
                    dir: trigger.dir.clone(),
                })
            };
        }
        // Counted before signal-hook's own action runs (actions run in the
        // order registered), so a wake-up never finds the count behind.
        // SAFETY: the action only does an atomic add, which is
        // async-signal-safe, and touches no lock and no allocator.
        let counter = unsafe {
            signal_hook::low_level::register(SIGUSR1, || {
                RECEIVED.fetch_add(1, Ordering::SeqCst);
            })
        }
        .map_err(|source| SnapshotError::Signal { source })?;
        // On failure from here on, leave no half-installed trigger behind
        // (signal-hook's own registration goes with its `Signals`).
        let fail = |e: SnapshotError| {
            signal_hook::low_level::unregister(counter);
            e
        };
        let signals =
            Signals::new([SIGUSR1]).map_err(|source| fail(SnapshotError::Signal { source }))?;
        // Lives as long as the thread, which lives as long as the process.
        // The directory is opened now, once: later renames or swaps of its
        // path do not move where snapshots go.
        let directory = SnapshotDir::open(dir.clone()).map_err(fail)?;
        let trigger: &'static Trigger = Box::leak(Box::new(Trigger {
            directory,
            dir,
            state: Mutex::new(State::default()),
            changed: Condvar::new(),
            live: OnceLock::new(),
        }));
        let (started, wait_started) = std::sync::mpsc::sync_channel(1);
        std::thread::Builder::new()
            .name("turbowish-snapshot".to_owned())
            .spawn(move || run(trigger, signals, started))
            .map_err(|source| fail(SnapshotError::Thread { source }))?;
        // What a new thread allocates as it starts is charged to `main`:
        // let that happen now, not during the caller's next measurement.
        let _ = wait_started.recv();
        *installed = Some(trigger);
        drop(installed);
        // The budget watcher serves tasks spawned with a budget; the
        // process-wide limits come from the environment here.
        budgets.dir(&trigger.dir).install()?;
        Ok(SignalHandle { trigger })
    }
}

/// Starts the live endpoint of `handle` unless it runs already.
fn start_live(handle: SignalHandle) -> Result<(), SnapshotError> {
    // Under the install lock: two installs at once start one endpoint.
    let _installed = lock(&INSTALLED);
    if handle.trigger.live.get().is_none() {
        let path = live::start(handle).map_err(SnapshotError::Live)?;
        let _ = handle.trigger.live.set(path);
    }
    Ok(())
}

/// The installed `SIGUSR1` trigger: where it writes and what it wrote.
#[derive(Debug, Clone, Copy)]
pub struct SignalHandle {
    trigger: &'static Trigger,
}

impl SignalHandle {
    /// The directory snapshot files go to (absolute).
    pub fn dir(&self) -> &Path {
        &self.trigger.dir
    }

    /// Snapshot files written so far.
    pub fn snapshots_written(&self) -> u64 {
        lock(&self.trigger.state).written
    }

    /// Snapshots that failed (each reported on standard error).
    pub fn failures(&self) -> u64 {
        lock(&self.trigger.state).failed
    }

    /// The last file written, if any.
    pub fn last_snapshot(&self) -> Option<PathBuf> {
        lock(&self.trigger.state).last.clone()
    }

    /// Why the last failed snapshot failed (the line reported on standard
    /// error, without its prefix), if one has.
    pub fn last_error(&self) -> Option<String> {
        lock(&self.trigger.state).last_error.clone()
    }

    /// The live endpoint's socket (`turbowish top --socket PATH`), if the
    /// live view is served (see [`SignalConfig::live`]).
    pub fn live_socket(&self) -> Option<&Path> {
        self.trigger.live.get().map(PathBuf::as_path)
    }

    /// `SIGUSR1` deliveries seen since install (signals sent while one was
    /// already pending are merged by the kernel and count once).
    pub fn signals_received(&self) -> u64 {
        RECEIVED.load(Ordering::SeqCst)
    }

    /// Waits until every signal received so far has been served: the last
    /// snapshot (written or failed) began after the last signal arrived and
    /// has finished. Returns `false` if `timeout` passed first.
    pub fn wait_idle(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut state = lock(&self.trigger.state);
        while state.served < RECEIVED.load(Ordering::SeqCst) {
            let Some(left) = deadline.checked_duration_since(Instant::now()) else {
                return false;
            };
            // Short waits: a signal arriving now notifies nobody until its
            // snapshot ends, but the count it raised must be re-read.
            let step = left.min(Duration::from_millis(10));
            state = self
                .trigger
                .changed
                .wait_timeout(state, step)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        true
    }

    /// Waits until more than `written` files have been written (compare
    /// with [`SignalHandle::snapshots_written`] taken before signalling) or
    /// `timeout` passes; returns the last file, or `None` on timeout.
    ///
    /// ```
    /// let trigger = turbowish_capture::SignalConfig::new()
    ///     .dir(std::env::temp_dir())
    ///     .install()?;
    /// let before = trigger.snapshots_written();
    /// // SAFETY: raising a signal whose handler is installed.
    /// unsafe { libc::raise(libc::SIGUSR1) };
    /// let file = trigger
    ///     .wait_for_snapshot(before, std::time::Duration::from_secs(30))
    ///     .expect("a snapshot within 30 s");
    /// let snapshot = turbowish_snapshot::Snapshot::load(&file).unwrap();
    /// # std::fs::remove_file(&file).unwrap();
    /// # Ok::<(), turbowish_capture::SnapshotError>(())
    /// ```
    pub fn wait_for_snapshot(&self, written: u64, timeout: Duration) -> Option<PathBuf> {
        let deadline = Instant::now() + timeout;
        let mut state = lock(&self.trigger.state);
        while state.written <= written {
            let left = deadline.checked_duration_since(Instant::now())?;
            state = self
                .trigger
                .changed
                .wait_timeout(state, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        state.last.clone()
    }
}

/// `SIGUSR1` deliveries, counted by the handler.
static RECEIVED: AtomicU64 = AtomicU64::new(0);

/// The one installed trigger, if any.
static INSTALLED: Mutex<Option<&'static Trigger>> = Mutex::new(None);

#[derive(Debug)]
struct Trigger {
    directory: SnapshotDir,
    dir: PathBuf,
    state: Mutex<State>,
    changed: Condvar,
    /// The live endpoint's socket, once it serves.
    live: OnceLock<PathBuf>,
}

#[derive(Debug, Default)]
struct State {
    written: u64,
    failed: u64,
    last: Option<PathBuf>,
    /// Why the last failed snapshot failed.
    last_error: Option<String>,
    /// The value of [`RECEIVED`] when the last finished snapshot began.
    served: u64,
}

/// The snapshot thread: one snapshot per wake-up. signal-hook keeps one
/// pending flag per signal, so any number of signals arriving during a
/// snapshot wake it once more.
fn run(trigger: &'static Trigger, mut signals: Signals, started: SyncSender<()>) {
    let _internal = turbowish_alloc::internal();
    let _ = started.send(());
    drop(started);
    for _ in signals.forever() {
        let upto = RECEIVED.load(Ordering::SeqCst);
        let result = trigger.directory.write_snapshot();
        let mut state = lock(&trigger.state);
        state.served = upto;
        match result {
            Ok(path) => {
                state.written += 1;
                state.last = Some(path);
            }
            Err(e) => {
                state.failed += 1;
                state.last_error = Some(e.to_string());
                report_line(&format!("turbowish: snapshot failed: {e}"));
            }
        }
        drop(state);
        trigger.changed.notify_all();
    }
}

/// One line on standard error, written directly: a process hung while
/// holding std's stderr lock must not hang the snapshot thread too.
pub(crate) fn report_line(line: &str) {
    let line = format!("{line}\n");
    let mut bytes = line.as_bytes();
    while !bytes.is_empty() {
        // SAFETY: `bytes` is a valid buffer of `bytes.len()` bytes; fd 2
        // may be closed, which `write` reports as an error.
        let n = unsafe { libc::write(2, bytes.as_ptr().cast(), bytes.len()) };
        if n <= 0 {
            return;
        }
        bytes = &bytes[n as usize..];
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}
