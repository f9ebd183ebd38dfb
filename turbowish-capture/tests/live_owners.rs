//! The live view names a channel end's holder from ownership: a channel
//! made on the test's thread whose sender is moved into a task that blocks
//! sending, and whose receiver is moved into another task that never uses
//! it, is held (over the socket, in the first update) by those two tasks
//! with provenance `owns` and the path in their state, where the records
//! name this thread for the receiver; a mutex guard's holder stays the
//! recorded one. One test: the endpoint is process-wide.

use std::os::unix::net::UnixStream;
use std::sync::Arc;
use std::time::{Duration, Instant};

use turbowish_capture::SignalConfig;
use turbowish_snapshot::live::{read_frame, LiveParty, ServerFrame, MAX_FRAME_BYTES};
use turbowish_snapshot::schema::{Access, Provenance, TaskRef};
use turbowish_trace::sync::{mpsc, Mutex};

#[global_allocator]
static ALLOC: turbowish_alloc::TurboWish = turbowish_alloc::TurboWish::system();

fn next(stream: &mut UnixStream) -> ServerFrame {
    let body = read_frame(stream, MAX_FRAME_BYTES).expect("a frame");
    ServerFrame::decode(&body).expect("a frame of this version")
}

/// Waits (at most 10 s) until `done` holds of the recorded graph.
fn wait_for(what: &str, done: impl Fn(&[turbowish_trace::sync::ResourceInfo]) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !done(&turbowish_trace::sync::resources()) {
        assert!(Instant::now() < deadline, "{what} did not happen in 10 s");
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn is_owned(p: &LiveParty) -> bool {
    matches!(&p.provenance, Provenance::Owns { path } if path.starts_with("future state +0x"))
}

#[test]
fn the_live_view_names_the_tasks_owning_channel_ends() {
    let dir = std::env::temp_dir().join(format!("turbowish-live-owners-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();

    // Made here, on the test's thread: the ends' records name it.
    let (tx, rx) = mpsc::channel_named::<u32>("jobs", 1);
    let ledger = Arc::new(Mutex::new_named("ledger", 0u64));
    {
        let _runtime = runtime.enter();
        turbowish_trace::spawn("producer", async move {
            // The second send waits for room that never comes.
            let _ = tx.send(1).await;
            let _ = tx.send(2).await;
        });
        turbowish_trace::spawn("consumer", async move {
            let _keep = &rx;
            std::future::pending::<()>().await;
        });
        turbowish_trace::spawn("locker", async move {
            let _guard = ledger.lock().await;
            std::future::pending::<()>().await;
        });
    }
    wait_for("the producer's wait and the locker's lock", |graph| {
        let jobs = graph
            .iter()
            .any(|r| r.name == "jobs" && !r.waiters.is_empty());
        let ledger = graph
            .iter()
            .any(|r| r.name == "ledger" && !r.holders.is_empty());
        jobs && ledger
    });
    // As recorded, the receiver is held by this thread, not by the task
    // it was moved into.
    let recorded = turbowish_trace::sync::resources();
    let jobs = recorded.iter().find(|r| r.name == "jobs").unwrap();
    assert!(
        jobs.holders
            .iter()
            .all(|h| h.provenance == turbowish_trace::sync::Provenance::Recorded),
        "{:?}",
        jobs.holders
    );
    assert!(
        !jobs.holders.iter().any(|h| h.task_name == "consumer"),
        "{:?}",
        jobs.holders
    );

    let trigger = SignalConfig::new().dir(&dir).live(true).install().unwrap();
    let socket = trigger.live_socket().expect("the live socket").to_owned();
    let mut stream = UnixStream::connect(&socket).unwrap();
    assert!(matches!(next(&mut stream), ServerFrame::Hello(_)));
    let ServerFrame::Update(first) = next(&mut stream) else {
        panic!("no update after the hello")
    };

    let jobs = first
        .resources
        .iter()
        .find(|r| r.name == "jobs")
        .unwrap_or_else(|| panic!("no channel \"jobs\": {:?}", first.resources));
    let holder = |access: Access| -> Vec<&LiveParty> {
        jobs.holders.iter().filter(|h| h.access == access).collect()
    };
    let senders = holder(Access::Send);
    assert_eq!(senders.len(), 1, "{:?}", jobs.holders);
    assert_eq!(senders[0].task_name, "producer");
    assert!(matches!(senders[0].task, TaskRef::Task(_)));
    assert!(is_owned(senders[0]), "{:?}", senders[0]);
    let receivers = holder(Access::Receive);
    assert_eq!(receivers.len(), 1, "{:?}", jobs.holders);
    assert_eq!(receivers[0].task_name, "consumer");
    assert!(is_owned(receivers[0]), "{:?}", receivers[0]);
    // The producer waits to send; waiters are recorded.
    assert_eq!(jobs.waiters.len(), 1, "{:?}", jobs.waiters);
    assert_eq!(jobs.waiters[0].task_name, "producer");
    assert_eq!(jobs.waiters[0].provenance, Provenance::Recorded);

    // A guard's holder is the task that took it: recorded.
    let ledger = first
        .resources
        .iter()
        .find(|r| r.name == "ledger")
        .unwrap_or_else(|| panic!("no mutex \"ledger\": {:?}", first.resources));
    assert_eq!(ledger.holders.len(), 1, "{:?}", ledger.holders);
    assert_eq!(ledger.holders[0].task_name, "locker");
    assert_eq!(ledger.holders[0].provenance, Provenance::Recorded);

    drop(stream);
    runtime.shutdown_background();
    let _ = std::fs::remove_dir_all(&dir);
}
