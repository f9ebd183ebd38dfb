//! A third-party resource declared through `turbowish::trace::resource`
//! deadlocks two tasks, and the real `turbowish chains` names it by its
//! own kind and name and exits 3.
//!
//! The library here is a token bucket (`rate-limiter`) built on a plain
//! `tokio::sync::Semaphore`, as a crate outside TurboWish would write it:
//! a cumulative resource with one unit per token. Two tasks each take a
//! token and then wait for a second one; the bucket has two, so neither
//! wait can end. A second test declares an exclusive kind (`lease`) and
//! takes two instances in opposite orders.
//!
//! Runs `target/<profile>/turbowish`, which `support::example_binary`
//! first brings up to date.

#[path = "../turbowish-report/tests/cli_support/mod.rs"]
mod cli_support;
mod support;

use std::panic::Location;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use cli_support::{run, text};
use turbowish::snapshot::schema::{Access, ResourceKind};
use turbowish::snapshot::Snapshot;
use turbowish::trace::resource::{Class, Hold, OwnedHold, Resource};
use turbowish::trace::sync;
use turbowish::trace::TracedExt;

#[global_allocator]
static ALLOC: turbowish::TurboWish = turbowish::TurboWish::system();

/// The third-party library: a token bucket that records its tokens.
mod limiter {
    use super::*;

    pub(crate) struct TokenBucket {
        resource: Resource,
        tokens: Arc<tokio::sync::Semaphore>,
    }

    /// A token, given back on drop.
    pub(crate) struct Token {
        _hold: OwnedHold,
        _permit: tokio::sync::OwnedSemaphorePermit,
    }

    impl TokenBucket {
        #[track_caller]
        pub(crate) fn new(name: &'static str, tokens: usize) -> TokenBucket {
            TokenBucket {
                resource: Resource::new(
                    "rate-limiter",
                    name,
                    Class::Cumulative { capacity: tokens },
                ),
                tokens: Arc::new(tokio::sync::Semaphore::new(tokens)),
            }
        }

        #[track_caller]
        pub(crate) fn take(&self) -> impl std::future::Future<Output = Token> + '_ {
            let location = Location::caller();
            async move {
                let one = sync::Access::Permits(1);
                let permit = match Arc::clone(&self.tokens).try_acquire_owned() {
                    Ok(permit) => permit,
                    Err(_) => {
                        let _waiting = self.resource.wait_at(one, location).unwrap();
                        Arc::clone(&self.tokens).acquire_owned().await.unwrap()
                    }
                };
                Token {
                    _hold: self.resource.hold_owned_at(one, location).unwrap(),
                    _permit: permit,
                }
            }
        }
    }
}

/// A lease on one shard: an exclusive resource of its own kind, taken with
/// a plain tokio mutex underneath.
struct Lease {
    resource: Resource,
    lock: tokio::sync::Mutex<()>,
}

impl Lease {
    #[track_caller]
    fn new(name: &'static str) -> Lease {
        Lease {
            resource: Resource::new("lease", name, Class::Exclusive),
            lock: tokio::sync::Mutex::new(()),
        }
    }

