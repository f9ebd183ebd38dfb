#![doc = include_str!("../README.md")]

mod capture;
mod convert;
mod live;
mod signal;
mod snapshot_file;
mod symbolize;

pub use capture::snapshot;
pub use live::{live_socket_name, LiveError, LiveSampler, MAX_VIEWERS, UPDATE_INTERVAL};
pub use signal::{install_signal_handler, serve, SignalConfig, SignalHandle};
pub use snapshot_file::{snapshot_to_dir, write_to_dir, SnapshotError};
