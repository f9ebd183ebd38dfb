#![doc = include_str!("../README.md")]

#[cfg(all(feature = "tokio-unstable", not(tokio_unstable)))]
compile_error!(
    "turbowish-trace's `tokio-unstable` feature needs tokio's unstable API: \
     build with RUSTFLAGS=\"--cfg tokio_unstable\""
);

// Lets `#[derive(Trace)]`'s `::turbowish_trace::` paths work inside this crate.
extern crate self as turbowish_trace;

mod chains;
mod frame;
#[cfg(all(feature = "tokio-unstable", tokio_unstable))]
mod hooks;
mod registry;
mod roots;
mod task;
mod trace;
mod walk;

pub mod sync;

pub use chains::{chains, cycles, Chain, ChainEnd, Cycle, Link};
pub use frame::{current_frames, Frame, FramePath, Frames, TracedExt, MAX_FRAMES};
pub use registry::{
    current_task, registry_len, tasks, TaskInfo, TaskKind, TaskState, LARGE_FUTURE_BYTES,
};
pub use roots::{root, unroot, RootId};
pub use sync::resources;
pub use task::{spawn, spawn_local, spawn_on, Traced};
pub use trace::{Trace, Tracer};
pub use turbowish_alloc::context;
#[cfg(feature = "derive")]
pub use turbowish_trace_derive::Trace;
pub use walk::{
    walk, walk_locating, walk_with, Amount, Block, BlockIndex, GuardLocation, Holder, IndexError,
    LocatedBlock, RootRetained, TaskRetained, TypeCensus, Unattributed, WalkReport, WalkRoot,
    WalkStats,
};

#[cfg(all(feature = "tokio-unstable", tokio_unstable))]
pub use hooks::install_hooks;
