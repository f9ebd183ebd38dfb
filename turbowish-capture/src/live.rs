//! The live endpoint `turbowish top` connects to: a Unix socket in the
//! snapshot directory, `turbowish-<pid>.sock`, mode 0600, serving
//! [`turbowish_snapshot::live`] frames.
//!
//! One thread, `turbowish-live`, waits in `accept(2)`: with no viewer
//! connected that is all the endpoint costs. Each viewer gets a thread of
//! its own for as long as it stays connected (at most [`MAX_VIEWERS`] at
//! once), which sends an update about once a second, built by a
//! [`LiveSampler`] from the task registry, the allocator's records and
//! the resource records with their owners — never a whole snapshot. A viewer's request for a
//! snapshot raises `SIGUSR1`, so the file is written by the snapshot thread
//! exactly as for `kill -USR1`.

use std::collections::hash_map::Entry;
use std::collections::HashMap;
use std::ffi::CString;
use std::fmt;
use std::hash::{BuildHasherDefault, Hasher};
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, MetadataExt, PermissionsExt};
use std::os::unix::io::AsRawFd;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant, SystemTime};

use turbowish_snapshot::live::{
    read_frame, ClientFrame, Hello, Intro, LiveParty, LiveResource, RowUpdate, ServerFrame, Update,
    WireError, LIVE_VERSION,
};
use turbowish_snapshot::schema::{Owner, TaskState};
use turbowish_trace::sync::ResourceInfo;
use turbowish_trace::task::TaskRow;

use crate::convert;
use crate::signal::SignalHandle;

/// The time between two updates to a viewer.
pub const UPDATE_INTERVAL: Duration = Duration::from_secs(1);

/// Viewers served at once; one more is sent [`ServerFrame::Refused`].
pub const MAX_VIEWERS: usize = 4;

/// The longest a viewer may take to read an update or to finish sending a
/// request it started: past it the connection is dropped.
const STALL: Duration = Duration::from_secs(10);

/// How long a snapshot request may take before the viewer is told it
/// failed.
const SNAPSHOT_WAIT: Duration = Duration::from_secs(120);

/// The socket's name in the snapshot directory for process `pid`:
/// `turbowish-<pid>.sock`.
///
/// ```
/// assert_eq!(turbowish_capture::live_socket_name(42), "turbowish-42.sock");
/// ```
pub fn live_socket_name(pid: u32) -> String {
    format!("turbowish-{pid}.sock")
}

/// Why the live endpoint could not be started. Its `Display` is one line
/// naming the path involved.
#[derive(Debug)]
#[non_exhaustive]
pub enum LiveError {
    /// The socket's path is longer than a Unix socket address holds
    /// (107 bytes): choose a shorter `$TURBOWISH_DIR`.
    PathTooLong {
        /// The path.
        path: PathBuf,
    },
    /// Creating, binding or publishing the socket failed.
    Socket {
        /// The path involved.
        path: PathBuf,
        /// What the system said.
        source: io::Error,
    },
    /// Something other than a stale socket of this user has the socket's
    /// name; it was left alone.
    NameTaken {
        /// The path.
        path: PathBuf,
    },
    /// A program is serving at the socket's name already.
    InUse {
        /// The path.
        path: PathBuf,
    },
    /// The endpoint's thread could not be started.
    Thread {
        /// What the system said.
        source: io::Error,
    },
}

impl fmt::Display for LiveError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LiveError::PathTooLong { path } => write!(
                f,
                "{}: too long for a Unix socket (at most 107 bytes): choose a shorter TURBOWISH_DIR",
                path.display()
            ),
            LiveError::Socket { path, source } => {
                write!(f, "{}: cannot serve the live view: {source}", path.display())
            }
            LiveError::NameTaken { path } => write!(
                f,
                "{}: taken by something that is not a stale TurboWish socket of this user (left alone)",
                path.display()
            ),
            LiveError::InUse { path } => write!(
                f,
                "{}: another program is serving the live view there",
                path.display()
            ),
            LiveError::Thread { source } => {
                write!(f, "cannot start the live view thread: {source}")
            }
        }
    }
}

