//! The heap walker's engine (`walk_with`) over real heap blocks, with exact
//! expected figures.
//!
//! A small recording allocator wraps `System`: while a test builds its
//! structures inside `record(owner, ..)`, every block the test thread
//! allocates is noted (and forgotten when freed), with `owner` as its
//! allocating owner. The blocks still live make the index the walk runs
//! over, so every figure below is a sum of sizes the program asked for.
//!
//! * `vec_of_strings_is_retained_exactly`: a `Vec<String>` root retains its
//!   buffer and its strings; the census shows slack per type.
//! * `hash_map_table_is_located`: a `HashMap`'s table block, whose address
//!   std does not expose, is found and retained; its entries' strings too.
//! * `btree_map_nodes_are_reached`: every node of a multi-level `BTreeMap`
//!   and every value's block is retained by its root.
//! * `std_containers_are_traced_completely`: a derived struct holding every
//!   other std container `Trace` covers retains every block it owns.
//! * `arc_shared_by_two_tasks_is_shared_not_retained`.
//! * `conservative_scan_follows_interior_pointers`: an opaque task cell
//!   whose words point to the start of one block and inside another.
//! * `reaching_another_root_or_turbowish_is_not_owning_it`: a task's state
//!   pointing at another task's cell and at a TurboWish bookkeeping block
//!   retains and shares neither.
//! * `async_block_state_is_scanned_across_await`: a real future's state,
//!   suspended at an `.await`, holding a `Vec<String>`.
//! * `opaque_blocks_reported_by_trace_are_scanned`: a hand-written impl
//!   hands an erased `Box<dyn Any>` to the scanner.
//! * `buffered_messages_are_reached_through_a_channel_end`: a channel end in
//!   a derived struct is scanned conservatively, reaching the messages.
//! * `leaked_box_is_unattributed_with_its_allocator`.
//! * `owned_guard_is_located_in_the_task_holding_it`: an owned mutex guard
//!   acquired by one party and moved into a second task's state is reported
//!   held by the second task, with its path.
//! * `owned_guard_in_opaque_task_state_is_found_by_its_mark`: the same with
//!   both tasks' states opaque futures: the guard is found by the mark word
//!   it carries.
//! * `derived_trace_names_fields_and_skips`: generic struct and enum
//!   derives, paths through fields, and a skipped field's block left
//!   unattributed.
//! * `locked_mutex_is_scanned_instead`: a held `sync::Mutex`'s value is
//!   still reached, conservatively.
//! * `walk_is_none_without_heap_walk_mode`, `roots_register_and_unregister`.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Waker};

use turbowish_alloc::Owner;
use turbowish_trace::walk::{
    walk_with, Amount, Block, BlockIndex, Holder, TypeCensus, WalkReport, WalkRoot,
};
use turbowish_trace::Trace;

#[global_allocator]
static A: Recording = Recording;

const SLOTS: usize = 1 << 14;

/// Blocks allocated by a thread inside `record`: (start, size, owner id),
/// start 0 for a free slot.
static TABLE: [(AtomicUsize, AtomicUsize, AtomicUsize); SLOTS] = [const {
    (
        AtomicUsize::new(0),
        AtomicUsize::new(0),
        AtomicUsize::new(0),
    )
}; SLOTS];
static TABLE_LOCK: AtomicBool = AtomicBool::new(false);
/// Slots ever used (the table is scanned up to here).
static USED: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    /// The owner id allocations on this thread are recorded under (0: not
    /// recording). `Owner::Task(id)` for id > 1, `Owner::Main` for 1.
    static RECORDING: Cell<usize> = const { Cell::new(0) };
}

struct Recording;

fn lock_table() -> impl Drop {
    struct Unlock;
    impl Drop for Unlock {
        fn drop(&mut self) {
            TABLE_LOCK.store(false, Ordering::Release);
        }
    }
    while TABLE_LOCK.swap(true, Ordering::Acquire) {
        std::hint::spin_loop();
    }
    Unlock
}

fn note(ptr: *mut u8, size: usize) {
    let owner = RECORDING.with(|r| r.get());
    if owner == 0 || ptr.is_null() {
        return;
    }
    let _lock = lock_table();
    let used = USED.load(Ordering::Relaxed);
    let slot = (0..used)
        .find(|&i| TABLE[i].0.load(Ordering::Relaxed) == 0)
        .unwrap_or_else(|| {
            assert!(used < SLOTS, "recording table full");
            USED.store(used + 1, Ordering::Relaxed);
            used
        });
    TABLE[slot].0.store(ptr as usize, Ordering::Relaxed);
    TABLE[slot].1.store(size, Ordering::Relaxed);
    TABLE[slot].2.store(owner, Ordering::Relaxed);
}

