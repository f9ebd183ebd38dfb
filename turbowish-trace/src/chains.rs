//! Wait-for analysis over [`crate::sync::resources`]: *chains* (a waiter, the
//! resource it waits for, the holder, what that holder waits for, …) and
//! *cycles* (a chain that returns to its start: a deadlock). Pure functions
//! of a resource list, so a snapshot read later analyses the same way.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::time::Duration;

use crate::sync::{Access, Party, Provenance, ResourceInfo, ResourceKind, TaskRef};

/// One step of a chain: `waiter` waits for `resource`, whose holders are
/// `holders` (in a chain, the first of them is the one it continues with;
/// in a cycle, the next link's waiter is among them).
#[derive(Debug, Clone)]
pub struct Link {
    /// The waiting task, as recorded when it started waiting.
    pub waiter: Party,
    /// Kind and name of the resource waited for, e.g. `Mutex "accounts[2]"`.
    pub resource: String,
    /// Its holders (several for read locks and semaphores; none when the
    /// resource is held by nobody TurboWish saw): at most 8, the one the
    /// chain or cycle goes on to among them (first, in a chain); the
    /// others are in `unlisted_holders`.
    pub holders: Vec<Party>,
    /// Further holders, counted only: nobody named them (as
    /// [`ResourceInfo::extra_holders`]).
    pub extra_holders: usize,
    /// Named holders this link leaves out, past the 8 it lists: the
    /// resource's own record names them all.
    pub unlisted_holders: usize,
}

/// How a chain ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChainEnd {
    /// At a task that waits for no tracked resource: it is running, or
    /// waiting on something TurboWish does not instrument.
    Untracked,
    /// At a resource no recorded task holds (permits leaked or added later).
    HeldByNobody,
    /// At a resource whose holders are only counted, not named (more than
    /// the 8 a resource names, or taken while all 8 names were in use).
    UnnamedHolders,
    /// Back at a task already in the chain: see [`cycles`].
    Cycle,
    /// At a receiver whose channel's senders are all owned (or, no task
    /// owning them, recorded) outside tasks: `main` or another thread. No
    /// task can send; only that thread can.
    SendersOutsideTasks,
    /// At a receiver whose channel has no sender left: its receive returns
    /// `None` (an `Err`, for a oneshot) as soon as it is polled again.
    NoSenders,
    /// At one of tokio's own resources ([`crate::sync::ResourceKind::Tokio`])
    /// whose holders tokio's instrumentation does not name: the receiver of
    /// an `mpsc` channel, the sender of a `oneshot`, permits taken by
    /// `try_acquire` or released by another task than took them. TurboWish
    /// says so rather than guess.
    HolderNotReported,
}

/// A wait chain, longest first in [`chains`].
#[derive(Debug, Clone)]
pub struct Chain {
    /// The steps, from the first waiter on.
    pub links: Vec<Link>,
    /// How it ends.
    pub end: ChainEnd,
}

/// A deadlock: tasks each waiting for a resource the next one holds, the
/// last one's held by the first.
#[derive(Debug, Clone)]
pub struct Cycle {
    /// The steps; link `i`'s holder is link `i + 1`'s waiter, cyclically.
    pub links: Vec<Link>,
}

struct Graph<'a> {
    /// For each waiting task, what it waits for: an index into `waited`,
    /// and its own record.
    waits: HashMap<TaskRef, Vec<(usize, &'a Party)>>,
    /// The resources someone waits for.
    waited: Vec<Waited<'a>>,
    /// For each waiting task that can still go on, how many waits away it
    /// is from a task that is not waiting (see [`Graph::reduce`]). A
    /// waiting task without a rank is *stuck*: no order of releases by the
    /// tasks that can run frees it. Only stuck tasks are in deadlocks.
    rank: HashMap<TaskRef, Ranked<'a>>,
}

/// How a waiting task that can still go on gets to: its rank, and the wait
/// that frees it with the holder that frees that wait last (first, for
/// units); `None` for a wait TurboWish cannot judge, with holders only
/// counted or none recorded.
#[derive(Clone, Copy)]
struct Ranked<'a> {
    rank: u32,
    at: usize,
    waiter: &'a Party,
    holder: Option<TaskRef>,
}