impl std::error::Error for LiveError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            LiveError::Socket { source, .. } | LiveError::Thread { source } => Some(source),
            _ => None,
        }
    }
}

/// Starts the endpoint for `trigger`: the socket in its directory and the
/// `turbowish-live` thread; returns the socket's path.
pub(crate) fn start(trigger: SignalHandle) -> Result<PathBuf, LiveError> {
    let _internal = turbowish_alloc::internal();
    let pid = std::process::id();
    let path = trigger.dir().join(live_socket_name(pid));
    let listener = bind_private(trigger.dir(), &path)?;
    remove_at_exit(&path, pid);
    std::thread::Builder::new()
        .name("turbowish-live".to_owned())
        .spawn(move || serve(listener, trigger))
        .map_err(|source| {
            remove_socket();
            LiveError::Thread { source }
        })?;
    Ok(path)
}

/// The most bytes of a path a `sockaddr_un` holds, without its final NUL.
const MAX_SOCKET_PATH: usize = 107;

/// Binds a listening socket that appears at `path` already mode 0600: it
/// is bound inside a fresh directory of mode 0700 in `dir` (which no other
/// user can enter), made 0600 there, and only then hard-linked to its
/// name. A stale socket of this user at the name (a process with this pid
/// that died without removing it) is replaced; anything else there is left
/// alone and reported.
fn bind_private(dir: &Path, path: &Path) -> Result<UnixListener, LiveError> {
    if path.as_os_str().len() > MAX_SOCKET_PATH {
        return Err(LiveError::PathTooLong {
            path: path.to_owned(),
        });
    }
    let socket_error = |path: &Path| {
        let path = path.to_owned();
        move |source| LiveError::Socket { path, source }
    };
    let pid = std::process::id();
    let mut private = None;
    for n in 0..100u32 {
        let candidate = dir.join(format!(".turbowish-{pid}-{n}.sock.d"));
        match std::fs::DirBuilder::new().mode(0o700).create(&candidate) {
            Ok(()) => {
                private = Some(candidate);
                break;
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(socket_error(&candidate)(e)),
        }
    }
    let Some(private) = private else {
        return Err(LiveError::Socket {
            path: dir.to_owned(),
            source: io::Error::new(
                io::ErrorKind::AlreadyExists,
                "no free name for the socket's private directory",
            ),
        });
    };
    let inner = private.join("s");
    let result = (|| {
        if inner.as_os_str().len() > MAX_SOCKET_PATH {
            return Err(LiveError::PathTooLong {
                path: inner.clone(),
            });
        }
        let listener = UnixListener::bind(&inner).map_err(socket_error(&inner))?;
        std::fs::set_permissions(&inner, std::fs::Permissions::from_mode(0o600))
            .map_err(socket_error(&inner))?;
        publish(&inner, path)?;
        Ok(listener)
    })();
    let _ = std::fs::remove_file(&inner);
    let _ = std::fs::remove_dir(&private);
    result
}

/// Gives the private socket `inner` its public name `path`, replacing a
/// stale socket there at most once.
fn publish(inner: &Path, path: &Path) -> Result<(), LiveError> {
    for attempt in 0..2 {
        let err = match std::fs::hard_link(inner, path) {
            Ok(()) => return Ok(()),
            Err(e) => e,
        };
        if err.kind() != io::ErrorKind::AlreadyExists {
            return Err(LiveError::Socket {
                path: path.to_owned(),
                source: err,
            });
        }
        if attempt > 0 || !is_stale_socket(path)? {
            return Err(LiveError::InUse {
                path: path.to_owned(),
            });
        }
        std::fs::remove_file(path).map_err(|source| LiveError::Socket {
            path: path.to_owned(),
            source,
        })?;
    }
    Err(LiveError::InUse {
        path: path.to_owned(),
    })
}

/// Whether `path` is a socket of this user that nobody listens on.
/// `NameTaken` if it is anything else; `false` if someone listens.
fn is_stale_socket(path: &Path) -> Result<bool, LiveError> {
    let taken = || LiveError::NameTaken {
        path: path.to_owned(),
    };
    let meta = std::fs::symlink_metadata(path).map_err(|_| taken())?;
    // SAFETY: geteuid cannot fail and touches no memory.
    let me = unsafe { libc::geteuid() };
    if !meta.file_type().is_socket() || meta.uid() != me {
        return Err(taken());
    }
    match UnixStream::connect(path) {
        Ok(_) => Ok(false),
        Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => Ok(true),
        Err(_) => Err(taken()),
    }
}

/// The socket to remove at exit, and the process that made it (a forked
/// child must not remove its parent's).
static SOCKET_PATH: OnceLock<CString> = OnceLock::new();
static SOCKET_PID: AtomicU32 = AtomicU32::new(0);

fn remove_at_exit(path: &Path, pid: u32) {
    let Ok(c_path) = CString::new(path.as_os_str().as_bytes()) else {
        return;
    };
    if SOCKET_PATH.set(c_path).is_ok() {
        SOCKET_PID.store(pid, Ordering::SeqCst);
        // SAFETY: `at_exit` is an `extern "C" fn()` that never unwinds; a
        // failed registration only leaves the socket behind (stale, which
        // the viewer names and the next process with this pid replaces).
        let _ = unsafe { libc::atexit(at_exit) };
    }
}

extern "C" fn at_exit() {
    remove_socket();
}

fn remove_socket() {
    if SOCKET_PID.load(Ordering::SeqCst) != std::process::id() {
        return;
    }
    if let Some(path) = SOCKET_PATH.get() {
        // SAFETY: `path` is a NUL-terminated string that lives as long as
        // the process; unlink only reads it.
        unsafe { libc::unlink(path.as_ptr()) };
        SOCKET_PID.store(0, Ordering::SeqCst);
    }
}

/// Viewers connected now.
static VIEWERS: AtomicUsize = AtomicUsize::new(0);

/// The accept loop of `turbowish-live`: blocked in `accept` until a viewer
/// comes.
fn serve(listener: UnixListener, trigger: SignalHandle) {
    let _internal = turbowish_alloc::internal();
    for stream in listener.incoming() {
        let Ok(mut stream) = stream else {
            // EMFILE and the like: do not spin on a failing accept.
            std::thread::sleep(Duration::from_millis(100));
            continue;
        };
        let _ = stream.set_write_timeout(Some(STALL));
        if !peer_is_allowed(&stream) {
            let _ = ServerFrame::Refused {
                message: "the live view serves only the user running the program".to_owned(),
            }
            .write_to(&mut stream);
            continue;
        }
        if VIEWERS.fetch_add(1, Ordering::SeqCst) >= MAX_VIEWERS {
            VIEWERS.fetch_sub(1, Ordering::SeqCst);
            let _ = ServerFrame::Refused {
                message: format!("{MAX_VIEWERS} viewers are connected already"),
            }
            .write_to(&mut stream);
            continue;
        }
        let spawned = std::thread::Builder::new()
            .name("turbowish-live-viewer".to_owned())
            .spawn(move || {
                let _internal = turbowish_alloc::internal();
                let _ = viewer(stream, trigger);
                VIEWERS.fetch_sub(1, Ordering::SeqCst);
            });
        if spawned.is_err() {
            VIEWERS.fetch_sub(1, Ordering::SeqCst);
        }
    }
}

/// The socket's mode already keeps other users out; this also refuses a
/// peer of another uid (other than root) should the mode have been
/// changed.
fn peer_is_allowed(stream: &UnixStream) -> bool {
    #[cfg(target_os = "linux")]
    {
        let mut cred = libc::ucred {
            pid: 0,
            uid: 0,
            gid: 0,
        };
        let mut len = std::mem::size_of::<libc::ucred>() as libc::socklen_t;
        // SAFETY: `cred` and `len` are valid for writes and `len` is the
        // size of `cred`, as SO_PEERCRED wants.
        let ok = unsafe {
            libc::getsockopt(
                stream.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_PEERCRED,
                (&mut cred as *mut libc::ucred).cast(),
                &mut len,
            )
        } == 0;
        // SAFETY: geteuid cannot fail and touches no memory.
        let me = unsafe { libc::geteuid() };
        ok && (cred.uid == me || cred.uid == 0)
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = stream;
        true
    }
}

/// One viewer's connection: the hello, then an update per interval, and
/// a snapshot whenever it asks.
fn viewer(mut stream: UnixStream, trigger: SignalHandle) -> Result<(), WireError> {
    let hello = ServerFrame::Hello(Hello {
        version: LIVE_VERSION,
        pid: std::process::id(),
        executable: executable(),
        snapshot_dir: trigger.dir().display().to_string(),
        interval_ms: UPDATE_INTERVAL.as_millis() as u32,
    });
    hello.write_to(&mut stream)?;
    let mut sampler = LiveSampler::new();
    loop {
        ServerFrame::Update(sampler.update()).write_to(&mut stream)?;
        let next = Instant::now() + UPDATE_INTERVAL;
        while let Some(left) = next.checked_duration_since(Instant::now()) {
            if !readable(&stream, left)? {
                break;
            }
            let _ = stream.set_read_timeout(Some(STALL));
            let body = read_frame(&mut stream, 1024)?;
            match ClientFrame::decode(&body)? {
                ClientFrame::Snapshot => request_snapshot(trigger).write_to(&mut stream)?,
            }
        }
    }
}

/// Waits up to `timeout` for `stream` to have input (or to be closed).
fn readable(stream: &UnixStream, timeout: Duration) -> io::Result<bool> {
    let mut fd = libc::pollfd {
        fd: stream.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    let ms = timeout.as_millis().clamp(1, i32::MAX as u128) as libc::c_int;
    // SAFETY: `fd` is one valid pollfd, as the count of 1 says.
    match unsafe { libc::poll(&mut fd, 1, ms) } {
        0 => Ok(false),
        n if n > 0 => Ok(true),
        _ => {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                Ok(false)
            } else {
                Err(e)
            }
        }
    }
}

/// Takes a snapshot the way `kill -USR1` does (the snapshot thread writes
/// it), and says how it went.
fn request_snapshot(trigger: SignalHandle) -> ServerFrame {
    let (written, failed) = (trigger.snapshots_written(), trigger.failures());
    if let Err(e) = signal_hook::low_level::raise(libc::SIGUSR1) {
        return ServerFrame::SnapshotFailed {
            message: format!("cannot raise SIGUSR1: {e}"),
        };
    }
    if !trigger.wait_idle(SNAPSHOT_WAIT) {
        return ServerFrame::SnapshotFailed {
            message: format!(
                "no snapshot within {} s (it may still be written)",
                SNAPSHOT_WAIT.as_secs()
            ),
        };
    }
    match trigger.last_snapshot() {
        Some(path) if trigger.snapshots_written() > written => ServerFrame::SnapshotWritten {
            path: path.display().to_string(),
        },
        _ if trigger.failures() > failed => ServerFrame::SnapshotFailed {
            message: trigger
                .last_error()
                .unwrap_or_else(|| "the snapshot failed".to_owned()),
        },
        _ => ServerFrame::SnapshotFailed {
            message: "the snapshot thread wrote nothing".to_owned(),
        },
    }
}

fn executable() -> String {
    std::fs::read_link("/proc/self/exe")
        .or_else(|_| std::env::current_exe())
        .map(|p| p.display().to_string())
        .unwrap_or_default()
}

/// What a row looked like at the previous update.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Seen {
    state: Option<TaskState>,
    live_bytes: u64,
    live_blocks: u64,
    total_bytes: u64,
    polls: u64,
    busy_ns: u64,
}

