//! Files written complete or absent: the bytes go to a temporary file
//! beside the target (created exclusively, mode 0600, never through a
//! symlink), are synced, and only then get their final name. One writer
//! serves both sides: the CLI's outputs replace their target
//! ([`write_atomic`]), snapshot files take a fresh name ([`write_new`]).

use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU64, Ordering};

/// Writes `bytes` to `path` atomically, readable by the owner only (mode
/// 0600): a reader sees the old file or the whole new one, and a failed
/// write leaves no partial file behind. A `path` that names a directory, a
/// symbolic link, a device or a FIFO is refused (an error of kind
/// `InvalidInput`), not replaced.
///
/// ```
/// let dir = std::env::temp_dir().join(format!("turbowish-doc-{}", std::process::id()));
/// std::fs::create_dir_all(&dir).unwrap();
/// let path = dir.join("out.txt");
/// turbowish_snapshot::atomic_write::write_atomic(&path, b"hello").unwrap();
/// assert_eq!(std::fs::read(&path).unwrap(), b"hello");
/// # std::fs::remove_dir_all(&dir).unwrap();
/// ```
pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    write_atomic_with(path, |file| file.write_all(bytes))
}

/// [`write_atomic`] of what `write` writes into the temporary file: for an
/// output made as it is written, which need not be held whole in memory
/// first. An error from `write` leaves no file behind, as any other.
///
/// ```
/// use std::io::Write;
/// let dir = std::env::temp_dir().join(format!("turbowish-doc-with-{}", std::process::id()));
/// std::fs::create_dir_all(&dir).unwrap();
/// let path = dir.join("out.txt");
/// turbowish_snapshot::atomic_write::write_atomic_with(&path, |f| {
///     f.write_all(b"hel")?;
///     f.write_all(b"lo")
/// })
/// .unwrap();
/// assert_eq!(std::fs::read(&path).unwrap(), b"hello");
/// # std::fs::remove_dir_all(&dir).unwrap();
/// ```
pub fn write_atomic_with(
    path: &Path,
    write: impl FnOnce(&mut File) -> io::Result<()>,
) -> io::Result<()> {
    // The rename would put a regular file in place of whatever is there:
    // a device, a FIFO, a symlink (not followed, replaced). Refuse those.
    let refused = match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_symlink() => {
            Some("is a symbolic link (not followed, not replaced)")
        }
        Ok(meta) if meta.is_dir() => Some("is a directory"),
        Ok(meta) if !meta.is_file() => Some("not a regular file (use - for standard output)"),
        _ => None,
    };
    if let Some(why) = refused {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, why));
    }
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "output".to_owned());
    let tag = format!("{}.{}", std::process::id(), next_seq());
    let tmp = beside(path, &temp_name(&name, &tag));
    let in_flight = InFlight::register(&tmp);
    let result = create_temp(&tmp)
        .and_then(|mut file| fill(&mut file, write))
        .and_then(|()| std::fs::rename(&tmp, path));
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    drop(in_flight);
    result
}

/// Removes every temporary file this process is writing now, for a
/// `SIGINT` or `SIGTERM` handler that then ends the process (the CLI's
/// does): a write cut short by a signal then leaves nothing behind.
///
/// Async-signal-safe: it takes no lock, allocates nothing, and calls only
/// `unlink(2)`. Writes that go on after it (a handler that lets the
/// process continue) fail at their rename, and clean up as on any error.
pub fn remove_temp_files() {
    // Announced first: a writer finishing meanwhile then leaks its name's
    // buffer rather than free it under us (see `InFlight::drop`).
    REMOVING.store(true, Ordering::SeqCst);
    for slot in &IN_FLIGHT {
        let path = slot.load(Ordering::SeqCst);
        if !path.is_null() {
            // SAFETY: a non-null slot holds a NUL-terminated path that
            // stays allocated while `REMOVING` is set (see `InFlight`).
            unsafe { libc::unlink(path) };
        }
    }
}

/// The longest file name the system takes (Linux's `NAME_MAX`, in bytes).
const NAME_MAX: usize = 255;

