#![doc = include_str!("../README.md")]

#[cfg(all(feature = "tokio-unstable", not(tokio_unstable)))]
compile_error!(
    "turbowish-trace's `tokio-unstable` feature needs tokio's unstable API: \
     build with RUSTFLAGS=\"--cfg tokio_unstable\""
);

#[cfg(all(feature = "tokio-resources", not(tokio_unstable)))]
compile_error!(
    "turbowish-trace's `tokio-resources` feature reads tokio's unstable instrumentation: \
     build with RUSTFLAGS=\"--cfg tokio_unstable\""
);

// Lets `#[derive(Trace)]`'s `::turbowish_trace::` paths work inside this crate.
extern crate self as turbowish_trace;

pub mod chains;
mod clock;
pub mod frame;
#[cfg(all(feature = "tokio-unstable", tokio_unstable))]
mod hooks;
pub mod ownership;
mod registry;
pub mod resource;
mod roots;
mod scc;
pub mod sync;
pub mod task;
#[cfg(all(feature = "tokio-resources", tokio_unstable))]
pub mod tokio_resources;
mod trace;
pub mod walk;

pub use frame::TracedExt;
pub use task::{spawn, spawn_local, spawn_on};
pub use trace::{Trace, Tracer};
pub use turbowish_alloc::context;
#[cfg(feature = "derive")]
pub use turbowish_trace_derive::Trace;
pub use walk::root;

#[cfg(all(feature = "tokio-unstable", tokio_unstable))]
pub use hooks::install_hooks;
