//! The live view's wire format: what a program serving `turbowish top`
//! sends over its Unix socket, and what the viewer sends back.
//!
//! A stream is a sequence of *frames*, each a 4-byte little-endian length
//! followed by that many bytes of body (at most [`MAX_FRAME_BYTES`]). A
//! body starts with one byte naming the frame's kind. Integers are LEB128
//! varints (signed ones zigzag-encoded), strings a varint length and UTF-8
//! bytes, options a 0/1 byte, lists a varint count.
//!
//! The program speaks first, with a [`Hello`]: kind 0, the four bytes
//! [`MAGIC`], then the format version as a 4-byte little-endian number.
//! Those first nine bytes of the first frame stay as they are in every
//! version, so a viewer of any version can tell which one it is talking to
//! and refuse one it does not read ([`WireError::Version`]) before it
//! parses anything else. Everything after them may change with
//! [`LIVE_VERSION`].
//!
//! Then, about once a second, an [`Update`]: per row of memory (a task or
//! a bucket), only what changed since the previous update on the same
//! connection — a row absent from an update is as it was, with no growth
//! and no allocation, and its name is sent only the first time. Rows that
//! left the program's registry are listed in [`Update::gone`].
//!
//! The viewer sends [`ClientFrame::Snapshot`] to have the program write a
//! full snapshot file, as `SIGUSR1` would; the program answers
//! [`ServerFrame::SnapshotWritten`] or [`ServerFrame::SnapshotFailed`].
//!
//! ```
//! use turbowish_snapshot::live::{read_frame, ServerFrame, Hello, LIVE_VERSION, MAX_FRAME_BYTES};
//!
//! let hello = ServerFrame::Hello(Hello {
//!     version: LIVE_VERSION,
//!     pid: 42,
//!     executable: "/bin/service".to_owned(),
//!     snapshot_dir: "/var/tmp".to_owned(),
//!     interval_ms: 1000,
//! });
//! let mut stream = Vec::new();
//! hello.write_to(&mut stream).unwrap();
//! let body = read_frame(&mut stream.as_slice(), MAX_FRAME_BYTES).unwrap();
//! assert_eq!(ServerFrame::decode(&body).unwrap(), hello);
//! ```

use std::fmt;
use std::io::{self, Read, Write};

use crate::schema::{Access, Owner, Provenance, ResourceKind, TaskRef, TaskState};

/// The version of this format. A viewer refuses a stream of any other
/// version with [`WireError::Version`].
///
/// Version 2 added each party's [`LiveParty::provenance`]: whether a
/// holder is a task whose state owns the handle (found by the ownership
/// scan) or the one recorded.
pub const LIVE_VERSION: u32 = 2;

/// The four bytes after a hello's kind byte: `TWLV`.
pub const MAGIC: [u8; 4] = *b"TWLV";

/// The largest frame body either side accepts: 256 MiB (an update naming
/// a million new tasks fits).
pub const MAX_FRAME_BYTES: u32 = 256 << 20;

const HELLO: u8 = 0;
const UPDATE: u8 = 1;
const SNAPSHOT_WRITTEN: u8 = 2;
const SNAPSHOT_FAILED: u8 = 3;
const REFUSED: u8 = 4;
const REQUEST_SNAPSHOT: u8 = 16;

/// A frame the program sends.
#[derive(Debug, Clone, PartialEq)]
pub enum ServerFrame {
    /// The first frame: who is talking, in which version.
    Hello(Hello),
    /// Per-task figures since the previous update.
    Update(Update),
    /// A snapshot the viewer asked for was written, at this path.
    SnapshotWritten {
        /// The snapshot file.
        path: String,
    },
    /// A snapshot the viewer asked for could not be written.
    SnapshotFailed {
        /// Why, in one line.
        message: String,
    },
    /// The program will not serve this connection (too many viewers); it
    /// closes the stream after this frame.
    Refused {
        /// Why, in one line.
        message: String,
    },
}

/// A frame the viewer sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientFrame {
    /// Write a full snapshot file now, as `SIGUSR1` would.
    Snapshot,
}

/// The program's first frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hello {
    /// The format version the program speaks ([`LIVE_VERSION`]).
    pub version: u32,
    /// The program's process id.
    pub pid: u32,
    /// The program's executable.
    pub executable: String,
    /// Where its snapshot files go (`$TURBOWISH_DIR`).
    pub snapshot_dir: String,
    /// The time between updates it aims for, in milliseconds.
    pub interval_ms: u32,
}

/// One update: what changed since the previous one on this connection
/// (everything, for the first).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Update {
    /// Counts updates on this connection, from 1.
    pub seq: u64,
    /// When it was built, in ms since the Unix epoch.
    pub at_ms: u64,
    /// Time since the previous update, in ms (0 for the first).
    pub elapsed_ms: u64,
    /// The whole process's live memory and allocation rate.
    pub totals: Totals,
    /// How many rows the program has now (changed or not).
    pub row_count: u64,
    /// The rows that changed, and every row new to this connection.
    pub rows: Vec<RowUpdate>,
    /// Rows that are gone (tasks that ended and hold no memory).
    pub gone: Vec<Owner>,
    /// Every resource that has a holder or a waiter now, by id.
    pub resources: Vec<LiveResource>,
}

