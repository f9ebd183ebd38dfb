//! The wrappers' API follows `tokio::sync` (a user swaps an import), and
//! every variant records holders and waiters like the basic calls: owned
//! read/write guards, `try_*_owned`, `blocking_lock`, permits forgotten,
//! `reserve` and `recv_many` on channels.

use std::sync::Arc;
use std::time::Duration;

use turbowish_trace::sync::{mpsc, Access, Mutex, Party, RwLock};

#[global_allocator]
static A: turbowish_alloc::TurboWish = turbowish_alloc::TurboWish::system();

fn holders(name: &str) -> Vec<Party> {
    resource(name).0
}

fn waiters(name: &str) -> Vec<Party> {
    resource(name).1
}

fn resource(name: &str) -> (Vec<Party>, Vec<Party>) {
    turbowish_trace::sync::resources()
        .into_iter()
        .find(|r| r.name == name)
        .map(|r| (r.holders, r.waiters))
        .unwrap_or_default()
}

async fn until(mut done: impl FnMut() -> bool) {
    for _ in 0..500 {
        if done() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    panic!("condition not reached in 1 s");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn owned_rwlock_guards_move_between_tasks() {
    let lock = Arc::new(RwLock::new_named("parity/rw", vec![1u8]));
    let read = Arc::clone(&lock).read_owned().await;
    let again = Arc::clone(&lock).try_read_owned().unwrap();
    let recorded = holders("parity/rw");
    assert_eq!(recorded.len(), 2);
    assert!(recorded
        .iter()
        .all(|h| h.access == Access::Shared && h.movable));
    assert_eq!(read.len(), 1);
    assert!(Arc::clone(&lock).try_write_owned().is_err());

    // A writer waits (recorded) until both readers, one moved into another
    // task, are gone.
    let writer = turbowish_trace::spawn("parity-writer", {
        let lock = Arc::clone(&lock);
        async move {
            let mut guard = lock.write_owned().await;
            guard.push(2);
        }
    });
    until(|| waiters("parity/rw").len() == 1).await;
    assert_eq!(waiters("parity/rw")[0].access, Access::Exclusive);
    let mover = turbowish_trace::spawn("parity-mover", async move { drop(again) });
    mover.await.unwrap();
    assert_eq!(holders("parity/rw").len(), 1);
    drop(read);
    writer.await.unwrap();
    assert!(holders("parity/rw").is_empty());
    assert!(waiters("parity/rw").is_empty());
    let lock = Arc::into_inner(lock).expect("guards gone");
    assert_eq!(lock.into_inner(), vec![1, 2]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn owned_mutex_guard_keeps_the_mutex_and_get_mut_is_infallible() {
    let mutex = Arc::new(Mutex::new_named("parity/mutex", 1u32));
    let guard = Arc::clone(&mutex).try_lock_owned().unwrap();
    assert!(Arc::ptr_eq(
        turbowish_trace::sync::OwnedMutexGuard::mutex(&guard),
        &mutex
    ));
    assert!(holders("parity/mutex")[0].movable);
    // The guard shares the mutex: it outlives the caller's handle.
    drop(mutex);
    let mutex = Arc::clone(turbowish_trace::sync::OwnedMutexGuard::mutex(&guard));
    drop(guard);
    let mut mutex = Arc::into_inner(mutex).expect("guard gone");
    *mutex.get_mut() += 1;
    assert_eq!(mutex.into_inner(), 2);
}

#[test]
fn blocking_lock_records_its_wait() {
    let mutex = Arc::new(Mutex::new_named("parity/blocking", 0u32));
    let held = mutex.try_lock().unwrap();
    let waiter = std::thread::spawn({
        let mutex = Arc::clone(&mutex);
        move || *mutex.blocking_lock() += 1
    });
    while waiters("parity/blocking").len() != 1 {
        std::thread::sleep(Duration::from_millis(1));
    }
    drop(held);
    waiter.join().unwrap();
    assert!(waiters("parity/blocking").is_empty());
    assert_eq!(*mutex.try_lock().unwrap(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reserve_on_a_full_channel_waits_for_the_receiver() {
    let (tx, mut rx) = mpsc::channel_named::<u32>("parity/reserve", 1);
    assert_eq!(tx.max_capacity(), 1);
    tx.try_reserve().unwrap().send(1);
    assert_eq!(tx.capacity(), 0);
    let sender = turbowish_trace::spawn("parity-sender", async move {
        tx.reserve().await.unwrap().send(2);
        tx
    });
    until(|| {
        waiters("parity/reserve")
            .iter()
            .any(|w| w.access == Access::Send && w.task_name == "parity-sender")
    })
    .await;
    assert_eq!(rx.len(), 1);
    let mut got = Vec::new();
    assert_eq!(rx.recv_many(&mut got, 1).await, 1);
    let tx = sender.await.unwrap();
    assert!(waiters("parity/reserve").is_empty());
    assert_eq!(rx.recv_many(&mut got, 8).await, 1);
    assert_eq!(got, [1, 2]);
    drop(tx);
    assert_eq!(rx.recv_many(&mut got, 8).await, 0, "closed and empty");
    assert!(rx.is_closed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recv_many_on_an_empty_channel_waits_for_the_senders() {
    let (tx, mut rx) = mpsc::unbounded_channel_named::<u32>("parity/recv_many");
    let receiver = turbowish_trace::spawn("parity-receiver", async move {
        let mut got = Vec::new();
        let n = rx.recv_many(&mut got, 2).await;
        (n, got)
    });
    until(|| {
        waiters("parity/recv_many")
            .iter()
            .any(|w| w.access == Access::Receive && w.task_name == "parity-receiver")
    })
    .await;
    tx.send(7).unwrap();
    let (n, got) = receiver.await.unwrap();
    assert_eq!((n, got), (1, vec![7]));
    assert!(waiters("parity/recv_many").is_empty());
}

/// A holder's record says where it took the lock; `parked_in` says which
/// future inside it waits now, and the chain ends there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn holder_parked_in_names_the_future_it_waits_in() {
    use turbowish_trace::TracedExt;
    let lock = Arc::new(Mutex::new_named("parity/parked", ()));
    let (go, gate) = tokio::sync::oneshot::channel::<()>();
    let holder = turbowish_trace::spawn("parity-holder", {
        let lock = Arc::clone(&lock);
        async move {
            let _guard = lock.lock().await;
            async { gate.await.ok() }.traced("slow_io").await;
        }
        .traced("job")
    });
    until(|| {
        holders("parity/parked")
            .first()
            .and_then(|h| h.parked_in)
            .is_some_and(|p| p.names() == ["job", "slow_io"])
    })
    .await;
    let held = holders("parity/parked");
    assert_eq!(held[0].frames.names(), ["job"], "acquired in `job`");
    let waiter = turbowish_trace::spawn("parity-waiter", {
        let lock = Arc::clone(&lock);
        async move {
            drop(lock.lock().await);
        }
    });
    until(|| waiters("parity/parked").len() == 1).await;
    let text = turbowish_trace::chains::chains(&turbowish_trace::sync::resources())
        .iter()
        .map(|c| c.to_string())
        .find(|t| t.contains("parity/parked"))
        .expect("a chain");
    assert!(
        text.ends_with("which is waiting on something untracked in job › slow_io (or running)"),
        "{text}"
    );
    go.send(()).unwrap();
    holder.await.unwrap();
    waiter.await.unwrap();
}
