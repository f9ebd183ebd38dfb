//! A database connection pool instrumented with TurboWish's resource API:
//! the pool is a *cumulative* resource of its own kind (`pool "db-main"`),
//! so its waits show in chains and deadlock cycles like a mutex's.
//!
//! The pool (module `pool` below) is small but real: a fixed set of
//! connections, a checkout that waits with a timeout, and a connection
//! that goes back to the pool when its handle is dropped. It declares a
//! `Resource` of kind `"pool"` with one unit per connection, records each
//! checkout as a hold and each wait as a wait, and that is all TurboWish
//! needs.
//!
//! Two stories, each on its own runtime:
//!
//! 1. *A slow holder.* A nightly report holds a connection through a slow
//!    query while two sessions hold the others; two requests wait for a
//!    connection. Their chain names who holds each connection, since when
//!    and where; then the requests' checkouts time out.
//! 2. *Exhaustion.* Two imports each hold one of the two connections and
//!    each wait for a second (a nested lookup on a fresh connection): no
//!    connection can come back, a deadlock. TurboWish prints the cycle.
//!
//! The example checks what it found and exits 0 (the deadlocked tasks are
//! abandoned with their runtime), so it runs in CI.
//!
//! Run: `cargo run --example db_pool` (with `TURBOWISH_DIR` set it also
//! writes a snapshot of the exhaustion there: `turbowish chains` on it
//! prints the cycle and exits 3).

use std::sync::Arc;
use std::time::{Duration, Instant};

use turbowish::trace::chains::{Chain, Cycle};
use turbowish::trace::sync::{Access, ResourceInfo};
use turbowish::trace::TracedExt;

#[global_allocator]
static ALLOC: turbowish::TurboWish = turbowish::TurboWish::system();

/// The connection pool: what a library would ship.
mod pool {
    use std::fmt;
    use std::panic::Location;
    use std::sync::{Arc, Mutex};
    use std::time::{Duration, Instant};

    use tokio::sync::{OwnedSemaphorePermit, Semaphore, TryAcquireError};
    use turbowish::trace::resource::{Class, OwnedHold, Resource, ResourceError};
    use turbowish::trace::sync::Access;

    /// One database connection (simulated: a query sleeps for its cost).
    #[derive(Debug)]
    pub(crate) struct Connection {
        id: usize,
        queries: u64,
    }

    /// A pool of connections. Cloning it shares the pool.
    #[derive(Debug, Clone)]
    pub(crate) struct Pool {
        inner: Arc<Inner>,
    }

    #[derive(Debug)]
    struct Inner {
        /// What TurboWish sees: one unit per connection.
        resource: Resource,
        /// Connections not checked out.
        idle: Mutex<Vec<Connection>>,
        /// One permit per idle connection: the pool's own waiting.
        permits: Arc<Semaphore>,
    }

    /// Why a checkout failed.
    #[derive(Debug)]
    pub(crate) enum PoolError {
        /// No connection came back within the timeout.
        Timeout {
            /// The pool's name.
            pool: String,
            /// How long the checkout waited.
            waited: Duration,
        },
        /// The pool was closed.
        Closed,
        /// The pool used TurboWish's API wrongly (a bug in the pool).
        Instrumentation(ResourceError),
    }