fn forget(ptr: *mut u8) {
    let _lock = lock_table();
    for entry in &TABLE[..USED.load(Ordering::Relaxed)] {
        if entry.0.load(Ordering::Relaxed) == ptr as usize {
            entry.0.store(0, Ordering::Relaxed);
            return;
        }
    }
}

// SAFETY: forwards to `System` unchanged; the bookkeeping never allocates.
unsafe impl GlobalAlloc for Recording {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's contract, forwarded.
        let ptr = unsafe { System.alloc(layout) };
        note(ptr, layout.size());
        ptr
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        forget(ptr);
        // SAFETY: the caller's contract, forwarded.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: the caller's contract, forwarded.
        let new = unsafe { System.realloc(ptr, layout, new_size) };
        if !new.is_null() {
            forget(ptr);
            note(new, new_size);
        }
        new
    }
}

/// The `record` owner id for `Owner::Internal`.
const INTERNAL: usize = usize::MAX;

static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// Runs `build` with this thread's allocations recorded under `owner`.
fn record<T>(owner: usize, build: impl FnOnce() -> T) -> T {
    let previous = RECORDING.with(|r| r.replace(owner));
    let value = build();
    RECORDING.with(|r| r.set(previous));
    value
}

/// The recorded blocks still live, as an index; clears the table.
fn index() -> BlockIndex {
    // Allocated before taking the lock: a reallocation under it would
    // deadlock in `forget`.
    let mut blocks: Vec<(usize, usize, usize)> = Vec::with_capacity(SLOTS);
    {
        let _lock = lock_table();
        let used = USED.swap(0, Ordering::Relaxed);
        for e in &TABLE[..used] {
            let start = e.0.swap(0, Ordering::Relaxed);
            if start != 0 {
                blocks.push((
                    start,
                    e.1.load(Ordering::Relaxed),
                    e.2.load(Ordering::Relaxed),
                ));
            }
        }
    }
    let blocks = blocks
        .into_iter()
        .map(|(start, size, owner)| Block {
            start,
            size,
            owner: match owner {
                1 => Owner::Main,
                INTERNAL => Owner::Internal,
                id => Owner::Task(id as u64),
            },
        })
        .collect();
    // SAFETY: every block was allocated on this thread inside `record` and
    // is still live; each test keeps its structures alive until the walk
    // returns.
    unsafe { BlockIndex::new(blocks) }.unwrap()
}

fn amount(bytes: usize, blocks: u64) -> Amount {
    Amount {
        bytes: bytes as u64,
        blocks,
    }
}

fn census<'r>(report: &'r WalkReport, type_name: &str) -> Vec<&'r TypeCensus> {
    report
        .census
        .iter()
        .filter(|c| c.type_name == type_name)
        .collect()
}

#[test]
fn vec_of_strings_is_retained_exactly() {
    let _serial = serial();
    let names: Vec<String> = record(1, || {
        let mut names = Vec::with_capacity(5);
        names.push(String::from("alpha"));
        names.push(String::from("beta"));
        let mut padded = String::with_capacity(16);
        padded.push_str("gamma");
        names.push(padded);
        names
    });
    let index = index();
    assert_eq!(index.len(), 4);
    let report = walk_with(&index, &[WalkRoot::named("names", &names)]);

    let root = &report.roots[0];
    assert_eq!(root.name, "names");
    assert_eq!(root.retained, amount(5 * 24 + 5 + 4 + 16, 4));
    assert_eq!(root.shared, Amount::default());
    assert!(report.unattributed.is_empty());

    let vecs = census(&report, std::any::type_name::<Vec<String>>());
    assert_eq!(vecs.len(), 1);
    assert_eq!(
        (vecs[0].objects, vecs[0].bytes, vecs[0].slack),
        (1, 120, 48)
    );
    assert_eq!(
        vecs[0].holder,
        Holder::Root {
            name: "names".into()
        }
    );
    let strings = census(&report, "alloc::string::String");
    assert_eq!(
        (strings[0].objects, strings[0].bytes, strings[0].slack),
        (3, 25, 11)
    );
    assert_eq!(report.stats.blocks_traced, 4);
    assert_eq!(report.stats.blocks_scanned, 0);
}