/// Builds the updates of one viewer's stream: each [`LiveSampler::update`]
/// reads the task registry joined with the allocator's counters
/// (`turbowish_trace::task::for_each_task`, the rows of `tasks()` without
/// sorting or copying them) and the resource records
/// (`turbowish_trace::sync::resources`) with their owners, and keeps what
/// it sent, so the next update carries only the rows that changed, each
/// name once, and growth and allocation rates since.
///
/// Owners come from the scan of every live TurboWish task's root cell
/// (`turbowish_trace::ownership::find`, as a counting-mode snapshot does),
/// applied with `turbowish_trace::ownership::apply`: a channel end's holder
/// is then the task whose state owns it ([`Provenance::Owns`]), not the
/// thread or task that created or last used it ([`Provenance::Recorded`]).
/// Ownership changes only channel ends' holders (a guard's holder is the
/// task that took it, recorded), so the scan is made only when a channel
/// end is among the holders of the resources sent: an update of a program
/// with no live channel end costs no scan. At 10,000 tasks the scan is
/// about 0.6 ms of CPU (`turbowish-bench`'s `live_update`, `ownership_find`).
///
/// [`Provenance::Owns`]: turbowish_snapshot::schema::Provenance::Owns
/// [`Provenance::Recorded`]: turbowish_snapshot::schema::Provenance::Recorded
///
/// Public for the cost bench (`turbowish-bench`'s `live_update`) and for
/// programs that want the figures without a socket.
///
/// ```
/// let mut sampler = turbowish_capture::LiveSampler::new();
/// let first = sampler.update();
/// assert_eq!(first.seq, 1);
/// assert!(first.rows.iter().all(|r| r.intro.is_some()));
/// ```
#[derive(Debug, Default)]
pub struct LiveSampler {
    /// Every row sent, with the update that last saw it.
    seen: HashMap<Owner, (Seen, u64), BuildHasherDefault<OwnerHasher>>,
    seq: u64,
    last: Option<Instant>,
}

