//! Wait-for analysis over [`crate::sync::resources`]: *chains* (a waiter, the
//! resource it waits for, the holder, what that holder waits for, …) and
//! *cycles* (a chain that returns to its start: a deadlock). Pure functions
//! of a resource list, so a snapshot read later analyses the same way.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::time::Duration;

use crate::sync::{Access, Party, Provenance, ResourceInfo, ResourceKind, TaskRef};

/// One step of a chain: `waiter` waits for `resource`, whose holders are
/// `holders` (the chain continues with the first of them).
#[derive(Debug, Clone)]
pub struct Link {
    /// The waiting task, as recorded when it started waiting.
    pub waiter: Party,
    /// Kind and name of the resource waited for, e.g. `Mutex "accounts[2]"`.
    pub resource: String,
    /// Its holders (several for read locks and semaphores; none when the
    /// resource is held by nobody TurboWish saw).
    pub holders: Vec<Party>,
    /// Further holders, counted only.
    pub extra_holders: usize,
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
                let side = match w.access {
                    Access::Receive => 0,
                    Access::Send => 1,
                    _ => 2,
                };
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

    /// The blockers a wait depends on: for units, a holder that waits for
    /// units it holds some of itself waits for the others, unless it is
    /// the only holder.
    fn counted_blockers(&self, at: usize, waiter: &Party) -> Vec<&'a Party> {
        let blocked_by = self.blockers(at, waiter);
        let units = is_units(waiter.access);
        let others = blocked_by.iter().any(|h| h.task != waiter.task);
        blocked_by
            .iter()
            .filter(|h| !(units && others && h.task == waiter.task))
            .copied()
            .collect()
    }

    /// The holders of `waited[at]` that `waiter` waits for (for a channel,
    /// the other side's holders; for a lock, all of them): as
    /// [`Access::waits_for`].
    fn blockers(&self, at: usize, waiter: &Party) -> &[&'a Party] {
        let w = &self.waited[at];
        match waiter.access {
            Access::Receive => &w.senders,
            Access::Send => &w.receivers,
            _ => &w.others,
        }
    }

    fn link(&self, at: usize, waiter: &Party) -> Link {
        let w = &self.waited[at];
        Link {
            waiter: waiter.clone(),
            resource: w.label.clone(),
            holders: self
                .blockers(at, waiter)
                .iter()
                .map(|&h| h.clone())
                .collect(),
            extra_holders: w.resource.extra_holders,
        }
    }

    /// The holders stuck task `task` waits on, each with the wait: the
    /// edges `cycles` searches. Only for stuck tasks (see [`Graph::reduce`]),
    /// every wait of which is stuck: a wait for units has no holder that
    /// can go on (nor counted ones), so all its holders lead on; a waiter
    /// for units it holds some of itself waits for the others, unless it
    /// is the only holder.
    fn next(&self, task: TaskRef) -> Vec<(TaskRef, usize, &'a Party)> {
        debug_assert!(self.rank_of(task).is_none());
        let mut out = Vec::new();
        for &(at, w) in self.waits.get(&task).into_iter().flatten() {
            out.extend(
                self.counted_blockers(at, w)
                    .into_iter()
                    .map(|h| (h.task, at, w)),
            );
        }
        out
    }
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
    let mut all: Vec<Chain> = starts.iter().map(|&t| follow(&graph, t)).collect();
    all.sort_by_key(|c| std::cmp::Reverse(c.links.len()));
    // Drop a chain whose first waiter is already a later step of a kept one.
    let mut covered: HashSet<TaskRef> = HashSet::new();
    let mut kept = Vec::new();
    for chain in all {
        let first = chain.links[0].waiter.task;
        if covered.contains(&first) {
            continue;
        }
        covered.extend(chain.links.iter().map(|l| l.waiter.task));
        kept.push(chain);
    }
    kept
}

