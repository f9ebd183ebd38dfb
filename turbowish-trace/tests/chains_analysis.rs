//! `chains()` and `cycles()` as pure functions of hand-built wait-for graphs
//! (no runtime, no allocator): exact numbers of chains, cycles and links, the
//! tasks in order, how each chain ends, and the text their `Display` gives.
//!
//! * `two_task_cycle`, `three_task_cycle`: lock-order deadlocks are found
//!   exactly once, with the waiters in cycle order and each link's holder
//!   being the next link's waiter.
//! * `long_chain_is_not_a_cycle`: A→B→C→D with D waiting on nothing is one
//!   chain of 3 links ending `Untracked`, no cycle, and its suffixes B→C→D
//!   and C→D are not repeated.
//! * `waiter_on_unheld_resource_ends_held_by_nobody`.
//! * `rwlock_readers_are_one_link_with_three_holders`, and the count of
//!   other holders in the text, with and without `extra_holders`.
//! * `self_deadlock_is_a_cycle_of_one`.
//! * `two_independent_cycles_are_both_found`.
//! * `chains_feeding_into_one_holder_share_no_suffix_chain`: A→C and B→C,
//!   C→D: two chains, C's own chain not repeated.
//! * `chain_into_a_cycle`: a waiter on a deadlocked task is a chain ending
//!   `Cycle` but not part of the cycle.
//! * `cycles_through_a_shared_reader_lock_are_valid`: a writer waiting on two
//!   readers that each wait on a mutex the writer holds: every reported cycle
//!   is well formed and every task of the deadlock is in one.
//! * `counted_holders_are_not_nobody`: a resource whose only holders are
//!   counted in `extra_holders` (reachable: 9 permit holders of which the
//!   first 8 released) is not "held by nobody".
//! * `empty_graph` and `holders_without_waiters`: nothing to report.
//! * `workers_all_holding_the_queue_they_wait_on_are_capped_and_paired`:
//!   links name at most 8 holders (the followed one always), and fifty
//!   workers deadlocked on their own queue give 48 chains and 49 cycles.

use std::panic::Location;
use std::time::Duration;

use turbowish_trace::chains::{chains, cycles, ChainEnd, Cycle, Link};
use turbowish_trace::frame::FramePath;
use turbowish_trace::sync::{Access, Party, Provenance, ResourceInfo, ResourceKind, TaskRef};

/// Task ids used in the graphs, with names `"A"`, `"B"`, ….
const A: u64 = 1;
const B: u64 = 2;
const C: u64 = 3;
const D: u64 = 4;
const E: u64 = 5;

/// The line of `party`'s `Location::caller()`: where every party of these
/// tests says it acquired or waits.
const PARTY_LINE: u32 = 58;

fn task_name(id: u64) -> String {
    char::from(b'A' + (id - 1) as u8).to_string()
}

fn party(task: u64, access: Access) -> Party {
    Party {
        task: TaskRef::Task(task),
        task_name: task_name(task),
        frames: FramePath::default(),
        location: Location::caller(),
        since: Duration::from_millis(1500),
        access,
        movable: false,
        parked_in: None,
        provenance: Provenance::Recorded,
        slot: None,
    }
}

fn resource(
    id: u64,
    kind: ResourceKind,
    name: &str,
    holders: Vec<Party>,
    waiters: Vec<Party>,
) -> ResourceInfo {
    ResourceInfo {
        id,
        kind,
        name: name.to_string(),
        location: Location::caller(),
        holders,
        extra_holders: 0,
        waiters,
        permits: None,
        owners: Vec::new(),
    }
}

/// A mutex named `name`, held by `holder` (if any), waited for by `waiters`.
fn mutex(id: u64, name: &str, holder: Option<u64>, waiters: &[u64]) -> ResourceInfo {
    resource(
        id,
        ResourceKind::Mutex,
        name,
        holder
            .map(|h| party(h, Access::Exclusive))
            .into_iter()
            .collect(),
        waiters
            .iter()
            .map(|&w| party(w, Access::Exclusive))
            .collect(),
    )
}

fn traced(id: u64) -> TaskRef {
    TaskRef::Task(id)
}

fn waiters(links: &[Link]) -> Vec<TaskRef> {
    links.iter().map(|l| l.waiter.task).collect()
}

fn resources_of(links: &[Link]) -> Vec<&str> {
    links.iter().map(|l| l.resource.as_str()).collect()
}