impl LiveSampler {
    /// A sampler that has sent nothing yet.
    pub fn new() -> LiveSampler {
        LiveSampler::default()
    }

    /// The next update. Everything it allocates is charged to the
    /// `internal` bucket.
    pub fn update(&mut self) -> Update {
        let _internal = turbowish_alloc::internal();
        let now = Instant::now();
        let elapsed = self.last.map(|last| now - last);
        self.last = Some(now);
        let mut update = self.start(elapsed, convert::epoch_ms(SystemTime::now()));
        turbowish_trace::task::for_each_task(|row| self.row(&mut update, elapsed, &row));
        self.finish(&mut update, elapsed, &owned_resources());
        update
    }

    fn start(&mut self, elapsed: Option<Duration>, at_ms: u64) -> Update {
        self.seq += 1;
        Update {
            seq: self.seq,
            at_ms,
            elapsed_ms: elapsed.map_or(0, |d| d.as_millis() as u64),
            ..Update::default()
        }
    }

    /// Takes one row into `update`: sent if it is new or changed.
    fn row(&mut self, update: &mut Update, elapsed: Option<Duration>, row: &TaskRow<'_>) {
        let owner = convert::owner(row.owner, |_| None);
        let now = Seen {
            state: row.state.map(convert::state),
            live_bytes: row.memory.live_bytes,
            live_blocks: row.memory.live_blocks,
            total_bytes: row.memory.total_bytes,
            polls: row.polls,
            busy_ns: u64::try_from(row.busy.as_nanos()).unwrap_or(u64::MAX),
        };
        update.row_count += 1;
        update.totals.live_bytes = update.totals.live_bytes.wrapping_add(now.live_bytes);
        update.totals.live_blocks = update.totals.live_blocks.wrapping_add(now.live_blocks);
        let seq = self.seq;
        let (before, fresh) = match self.seen.entry(owner) {
            Entry::Occupied(mut e) => {
                let (before, last) = *e.get();
                if last == seq {
                    // Two rows of one owner: the first counts.
                    return;
                }
                e.insert((now, seq));
                (Some(before), false)
            }
            Entry::Vacant(e) => {
                e.insert((now, seq));
                (None, true)
            }
        };
        // A record recycled and claimed again restarts its totals.
        let new_bytes = match before {
            Some(b) => now.total_bytes.saturating_sub(b.total_bytes),
            None => now.total_bytes,
        };
        // Summed as bytes here, made a rate in `finish`.
        update.totals.alloc_rate = update.totals.alloc_rate.saturating_add(new_bytes);
        if before == Some(now) {
            return;
        }
        update.rows.push(RowUpdate {
            owner,
            intro: fresh.then(|| Intro {
                name: row.name.to_owned(),
                location: row
                    .location
                    .map(|l| format!("{}:{}:{}", l.file(), l.line(), l.column())),
            }),
            state: now.state,
            live_bytes: now.live_bytes,
            live_blocks: now.live_blocks,
            total_bytes: now.total_bytes,
            growth: turbowish_snapshot::format::delta(
                before.map_or(0, |b| b.live_bytes),
                now.live_bytes,
            ),
            alloc_rate: per_second(new_bytes, elapsed),
            polls: now.polls,
            busy_ns: now.busy_ns,
        });
    }

