//! What ownership resolution costs in a heap-walk snapshot: 1,000 live
//! TurboWish tasks, each retaining 300 boxes of 32 bytes through a `Vec`
//! in its future's state (300,000 blocks with the buffers), parked forever.
//! While they *hold*, 240 of them keep a `Sender` of one of 20 channels
//! (in their future's state, or for one in two of those in a heap block
//! only they reach), 96 an `Arc` of one of 100 mutexes they locked once,
//! and 20 consumers the receivers, waiting for a lock one of 20 holders
//! keeps.
//!
//! Criterion benches, with TurboWish's handles held: `walk()` alone,
//! `ownership::find()` alone, `sync::resources()` alone and with `apply()`
//! of `find()` and the walk's handles, `apply()` alone (on a copy of the
//! graph), `chains()` + `cycles()` without and with the owners, and the
//! full `capture::snapshot()`.
//!
//! The walk runs a mark scanner over every word it scans and cannot be told
//! not to, so what TurboWish's handles cost inside the walk is measured the
//! one way the library allows: in alternate rounds the tasks hold fresh
//! TurboWish handles, then plain tokio ones (`tokio::sync::mpsc`,
//! `Arc<tokio::sync::Mutex>`) in the same places, so the heap and its
//! sharing are the same but no resource is live; `walk()` and `snapshot()`
//! are timed in each round (`interleaved`, printed at the end: medians over
//! the rounds, and the median of each round's difference), then benched
//! once more with plain handles. With no live resource the scanner still
//! tests every word for a mark, but looks nothing up and reports no
//! handle; that per-word test is not isolated.
//!
//! Run: `TURBOWISH_SAMPLE_INTERVAL=0 cargo bench --bench snapshot_heap_walk
//! -- --warm-up-time 1 --measurement-time 3` (without the variable the
//! snapshot also symbolises the sampled stacks). The figures are in
//! `book/src/overhead.md`.

use std::hint::black_box;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver, UnboundedSender};
use turbowish::trace::ownership;
use turbowish::trace::sync::{mpsc, Mutex};

#[global_allocator]
static ALLOC: turbowish::TurboWish = turbowish::TurboWish::system().heap_walk();

const TASKS: usize = 1_000;
const BOXES: usize = 300;
const CHANNELS: usize = 20;
const SHARED_LOCKS: usize = 100;
/// Interleaved rounds under `cargo bench`; `cargo test --all-targets`
/// runs this file once as a test (criterion's test mode, every bench
/// once), where one round checks the swap of handles works and 16 would
/// only add minutes of unoptimised walks to CI.
const ROUNDS: usize = 16;
const PER_ROUND: usize = 3;

/// Whether this run measures (`cargo bench` passes `--bench`) rather than
/// checks that every bench runs (`cargo test`).
fn measuring() -> bool {
    std::env::args().any(|a| a == "--bench")
}

/// The handles a task is told to hold (TurboWish's, or plain tokio ones
/// in the same places), or to drop.
enum Command {
    Holder(Arc<Mutex<()>>),
    Consumer(mpsc::Receiver<usize>, Arc<Mutex<()>>),
    Producer(mpsc::Sender<usize>, bool),
    Locker(Arc<Mutex<u64>>),
    PlainHolder(Arc<tokio::sync::Mutex<()>>),
    PlainConsumer(
        tokio::sync::mpsc::Receiver<usize>,
        Arc<tokio::sync::Mutex<()>>,
    ),
    PlainProducer(tokio::sync::mpsc::Sender<usize>, bool),
    PlainLocker(Arc<tokio::sync::Mutex<u64>>),
    Release,
}

/// Counts `ready` (the handles are in place), then parks for good.
macro_rules! park {
    ($ready:expr) => {{
        $ready.fetch_add(1, Ordering::SeqCst);
        std::future::pending::<()>().await;
    }};
}

