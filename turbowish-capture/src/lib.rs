#![doc = include_str!("../README.md")]

mod capture;
mod convert;
mod signal;
mod snapshot_file;
mod symbolize;

pub use capture::snapshot;
pub use signal::{install_signal_handler, SignalConfig, SignalHandle};
pub use snapshot_file::{snapshot_to_dir, write_to_dir, SnapshotError};
