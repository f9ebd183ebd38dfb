//! Memory budgets: a task over its budget, the process over its live limit
//! or growing too fast, each gets one snapshot (rate-limited) and one
//! callback per crossing. The watcher is one per process, so the phases
//! run in order in one test.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use turbowish::capture::{BudgetEvent, BudgetTrigger, Budgets};
use turbowish::trace::task::Builder;
use turbowish::TurboWish;

#[global_allocator]
static ALLOC: TurboWish = TurboWish::system();

const WAIT: Duration = Duration::from_secs(20);

fn snapshots_in(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    files
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn budgets_write_one_snapshot_and_call_back_once_per_crossing() {
    let dir = tempfile::tempdir().unwrap();
    let events: Arc<Mutex<Vec<BudgetEvent>>> = Arc::default();
    let seen = events.clone();
    let watcher = Budgets::new()
        .dir(dir.path())
        .min_interval(Duration::from_secs(3600))
        .on_crossing(move |e| seen.lock().unwrap().push(e.clone()))
        .install()
        .unwrap();

    // Under budget: nothing.
    let under = Builder::new("under")
        .budget(1 << 20)
        .spawn(async { vec![0u8; 100 * 1024].len() });
    assert_eq!(under.await.unwrap(), 100 * 1024);

    // Over budget, twice: a snapshot for the first crossing, and within the
    // hour's rate limit only the callback for the second.
    let (step, mut steps) = tokio::sync::mpsc::channel::<()>(1);
    let (done, mut dones) = tokio::sync::mpsc::channel::<()>(1);
    let grower = Builder::new("grower").budget(64 * 1024).spawn(async move {
        let first = vec![1u8; 100 * 1024];
        done.send(()).await.unwrap();
        steps.recv().await.unwrap();
        drop(first);
        // End the poll here: a drop and a new allocation folded together
        // would never show live bytes back under the budget (no crossing).
        tokio::task::yield_now().await;
        done.send(()).await.unwrap();
        steps.recv().await.unwrap();
        let second = vec![2u8; 100 * 1024];
        done.send(()).await.unwrap();
        steps.recv().await.unwrap();
        second.len()
    });
    dones.recv().await.unwrap();
    assert_eq!(watcher.wait_for_events(0, WAIT), 1);
    {
        let events = events.lock().unwrap();
        assert_eq!(events.len(), 1, "{events:?}");
        let e = &events[0];
        assert!(
            matches!(&e.trigger, BudgetTrigger::Task { name, .. } if name == "grower"),
            "{e:?}"
        );
        assert_eq!(e.limit, 64 * 1024);
        assert!(e.live_bytes >= 100 * 1024, "{e:?}");
        assert!(!e.rate_limited);
        let path = e.snapshot.clone().expect("a snapshot");
        assert_eq!(snapshots_in(dir.path()), vec![path.clone()]);
        let snapshot = turbowish::snapshot::Snapshot::load(&path).unwrap();
        assert!(snapshot.tasks.iter().any(|t| t.name == "grower"));
    }
    // Dropping back under the budget is no crossing.
    step.send(()).await.unwrap();
    dones.recv().await.unwrap();
    // Crossing again.
    step.send(()).await.unwrap();
    dones.recv().await.unwrap();
    assert_eq!(watcher.wait_for_events(1, WAIT), 2);
    {
        let events = events.lock().unwrap();
        assert_eq!(events.len(), 2, "{events:?}");
        assert!(events[1].rate_limited, "{:?}", events[1]);
        assert_eq!(events[1].snapshot, None);
        assert_eq!(snapshots_in(dir.path()).len(), 1, "nothing more written");
    }
    step.send(()).await.unwrap();
    assert_eq!(grower.await.unwrap(), 100 * 1024);
    assert_eq!(watcher.snapshots_written(), 1);

    // The process-wide live limit, with no rate limit.
    let live = turbowish::alloc::stats().total.live_bytes;
    let seen = events.clone();
    let watcher = Budgets::new()
        .dir(dir.path())
        .live_limit(live + (8 << 20))
        .min_interval(Duration::ZERO)
        .on_crossing(move |e| seen.lock().unwrap().push(e.clone()))
        .install()
        .unwrap();
    let big = vec![3u8; 16 << 20];
    assert_eq!(watcher.wait_for_events(2, WAIT), 3);
    {
        let events = events.lock().unwrap();
        let e = &events[2];
        assert_eq!(e.trigger, BudgetTrigger::LiveLimit, "{e:?}");
        assert_eq!(e.limit, live + (8 << 20));
        assert!(e.snapshot.is_some(), "{e:?}");
        assert_eq!(snapshots_in(dir.path()).len(), 2);
    }
    drop(big);

    // Growth of more than 50 % within a (long) window.
    let seen = events.clone();
    let watcher = Budgets::new()
        .dir(dir.path())
        .growth_limit(50, Duration::from_secs(3600))
        .min_interval(Duration::ZERO)
        .on_crossing(move |e| seen.lock().unwrap().push(e.clone()))
        .install()
        .unwrap();
    let level = turbowish::alloc::stats().total.live_bytes;
    let grown = vec![4u8; (level as usize).max(1 << 20) + (4 << 20)];
    assert_eq!(watcher.wait_for_events(3, WAIT), 4);
    {
        let events = events.lock().unwrap();
        let e = &events[3];
        assert!(
            matches!(e.trigger, BudgetTrigger::Growth { percent: 50, .. }),
            "{e:?}"
        );
        assert!(e.live_bytes > e.limit, "{e:?}");
        assert_eq!(snapshots_in(dir.path()).len(), 3);
        assert_eq!(events.len(), 4, "one callback per crossing: {events:?}");
    }
    drop(grown);
}