/// A resource someone waits for, with its holders sorted once by what
/// they hold: chains of thousands of waiters behind one channel of
/// hundreds of senders would otherwise filter every holder at every step.
struct Waited<'a> {
    resource: &'a ResourceInfo,
    /// `Mutex "accounts[2]"`.
    label: String,
    senders: Vec<&'a Party>,
    receivers: Vec<&'a Party>,
    /// Holders of locks and semaphores.
    others: Vec<&'a Party>,
}

impl<'a> Graph<'a> {
    fn new(resources: &'a [ResourceInfo]) -> Graph<'a> {
        let mut waits: HashMap<TaskRef, Vec<(usize, &Party)>> = HashMap::new();
        let mut waited = Vec::new();
        for r in resources.iter().filter(|r| !r.waiters.is_empty()) {
            let at = waited.len();
            let mut sides = (Vec::new(), Vec::new(), Vec::new());
            for h in &r.holders {
                match h.access {
                    Access::Send => sides.0.push(h),
                    Access::Receive => sides.1.push(h),
                    _ => sides.2.push(h),
                }
            }
            waited.push(Waited {
                resource: r,
                label: format!("{} \"{}\"", r.kind, r.name),
                senders: sides.0,
                receivers: sides.1,
                others: sides.2,
            });
            for w in &r.waiters {
                waits.entry(w.task).or_default().push((at, w));
            }
        }
        let mut graph = Graph {
            waits,
            waited,
            rank: HashMap::new(),
        };
        graph.rank = graph.reduce();
        graph
    }

    /// Ranks the waiting tasks that can still go on, by reducing the
    /// wait-for graph (Holt's reduction): a task that waits for nothing can
    /// run (rank 0); a wait is satisfiable once every holder it waits for
    /// can go on, or for a wait for units or a value (a semaphore, a pool,
    /// a receive), once *any* of them can; a task can go on once any of
    /// its waits is satisfiable (a `select!` over several), with a rank one
    /// more than the holder's that satisfied it. A wait TurboWish cannot
    /// judge, with holders only counted or none recorded, counts as
    /// satisfiable (rank 1): a deadlock is reported only when it is
    /// certain.
    ///
    /// Linear in the resources' holders and waiters: every waiter of one
    /// side of a resource waits for the same holders (a lock's waiters for
    /// its holders, a channel's receivers for its senders), so each side is
    /// one node with one count of the holders still to go on, and its
    /// waiters hang off it. (A waiter that holds units itself is among the
    /// holders it waits for, but it cannot free its own wait: it is not
    /// free before the wait is.)
    fn reduce(&self) -> HashMap<TaskRef, Ranked<'a>> {
        struct Node<'a> {
            at: usize,
            need: usize,
            waiters: Vec<&'a Party>,
        }
        let mut nodes: Vec<Node<'a>> = Vec::new();
        // Node of (resource, side, units) by key.
        let mut node_of: HashMap<(usize, u8, bool), usize> = HashMap::new();
        let mut by_holder: HashMap<TaskRef, Vec<usize>> = HashMap::new();
        let mut unknown: Vec<(usize, &'a Party)> = Vec::new();
        let mut order: Vec<TaskRef> = self.waits.keys().copied().collect();
        order.sort_unstable();
        for task in &order {
            for &(at, w) in &self.waits[task] {
                let units = is_units(w.access);
                let side = side(w.access);
                let blockers = self.blockers(at, w);
                if blockers.is_empty() || (units && self.waited[at].resource.extra_holders > 0) {
                    unknown.push((at, w));
                    continue;
                }
                let id = *node_of.entry((at, side, units)).or_insert_with(|| {
                    let mut holders: Vec<TaskRef> = blockers.iter().map(|h| h.task).collect();
                    holders.sort_unstable();
                    holders.dedup();
                    for &h in &holders {
                        by_holder.entry(h).or_default().push(nodes.len());
                    }
                    nodes.push(Node {
                        at,
                        need: if units { 1 } else { holders.len() },
                        waiters: Vec::new(),
                    });
                    nodes.len() - 1
                });
                nodes[id].waiters.push(w);
            }
        }
        let mut rank: HashMap<TaskRef, Ranked<'a>> = HashMap::new();
        // Breadth first, so ranks count waits: the running holders (rank
        // 0) first, then the waits that cannot be judged (rank 1).
        let mut queue: std::collections::VecDeque<(TaskRef, u32)> = by_holder
            .keys()
            .filter(|h| !self.waits.contains_key(h))
            .map(|&h| (h, 0))
            .collect();
        queue.make_contiguous().sort_unstable();
        for (at, w) in unknown {
            if let std::collections::hash_map::Entry::Vacant(e) = rank.entry(w.task) {
                e.insert(Ranked {
                    rank: 1,
                    at,
                    waiter: w,
                    holder: None,
                });
                queue.push_back((w.task, 1));
            }
        }
        while let Some((holder, r)) = queue.pop_front() {
            for &id in by_holder.get(&holder).into_iter().flatten() {
                let node = &mut nodes[id];
                if node.need == 0 {
                    continue;
                }
                node.need -= 1;
                if node.need > 0 {
                    continue;
                }
                for &w in &node.waiters {
                    if let std::collections::hash_map::Entry::Vacant(e) = rank.entry(w.task) {
                        e.insert(Ranked {
                            rank: r + 1,
                            at: node.at,
                            waiter: w,
                            holder: Some(holder),
                        });
                        queue.push_back((w.task, r + 1));
                    }
                }
            }
        }
        rank
    }

