//! The viewer's end of the socket: finding the program's endpoint,
//! connecting, the hello, then frames until the program goes.

use std::fmt;
use std::io;
use std::os::unix::fs::FileTypeExt;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};

use turbowish_snapshot::live::{
    read_frame, ClientFrame, Hello, ServerFrame, WireError, MAX_FRAME_BYTES,
};

/// Where to find the program's endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// The endpoint of process `pid`: `turbowish-<pid>.sock` in `dir`.
    Pid {
        /// The program's process id.
        pid: u32,
        /// Its snapshot directory (`$TURBOWISH_DIR`, else `.`).
        dir: PathBuf,
    },
    /// The one endpoint in `dir`.
    Only {
        /// The snapshot directory searched.
        dir: PathBuf,
    },
    /// A socket by path.
    Socket(PathBuf),
}

/// Why the viewer could not reach the program, or lost it. Its `Display`
/// is one line.
#[derive(Debug)]
#[non_exhaustive]
pub enum ConnectError {
    /// No socket at the path.
    NoEndpoint {
        /// The path looked at.
        path: PathBuf,
        /// The process asked for, and whether it runs.
        pid: Option<(u32, bool)>,
    },
    /// No `turbowish-*.sock` in the directory.
    NoneFound {
        /// The directory.
        dir: PathBuf,
    },
    /// Several endpoints in the directory, and no `--pid` to choose.
    Several {
        /// The directory.
        dir: PathBuf,
        /// The pids their names give.
        pids: Vec<u32>,
    },
    /// A socket nobody listens on: its program ended without removing it.
    Stale {
        /// The socket.
        path: PathBuf,
    },
    /// The socket belongs to another user.
    PermissionDenied {
        /// The socket.
        path: PathBuf,
    },
    /// The path is not a socket.
    NotASocket {
        /// The path.
        path: PathBuf,
    },
    /// Connecting failed otherwise.
    Io {
        /// The socket.
        path: PathBuf,
        /// What the system said.
        source: io::Error,
    },
    /// The program refused this viewer.
    Refused {
        /// The socket.
        path: PathBuf,
        /// The program's reason.
        message: String,
    },
    /// The stream did not start with a hello this viewer reads (another
    /// version, or not a TurboWish endpoint).
    Handshake {
        /// The socket.
        path: PathBuf,
        /// What was wrong.
        source: WireError,
    },
}

impl fmt::Display for ConnectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConnectError::NoEndpoint {
                path,
                pid: Some((pid, false)),
            } => write!(
                f,
                "no process {pid} is running (and no live endpoint at {})",
                path.display()
            ),
            ConnectError::NoEndpoint { path, .. } => write!(
                f,
                "no live endpoint at {}: run the program with TURBOWISH_LIVE=1 (and this TURBOWISH_DIR), or give --socket PATH",
                path.display()
            ),
            ConnectError::NoneFound { dir } => write!(
                f,
                "no live endpoint (turbowish-<pid>.sock) in {}: run the program with TURBOWISH_LIVE=1, or give --pid N or --socket PATH",
                dir.display()
            ),
            ConnectError::Several { dir, pids } => {
                let pids: Vec<String> = pids.iter().map(u32::to_string).collect();
                write!(
                    f,
                    "several programs serve the live view in {} (pids {}): choose one with --pid N",
                    dir.display(),
                    pids.join(", ")
                )
            }
            ConnectError::Stale { path } => write!(
                f,
                "{}: stale socket: no program is listening (it ended without removing it; remove the file)",
                path.display()
            ),
            ConnectError::PermissionDenied { path } => write!(
                f,
                "{}: permission denied: the live view serves only the user running the program",
                path.display()
            ),
            ConnectError::NotASocket { path } => {
                write!(f, "{}: not a socket", path.display())
            }
            ConnectError::Io { path, source } => {
                write!(f, "{}: cannot connect: {source}", path.display())
            }
            ConnectError::Refused { path, message } => {
                write!(f, "{}: the program refused the viewer: {message}", path.display())
            }
            ConnectError::Handshake { path, source } => write!(f, "{}: {source}", path.display()),
        }
    }
}

