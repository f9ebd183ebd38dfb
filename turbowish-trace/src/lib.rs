#![doc = include_str!("../README.md")]

#[cfg(all(feature = "tokio-unstable", not(tokio_unstable)))]
compile_error!(
    "turbowish-trace's `tokio-unstable` feature needs tokio's unstable API: \
     build with RUSTFLAGS=\"--cfg tokio_unstable\""
);

mod chains;
mod frame;
#[cfg(all(feature = "tokio-unstable", tokio_unstable))]
mod hooks;
mod registry;
mod task;

pub mod sync;

pub use chains::{chains, cycles, Chain, ChainEnd, Cycle, Link};
pub use frame::{current_frames, Frame, FramePath, Frames, TracedExt, MAX_FRAMES};
pub use registry::{
    current_task, registry_len, tasks, TaskInfo, TaskKind, TaskState, LARGE_FUTURE_BYTES,
};
pub use sync::resources;
pub use task::{spawn, spawn_local, spawn_on, Traced};
pub use turbowish_alloc::context;

#[cfg(all(feature = "tokio-unstable", tokio_unstable))]
pub use hooks::install_hooks;