#[test]
fn hash_map_table_is_located() {
    let _serial = serial();
    let map: HashMap<u32, String> = record(1, || {
        let mut map = HashMap::with_capacity(3);
        for (k, v) in [(1, "one"), (2, "two"), (3, "three")] {
            map.insert(k, v.to_string());
        }
        map
    });
    let index = index();
    // The table and three strings.
    assert_eq!(index.len(), 4);
    let total: usize = index.blocks().iter().map(|b| b.size).sum();
    let report = walk_with(&index, &[WalkRoot::named("map", &map)]);
    assert_eq!(report.roots[0].retained, amount(total, 4));
    assert_eq!(report.roots[0].unlocated_bytes, 0);
    assert!(report.unattributed.is_empty());
    let table = census(&report, std::any::type_name::<HashMap<u32, String>>());
    assert_eq!(table.len(), 1);
    assert_eq!(table[0].objects, 1);
    assert_eq!(table[0].bytes as usize, total - 3 - 3 - 5);
}

#[test]
fn btree_map_nodes_are_reached() {
    let _serial = serial();
    let map: BTreeMap<u32, Vec<u8>> = record(1, || (0..200).map(|k| (k, vec![1u8; 3])).collect());
    let index = index();
    assert!(index.len() > 200 + 10, "several nodes: {}", index.len());
    let total: usize = index.blocks().iter().map(|b| b.size).sum();
    let report = walk_with(&index, &[WalkRoot::named("tree", &map)]);
    assert_eq!(report.roots[0].retained, amount(total, index.len() as u64));
    assert!(report.unattributed.is_empty());
    let values = census(&report, std::any::type_name::<Vec<u8>>());
    assert_eq!((values[0].objects, values[0].bytes), (200, 600));
}

#[derive(Trace)]
struct Everything {
    deque: std::collections::VecDeque<String>,
    set: std::collections::HashSet<String>,
    tree_set: std::collections::BTreeSet<u64>,
    rc: std::rc::Rc<Vec<u8>>,
    rc_again: std::rc::Rc<Vec<u8>>,
    owned: std::borrow::Cow<'static, str>,
    borrowed: std::borrow::Cow<'static, str>,
    text: Box<str>,
    slice: Box<[Box<u16>]>,
    maybe: Option<Box<u8>>,
    outcome: Result<String, Box<u32>>,
    pair: (String, [Box<u8>; 2]),
    label: &'static str,
}

#[test]
fn std_containers_are_traced_completely() {
    let _serial = serial();
    let everything = record(1, || {
        let mut deque = std::collections::VecDeque::with_capacity(4);
        // Wrapped around: the second slice starts the buffer.
        for s in ["a", "b", "c"] {
            deque.push_back(s.to_string());
        }
        deque.pop_front();
        deque.push_back("d".to_string());
        deque.push_back("e".to_string());
        let rc = std::rc::Rc::new(vec![1u8; 5]);
        Everything {
            deque,
            set: ["x", "y"].iter().map(|s| s.to_string()).collect(),
            tree_set: (0..100).collect(),
            rc_again: std::rc::Rc::clone(&rc),
            rc,
            owned: std::borrow::Cow::Owned("owned".into()),
            borrowed: std::borrow::Cow::Borrowed("borrowed"),
            text: "boxed".into(),
            slice: vec![Box::new(1u16), Box::new(2)].into_boxed_slice(),
            maybe: Some(Box::new(1)),
            outcome: Err(Box::new(2)),
            pair: ("p".into(), [Box::new(3), Box::new(4)]),
            label: "static",
        }
    });
    let index = index();
    let total: usize = index.blocks().iter().map(|b| b.size).sum();
    let report = walk_with(&index, &[WalkRoot::named("everything", &everything)]);
    assert!(report.unattributed.is_empty(), "{:?}", report.unattributed);
    assert_eq!(report.roots[0].retained, amount(total, index.len() as u64));
    assert_eq!(report.roots[0].unlocated_bytes, 0);
    // Only the B-tree's nodes are scanned; the rest is traced.
    let rc = census(&report, std::any::type_name::<std::rc::Rc<Vec<u8>>>());
    assert_eq!(rc[0].objects, 1);
    let deque = census(
        &report,
        std::any::type_name::<std::collections::VecDeque<String>>(),
    );
    assert_eq!((deque[0].bytes, deque[0].slack), (4 * 24, 0));
}