/// The temporary name for a file to be called `name`: `.NAME.TAG.tmp`, or,
/// when that passes [`NAME_MAX`], the start of `name` with a hash of the
/// whole of it, so a final name of any valid length gets a valid temporary
/// one (and two long names with one start get two).
fn temp_name(name: &str, tag: &str) -> String {
    let full = format!(".{name}.{tag}.tmp");
    if full.len() <= NAME_MAX {
        return full;
    }
    // ".", "~", 16 hex digits, ".", the tag, ".tmp".
    let room = NAME_MAX.saturating_sub(1 + 1 + 16 + 1 + tag.len() + 4);
    let mut end = room.min(name.len());
    while !name.is_char_boundary(end) {
        end -= 1;
    }
    format!(
        ".{}~{:016x}.{tag}.tmp",
        &name[..end],
        fnv1a(name.as_bytes())
    )
}

/// FNV-1a: a stable 64-bit hash for [`temp_name`] (no security role: the
/// temporary file is created exclusively, so a collision only fails).
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// How many temporary files [`remove_temp_files`] can know of at once;
/// writes beyond that still work, unknown to it.
const MAX_IN_FLIGHT: usize = 32;

/// The temporary files being written, as leaked NUL-terminated paths.
static IN_FLIGHT: [AtomicPtr<libc::c_char>; MAX_IN_FLIGHT] =
    [const { AtomicPtr::new(std::ptr::null_mut()) }; MAX_IN_FLIGHT];
/// Set once [`remove_temp_files`] has started: buffers are no longer freed.
static REMOVING: AtomicBool = AtomicBool::new(false);

/// A temporary file's entry in [`IN_FLIGHT`], for as long as it may exist.
struct InFlight {
    slot: Option<usize>,
}

impl InFlight {
    fn register(path: &Path) -> InFlight {
        let Ok(c_path) = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()) else {
            return InFlight { slot: None };
        };
        let raw = c_path.into_raw();
        for (i, slot) in IN_FLIGHT.iter().enumerate() {
            if slot
                .compare_exchange(
                    std::ptr::null_mut(),
                    raw,
                    Ordering::SeqCst,
                    Ordering::Relaxed,
                )
                .is_ok()
            {
                return InFlight { slot: Some(i) };
            }
        }
        // SAFETY: `raw` came from `into_raw` above and was published nowhere.
        drop(unsafe { std::ffi::CString::from_raw(raw) });
        InFlight { slot: None }
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        let Some(i) = self.slot else { return };
        let raw = IN_FLIGHT[i].swap(std::ptr::null_mut(), Ordering::SeqCst);
        // Dekker with `remove_temp_files`: it sets REMOVING, then reads the
        // slot; this clears the slot, then reads REMOVING. If it may have
        // read our pointer, we see the flag and leak the buffer (the
        // process is ending); else it reads the null we stored.
        if !raw.is_null() && !REMOVING.load(Ordering::SeqCst) {
            // SAFETY: `raw` came from `CString::into_raw` in `register`, and
            // no reader holds it (see above).
            drop(unsafe { std::ffi::CString::from_raw(raw) });
        }
    }
}

/// Writes a new file in `dir` through `write`, under the first name that
/// `name` gives (called with increasing numbers) that nothing has, a
/// symlink included; returns its path. Nothing is ever followed or
/// replaced, and on error nothing is left behind. `dir` is opened once
/// for the call (see [`Directory`], to open it once for many).
///
/// The file is published with `link(2)`, which fails if the name exists:
/// there is no window in which a file appearing at the name could be
/// replaced. On file systems without hard links the name is checked, then
/// renamed to.
///
/// ```
/// use std::io::Write;
/// let dir = std::env::temp_dir().join(format!("turbowish-doc-new-{}", std::process::id()));
/// std::fs::create_dir_all(&dir).unwrap();
/// let name = |n: u64| format!("out-{n}.txt");
/// let first = turbowish_snapshot::atomic_write::write_new(&dir, name, |f| f.write_all(b"a")).unwrap();
/// let second = turbowish_snapshot::atomic_write::write_new(&dir, name, |f| f.write_all(b"b")).unwrap();
/// assert_ne!(first, second);
/// assert_eq!(std::fs::read(&second).unwrap(), b"b");
/// # std::fs::remove_dir_all(&dir).unwrap();
/// ```
pub fn write_new(
    dir: &Path,
    name: impl Fn(u64) -> String,
    write: impl FnOnce(&mut File) -> io::Result<()>,
) -> Result<PathBuf, WriteError> {
    write_new_in(&Directory::open(dir)?, name, write)
}

