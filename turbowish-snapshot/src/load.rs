//! Reading snapshot files: every way a file can be wrong gets its own error,
//! naming the file and, where known, the place in it.

use std::fmt;
use std::io::Read;
use std::path::Path;

use serde::Deserialize;

use crate::schema::{Snapshot, FORMAT_VERSION, SUPPORTED_VERSIONS};

/// The largest snapshot file [`Snapshot::load`] reads. A snapshot of a
/// process with a million tasks and every site sampled is well below it; a
/// larger file is almost surely not a snapshot, and reading it would take
/// the memory of the machine running the CLI.
pub const MAX_SNAPSHOT_BYTES: u64 = 512 * 1024 * 1024;

/// Why a snapshot could not be read. Its `Display` is one line naming the
/// file (`origin`: a path, or `-` for standard input) and the problem.
#[derive(Debug)]
#[non_exhaustive]
pub enum LoadError {
    /// The file could not be opened or read.
    Io {
        /// The file.
        origin: String,
        /// What the system said.
        source: std::io::Error,
    },
    /// The path names something that is neither a regular file nor a FIFO
    /// (a directory, a device, a socket...).
    NotAFile {
        /// The path.
        origin: String,
    },
    /// The file is larger than [`MAX_SNAPSHOT_BYTES`].
    TooLarge {
        /// The file.
        origin: String,
        /// Its size (or the bytes read before giving up).
        size: u64,
    },
    /// The file is not JSON, or ends early.
    Json {
        /// The file.
        origin: String,
        /// 1-based line of the error.
        line: usize,
        /// 1-based column of the error.
        column: usize,
        /// What is wrong there.
        message: String,
    },
    /// The file is JSON but not a snapshot: a field is missing or has the
    /// wrong type.
    Shape {
        /// The file.
        origin: String,
        /// Path of the offending value, e.g. `tasks[3].memory.live_bytes`.
        path: String,
        /// What is wrong with it.
        message: String,
    },
    /// The file's shape passes a limit of the reader (see
    /// [`limits`](crate::limits)): a list longer than any real snapshot
    /// has, or stacks that would expand to more than the file's size
    /// allows. Refused before the memory it would take is spent.
    Limit {
        /// The file.
        origin: String,
        /// Path of the offending field, e.g. `process.args`.
        path: String,
        /// What is over which limit.
        message: String,
    },
    /// The file is a snapshot of a format version this build cannot read.
    UnsupportedVersion {
        /// The file.
        origin: String,
        /// The version the file declares.
        found: u64,
    },
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LoadError::Io { origin, source } => write!(f, "{origin}: cannot read: {source}"),
            LoadError::NotAFile { origin } => write!(f, "{origin}: not a regular file"),
            LoadError::TooLarge { origin, size } => write!(
                f,
                "{origin}: {size} bytes is too large for a snapshot (limit {MAX_SNAPSHOT_BYTES} bytes)"
            ),
            LoadError::Json {
                origin,
                line,
                column,
                message,
            } => write!(
                f,
                "{origin}:{line}:{column}: not a valid snapshot: {message}"
            ),
            LoadError::Shape {
                origin,
                path,
                message,
            } => write!(
                f,
                "{origin}: not a TurboWish snapshot: field `{path}`: {message}"
            ),
            LoadError::Limit {
                origin,
                path,
                message,
            } => write!(f, "{origin}: refused: field `{path}`: {message}"),
            LoadError::UnsupportedVersion { origin, found } => write!(
                f,
                "{origin}: snapshot format_version {found} is not supported (this build reads {}; it writes {FORMAT_VERSION})",
                supported()
            ),
        }
    }
}

impl std::error::Error for LoadError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            LoadError::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

