//! The live socket's name when something has it already: a regular file
//! is left alone and named in the error; a stale socket (a process with
//! this pid that died without removing it) is replaced. One test: the
//! endpoint is process-wide.

use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;

use turbowish_capture::{LiveError, SignalConfig, SnapshotError};
use turbowish_snapshot::live::{ServerFrame, LIVE_VERSION};

#[global_allocator]
static ALLOC: turbowish_alloc::TurboWish = turbowish_alloc::TurboWish::system();

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("turbowish-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn a_file_is_left_alone_and_a_stale_socket_is_replaced() {
    let dir = temp_dir("live-stale");
    let socket = dir.join(turbowish_capture::live_socket_name(std::process::id()));

    // A regular file at the name: refused, untouched, nothing left behind.
    std::fs::write(&socket, b"mine").unwrap();
    let err = SignalConfig::new()
        .dir(&dir)
        .live(true)
        .install()
        .unwrap_err();
    assert!(
        matches!(&err, SnapshotError::Live(LiveError::NameTaken { path }) if *path == socket),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        format!(
            "{}: taken by something that is not a stale TurboWish socket of this user (left alone)",
            socket.display()
        )
    );
    assert_eq!(std::fs::read(&socket).unwrap(), b"mine");
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 1);

    // A stale socket: bound, then its listener closed (connect is refused).
    std::fs::remove_file(&socket).unwrap();
    drop(UnixListener::bind(&socket).unwrap());
    std::fs::set_permissions(&socket, std::fs::Permissions::from_mode(0o644)).unwrap();
    assert!(UnixStream::connect(&socket).is_err());

    // The trigger was installed by the first attempt; this one starts the
    // endpoint in place of the stale socket, 0600.
    let trigger = SignalConfig::new().dir(&dir).live(true).install().unwrap();
    assert_eq!(trigger.live_socket(), Some(socket.as_path()));
    let mode = std::fs::metadata(&socket).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let mut stream = UnixStream::connect(&socket).unwrap();
    let hello = ServerFrame::read_hello(&mut stream).unwrap();
    assert_eq!(hello.version, LIVE_VERSION);
    assert_eq!(hello.pid, std::process::id());
}