fn holders(link: &Link) -> Vec<TaskRef> {
    link.holders.iter().map(|h| h.task).collect()
}

/// Link `i`'s holders include link `i + 1`'s waiter, cyclically.
fn assert_well_formed(cycle: &Cycle) {
    let n = cycle.links.len();
    assert!(n > 0);
    for (i, link) in cycle.links.iter().enumerate() {
        let next = cycle.links[(i + 1) % n].waiter.task;
        assert!(
            holders(link).contains(&next),
            "link {i} of {cycle:?}: {next:?} does not hold {}",
            link.resource
        );
    }
}

#[test]
fn two_task_cycle() {
    // A holds accounts[1], waits for accounts[2]; B the other way round.
    let graph = [
        mutex(1, "accounts[1]", Some(A), &[B]),
        mutex(2, "accounts[2]", Some(B), &[A]),
    ];
    let found = cycles(&graph);
    assert_eq!(found.len(), 1, "{found:?}");
    let cycle = &found[0];
    assert_eq!(waiters(&cycle.links), [traced(A), traced(B)]);
    assert_eq!(
        resources_of(&cycle.links),
        ["Mutex \"accounts[2]\"", "Mutex \"accounts[1]\""]
    );
    assert_eq!(holders(&cycle.links[0]), [traced(B)]);
    assert_eq!(holders(&cycle.links[1]), [traced(A)]);
    assert_well_formed(cycle);

    let text = cycle.to_string();
    assert!(text.starts_with("deadlock: task \"A\" ("), "{text}");
    assert!(
        text.contains("holds Mutex \"accounts[1]\" since 1.5s"),
        "{text}"
    );
    assert!(text.contains("waits for Mutex \"accounts[2]\""), "{text}");
    assert!(
        text.contains(", held by task \"B\" (")
            && text.ends_with("which waits for Mutex \"accounts[1]\""),
        "{text}"
    );
    assert!(text.contains(&format!("{}:", file!())), "{text}");

    // The chain view sees the same deadlock once, ending in the cycle.
    let found = chains(&graph);
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].end, ChainEnd::Cycle);
    assert_eq!(waiters(&found[0].links), [traced(A), traced(B)]);
    let text = found[0].to_string();
    assert!(text.ends_with(", which closes a cycle: deadlock"), "{text}");
}

#[test]
fn three_task_cycle() {
    // Each ring-i holds accounts[i] and waits for accounts[i+1].
    let graph = [
        mutex(1, "accounts[1]", Some(A), &[C]),
        mutex(2, "accounts[2]", Some(B), &[A]),
        mutex(3, "accounts[3]", Some(C), &[B]),
    ];
    let found = cycles(&graph);
    assert_eq!(found.len(), 1, "{found:?}");
    let cycle = &found[0];
    assert_eq!(waiters(&cycle.links), [traced(A), traced(B), traced(C)]);
    assert_eq!(
        resources_of(&cycle.links),
        [
            "Mutex \"accounts[2]\"",
            "Mutex \"accounts[3]\"",
            "Mutex \"accounts[1]\""
        ]
    );
    assert_well_formed(cycle);

    let text = cycle.to_string();
    assert!(text.starts_with("deadlock: task \"A\""), "{text}");
    for needle in [
        "holds Mutex \"accounts[1]\"",
        "waits for Mutex \"accounts[2]\"",
        "held by task \"B\"",
        "which waits for Mutex \"accounts[3]\"",
        "held by task \"C\"",
        "which waits for Mutex \"accounts[1]\"",
    ] {
        assert!(text.contains(needle), "{needle:?} not in {text}");
    }

    let found = chains(&graph);
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].links.len(), 3);
    assert_eq!(found[0].end, ChainEnd::Cycle);
}

