//! Snapshot files: `turbowish-<pid>-<seq>.json` in a directory, complete
//! or absent, never through a symlink (the writer is
//! `turbowish_snapshot::atomic_write`).

use std::fmt;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use turbowish_snapshot::atomic_write::{write_new_in, Directory, WriteError};
use turbowish_snapshot::Snapshot;

use crate::capture::snapshot;
use crate::live::LiveError;

/// Why a snapshot could not be written, or the signal trigger not installed.
/// Its `Display` is one line naming the path involved.
#[derive(Debug)]
#[non_exhaustive]
pub enum SnapshotError {
    /// The file could not be written (the directory, a free name, the
    /// temporary file, the write, or publishing it); nothing was left
    /// behind.
    File(WriteError),
    /// The `SIGUSR1` handler could not be registered.
    Signal {
        /// What the system said.
        source: io::Error,
    },
    /// The snapshot thread could not be started.
    Thread {
        /// What the system said.
        source: io::Error,
    },
    /// The signal trigger is already installed, writing to another
    /// directory.
    AlreadyInstalled {
        /// The directory the installed trigger writes to.
        dir: PathBuf,
    },
    /// An environment variable holds a value that does not parse.
    Config {
        /// The variable.
        var: &'static str,
        /// Its value.
        value: String,
        /// What it should hold.
        expected: &'static str,
    },
    /// The live endpoint could not be started.
    Live(LiveError),
}

impl fmt::Display for SnapshotError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SnapshotError::File(e) => e.fmt(f),
            SnapshotError::Signal { source } => {
                write!(f, "cannot install the SIGUSR1 handler: {source}")
            }
            SnapshotError::Thread { source } => {
                write!(f, "cannot start the snapshot thread: {source}")
            }
            SnapshotError::AlreadyInstalled { dir } => write!(
                f,
                "the snapshot trigger is already installed, writing to {}",
                dir.display()
            ),
            SnapshotError::Config {
                var,
                value,
                expected,
            } => write!(f, "{var}={value:?}: expected {expected}"),
            SnapshotError::Live(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for SnapshotError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            SnapshotError::File(e) => e.source(),
            SnapshotError::Signal { source } | SnapshotError::Thread { source } => Some(source),
            SnapshotError::AlreadyInstalled { .. } | SnapshotError::Config { .. } => None,
            SnapshotError::Live(e) => e.source(),
        }
    }
}

impl From<WriteError> for SnapshotError {
    fn from(e: WriteError) -> SnapshotError {
        SnapshotError::File(e)
    }
}

/// Takes a [`snapshot`] and writes it to `dir` as
/// `turbowish-<pid>-<seq>.json`; returns the file's path.
///
/// `seq` counts up across the process (names that exist are skipped), so
/// files sort in the order they were taken. The file is written to a
/// temporary name in the same directory (created exclusively, mode 0600),
/// synced, and renamed into place: readers see a complete file or none. A
/// name taken by anything (a symlink included, dangling or not) is skipped,
/// checked when the name is chosen and again just before the rename; a
/// symlink created in the instant between would be replaced by the rename,
/// never followed. On error nothing is left behind.
///
/// ```
/// let dir = std::env::temp_dir().join(format!("turbowish-doc-{}", std::process::id()));
/// std::fs::create_dir_all(&dir).unwrap();
/// let path = turbowish_capture::snapshot_to_dir(&dir).unwrap();
/// let back = turbowish_snapshot::Snapshot::load(&path).unwrap();
/// assert_eq!(back.process.pid, std::process::id());
/// # std::fs::remove_dir_all(&dir).unwrap();
/// ```
pub fn snapshot_to_dir(dir: impl AsRef<Path>) -> Result<PathBuf, SnapshotError> {
    let _internal = turbowish_alloc::internal();
    write_to_dir(&snapshot(), dir.as_ref())
}

/// Writes `snapshot` to `dir` the way [`snapshot_to_dir`] does.
pub fn write_to_dir(snapshot: &Snapshot, dir: &Path) -> Result<PathBuf, SnapshotError> {
    let _internal = turbowish_alloc::internal();
    write_into(snapshot, &Directory::open(dir)?)
}

/// The snapshot directory: `dir`, else `$TURBOWISH_DIR`, else `.`, made
/// absolute and checked to be a directory.
pub(crate) fn resolve_dir(dir: Option<PathBuf>) -> Result<PathBuf, SnapshotError> {
    let dir = dir.unwrap_or_else(|| {
        std::env::var_os("TURBOWISH_DIR")
            .filter(|d| !d.is_empty())
            .map_or_else(|| PathBuf::from("."), PathBuf::from)
    });
    let dir_error = |source| {
        SnapshotError::File(WriteError::Dir {
            dir: dir.clone(),
            source,
        })
    };
    let absolute = std::path::absolute(&dir).map_err(dir_error)?;
    if !std::fs::metadata(&absolute).map_err(dir_error)?.is_dir() {
        return Err(dir_error(io::ErrorKind::NotADirectory.into()));
    }
    Ok(absolute)
}

/// Where the trigger (and the budget watcher) write: the directory opened
/// at install, so that renaming its path or putting a symlink to elsewhere
/// in its place does not move later snapshots. If that directory is
/// deleted, the path is opened again at the next snapshot (an operator's
/// `rm -r dir; mkdir dir` must not end snapshots for good).
#[derive(Debug)]
pub(crate) struct SnapshotDir {
    path: PathBuf,
    /// A `Mutex`: locked once per snapshot, by the one thread writing.
    open: std::sync::Mutex<Directory>,
}

impl SnapshotDir {
    pub(crate) fn open(path: PathBuf) -> Result<SnapshotDir, SnapshotError> {
        Ok(SnapshotDir {
            open: std::sync::Mutex::new(Directory::open(&path)?),
            path,
        })
    }

    /// Takes a snapshot and writes it here.
    pub(crate) fn write_snapshot(&self) -> Result<PathBuf, SnapshotError> {
        let _internal = turbowish_alloc::internal();
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        if open.is_deleted() {
            *open = Directory::open(&self.path)?;
        }
        write_into(&snapshot(), &open)
    }
}

fn write_into(snapshot: &Snapshot, dir: &Directory) -> Result<PathBuf, SnapshotError> {
    let pid = std::process::id();
    let path = write_new_in(
        dir,
        |seq| format!("turbowish-{pid}-{seq}.json"),
        |file| {
            let mut out = BufWriter::new(file);
            snapshot.to_writer(&mut out)?;
            out.flush()
        },
    )?;
    Ok(path)
}