impl Snapshot {
    /// Reads a snapshot file; `-` reads standard input.
    ///
    /// ```
    /// let err = turbowish_snapshot::Snapshot::load("no/such/file.json".as_ref()).unwrap_err();
    /// assert!(err.to_string().starts_with("no/such/file.json: cannot read"));
    /// ```
    pub fn load(path: &Path) -> Result<Snapshot, LoadError> {
        Snapshot::load_counted(path).map(|(snapshot, _)| snapshot)
    }

    /// [`Snapshot::load`], also giving the number of bytes read: what the
    /// budgets of a renderer that expands the snapshot are sized by (see
    /// [`crate::limits::check_flame_stacks`]).
    ///
    /// ```
    /// let err = turbowish_snapshot::Snapshot::load_counted("no/such/file.json".as_ref()).unwrap_err();
    /// assert!(err.to_string().starts_with("no/such/file.json: cannot read"));
    /// ```
    pub fn load_counted(path: &Path) -> Result<(Snapshot, usize), LoadError> {
        let origin = path.display().to_string();
        let parse = |bytes: Vec<u8>| {
            Snapshot::from_slice(&bytes, &origin).map(|snapshot| (snapshot, bytes.len()))
        };
        if path == Path::new("-") {
            let bytes = read_limited(std::io::stdin().lock(), &origin)?;
            return parse(bytes);
        }
        let io = |source| LoadError::Io {
            origin: origin.clone(),
            source,
        };
        let file = open_nonblocking(path).map_err(io)?;
        let meta = file.metadata().map_err(io)?;
        if is_fifo(&meta) {
            // A pipe (`<(cat snapshot.json)`): read it to its end, limited
            // like standard input. Opened without blocking, so a FIFO with
            // no writer does not hang the open; read blocking, so a slow
            // writer is waited for (with no writer at all, the read ends
            // at once, empty).
            set_blocking(&file).map_err(io)?;
            let bytes = read_limited(file, &origin)?;
            return parse(bytes);
        }
        if !meta.is_file() {
            return Err(LoadError::NotAFile { origin });
        }
        if meta.len() > MAX_SNAPSHOT_BYTES {
            return Err(LoadError::TooLarge {
                origin,
                size: meta.len(),
            });
        }
        let bytes = read_limited(file, &origin)?;
        parse(bytes)
    }