    /// The rank of `task` (see [`Graph::reduce`]): 0 for a task that waits
    /// for nothing, `None` for a stuck one.
    fn rank_of(&self, task: TaskRef) -> Option<u32> {
        if self.waits.contains_key(&task) {
            self.rank.get(&task).map(|r| r.rank)
        } else {
            Some(0)
        }
    }

    /// Whether `holder` is among the blockers wait `at` of `waiter`
    /// depends on: for units, a holder that waits for units it holds some
    /// of itself waits for the others, unless it is the only holder.
    fn counts(&self, at: usize, waiter: &Party, holder: TaskRef) -> bool {
        if holder != waiter.task || !is_units(waiter.access) {
            return true;
        }
        self.blockers(at, waiter)
            .iter()
            .all(|h| h.task == waiter.task)
    }

    /// The holders of `waited[at]` that `waiter` waits for (for a channel,
    /// the other side's holders; for a lock, all of them): as
    /// [`Access::waits_for`].
    fn blockers(&self, at: usize, waiter: &Party) -> &[&'a Party] {
        self.holders_waited_by(at, waiter.access)
    }

    /// The holders of `waited[at]` a wait with `access` waits for.
    fn holders_waited_by(&self, at: usize, access: Access) -> &[&'a Party] {
        let w = &self.waited[at];
        match access {
            Access::Receive => &w.senders,
            Access::Send => &w.receivers,
            _ => &w.others,
        }
    }

    /// The link for wait `at` of `waiter`, naming at most
    /// [`LINK_HOLDERS`] holders, `followed` (the holder the chain or cycle
    /// goes on to) among them: first with `followed_first` (as chains
    /// name it), else in its place when that is among the first
    /// [`LINK_HOLDERS`]. The rest are counted in `unlisted_holders`: a
    /// channel held by thousands of senders would otherwise copy every
    /// sender into every link through it.
    fn link(
        &self,
        at: usize,
        waiter: &Party,
        followed: Option<TaskRef>,
        followed_first: bool,
    ) -> Link {
        let w = &self.waited[at];
        let blockers = self.blockers(at, waiter);
        let mut holders: Vec<Party> = Vec::with_capacity(blockers.len().min(LINK_HOLDERS));
        let first = followed
            .and_then(|t| blockers.iter().position(|h| h.task == t))
            .filter(|&i| followed_first || i >= LINK_HOLDERS);
        if let Some(i) = first {
            holders.push(blockers[i].clone());
        }
        holders.extend(
            blockers
                .iter()
                .enumerate()
                .filter(|&(i, _)| Some(i) != first)
                .take(LINK_HOLDERS - holders.len())
                .map(|(_, &h)| h.clone()),
        );
        Link {
            waiter: waiter.clone(),
            resource: w.label.clone(),
            extra_holders: w.resource.extra_holders,
            unlisted_holders: blockers.len() - holders.len(),
            holders,
        }
    }