/// Holds `command`'s handles until the future is dropped.
async fn hold(command: Command, ready: &AtomicUsize) {
    match command {
        Command::Holder(lock) => {
            let _guard = lock.lock().await;
            park!(ready)
        }
        Command::PlainHolder(lock) => {
            let _guard = lock.lock().await;
            park!(ready)
        }
        Command::Consumer(rx, lock) => {
            let _rx = &rx;
            ready.fetch_add(1, Ordering::SeqCst);
            let _guard = lock.lock().await;
            std::future::pending::<()>().await;
        }
        Command::PlainConsumer(rx, lock) => {
            let _rx = &rx;
            ready.fetch_add(1, Ordering::SeqCst);
            let _guard = lock.lock().await;
            std::future::pending::<()>().await;
        }
        // In a heap block only this task reaches.
        Command::Producer(tx, true) => {
            let tx = vec![tx];
            let _keep = &tx;
            park!(ready)
        }
        Command::PlainProducer(tx, true) => {
            let tx = vec![tx];
            let _keep = &tx;
            park!(ready)
        }
        Command::Producer(tx, false) => {
            let _keep = &tx;
            park!(ready)
        }
        Command::PlainProducer(tx, false) => {
            let _keep = &tx;
            park!(ready)
        }
        Command::Locker(lock) => {
            *lock.lock().await += 1;
            park!(ready)
        }
        Command::PlainLocker(lock) => {
            *lock.lock().await += 1;
            park!(ready)
        }
        Command::Release => {}
    }
}

fn lock<T>(name: String, value: T) -> Arc<Mutex<T>> {
    Arc::new(Mutex::new_named(name, value))
}

fn plain_lock<T>(_name: String, value: T) -> Arc<tokio::sync::Mutex<T>> {
    Arc::new(tokio::sync::Mutex::new(value))
}

fn channel(name: String) -> (mpsc::Sender<usize>, mpsc::Receiver<usize>) {
    mpsc::channel_named(name, 1)
}

fn plain_channel(
    _name: String,
) -> (
    tokio::sync::mpsc::Sender<usize>,
    tokio::sync::mpsc::Receiver<usize>,
) {
    tokio::sync::mpsc::channel(1)
}

/// Fresh locks and channels made by `$lock` and `$channel`, handed to the
/// tasks as the `$holder`, … commands; held by the tasks only once this
/// returns.
macro_rules! hold_with {
    ($world:expr, $runtime:expr, $lock:ident, $channel:ident,
     $holder:path, $consumer:path, $producer:path, $locker:path) => {{
        let world: &World = $world;
        let stuck: Vec<_> = (0..CHANNELS)
            .map(|c| $lock(format!("stuck-{c}"), ()))
            .collect();
        let shared: Vec<_> = (0..SHARED_LOCKS)
            .map(|l| $lock(format!("shared-{l}"), 0u64))
            .collect();
        let mut senders = Vec::new();
        world.ready.store(0, Ordering::SeqCst);
        for (c, holder) in world.holders.iter().enumerate() {
            let _ = holder.send($holder(stuck[c].clone()));
        }
        // The holders lock first, their consumers then wait.
        world.wait($runtime, &world.ready, world.holders.len());
        for (c, consumer) in world.consumers.iter().enumerate() {
            let (tx, rx) = $channel(format!("jobs-{c}"));
            senders.push(tx);
            let _ = consumer.send($consumer(rx, stuck[c].clone()));
        }
        for (p, producer) in world.producers.iter().enumerate() {
            let tx = senders[p % CHANNELS].clone();
            let _ = producer.send($producer(tx, p % 2 == 1));
        }
        for (l, locker) in world.lockers.iter().enumerate() {
            let _ = locker.send($locker(shared[l % SHARED_LOCKS].clone()));
        }
        drop((senders, stuck, shared));
        world.wait($runtime, &world.ready, world.with_handles());
    }};
}

/// The 1,000 tasks, and the command channels of those that hold handles
/// (by role: holders, consumers, producers, lockers).
struct World {
    holders: Vec<UnboundedSender<Command>>,
    consumers: Vec<UnboundedSender<Command>>,
    producers: Vec<UnboundedSender<Command>>,
    lockers: Vec<UnboundedSender<Command>>,
    ready: Arc<AtomicUsize>,
    released: Arc<AtomicUsize>,
}

fn spawn_tasks() -> World {
    let ready = Arc::new(AtomicUsize::new(0));
    let released = Arc::new(AtomicUsize::new(0));
    let mut world = World {
        holders: Vec::new(),
        consumers: Vec::new(),
        producers: Vec::new(),
        lockers: Vec::new(),
        ready: ready.clone(),
        released: released.clone(),
    };
    for i in 0..TASKS {
        let (tx, rx) = unbounded_channel();
        let (role, list) = if i < CHANNELS {
            ("holder", Some(&mut world.holders))
        } else if i < 2 * CHANNELS {
            ("consumer", Some(&mut world.consumers))
        } else if i % 4 == 0 {
            ("producer", Some(&mut world.producers))
        } else if i % 10 == 1 {
            ("locker", Some(&mut world.lockers))
        } else {
            // Never told anything: parked for good.
            ("idle", None)
        };
        if let Some(list) = list {
            list.push(tx);
        }
        let (ready, released) = (ready.clone(), released.clone());
        turbowish::trace::spawn(format!("{role}-{}", i % CHANNELS), async move {
            // Integers that point nowhere (hashes).
            let boxes: Vec<Box<[u64; 4]>> = (0..BOXES)
                .map(|k| {
                    Box::new([((i * BOXES + k) as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15); 4])
                })
                .collect();
            serve(rx, &ready, &released).await;
            drop(boxes);
        });
    }
    world
}