    impl fmt::Display for PoolError {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            match self {
                PoolError::Timeout { pool, waited } => write!(
                    f,
                    "checkout of pool \"{pool}\" timed out after {:.1}s",
                    waited.as_secs_f64()
                ),
                PoolError::Closed => f.write_str("the pool is closed"),
                PoolError::Instrumentation(e) => write!(f, "pool instrumentation: {e}"),
            }
        }
    }

    impl std::error::Error for PoolError {}

    impl From<ResourceError> for PoolError {
        fn from(e: ResourceError) -> PoolError {
            PoolError::Instrumentation(e)
        }
    }

    impl Pool {
        /// A pool named `name` of `size` connections, opened now.
        #[track_caller]
        pub(crate) fn new(name: &str, size: usize) -> Pool {
            Pool {
                inner: Arc::new(Inner {
                    // `#[track_caller]`: the resource is created where the
                    // pool is.
                    resource: Resource::new(
                        "pool",
                        name.to_owned(),
                        Class::Cumulative { capacity: size },
                    ),
                    idle: Mutex::new((0..size).map(|id| Connection { id, queries: 0 }).collect()),
                    permits: Arc::new(Semaphore::new(size)),
                }),
            }
        }

        /// Connections not checked out now.
        pub(crate) fn idle(&self) -> usize {
            self.inner
                .idle
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .len()
        }

        /// Checks a connection out, waiting up to `timeout` for one to come
        /// back. The checkout is recorded where this is called, against the
        /// calling task and frame; a wait is recorded only when no
        /// connection is idle, and goes when the checkout ends (with a
        /// connection, a timeout, or the future dropped).
        #[track_caller]
        pub(crate) fn checkout(
            &self,
            timeout: Duration,
        ) -> impl std::future::Future<Output = Result<PooledConnection, PoolError>> + 'static
        {
            // Futures do not see `#[track_caller]`: take the place now.
            let location = Location::caller();
            let inner = Arc::clone(&self.inner);
            async move {
                // A task holding this pool (its `Arc`) may check out next.
                inner.resource.note_owner(&*inner);
                let one = Access::Permits(1);
                let permit = match Arc::clone(&inner.permits).try_acquire_owned() {
                    Ok(permit) => permit,
                    Err(TryAcquireError::Closed) => return Err(PoolError::Closed),
                    Err(TryAcquireError::NoPermits) => {
                        let started = Instant::now();
                        let _waiting = inner.resource.wait_at(one, location)?;
                        let acquire = Arc::clone(&inner.permits).acquire_owned();
                        match tokio::time::timeout(timeout, acquire).await {
                            Ok(Ok(permit)) => permit,
                            Ok(Err(_)) => return Err(PoolError::Closed),
                            Err(_) => {
                                return Err(PoolError::Timeout {
                                    pool: inner.resource.name().into_owned(),
                                    waited: started.elapsed(),
                                })
                            }
                        }
                    }
                };
                let hold = inner.resource.hold_owned_at(one, location)?;
                let conn = inner
                    .idle
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .pop()
                    .ok_or(PoolError::Closed)?;
                Ok(PooledConnection {
                    conn: Some(conn),
                    pool: inner,
                    hold,
                    _permit: permit,
                })
            }
        }
    }

    /// A checked-out connection; dropping it returns the connection.
    #[derive(Debug)]
    pub(crate) struct PooledConnection {
        /// `None` once returned.
        conn: Option<Connection>,
        pool: Arc<Inner>,
        /// TurboWish's record of the checkout: it moves with the
        /// connection, and the walker finds which task holds it.
        hold: OwnedHold,
        /// Released last: the next checkout waits until the connection is
        /// back in `idle` and the record gone.
        _permit: OwnedSemaphorePermit,
    }

    impl PooledConnection {
        /// Runs a query that takes `cost` (a sleep stands for the
        /// database) and returns the connection's query count.
        pub(crate) async fn query(&mut self, _sql: &str, cost: Duration) -> u64 {
            tokio::time::sleep(cost).await;
            let conn = self.conn.as_mut().expect("a checked-out connection");
            conn.queries += 1;
            conn.queries
        }

        /// Which connection this is.
        pub(crate) fn id(&self) -> usize {
            self.conn.as_ref().map_or(usize::MAX, |c| c.id)
        }
    }

    impl Drop for PooledConnection {
        fn drop(&mut self) {
            if let Some(conn) = self.conn.take() {
                self.pool
                    .idle
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push(conn);
            }
        }
    }

    /// The checkout record (see [`OwnedHold`]): in heap-walk mode the walk
    /// names the task holding the connection with this field path.
    impl turbowish::trace::Trace for PooledConnection {
        fn trace(&self, tracer: &mut turbowish::trace::Tracer<'_>) {
            tracer.field("hold", &self.hold);
        }
    }
}