    /// Parses a snapshot from bytes; `origin` names them in errors.
    ///
    /// The format version is checked before the rest, so a file of another
    /// version is refused for its version, not for its shape.
    ///
    /// ```
    /// let err = turbowish_snapshot::Snapshot::from_slice(br#"{"format_version": 99}"#, "x.json")
    ///     .unwrap_err();
    /// assert!(err.to_string().contains("format_version 99 is not supported"));
    /// ```
    pub fn from_slice(bytes: &[u8], origin: &str) -> Result<Snapshot, LoadError> {
        // serde lets a struct deserialize from an array too: refuse
        // anything but an object up front, so `[1, 2]` reads as the wrong
        // shape, not as a syntax error further in.
        match bytes.iter().find(|b| !b.is_ascii_whitespace()) {
            Some(b'{') => {}
            None => {
                return Err(LoadError::Json {
                    origin: origin.to_owned(),
                    line: 1,
                    column: 1,
                    message: "the file is empty".to_owned(),
                })
            }
            Some(_) if serde_json::from_slice::<serde::de::IgnoredAny>(bytes).is_ok() => {
                return Err(LoadError::Shape {
                    origin: origin.to_owned(),
                    path: ".".to_owned(),
                    message: "expected a JSON object".to_owned(),
                })
            }
            Some(_) => {}
        }
        // A valid snapshot of a version this build reads, the common case,
        // costs one plain pass. Anything else is read again, slowly, for
        // the error: its version first, then the path to the bad field
        // (which the field-tracking pass is for; it costs about half as
        // much again on a 500 MB file).
        let parsed = {
            let _names = crate::limits::NameBudget::start(bytes.len());
            serde_json::from_slice::<Snapshot>(bytes)
        };
        if let Ok(snapshot) = parsed {
            if SUPPORTED_VERSIONS.contains(&snapshot.format_version) {
                crate::limits::check_expansion(&snapshot, bytes.len(), origin)?;
                return Ok(snapshot);
            }
        }
        #[derive(Deserialize)]
        struct Version {
            format_version: Option<VersionValue>,
        }
        let version: Version = serde_json::from_slice(bytes).map_err(|e| {
            // The input is an object (checked above), and any value reads
            // as `Option<Value>`: the one data error left is a repeated key.
            if e.is_data() {
                let message = strip_position(&e);
                let repeated = message.starts_with("duplicate field");
                LoadError::Shape {
                    origin: origin.to_owned(),
                    path: if repeated { "format_version" } else { "." }.to_owned(),
                    message: if repeated {
                        "appears twice".to_owned()
                    } else {
                        message
                    },
                }
            } else {
                json_error(origin, &e)
            }
        })?;
        match version.format_version {
            None => {
                return Err(LoadError::Shape {
                    origin: origin.to_owned(),
                    path: "format_version".to_owned(),
                    message: "missing (is this a TurboWish snapshot?)".to_owned(),
                })
            }
            Some(VersionValue::Unsigned(found))
                if SUPPORTED_VERSIONS.iter().any(|&s| u64::from(s) == found) => {}
            Some(VersionValue::Unsigned(found)) => {
                return Err(LoadError::UnsupportedVersion {
                    origin: origin.to_owned(),
                    found,
                })
            }
            Some(VersionValue::Other(found)) => {
                return Err(LoadError::Shape {
                    origin: origin.to_owned(),
                    path: "format_version".to_owned(),
                    message: format!("expected an unsigned integer, found {found}"),
                })
            }
        }
        let mut de = serde_json::Deserializer::from_slice(bytes);
        let _names = crate::limits::NameBudget::start(bytes.len());
        let snapshot: Snapshot = serde_path_to_error::deserialize(&mut de).map_err(|e| {
            let path = clip(&e.path().to_string());
            let inner = e.into_inner();
            if inner.is_data() {
                let message = strip_position(&inner);
                match message.strip_prefix(crate::limits::OVER_LIMIT) {
                    Some(message) => LoadError::Limit {
                        origin: origin.to_owned(),
                        path,
                        message: message.to_owned(),
                    },
                    None => LoadError::Shape {
                        origin: origin.to_owned(),
                        path,
                        message,
                    },
                }
            } else {
                json_error(origin, &inner)
            }
        })?;
        crate::limits::check_expansion(&snapshot, bytes.len(), origin)?;
        Ok(snapshot)
    }

    /// Writes the snapshot as JSON (the file format).
    pub fn to_writer(&self, writer: impl std::io::Write) -> Result<(), serde_json::Error> {
        serde_json::to_writer(writer, self)
    }
}

/// Opens `path` for reading without waiting for a writer if it is a FIFO.
fn open_nonblocking(path: &Path) -> std::io::Result<std::fs::File> {
    let mut options = std::fs::OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.custom_flags(libc::O_NONBLOCK);
    }
    options.open(path)
}

#[cfg(unix)]
fn is_fifo(meta: &std::fs::Metadata) -> bool {
    use std::os::unix::fs::FileTypeExt;
    meta.file_type().is_fifo()
}

#[cfg(not(unix))]
fn is_fifo(_meta: &std::fs::Metadata) -> bool {
    false
}

/// Clears `O_NONBLOCK` (see [`open_nonblocking`]).
#[cfg(unix)]
fn set_blocking(file: &std::fs::File) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    let fd = file.as_raw_fd();
    // SAFETY: `fd` is an open descriptor owned by `file`, which outlives
    // both calls; F_GETFL/F_SETFL only read and set its status flags.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    // SAFETY: as above.
    if flags < 0 || unsafe { libc::fcntl(fd, libc::F_SETFL, flags & !libc::O_NONBLOCK) } < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(not(unix))]