#[derive(Trace)]
struct Worker {
    config: Arc<Vec<u8>>,
    scratch: Vec<u8>,
}

#[test]
fn arc_shared_by_two_tasks_is_shared_not_retained() {
    let _serial = serial();
    let (a, b) = record(1, || {
        let config = Arc::new(vec![7u8; 100]);
        let a = Worker {
            config: Arc::clone(&config),
            scratch: vec![0; 10],
        };
        let b = Worker {
            config,
            scratch: vec![0; 20],
        };
        (a, b)
    });
    let index = index();
    assert_eq!(index.len(), 4);
    let report = walk_with(
        &index,
        &[
            WalkRoot::task_state(1, "a", &a),
            WalkRoot::task_state(2, "b", &b),
        ],
    );
    let arc_inner = 2 * 8 + 24;
    assert_eq!(report.tasks[0].retained, amount(10, 1));
    assert_eq!(report.tasks[1].retained, amount(20, 1));
    assert_eq!(report.tasks[0].shared, amount(arc_inner + 100, 2));
    assert_eq!(report.tasks[1].shared, amount(arc_inner + 100, 2));
    let arcs = census(&report, std::any::type_name::<Arc<Vec<u8>>>());
    assert_eq!(arcs.len(), 1);
    assert_eq!(arcs[0].holder, Holder::Shared);
    // Traced once, however many clones.
    assert_eq!(report.stats.blocks_traced, 4);
}

#[test]
fn conservative_scan_follows_interior_pointers() {
    let _serial = serial();
    let (cell, first, second) = record(1, || {
        let first = vec![0u8; 64];
        let second = vec![0u8; 48];
        // An opaque state: one word points to `first`'s start, one into the
        // middle of `second`, one is an integer that points nowhere.
        let cell = Box::new([first.as_ptr() as usize, 7, second.as_ptr() as usize + 13]);
        (cell, first, second)
    });
    let index = index();
    let report = walk_with(
        &index,
        &[WalkRoot::task_cell(
            9,
            "opaque",
            &*cell as *const _ as usize,
            24,
        )],
    );
    assert_eq!(report.tasks[0].retained, amount(24 + 64 + 48, 3));
    assert_eq!(report.stats.blocks_scanned, 3);
    assert_eq!(report.stats.bytes_scanned, 24 + 64 + 48);
    drop((first, second));
}

#[test]
fn reaching_another_root_or_turbowish_is_not_owning_it() {
    let _serial = serial();
    let (waker_like, other_cell, bookkeeping) = record(1, || {
        let other_cell = Box::new([0usize; 4]);
        let bookkeeping = record(INTERNAL, || Box::new([0usize; 2]));
        // Task 1's state points at task 2's cell (as a waker would) and at
        // a TurboWish bookkeeping block.
        let waker_like = Box::new([
            &*other_cell as *const _ as usize,
            &*bookkeeping as *const _ as usize,
        ]);
        (waker_like, other_cell, bookkeeping)
    });
    let index = index();
    let report = walk_with(
        &index,
        &[
            WalkRoot::task_cell(1, "one", &*waker_like as *const _ as usize, 16),
            WalkRoot::task_cell(2, "two", &*other_cell as *const _ as usize, 32),
        ],
    );
    assert_eq!(report.tasks[0].retained, amount(16, 1));
    assert_eq!(report.tasks[0].shared, Amount::default());
    assert_eq!(report.tasks[1].retained, amount(32, 1));
    assert_eq!(report.unattributed.len(), 1);
    assert_eq!(report.unattributed[0].owner, Owner::Internal);
    assert_eq!(report.unattributed[0].amount, amount(16, 1));
    drop(bookkeeping);
}

#[test]
fn async_block_state_is_scanned_across_await() {
    let _serial = serial();
    let mut future = record(3, || {
        Box::pin(async {
            let names: Vec<String> = vec!["ada".into(), "grace".into()];
            let mut ready = false;
            std::future::poll_fn(|_| {
                if ready {
                    std::task::Poll::Ready(())
                } else {
                    ready = true;
                    std::task::Poll::Pending
                }
            })
            .await;
            names.len()
        })
    });
    // Polled once: suspended at the `.await`, holding `names`.
    let pending = record(3, || {
        future
            .as_mut()
            .poll(&mut Context::from_waker(Waker::noop()))
            .is_pending()
    });
    assert!(pending);
    let index = index();
    let cell = (
        &*future as *const _ as usize,
        std::mem::size_of_val(&*future),
    );
    let report = walk_with(&index, &[WalkRoot::task_cell(3, "names", cell.0, cell.1)]);
    assert_eq!(report.tasks[0].retained, amount(cell.1 + 2 * 24 + 3 + 5, 4));
    assert!(report.unattributed.is_empty());
}

