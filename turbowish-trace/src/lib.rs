#![doc = include_str!("../README.md")]

#[cfg(all(feature = "tokio-unstable", not(tokio_unstable)))]
compile_error!(
    "turbowish-trace's `tokio-unstable` feature needs tokio's unstable API: \
     build with RUSTFLAGS=\"--cfg tokio_unstable\""
);

mod frame;
#[cfg(all(feature = "tokio-unstable", tokio_unstable))]
mod hooks;
mod registry;
mod task;

pub use frame::{current_frames, Frame, Frames, TracedExt, MAX_FRAMES};
pub use registry::{
    current_task, registry_len, tasks, TaskInfo, TaskKind, TaskState, LARGE_FUTURE_BYTES,
};
pub use task::{spawn, spawn_local, spawn_on, Traced};
pub use turbowish_alloc::context;

#[cfg(all(feature = "tokio-unstable", tokio_unstable))]
pub use hooks::install_hooks;