/// The process's figures in an update.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Totals {
    /// Bytes live now.
    pub live_bytes: u64,
    /// Blocks live now.
    pub live_blocks: u64,
    /// Bytes allocated per second since the previous update.
    pub alloc_rate: u64,
}

/// One row of memory in an update: a task, another tokio task, or a
/// bucket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowUpdate {
    /// Whose row.
    pub owner: Owner,
    /// Its name and spawn location: sent the first time the row appears
    /// on a connection, `None` after.
    pub intro: Option<Intro>,
    /// The task's state (TurboWish tasks only).
    pub state: Option<TaskState>,
    /// Bytes it allocated that are still live.
    pub live_bytes: u64,
    /// Blocks it allocated that are still live.
    pub live_blocks: u64,
    /// Bytes it ever allocated.
    pub total_bytes: u64,
    /// Change of `live_bytes` since the previous update (since 0, for a
    /// row's first).
    pub growth: i64,
    /// Bytes allocated per second since the previous update (0 for the
    /// first update).
    pub alloc_rate: u64,
    /// Times polled.
    pub polls: u64,
    /// Time spent in its polls, in ns.
    pub busy_ns: u64,
}

/// A row's name, sent once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Intro {
    /// The task's name, or the bucket's (`main (outside tasks)`).
    pub name: String,
    /// Where the task was spawned, `file:line:col`.
    pub location: Option<String>,
}

/// A resource with its holders and waiters: a channel end's holder is the
/// task whose state owns it where the ownership scan found one, else the
/// one recorded (see [`LiveParty::provenance`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveResource {
    /// The resource's id (as in a snapshot's resources).
    pub id: u64,
    /// What it is.
    pub kind: ResourceKind,
    /// Its name.
    pub name: String,
    /// Who holds it.
    pub holders: Vec<LiveParty>,
    /// Holders beyond those listed.
    pub extra_holders: u64,
    /// Who waits for it.
    pub waiters: Vec<LiveParty>,
}

/// A holder or waiter of a [`LiveResource`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveParty {
    /// Which task.
    pub task: TaskRef,
    /// Its name.
    pub task_name: String,
    /// For how long it has held or waited, in ms.
    pub since_ms: u64,
    /// How it holds or wants the resource.
    pub access: Access,
    /// Where a holder comes from: [`Provenance::Owns`] (with the path in
    /// the task's state) when the task's state owns the handle,
    /// [`Provenance::Recorded`] for the record of who took the guard or
    /// created, cloned or last used the channel end, or
    /// [`Provenance::Tokio`] for tokio's own instrumentation. Waiters are
    /// recorded (or tokio's).
    pub provenance: Provenance,
}

/// Why a frame could not be read or understood. Its `Display` is one line.
#[derive(Debug)]
#[non_exhaustive]
pub enum WireError {
    /// The stream ended cleanly between frames: the other side closed it.
    Closed,
    /// The stream ended inside a frame.
    Truncated,
    /// Reading or writing failed.
    Io(io::Error),
    /// A frame announced more bytes than [`MAX_FRAME_BYTES`] (or the limit
    /// the reader gave).
    TooLarge {
        /// The announced size.
        len: u64,
        /// The limit.
        max: u32,
    },
    /// The first frame is not a TurboWish hello: the socket belongs to
    /// something else.
    NotLive,
    /// The program speaks another version of this format.
    Version {
        /// The version the program speaks.
        found: u32,
        /// The version this side reads.
        supported: u32,
    },
    /// The program refused this connection, for this reason (too many
    /// viewers, another user).
    Refused(String),
    /// A frame of a kind this version does not know.
    UnknownFrame(u8),
    /// A frame's body does not parse.
    Malformed {
        /// What was being read.
        what: &'static str,
    },
}

impl fmt::Display for WireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WireError::Closed => f.write_str("the other side closed the connection"),
            WireError::Truncated => f.write_str("the connection ended inside a frame"),
            WireError::Io(e) => write!(f, "{e}"),
            WireError::TooLarge { len, max } => {
                write!(f, "a frame of {len} bytes is over the limit of {max}")
            }
            WireError::NotLive => f.write_str("not a TurboWish live endpoint (no hello)"),
            WireError::Version { found, supported } => write!(
                f,
                "the program speaks live-view format version {found}, this turbowish reads version {supported}: use a turbowish built from the same TurboWish release as the program"
            ),
            WireError::Refused(message) => write!(f, "the program refused the viewer: {message}"),
            WireError::UnknownFrame(kind) => write!(f, "unknown frame kind {kind}"),
            WireError::Malformed { what } => write!(f, "malformed frame: bad {what}"),
        }
    }
}

