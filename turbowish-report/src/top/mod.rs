//! `turbowish top`: a live view of a program serving TurboWish's live
//! endpoint (`TURBOWISH_LIVE=1`, see `turbowish_capture::SignalConfig::live`).
//!
//! [`client`] finds and connects to the endpoint; [`model`] keeps what the
//! stream has told, with the sort and filter logic; [`app`] is the
//! viewer's own state and its keys; [`render`] draws it with ratatui;
//! [`run`] is the event loop on a real terminal, restored on every way out,
//! a panic included.

pub mod app;
pub mod client;
pub mod model;
pub mod render;
mod terminal;

use std::fmt;
use std::io::{self, IsTerminal};
use std::sync::mpsc;
use std::time::Duration;

use ratatui::crossterm::event::{self, Event, KeyEventKind};
use turbowish_snapshot::live::WireError;

use app::{Action, App};
use client::{ConnectError, Connection, Target};

/// Why `turbowish top` stopped other than by `q`. Its `Display` is one
/// line.
#[derive(Debug)]
#[non_exhaustive]
pub enum TopError {
    /// The program's endpoint could not be reached.
    Connect(ConnectError),
    /// The program went away mid-stream, or sent what this viewer cannot
    /// read.
    Lost {
        /// The program's pid.
        pid: u32,
        /// What happened.
        source: WireError,
    },
    /// Standard input or output is not a terminal.
    NotATerminal,
    /// The terminal could not be used.
    Terminal(io::Error),
}

impl TopError {
    /// The exit status for this failure: 2 for a stream this viewer does
    /// not read (another version), 1 otherwise.
    pub fn exit_code(&self) -> u8 {
        match self {
            TopError::Connect(ConnectError::Handshake { .. }) => 2,
            _ => 1,
        }
    }
}

impl fmt::Display for TopError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TopError::Connect(e) => e.fmt(f),
            TopError::Lost {
                pid,
                source: WireError::Closed | WireError::Truncated,
            } => write!(
                f,
                "program {pid} closed the live connection (it exited, or stopped serving)"
            ),
            TopError::Lost { pid, source } => {
                write!(f, "lost program {pid}'s live stream: {source}")
            }
            TopError::NotATerminal => {
                f.write_str("turbowish top needs a terminal: standard input and output must be one")
            }
            TopError::Terminal(e) => write!(f, "cannot use the terminal: {e}"),
        }
    }
}

impl std::error::Error for TopError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            TopError::Connect(e) => Some(e),
            TopError::Lost { source, .. } => Some(source),
            TopError::Terminal(e) => Some(e),
            TopError::NotATerminal => None,
        }
    }
}

impl From<ConnectError> for TopError {
    fn from(e: ConnectError) -> TopError {
        TopError::Connect(e)
    }
}

/// How long the event loop waits for a key before looking at the stream.
const TICK: Duration = Duration::from_millis(100);

/// Connects to `target`, then runs the viewer on this terminal until `q`
/// (`Ok`) or until the program goes (`Err`). Connection failures are
/// returned before the terminal is touched; every later way out, a panic
/// included, leaves the terminal as it was.
pub fn run(target: &Target) -> Result<(), TopError> {
    let mut connection = Connection::open(target)?;
    // Checked after connecting, so a failure to connect is told first;
    // crossterm would otherwise take /dev/tty behind a redirected stdin.
    if !io::stdin().is_terminal() || !io::stdout().is_terminal() {
        return Err(TopError::NotATerminal);
    }
    let pid = connection.hello.pid;
    let mut reader = connection.try_clone().map_err(TopError::Terminal)?;
    let (frames, incoming) = mpsc::channel();
    std::thread::Builder::new()
        .name("turbowish-top-reader".to_owned())
        .spawn(move || loop {
            let frame = reader.next_frame();
            let end = frame.is_err();
            if frames.send(frame).is_err() || end {
                return;
            }
        })
        .map_err(TopError::Terminal)?;

    let mut terminal = terminal::Guard::enter().map_err(TopError::Terminal)?;
    let mut app = App::new(connection.hello.clone());
    // A test hook: the panic path must restore the terminal too.
    let panic_after_draw = std::env::var_os("TURBOWISH_TOP_TEST_PANIC").is_some();
    let mut dirty = true;
    loop {
        if dirty {
            terminal
                .draw(|frame| render::render(&mut app, frame))
                .map_err(TopError::Terminal)?;
            dirty = false;
            if panic_after_draw && app.model.seq > 0 {
                panic!("TURBOWISH_TOP_TEST_PANIC: a panic while the viewer runs");
            }
        }
        if event::poll(TICK).map_err(TopError::Terminal)? {
            match event::read().map_err(TopError::Terminal)? {
                Event::Key(key) if key.kind != KeyEventKind::Release => {
                    dirty = true;
                    match app.on_key(key) {
                        Action::Quit => return Ok(()),
                        Action::Snapshot => {
                            if let Err(e) = connection.request_snapshot() {
                                app.status = format!("snapshot request failed: {e}");
                            }
                        }
                        Action::None => {}
                    }
                }
                Event::Resize(..) => dirty = true,
                _ => {}
            }
        }
        loop {
            match incoming.try_recv() {
                Ok(Ok(frame)) => {
                    app.on_frame(frame);
                    dirty = true;
                }
                Ok(Err(source)) => return Err(TopError::Lost { pid, source }),
                Err(mpsc::TryRecvError::Empty) => break,
                Err(mpsc::TryRecvError::Disconnected) => {
                    return Err(TopError::Lost {
                        pid,
                        source: WireError::Closed,
                    })
                }
            }
        }
    }
}
