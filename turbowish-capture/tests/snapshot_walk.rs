//! `snapshot()` in heap-walk mode with every allocation sampled: the walk
//! section, the guard-holder correction and the CLI on the result.
//!
//! One process state is built and checked as a whole (one test), because
//! the snapshot describes the whole process:
//!
//! * task "holder" keeps a `Vec<u8>` of capacity 77,777 across an `.await`
//!   inside an opaque async block: its retained sites include exactly one
//!   block of 77,777 bytes, allocated in this file;
//! * task "first" acquires an owned guard of mutex "ledger" and moves it
//!   into task "second", then ends; task "waiter" waits for the mutex: the
//!   snapshot's holder is "second" (still `movable`), and the chain from
//!   "waiter" runs to "second";
//! * task "leaker" leaks a 4,000-byte box: unattributed under its id;
//! * a named root "pool" (a derived `Trace` struct in a static) retains
//!   exactly its two buffers and their vector, and the census names them
//!   with their slack (the precise path);
//! * the snapshot round-trips through JSON, and `turbowish report` on it
//!   shows the RETAINED column with holder's retained bytes.

use std::sync::{Arc, LazyLock};

use turbowish_alloc::TurboWish;
use turbowish_snapshot::schema::{Amount, CensusRow, Owner, Snapshot, TaskRef, WalkHolder};
use turbowish_snapshot::table::{MemoryReport, SortKey};
use turbowish_trace::Trace;

#[global_allocator]
static A: TurboWish = TurboWish::system().heap_walk().sample_interval(1);

const HELD: usize = 77_777;
const LEAKED: usize = 4_000;

#[derive(Trace)]
struct Pool {
    buffers: Vec<Vec<u8>>,
}

static POOL: LazyLock<Pool> = LazyLock::new(|| {
    let mut half_full = Vec::with_capacity(2_000);
    half_full.resize(1_000, 0u8);
    Pool {
        buffers: vec![vec![1u8; 500], half_full],
    }
});

#[test]
fn snapshot_walk_section_guards_and_cli() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let pool = turbowish_trace::root("pool", &*POOL);
    let snap = rt.block_on(async {
        let (release, released) = tokio::sync::watch::channel(false);

        let mut done = released.clone();
        let holder = turbowish_trace::spawn("holder", async move {
            let held: Vec<u8> = Vec::with_capacity(HELD);
            let _ = done.wait_for(|d| *d).await;
            held.capacity()
        });

        let leaker = turbowish_trace::spawn("leaker", async {
            leak_box();
            turbowish_trace::task::current_task().unwrap().0
        });
        let leaker_id = leaker.await.unwrap();

        let ledger = Arc::new(turbowish_trace::sync::Mutex::new_named("ledger", 0u64));
        let first = {
            let ledger = Arc::clone(&ledger);
            let mut done = released.clone();
            turbowish_trace::spawn("first", async move {
                let guard = ledger.lock_owned().await;
                // Wrapped: a future returning a join handle reads as a
                // missing `.await`.
                Some(turbowish_trace::spawn("second", async move {
                    let mut guard = guard;
                    let _ = done.wait_for(|d| *d).await;
                    *guard += 1;
                }))
            })
        };
        let second = first.await.unwrap().unwrap();
        let waiter = {
            let ledger = Arc::clone(&ledger);
            turbowish_trace::spawn("waiter", async move {
                *ledger.lock().await += 10;
            })
        };
        // Let every task reach its `.await`.
        for _ in 0..4 {
            tokio::task::yield_now().await;
        }

        let snap = turbowish_capture::snapshot();

        release.send(true).unwrap();
        assert_eq!(holder.await.unwrap(), HELD);
        second.await.unwrap();
        waiter.await.unwrap();
        assert_eq!(*ledger.lock().await, 11);
        (snap, leaker_id)
    });
    turbowish_trace::walk::unroot(pool);
    let (snap, leaker_id) = snap;
    check_walk(&snap, leaker_id);
    check_root(&snap);
    check_guards(&snap);

    let json = serde_json::to_vec(&snap).unwrap();
    let back = Snapshot::from_slice(&json, "walk.json").unwrap();
    assert_eq!(back, snap);
    check_cli(&snap, &json);
}

