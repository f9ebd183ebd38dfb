//! With `--cfg tokio_unstable` and the `tokio-unstable` feature, runtime
//! hooks register tasks spawned with plain `tokio::spawn` (as a library
//! would): each gets a registry entry named after its spawn location, its
//! allocations are charged to it exactly, and its entry goes once it ends
//! holding nothing. Without that configuration this file compiles to
//! nothing; `.ci/run` builds it with the flag.
#![cfg(all(feature = "tokio-unstable", tokio_unstable))]

use turbowish_trace::task::Owner;
use turbowish_trace::task::{tasks, TaskState};

#[global_allocator]
static A: turbowish_alloc::TurboWish = turbowish_alloc::TurboWish::system();

const SPAWN_LINE: u32 = line!() + 5;

/// Stands for a library that spawns its own task.
fn library_spawn(release: tokio::sync::oneshot::Receiver<()>) -> tokio::task::JoinHandle<usize> {
    // The spawn below must stay on line SPAWN_LINE.
    tokio::spawn(async move {
        let kept = vec![7u8; 40_000];
        let _ = release.await;
        kept.len()
    })
}

#[test]
fn library_tasks_are_registered_and_attributed() {
    let mut builder = tokio::runtime::Builder::new_current_thread();
    turbowish_trace::install_hooks(&mut builder);
    let rt = builder.build().unwrap();
    rt.block_on(async {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let handle = library_spawn(rx);
        tokio::task::yield_now().await;

        let name = format!("{}:{SPAWN_LINE}", file!());
        let rows = tasks();
        let row = rows
            .iter()
            .find(|t| t.name == name)
            .unwrap_or_else(|| panic!("no row named {name}: {rows:#?}"));
        assert!(matches!(row.owner, Owner::Task(_)));
        assert_eq!(row.state, Some(TaskState::Idle));
        assert!(row.polls >= 1);
        assert_eq!(row.memory.live_bytes, 40_000);
        assert_eq!(row.memory.live_blocks, 1);

        tx.send(()).unwrap();
        assert_eq!(handle.await.unwrap(), 40_000);
        tokio::task::yield_now().await;
        assert!(
            !tasks().iter().any(|t| t.name == name),
            "a finished task that holds nothing leaves the registry"
        );
    });
}
