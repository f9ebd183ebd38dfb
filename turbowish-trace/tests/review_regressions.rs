//! Regressions found in review.

use std::panic::Location;
use std::time::Duration;

use turbowish_trace::frame::FramePath;
use turbowish_trace::sync::{Access, Party, ResourceInfo, ResourceKind, TaskRef};

#[global_allocator]
static A: turbowish_alloc::TurboWish = turbowish_alloc::TurboWish::system();

fn party(id: u64, name: &str, access: Access) -> Party {
    Party {
        task: TaskRef::Task(id),
        task_name: name.to_string(),
        frames: FramePath::default(),
        location: Location::caller(),
        since: Duration::from_secs(1),
        access,
        movable: false,
        parked_in: None,
    }
}

fn resource(id: u64, kind: ResourceKind, holders: Vec<Party>, waiters: Vec<Party>) -> ResourceInfo {
    ResourceInfo {
        id,
        kind,
        name: format!("r{id}"),
        location: Location::caller(),
        holders,
        extra_holders: 0,
        waiters,
        permits: None,
    }
}

/// `Link::holders` says the chain continues with the first holder, and
/// `Display` reads "held by <first>, which waits for ...": the holder the
/// chain follows (one that itself waits) must be the one named first, not
/// an idle reader that happened to take its slot earlier.
#[test]
fn chain_names_the_followed_holder_first() {
    let graph = vec![
        resource(
            1,
            ResourceKind::RwLock,
            vec![
                party(1, "idle-reader", Access::Shared),
                party(2, "stuck-reader", Access::Shared),
            ],
            vec![party(3, "writer", Access::Exclusive)],
        ),
        resource(
            2,
            ResourceKind::Mutex,
            vec![party(4, "owner", Access::Exclusive)],
            vec![party(2, "stuck-reader", Access::Exclusive)],
        ),
    ];
    let chains = turbowish_trace::chains::chains(&graph);
    let chain = &chains[0];
    assert_eq!(chain.links.len(), 2);
    assert_eq!(chain.links[0].waiter.task, TaskRef::Task(3));
    assert_eq!(chain.links[0].holders[0].task, TaskRef::Task(2));
    assert_eq!(chain.links[0].holders.len(), 2);
    assert_eq!(chain.links[1].waiter.task, TaskRef::Task(2));
    let text = chain.to_string();
    assert!(
        text.contains("held by task \"stuck-reader\""),
        "wrong holder named: {text}"
    );
}

/// A loop over an always-free lock or an always-ready channel yields to
/// other tasks, as it would with tokio's own types (cooperative budget).
#[test]
fn hot_loops_over_ready_resources_yield() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;

    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    rt.block_on(async {
        let other_ran = Arc::new(AtomicBool::new(false));
        let flag = other_ran.clone();
        let other = tokio::spawn(async move { flag.store(true, Ordering::SeqCst) });

        let lock = turbowish_trace::sync::Mutex::new_named("coop/lock", 0u32);
        let mut saw_other_during_locks = false;
        for _ in 0..10_000 {
            *lock.lock().await += 1;
            saw_other_during_locks |= other_ran.load(Ordering::SeqCst);
        }
        assert!(
            saw_other_during_locks,
            "10,000 uncontended locks never yielded"
        );

        let (tx, mut rx) = turbowish_trace::sync::mpsc::unbounded_channel_named::<u32>("coop/ch");
        let other_ran = Arc::new(AtomicBool::new(false));
        let flag = other_ran.clone();
        let second = tokio::spawn(async move { flag.store(true, Ordering::SeqCst) });
        for i in 0..10_000 {
            tx.send(i).unwrap();
        }
        let mut saw_other_during_recv = false;
        for _ in 0..10_000 {
            rx.recv().await.unwrap();
            saw_other_during_recv |= other_ran.load(Ordering::SeqCst);
        }
        assert!(saw_other_during_recv, "10,000 ready receives never yielded");
        other.await.unwrap();
        second.await.unwrap();
    });
}

/// The non-waiting and owned variants record holders and release them.
#[test]
fn try_and_owned_variants_record_and_release() {
    use turbowish_trace::sync::{Access, Mutex, RwLock, Semaphore};

    fn holders(name: &str) -> Vec<Access> {
        turbowish_trace::sync::resources()
            .into_iter()
            .filter(|r| r.name == name)
            .flat_map(|r| r.holders.into_iter().map(|h| h.access))
            .collect()
    }

    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    rt.block_on(async {
        let rw = RwLock::new_named("variants/rw", 1u32);
        {
            let a = rw.try_read().unwrap();
            let b = rw.try_read().unwrap();
            assert!(rw.try_write().is_err());
            assert_eq!(holders("variants/rw"), [Access::Shared, Access::Shared]);
            assert_eq!(*a + *b, 2);
        }
        {
            let mut w = rw.try_write().unwrap();
            *w = 5;
            assert_eq!(holders("variants/rw"), [Access::Exclusive]);
        }
        assert!(holders("variants/rw").is_empty());
        assert_eq!(rw.into_inner(), 5);

        let sem = std::sync::Arc::new(Semaphore::new_named("variants/sem", 3));
        {
            let two = sem.try_acquire_many(2).unwrap();
            assert_eq!(two.num_permits(), 2);
            let one = std::sync::Arc::clone(&sem).acquire_owned().await.unwrap();
            assert_eq!(one.num_permits(), 1);
            assert_eq!(
                holders("variants/sem"),
                [Access::Permits(2), Access::Permits(1)]
            );
            assert!(sem.try_acquire_many(1).is_err());
        }
        assert!(holders("variants/sem").is_empty());
        assert_eq!(sem.available_permits(), 3);

        // Forgotten permits leave the semaphore's total and its records.
        let owned = std::sync::Arc::clone(&sem)
            .try_acquire_many_owned(2)
            .unwrap();
        assert_eq!(holders("variants/sem"), [Access::Permits(2)]);
        owned.forget();
        assert!(holders("variants/sem").is_empty());
        assert_eq!(sem.available_permits(), 1);
        sem.try_acquire().unwrap().forget();
        assert_eq!(sem.available_permits(), 0);
        let info = turbowish_trace::sync::resources()
            .into_iter()
            .find(|r| r.name == "variants/sem")
            .unwrap();
        assert_eq!(info.permits, Some(0));

        let mutex = Mutex::new_named("variants/mutex", 7u32);
        *mutex.lock().await += 1;
        assert_eq!(mutex.into_inner(), 8);
    });
}