/// A hand-written impl mixing both paths: an erased value no `Trace` impl
/// can describe is handed to the scanner.
struct Erased {
    name: String,
    value: Box<dyn std::any::Any>,
}

impl Trace for Erased {
    fn trace(&self, tracer: &mut turbowish_trace::Tracer<'_>) {
        tracer.field("name", &self.name);
        let ptr = &*self.value as *const dyn std::any::Any as *const u8;
        tracer.opaque(ptr, "Box<dyn Any>");
    }
}

#[test]
fn opaque_blocks_reported_by_trace_are_scanned() {
    let _serial = serial();
    let erased = record(1, || Erased {
        name: "erased".into(),
        value: Box::new(vec![0u64; 4]),
    });
    let index = index();
    let report = walk_with(&index, &[WalkRoot::named("erased", &erased)]);
    // The name, the box (a Vec header), and the vector's buffer it points to.
    assert_eq!(report.roots[0].retained, amount(6 + 24 + 32, 3));
    assert_eq!(report.stats.blocks_traced, 1);
    assert_eq!(report.stats.blocks_scanned, 2);
    let boxes = census(&report, "Box<dyn Any>");
    assert_eq!(
        (boxes[0].objects, boxes[0].bytes, boxes[0].slack),
        (1, 24, 0)
    );
}

#[derive(Trace)]
struct Inbox {
    rx: turbowish_trace::sync::mpsc::Receiver<String>,
}

#[test]
fn buffered_messages_are_reached_through_a_channel_end() {
    let _serial = serial();
    // The messages under owner 7; the channel's own blocks under owner 1.
    let messages = record(7, || vec![String::from("hello"), String::from("world")]);
    let (tx, inbox) = record(1, || {
        let (tx, rx) = turbowish_trace::sync::mpsc::channel(8);
        for message in messages {
            tx.try_send(message).unwrap();
        }
        (tx, Inbox { rx })
    });
    let index = index();
    let report = walk_with(&index, &[WalkRoot::named("inbox", &inbox)]);
    assert!(
        !report
            .unattributed
            .iter()
            .any(|u| u.owner == Owner::Task(7)),
        "{:?}",
        report.unattributed
    );
    assert!(report.roots[0].retained.bytes >= 10);
    drop(tx);
}

#[test]
fn leaked_box_is_unattributed_with_its_allocator() {
    let _serial = serial();
    let kept = record(42, || {
        let _leaked: &'static mut [u8; 40] = Box::leak(Box::new([1u8; 40]));
        vec![0u8; 8]
    });
    let index = index();
    let report = walk_with(&index, &[WalkRoot::task_state(42, "leaky", &kept)]);
    assert_eq!(report.tasks[0].retained, amount(8, 1));
    assert_eq!(report.unattributed.len(), 1);
    assert_eq!(report.unattributed[0].owner, Owner::Task(42));
    assert_eq!(report.unattributed[0].amount, amount(40, 1));
}

#[derive(Trace)]
struct First {
    accounts: Arc<turbowish_trace::sync::Mutex<Vec<u64>>>,
}

#[derive(Trace)]
enum Pending {
    Idle,
    Holding(turbowish_trace::sync::OwnedMutexGuard<Vec<u64>>),
}

#[derive(Trace)]
struct Second {
    job: String,
    pending: Pending,
}

#[test]
fn owned_guard_is_located_in_the_task_holding_it() {
    let _serial = serial();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let (first, second) = record(1, || {
        let accounts = Arc::new(turbowish_trace::sync::Mutex::new_named(
            "accounts",
            vec![1u64, 2, 3],
        ));
        // Acquired here, then moved into the second task's state.
        let guard = runtime.block_on(Arc::clone(&accounts).lock_owned());
        let first = First { accounts };
        let second = Second {
            job: "transfer".into(),
            pending: Pending::Holding(guard),
        };
        (first, second)
    });
    let idle = Pending::Idle;
    let index = index();
    let report = walk_with(
        &index,
        &[
            WalkRoot::task_state(1, "first", &first),
            WalkRoot::task_state(2, "second", &second),
            WalkRoot::named("idle", &idle),
        ],
    );
    assert_eq!(report.guards.len(), 1);
    let guard = &report.guards[0];
    assert_eq!(guard.resource_name, "accounts");
    assert_eq!(
        guard.holder,
        Holder::Task {
            id: 2,
            name: "second".into()
        }
    );
    assert_eq!(guard.path, "second › pending › Holding.0");
    // The value behind the lock is shared by the mutex's owner and the
    // guard; the job string is the second task's alone.
    assert_eq!(report.tasks[1].retained, amount(8, 1));
    drop(second);
    drop(first);
}