/// A directory opened once, by its path at that moment: files written
/// into it with [`write_new_in`] go to that directory even if its path is
/// later renamed or replaced (by a symlink to elsewhere, say). The
/// snapshot trigger opens its directory this way at install.
///
/// ```
/// use std::io::Write;
/// let base = std::env::temp_dir().join(format!("turbowish-doc-dir-{}", std::process::id()));
/// std::fs::create_dir_all(base.join("a")).unwrap();
/// let dir = turbowish_snapshot::atomic_write::Directory::open(&base.join("a")).unwrap();
/// std::fs::rename(base.join("a"), base.join("b")).unwrap();
/// turbowish_snapshot::atomic_write::write_new_in(&dir, |n| format!("f{n}"), |f| f.write_all(b"x")).unwrap();
/// assert_eq!(std::fs::read_dir(base.join("b")).unwrap().count(), 1);
/// # std::fs::remove_dir_all(&base).unwrap();
/// ```
#[derive(Debug)]
pub struct Directory {
    fd: std::os::fd::OwnedFd,
    path: PathBuf,
}

impl Directory {
    /// Opens `path`, which must be a directory (symlinks to one are
    /// followed, once, now).
    pub fn open(path: &Path) -> Result<Directory, WriteError> {
        let dir_error = |source| WriteError::Dir {
            dir: path.to_owned(),
            source,
        };
        let file = OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_DIRECTORY | libc::O_CLOEXEC)
            .open(path)
            // O_DIRECTORY makes a file in the way "not a directory".
            .map_err(dir_error)?;
        Ok(Directory {
            fd: file.into(),
            path: path.to_owned(),
        })
    }

    /// The path it was opened by (what file paths are reported under).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether the directory has been deleted since it was opened (no
    /// name links to it any more), so nothing can be written into it.
    pub fn is_deleted(&self) -> bool {
        use std::os::fd::AsFd;
        let Ok(fd) = self.fd.as_fd().try_clone_to_owned() else {
            return false;
        };
        File::from(fd)
            .metadata()
            .is_ok_and(|m| std::os::unix::fs::MetadataExt::nlink(&m) == 0)
    }

    fn raw(&self) -> libc::c_int {
        use std::os::fd::AsRawFd;
        self.fd.as_raw_fd()
    }

    /// Whether anything (a symlink included, dangling or not) has `name`.
    fn exists(&self, name: &std::ffi::CStr) -> io::Result<bool> {
        // SAFETY: `stat` is plain data, written by `fstatat` before it is
        // read (and only when it succeeds).
        let mut stat: libc::stat = unsafe { std::mem::zeroed() };
        // SAFETY: a valid directory descriptor, a NUL-terminated name and
        // a `stat` buffer of the right type.
        let r = unsafe {
            libc::fstatat(
                self.raw(),
                name.as_ptr(),
                &mut stat,
                libc::AT_SYMLINK_NOFOLLOW,
            )
        };
        match r {
            0 => Ok(true),
            _ => match io::Error::last_os_error() {
                e if e.kind() == io::ErrorKind::NotFound => Ok(false),
                e => Err(e),
            },
        }
    }

    /// Creates `name` exclusively, owner-only, never through a symlink,
    /// closed on exec.
    fn create_temp(&self, name: &std::ffi::CStr) -> io::Result<File> {
        let flags =
            libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL | libc::O_NOFOLLOW | libc::O_CLOEXEC;
        // SAFETY: a valid directory descriptor and a NUL-terminated name;
        // the mode argument is read because O_CREAT is given.
        let fd = unsafe { libc::openat(self.raw(), name.as_ptr(), flags, 0o600 as libc::c_uint) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `openat` returned a new descriptor that nothing else owns.
        Ok(unsafe { <File as std::os::fd::FromRawFd>::from_raw_fd(fd) })
    }

    fn remove(&self, name: &std::ffi::CStr) {
        // SAFETY: a valid directory descriptor and a NUL-terminated name.
        unsafe { libc::unlinkat(self.raw(), name.as_ptr(), 0) };
    }

    /// Gives the complete temporary file its final name, unless that name
    /// is taken (`AlreadyExists`). On success the temporary name is gone.
    fn publish(&self, temp: &std::ffi::CStr, target: &std::ffi::CStr) -> io::Result<()> {
        let fd = self.raw();
        // SAFETY: valid descriptors and NUL-terminated names; flags 0 (do
        // not follow a symlink at `temp`, which is our own regular file).
        if unsafe { libc::linkat(fd, temp.as_ptr(), fd, target.as_ptr(), 0) } == 0 {
            self.remove(temp);
            return Ok(());
        }
        let e = io::Error::last_os_error();
        if e.kind() == io::ErrorKind::AlreadyExists {
            return Err(e);
        }
        // No hard links here (some FUSE or FAT file systems): the name is
        // checked, then renamed to, with a window between the two.
        if self.exists(target)? {
            return Err(io::ErrorKind::AlreadyExists.into());
        }
        // SAFETY: valid descriptors and NUL-terminated names.
        if unsafe { libc::renameat(fd, temp.as_ptr(), fd, target.as_ptr()) } == 0 {
            Ok(())
        } else {
            Err(io::Error::last_os_error())
        }
    }
}

