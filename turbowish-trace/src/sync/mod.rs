//! Instrumented synchronisation resources: drop-in replacements for
//! `tokio::sync`'s `Mutex`, `RwLock`, `Semaphore`, `mpsc` and `oneshot` that
//! record who holds them and who waits, for [`crate::sync::resources`], [`crate::chains`] and
//! [`crate::chains::cycles`].
//!
//! Each is built on the public resource API ([`crate::resource`]): a
//! [`Resource`](crate::resource::Resource) of its kind beside tokio's
//! primitive, a [`Hold`](crate::resource::Hold) in each guard, a
//! [`Wait`](crate::resource::Wait) on the contended path, an
//! [`End`](crate::resource::End) in each channel end. A library's own
//! resources are recorded, analysed and reported the same way.
//!
//! Recording a holder on the uncontended path takes a spin lock (one atomic
//! swap) on the resource's record table, a read of the coarse
//! monotonic clock and a copy of the frame path; it never allocates. A
//! waiter is recorded only on the contended path.

mod join;
pub mod mpsc;
mod mutex;
pub mod oneshot;
mod owned;
pub(crate) mod resource;
mod rwlock;
mod semaphore;

pub(crate) use join::Joining;
pub use mutex::{Mutex, MutexGuard, OwnedMutexGuard};
pub(crate) use owned::erase;
pub(crate) use resource::{live_resources, marked, marked_slot, LiveResources, MarkKind};
pub use resource::{
    resources, Access, Class, Party, Provenance, ResourceInfo, ResourceKind, TaskRef, TokioKind,
};
pub use rwlock::{
    OwnedRwLockReadGuard, OwnedRwLockWriteGuard, RwLock, RwLockReadGuard, RwLockWriteGuard,
};
pub use semaphore::{OwnedSemaphorePermit, Semaphore, SemaphorePermit};

/// Spends one unit of tokio's cooperative budget, yielding when it is used
/// up, as tokio's own `lock`, `acquire`, `send` and `recv` do. The wrappers
/// try the non-waiting `try_*` call first (so that the uncontended path
/// records no waiter), and those calls spend no budget: without this, a loop
/// over an always-ready channel or lock would never yield and could starve
/// the other tasks on its worker.
#[inline]
fn cooperate() -> impl std::future::Future<Output = ()> {
    let mut proceeded = false;
    std::future::poll_fn(move |cx| {
        if proceeded {
            return std::task::Poll::Ready(());
        }
        let restore = std::task::ready!(tokio::task::coop::poll_proceed(cx));
        restore.made_progress();
        proceeded = true;
        std::task::Poll::Ready(())
    })
}

/// The acquisition protocol every wrapper follows: spend one unit of
/// tokio's budget, try `try_now` (the uncontended path, which records no
/// waiter), and only if that fails record the caller as a waiter
/// ([`crate::resource::Resource::wait`]) for the length of `wait`. The
/// waiter record goes when the wait ends or its future is dropped (a lost
/// `select!` branch). The caller records the holder.
///
/// `inner` is what both attempts use: a shared reference for locks, an
/// `Arc` for owned guards, a `&mut` receiver for channels.
async fn acquire_recorded<I, G, F, W>(
    start_wait: impl FnOnce() -> W,
    mut inner: I,
    try_now: impl FnOnce(&mut I) -> Option<G>,
    wait: impl FnOnce(I) -> F,
) -> G
where
    F: std::future::Future<Output = G>,
{
    cooperate().await;
    if let Some(got) = try_now(&mut inner) {
        return got;
    }
    let _waiting = start_wait();
    wait(inner).await
}