/// A future that is pending on its first poll and ready on the next.
fn yield_once() -> impl Future<Output = ()> {
    let mut ready = false;
    std::future::poll_fn(move |_| {
        if ready {
            std::task::Poll::Ready(())
        } else {
            ready = true;
            std::task::Poll::Pending
        }
    })
}

#[test]
fn owned_guard_in_opaque_task_state_is_found_by_its_mark() {
    let _serial = serial();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let ledger = Arc::new(turbowish_trace::sync::Mutex::new_named("ledger", 0u64));
    let spare = Arc::new(turbowish_trace::sync::Mutex::new_named("spare", 0u64));
    let mut first = record(1, || {
        let ledger = Arc::clone(&ledger);
        Box::pin(async move {
            yield_once().await;
            *ledger.lock().await += 1;
        })
    });
    // Acquired here (outside both tasks), then moved into the second
    // task's future, which holds it across an `.await`.
    let guard = runtime.block_on(ledger.lock_owned());
    // A guard moved into the second task and dropped there: stale copies
    // of its bytes may linger in the future, but its resource is no longer
    // held, so they are not reported.
    let dropped = runtime.block_on(spare.lock_owned());
    let mut second = record(2, || {
        Box::pin(async move {
            let mut guard = guard;
            drop(dropped);
            yield_once().await;
            *guard += 1;
        })
    });
    let waker = Waker::noop();
    let mut cx = Context::from_waker(waker);
    record(2, || assert!(second.as_mut().poll(&mut cx).is_pending()));
    record(1, || assert!(first.as_mut().poll(&mut cx).is_pending()));
    let index = index();
    let report = walk_with(
        &index,
        &[
            WalkRoot::task_cell(1, "first", &*first as *const _ as usize, 0),
            WalkRoot::task_cell(2, "second", &*second as *const _ as usize, 0),
        ],
    );
    assert_eq!(report.guards.len(), 1, "{:?}", report.guards);
    let found = &report.guards[0];
    assert_eq!(found.resource_name, "ledger");
    assert_eq!(
        found.holder,
        Holder::Task {
            id: 2,
            name: "second".into()
        }
    );
    assert_eq!(found.path, "second › (opaque state)");
    // Let both finish: the guard is released, then the first task locks.
    record(2, || assert!(second.as_mut().poll(&mut cx).is_ready()));
    record(1, || assert!(first.as_mut().poll(&mut cx).is_ready()));
    // Forget what those polls recorded, for the next test.
    drop(index);
    let _ = crate::index();
}

#[derive(Trace)]
struct Pair<K, V> {
    key: K,
    value: V,
    #[trace(skip = "an index into `value`, not an owner")]
    cursor: Box<u64>,
}

#[derive(Trace)]
enum Slot<T> {
    Empty,
    One(T),
    Many { items: Vec<T>, label: String },
}

#[test]
fn derived_trace_names_fields_and_skips() {
    let _serial = serial();
    let (pair, slots) = record(1, || {
        let pair = Pair {
            key: String::from("k"),
            value: vec![1u32, 2, 3, 4],
            cursor: Box::new(2),
        };
        let slots: Vec<Slot<Box<u32>>> = vec![
            Slot::Empty,
            Slot::One(Box::new(1)),
            Slot::Many {
                items: vec![Box::new(2), Box::new(3)],
                label: String::from("two"),
            },
        ];
        (pair, slots)
    });
    let index = index();
    let report = walk_with(
        &index,
        &[
            WalkRoot::named("pair", &pair),
            WalkRoot::named("slots", &slots),
        ],
    );
    // key, value; the skipped cursor is unattributed.
    assert_eq!(*pair.cursor, 2);
    assert_eq!(report.roots[0].retained, amount(1 + 16, 2));
    assert_eq!(report.unattributed[0].amount, amount(8, 1));
    // The slot vector, three boxes, the items vector, the label.
    let slot_size = std::mem::size_of::<Slot<Box<u32>>>();
    assert_eq!(
        report.roots[1].retained,
        amount(3 * slot_size + 3 * 4 + 2 * 8 + 3, 6)
    );
    let boxes = census(&report, std::any::type_name::<Box<u32>>());
    assert_eq!((boxes[0].objects, boxes[0].bytes), (3, 12));
}

