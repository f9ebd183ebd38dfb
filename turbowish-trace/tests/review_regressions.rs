//! Regressions found in review.

use std::panic::Location;
use std::time::Duration;

use turbowish_trace::sync::{Access, Party, ResourceInfo, ResourceKind, TaskRef};
use turbowish_trace::FramePath;

#[global_allocator]
static A: turbowish_alloc::TurboWish = turbowish_alloc::TurboWish::system();

fn party(id: u64, name: &str, access: Access) -> Party {
    Party {
        task: TaskRef::Traced(id),
        task_name: name.to_string(),
        frames: FramePath::default(),
        location: Location::caller(),
        since: Duration::from_secs(1),
        access,
        movable: false,
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
    let chains = turbowish_trace::chains(&graph);
    let chain = &chains[0];
    assert_eq!(chain.links.len(), 2);
    assert_eq!(chain.links[0].waiter.task, TaskRef::Traced(3));
    assert_eq!(chain.links[0].holders[0].task, TaskRef::Traced(2));
    assert_eq!(chain.links[0].holders.len(), 2);
    assert_eq!(chain.links[1].waiter.task, TaskRef::Traced(2));
    let text = chain.to_string();
    assert!(
        text.contains("held by task \"stuck-reader\""),
        "wrong holder named: {text}"
    );
}