    /// The waits of stuck task `task` (see [`Graph::reduce`]), every one of
    /// which is stuck: a wait for units has no holder that can go on (nor
    /// counted ones), so all its holders lead on.
    fn stuck_waits(&self, task: TaskRef) -> &[(usize, &'a Party)] {
        debug_assert!(self.rank_of(task).is_none());
        self.waits.get(&task).map_or(&[], Vec::as_slice)
    }

    /// One step of the chain through `task`: the wait it is followed
    /// through and where the chain goes from there (see [`follow`]).
    fn step(&self, task: TaskRef) -> Step<'a> {
        // A task that can still go on (see `Graph::reduce`) is followed
        // through the wait that frees it, to the holder that frees that
        // wait: ranks fall along the way, so such a chain ends at a running
        // task (or a wait TurboWish cannot judge), never in a "cycle" that
        // is none. A stuck task, every wait of which is stuck, through its
        // first wait to a stuck holder (another than itself if there is
        // one): that chain shows the deadlock.
        let ranked = self.rank.get(&task).copied();
        let wait = match ranked {
            Some(r) => Some((r.at, r.waiter)),
            None => self.waits.get(&task).and_then(|w| w.first()).copied(),
        };
        let Some((at, waiter)) = wait else {
            return Step::NoWait;
        };
        let resource = self.waited[at].resource;
        let blockers = self.blockers(at, waiter);
        let next = match ranked {
            // Of the holders as far from running as the one that freed
            // the wait, the first recorded: the order `Link::holders` has.
            Some(r) => r.holder.and_then(|h| {
                let rank = self.rank_of(h);
                blockers
                    .iter()
                    .find(|p| self.rank_of(p.task) == rank)
                    .copied()
            }),
            None => {
                let stuck =
                    |h: &&&Party| self.rank_of(h.task).is_none() && self.counts(at, waiter, h.task);
                blockers
                    .iter()
                    .find(|h| h.task != task && stuck(h))
                    .or_else(|| blockers.iter().find(stuck))
                    .copied()
            }
        };
        let Some(holder) = next else {
            let end = if resource.extra_holders > 0 {
                match resource.kind {
                    ResourceKind::Tokio(_) => ChainEnd::HolderNotReported,
                    _ => ChainEnd::UnnamedHolders,
                }
            } else if waiter.access == Access::Receive {
                ChainEnd::NoSenders
            } else {
                ChainEnd::HeldByNobody
            };
            return Step::Wait {
                at,
                waiter,
                next: Next::End(end),
            };
        };
        // Senders held only outside tasks: no task can send. (Unless the
        // receiver is stuck: then a blocked thread is part of a deadlock,
        // which the chain goes on to show.)
        if ranked.is_some()
            && waiter.access == Access::Receive
            && resource.extra_holders == 0
            && blockers
                .iter()
                .all(|h| matches!(h.task, TaskRef::Thread(_)))
        {
            return Step::Wait {
                at,
                waiter,
                next: Next::End(ChainEnd::SendersOutsideTasks),
            };
        }
        Step::Wait {
            at,
            waiter,
            next: Next::To(holder.task),
        }
    }
}

/// Holders a link names; further ones are counted
/// (`Link::unlisted_holders`).
const LINK_HOLDERS: usize = 8;

/// One step of a chain, from [`Graph::step`].
enum Step<'a> {
    /// The task waits for nothing TurboWish tracks: the chain ends
    /// `Untracked` before it.
    NoWait,
    /// It waits for `waited[at]` (its wait recorded as `waiter`).
    Wait {
        at: usize,
        waiter: &'a Party,
        next: Next,
    },
}

/// Where a chain goes after a wait.
enum Next {
    /// On to this holder, named first in the link.
    To(TaskRef),
    /// Nowhere: it ends here, so.
    End(ChainEnd),
}

/// The wait chains in `resources`, longest first. Every waiting task starts
/// one, unless it already appears inside a longer chain.
///
/// ```
/// let graph = turbowish_trace::sync::resources();
/// for chain in turbowish_trace::chains::chains(&graph) {
///     println!("{chain}");
/// }
/// ```
pub fn chains(resources: &[ResourceInfo]) -> Vec<Chain> {
    let graph = Graph::new(resources);
    let mut starts: Vec<TaskRef> = graph.waits.keys().copied().collect();
    starts.sort();
    // Every waiting task starts a chain, but only chains whose first
    // waiter no longer chain covers are kept: the lengths decide which,
    // and are found first without building a chain (each step leads to
    // one next task, so a task's length is one more than its next's, or
    // that of the cycle it lies on). Building every chain and dropping
    // most was quadratic: a line of 3,000 tasks each waiting for the next
    // built 4.5 million links.
    let lengths = chain_lengths(&graph, &starts);
    let mut order: Vec<(TaskRef, usize)> = starts.iter().map(|&t| (t, lengths[&t])).collect();
    order.sort_by_key(|&(_, len)| std::cmp::Reverse(len));
    // Drop a chain whose first waiter is already a later step of a kept one.
    let mut covered: HashSet<TaskRef> = HashSet::new();
    let mut kept = Vec::new();
    for (start, _) in order {
        if covered.contains(&start) {
            continue;
        }
        let chain = follow(&graph, start);
        covered.extend(chain.links.iter().map(|l| l.waiter.task));
        kept.push(chain);
    }
    kept
}