impl std::error::Error for WireError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            WireError::Io(e) => Some(e),
            _ => None,
        }
    }
}

impl From<io::Error> for WireError {
    fn from(e: io::Error) -> WireError {
        WireError::Io(e)
    }
}

/// Reads one frame's body. A stream that ends before the frame's first
/// byte is [`WireError::Closed`]; one that ends inside it,
/// [`WireError::Truncated`]; a length over `max`, [`WireError::TooLarge`]
/// (nothing of the body is read or allocated then).
pub fn read_frame(reader: &mut impl Read, max: u32) -> Result<Vec<u8>, WireError> {
    let mut len = [0u8; 4];
    let mut got = 0;
    while got < len.len() {
        match reader.read(&mut len[got..]) {
            Ok(0) if got == 0 => return Err(WireError::Closed),
            Ok(0) => return Err(WireError::Truncated),
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(WireError::Io(e)),
        }
    }
    let len = u32::from_le_bytes(len);
    if len > max {
        return Err(WireError::TooLarge {
            len: u64::from(len),
            max,
        });
    }
    let mut body = vec![0u8; len as usize];
    reader.read_exact(&mut body).map_err(|e| {
        if e.kind() == io::ErrorKind::UnexpectedEof {
            WireError::Truncated
        } else {
            WireError::Io(e)
        }
    })?;
    Ok(body)
}

/// Writes `body` as one frame (length first) in one `write_all`.
fn write_frame(writer: &mut impl Write, body: &[u8]) -> io::Result<()> {
    let len = u32::try_from(body.len())
        .ok()
        .filter(|&l| l <= MAX_FRAME_BYTES)
        .ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "a frame of {} bytes is over the limit of {MAX_FRAME_BYTES}",
                    body.len()
                ),
            )
        })?;
    let mut frame = Vec::with_capacity(4 + body.len());
    frame.extend_from_slice(&len.to_le_bytes());
    frame.extend_from_slice(body);
    writer.write_all(&frame)
}

impl ServerFrame {
    /// The frame's body (without the length).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Encoder::default();
        match self {
            ServerFrame::Hello(h) => {
                out.byte(HELLO);
                out.0.extend_from_slice(&MAGIC);
                out.0.extend_from_slice(&h.version.to_le_bytes());
                out.uint(u64::from(h.pid));
                out.str(&h.executable);
                out.str(&h.snapshot_dir);
                out.uint(u64::from(h.interval_ms));
            }
            ServerFrame::Update(u) => {
                out.byte(UPDATE);
                out.update(u);
            }
            ServerFrame::SnapshotWritten { path } => {
                out.byte(SNAPSHOT_WRITTEN);
                out.str(path);
            }
            ServerFrame::SnapshotFailed { message } => {
                out.byte(SNAPSHOT_FAILED);
                out.str(message);
            }
            ServerFrame::Refused { message } => {
                out.byte(REFUSED);
                out.str(message);
            }
        }
        out.0
    }

    /// Writes the frame, length first.
    pub fn write_to(&self, writer: &mut impl Write) -> io::Result<()> {
        write_frame(writer, &self.encode())
    }

    /// Parses a frame's body. A hello of another version is
    /// [`WireError::Version`], whatever follows its version.
    pub fn decode(body: &[u8]) -> Result<ServerFrame, WireError> {
        let mut d = Decoder(body);
        let kind = d.byte("frame kind")?;
        let frame = match kind {
            HELLO => {
                let magic = d.take(4, "magic").map_err(|_| WireError::NotLive)?;
                if magic != MAGIC {
                    return Err(WireError::NotLive);
                }
                let version = d.take(4, "version").map_err(|_| WireError::NotLive)?;
                let version = u32::from_le_bytes([version[0], version[1], version[2], version[3]]);
                if version != LIVE_VERSION {
                    return Err(WireError::Version {
                        found: version,
                        supported: LIVE_VERSION,
                    });
                }
                ServerFrame::Hello(Hello {
                    version,
                    pid: d.u32("pid")?,
                    executable: d.string("executable")?,
                    snapshot_dir: d.string("snapshot directory")?,
                    interval_ms: d.u32("interval")?,
                })
            }
            UPDATE => ServerFrame::Update(d.update()?),
            SNAPSHOT_WRITTEN => ServerFrame::SnapshotWritten {
                path: d.string("path")?,
            },
            SNAPSHOT_FAILED => ServerFrame::SnapshotFailed {
                message: d.string("message")?,
            },
            REFUSED => ServerFrame::Refused {
                message: d.string("message")?,
            },
            other => return Err(WireError::UnknownFrame(other)),
        };
        d.end()?;
        Ok(frame)
    }

    /// Reads the first frame of a stream, which must be a hello of this
    /// version: anything else is [`WireError::NotLive`] (or
    /// [`WireError::Version`], or a refusal's message as
    /// [`WireError::Refused`]), checked before the rest is parsed.
    pub fn read_hello(reader: &mut impl Read) -> Result<Hello, WireError> {
        let body = read_frame(reader, MAX_FRAME_BYTES)?;
        ServerFrame::decode_first(&body)
    }

    /// Parses the first frame's body: a hello of this version, or a
    /// refusal ([`WireError::Refused`]); anything else is
    /// [`WireError::NotLive`].
    pub fn decode_first(body: &[u8]) -> Result<Hello, WireError> {
        match body.first() {
            Some(&HELLO) => match ServerFrame::decode(body)? {
                ServerFrame::Hello(hello) => Ok(hello),
                _ => Err(WireError::NotLive),
            },
            Some(&REFUSED) => match ServerFrame::decode(body) {
                Ok(ServerFrame::Refused { message }) => Err(WireError::Refused(message)),
                _ => Err(WireError::NotLive),
            },
            _ => Err(WireError::NotLive),
        }
    }
}

