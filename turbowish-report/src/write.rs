//! Writing snapshot files: complete or absent, never through a symlink.

use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::capture::snapshot;
use crate::schema::Snapshot;

/// Why a snapshot could not be written, or the signal trigger not installed.
/// Its `Display` is one line naming the path involved.
#[derive(Debug)]
#[non_exhaustive]
pub enum SnapshotError {
    /// The target directory could not be used (missing, not a directory,
    /// not searchable).
    Dir {
        /// The directory.
        dir: PathBuf,
        /// What the system said.
        source: io::Error,
    },
    /// No free file name: every candidate name tried already exists.
    NoFreeName {
        /// The directory.
        dir: PathBuf,
    },
    /// The temporary file could not be created.
    CreateTemp {
        /// The temporary file.
        path: PathBuf,
        /// What the system said.
        source: io::Error,
    },
    /// Writing or syncing the temporary file failed (it was removed).
    Write {
        /// The temporary file.
        path: PathBuf,
        /// What the system said.
        source: io::Error,
    },
    /// Renaming the complete temporary file to its final name failed (it
    /// was removed).
    Rename {
        /// The temporary file.
        from: PathBuf,
        /// The final name.
        to: PathBuf,
        /// What the system said.
        source: io::Error,
    },
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
}

impl fmt::Display for SnapshotError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SnapshotError::Dir { dir, source } => {
                write!(
                    f,
                    "{}: cannot write snapshots here: {source}",
                    dir.display()
                )
            }
            SnapshotError::NoFreeName { dir } => write!(
                f,
                "{}: no free snapshot file name (too many existing files)",
                dir.display()
            ),
            SnapshotError::CreateTemp { path, source } => {
                write!(f, "{}: cannot create: {source}", path.display())
            }
            SnapshotError::Write { path, source } => {
                write!(f, "{}: cannot write: {source}", path.display())
            }
            SnapshotError::Rename { from, to, source } => write!(
                f,
                "{}: cannot publish as {}: {source}",
                from.display(),
                to.display()
            ),
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
        }
    }
}

impl std::error::Error for SnapshotError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            SnapshotError::Dir { source, .. }
            | SnapshotError::CreateTemp { source, .. }
            | SnapshotError::Write { source, .. }
            | SnapshotError::Rename { source, .. }
            | SnapshotError::Signal { source }
            | SnapshotError::Thread { source } => Some(source),
            SnapshotError::NoFreeName { .. } | SnapshotError::AlreadyInstalled { .. } => None,
        }
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
/// let path = turbowish_report::snapshot_to_dir(&dir).unwrap();
/// let back = turbowish_report::Snapshot::load(&path).unwrap();
/// assert_eq!(back.process.pid, std::process::id());
/// # std::fs::remove_dir_all(&dir).unwrap();
/// ```
pub fn snapshot_to_dir(dir: impl AsRef<Path>) -> Result<PathBuf, SnapshotError> {
    let _internal = turbowish_alloc::internal();
    snapshot().write_to_dir(dir)
}

impl Snapshot {
    /// Writes this snapshot to `dir` the way [`snapshot_to_dir`] does.
    pub fn write_to_dir(&self, dir: impl AsRef<Path>) -> Result<PathBuf, SnapshotError> {
        let _internal = turbowish_alloc::internal();
        write_file(dir.as_ref(), |file| {
            let mut out = BufWriter::new(file);
            self.to_writer(&mut out)?;
            out.flush()
        })
    }
}

/// Process-wide sequence of snapshot file numbers.
static SEQ: AtomicU64 = AtomicU64::new(1);

/// Candidate names tried before giving up with `NoFreeName`.
const MAX_ATTEMPTS: u32 = 10_000;

/// Writes a file through `write`, atomically, under the next free name.
fn write_file(
    dir: &Path,
    write: impl FnOnce(&mut File) -> io::Result<()>,
) -> Result<PathBuf, SnapshotError> {
    let pid = std::process::id();
    let (final_path, temp_path, mut file) = create_temp(dir, pid)?;
    let written = write(&mut file).and_then(|()| file.sync_all());
    drop(file);
    if let Err(source) = written {
        let _ = std::fs::remove_file(&temp_path);
        return Err(SnapshotError::Write {
            path: temp_path,
            source,
        });
    }
    // Publish under the first free name with link(2), which fails if the
    // name exists (a symlink included, never followed): no window in which
    // a file appearing at the name could be replaced. File systems without
    // hard links fall back to check-then-rename.
    let mut final_path = final_path;
    let mut attempts = 0;
    loop {
        match publish(&temp_path, &final_path) {
            Ok(()) => break,
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(source) => {
                let _ = std::fs::remove_file(&temp_path);
                return Err(SnapshotError::Rename {
                    from: temp_path,
                    to: final_path,
                    source,
                });
            }
        }
        attempts += 1;
        if attempts >= MAX_ATTEMPTS {
            let _ = std::fs::remove_file(&temp_path);
            return Err(SnapshotError::NoFreeName {
                dir: dir.to_owned(),
            });
        }
        final_path = dir.join(file_name(pid, SEQ.fetch_add(1, Ordering::Relaxed)));
    }
    // Make the rename itself durable; a directory that cannot be synced
    // (some file systems refuse) still holds a complete file.
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(final_path)
}