#[test]
fn long_chain_is_not_a_cycle() {
    // A waits for r1 held by B, B for r2 held by C, C for r3 held by D; D
    // waits on nothing tracked.
    let graph = [
        mutex(1, "r1", Some(B), &[A]),
        mutex(2, "r2", Some(C), &[B]),
        mutex(3, "r3", Some(D), &[C]),
    ];
    assert!(cycles(&graph).is_empty());

    let found = chains(&graph);
    assert_eq!(found.len(), 1, "suffix chains repeated: {found:?}");
    let chain = &found[0];
    assert_eq!(chain.links.len(), 3);
    assert_eq!(chain.end, ChainEnd::Untracked);
    assert_eq!(waiters(&chain.links), [traced(A), traced(B), traced(C)]);
    assert_eq!(
        resources_of(&chain.links),
        ["Mutex \"r1\"", "Mutex \"r2\"", "Mutex \"r3\""]
    );
    assert_eq!(holders(&chain.links[2]), [traced(D)]);

    let text = chain.to_string();
    assert!(text.starts_with("task \"A\" ("), "{text}");
    for needle in [
        "waits for Mutex \"r1\" (for 1.5s), held by task \"B\"",
        ", which waits for Mutex \"r2\"",
        "held by task \"C\"",
        ", which waits for Mutex \"r3\"",
        "held by task \"D\"",
    ] {
        assert!(text.contains(needle), "{needle:?} not in {text}");
    }
    assert!(text.contains("waiting on something untracked"), "{text}");
    assert!(!text.contains("deadlock"), "{text}");
}

#[test]
fn waiter_on_unheld_resource_ends_held_by_nobody() {
    let mut pool = resource(
        7,
        ResourceKind::Semaphore,
        "db-pool",
        vec![],
        vec![party(A, Access::Permits(2))],
    );
    pool.permits = Some(4);
    let graph = [pool];
    assert!(cycles(&graph).is_empty());
    let found = chains(&graph);
    assert_eq!(found.len(), 1, "{found:?}");
    let chain = &found[0];
    assert_eq!(chain.end, ChainEnd::HeldByNobody);
    assert_eq!(chain.links.len(), 1);
    assert!(chain.links[0].holders.is_empty());
    assert_eq!(chain.links[0].waiter.access, Access::Permits(2));
    assert_eq!(chain.links[0].resource, "Semaphore \"db-pool\"");
    let text = chain.to_string();
    assert!(
        text.contains("waits for Semaphore \"db-pool\" (for 1.5s), held by nobody TurboWish saw"),
        "{text}"
    );
    assert!(!text.contains("untracked"), "{text}");
}

#[test]
fn rwlock_readers_are_one_link_with_three_holders() {
    let readers: Vec<Party> = [A, B, C]
        .iter()
        .map(|&r| party(r, Access::Shared))
        .collect();
    let mut routes = resource(
        3,
        ResourceKind::RwLock,
        "routes",
        readers,
        vec![party(D, Access::Exclusive)],
    );
    let found = chains(std::slice::from_ref(&routes));
    assert_eq!(found.len(), 1, "{found:?}");
    let chain = &found[0];
    assert_eq!(chain.links.len(), 1);
    assert_eq!(chain.end, ChainEnd::Untracked);
    let link = &chain.links[0];
    assert_eq!(link.waiter.task, traced(D));
    assert_eq!(link.waiter.access, Access::Exclusive);
    assert_eq!(link.resource, "RwLock \"routes\"");
    assert_eq!(holders(link), [traced(A), traced(B), traced(C)]);
    assert!(link.holders.iter().all(|h| h.access == Access::Shared));
    assert_eq!(link.extra_holders, 0);
    let text = chain.to_string();
    assert!(text.starts_with("task \"D\""), "{text}");
    assert!(
        text.contains("held by task \"A\"") && text.contains("and 2 other holder(s)"),
        "{text}"
    );
    assert!(cycles(std::slice::from_ref(&routes)).is_empty());

    // Holders counted only are counted in the text too.
    routes.extra_holders = 2;
    let found = chains(std::slice::from_ref(&routes));
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].links[0].extra_holders, 2);
    assert_eq!(found[0].links[0].holders.len(), 3);
    let text = found[0].to_string();
    assert!(text.contains("and 4 other holder(s)"), "{text}");
}

#[test]
fn self_deadlock_is_a_cycle_of_one() {
    // A holds `config` and waits for it again.
    let graph = [mutex(1, "config", Some(A), &[A])];
    let found = cycles(&graph);
    assert_eq!(found.len(), 1, "{found:?}");
    let cycle = &found[0];
    assert_eq!(cycle.links.len(), 1);
    assert_eq!(cycle.links[0].waiter.task, traced(A));
    assert_eq!(holders(&cycle.links[0]), [traced(A)]);
    assert_well_formed(cycle);
    let text = cycle.to_string();
    assert!(
        text.starts_with("deadlock: task \"A\"")
            && text.contains("holds Mutex \"config\" since 1.5s and waits for Mutex \"config\""),
        "{text}"
    );
    assert!(!text.contains("held by"), "{text}");

    let found = chains(&graph);
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].links.len(), 1);
    assert_eq!(found[0].end, ChainEnd::Cycle);
}