/// The number of links of the chain from each of `starts`, as [`follow`]
/// would build it: each task's step leads to at most one next task, so
/// the steps from a task run into a task already measured, an end, or a
/// cycle of their own; linear in the tasks.
fn chain_lengths(graph: &Graph<'_>, starts: &[TaskRef]) -> HashMap<TaskRef, usize> {
    let mut length: HashMap<TaskRef, usize> = HashMap::new();
    let mut path: Vec<TaskRef> = Vec::new();
    let mut on_path: HashMap<TaskRef, usize> = HashMap::new();
    for &start in starts {
        path.clear();
        let mut task = start;
        // The length of what follows the path's first `cut` tasks (the
        // rest, if any, are a cycle, measured already).
        let (mut tail, cut) = loop {
            if let Some(&known) = length.get(&task) {
                break (known, path.len());
            }
            if let Some(&at) = on_path.get(&task) {
                // A cycle: each task on it has a chain once round it.
                let cycle = path.len() - at;
                for &t in &path[at..] {
                    length.insert(t, cycle);
                }
                break (cycle, at);
            }
            match graph.step(task) {
                Step::NoWait => break (0, path.len()),
                Step::Wait { next, .. } => {
                    on_path.insert(task, path.len());
                    path.push(task);
                    match next {
                        Next::To(holder) => task = holder,
                        Next::End(_) => break (0, path.len()),
                    }
                }
            }
        };
        for &t in path[..cut].iter().rev() {
            tail += 1;
            length.insert(t, tail);
        }
        // Emptied key by key: clearing the map costs its whole capacity,
        // which one long path leaves large for every later start.
        for t in &path {
            on_path.remove(t);
        }
    }
    length
}

/// The chain from `start` (see [`chains`]).
fn follow(graph: &Graph<'_>, start: TaskRef) -> Chain {
    let mut links = Vec::new();
    let mut seen = HashSet::new();
    let mut task = start;
    loop {
        seen.insert(task);
        let Step::Wait { at, waiter, next } = graph.step(task) else {
            return Chain {
                links,
                end: ChainEnd::Untracked,
            };
        };
        match next {
            Next::End(end) => {
                links.push(graph.link(at, waiter, None, true));
                return Chain { links, end };
            }
            Next::To(holder) => {
                // Name the followed holder first, as `Link::holders`
                // documents and as `Display` ("held by X, which waits for
                // ...") reads it.
                links.push(graph.link(at, waiter, Some(holder), true));
                if seen.contains(&holder) {
                    return Chain {
                        links,
                        end: ChainEnd::Cycle,
                    };
                }
                task = holder;
            }
        }
    }
}

/// Whether a wait with this access waits for units or a value (a
/// semaphore's permits, a pool's, a receive): any one holder can satisfy
/// it, where other waits need every holder.
fn is_units(access: Access) -> bool {
    matches!(access, Access::Receive | Access::Permits(_))
}

/// The deadlocks in `resources`: cycles of tasks each waiting for a resource
/// the next one holds. Every task on such a cycle of stuck waits appears
/// in a reported cycle (a stuck task that only waits on one, without
/// being on it, is in chains, not cycles): tasks are taken in order, and
/// each not yet in a reported cycle gets a shortest one through it (which
/// may pass through tasks of earlier ones). Tasks tangled in several cycles may therefore show up in fewer
/// cycles than exist.
pub fn cycles(resources: &[ResourceInfo]) -> Vec<Cycle> {
    let graph = Graph::new(resources);
    // Only stuck tasks can be in a deadlock (see `Graph::reduce`): a cycle
    // of waits through a task that can still go on is no deadlock.
    let mut nodes: Vec<TaskRef> = graph
        .waits
        .keys()
        .filter(|t| graph.rank_of(**t).is_none())
        .copied()
        .collect();
    nodes.sort();
    // A cycle lies inside one strongly connected component: searching
    // only the components that have one keeps a graph of thousands of
    // waiters and no deadlock linear, where a search from every waiter
    // would be quadratic.
    let waits = WaitNodes::new(&graph, &nodes);
    let component = cyclic_components(&graph, &nodes, &waits);
    let mut found = Vec::new();
    let mut in_cycle: HashSet<TaskRef> = HashSet::new();
    for &start in &nodes {
        if !component.contains_key(&start) || in_cycle.contains(&start) {
            continue;
        }
        if let Some(cycle) = cycle_from(&graph, start, &component, &waits) {
            in_cycle.extend(cycle.links.iter().map(|l| l.waiter.task));
            found.push(cycle);
        }
    }
    found
}

