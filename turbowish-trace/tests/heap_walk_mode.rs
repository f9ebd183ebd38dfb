// MERGE: move to turbowish-trace/tests/ once turbowish-alloc has heap-walk mode
// (`heap_view`, `TurboWish::heap_walk`), together with replacing
// src/walk/heap_view.rs by src/walk/heap_view_adapter.rs. Not compiled on the
// `walk` branch; verified passing (and clippy-clean) on a local merge of
// `walk` with `alloc` at 6431fc0.

//! `walk()` end to end, with the allocator in heap-walk mode: task roots
//! come from the registry, blocks from the allocator's heap view.
//!
//! * `task_retains_what_its_future_holds`: a task suspended at an `.await`
//!   holding a `Vec<String>` retains its root cell, the buffer and the
//!   strings (the conservative path through a real future).
//! * `leaked_box_is_unattributed_with_its_task`: a box leaked by a task is
//!   reachable from no root and is grouped under the task that allocated it.
//! * `named_root_retains_its_value`: a registered `static` root.
//! * `owned_guard_moved_into_a_task_is_held_by_it`: a guard acquired by one
//!   task and moved into a second is reported held by the second (while
//!   the resource records still name the first).
//! * `walk_locating_names_each_blocks_holder`: `walk_locating` says which
//!   task retains a block, that a leaked one has no holder, and leaves out
//!   addresses that start no live block.
//! * `walk_survives_concurrent_churn`: walks while two threads allocate and
//!   free hard: no crash, frees deferred, and the walked task's figures
//!   stay within its data plus what its waker reaches of the runtime.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, LazyLock, Mutex, MutexGuard};

use turbowish_alloc::{Owner, TurboWish};
use turbowish_trace::walk::{Holder, LocatedBlock, TaskRetained, WalkReport};
use turbowish_trace::Trace;

#[global_allocator]
static A: TurboWish = TurboWish::system().heap_walk();

static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

fn task<'r>(report: &'r WalkReport, name: &str) -> &'r TaskRetained {
    report
        .tasks
        .iter()
        .find(|t| t.name == name)
        .unwrap_or_else(|| panic!("no task {name} in {:?}", report.tasks))
}

#[test]
fn task_retains_what_its_future_holds() {
    let _serial = serial();
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    rt.block_on(async {
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let handle = turbowish_trace::spawn("holder", async move {
            let names: Vec<String> = vec!["ada".into(), "grace".into()];
            let _ = rx.await;
            names.len()
        });
        tokio::task::yield_now().await;
        let report = turbowish_trace::walk::walk().expect("heap-walk mode");
        let holder = task(&report, "holder");
        // At least the cell, the buffer and both strings; the oneshot's
        // shared block is reachable from main's stack only, not a root.
        let floor = 2 * 24 + 3 + 5;
        assert!(holder.retained.blocks >= 4, "{holder:?}");
        assert!(holder.retained.bytes >= floor as u64, "{holder:?}");
        tx.send(()).unwrap();
        assert_eq!(handle.await.unwrap(), 2);
    });
}

#[test]
fn leaked_box_is_unattributed_with_its_task() {
    let _serial = serial();
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let id = rt.block_on(async {
        let handle = turbowish_trace::spawn("leaker", async {
            leak_box();
            turbowish_trace::task::current_task().unwrap().0
        });
        handle.await.unwrap()
    });
    let report = turbowish_trace::walk::walk().expect("heap-walk mode");
    let dark = report
        .unattributed
        .iter()
        .find(|u| u.owner == Owner::Task(id))
        .unwrap_or_else(|| {
            panic!(
                "no unattributed bytes of task {id}: {:?}",
                report.unattributed
            )
        });
    assert_eq!((dark.amount.bytes, dark.amount.blocks), (4000, 1));
}

#[derive(Trace)]
struct Pool {
    buffers: Mutex<Vec<Vec<u8>>>,
}

static POOL: LazyLock<Pool> = LazyLock::new(|| Pool {
    buffers: Mutex::new(vec![vec![0; 1000], vec![0; 2000]]),
});

#[test]
fn named_root_retains_its_value() {
    let _serial = serial();
    let id = turbowish_trace::root("pool", &*POOL);
    let report = turbowish_trace::walk::walk().expect("heap-walk mode");
    turbowish_trace::walk::unroot(id);
    let pool = report.roots.iter().find(|r| r.name == "pool").unwrap();
    // The outer buffer (2 × 24 bytes) and the two inner ones.
    assert_eq!(pool.retained.bytes, 48 + 1000 + 2000);
    assert_eq!(pool.retained.blocks, 3);
    let census = report
        .census
        .iter()
        .find(|c| c.type_name == std::any::type_name::<Vec<u8>>())
        .unwrap();
    assert_eq!(
        census.holder,
        Holder::Root {
            name: "pool".into()
        }
    );
    assert_eq!(census.objects, 2);
}

#[test]
fn owned_guard_moved_into_a_task_is_held_by_it() {
    let _serial = serial();
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    rt.block_on(async {
        let ledger = Arc::new(turbowish_trace::sync::Mutex::new_named("ledger", 0u64));
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let first = {
            let ledger = Arc::clone(&ledger);
            turbowish_trace::spawn("first", async move {
                let guard = ledger.lock_owned().await;
                // Returned in an `Option`, not awaited by this task.
                Some(turbowish_trace::spawn("second", async move {
                    let mut guard = guard;
                    let _ = rx.await;
                    *guard += 1;
                }))
            })
        };
        let second = first.await.unwrap().unwrap();
        tokio::task::yield_now().await;
        let report = turbowish_trace::walk::walk().expect("heap-walk mode");
        let held: Vec<_> = report
            .guards
            .iter()
            .filter(|g| g.resource_name == "ledger")
            .collect();
        assert_eq!(held.len(), 1, "{:?}", report.guards);
        assert!(
            matches!(&held[0].holder, Holder::Task { name, .. } if name == "second"),
            "{:?}",
            held[0]
        );
        tx.send(()).unwrap();
        second.await.unwrap();
        assert_eq!(*ledger.lock().await, 1);
    });
}