fn set_blocking(_file: &std::fs::File) -> std::io::Result<()> {
    Ok(())
}

fn read_limited(reader: impl Read, origin: &str) -> Result<Vec<u8>, LoadError> {
    let mut bytes = Vec::new();
    reader
        .take(MAX_SNAPSHOT_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|source| LoadError::Io {
            origin: origin.to_owned(),
            source,
        })?;
    if bytes.len() as u64 > MAX_SNAPSHOT_BYTES {
        return Err(LoadError::TooLarge {
            origin: origin.to_owned(),
            size: bytes.len() as u64,
        });
    }
    Ok(bytes)
}

fn json_error(origin: &str, e: &serde_json::Error) -> LoadError {
    let message = if e.is_eof() {
        "the file ends early (truncated?)".to_owned()
    } else {
        strip_position(e)
    };
    LoadError::Json {
        origin: origin.to_owned(),
        line: e.line(),
        column: e.column(),
        message,
    }
}

/// serde_json appends " at line L column C" to its messages; the error
/// already says where, up front. What is left is [`clip`]ped: serde's
/// messages quote the offending value (`invalid type: string "..."`).
fn strip_position(e: &serde_json::Error) -> String {
    let text = e.to_string();
    match text.rfind(" at line ") {
        Some(i) => clip(&text[..i]),
        None => clip(&text),
    }
}

/// The most characters of a message taken from the file (a quoted value,
/// a field path): an error is one line, not a copy of the input.
const MAX_QUOTED: usize = 200;

/// Text from the file as it goes into an error: escaped by the shared
/// escaping ([`printable`](crate::format::printable): no control, bidi
/// or line break reaches the terminal) and cut to [`MAX_QUOTED`]
/// characters, with `…` where cut.
fn clip(text: &str) -> String {
    let safe = crate::format::printable(text);
    match safe.char_indices().nth(MAX_QUOTED) {
        Some((at, _)) => format!("{}…", &safe[..at]),
        None => safe.into_owned(),
    }
}

/// `format_version` as the version check reads it: any JSON value, kept
/// only as the number it should be or a short description (an array of a
/// million entries is skipped, not built).
enum VersionValue {
    Unsigned(u64),
    Other(String),
}

impl<'de> Deserialize<'de> for VersionValue {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = VersionValue;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any value")
            }
            fn visit_u64<E>(self, v: u64) -> Result<VersionValue, E> {
                Ok(VersionValue::Unsigned(v))
            }
            fn visit_i64<E>(self, v: i64) -> Result<VersionValue, E> {
                Ok(VersionValue::Other(v.to_string()))
            }
            fn visit_f64<E>(self, v: f64) -> Result<VersionValue, E> {
                Ok(VersionValue::Other(v.to_string()))
            }
            fn visit_bool<E>(self, v: bool) -> Result<VersionValue, E> {
                Ok(VersionValue::Other(v.to_string()))
            }
            fn visit_unit<E>(self) -> Result<VersionValue, E> {
                Ok(VersionValue::Other("null".to_owned()))
            }
            fn visit_str<E>(self, v: &str) -> Result<VersionValue, E> {
                let start: String = v.chars().take(MAX_QUOTED).collect();
                Ok(VersionValue::Other(clip(&format!("{start:?}"))))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<VersionValue, A::Error> {
                while seq.next_element::<serde::de::IgnoredAny>()?.is_some() {}
                Ok(VersionValue::Other("an array".to_owned()))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<VersionValue, A::Error> {
                while map
                    .next_entry::<serde::de::IgnoredAny, serde::de::IgnoredAny>()?
                    .is_some()
                {}
                Ok(VersionValue::Other("an object".to_owned()))
            }
        }
        d.deserialize_any(V)
    }
}