#[test]
fn locked_mutex_is_scanned_instead() {
    let _serial = serial();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    // The value's blocks under owner 6, the mutex's own under owner 5 (the
    // resource registry may allocate too).
    let value = record(6, || vec![String::from("held"); 2]);
    let mutex = record(5, || turbowish_trace::sync::Mutex::new(value));
    let guard = runtime.block_on(mutex.lock());
    let index = index();
    let report = walk_with(&index, &[WalkRoot::named("locked", &mutex)]);
    drop(guard);
    // The vector's buffer and both strings are reached through the scan of
    // the locked cell, then the scan of the buffer; none is left over.
    assert!(
        !report
            .unattributed
            .iter()
            .any(|u| u.owner == Owner::Task(6)),
        "{:?}",
        report.unattributed
    );
    // The resource record, the buffer, two strings (the locked cell is
    // inside the mutex itself: its bytes are scanned in place).
    assert_eq!(report.roots[0].retained.blocks, 4);
    // All but the record (traced precisely, empty) were scanned.
    assert_eq!(report.stats.blocks_scanned, 3);
}

#[test]
fn walk_is_none_without_heap_walk_mode() {
    // This binary's allocator keeps no live-block registry.
    assert!(turbowish_trace::walk::walk().is_none());
}

#[test]
fn roots_register_and_unregister() {
    static CACHE: Mutex<Vec<String>> = Mutex::new(Vec::new());
    let id = turbowish_trace::root("cache", &CACHE);
    assert!(turbowish_trace::walk::unroot(id));
    assert!(!turbowish_trace::walk::unroot(id));
}

/// A cycle through blocks the index does not list (allocated after the
/// heap view was taken, say) is traced through once, not forever.
#[test]
fn cycle_outside_the_index_ends() {
    struct Node {
        next: std::sync::RwLock<Option<Arc<Node>>>,
        payload: Vec<u8>,
    }
    impl Trace for Node {
        fn trace(&self, tracer: &mut turbowish_trace::Tracer<'_>) {
            tracer.field("next", &self.next);
            tracer.field("payload", &self.payload);
        }
    }
    let _serial = serial();
    let payload = record(7, || vec![1u8; 40]);
    let node = Arc::new(Node {
        next: std::sync::RwLock::new(None),
        payload,
    });
    *node.next.write().unwrap() = Some(Arc::clone(&node));
    // The payload is listed; the node's own `Arc` block is not.
    let index = index();
    let report = walk_with(&index, &[WalkRoot::named("cycle", &node)]);
    assert_eq!(report.roots[0].retained, amount(40, 1));
    *node.next.write().unwrap() = None;
}