/// [`write_new`] into a directory opened before.
pub fn write_new_in(
    dir: &Directory,
    name: impl Fn(u64) -> String,
    write: impl FnOnce(&mut File) -> io::Result<()>,
) -> Result<PathBuf, WriteError> {
    let (final_name, temp_name, mut file) = create_temp_in(dir, &name)?;
    let temp_path = dir.path.join(temp_name.to_string_lossy().as_ref());
    let _in_flight = InFlight::register(&temp_path);
    let written = fill(&mut file, write);
    drop(file);
    if let Err(source) = written {
        dir.remove(&temp_name);
        return Err(WriteError::Write {
            path: temp_path,
            source,
        });
    }
    let mut final_name = final_name;
    let mut attempts = 0;
    loop {
        match dir.publish(&temp_name, &final_name) {
            Ok(()) => break,
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(source) => {
                dir.remove(&temp_name);
                return Err(WriteError::Rename {
                    from: temp_path,
                    to: dir.path.join(final_name.to_string_lossy().as_ref()),
                    source,
                });
            }
        }
        attempts += 1;
        if attempts >= MAX_ATTEMPTS {
            dir.remove(&temp_name);
            return Err(WriteError::NoFreeName {
                dir: dir.path.clone(),
            });
        }
        final_name = file_name(dir, name(next_seq()))?;
    }
    // Make the rename itself durable; a directory that cannot be synced
    // (some file systems refuse) still holds a complete file.
    // SAFETY: a valid descriptor.
    unsafe { libc::fsync(dir.raw()) };
    Ok(dir.path.join(final_name.to_string_lossy().as_ref()))
}

/// `name` as a C string, refused if it is not a single file name.
fn file_name(dir: &Directory, name: String) -> Result<std::ffi::CString, WriteError> {
    let refused = |why: &str| WriteError::CreateTemp {
        path: dir.path.join(&name),
        source: io::Error::new(io::ErrorKind::InvalidInput, why.to_owned()),
    };
    if name.contains('/') || name.is_empty() || name == "." || name == ".." {
        return Err(refused("not a plain file name"));
    }
    std::ffi::CString::new(name.clone()).map_err(|_| refused("contains a NUL byte"))
}

/// Why [`write_new`] wrote no file. Its `Display` is one line naming the
/// path involved.
#[derive(Debug)]
#[non_exhaustive]
pub enum WriteError {
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
    /// Giving the complete temporary file its final name failed (it was
    /// removed).
    Rename {
        /// The temporary file.
        from: PathBuf,
        /// The final name.
        to: PathBuf,
        /// What the system said.
        source: io::Error,
    },
}