    /// Rates, the rows gone since the last update, and the resources.
    fn finish(
        &mut self,
        update: &mut Update,
        elapsed: Option<Duration>,
        resources: &[ResourceInfo],
    ) {
        update.totals.alloc_rate = per_second(update.totals.alloc_rate, elapsed);
        let seq = self.seq;
        self.seen.retain(|owner, (_, last)| {
            let here = *last == seq;
            if !here {
                update.gone.push(*owner);
            }
            here
        });
        update.gone.sort_unstable();
        update.resources = resources
            .iter()
            .filter(|r| !r.holders.is_empty() || !r.waiters.is_empty())
            .map(|r| LiveResource {
                id: r.id,
                kind: convert::resource_kind(r.kind),
                name: r.name.clone(),
                holders: r.holders.iter().map(live_party).collect(),
                extra_holders: r.extra_holders as u64,
                waiters: r.waiters.iter().map(live_party).collect(),
            })
            .collect();
    }
}

/// The wait-for graph with its owners applied: the resource records, and,
/// when a channel end is among the holders of a resource the update sends
/// (the only holders ownership replaces), the scan of every task's root
/// cell for the handles it holds.
fn owned_resources() -> Vec<ResourceInfo> {
    let mut graph = turbowish_trace::sync::resources();
    if graph.iter().any(needs_owners) {
        turbowish_trace::ownership::apply(&mut graph, &turbowish_trace::ownership::find());
    }
    graph
}