/// The waits of stuck tasks as nodes of their own: every waiter of one
/// side of a resource waits for the same holders (a lock's waiters for
/// its holders, a channel's receivers for its senders), so the wait-for
/// graph goes task → wait → holder, with edges as many as waits and
/// holders, where task → holder edges were as many as their product (a
/// thousand workers waiting on a queue whose senders they all hold: a
/// million edges).
struct WaitNodes {
    /// Node of (resource, side).
    id: HashMap<(usize, u8), u32>,
    /// Per node, its resource and one of its waiters' access, which
    /// says which holders it waits for.
    of: Vec<(usize, Access)>,
    /// Per holder, the nodes it is a holder of.
    held: HashMap<TaskRef, Vec<u32>>,
}

impl WaitNodes {
    fn new(graph: &Graph<'_>, stuck: &[TaskRef]) -> WaitNodes {
        let mut nodes = WaitNodes {
            id: HashMap::new(),
            of: Vec::new(),
            held: HashMap::new(),
        };
        for &t in stuck {
            for &(at, w) in graph.stuck_waits(t) {
                let next = nodes.of.len() as u32;
                let id = *nodes.id.entry((at, side(w.access))).or_insert(next);
                if id == next {
                    nodes.of.push((at, w.access));
                    for h in graph.blockers(at, w) {
                        let held = nodes.held.entry(h.task).or_default();
                        if held.last() != Some(&id) {
                            held.push(id);
                        }
                    }
                }
            }
        }
        nodes
    }

    fn node(&self, at: usize, access: Access) -> u32 {
        self.id[&(at, side(access))]
    }
}

/// Which holders of a resource a wait with this access waits for: the
/// senders (0), the receivers (1), or all (2).
fn side(access: Access) -> u8 {
    match access {
        Access::Receive => 0,
        Access::Send => 1,
        _ => 2,
    }
}

/// The waiting tasks that are in a cycle of the wait-for graph, each with
/// its strongly connected component: a component of several tasks, or one
/// task that waits on itself.
fn cyclic_components(
    graph: &Graph<'_>,
    nodes: &[TaskRef],
    waits: &WaitNodes,
) -> HashMap<TaskRef, usize> {
    let index_of: HashMap<TaskRef, u32> = (0..).zip(nodes).map(|(i, &t)| (t, i)).collect();
    // Tasks are vertices 0..n, waits n.. . Holders that wait for nothing
    // have no edges on: not vertices here.
    let n = nodes.len() as u32;
    let succ: Vec<Vec<u32>> = nodes
        .iter()
        .map(|&t| {
            graph
                .stuck_waits(t)
                .iter()
                .map(|&(at, w)| n + waits.node(at, w.access))
                .collect()
        })
        .chain(waits.of.iter().map(|&(at, access)| {
            graph
                .holders_waited_by(at, access)
                .iter()
                .filter_map(|h| index_of.get(&h.task).copied())
                .collect()
        }))
        .collect();
    let (comp, count) = crate::scc::components(succ.len(), 0..succ.len() as u32, |v| {
        succ[v as usize].iter().copied()
    });
    let mut tasks = vec![0usize; count as usize];
    for &c in &comp[..nodes.len()] {
        tasks[c as usize] += 1;
    }
    // A task alone in its component is in a cycle only if it waits for
    // itself (through a wait, for units it holds some of, of which it is
    // the only holder, or through a lock).
    let waits_for_itself = |t: TaskRef| {
        let held = waits.held.get(&t).map_or(&[][..], Vec::as_slice);
        graph
            .stuck_waits(t)
            .iter()
            .any(|&(at, w)| held.contains(&waits.node(at, w.access)) && graph.counts(at, w, t))
    };
    (0..nodes.len())
        .filter(|&v| tasks[comp[v] as usize] > 1 || waits_for_itself(nodes[v]))
        .map(|v| (nodes[v], comp[v] as usize))
        .collect()
}