/// Retained and shared figures of many roots over random graphs (cycles,
/// hubs shared by many roots, pointers into other roots' cells, TurboWish
/// blocks) agree with a brute-force model: each root's reach computed on
/// its own, a block retained by the one root that reaches it, shared by
/// every root when several do, unattributed when none does.
#[test]
fn retained_and_shared_agree_with_a_brute_force_model() {
    let _serial = serial();
    const CELLS: usize = 400;
    const WORDS: usize = 4;
    let mut x: u64 = 0x2545_f491_4f6c_dd1d;
    let mut next = move |bound: usize| {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        (x % bound as u64) as usize
    };
    for round in 0..40 {
        let cells: Vec<Box<[usize; WORDS]>> = (0..CELLS).map(|_| Box::new([0; WORDS])).collect();
        let addr = |i: usize| &*cells[i] as *const [usize; WORDS] as usize;
        let roots = 1 + next(40);
        // A few hubs that many cells point to, so that sharing is common.
        let hubs: Vec<usize> = (0..4).map(|_| next(CELLS)).collect();
        // TurboWish blocks (never a root's own cell).
        let internal: Vec<bool> = (0..CELLS).map(|i| i >= roots && next(30) == 0).collect();
        let mut edges = vec![Vec::new(); CELLS];
        for (i, cell) in cells.iter().enumerate() {
            let words = cell.as_ptr().cast_mut();
            for w in 0..WORDS {
                let target = match next(10) {
                    0..=3 => continue,
                    4 => hubs[next(hubs.len())],
                    5 => next(roots),
                    _ => next(CELLS),
                };
                // SAFETY: `w` is in bounds of the live box; nothing else
                // reads it meanwhile.
                unsafe { words.add(w).write(addr(target)) };
                edges[i].push(target);
            }
        }
        let blocks = (0..CELLS)
            .map(|i| Block {
                start: addr(i),
                size: 8 * WORDS,
                owner: if internal[i] {
                    Owner::Internal
                } else {
                    Owner::Main
                },
            })
            .collect();
        // SAFETY: the blocks are `cells`' boxes, alive until the walk
        // returns.
        let index = unsafe { BlockIndex::new(blocks) }.unwrap();
        // Roots are the tasks whose cells are cells 0..roots.
        let walk_roots: Vec<WalkRoot<'_>> = (0..roots)
            .map(|r| WalkRoot::task_cell(r as u64, format!("task {r}"), addr(r), 0))
            .collect();
        let report = walk_with(&index, &walk_roots);

        // The model: a root enters its own cell, and no other root's cell
        // nor any TurboWish block.
        let reach = |r: usize| {
            let mut seen = vec![false; CELLS];
            let mut stack = vec![r];
            while let Some(i) = stack.pop() {
                let other_root = i < roots && i != r;
                if seen[i] || other_root || internal[i] {
                    continue;
                }
                seen[i] = true;
                stack.extend(&edges[i]);
            }
            seen
        };
        let reaches: Vec<Vec<bool>> = (0..roots).map(reach).collect();
        let reached_by = |i: usize| reaches.iter().filter(|seen| seen[i]).count();
        let mut unattributed = 0;
        for i in 0..CELLS {
            if reached_by(i) == 0 {
                unattributed += 8 * WORDS as u64;
            }
        }
        for (r, task) in report.tasks.iter().enumerate() {
            let (mut retained, mut shared) = (amount(0, 0), amount(0, 0));
            for i in (0..CELLS).filter(|&i| reaches[r][i]) {
                let sum = if reached_by(i) == 1 {
                    &mut retained
                } else {
                    &mut shared
                };
                sum.bytes += 8 * WORDS as u64;
                sum.blocks += 1;
            }
            assert_eq!(task.id, r as u64);
            assert_eq!(
                (task.retained, task.shared),
                (retained, shared),
                "round {round}, task {r} of {roots}"
            );
        }
        let dark: u64 = report.unattributed.iter().map(|u| u.amount.bytes).sum();
        assert_eq!(dark, unattributed, "round {round}");
        drop(cells);
    }
}

#[derive(Trace)]
struct Subscriber {
    id: u32,
    events: turbowish_trace::sync::mpsc::Sender<u32>,
}

#[derive(Trace)]
struct Hub {
    subscribers: Vec<Subscriber>,
}

/// Traced precisely, a sender in a struct inside a `Vec` in a task's state
/// is found with its field path, and the channel's holder becomes the task.
#[test]
fn a_sender_in_a_vec_is_found_with_its_field_path() {
    let _serial = serial();
    // Created outside the task: recorded as this thread's.
    let (tx, _rx) = turbowish_trace::sync::mpsc::channel_named::<u32>("walk/events", 1);
    let hub = record(1, || Hub {
        subscribers: vec![Subscriber { id: 7, events: tx }],
    });
    let index = index();
    let report = walk_with(&index, &[WalkRoot::task_state(1, "hub", &hub)]);
    let found: Vec<_> = report
        .handles
        .iter()
        .filter(|h| h.handle == turbowish_trace::ownership::HandleKind::Sender)
        .collect();
    assert_eq!(found.len(), 1, "{:?}", report.handles);
    assert_eq!(found[0].name, "hub");
    assert_eq!(found[0].path, "hub › subscribers › events");
    let mut graph: Vec<_> = turbowish_trace::sync::resources()
        .into_iter()
        .filter(|r| r.name == "walk/events")
        .collect();
    turbowish_trace::ownership::apply(&mut graph, &report.handles);
    let sender = graph[0]
        .holders
        .iter()
        .find(|h| h.access == turbowish_trace::sync::Access::Send)
        .unwrap();
    assert_eq!(sender.task_name, "hub");
    assert_eq!(
        sender.provenance,
        turbowish_trace::sync::Provenance::Owns {
            path: "hub › subscribers › events".to_owned()
        }
    );
    assert_eq!(hub.subscribers[0].id, 7);
    drop(hub);
    drop(index);
}