impl ClientFrame {
    /// The frame's body (without the length).
    pub fn encode(&self) -> Vec<u8> {
        match self {
            ClientFrame::Snapshot => vec![REQUEST_SNAPSHOT],
        }
    }

    /// Writes the frame, length first.
    pub fn write_to(&self, writer: &mut impl Write) -> io::Result<()> {
        write_frame(writer, &self.encode())
    }

    /// Parses a frame's body.
    pub fn decode(body: &[u8]) -> Result<ClientFrame, WireError> {
        let mut d = Decoder(body);
        let frame = match d.byte("frame kind")? {
            REQUEST_SNAPSHOT => ClientFrame::Snapshot,
            other => return Err(WireError::UnknownFrame(other)),
        };
        d.end()?;
        Ok(frame)
    }
}

#[derive(Default)]
struct Encoder(Vec<u8>);

impl Encoder {
    fn byte(&mut self, b: u8) {
        self.0.push(b);
    }

    fn uint(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.0.push((v as u8) | 0x80);
            v >>= 7;
        }
        self.0.push(v as u8);
    }

    fn int(&mut self, v: i64) {
        self.uint(((v << 1) ^ (v >> 63)) as u64);
    }

    fn str(&mut self, s: &str) {
        self.uint(s.len() as u64);
        self.0.extend_from_slice(s.as_bytes());
    }

    fn owner(&mut self, o: Owner) {
        match o {
            Owner::Task(id) => {
                self.byte(0);
                self.uint(id);
            }
            Owner::TokioTask(id) => {
                self.byte(1);
                self.uint(id);
            }
            Owner::Main => self.byte(2),
            Owner::Internal => self.byte(3),
            Owner::Overflow => self.byte(4),
        }
    }

    fn task_ref(&mut self, t: TaskRef) {
        let (kind, id) = match t {
            TaskRef::Task(id) => (0, id),
            TaskRef::TokioTask(id) => (1, id),
            TaskRef::Thread(n) => (2, n),
        };
        self.byte(kind);
        self.uint(id);
    }

    fn access(&mut self, a: Access) {
        match a {
            Access::Exclusive => self.byte(0),
            Access::Shared => self.byte(1),
            Access::Permits(n) => {
                self.byte(2);
                self.uint(u64::from(n));
            }
            Access::Send => self.byte(3),
            Access::Receive => self.byte(4),
        }
    }

    fn party(&mut self, p: &LiveParty) {
        self.task_ref(p.task);
        self.str(&p.task_name);
        self.uint(p.since_ms);
        self.access(p.access);
        self.provenance(&p.provenance);
    }

    fn provenance(&mut self, p: &Provenance) {
        match p {
            Provenance::Recorded => self.byte(0),
            Provenance::Owns { path } => {
                self.byte(1);
                self.str(path);
            }
            Provenance::Tokio => self.byte(2),
        }
    }

    fn update(&mut self, u: &Update) {
        self.uint(u.seq);
        self.uint(u.at_ms);
        self.uint(u.elapsed_ms);
        self.uint(u.totals.live_bytes);
        self.uint(u.totals.live_blocks);
        self.uint(u.totals.alloc_rate);
        self.uint(u.row_count);
        self.uint(u.rows.len() as u64);
        for r in &u.rows {
            self.owner(r.owner);
            match &r.intro {
                Some(intro) => {
                    self.byte(1);
                    self.str(&intro.name);
                    match &intro.location {
                        Some(l) => {
                            self.byte(1);
                            self.str(l);
                        }
                        None => self.byte(0),
                    }
                }
                None => self.byte(0),
            }
            self.byte(match r.state {
                None => 0,
                Some(TaskState::Idle) => 1,
                Some(TaskState::Running) => 2,
                Some(TaskState::Completed) => 3,
                Some(TaskState::Panicked) => 4,
                Some(TaskState::Aborted) => 5,
            });
            self.uint(r.live_bytes);
            self.uint(r.live_blocks);
            self.uint(r.total_bytes);
            self.int(r.growth);
            self.uint(r.alloc_rate);
            self.uint(r.polls);
            self.uint(r.busy_ns);
        }
        self.uint(u.gone.len() as u64);
        for &o in &u.gone {
            self.owner(o);
        }
        self.uint(u.resources.len() as u64);
        for r in &u.resources {
            self.uint(r.id);
            self.byte(match r.kind {
                ResourceKind::Mutex => 0,
                ResourceKind::RwLock => 1,
                ResourceKind::Semaphore => 2,
                ResourceKind::Channel => 3,
                ResourceKind::Task => 4,
                ResourceKind::Declared(_) => 5,
                ResourceKind::Tokio(_) => 6,
            });
            // Kinds with a name of their own carry it.
            if let ResourceKind::Declared(kind) | ResourceKind::Tokio(kind) = &r.kind {
                self.str(kind);
            }
            self.str(&r.name);
            self.uint(r.holders.len() as u64);
            for p in &r.holders {
                self.party(p);
            }
            self.uint(r.extra_holders);
            self.uint(r.waiters.len() as u64);
            for p in &r.waiters {
                self.party(p);
            }
        }
    }
}