fn supported() -> String {
    SUPPORTED_VERSIONS
        .iter()
        .map(|v| v.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(bytes: &[u8]) -> String {
        Snapshot::from_slice(bytes, "f.json")
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn non_objects_are_the_wrong_shape() {
        assert_eq!(
            message(b" [1, 2, 3]"),
            "f.json: not a TurboWish snapshot: field `.`: expected a JSON object"
        );
        assert_eq!(
            message(b"42"),
            "f.json: not a TurboWish snapshot: field `.`: expected a JSON object"
        );
    }

    #[test]
    fn empty_and_broken_files_are_syntax_errors() {
        assert_eq!(
            message(b"  \n"),
            "f.json:1:1: not a valid snapshot: the file is empty"
        );
        assert!(message(b"[1, 2").starts_with("f.json:1:"));
        assert!(message(br#"{"format_version": 1, "#).contains("ends early"));
    }

    #[test]
    fn a_repeated_version_is_named() {
        assert_eq!(
            message(br#"{"format_version": 2, "format_version": 2}"#),
            "f.json: not a TurboWish snapshot: field `format_version`: appears twice"
        );
    }

    /// The service fixture with `process.args` made `n` empty strings.
    fn with_args(n: usize) -> Vec<u8> {
        let json = include_str!("../tests/fixtures/service.json");
        let start = json.find("\"args\": [").unwrap();
        let end = start + json[start..].find(']').unwrap() + 1;
        let args = format!("\"args\": [{}]", vec!["\"\""; n].join(","));
        format!("{}{args}{}", &json[..start], &json[end..]).into_bytes()
    }

    #[test]
    fn args_are_read_up_to_their_limit_and_refused_past_it() {
        use crate::limits::MAX_ARGS;
        let snap = Snapshot::from_slice(&with_args(MAX_ARGS), "f.json").unwrap();
        assert_eq!(snap.process.args.len(), MAX_ARGS);
        let err = Snapshot::from_slice(&with_args(MAX_ARGS + 1), "f.json").unwrap_err();
        assert!(matches!(err, LoadError::Limit { ref path, .. } if path == "process.args"));
        assert_eq!(
            err.to_string(),
            "f.json: refused: field `process.args`: more than 1048576 arguments (limit 1048576)"
        );
    }

    #[test]
    fn a_version_of_another_type_is_described_not_copied() {
        assert_eq!(
            message(br#"{"format_version": [1, [2, {"a": 3}]]}"#),
            "f.json: not a TurboWish snapshot: field `format_version`: expected an unsigned integer, found an array"
        );
        assert_eq!(
            message(b"{\"format_version\": \"2\\u001b[2J\\n\"}"),
            "f.json: not a TurboWish snapshot: field `format_version`: expected an unsigned integer, found \"2\\u{1b}[2J\\n\""
        );
        assert_eq!(
            message(br#"{"format_version": -1}"#),
            "f.json: not a TurboWish snapshot: field `format_version`: expected an unsigned integer, found -1"
        );
    }

    #[test]
    fn values_quoted_in_errors_are_escaped_and_cut() {
        let json = include_str!("../tests/fixtures/service.json");
        let long = format!("\\u001b]0;x\\u0007{}", "y".repeat(10_000));
        let bad = json.replacen(
            "\"live_bytes\": 6400000",
            &format!("\"live_bytes\": \"{long}\""),
            1,
        );
        assert_ne!(bad, json);
        let text = message(bad.as_bytes());
        assert!(
            text.starts_with("f.json: not a TurboWish snapshot: field `tasks[4].memory.live_bytes`: invalid type: string \"\\u{1b}]0;x\\u{7}yyy"),
            "{text}"
        );
        assert!(text.ends_with("yyy…"), "{text}");
        assert!(text.chars().count() < 300, "{text}");
    }

    #[test]
    fn version_is_checked_before_shape() {
        assert_eq!(
            message(br#"{"format_version": 7, "tasks": "not a list"}"#),
            "f.json: snapshot format_version 7 is not supported (this build reads 1, 2; it writes 2)"
        );
        assert!(message(br#"{"tasks": []}"#).contains("field `format_version`: missing"));
    }
}