#[test]
fn two_independent_cycles_are_both_found() {
    let graph = [
        mutex(1, "a1", Some(A), &[B]),
        mutex(2, "a2", Some(B), &[A]),
        mutex(3, "b1", Some(C), &[D]),
        mutex(4, "b2", Some(D), &[C]),
    ];
    let found = cycles(&graph);
    assert_eq!(found.len(), 2, "{found:?}");
    assert_eq!(waiters(&found[0].links), [traced(A), traced(B)]);
    assert_eq!(waiters(&found[1].links), [traced(C), traced(D)]);
    for cycle in &found {
        assert_well_formed(cycle);
    }
    assert!(found[0].to_string().starts_with("deadlock: task \"A\""));
    assert!(found[1].to_string().starts_with("deadlock: task \"C\""));

    let found = chains(&graph);
    assert_eq!(found.len(), 2, "{found:?}");
    assert!(found
        .iter()
        .all(|c| c.end == ChainEnd::Cycle && c.links.len() == 2));
}

#[test]
fn chains_feeding_into_one_holder_share_no_suffix_chain() {
    // A and B both wait for `hot` held by C; C waits for `cold` held by D.
    let graph = [
        mutex(1, "hot", Some(C), &[A, B]),
        mutex(2, "cold", Some(D), &[C]),
    ];
    assert!(cycles(&graph).is_empty());
    let found = chains(&graph);
    assert_eq!(found.len(), 2, "{found:?}");
    assert_eq!(waiters(&found[0].links), [traced(A), traced(C)]);
    assert_eq!(waiters(&found[1].links), [traced(B), traced(C)]);
    for chain in &found {
        assert_eq!(chain.end, ChainEnd::Untracked);
        assert_eq!(holders(&chain.links[1]), [traced(D)]);
    }
}

#[test]
fn chain_into_a_cycle() {
    // A and B deadlock; E waits for a mutex A holds.
    let graph = [
        mutex(1, "a1", Some(A), &[B]),
        mutex(2, "a2", Some(B), &[A]),
        mutex(3, "side", Some(A), &[E]),
    ];
    let found = cycles(&graph);
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(waiters(&found[0].links), [traced(A), traced(B)]);

    let found = chains(&graph);
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].end, ChainEnd::Cycle);
    assert_eq!(waiters(&found[0].links), [traced(E), traced(A), traced(B)]);
}

#[test]
fn cycles_through_a_shared_reader_lock_are_valid() {
    // Writer A holds m1 and m2 and waits for `routes`, read-held by B and C;
    // B waits for m1, C for m2.
    let graph = [
        resource(
            1,
            ResourceKind::RwLock,
            "routes",
            vec![party(B, Access::Shared), party(C, Access::Shared)],
            vec![party(A, Access::Exclusive)],
        ),
        mutex(2, "m1", Some(A), &[B]),
        mutex(3, "m2", Some(A), &[C]),
    ];
    let found = cycles(&graph);
    assert!(!found.is_empty());
    let mut in_cycles: Vec<TaskRef> = Vec::new();
    for cycle in &found {
        assert_well_formed(cycle);
        in_cycles.extend(waiters(&cycle.links));
    }
    in_cycles.sort();
    in_cycles.dedup();
    assert_eq!(in_cycles, [traced(A), traced(B), traced(C)], "{found:?}");
}

#[test]
fn counted_holders_are_not_nobody() {
    let mut pool = resource(
        9,
        ResourceKind::Semaphore,
        "workers",
        vec![],
        vec![party(A, Access::Permits(9))],
    );
    pool.extra_holders = 2;
    pool.permits = Some(9);
    let found = chains(&[pool]);
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].links[0].extra_holders, 2);
    let text = found[0].to_string();
    assert_ne!(found[0].end, ChainEnd::HeldByNobody, "{text}");
    assert!(!text.contains("held by nobody"), "{text}");
}

#[test]
fn empty_graph() {
    assert!(chains(&[]).is_empty());
    assert!(cycles(&[]).is_empty());
}

#[test]
fn holders_without_waiters() {
    let graph = [mutex(1, "idle", None, &[]), mutex(2, "held", Some(A), &[])];
    assert!(chains(&graph).is_empty());
    assert!(cycles(&graph).is_empty());
}