/// Whether ownership could change what an update says of `r`: it is sent
/// (it has a holder or a waiter) and one of its holders is a channel end.
fn needs_owners(r: &ResourceInfo) -> bool {
    use turbowish_trace::sync::Access;
    r.holders
        .iter()
        .any(|h| matches!(h.access, Access::Send | Access::Receive))
}

/// A multiplicative hash for [`Owner`] keys (a discriminant and an id, both
/// TurboWish's own numbers: nobody outside chooses them): a tenth of
/// SipHash's cost, which was a fifth of an update at 10,000 tasks.
#[derive(Debug, Default)]
struct OwnerHasher(u64);

impl Hasher for OwnerHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64(u64::from(b));
        }
    }

    fn write_u64(&mut self, v: u64) {
        self.0 = (self.0.rotate_left(5) ^ v).wrapping_mul(0x517c_c1b7_2722_0a95);
    }

    fn write_usize(&mut self, v: usize) {
        self.write_u64(v as u64);
    }

    fn write_isize(&mut self, v: isize) {
        self.write_u64(v as u64);
    }
}

/// `bytes` over `elapsed` as bytes per second; none for a first update.
fn per_second(bytes: u64, elapsed: Option<Duration>) -> u64 {
    match elapsed {
        Some(d) if !d.is_zero() => (bytes as f64 / d.as_secs_f64()).round() as u64,
        _ => 0,
    }
}

