//! Task registry and context, frames, and (in later releases) the `Trace`
//! trait, instrumented sync resources and the heap walker of TurboWish.
//!
//! Spawn through [`spawn`] to give a task a name and a spawn location; name
//! futures inside it with [`TracedExt::traced`]; read the per-task memory
//! report with [`tasks`].
//!
//! ```
//! use turbowish_trace::TracedExt;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let conn = turbowish_trace::spawn("conn-17", async {
//!     async {
//!         let user = String::from("ada");
//!         (user, turbowish_trace::current_frames().to_string())
//!     }
//!     .traced("load_user")
//!     .await
//! });
//! let (_, path) = conn.await.unwrap();
//! assert_eq!(path, "load_user");
//! # }
//! ```

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