/// `Link::holders` says the chain continues with the first holder, and
/// `Display` reads "held by <first>, which waits for ...": the holder the
/// chain follows (one that itself waits) must be the one named first, not
/// an idle reader (A) that happened to take its slot earlier.
#[test]
fn chain_names_the_followed_holder_first() {
    let graph = vec![
        resource(
            1,
            ResourceKind::RwLock,
            "r1",
            vec![party(A, Access::Shared), party(B, Access::Shared)],
            vec![party(C, Access::Exclusive)],
        ),
        mutex(2, "r2", Some(D), &[B]),
    ];
    let chains = chains(&graph);
    let chain = &chains[0];
    assert_eq!(chain.links.len(), 2);
    assert_eq!(chain.links[0].waiter.task, traced(C));
    assert_eq!(chain.links[0].holders[0].task, traced(B));
    assert_eq!(chain.links[0].holders.len(), 2);
    assert_eq!(chain.links[1].waiter.task, traced(B));
    let text = chain.to_string();
    assert!(
        text.contains("held by task \"B\""),
        "wrong holder named: {text}"
    );
}

/// A party of a thread outside any task (`main`, say).
fn thread_party(n: u64, access: Access) -> Party {
    Party {
        task: TaskRef::Thread(n),
        task_name: TaskRef::Thread(n).name(),
        ..party(A, access)
    }
}

#[test]
fn a_receiver_whose_senders_only_a_thread_holds_says_no_task_can_send() {
    let graph = vec![resource(
        1,
        ResourceKind::Channel,
        "jobs",
        vec![thread_party(1, Access::Send)],
        vec![party(A, Access::Receive)],
    )];
    assert!(cycles(&graph).is_empty());
    let found = chains(&graph);
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].end, ChainEnd::SendersOutsideTasks);
    assert_eq!(
        found[0].to_string(),
        format!(
            "task \"A\" (turbowish-trace/tests/chains_analysis.rs:{}) waits for channel \"jobs\" (for 1.5s), \
             held by task \"thread #1 (outside tasks)\" (turbowish-trace/tests/chains_analysis.rs:{}) since 1.5s; \
             no task owns a sender of channel \"jobs\": only thread #1 (outside tasks) holds one, so no task can send",
            PARTY_LINE, PARTY_LINE
        )
    );
}

#[test]
fn a_receiver_whose_senders_are_all_dropped_says_recv_returns_none() {
    let graph = vec![resource(
        1,
        ResourceKind::Channel,
        "results",
        vec![],
        vec![party(B, Access::Receive)],
    )];
    let found = chains(&graph);
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].end, ChainEnd::NoSenders);
    assert_eq!(
        found[0].to_string(),
        format!(
            "task \"B\" (turbowish-trace/tests/chains_analysis.rs:{PARTY_LINE}) waits for channel \"results\" (for 1.5s), \
             held by nobody TurboWish saw; every sender of channel \"results\" is dropped: recv returns None"
        )
    );
}

/// A receiver waits for every sender: with one sender's owner free to
/// run, a channel wait closes no deadlock; once that owner waits in the
/// same tangle too, it does.
#[test]
fn a_channel_cycle_needs_every_sender_blocked() {
    let channel = |holders| {
        resource(
            1,
            ResourceKind::Channel,
            "events",
            holders,
            vec![party(A, Access::Receive)],
        )
    };
    let free_c = vec![
        channel(vec![party(B, Access::Send), party(C, Access::Send)]),
        mutex(2, "state", Some(A), &[B]),
    ];
    assert!(cycles(&free_c).is_empty(), "{:?}", cycles(&free_c));
    // The chain agrees: B waits for A, whose wait leads to C, free to
    // send, not round through B back to A.
    let found = chains(&free_c);
    assert_eq!(found.len(), 1, "{found:?}");
    let chain = &found[0];
    assert_eq!(waiters(&chain.links), [traced(B), traced(A)]);
    assert_eq!(holders(&chain.links[1])[0], traced(C));
    assert_eq!(chain.end, ChainEnd::Untracked);
    assert!(!chain.to_string().contains("cycle"), "{chain}");
    let both_blocked = vec![
        channel(vec![party(B, Access::Send), party(C, Access::Send)]),
        mutex(2, "state", Some(A), &[B, C]),
    ];
    // A waits for B and C, both wait for A: each of the two is a cycle
    // with A (reported once per task, as `cycles` documents).
    let found = cycles(&both_blocked);
    assert_eq!(found.len(), 2, "{found:?}");
    assert_eq!(waiters(&found[0].links), [traced(A), traced(B)]);
    assert_eq!(waiters(&found[1].links), [traced(C), traced(A)]);
}