/// Holds what each command says until the next (a `Release`); parked
/// between.
async fn serve(
    mut commands: UnboundedReceiver<Command>,
    ready: &AtomicUsize,
    released: &AtomicUsize,
) {
    while let Some(command) = commands.recv().await {
        if let Command::Release = command {
            continue;
        }
        let holding = hold(command, ready);
        tokio::select! {
            _ = holding => {}
            _ = commands.recv() => {}
        }
        released.fetch_add(1, Ordering::SeqCst);
    }
    std::future::pending::<()>().await;
}

impl World {
    fn with_handles(&self) -> usize {
        self.holders.len() + self.consumers.len() + self.producers.len() + self.lockers.len()
    }

    /// TurboWish's locks and channels, held by the tasks once this returns.
    fn hold(&self, runtime: &tokio::runtime::Runtime) {
        use Command::*;
        hold_with!(self, runtime, lock, channel, Holder, Consumer, Producer, Locker);
    }

    /// Plain tokio locks and channels in the same places: the same heap
    /// and sharing, no TurboWish resource.
    fn hold_plain(&self, runtime: &tokio::runtime::Runtime) {
        use Command::*;
        hold_with!(
            self,
            runtime,
            plain_lock,
            plain_channel,
            PlainHolder,
            PlainConsumer,
            PlainProducer,
            PlainLocker
        );
    }

    /// Every task drops its handles: no live resource once this returns.
    fn release(&self, runtime: &tokio::runtime::Runtime) {
        self.released.store(0, Ordering::SeqCst);
        for tx in self
            .holders
            .iter()
            .chain(&self.consumers)
            .chain(&self.producers)
            .chain(&self.lockers)
        {
            let _ = tx.send(Command::Release);
        }
        self.wait(runtime, &self.released, self.with_handles());
        assert!(turbowish::trace::sync::resources().is_empty());
    }