fn live_party(p: &turbowish_trace::sync::Party) -> LiveParty {
    LiveParty {
        task: convert::task_ref(p.task),
        task_name: p.task_name.clone(),
        since_ms: p.since.as_millis() as u64,
        access: convert::access(p.access),
        provenance: convert::provenance(&p.provenance),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::panic::Location;
    use turbowish_trace::task::Owner as TraceOwner;

    #[track_caller]
    fn row(owner: TraceOwner, name: &str, live: u64, total: u64, polls: u64) -> TaskRow<'_> {
        let task = matches!(owner, TraceOwner::Task(_));
        TaskRow {
            owner,
            name,
            location: task.then_some(Location::caller()),
            state: task.then_some(turbowish_trace::task::TaskState::Idle),
            tokio_id: None,
            created_at: None,
            polls,
            busy: Duration::from_micros(polls),
            future_size: None,
            root_address: None,
            memory: turbowish_alloc::Counters {
                live_bytes: live,
                live_blocks: live / 100,
                total_bytes: total,
                total_blocks: total / 100,
                peak_live_bytes: live,
            },
            spawn_scope: None,
        }
    }

    impl LiveSampler {
        /// An update of these rows and resources, `elapsed` after the
        /// previous one.
        fn build(
            &mut self,
            rows: &[TaskRow<'_>],
            resources: &[ResourceInfo],
            elapsed: Option<Duration>,
            at_ms: u64,
        ) -> Update {
            let mut update = self.start(elapsed, at_ms);
            for row in rows {
                self.row(&mut update, elapsed, row);
            }
            self.finish(&mut update, elapsed, resources);
            update
        }
    }

    #[test]
    fn updates_carry_changes_names_once_growth_rates_and_gone_rows() {
        let mut s = LiveSampler::new();
        let first = s.build(
            &[
                row(TraceOwner::Task(1), "grower", 1000, 1000, 1),
                row(TraceOwner::Task(2), "steady", 500, 500, 1),
                row(TraceOwner::Main, "main (outside tasks)", 10, 10, 0),
            ],
            &[],
            None,
            5,
        );
        assert_eq!(first.seq, 1);
        assert_eq!(first.elapsed_ms, 0);
        assert_eq!(first.row_count, 3);
        assert_eq!(first.totals.live_bytes, 1510);
        assert_eq!(first.totals.alloc_rate, 0);
        assert_eq!(first.rows.len(), 3);
        assert_eq!(
            first.rows[0].intro.as_ref().map(|i| i.name.as_str()),
            Some("grower")
        );
        let spawned_at = first.rows[0].intro.as_ref().unwrap().location.clone();
        let here = Location::caller();
        // `file:line:col` of the row's spawn (the first call of `row`).
        let spawned_at = spawned_at.unwrap();
        let (file, line_col) = spawned_at.split_once(':').unwrap();
        assert_eq!(file, here.file());
        let (line, col) = line_col.split_once(':').unwrap();
        assert!(line.parse::<u32>().unwrap() < here.line() && col.parse::<u32>().is_ok());
        assert_eq!(first.rows[2].intro.as_ref().unwrap().location, None);
        assert_eq!(first.rows[0].growth, 1000);
        assert_eq!(first.rows[0].alloc_rate, 0);

        // Half a second later: the grower grew by 3000 bytes (4000
        // allocated), the steady task is unchanged, main ended (gone).
        let second = s.build(
            &[
                row(TraceOwner::Task(1), "grower", 4000, 5000, 2),
                row(TraceOwner::Task(2), "steady", 500, 500, 1),
            ],
            &[],
            Some(Duration::from_millis(500)),
            505,
        );
        assert_eq!(second.seq, 2);
        assert_eq!(second.elapsed_ms, 500);
        assert_eq!(second.row_count, 2);
        assert_eq!(second.rows.len(), 1, "{second:?}");
        let grower = &second.rows[0];
        assert_eq!(grower.owner, Owner::Task(1));
        assert_eq!(grower.intro, None);
        assert_eq!(grower.growth, 3000);
        assert_eq!(grower.alloc_rate, 8000);
        assert_eq!(grower.polls, 2);
        assert_eq!(grower.busy_ns, 2000);
        assert_eq!(second.totals.alloc_rate, 8000);
        assert_eq!(second.totals.live_bytes, 4500);
        assert_eq!(second.gone, vec![Owner::Main]);

        // A record restarting its totals counts no negative allocation.
        let third = s.build(
            &[row(TraceOwner::Task(1), "grower", 100, 100, 3)],
            &[],
            Some(Duration::from_secs(1)),
            1505,
        );
        assert_eq!(third.rows[0].growth, -3900);
        assert_eq!(third.rows[0].alloc_rate, 0);
        assert_eq!(third.gone, vec![Owner::Task(2)]);
    }

    #[test]
    fn only_channel_ends_among_the_holders_call_for_the_ownership_scan() {
        let party = |access| turbowish_trace::sync::Party {
            task: turbowish_trace::sync::TaskRef::Thread(1),
            task_name: "thread #1 (outside tasks)".to_owned(),
            frames: Default::default(),
            location: Location::caller(),
            since: Duration::ZERO,
            access,
            movable: false,
            parked_in: None,
            provenance: turbowish_trace::sync::Provenance::Recorded,
            slot: Some(0),
        };
        let resource = |holders, waiters| ResourceInfo {
            id: 1,
            kind: turbowish_trace::sync::ResourceKind::Channel,
            name: "jobs".to_owned(),
            location: Location::caller(),
            holders,
            extra_holders: 0,
            waiters,
            permits: None,
            owners: Vec::new(),
        };
        use turbowish_trace::sync::Access;
        assert!(needs_owners(&resource(
            vec![party(Access::Send)],
            Vec::new()
        )));
        assert!(needs_owners(&resource(
            vec![party(Access::Receive)],
            Vec::new()
        )));
        // A guard's holder is the task that took it: ownership keeps it.
        assert!(!needs_owners(&resource(
            vec![party(Access::Exclusive)],
            vec![party(Access::Exclusive)]
        )));
        // Waiters alone: nobody to replace.
        assert!(!needs_owners(&resource(
            Vec::new(),
            vec![party(Access::Send)]
        )));
    }

    #[test]
    fn only_resources_with_holders_or_waiters_are_sent() {
        let party = turbowish_trace::sync::Party {
            task: turbowish_trace::sync::TaskRef::Task(1),
            task_name: "writer".to_owned(),
            frames: Default::default(),
            location: Location::caller(),
            since: Duration::from_millis(2500),
            access: turbowish_trace::sync::Access::Exclusive,
            movable: false,
            parked_in: None,
            provenance: turbowish_trace::sync::Provenance::Recorded,
            slot: Some(0),
        };
        let resource = |id, holders: Vec<turbowish_trace::sync::Party>| ResourceInfo {
            id,
            kind: turbowish_trace::sync::ResourceKind::Mutex,
            name: format!("lock-{id}"),
            location: Location::caller(),
            holders,
            extra_holders: 0,
            waiters: Vec::new(),
            permits: None,
            owners: Vec::new(),
        };
        let mut s = LiveSampler::new();
        let u = s.build(
            &[],
            &[resource(1, vec![party]), resource(2, Vec::new())],
            None,
            0,
        );
        assert_eq!(
            u.resources,
            vec![LiveResource {
                id: 1,
                kind: turbowish_snapshot::schema::ResourceKind::Mutex,
                name: "lock-1".to_owned(),
                holders: vec![LiveParty {
                    task: turbowish_snapshot::schema::TaskRef::Task(1),
                    task_name: "writer".to_owned(),
                    since_ms: 2500,
                    access: turbowish_snapshot::schema::Access::Exclusive,
                    provenance: turbowish_snapshot::schema::Provenance::Recorded,
                }],
                extra_holders: 0,
                waiters: Vec::new(),
            }]
        );
    }
}