/// Every sender of A's channel waits, but C waits for a lock that D, which
/// is running, will give back: C gets it, sends, A goes on and releases
/// what B waits for. A cycle of waits (A -> B -> A) through a task that can
/// still go on is no deadlock, in `cycles` or in the chains' text.
#[test]
fn a_wait_cycle_that_a_running_task_can_untie_is_no_deadlock() {
    let graph = vec![
        resource(
            1,
            ResourceKind::Channel,
            "events",
            vec![party(B, Access::Send), party(C, Access::Send)],
            vec![party(A, Access::Receive)],
        ),
        mutex(2, "state", Some(A), &[B]),
        mutex(3, "config", Some(D), &[C]),
    ];
    assert!(cycles(&graph).is_empty(), "{:?}", cycles(&graph));
    let found = chains(&graph);
    assert_eq!(found.len(), 1, "{found:?}");
    let chain = &found[0];
    assert_eq!(
        waiters(&chain.links),
        [traced(B), traced(A), traced(C)],
        "{chain}"
    );
    assert_eq!(holders(&chain.links[2]), [traced(D)]);
    assert_eq!(chain.end, ChainEnd::Untracked);
    assert!(!chain.to_string().contains("cycle"), "{chain}");

    // With D waiting for A too, nobody can go on: a deadlock.
    let mut stuck = graph.clone();
    stuck.push(mutex(4, "log", Some(A), &[D]));
    let found = cycles(&stuck);
    assert_eq!(found.len(), 2, "{found:?}");
    for cycle in &found {
        assert_well_formed(cycle);
    }
}

/// A and X each wait for two locks at once (a `select!`): one the other
/// holds, one that R, running, holds. Either can go on once R releases,
/// so this is no deadlock, and no chain says it closes a cycle: a chain
/// follows the wait that frees its task, not merely its first one.
#[test]
fn a_task_waiting_for_several_things_is_followed_through_the_one_that_frees_it() {
    let graph = vec![
        mutex(1, "m1", Some(B), &[A]),
        mutex(3, "m3", Some(A), &[B]),
        mutex(2, "m2", Some(E), &[A]),
        mutex(4, "m4", Some(E), &[B]),
    ];
    assert!(cycles(&graph).is_empty(), "{:?}", cycles(&graph));
    for chain in chains(&graph) {
        assert_ne!(chain.end, ChainEnd::Cycle, "{chain}");
        assert_eq!(chain.links.len(), 1, "{chain}");
        assert_eq!(holders(&chain.links[0]), [traced(E)], "{chain}");
    }
}

/// U waits for units of a semaphore one of whose holders TurboWish only
/// counted: that holder may give units back, so U can go on, and A, which
/// waits for U, is no part of a deadlock even though the named holder is A.
#[test]
fn a_wait_with_counted_holders_is_no_deadlock_and_ends_there() {
    let mut permits = resource(
        1,
        ResourceKind::Semaphore,
        "permits",
        vec![party(A, Access::Permits(1))],
        vec![party(C, Access::Permits(1))],
    );
    permits.extra_holders = 1;
    let graph = vec![permits, mutex(2, "m", Some(C), &[A])];
    assert!(cycles(&graph).is_empty(), "{:?}", cycles(&graph));
    let found = chains(&graph);
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(waiters(&found[0].links), [traced(A), traced(C)]);
    assert_eq!(found[0].end, ChainEnd::UnnamedHolders, "{}", found[0]);
}

/// The thread that owns the only sender is itself blocked on a lock the
/// receiver holds: a deadlock, which the chain shows rather than saying
/// only that no task can send.
#[test]
fn a_blocked_thread_owning_the_sender_closes_a_cycle() {
    let graph = vec![
        resource(
            1,
            ResourceKind::Channel,
            "jobs",
            vec![thread_party(1, Access::Send)],
            vec![party(A, Access::Receive)],
        ),
        resource(
            2,
            ResourceKind::Mutex,
            "m",
            vec![party(A, Access::Exclusive)],
            vec![thread_party(1, Access::Exclusive)],
        ),
    ];
    let found = cycles(&graph);
    assert_eq!(found.len(), 1, "{found:?}");
    let chain = chains(&graph)
        .into_iter()
        .find(|c| c.links[0].waiter.task == traced(A))
        .expect("A's chain");
    assert_eq!(chain.end, ChainEnd::Cycle, "{chain}");
}