/// A shortest cycle through `start`, by breadth-first search inside its
/// strongly connected component (where every cycle through it lies). A
/// wait node's holders are queued once, from the first task found waiting
/// on it (any later task it leads to is queued already), and as one entry
/// taken a holder at a time: a search that ends at the first holder of a
/// wait for a queue of a thousand senders does not visit the other 999.
fn cycle_from(
    graph: &Graph<'_>,
    start: TaskRef,
    component: &HashMap<TaskRef, usize>,
    waits: &WaitNodes,
) -> Option<Cycle> {
    /// The holders of wait `at` (of `waiter`, task `from`'s) from the
    /// `next`th on, still to be visited.
    struct Holders<'a> {
        from: TaskRef,
        at: usize,
        waiter: &'a Party,
        next: usize,
    }
    let home = component.get(&start).copied();
    let start_holds: HashSet<u32> = waits
        .held
        .get(&start)
        .map(|held| held.iter().copied().collect())
        .unwrap_or_default();
    // How each task was reached: (task, wait, waiter) before it.
    let mut parent: HashMap<TaskRef, (TaskRef, usize, &Party)> = HashMap::new();
    let mut visited = HashSet::from([start]);
    let mut expanded: HashSet<u32> = HashSet::new();
    let mut queue: std::collections::VecDeque<Holders<'_>> = std::collections::VecDeque::new();
    let mut task = start;
    loop {
        for &(at, waiter) in graph.stuck_waits(task) {
            let node = waits.node(at, waiter.access);
            if start_holds.contains(&node) && graph.counts(at, waiter, start) {
                // Walk back from `task` to `start`.
                let mut steps = vec![(task, at, waiter)];
                let mut at = task;
                while at != start {
                    let step = parent[&at];
                    steps.push(step);
                    at = step.0;
                }
                steps.reverse();
                let links = (0..steps.len())
                    .map(|i| {
                        let (_, at, w) = steps[i];
                        let holder = steps.get(i + 1).map_or(start, |s| s.0);
                        graph.link(at, w, Some(holder), false)
                    })
                    .collect();
                return Some(Cycle { links });
            }
            if expanded.insert(node) {
                queue.push_back(Holders {
                    from: task,
                    at,
                    waiter,
                    next: 0,
                });
            }
        }
        // The next task in breadth-first order: the first holder not yet
        // visited of the oldest entry.
        task = loop {
            let entry = queue.front_mut()?;
            let holders = graph.blockers(entry.at, entry.waiter);
            let found = holders[entry.next..].iter().position(|h| {
                component.get(&h.task).copied() == home && !visited.contains(&h.task)
            });
            match found {
                Some(k) => {
                    let h = holders[entry.next + k].task;
                    entry.next += k + 1;
                    visited.insert(h);
                    parent.insert(h, (entry.from, entry.at, entry.waiter));
                    break h;
                }
                None => {
                    queue.pop_front();
                }
            }
        };
    }
}

fn secs(d: Duration) -> String {
    format!("{:.1}s", d.as_secs_f64())
}

/// `task "name" (file:line › frames)`, or for a holder found by
/// ownership `task "name" (owns a sender at future state +0x28)`.
fn task_phrase(p: &Party) -> String {
    if let Provenance::Owns { path } = &p.provenance {
        let what = match p.access {
            Access::Receive => "the receiver",
            _ => "a sender",
        };
        return format!("task \"{}\" (owns {what} at {path})", p.task_name);
    }
    let mut s = format!("task \"{}\" ({}", p.task_name, place(p));
    if !p.frames.is_empty() {
        s.push_str(" › ");
        s.push_str(&p.frames.to_string());
    }
    s.push(')');
    s
}

/// `file:line` where a party took or waits for a resource, or, for what
/// tokio's instrumentation reported (which says no place), that.
fn place(p: &Party) -> String {
    match p.provenance {
        Provenance::Tokio => "reported by tokio's instrumentation".to_owned(),
        _ => format!("{}:{}", p.location.file(), p.location.line()),
    }
}