/// Picks the next free final name and creates its temporary file.
fn create_temp(dir: &Path, pid: u32) -> Result<(PathBuf, PathBuf, File), SnapshotError> {
    let dir_error = |source| SnapshotError::Dir {
        dir: dir.to_owned(),
        source,
    };
    let meta = std::fs::metadata(dir).map_err(dir_error)?;
    if !meta.is_dir() {
        return Err(dir_error(io::Error::from(io::ErrorKind::NotADirectory)));
    }
    for _ in 0..MAX_ATTEMPTS {
        let seq = SEQ.fetch_add(1, Ordering::Relaxed);
        let final_path = dir.join(file_name(pid, seq));
        if exists(&final_path).map_err(dir_error)? {
            continue;
        }
        let temp_path = dir.join(format!(".turbowish-{pid}-{seq}.json.tmp"));
        match OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(&temp_path)
        {
            Ok(file) => return Ok((final_path, temp_path, file)),
            // Left by another process with our pid (a container), or a
            // crash: never touch it, take the next number.
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(source) => {
                return Err(SnapshotError::CreateTemp {
                    path: temp_path,
                    source,
                })
            }
        }
    }
    Err(SnapshotError::NoFreeName {
        dir: dir.to_owned(),
    })
}

fn file_name(pid: u32, seq: u64) -> String {
    format!("turbowish-{pid}-{seq}.json")
}

/// Whether anything (a symlink included, dangling or not) has this name.
fn exists(path: &Path) -> io::Result<bool> {
    match std::fs::symlink_metadata(path) {
        Ok(_) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e),
    }
}

/// Gives the complete temporary file its final name, unless that name is
/// taken (`AlreadyExists`). On success the temporary name is gone.
fn publish(temp: &Path, target: &Path) -> io::Result<()> {
    match std::fs::hard_link(temp, target) {
        Ok(()) => {
            let _ = std::fs::remove_file(temp);
            Ok(())
        }
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Err(e),
        // No hard links here (some FUSE or FAT file systems): the name is
        // checked, then renamed to, with a window between the two.
        Err(_) => {
            if exists(target)? {
                return Err(io::ErrorKind::AlreadyExists.into());
            }
            std::fs::rename(temp, target)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_dir(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("turbowish-write-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn entries(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn a_failed_write_leaves_nothing_and_names_the_temp_file() {
        let dir = temp_dir("fail");
        let err = write_file(&dir, |file| {
            file.write_all(b"{\"format_version\": 1, \"partial")?;
            Err(io::Error::other("disk full"))
        })
        .unwrap_err();
        match &err {
            SnapshotError::Write { path, source } => {
                assert_eq!(path.parent(), Some(dir.as_path()));
                assert_eq!(source.to_string(), "disk full");
            }
            other => panic!("expected a write error, got {other:?}"),
        }
        assert!(err
            .to_string()
            .ends_with(".json.tmp: cannot write: disk full"));
        assert_eq!(entries(&dir), Vec::<String>::new());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_missing_directory_or_a_file_is_a_dir_error() {
        let base = temp_dir("missing");
        let missing = base.join("not-there");
        let err = write_file(&missing, |_| Ok(())).unwrap_err();
        assert!(
            matches!(&err, SnapshotError::Dir { dir, source }
                if *dir == missing && source.kind() == io::ErrorKind::NotFound),
            "{err:?}"
        );
        let file = base.join("a-file");
        std::fs::write(&file, b"").unwrap();
        let err = write_file(&file, |_| Ok(())).unwrap_err();
        assert!(
            matches!(&err, SnapshotError::Dir { dir, source }
                if *dir == file && source.kind() == io::ErrorKind::NotADirectory),
            "{err:?}"
        );
        std::fs::remove_dir_all(&base).unwrap();
    }
}