fn follow(graph: &Graph<'_>, start: TaskRef) -> Chain {
    let mut links = Vec::new();
    let mut seen = HashSet::new();
    let mut task = start;
    loop {
        seen.insert(task);
        // A task that can still go on (see `Graph::reduce`) is followed
        // through the wait that frees it, to the holder that frees that
        // wait: ranks fall along the way, so such a chain ends at a running
        // task (or a wait TurboWish cannot judge), never in a "cycle" that
        // is none. A stuck task, every wait of which is stuck, through its
        // first wait to a stuck holder (another than itself if there is
        // one): that chain shows the deadlock.
        let ranked = graph.rank.get(&task).copied();
        let wait = match ranked {
            Some(r) => Some((r.at, r.waiter)),
            None => graph.waits.get(&task).and_then(|w| w.first()).copied(),
        };
        let Some((at, waiter)) = wait else {
            return Chain {
                links,
                end: ChainEnd::Untracked,
            };
        };
        links.push(graph.link(at, waiter));
        let resource = graph.waited[at].resource;
        let blockers = graph.blockers(at, waiter);
        let next = match ranked {
            // Of the holders as far from running as the one that freed
            // the wait, the first recorded: the order `Link::holders` has.
            Some(r) => r.holder.and_then(|h| {
                let rank = graph.rank_of(h);
                blockers
                    .iter()
                    .find(|p| graph.rank_of(p.task) == rank)
                    .copied()
            }),
            None => {
                let counted = graph.counted_blockers(at, waiter);
                let stuck = |h: &&&Party| graph.rank_of(h.task).is_none();
                counted
                    .iter()
                    .find(|h| h.task != task && stuck(h))
                    .or_else(|| counted.iter().find(stuck))
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
            return Chain { links, end };
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
            return Chain {
                links,
                end: ChainEnd::SendersOutsideTasks,
            };
        }
        // Name the followed holder first, as `Link::holders` documents and
        // as `Display` ("held by X, which waits for ...") reads it.
        if let Some(link) = links.last_mut() {
            if let Some(i) = link.holders.iter().position(|h| h.task == holder.task) {
                link.holders[..=i].rotate_right(1);
            }
        }
        if seen.contains(&holder.task) {
            return Chain {
                links,
                end: ChainEnd::Cycle,
            };
        }
        task = holder.task;
    }
}

/// Whether a wait with this access waits for units or a value (a
/// semaphore's permits, a pool's, a receive): any one holder can satisfy
/// it, where other waits need every holder.
fn is_units(access: Access) -> bool {
    matches!(access, Access::Receive | Access::Permits(_))
}

/// The deadlocks in `resources`: cycles of tasks each waiting for a resource
/// the next one holds. Each task appears in at most one reported cycle (a
/// shortest one through the first task found in it); tasks tangled in
/// several cycles may therefore show up in fewer cycles than exist.
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
    let component = cyclic_components(&graph, &nodes);
    let mut found = Vec::new();
    let mut in_cycle: HashSet<TaskRef> = HashSet::new();
    for &start in &nodes {
        if !component.contains_key(&start) || in_cycle.contains(&start) {
            continue;
        }
        if let Some(cycle) = cycle_from(&graph, start, &component) {
            in_cycle.extend(cycle.links.iter().map(|l| l.waiter.task));
            found.push(cycle);
        }
    }
    found
}

/// The waiting tasks that are in a cycle of the wait-for graph, each with
/// its strongly connected component: a component of several tasks, or one
/// task that waits on itself.
fn cyclic_components(graph: &Graph<'_>, nodes: &[TaskRef]) -> HashMap<TaskRef, usize> {
    let index_of: HashMap<TaskRef, u32> = (0..).zip(nodes).map(|(i, &t)| (t, i)).collect();
    // Holders that wait for nothing have no edges on: not nodes here.
    let succ: Vec<Vec<u32>> = nodes
        .iter()
        .map(|&t| {
            graph
                .next(t)
                .into_iter()
                .filter_map(|(n, _, _)| index_of.get(&n).copied())
                .collect()
        })
        .collect();
    let (comp, count) = crate::scc::components(nodes.len(), 0..nodes.len() as u32, |v| {
        succ[v as usize].iter().copied()
    });
    let mut size = vec![0usize; count as usize];
    for &c in &comp {
        size[c as usize] += 1;
    }
    (0..nodes.len())
        .filter(|&v| size[comp[v] as usize] > 1 || succ[v].contains(&(v as u32)))
        .map(|v| (nodes[v], comp[v] as usize))
        .collect()
}

/// A shortest cycle through `start`, by breadth-first search inside its
/// strongly connected component (where every cycle through it lies).
fn cycle_from(
    graph: &Graph<'_>,
    start: TaskRef,
    component: &HashMap<TaskRef, usize>,
) -> Option<Cycle> {
    type Step<'a> = (TaskRef, usize, &'a Party);
    let home = component.get(&start).copied();
    let mut parent: HashMap<TaskRef, Step<'_>> = HashMap::new();
    let mut queue = std::collections::VecDeque::from([start]);
    let mut visited = HashSet::from([start]);
    while let Some(task) = queue.pop_front() {
        for (next, at, waiter) in graph.next(task) {
            if next == start {
                // Walk back from `task` to `start`.
                let mut steps = vec![(task, at, waiter)];
                let mut at = task;
                while at != start {
                    let step = parent[&at];
                    steps.push(step);
                    at = step.0;
                }
                steps.reverse();
                let links = steps.iter().map(|&(_, at, w)| graph.link(at, w)).collect();
                return Some(Cycle { links });
            }
            if component.get(&next).copied() != home {
                continue;
            }
            if visited.insert(next) {
                parent.insert(next, (task, at, waiter));
                queue.push_back(next);
            }
        }
    }
    None
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
            let others = link.holders.len() - 1 + link.extra_holders;
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