struct Decoder<'a>(&'a [u8]);

impl<'a> Decoder<'a> {
    fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], WireError> {
        if self.0.len() < n {
            return Err(WireError::Malformed { what });
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    fn byte(&mut self, what: &'static str) -> Result<u8, WireError> {
        Ok(self.take(1, what)?[0])
    }

    fn flag(&mut self, what: &'static str) -> Result<bool, WireError> {
        match self.byte(what)? {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(WireError::Malformed { what }),
        }
    }

    fn uint(&mut self, what: &'static str) -> Result<u64, WireError> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.byte(what)?;
            let bits = u64::from(b & 0x7f);
            // The tenth byte may carry only the top bit.
            if shift == 63 && bits > 1 {
                return Err(WireError::Malformed { what });
            }
            v |= bits << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(WireError::Malformed { what })
    }

    fn u32(&mut self, what: &'static str) -> Result<u32, WireError> {
        u32::try_from(self.uint(what)?).map_err(|_| WireError::Malformed { what })
    }

    fn int(&mut self, what: &'static str) -> Result<i64, WireError> {
        let v = self.uint(what)?;
        Ok(((v >> 1) as i64) ^ -((v & 1) as i64))
    }

    fn string(&mut self, what: &'static str) -> Result<String, WireError> {
        let len = usize::try_from(self.uint(what)?).map_err(|_| WireError::Malformed { what })?;
        let bytes = self.take(len, what)?;
        String::from_utf8(bytes.to_vec()).map_err(|_| WireError::Malformed { what })
    }

    /// A count of items each at least `min_item` bytes long: a count the
    /// rest of the body cannot hold is refused before anything is
    /// allocated for it.
    fn count(&mut self, min_item: usize, what: &'static str) -> Result<usize, WireError> {
        let n = self.uint(what)?;
        match usize::try_from(n) {
            Ok(n) if n.saturating_mul(min_item) <= self.0.len() => Ok(n),
            _ => Err(WireError::Malformed { what }),
        }
    }

    fn owner(&mut self) -> Result<Owner, WireError> {
        Ok(match self.byte("owner")? {
            0 => Owner::Task(self.uint("owner")?),
            1 => Owner::TokioTask(self.uint("owner")?),
            2 => Owner::Main,
            3 => Owner::Internal,
            4 => Owner::Overflow,
            _ => return Err(WireError::Malformed { what: "owner" }),
        })
    }

    fn task_ref(&mut self) -> Result<TaskRef, WireError> {
        let kind = self.byte("task")?;
        let id = self.uint("task")?;
        Ok(match kind {
            0 => TaskRef::Task(id),
            1 => TaskRef::TokioTask(id),
            2 => TaskRef::Thread(id),
            _ => return Err(WireError::Malformed { what: "task" }),
        })
    }

    fn access(&mut self) -> Result<Access, WireError> {
        Ok(match self.byte("access")? {
            0 => Access::Exclusive,
            1 => Access::Shared,
            2 => Access::Permits(self.u32("access")?),
            3 => Access::Send,
            4 => Access::Receive,
            _ => return Err(WireError::Malformed { what: "access" }),
        })
    }

    fn provenance(&mut self) -> Result<Provenance, WireError> {
        Ok(match self.byte("provenance")? {
            0 => Provenance::Recorded,
            1 => Provenance::Owns {
                path: self.string("provenance")?,
            },
            2 => Provenance::Tokio,
            _ => return Err(WireError::Malformed { what: "provenance" }),
        })
    }

    fn party(&mut self) -> Result<LiveParty, WireError> {
        Ok(LiveParty {
            task: self.task_ref()?,
            task_name: self.string("task name")?,
            since_ms: self.uint("since")?,
            access: self.access()?,
            provenance: self.provenance()?,
        })
    }

    fn parties(&mut self, what: &'static str) -> Result<Vec<LiveParty>, WireError> {
        // The smallest party: a task, an empty name, and one byte each for
        // since, access and provenance.
        let n = self.count(6, what)?;
        (0..n).map(|_| self.party()).collect()
    }

    fn update(&mut self) -> Result<Update, WireError> {
        let seq = self.uint("seq")?;
        let at_ms = self.uint("time")?;
        let elapsed_ms = self.uint("elapsed time")?;
        let totals = Totals {
            live_bytes: self.uint("totals")?,
            live_blocks: self.uint("totals")?,
            alloc_rate: self.uint("totals")?,
        };
        let row_count = self.uint("row count")?;
        // The smallest row: a bucket without intro, all figures 0.
        let n = self.count(10, "rows")?;
        let mut rows = Vec::with_capacity(n);
        for _ in 0..n {
            let owner = self.owner()?;
            let intro = if self.flag("intro")? {
                let name = self.string("name")?;
                let location = if self.flag("location")? {
                    Some(self.string("location")?)
                } else {
                    None
                };
                Some(Intro { name, location })
            } else {
                None
            };
            let state = match self.byte("state")? {
                0 => None,
                1 => Some(TaskState::Idle),
                2 => Some(TaskState::Running),
                3 => Some(TaskState::Completed),
                4 => Some(TaskState::Panicked),
                5 => Some(TaskState::Aborted),
                _ => return Err(WireError::Malformed { what: "state" }),
            };
            rows.push(RowUpdate {
                owner,
                intro,
                state,
                live_bytes: self.uint("live bytes")?,
                live_blocks: self.uint("live blocks")?,
                total_bytes: self.uint("total bytes")?,
                growth: self.int("growth")?,
                alloc_rate: self.uint("allocation rate")?,
                polls: self.uint("polls")?,
                busy_ns: self.uint("busy time")?,
            });
        }
        let n = self.count(1, "gone rows")?;
        let gone = (0..n)
            .map(|_| self.owner())
            .collect::<Result<Vec<_>, _>>()?;
        let n = self.count(5, "resources")?;
        let mut resources = Vec::with_capacity(n);
        for _ in 0..n {
            let id = self.uint("resource id")?;
            let kind = match self.byte("resource kind")? {
                0 => ResourceKind::Mutex,
                1 => ResourceKind::RwLock,
                2 => ResourceKind::Semaphore,
                3 => ResourceKind::Channel,
                4 => ResourceKind::Task,
                5 => ResourceKind::Declared(self.string("resource kind name")?),
                6 => ResourceKind::Tokio(self.string("resource kind name")?),
                _ => {
                    return Err(WireError::Malformed {
                        what: "resource kind",
                    })
                }
            };
            let name = self.string("resource name")?;
            let holders = self.parties("holders")?;
            let extra_holders = self.uint("extra holders")?;
            let waiters = self.parties("waiters")?;
            resources.push(LiveResource {
                id,
                kind,
                name,
                holders,
                extra_holders,
                waiters,
            });
        }
        Ok(Update {
            seq,
            at_ms,
            elapsed_ms,
            totals,
            row_count,
            rows,
            gone,
            resources,
        })
    }

    fn end(&self) -> Result<(), WireError> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(WireError::Malformed {
                what: "frame length (bytes left over)",
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hello() -> Hello {
        Hello {
            version: LIVE_VERSION,
            pid: 4242,
            executable: "/usr/bin/bank-service".to_owned(),
            snapshot_dir: "/var/tmp/tw".to_owned(),
            interval_ms: 1000,
        }
    }

    fn update() -> Update {
        Update {
            seq: 7,
            at_ms: 1_700_000_000_123,
            elapsed_ms: 1001,
            totals: Totals {
                live_bytes: 12 << 20,
                live_blocks: 3456,
                alloc_rate: 1 << 20,
            },
            row_count: 3,
            rows: vec![
                RowUpdate {
                    owner: Owner::Task(3),
                    intro: Some(Intro {
                        name: "grower ✓".to_owned(),
                        location: Some("examples/live_growth.rs:40:5".to_owned()),
                    }),
                    state: Some(TaskState::Idle),
                    live_bytes: u64::MAX,
                    live_blocks: 0,
                    total_bytes: 1 << 40,
                    growth: i64::MIN,
                    alloc_rate: 300,
                    polls: 12,
                    busy_ns: 999_999,
                },
                RowUpdate {
                    owner: Owner::Main,
                    intro: Some(Intro {
                        name: "main (outside tasks)".to_owned(),
                        location: None,
                    }),
                    state: None,
                    live_bytes: 10,
                    live_blocks: 1,
                    total_bytes: 10,
                    growth: i64::MAX,
                    alloc_rate: 0,
                    polls: 0,
                    busy_ns: 0,
                },
                RowUpdate {
                    owner: Owner::TokioTask(99),
                    intro: None,
                    state: Some(TaskState::Aborted),
                    live_bytes: 1,
                    live_blocks: 1,
                    total_bytes: 1,
                    growth: -1,
                    alloc_rate: 1,
                    polls: 1,
                    busy_ns: 1,
                },
            ],
            gone: vec![Owner::Task(1), Owner::Internal, Owner::Overflow],
            resources: vec![LiveResource {
                id: 5,
                kind: ResourceKind::Semaphore,
                name: "db".to_owned(),
                holders: vec![
                    LiveParty {
                        task: TaskRef::Thread(2),
                        task_name: "thread #2 (outside tasks)".to_owned(),
                        since_ms: 3000,
                        access: Access::Permits(u32::MAX),
                        provenance: Provenance::Recorded,
                    },
                    LiveParty {
                        task: TaskRef::Task(3),
                        task_name: "grower ✓".to_owned(),
                        since_ms: 12,
                        access: Access::Send,
                        provenance: Provenance::Owns {
                            path: "future state +0x28".to_owned(),
                        },
                    },
                ],
                extra_holders: 4,
                waiters: vec![
                    LiveParty {
                        task: TaskRef::Task(3),
                        task_name: "grower ✓".to_owned(),
                        since_ms: 0,
                        access: Access::Shared,
                        provenance: Provenance::Recorded,
                    },
                    LiveParty {
                        task: TaskRef::TokioTask(8),
                        task_name: "tokio task 8".to_owned(),
                        since_ms: 1,
                        access: Access::Receive,
                        provenance: Provenance::Tokio,
                    },
                ],
            }],
        }
    }

    fn round_trip(frame: ServerFrame) {
        let mut stream = Vec::new();
        frame.write_to(&mut stream).unwrap();
        assert_eq!(
            u32::from_le_bytes(stream[..4].try_into().unwrap()) as usize,
            stream.len() - 4
        );
        let mut reader = stream.as_slice();
        let body = read_frame(&mut reader, MAX_FRAME_BYTES).unwrap();
        assert!(reader.is_empty());
        assert_eq!(ServerFrame::decode(&body).unwrap(), frame);
    }

    #[test]
    fn every_server_frame_round_trips() {
        round_trip(ServerFrame::Hello(hello()));
        round_trip(ServerFrame::Update(update()));
        round_trip(ServerFrame::Update(Update::default()));
        round_trip(ServerFrame::SnapshotWritten {
            path: "/var/tmp/tw/turbowish-4242-1.json".to_owned(),
        });
        round_trip(ServerFrame::SnapshotFailed {
            message: "/var/tmp/tw: cannot write snapshots here: denied".to_owned(),
        });
        round_trip(ServerFrame::Refused {
            message: "too many viewers".to_owned(),
        });
    }

    #[test]
    fn client_frames_round_trip() {
        let mut stream = Vec::new();
        ClientFrame::Snapshot.write_to(&mut stream).unwrap();
        assert_eq!(stream, [1, 0, 0, 0, REQUEST_SNAPSHOT]);
        let body = read_frame(&mut stream.as_slice(), MAX_FRAME_BYTES).unwrap();
        assert_eq!(ClientFrame::decode(&body).unwrap(), ClientFrame::Snapshot);
        assert!(matches!(
            ClientFrame::decode(&[99]),
            Err(WireError::UnknownFrame(99))
        ));
    }

    #[test]
    fn the_hello_prefix_is_fixed() {
        let body = ServerFrame::Hello(hello()).encode();
        assert_eq!(&body[..9], &[0, b'T', b'W', b'L', b'V', 2, 0, 0, 0]);
    }

    #[test]
    fn another_version_is_refused_before_the_rest_is_parsed() {
        // Version 1 (parties without provenance) and a later version 3,
        // each with a body this version could not parse.
        for found in [1u32, 3] {
            let mut body = vec![HELLO];
            body.extend_from_slice(&MAGIC);
            body.extend_from_slice(&found.to_le_bytes());
            body.extend_from_slice(&[0xff; 3]);
            let mut stream = (body.len() as u32).to_le_bytes().to_vec();
            stream.extend_from_slice(&body);
            let err = ServerFrame::read_hello(&mut stream.as_slice()).unwrap_err();
            assert!(
                matches!(err, WireError::Version { found: f, supported: 2 } if f == found),
                "{err:?}"
            );
            let message = err.to_string();
            assert_eq!(
                message,
                format!("the program speaks live-view format version {found}, this turbowish reads version 2: use a turbowish built from the same TurboWish release as the program")
            );
            assert!(!message.contains('\n'));
        }
    }

    #[test]
    fn each_provenance_has_its_own_byte_and_an_unknown_one_is_refused() {
        let party = |provenance| LiveParty {
            task: TaskRef::Task(1),
            task_name: String::new(),
            since_ms: 0,
            access: Access::Send,
            provenance,
        };
        let encoded = |p: &LiveParty| {
            let mut e = Encoder::default();
            e.party(p);
            e.0
        };
        // task (kind, id), name, since, access, then the provenance.
        assert_eq!(encoded(&party(Provenance::Recorded)), [0, 1, 0, 0, 3, 0]);
        assert_eq!(encoded(&party(Provenance::Tokio)), [0, 1, 0, 0, 3, 2]);
        assert_eq!(
            encoded(&party(Provenance::Owns {
                path: "f".to_owned()
            })),
            [0, 1, 0, 0, 3, 1, 1, b'f']
        );
        assert!(matches!(
            Decoder(&[0, 1, 0, 0, 3, 3]).party(),
            Err(WireError::Malformed { what: "provenance" })
        ));
    }

    #[test]
    fn a_stream_that_is_not_live_is_named_so() {
        for first in [
            &b"{\"format_version\":1}"[..],
            &[UPDATE][..],
            &[HELLO, b'X'][..],
        ] {
            let mut stream = (first.len() as u32).to_le_bytes().to_vec();
            stream.extend_from_slice(first);
            assert!(
                matches!(
                    ServerFrame::read_hello(&mut stream.as_slice()),
                    Err(WireError::NotLive)
                ),
                "{first:?}"
            );
        }
    }

    #[test]
    fn a_refusal_instead_of_the_hello_is_told() {
        let mut stream = Vec::new();
        ServerFrame::Refused {
            message: "4 viewers are connected already".to_owned(),
        }
        .write_to(&mut stream)
        .unwrap();
        let err = ServerFrame::read_hello(&mut stream.as_slice()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "the program refused the viewer: 4 viewers are connected already"
        );
    }

    #[test]
    fn ends_and_sizes_are_told_apart() {
        assert!(matches!(
            read_frame(&mut &[][..], MAX_FRAME_BYTES),
            Err(WireError::Closed)
        ));
        assert!(matches!(
            read_frame(&mut &[3, 0][..], MAX_FRAME_BYTES),
            Err(WireError::Truncated)
        ));
        assert!(matches!(
            read_frame(&mut &[3, 0, 0, 0, 1][..], MAX_FRAME_BYTES),
            Err(WireError::Truncated)
        ));
        assert!(matches!(
            read_frame(&mut &[0xff, 0xff, 0xff, 0xff][..], MAX_FRAME_BYTES),
            Err(WireError::TooLarge {
                len: 0xffff_ffff,
                max: MAX_FRAME_BYTES
            })
        ));
    }

    #[test]
    fn every_cut_of_an_update_is_an_error_not_a_panic() {
        let body = ServerFrame::Update(update()).encode();
        for len in 0..body.len() {
            assert!(ServerFrame::decode(&body[..len]).is_err(), "cut at {len}");
        }
        let mut longer = body.clone();
        longer.push(0);
        assert!(matches!(
            ServerFrame::decode(&longer),
            Err(WireError::Malformed { .. })
        ));
    }

    #[test]
    fn huge_counts_are_refused_without_allocating() {
        // An update whose row count claims 2^63 rows.
        let mut e = Encoder::default();
        e.byte(UPDATE);
        for _ in 0..7 {
            e.uint(0);
        }
        e.uint(1 << 63);
        assert!(matches!(
            ServerFrame::decode(&e.0),
            Err(WireError::Malformed { what: "rows" })
        ));
        // A varint longer than 64 bits.
        let mut body = vec![SNAPSHOT_WRITTEN];
        body.extend_from_slice(&[0xff; 10]);
        body.push(0x01);
        assert!(ServerFrame::decode(&body).is_err());
    }

    #[test]
    fn many_smallest_rows_are_not_taken_for_a_huge_count() {
        let row = RowUpdate {
            owner: Owner::Main,
            intro: None,
            state: None,
            live_bytes: 0,
            live_blocks: 0,
            total_bytes: 0,
            growth: 0,
            alloc_rate: 0,
            polls: 0,
            busy_ns: 0,
        };
        round_trip(ServerFrame::Update(Update {
            rows: vec![row; 100],
            ..Update::default()
        }));
        // Parties too: the smallest is six bytes.
        let party = LiveParty {
            task: TaskRef::Task(0),
            task_name: String::new(),
            since_ms: 0,
            access: Access::Exclusive,
            provenance: Provenance::Recorded,
        };
        round_trip(ServerFrame::Update(Update {
            resources: vec![LiveResource {
                id: 0,
                kind: ResourceKind::Mutex,
                name: String::new(),
                holders: vec![party.clone(); 100],
                extra_holders: 0,
                waiters: vec![party; 100],
            }],
            ..Update::default()
        }));
    }

    #[test]
    fn varints_cover_the_extremes() {
        for v in [0, 1, 127, 128, 300, u64::from(u32::MAX), u64::MAX] {
            let mut e = Encoder::default();
            e.uint(v);
            assert_eq!(Decoder(&e.0).uint("v").unwrap(), v);
        }
        for v in [0, -1, 1, i64::MIN, i64::MAX] {
            let mut e = Encoder::default();
            e.int(v);
            assert_eq!(Decoder(&e.0).int("v").unwrap(), v);
        }
    }
}