impl fmt::Display for WriteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WriteError::Dir { dir, source } => {
                write!(
                    f,
                    "{}: cannot write snapshots here: {source}",
                    dir.display()
                )
            }
            WriteError::NoFreeName { dir } => write!(
                f,
                "{}: no free snapshot file name (too many existing files)",
                dir.display()
            ),
            WriteError::CreateTemp { path, source } => {
                write!(f, "{}: cannot create: {source}", path.display())
            }
            WriteError::Write { path, source } => {
                write!(f, "{}: cannot write: {source}", path.display())
            }
            WriteError::Rename { from, to, source } => write!(
                f,
                "{}: cannot publish as {}: {source}",
                from.display(),
                to.display()
            ),
        }
    }
}

impl std::error::Error for WriteError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            WriteError::Dir { source, .. }
            | WriteError::CreateTemp { source, .. }
            | WriteError::Write { source, .. }
            | WriteError::Rename { source, .. } => Some(source),
            WriteError::NoFreeName { .. } => None,
        }
    }
}

/// Candidate names tried before giving up with `NoFreeName`.
const MAX_ATTEMPTS: u32 = 10_000;

/// Process-wide sequence for file names: snapshot numbers (which sort in
/// the order taken) and temporary names.
fn next_seq() -> u64 {
    static SEQ: AtomicU64 = AtomicU64::new(1);
    SEQ.fetch_add(1, Ordering::Relaxed)
}

/// `name` in the directory of `path`, so a rename stays on one file system.
fn beside(path: &Path, name: &str) -> PathBuf {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.join(name),
        _ => PathBuf::from(name),
    }
}

/// Creates a temporary file exclusively, owner-only, never through a
/// symlink, closed on exec (a child spawned meanwhile does not inherit it).
fn create_temp(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)
}

/// Writes the whole content and syncs it, so the name it gets next never
/// points at a partial file, even after a crash.
fn fill(file: &mut File, write: impl FnOnce(&mut File) -> io::Result<()>) -> io::Result<()> {
    write(file)?;
    file.sync_all()
}

