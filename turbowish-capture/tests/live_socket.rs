//! The live endpoint in this process: the socket's name, type, owner and
//! mode 0600 (and, as root where `setuid` works, a second user refused at
//! `connect`), the hello, an update naming a task with its memory, and a
//! snapshot request that writes the file as `SIGUSR1` does. One test: the
//! endpoint is process-wide.

use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};

use turbowish_capture::SignalConfig;
use turbowish_snapshot::live::{
    read_frame, ClientFrame, ServerFrame, LIVE_VERSION, MAX_FRAME_BYTES,
};
use turbowish_snapshot::schema::Owner;
use turbowish_snapshot::Snapshot;

#[global_allocator]
static ALLOC: turbowish_alloc::TurboWish = turbowish_alloc::TurboWish::system();

/// A directory anyone may enter (0755), so only the socket's own mode
/// keeps other users out.
fn open_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("turbowish-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    dir
}

fn next(stream: &mut UnixStream) -> ServerFrame {
    let body = read_frame(stream, MAX_FRAME_BYTES).expect("a frame");
    ServerFrame::decode(&body).expect("a frame of this version")
}

#[test]
fn the_endpoint_serves_its_owner_only_and_writes_snapshots_on_request() {
    let dir = open_dir("live");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    runtime.spawn(async move {
        turbowish_trace::spawn("holder", async move {
            let held = vec![7u8; 256 << 10];
            ready_tx.send(()).unwrap();
            std::future::pending::<()>().await;
            drop(held);
        });
    });
    ready_rx.recv().unwrap();

    let trigger = SignalConfig::new().dir(&dir).live(true).install().unwrap();
    let socket = dir.join(format!("turbowish-{}.sock", std::process::id()));
    assert_eq!(trigger.live_socket(), Some(socket.as_path()));

    // A socket of this user, 0600, and nothing else left in the directory
    // (the private directory it was bound in is gone).
    let meta = std::fs::symlink_metadata(&socket).unwrap();
    assert!(meta.file_type().is_socket());
    assert_eq!(meta.mode() & 0o7777, 0o600, "mode {:o}", meta.mode());
    // SAFETY: geteuid cannot fail.
    assert_eq!(meta.uid(), unsafe { libc::geteuid() });
    let names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, vec![socket.file_name().unwrap().to_string_lossy()]);

    // Installing again with the live view on is the same endpoint.
    let again = SignalConfig::new().dir(&dir).live(true).install().unwrap();
    assert_eq!(again.live_socket(), Some(socket.as_path()));

    second_user_is_refused(&socket);

    let mut stream = UnixStream::connect(&socket).unwrap();
    let ServerFrame::Hello(hello) = next(&mut stream) else {
        panic!("no hello first")
    };
    assert_eq!(hello.version, LIVE_VERSION);
    assert_eq!(hello.pid, std::process::id());
    assert_eq!(Path::new(&hello.snapshot_dir), dir);
    assert_eq!(hello.interval_ms, 1000);

    let ServerFrame::Update(first) = next(&mut stream) else {
        panic!("no update after the hello")
    };
    assert_eq!(first.seq, 1);
    let holder = first
        .rows
        .iter()
        .find(|r| r.intro.as_ref().is_some_and(|i| i.name == "holder"))
        .expect("the holder task's row");
    assert!(matches!(holder.owner, Owner::Task(_)));
    assert!(holder.live_bytes >= 256 << 10, "{holder:?}");
    assert_eq!(holder.growth, holder.live_bytes as i64);
    assert!(first.rows.iter().any(|r| r.owner == Owner::Main));
    assert_eq!(first.row_count, first.rows.len() as u64);

    // A request: the snapshot thread writes the file (counted as a
    // SIGUSR1 snapshot), and the viewer is told where.
    let written = trigger.snapshots_written();
    ClientFrame::Snapshot.write_to(&mut stream).unwrap();
    let path = loop {
        match next(&mut stream) {
            ServerFrame::Update(u) => assert!(u.seq > 1),
            ServerFrame::SnapshotWritten { path } => break PathBuf::from(path),
            other => panic!("unexpected {other:?}"),
        }
    };
    assert_eq!(trigger.snapshots_written(), written + 1);
    assert_eq!(trigger.last_snapshot().as_deref(), Some(path.as_path()));
    assert_eq!(path.parent(), Some(dir.as_path()));
    let mode = std::fs::metadata(&path).unwrap().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let snapshot = Snapshot::load(&path).unwrap();
    assert!(snapshot.tasks.iter().any(|t| t.name == "holder"));

    // Updates keep coming; the second names no row a second time.
    let ServerFrame::Update(later) = next(&mut stream) else {
        panic!("no update")
    };
    assert!(later.rows.iter().all(|r| r.intro.is_none()), "{later:?}");

    // A request this version does not know ends the connection.
    stream.write_all_frame(&[99]);
    let body = read_frame(&mut stream, MAX_FRAME_BYTES);
    let closed = match body {
        Err(_) => true,
        Ok(body) => {
            // An update sent before the bad frame was read; then the end.
            assert!(matches!(
                ServerFrame::decode(&body),
                Ok(ServerFrame::Update(_))
            ));
            read_frame(&mut stream, MAX_FRAME_BYTES).is_err()
        }
    };
    assert!(closed, "a bad request left the connection open");

    drop(stream);
    std::fs::remove_file(&path).unwrap();
    runtime.shutdown_background();
}