    #[track_caller]
    fn acquire(
        &self,
    ) -> impl std::future::Future<Output = (Hold<'_>, tokio::sync::MutexGuard<'_, ()>)> {
        let location = Location::caller();
        async move {
            let guard = match self.lock.try_lock() {
                Ok(guard) => guard,
                Err(_) => {
                    let _waiting = self
                        .resource
                        .wait_at(sync::Access::Exclusive, location)
                        .unwrap();
                    self.lock.lock().await
                }
            };
            let hold = self
                .resource
                .hold_at(sync::Access::Exclusive, location)
                .unwrap();
            (hold, guard)
        }
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// Waits (as long as a loaded machine needs) for the graph to hold a cycle,
/// then snapshots into `dir`.
async fn snapshot_once_deadlocked(dir: &Path, kind: &str) -> PathBuf {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !turbowish::trace::chains::cycles(&turbowish::trace::sync::resources())
        .iter()
        .any(|c| c.to_string().contains(kind))
    {
        assert!(Instant::now() < deadline, "no deadlock appeared");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    turbowish::capture::snapshot_to_dir(dir).unwrap()
}

/// `turbowish chains` on `path`: its output, checked for exit status 3.
fn chains_exit_3(path: &Path) -> String {
    // Brings the `turbowish` binary up to date (with the examples).
    let _ = support::example_binary("db_pool");
    let out = run(&["chains", path.to_str().unwrap()], b"");
    let chains = text(&out.stdout);
    assert_eq!(out.status.code(), Some(3), "{chains}{}", text(&out.stderr));
    chains
}

/// The two stories run one after the other in one test: the wait-for graph
/// is the process's, and the first story's tasks stay deadlocked (their
/// runtime abandoned) while the second runs.
#[test]
fn declared_resources_deadlock_and_chains_names_them_by_kind_and_name() {
    rate_limiter_deadlock();
    opposite_leases_deadlock();
}

fn rate_limiter_deadlock() {
    let dir = tempfile::tempdir().unwrap();
    let runtime = runtime();
    let path = runtime.block_on(async {
        let bucket = Arc::new(limiter::TokenBucket::new("api-quota", 2));
        let both = Arc::new(tokio::sync::Barrier::new(2));
        for name in ["crawler-a", "crawler-b"] {
            let (bucket, both) = (bucket.clone(), both.clone());
            turbowish::trace::spawn(name, async move {
                let _first = async { bucket.take().await }.traced("fetch").await;
                both.wait().await;
                let _second = async { bucket.take().await }.traced("follow_link").await;
            });
        }
        snapshot_once_deadlocked(dir.path(), "rate-limiter").await
    });
    runtime.shutdown_background();

    let snap = Snapshot::load(&path).unwrap();
    let quota = snap
        .resources
        .iter()
        .find(|r| r.name == "api-quota")
        .expect("the declared resource");
    assert_eq!(
        quota.kind,
        ResourceKind::Declared("rate-limiter".to_owned())
    );
    assert_eq!(quota.permits, Some(2));
    assert_eq!(quota.holders.len(), 2);
    assert_eq!(quota.waiters.len(), 2);
    assert!(quota.waiters.iter().all(|w| w.access == Access::Permits(1)));
    assert_eq!(snap.cycles.len(), 1, "{:#?}", snap.cycles);
    let mut waiters: Vec<&str> = snap.cycles[0]
        .links
        .iter()
        .map(|l| l.waiter.task_name.as_str())
        .collect();
    waiters.sort_unstable();
    assert_eq!(waiters, ["crawler-a", "crawler-b"]);

    let chains = chains_exit_3(&path);
    assert!(chains.starts_with("1 deadlock, "), "{chains}");
    let deadlock = chains
        .lines()
        .find(|l| l.starts_with("deadlock: "))
        .expect("a deadlock line");
    for needle in [
        "holds rate-limiter \"api-quota\"",
        "waits for rate-limiter \"api-quota\"",
        "\"crawler-a\"",
        "\"crawler-b\"",
        "› follow_link",
    ] {
        assert!(deadlock.contains(needle), "no {needle} in {deadlock}");
    }
    // Each step names the resource, where each holder took its token and
    // in which frame.
    assert!(
        chains.contains("rate-limiter \"api-quota\", created at tests/declared_resources.rs:"),
        "{chains}"
    );
    assert_eq!(chains.matches(" in fetch\n").count(), 4, "{chains}");
}

fn opposite_leases_deadlock() {
    let dir = tempfile::tempdir().unwrap();
    let runtime = runtime();
    let path = runtime.block_on(async {
        let shards = Arc::new([Lease::new("shard-1"), Lease::new("shard-2")]);
        let both = Arc::new(tokio::sync::Barrier::new(2));
        for (name, first, second) in [("rebalance-a", 0, 1), ("rebalance-b", 1, 0)] {
            let (shards, both) = (shards.clone(), both.clone());
            turbowish::trace::spawn(name, async move {
                let _first = shards[first].acquire().await;
                both.wait().await;
                let _second = shards[second].acquire().await;
            });
        }
        snapshot_once_deadlocked(dir.path(), "lease").await
    });
    runtime.shutdown_background();

    let chains = chains_exit_3(&path);
    let deadlock = chains
        .lines()
        .find(|l| l.starts_with("deadlock: ") && l.contains("lease"))
        .expect("a deadlock line through the leases");
    for needle in [
        "lease \"shard-1\"",
        "lease \"shard-2\"",
        "\"rebalance-a\"",
        "\"rebalance-b\"",
    ] {
        assert!(deadlock.contains(needle), "no {needle} in {deadlock}");
    }
    assert!(chains.contains("(exclusive, recorded)"), "{chains}");
}