use pool::{Pool, PoolError};

/// A runtime for one story.
fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime")
}

/// Polls the wait-for graph (with its owners) until `done` says so, or
/// panics after 30 s: a loaded machine is slow, never wrong.
async fn graph_when(what: &str, done: impl Fn(&[ResourceInfo]) -> bool) -> Vec<ResourceInfo> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let graph = turbowish::trace::ownership::resources();
        if done(&graph) {
            return graph;
        }
        assert!(Instant::now() < deadline, "never saw {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn waiters_on(graph: &[ResourceInfo], pool: &str) -> usize {
    graph
        .iter()
        .find(|r| r.name == pool)
        .map_or(0, |r| r.waiters.len())
}

/// Prints who holds each connection a chain's first wait is for.
fn print_holders(chain: &Chain) {
    let link = &chain.links[0];
    println!("  {} is held by:", link.resource);
    for h in &link.holders {
        let units = match h.access {
            Access::Permits(n) => n,
            _ => 0,
        };
        print!(
            "    task \"{}\": {units} connection since {:.1}s, checked out at {}:{}",
            h.task_name,
            h.since.as_secs_f64(),
            h.location.file(),
            h.location.line()
        );
        if !h.frames.is_empty() {
            print!(" in {}", h.frames);
        }
        if let Some(parked) = h.parked_in.filter(|p| !p.is_empty()) {
            print!(", parked now in {parked}");
        }
        println!();
    }
}

/// Story 1: a slow holder and requests queued behind it. Returns the
/// chains seen and how many checkouts timed out.
fn slow_holder() -> (Vec<Chain>, usize) {
    println!("== a slow holder: requests wait for pool \"db-main\"");
    let runtime = runtime();
    let seen = runtime.block_on(async {
        let pool = Pool::new("db-main", 3);
        let (release, released) = tokio::sync::watch::channel(false);
        let report = turbowish::trace::spawn("nightly-report", {
            let pool = pool.clone();
            let mut released = released.clone();
            async move {
                let mut conn = pool.checkout(Duration::from_secs(5)).await?;
                async {
                    // The slow query: runs until the story lets it finish.
                    let _ = released.wait_for(|done| *done).await;
                    conn.query("SELECT … FROM orders GROUP BY day", Duration::ZERO)
                        .await
                }
                .traced("slow_query")
                .await;
                Ok::<_, PoolError>(())
            }
            .traced("report")
        });
        let mut sessions = Vec::new();
        for name in ["session-1", "session-2"] {
            let pool = pool.clone();
            let mut released = released.clone();
            sessions.push(turbowish::trace::spawn(name, async move {
                let _conn = pool.checkout(Duration::from_secs(5)).await?;
                // Idle in a transaction until the story ends.
                let _ = released.wait_for(|done| *done).await;
                Ok::<_, PoolError>(())
            }));
        }
        graph_when("three connections out", |_| pool.idle() == 0).await;
        let requests: Vec<_> = (1..=2)
            .map(|i| {
                let pool = pool.clone();
                turbowish::trace::spawn(format!("request-{i}"), async move {
                    let conn = async { pool.checkout(Duration::from_secs(2)).await }
                        .traced("handle")
                        .await;
                    conn.map(|c| c.id())
                })
            })
            .collect();
        graph_when("two requests waiting", |g| waiters_on(g, "db-main") == 2).await;
        // Let the wait show its length (the checkouts wait up to 2 s).
        tokio::time::sleep(Duration::from_millis(300)).await;
        let graph = graph_when("two requests waiting", |g| waiters_on(g, "db-main") == 2).await;
        let chains = turbowish::trace::chains::chains(&graph);
        for chain in &chains {
            println!("chain: {chain}");
        }
        if let Some(chain) = chains.first() {
            print_holders(chain);
        }
        // The checkouts time out: the holders never let go in time.
        let mut timed_out = 0;
        for (i, request) in requests.into_iter().enumerate() {
            match request.await.expect("request task") {
                Err(e @ PoolError::Timeout { .. }) => {
                    println!("request-{}: {e}", i + 1);
                    timed_out += 1;
                }
                other => println!("request-{}: {other:?}", i + 1),
            }
        }
        // The report finishes; every connection goes back on drop.
        release.send(true).expect("the tasks listen");
        report.await.expect("report task").expect("report checkout");
        for session in sessions {
            session
                .await
                .expect("session task")
                .expect("session checkout");
        }
        println!(
            "released: {} of 3 connections idle, {} waiter(s) left",
            pool.idle(),
            waiters_on(&turbowish::trace::sync::resources(), "db-main")
        );
        println!();
        (chains, timed_out)
    });
    runtime.shutdown_background();
    seen
}

