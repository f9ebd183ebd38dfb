#![doc = include_str!("../README.md")]

mod budget;
mod capture;
mod convert;
mod live;
mod signal;
mod snapshot_file;
mod symbolize;
pub mod testing;

pub use budget::{
    BudgetCallback, BudgetEvent, BudgetHandle, BudgetTrigger, Budgets, BUDGET_INTERVAL_ENV,
    DEFAULT_BUDGET_INTERVAL, GROWTH_LIMIT_ENV, LIVE_LIMIT_ENV,
};
pub use capture::snapshot;
pub use live::{live_socket_name, LiveError, LiveSampler, MAX_VIEWERS, UPDATE_INTERVAL};
pub use signal::{install_signal_handler, serve, SignalConfig, SignalHandle};
pub use snapshot_file::{snapshot_to_dir, write_to_dir, SnapshotError};