    fn wait(&self, runtime: &tokio::runtime::Runtime, count: &AtomicUsize, n: usize) {
        runtime.block_on(async {
            while count.load(Ordering::SeqCst) < n {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            // Let the last ones park.
            tokio::time::sleep(Duration::from_millis(20)).await;
        });
    }
}

fn timed<T>(f: impl FnOnce() -> T) -> Duration {
    let start = Instant::now();
    black_box(f());
    start.elapsed()
}

/// Median, min and max in ms.
fn spread(times: &[Duration]) -> String {
    let mut times = times.to_vec();
    times.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    format!(
        "median {:.2} ms (min {:.2}, max {:.2})",
        ms(times[times.len() / 2]),
        ms(times[0]),
        ms(times[times.len() - 1])
    )
}

/// The median over rounds of (a - b) / b, each round's figure the
/// fastest of its `per_round` runs.
fn paired(a: &[Duration], b: &[Duration], per_round: usize) -> String {
    let best = |d: &[Duration]| -> Vec<f64> {
        d.chunks(per_round)
            .map(|c| c.iter().min().unwrap().as_secs_f64())
            .collect()
    };
    let mut added: Vec<f64> = best(a)
        .iter()
        .zip(best(b))
        .map(|(h, r)| (h - r) / r * 100.0)
        .collect();
    added.sort_by(f64::total_cmp);
    format!(
        "median {:+.1} % (rounds from {:+.1} to {:+.1} %)",
        added[added.len() / 2],
        added[0],
        added[added.len() - 1]
    )
}

fn bench_heap_walk_snapshot(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    let world = {
        let _entered = runtime.enter();
        spawn_tasks()
    };
    world.hold(&runtime);
    assert!(turbowish::alloc::heap_walk_enabled());

    let report = turbowish::trace::walk::walk().expect("heap-walk mode");
    let found = ownership::find();
    let mut all = found.clone();
    all.extend(report.handles.iter().cloned());
    let mut graph = turbowish::trace::sync::resources();
    ownership::apply(&mut graph, &all);
    let owners: usize = graph.iter().map(|r| r.owners.len()).sum();
    assert!(owners >= world.with_handles(), "{owners} owners");
    eprintln!(
        "snapshot_heap_walk: {} live blocks, {} scanned ({} MB), {} handles in root cells, {} in the walk, {} resources, {owners} owners",
        report.stats.live_blocks,
        report.stats.blocks_scanned,
        report.stats.bytes_scanned >> 20,
        found.len(),
        report.handles.len(),
        graph.len(),
    );
    assert!(report.stats.live_blocks >= (TASKS * BOXES) as u64);

    let mut group = c.benchmark_group("snapshot_heap_walk_1k_tasks");
    group.sample_size(20);
    group.bench_function("walk", |b| {
        b.iter(|| turbowish::trace::walk::walk().expect("heap-walk mode"))
    });
    group.bench_function("find", |b| b.iter(ownership::find));
    group.bench_function("resources", |b| b.iter(turbowish::trace::sync::resources));
    group.bench_function("resources_find_apply", |b| {
        b.iter(|| {
            let mut resources = turbowish::trace::sync::resources();
            let mut handles = ownership::find();
            handles.extend(report.handles.iter().cloned());
            ownership::apply(&mut resources, &handles);
            resources
        })
    });
    let plain_graph = turbowish::trace::sync::resources();
    group.bench_function("apply", |b| {
        b.iter_batched(
            || plain_graph.clone(),
            |mut resources| {
                ownership::apply(&mut resources, &all);
                resources
            },
            BatchSize::SmallInput,
        )
    });
    group.bench_function("chains_cycles_recorded", |b| {
        b.iter(|| {
            black_box((
                turbowish::trace::chains::chains(&plain_graph),
                turbowish::trace::chains::cycles(&plain_graph),
            ))
        })
    });
    group.bench_function("chains_cycles_owned", |b| {
        b.iter(|| {
            black_box((
                turbowish::trace::chains::chains(&graph),
                turbowish::trace::chains::cycles(&graph),
            ))
        })
    });
    group.bench_function("snapshot", |b| b.iter(turbowish::capture::snapshot));
    group.finish();

    // TurboWish's handles and plain tokio ones in alternate rounds: walk
    // and snapshot timed in each, so that drift weighs on both alike.
    let (mut walk_tw, mut walk_plain) = (Vec::new(), Vec::new());
    let (mut snap_tw, mut snap_plain) = (Vec::new(), Vec::new());
    let (rounds, per_round) = if measuring() {
        (ROUNDS, PER_ROUND)
    } else {
        (1, 1)
    };
    for round in 0..rounds {
        if round > 0 {
            world.hold(&runtime);
        }
        assert!(!ownership::find().is_empty());
        for _ in 0..per_round {
            walk_tw.push(timed(turbowish::trace::walk::walk));
            snap_tw.push(timed(turbowish::capture::snapshot));
        }
        world.release(&runtime);
        world.hold_plain(&runtime);
        assert!(turbowish::trace::sync::resources().is_empty());
        for _ in 0..per_round {
            walk_plain.push(timed(turbowish::trace::walk::walk));
            snap_plain.push(timed(turbowish::capture::snapshot));
        }
        world.release(&runtime);
    }
    eprintln!("interleaved, {rounds} rounds of {per_round}:");
    eprintln!("  walk, TurboWish handles:      {}", spread(&walk_tw));
    eprintln!("  walk, plain tokio handles:    {}", spread(&walk_plain));
    eprintln!("  snapshot, TurboWish handles:  {}", spread(&snap_tw));
    eprintln!("  snapshot, plain tokio:        {}", spread(&snap_plain));
    for (label, a, b) in [
        ("walk, TurboWish vs plain:    ", &walk_tw, &walk_plain),
        ("snapshot, TurboWish vs plain:", &snap_tw, &snap_plain),
        ("snapshot vs walk, TurboWish: ", &snap_tw, &walk_tw),
        ("snapshot vs walk, plain:     ", &snap_plain, &walk_plain),
    ] {
        eprintln!("  {label} {}", paired(a, b, per_round));
    }

    // Plain tokio handles: the same benches with no live resource.
    world.hold_plain(&runtime);
    let mut group = c.benchmark_group("snapshot_heap_walk_1k_tasks_plain");
    group.sample_size(20);
    group.bench_function("walk", |b| {
        b.iter(|| turbowish::trace::walk::walk().expect("heap-walk mode"))
    });
    group.bench_function("snapshot", |b| b.iter(turbowish::capture::snapshot));
    group.finish();
    runtime.shutdown_background();
}

criterion_group!(benches, bench_heap_walk_snapshot);
criterion_main!(benches);