impl std::error::Error for ConnectError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ConnectError::Io { source, .. } => Some(source),
            ConnectError::Handshake { source, .. } => Some(source),
            _ => None,
        }
    }
}

impl Target {
    /// The socket this target names. [`Target::Only`] looks in its
    /// directory for the one `turbowish-<pid>.sock`.
    pub fn socket(&self) -> Result<PathBuf, ConnectError> {
        match self {
            Target::Pid { pid, dir } => Ok(dir.join(format!("turbowish-{pid}.sock"))),
            Target::Socket(path) => Ok(path.clone()),
            Target::Only { dir } => {
                let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir(dir)
                    .map_err(|source| ConnectError::Io {
                        path: dir.clone(),
                        source,
                    })?
                    .filter_map(Result::ok)
                    .filter_map(|e| {
                        let name = e.file_name();
                        let pid = name
                            .to_str()?
                            .strip_prefix("turbowish-")?
                            .strip_suffix(".sock")?
                            .parse()
                            .ok()?;
                        e.file_type().ok()?.is_socket().then(|| (pid, e.path()))
                    })
                    .collect();
                found.sort();
                match found.len() {
                    0 => Err(ConnectError::NoneFound { dir: dir.clone() }),
                    1 => Ok(found.remove(0).1),
                    _ => Err(ConnectError::Several {
                        dir: dir.clone(),
                        pids: found.into_iter().map(|(pid, _)| pid).collect(),
                    }),
                }
            }
        }
    }
}

/// A connection to a program's live endpoint, past its hello.
#[derive(Debug)]
pub struct Connection {
    stream: UnixStream,
    /// The socket.
    pub path: PathBuf,
    /// The program's hello.
    pub hello: Hello,
}

impl Connection {
    /// Connects to the endpoint `target` names and reads its hello.
    pub fn open(target: &Target) -> Result<Connection, ConnectError> {
        let path = target.socket()?;
        let pid = match target {
            Target::Pid { pid, .. } => Some(*pid),
            _ => None,
        };
        Connection::connect(&path, pid)
    }

    fn connect(path: &Path, pid: Option<u32>) -> Result<Connection, ConnectError> {
        let owned = || path.to_owned();
        let mut stream = match UnixStream::connect(path) {
            Ok(s) => s,
            Err(e) => {
                return Err(match e.kind() {
                    io::ErrorKind::NotFound => ConnectError::NoEndpoint {
                        path: owned(),
                        pid: pid.map(|p| (p, Path::new(&format!("/proc/{p}")).exists())),
                    },
                    io::ErrorKind::ConnectionRefused => match std::fs::symlink_metadata(path) {
                        Ok(m) if !m.file_type().is_socket() => {
                            ConnectError::NotASocket { path: owned() }
                        }
                        _ => ConnectError::Stale { path: owned() },
                    },
                    io::ErrorKind::PermissionDenied => {
                        ConnectError::PermissionDenied { path: owned() }
                    }
                    _ => ConnectError::Io {
                        path: owned(),
                        source: e,
                    },
                })
            }
        };
        let hello = ServerFrame::read_hello(&mut stream).map_err(|source| match source {
            WireError::Refused(message) => ConnectError::Refused {
                path: owned(),
                message,
            },
            source => ConnectError::Handshake {
                path: owned(),
                source,
            },
        })?;
        Ok(Connection {
            stream,
            path: owned(),
            hello,
        })
    }

    /// The next frame from the program; [`WireError::Closed`] when it has
    /// gone.
    pub fn next_frame(&mut self) -> Result<ServerFrame, WireError> {
        let body = read_frame(&mut self.stream, MAX_FRAME_BYTES)?;
        ServerFrame::decode(&body)
    }

    /// Asks the program for a snapshot file.
    pub fn request_snapshot(&mut self) -> io::Result<()> {
        ClientFrame::Snapshot.write_to(&mut self.stream)
    }

    /// A second handle on the same connection (one reads, one writes).
    pub fn try_clone(&self) -> io::Result<Connection> {
        Ok(Connection {
            stream: self.stream.try_clone()?,
            path: self.path.clone(),
            hello: self.hello.clone(),
        })
    }
}