/// `at file:line`, or `reported by tokio's instrumentation`.
fn at_place(p: &Party) -> String {
    match p.provenance {
        Provenance::Tokio => place(p),
        _ => format!("at {}", place(p)),
    }
}

fn frames_suffix(p: &Party) -> String {
    if p.frames.is_empty() {
        String::new()
    } else {
        format!(" › {}", p.frames)
    }
}

fn holder_phrase(link: &Link) -> String {
    match link.holders.first() {
        None if link.extra_holders > 0 => {
            format!(
                "held by {} holder(s) TurboWish counted but did not name",
                link.extra_holders
            )
        }
        None => "held by nobody TurboWish saw".to_string(),
        Some(h) => {
            let others = link.holders.len() - 1 + link.extra_holders + link.unlisted_holders;
            let mut s = format!("held by {} since {}", task_phrase(h), secs(h.since));
            if others > 0 {
                s.push_str(&format!(" and {others} other holder(s)"));
            }
            s
        }
    }
}

impl fmt::Display for Chain {
    /// `task "a" (…) waits for Mutex "x" (for 1.2s), held by task "b" (…)
    /// since 3.4s, which waits for …, which waits on nothing tracked`
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let last = self.links.len().saturating_sub(1);
        for (i, link) in self.links.iter().enumerate() {
            if i == 0 {
                write!(f, "{}", task_phrase(&link.waiter))?;
            } else {
                f.write_str(", which")?;
            }
            let held_by = if i == last && self.end == ChainEnd::HolderNotReported {
                format!(
                    "whose holder tokio's instrumentation does not name ({} counted; \
                     TurboWish does not guess)",
                    link.extra_holders
                )
            } else {
                holder_phrase(link)
            };
            write!(
                f,
                " waits for {} (for {}), {held_by}",
                link.resource,
                secs(link.waiter.since),
            )?;
        }
        match self.end {
            ChainEnd::Untracked => {
                let parked = self
                    .links
                    .last()
                    .and_then(|l| l.holders.first())
                    .and_then(|h| h.parked_in.as_ref());
                match parked {
                    Some(path) => write!(
                        f,
                        ", which is waiting on something untracked in {path} (or running)"
                    ),
                    None => f.write_str(", which is waiting on something untracked (or running)"),
                }
            }
            ChainEnd::HeldByNobody | ChainEnd::UnnamedHolders | ChainEnd::HolderNotReported => {
                Ok(())
            }
            ChainEnd::Cycle => f.write_str(", which closes a cycle: deadlock"),
            ChainEnd::SendersOutsideTasks => {
                let Some(last) = self.links.last() else {
                    return Ok(());
                };
                let mut names: Vec<&str> = Vec::new();
                for h in &last.holders {
                    if !names.contains(&h.task_name.as_str()) {
                        names.push(&h.task_name);
                    }
                }
                write!(
                    f,
                    "; no task owns a sender of {}: only {} {} one, so no task can send",
                    last.resource,
                    names.join(" and "),
                    if names.len() == 1 { "holds" } else { "hold" },
                )
            }
            ChainEnd::NoSenders => match self.links.last() {
                Some(last) => write!(
                    f,
                    "; every sender of {} is dropped: recv returns None",
                    last.resource
                ),
                None => Ok(()),
            },
        }
    }
}

impl fmt::Display for Cycle {
    /// `deadlock: task "a" (…) holds Mutex "x" since 2.1s and waits for
    /// Mutex "y", held by task "b" (…), which waits for Mutex "x"`
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.links.len();
        let first = &self.links[0];
        let last = &self.links[n - 1];
        match last.holders.iter().find(|h| h.task == first.waiter.task) {
            // Where the first task took the lock it holds, then where it waits.
            Some(held) => write!(
                f,
                "deadlock: {} holds {} since {} and waits for {} ({}{})",
                task_phrase(held),
                last.resource,
                secs(held.since),
                first.resource,
                at_place(&first.waiter),
                frames_suffix(&first.waiter),
            )?,
            None => write!(
                f,
                "deadlock: {} waits for {}",
                task_phrase(&first.waiter),
                first.resource
            )?,
        }
        for link in &self.links[1..] {
            let holder = &link.waiter;
            write!(
                f,
                ", held by {}, which waits for {}",
                task_phrase(holder),
                link.resource
            )?;
        }
        Ok(())
    }
}