/// One import: a transaction on one connection that, midway, checks out a
/// second for a lookup. With every connection held by an import that
/// does this, none comes back.
async fn import(pool: Pool, started: Arc<tokio::sync::Barrier>) -> Result<(), PoolError> {
    let mut tx = async { pool.checkout(Duration::from_secs(600)).await }
        .traced("begin")
        .await?;
    tx.query("INSERT INTO staging …", Duration::ZERO).await;
    started.wait().await;
    let mut lookup = async { pool.checkout(Duration::from_secs(600)).await }
        .traced("lookup")
        .await?;
    lookup
        .query("SELECT id FROM customers …", Duration::ZERO)
        .await;
    Ok(())
}

/// Story 2: exhaustion. Returns the cycles found.
fn exhaustion() -> Vec<Cycle> {
    println!("== exhaustion: each import holds a connection and waits for a second");
    let runtime = runtime();
    let cycles = runtime.block_on(async {
        let pool = Pool::new("db-batch", 2);
        let started = Arc::new(tokio::sync::Barrier::new(2));
        for name in ["import-a", "import-b"] {
            turbowish::trace::spawn(name, import(pool.clone(), started.clone()));
        }
        graph_when("both imports waiting", |g| waiters_on(g, "db-batch") == 2).await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        let graph = turbowish::trace::ownership::resources();
        let cycles = turbowish::trace::chains::cycles(&graph);
        for cycle in &cycles {
            println!("{cycle}");
        }
        if let Some(dir) = std::env::var_os("TURBOWISH_DIR") {
            let path =
                turbowish::capture::snapshot_to_dir(dir).expect("a snapshot in $TURBOWISH_DIR");
            println!("snapshot: {}", path.display());
        }
        cycles
    });
    // The imports never finish: abandon them with the runtime.
    runtime.shutdown_background();
    println!();
    cycles
}

fn main() {
    let (chains, timed_out) = slow_holder();
    let cycles = exhaustion();

    // The example's own checks.
    assert_eq!(chains.len(), 2, "one chain per waiting request");
    for chain in &chains {
        let link = &chain.links[0];
        assert_eq!(link.resource, "pool \"db-main\"");
        let mut holders: Vec<&str> = link.holders.iter().map(|h| h.task_name.as_str()).collect();
        holders.sort_unstable();
        assert_eq!(holders, ["nightly-report", "session-1", "session-2"]);
    }
    assert_eq!(timed_out, 2, "both checkouts time out");
    assert_eq!(cycles.len(), 1, "the exhaustion is one deadlock");
    let text = cycles[0].to_string();
    assert!(text.contains("pool \"db-batch\""), "{text}");
    assert!(
        text.contains("\"import-a\"") && text.contains("\"import-b\""),
        "{text}"
    );
    println!("checked: 2 chains naming the 3 holders, 2 timeouts, 1 exhaustion cycle");
}
