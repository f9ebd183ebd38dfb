//! Instrumented synchronisation resources: drop-in replacements for
//! `tokio::sync`'s `Mutex`, `RwLock`, `Semaphore`, `mpsc` and `oneshot` that
//! record who holds them and who waits, for [`crate::resources`], [`crate::chains`] and
//! [`crate::cycles`].
//!
//! Recording a holder on the uncontended path takes a spin lock (one atomic
//! swap) on the resource's record table, a read of the coarse
//! monotonic clock and a copy of the frame path; it never allocates. A
//! waiter is recorded only on the contended path.

pub mod mpsc;
mod mutex;
pub mod oneshot;
mod resource;
mod rwlock;
mod semaphore;

pub use mutex::{Mutex, MutexGuard, OwnedMutexGuard};
pub use resource::{resources, Access, Party, ResourceInfo, ResourceKind, TaskRef};
pub use rwlock::{RwLock, RwLockReadGuard, RwLockWriteGuard};
pub use semaphore::{OwnedSemaphorePermit, Semaphore, SemaphorePermit};
