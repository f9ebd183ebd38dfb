#![doc = include_str!("../README.md")]

pub mod atomic_write;
pub mod format;
pub mod limits;
pub mod live;
mod load;
pub mod schema;
pub mod table;

pub use load::{LoadError, MAX_SNAPSHOT_BYTES};
pub use schema::{Snapshot, FORMAT_VERSION, SUPPORTED_VERSIONS};