fn check_walk(snap: &Snapshot, leaker_id: u64) {
    assert_eq!(snap.sample_interval, 1);
    let walk = snap.walk.as_ref().expect("heap-walk mode: a walk section");
    let holder = walk
        .tasks
        .iter()
        .find(|t| t.name == "holder")
        .unwrap_or_else(|| panic!("no holder in {:?}", walk.tasks));
    // The vector's buffer, the root cell, and what the waker reaches.
    assert!(
        holder.retained.bytes >= HELD as u64 && holder.retained.blocks >= 2,
        "{holder:?}"
    );
    // Every block is sampled with weight 1: the site of the buffer holds
    // exactly it, and the site's stack is in this file.
    let buffer = holder
        .sites
        .iter()
        .find(|s| s.bytes == HELD as u64)
        .unwrap_or_else(|| panic!("no {HELD}-byte site in {:?}", holder.sites));
    assert_eq!(buffer.blocks, 1);
    let site = &snap.sites[buffer.site as usize];
    assert_eq!(site.id, buffer.site);
    // Release test builds carry no debug info: the allocating closure is
    // inlined into the task's poll entry and no line names it there.
    if cfg!(debug_assertions) {
        let in_this_file = site.stack.iter().any(|&l| {
            snap.locations[l as usize].lines.iter().any(|line| {
                line.file
                    .as_deref()
                    .is_some_and(|f| f.ends_with("snapshot_walk.rs"))
            })
        });
        assert!(in_this_file, "site {site:?}");
    }
    let sum: u64 = holder.sites.iter().map(|s| s.bytes).sum();
    assert!(sum <= holder.retained.bytes, "{holder:?}");

    let leaked = walk
        .unattributed
        .iter()
        .find(|u| u.owner == Owner::Task(leaker_id))
        .unwrap_or_else(|| panic!("leaker {leaker_id} not in {:?}", walk.unattributed));
    assert_eq!(
        (leaked.amount.bytes, leaked.amount.blocks),
        (LEAKED as u64, 1)
    );
    assert!(walk.stats.live_blocks > 0 && walk.stats.blocks_scanned > 0);
}

fn check_root(snap: &Snapshot) {
    let walk = snap.walk.as_ref().unwrap();
    let pool = walk.roots.iter().find(|r| r.name == "pool").unwrap();
    let vec_bytes = 2 * size_of::<Vec<u8>>() as u64;
    assert_eq!(
        pool.retained,
        Amount {
            bytes: vec_bytes + 500 + 2_000,
            blocks: 3
        }
    );
    assert_eq!(pool.shared, Amount::default());
    let holder = WalkHolder::Root {
        name: "pool".into(),
    };
    let mut rows: Vec<&CensusRow> = walk.census.iter().filter(|c| c.holder == holder).collect();
    rows.sort_by_key(|c| c.bytes);
    let rows: Vec<(&str, u64, u64, u64)> = rows
        .iter()
        .map(|c| (c.type_name.as_str(), c.objects, c.bytes, c.slack))
        .collect();
    assert_eq!(
        rows,
        [
            (std::any::type_name::<Vec<Vec<u8>>>(), 1, vec_bytes, 0),
            (std::any::type_name::<Vec<u8>>(), 2, 2_500, 1_000),
        ]
    );
}

fn check_guards(snap: &Snapshot) {
    let walk = snap.walk.as_ref().unwrap();
    let ledger = snap
        .resources
        .iter()
        .find(|r| r.name == "ledger")
        .expect("the ledger resource");
    let second = snap.tasks.iter().find(|t| t.name == "second").unwrap();
    assert_eq!(ledger.holders.len(), 1, "{ledger:?}");
    let holder = &ledger.holders[0];
    assert_eq!(holder.task, TaskRef::Task(second.id), "{holder:?}");
    assert_eq!(holder.task_name, "second");
    assert!(holder.movable);
    let guard = walk
        .guards
        .iter()
        .find(|g| g.resource == ledger.id)
        .expect("the ledger guard in the walk");
    assert_eq!(
        guard.holder,
        WalkHolder::Task {
            id: second.id,
            name: "second".into()
        }
    );
    // The chain is computed on the corrected graph.
    let chain = snap
        .chains
        .iter()
        .find(|c| c.links[0].waiter.task_name == "waiter")
        .unwrap_or_else(|| panic!("no chain from waiter: {:?}", snap.chains));
    assert_eq!(chain.links.len(), 1);
    assert_eq!(chain.links[0].holders[0].task_name, "second");
    assert!(
        chain.text.contains("held by task \"second\""),
        "{}",
        chain.text
    );
}

/// The table `turbowish report --top 100` prints for the file (the same
/// renderer; the CLI itself is tested on real snapshots in the root
/// package's `tests/cli_on_real_snapshot.rs`).
fn check_cli(snap: &Snapshot, json: &[u8]) {
    let loaded = Snapshot::from_slice(json, "walk.json").unwrap();
    let text = MemoryReport::new(&loaded, SortKey::Live, 100).to_string();
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
    assert_eq!(
        &header[..6],
        ["TASK", "TASKS", "LIVE", "BLOCKS", "RETAINED", "SHARED"]
    );
    let holder = snap
        .walk
        .as_ref()
        .unwrap()
        .tasks
        .iter()
        .find(|t| t.name == "holder")
        .unwrap();
    let row = lines
        .find(|l| l.starts_with("holder "))
        .unwrap_or_else(|| panic!("no holder row in\n{text}"));
    // Columns: name, tasks, live (2 words), blocks, retained (2 words).
    let cells: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(
        format!("{} {}", cells[5], cells[6]),
        turbowish_snapshot::format::human_bytes(holder.retained.bytes),
        "{row}"
    );
    assert!(text.contains("reachable from no task or root"), "{text}");
}

/// Leaks a box in a plain function, so that its address is never stored in
/// the task's future cell: a stale copy there, in memory the allocator
/// hands out again (to a later task's cell, say), would be a conservative
/// edge to it, which is the scanner's documented false positive, not the
/// leak this test is about.
#[inline(never)]
fn leak_box() {
    let leaked: &'static mut [u8; LEAKED] = Box::leak(Box::new([7u8; LEAKED]));
    leaked[1] = 2;
    std::hint::black_box(&leaked[1]);
}
