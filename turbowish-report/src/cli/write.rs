//! Output files are complete or absent: written to a temporary name beside
//! the target, then renamed over it.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

/// Writes `bytes` to `path` atomically, readable by the owner only (mode
/// 0600 on Unix): a reader sees the old file or the whole new one, and a
/// failed write leaves no partial file behind. A `path` that names a
/// directory, a symbolic link, a device or a FIFO is refused (an error of
/// kind `InvalidInput`), not replaced.
///
/// ```
/// let dir = std::env::temp_dir().join(format!("turbowish-doc-{}", std::process::id()));
/// std::fs::create_dir_all(&dir).unwrap();
/// let path = dir.join("out.txt");
/// turbowish_report::write_atomic(&path, b"hello").unwrap();
/// assert_eq!(std::fs::read(&path).unwrap(), b"hello");
/// # std::fs::remove_dir_all(&dir).unwrap();
/// ```
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
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
        return Err(std::io::Error::new(std::io::ErrorKind::InvalidInput, why));
    }
    let tmp = temp_path(path);
    let result = write_new(&tmp, bytes).and_then(|()| std::fs::rename(&tmp, path));
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

fn write_new(tmp: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(tmp)?;
    file.write_all(bytes)?;
    file.sync_all()
}

/// `.NAME.PID.N.tmp` in the target's directory, so the rename stays on
/// one file system.
fn temp_path(path: &Path) -> PathBuf {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "output".to_owned());
    let tmp = format!(".{name}.{}.{n}.tmp", std::process::id());
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.join(tmp),
        _ => PathBuf::from(tmp),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An empty directory of its own for one test.
    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("turbowish-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn a_failed_write_leaves_nothing_behind() {
        let dir = scratch("write");
        std::fs::create_dir_all(dir.join("target-is-a-dir")).unwrap();
        // A directory is refused before anything is written.
        let err = write_atomic(&dir.join("target-is-a-dir"), b"data");
        assert!(err.is_err());
        let names: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["target-is-a-dir"]);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[cfg(unix)]
    #[test]
    fn replaced_files_get_mode_0600() {
        use std::os::unix::fs::PermissionsExt;
        let dir = scratch("mode");
        let path = dir.join("out");
        std::fs::write(&path, b"old").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        write_atomic(&path, b"new").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"new");
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[cfg(unix)]
    #[test]
    fn symlinks_and_special_files_are_refused_not_replaced() {
        use std::os::unix::fs::FileTypeExt;
        let dir = scratch("special");
        let real = dir.join("real");
        std::fs::write(&real, b"keep").unwrap();
        let link = dir.join("link");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        let fifo = dir.join("fifo");
        let name = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: a NUL-terminated path and a mode; mkfifo touches nothing else.
        assert_eq!(unsafe { libc::mkfifo(name.as_ptr(), 0o600) }, 0);
        for target in [&link, &fifo] {
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
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
