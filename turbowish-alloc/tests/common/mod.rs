//! Helpers shared by the integration tests. Each test file includes this
//! module with `mod common;` and keeps its own `#[global_allocator]`.

// Each test binary uses a different subset of these.
#![allow(dead_code)]

use std::sync::{Mutex, MutexGuard};

use turbowish_alloc::{stats, Counters, Owner, TaskTag};

/// Serialises the tests of one binary that must not run at the same time.
/// A lock poisoned by a failed test is taken over, so that one failure does
/// not fail every later test.
pub(crate) fn serial() -> MutexGuard<'static, ()> {
    static SERIAL: Mutex<()> = Mutex::new(());
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// The `stats()` owner of a tokio task: the number its id displays as.
pub(crate) fn tokio_owner(id: tokio::task::Id) -> Owner {
    Owner::TokioTask(id.to_string().parse::<u64>().expect("task id is a u64"))
}

/// `tag`'s row in a fresh `stats()` (all zero if it has none).
pub(crate) fn row(tag: &TaskTag) -> Counters {
    stats().counters(Owner::Task(tag.id()))
}