/// Picks the next free final name in `dir` and creates its temporary file:
/// returns both names and the file.
fn create_temp_in(
    dir: &Directory,
    name: &impl Fn(u64) -> String,
) -> Result<(std::ffi::CString, std::ffi::CString, File), WriteError> {
    let dir_error = |source| WriteError::Dir {
        dir: dir.path.clone(),
        source,
    };
    for _ in 0..MAX_ATTEMPTS {
        let final_name = file_name(dir, name(next_seq()))?;
        if dir.exists(&final_name).map_err(dir_error)? {
            continue;
        }
        let temp = file_name(dir, temp_name(&final_name.to_string_lossy(), "new"))?;
        match dir.create_temp(&temp) {
            Ok(file) => return Ok((final_name, temp, file)),
            // Left by another process with our pid (a container), or a
            // crash: never touch it, take the next number.
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(source) => {
                return Err(WriteError::CreateTemp {
                    path: dir.path.join(temp.to_string_lossy().as_ref()),
                    source,
                })
            }
        }
    }
    Err(WriteError::NoFreeName {
        dir: dir.path.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Held by every test here: `remove_temp_files` removes the temporary
    /// files of every write in the process, other tests' included.
    static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

    fn serial() -> std::sync::MutexGuard<'static, ()> {
        SERIAL.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// An empty directory of its own for one test.
    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("turbowish-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[cfg(unix)]
    #[test]
    fn regular_files_are_replaced_mode_0600_and_others_refused() {
        use std::os::unix::fs::{FileTypeExt, PermissionsExt};
        let _serial = serial();
        let dir = scratch("special");
        let out = dir.join("out");
        std::fs::write(&out, b"old").unwrap();
        std::fs::set_permissions(&out, std::fs::Permissions::from_mode(0o644)).unwrap();
        write_atomic(&out, b"new").unwrap();
        assert_eq!(std::fs::read(&out).unwrap(), b"new");
        let mode = std::fs::metadata(&out).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        std::fs::remove_file(&out).unwrap();

        let real = dir.join("real");
        std::fs::write(&real, b"keep").unwrap();
        let link = dir.join("link");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        let fifo = dir.join("fifo");
        let name = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: a NUL-terminated path and a mode; mkfifo touches nothing else.
        assert_eq!(unsafe { libc::mkfifo(name.as_ptr(), 0o600) }, 0);
        // A directory too; each refused before anything is written.
        let subdir = dir.join("target-is-a-dir");
        std::fs::create_dir_all(&subdir).unwrap();
        for target in [&link, &fifo, &subdir] {
            let err = write_atomic(target, b"new").unwrap_err();
            assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput, "{target:?}");
        }
        assert!(std::fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink());
        assert!(std::fs::symlink_metadata(&fifo)
            .unwrap()
            .file_type()
            .is_fifo());
        assert_eq!(std::fs::read(&real).unwrap(), b"keep");
        assert_eq!(entries(&dir), ["fifo", "link", "real", "target-is-a-dir"]);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    fn name(n: u64) -> String {
        format!("turbowish-test-{n}.json")
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
        let _serial = serial();
        let dir = scratch("fail");
        let err = write_new(&dir, name, |file| {
            file.write_all(b"{\"format_version\": 1, \"partial")?;
            Err(io::Error::other("disk full"))
        })
        .unwrap_err();
        match &err {
            WriteError::Write { path, source } => {
                assert_eq!(path.parent(), Some(dir.as_path()));
                assert_eq!(source.to_string(), "disk full");
            }
            other => panic!("expected a write error, got {other:?}"),
        }
        assert!(err
            .to_string()
            .ends_with(".json.new.tmp: cannot write: disk full"));
        assert_eq!(entries(&dir), Vec::<String>::new());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn names_up_to_name_max_get_a_temporary_name_that_fits() {
        let _serial = serial();
        let dir = scratch("long");
        for len in [1, 200, 243, 250, 255] {
            let name = "n".repeat(len);
            let out = dir.join(&name);
            write_atomic(&out, b"x").unwrap();
            assert_eq!(std::fs::read(&out).unwrap(), b"x", "{len}");
            std::fs::remove_file(&out).unwrap();
        }
        // Multi-byte characters are cut at a boundary.
        let name = "é".repeat(127);
        assert_eq!(name.len(), 254);
        write_atomic(&dir.join(&name), b"y").unwrap();
        assert_eq!(entries(&dir), [name]);
        let long = temp_name(&"a".repeat(255), "1.2");
        let other = temp_name(&format!("{}b", "a".repeat(254)), "1.2");
        assert!(long.len() <= NAME_MAX && other.len() <= NAME_MAX);
        assert_ne!(long, other, "the hash tells long names apart");
        assert_eq!(temp_name("out.svg", "7.1"), ".out.svg.7.1.tmp");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn removing_temp_files_takes_those_being_written() {
        let _serial = serial();
        let dir = scratch("in-flight");
        let name = |n: u64| format!("removed-{n}.json");
        let err = write_new(&dir, name, |file| {
            file.write_all(b"partial")?;
            assert_eq!(entries(&dir).len(), 1, "the temporary file exists");
            remove_temp_files();
            assert_eq!(entries(&dir), Vec::<String>::new());
            Ok(())
        });
        // The write itself finished; publishing the removed file fails,
        // and nothing is left.
        assert!(err.is_err());
        assert_eq!(entries(&dir), Vec::<String>::new());
        REMOVING.store(false, Ordering::SeqCst);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_missing_directory_or_a_file_is_a_dir_error() {
        let _serial = serial();
        let base = scratch("missing");
        let missing = base.join("not-there");
        let err = write_new(&missing, name, |_| Ok(())).unwrap_err();
        assert!(
            matches!(&err, WriteError::Dir { dir, source }
                if *dir == missing && source.kind() == io::ErrorKind::NotFound),
            "{err:?}"
        );
        let file = base.join("a-file");
        std::fs::write(&file, b"").unwrap();
        let err = write_new(&file, name, |_| Ok(())).unwrap_err();
        assert!(
            matches!(&err, WriteError::Dir { dir, source }
                if *dir == file && source.kind() == io::ErrorKind::NotADirectory),
            "{err:?}"
        );
        std::fs::remove_dir_all(&base).unwrap();
    }
}