trait WriteFrame {
    fn write_all_frame(&mut self, body: &[u8]);
}

impl WriteFrame for UnixStream {
    fn write_all_frame(&mut self, body: &[u8]) {
        use std::io::Write;
        self.write_all(&(body.len() as u32).to_le_bytes()).unwrap();
        self.write_all(body).unwrap();
    }
}

/// As root: a child that becomes `nobody` cannot connect (EACCES from the
/// socket's mode). Without root, or where `setuid` is not allowed, the
/// mode check above is the test.
fn second_user_is_refused(socket: &Path) {
    use std::os::unix::ffi::OsStrExt;
    use std::os::unix::process::CommandExt;

    // SAFETY: geteuid cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("not root: no second user to try; the socket's mode 0600 is checked instead");
        return;
    }
    // SAFETY: sockaddr_un is plain data; all zeros is a valid value.
    let mut addr: libc::sockaddr_un = unsafe { std::mem::zeroed() };
    addr.sun_family = libc::AF_UNIX as libc::sa_family_t;
    for (dst, &src) in addr.sun_path.iter_mut().zip(socket.as_os_str().as_bytes()) {
        *dst = src as libc::c_char;
    }
    const NOBODY: libc::uid_t = 65534;
    let mut child = std::process::Command::new("/bin/true");
    // SAFETY: the closure runs in the forked child before exec and calls
    // only async-signal-safe functions (setgroups, setgid, setuid, socket,
    // connect) on memory prepared before the fork; it allocates nothing.
    unsafe {
        child.pre_exec(move || {
            if libc::setgroups(0, std::ptr::null()) != 0
                || libc::setgid(NOBODY) != 0
                || libc::setuid(NOBODY) != 0
            {
                // Marks "could not become nobody" apart from a refusal.
                return Err(std::io::Error::from_raw_os_error(libc::EPERM));
            }
            let fd = libc::socket(libc::AF_UNIX, libc::SOCK_STREAM, 0);
            if fd < 0 {
                return Err(std::io::Error::last_os_error());
            }
            let len = std::mem::size_of::<libc::sockaddr_un>() as libc::socklen_t;
            if libc::connect(fd, (&addr as *const libc::sockaddr_un).cast(), len) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    match child.spawn() {
        Err(e) if e.raw_os_error() == Some(libc::EACCES) => {}
        Err(e) if e.raw_os_error() == Some(libc::EPERM) => {
            eprintln!("setuid is not allowed here: the socket's mode 0600 is checked instead");
        }
        Err(e) => panic!("the second user's connect failed otherwise: {e}"),
        Ok(mut c) => {
            let _ = c.wait();
            panic!("user nobody connected to the live socket");
        }
    }
}