/// A task awaiting the `JoinHandle` of a task that waits for it: A owns
/// the sender B's receive waits for, and awaits B.
#[test]
fn awaiting_the_join_handle_of_a_task_that_waits_for_you_is_a_cycle() {
    let mut a_sends = party(A, Access::Send);
    a_sends.provenance = Provenance::Owns {
        path: "future state +0x20".to_owned(),
    };
    let graph = vec![
        resource(
            1,
            ResourceKind::Channel,
            "work",
            vec![a_sends],
            vec![party(B, Access::Receive)],
        ),
        resource(
            2,
            ResourceKind::Task,
            "B",
            vec![party(B, Access::Exclusive)],
            vec![party(A, Access::Exclusive)],
        ),
    ];
    let found = cycles(&graph);
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(
        found[0].to_string(),
        format!(
            "deadlock: task \"A\" (owns a sender at future state +0x20) holds channel \"work\" since 1.5s \
             and waits for task \"B\" (at turbowish-trace/tests/chains_analysis.rs:{PARTY_LINE}), \
             held by task \"B\" (turbowish-trace/tests/chains_analysis.rs:{PARTY_LINE}), which waits for channel \"work\""
        )
    );
    let chain = &chains(&graph)[0];
    assert_eq!(chain.end, ChainEnd::Cycle);
    assert!(
        chain
            .to_string()
            .contains("held by task \"A\" (owns a sender at future state +0x20) since 1.5s"),
        "{chain}"
    );
}

/// Fifty workers, each holding a sender of one job queue and waiting to
/// receive from it: nobody can send. Every worker but the first two
/// starts a chain (through worker 1 to worker 2 and back), each link names
/// 8 of the 50 senders, the followed one first, and counts the other 42
/// as unlisted (not as unnamed: `extra_holders` stays 0);
/// every worker is in one of 49 cycles of two. (The analysis is linear in
/// waits and holders: `cargo bench --bench chains` times it at 3,000.)
#[test]
fn workers_all_holding_the_queue_they_wait_on_are_capped_and_paired() {
    const WORKERS: u64 = 50;
    let party_n = |task: u64, access: Access| Party {
        task: traced(task),
        task_name: format!("w{task}"),
        ..party(1, access)
    };
    let graph = [resource(
        1,
        ResourceKind::Channel,
        "jobs",
        (1..=WORKERS).map(|t| party_n(t, Access::Send)).collect(),
        (1..=WORKERS).map(|t| party_n(t, Access::Receive)).collect(),
    )];
    let found = chains(&graph);
    assert_eq!(found.len(), WORKERS as usize - 2);
    for (chain, first) in found.iter().zip(3..) {
        assert_eq!(chain.end, ChainEnd::Cycle);
        assert_eq!(waiters(&chain.links), [traced(first), traced(1), traced(2)]);
        for (link, next) in chain.links.iter().zip([1, 2, 1]) {
            assert_eq!(link.holders.len(), 8);
            assert_eq!(link.unlisted_holders, WORKERS as usize - 8);
            assert_eq!(link.extra_holders, 0);
            assert_eq!(link.holders[0].task, traced(next));
        }
    }
    // Worker 1 with 2, then each other worker with worker 1 (the first
    // sender it waits for): every worker in a cycle.
    let deadlocks = cycles(&graph);
    assert_eq!(deadlocks.len(), WORKERS as usize - 1);
    for (cycle, first) in deadlocks.iter().zip([1].into_iter().chain(3..)) {
        let other = if first == 1 { 2 } else { 1 };
        assert_eq!(waiters(&cycle.links), [traced(first), traced(other)]);
        for link in &cycle.links {
            assert_eq!(link.holders.len() + link.unlisted_holders, WORKERS as usize);
        }
        // The holder each link leads to is named, though it may come
        // beyond the first 8.
        assert!(cycle.links[0]
            .holders
            .iter()
            .any(|h| h.task == traced(other)));
        assert!(cycle.links[1]
            .holders
            .iter()
            .any(|h| h.task == traced(first)));
    }
}
