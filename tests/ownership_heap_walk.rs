//! Chains from ownership in heap-walk mode: the walk finds handles anywhere
//! a task reaches alone, on top of the scan of its root cell.

#[path = "../turbowish-report/tests/cli_support/mod.rs"]
mod cli_support;
mod ownership_story;

#[global_allocator]
static A: turbowish::TurboWish = turbowish::TurboWish::system().heap_walk();

/// One heap walk at a time: a snapshot taken while another walk runs has
/// no walk of its own.
fn serial() -> std::sync::MutexGuard<'static, ()> {
    static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

#[test]
fn a_channel_cycle_is_found_from_the_senders_the_tasks_own() {
    let _serial = serial();
    let (runtime, snap) = ownership_story::hung_story();
    assert!(snap.walk.is_some(), "heap-walk mode walks");
    let dir = tempfile::tempdir().unwrap();
    ownership_story::check(&snap, dir.path());
    runtime.shutdown_background();
    // The page of a walk: retained columns, the retained-by treemap, the
    // channel cycle red.
    let path = dir.path().join("walk.json");
    std::fs::write(&path, cli_support::fixtures::to_json(&snap)).unwrap();
    if let Some(dom) = cli_support::check_html(&path, "example-walk") {
        assert!(dom.contains("<th data-key=\"retained\""));
        assert!(dom.contains("id=\"retained-view-0\""));
        assert!(dom.contains("class=\"banner deadlock\""));
    }
}

/// A sender kept in a struct inside a `Vec` in a task's state: the `Vec`'s
/// buffer is a heap block only that task reaches, where the walk finds it.
#[test]
fn a_sender_in_a_struct_in_a_vec_is_found_in_the_heap_block() {
    let _serial = serial();
    use turbowish::snapshot::schema::{HandleKind, Provenance};
    use turbowish::trace::sync::mpsc;

    struct Subscriber {
        id: u32,
        events: mpsc::Sender<String>,
    }

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (tx, mut rx) = mpsc::channel_named::<String>("events", 4);
    runtime.block_on(async move {
        turbowish::trace::spawn("hub", async move {
            let subscribers = vec![Subscriber { id: 1, events: tx }];
            std::future::pending::<()>().await;
            for s in &subscribers {
                let _ = s.events.send(format!("to {}", s.id)).await;
            }
        });
        turbowish::trace::spawn("listener", async move { rx.recv().await });
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    });
    let snap = turbowish::capture::snapshot();
    let events = snap.resources.iter().find(|r| r.name == "events").unwrap();
    let sender = events
        .owners
        .iter()
        .find(|o| o.handle == HandleKind::Sender)
        .unwrap_or_else(|| panic!("no sender owner: {events:#?}"));
    assert_eq!(sender.name, "hub");
    assert!(
        sender.path.starts_with("hub › heap block +0x"),
        "{}",
        sender.path
    );
    let holder = events
        .holders
        .iter()
        .find(|h| h.task_name == "hub")
        .unwrap();
    assert!(matches!(&holder.provenance, Provenance::Owns { path } if *path == sender.path));
    runtime.shutdown_background();
}