#[test]
fn walk_locating_names_each_blocks_holder() {
    let _serial = serial();
    // Leaked before the runtime exists: a block only the `block_on` future
    // knows can be reached by a task through the runtime's structures (see
    // "Reaching is not owning" in the walker's docs).
    let leaked = Box::leak(Box::new([9u8; 1_234])).as_ptr() as usize;
    // The async block below keeps the address masked: its state may sit
    // where the scanner looks (runtime structures a task's waker leads
    // to), and an address kept there would be an edge to the leak.
    const MASK: usize = 0x5a5a_5a5a_5a5a_5a5a;
    let masked = leaked ^ MASK;
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    rt.block_on(async {
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let (addr_tx, addr_rx) = tokio::sync::oneshot::channel::<usize>();
        let handle = turbowish_trace::spawn("keeper", async move {
            let kept = vec![5u8; 3_333];
            addr_tx.send(kept.as_ptr() as usize).unwrap();
            let _ = rx.await;
            kept.len()
        });
        let kept = addr_rx.await.unwrap();
        let leaked = std::hint::black_box(masked) ^ MASK;
        let report = turbowish_trace::walk::walk_locating(&[leaked, kept + 1, kept])
            .expect("heap-walk mode");
        let keeper = task(&report, "keeper").id;
        // Listed in address order; `kept + 1` starts no block and is left out.
        let starts: Vec<usize> = report.located.iter().map(|l| l.start).collect();
        assert_eq!(starts, [kept.min(leaked), kept.max(leaked)]);
        let find = |start| report.located.iter().find(|l| l.start == start).unwrap();
        assert_eq!(
            *find(kept),
            LocatedBlock {
                start: kept,
                size: 3_333,
                holder: Some(Holder::Task {
                    id: keeper,
                    name: "keeper".into()
                }),
            }
        );
        // The leak is reachable from no root, so it is unattributed
        // (`None`), unless a stale copy of its address in memory some root
        // reaches makes a conservative edge to it: the scanner's documented
        // false positive, seen here (in about one run in eight) when other
        // tests ran first in this process. `leaked_box_is_unattributed_with_
        // its_task` checks the unattributed case; here its size is exact.
        assert_eq!(find(leaked).size, 1_234);
        assert!(turbowish_trace::walk::walk().unwrap().located.is_empty());
        tx.send(()).unwrap();
        assert_eq!(handle.await.unwrap(), 3_333);
    });
}

#[test]
fn walk_survives_concurrent_churn() {
    let _serial = serial();
    let stop = Arc::new(AtomicBool::new(false));
    let churners: Vec<_> = (0..2)
        .map(|t| {
            let stop = Arc::clone(&stop);
            std::thread::spawn(move || {
                let mut kept: Vec<Vec<u64>> = Vec::new();
                let mut i = 0usize;
                while !stop.load(Ordering::Relaxed) {
                    i += 1;
                    kept.push(vec![i as u64; 1 + (i * 7 + t) % 64]);
                    if kept.len() > 256 {
                        kept.swap_remove(i % kept.len());
                    }
                }
                kept.len()
            })
        })
        .collect();
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    rt.block_on(async {
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let handle = turbowish_trace::spawn("steady", async move {
            let data: Vec<Vec<u8>> = (0..16).map(|i| vec![i; 100]).collect();
            let _ = rx.await;
            data.len()
        });
        tokio::task::yield_now().await;
        // The steady task's data, and the most the runtime structures its
        // waker leads to may add (measured: about 2.6 KiB in 17 blocks);
        // the churners hold up to 2 × 257 vectors of up to 512 bytes and
        // their outer buffers. Stale addresses of churned blocks left in
        // memory the steady task reaches (the scanner's documented false
        // positive; seen in release builds) may add some of those, never
        // more.
        let floor = (16 * 100 + 16 * 24) as u64;
        let churn = 2 * (257 * 512 + 512 * 24) as u64;
        for _ in 0..20 {
            let report = turbowish_trace::walk::walk().expect("heap-walk mode");
            let steady = task(&report, "steady").retained;
            assert!(steady.blocks >= 17 && steady.bytes >= floor, "{steady:?}");
            assert!(steady.bytes < floor + 16 * 1024 + churn, "{steady:?}");
            assert!(report.stats.blocks_scanned > 0);
        }
        tx.send(()).unwrap();
        assert_eq!(handle.await.unwrap(), 16);
    });
    stop.store(true, Ordering::Relaxed);
    for churner in churners {
        churner.join().unwrap();
    }
}

/// Leaks a box in a plain function, so that its address is never stored in
/// a task's future cell: a stale copy there, in memory handed out again,
/// would be a conservative edge to it (the scanner's documented false
/// positive), not the leak under test.
#[inline(never)]
fn leak_box() {
    let leaked: &'static mut [u8; 4000] = Box::leak(Box::new([7u8; 4000]));
    leaked[0] = 1;
    std::hint::black_box(&leaked[0]);
}
