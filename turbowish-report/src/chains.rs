//! `turbowish chains`: wait chains and deadlock cycles as text with their
//! frame stacks and locations, and the task↔resource graph as Graphviz DOT.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::fmt::Write as _;

use turbowish_snapshot::format::printable;

use crate::labels::task_ref;
use serde::Serialize;
use turbowish_snapshot::schema::{
    Access, HandleKind, HandleOwner, Link, Party, Provenance, Resource, ResourceKind, Snapshot,
    TaskRef,
};

/// The chains and cycles of a snapshot in plain text: deadlocks first, each
/// with its one-line summary, then every step with the waiter's and the
/// holders' frame stacks and locations.
///
/// ```
/// # let snap: turbowish_snapshot::Snapshot = serde_json::from_str(include_str!("../../turbowish-snapshot/tests/fixtures/service.json")).unwrap();
/// let text = turbowish_report::chains::chains_text(&snap);
/// assert!(text.contains(&snap.cycles[0].text));
/// ```
pub fn chains_text(snap: &Snapshot) -> String {
    let resources: HashMap<u64, &Resource> = snap.resources.iter().map(|r| (r.id, r)).collect();
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{} {}, {} wait {}",
        snap.cycles.len(),
        if snap.cycles.len() == 1 {
            "deadlock"
        } else {
            "deadlocks"
        },
        snap.chains.len(),
        if snap.chains.len() == 1 {
            "chain"
        } else {
            "chains"
        },
    );
    if snap.cycles.is_empty() && snap.chains.is_empty() {
        out.push_str("no task waits for a resource TurboWish tracks\n");
        return out;
    }
    // A chain that runs into a reported deadlock repeats its steps: those
    // are shown once, with the deadlock.
    let in_cycles: HashSet<(TaskRef, u64)> = snap
        .cycles
        .iter()
        .flat_map(|c| c.links.iter().map(|l| (l.waiter.task, l.resource)))
        .collect();
    // Resources whose owners were listed: a later step names them once
    // more, not the list (a lock a thousand tasks own, in a thousand
    // chains, would be a million names).
    let mut shown: HashSet<u64> = HashSet::new();
    for cycle in &snap.cycles {
        let _ = writeln!(out, "\n{}", printable(&cycle.text));
        links_text(&mut out, &cycle.links, &resources, &mut shown);
    }
    for (i, chain) in snap.chains.iter().enumerate() {
        let _ = writeln!(out, "\nchain {}: {}", i + 1, printable(&chain.text));
        if chain
            .links
            .iter()
            .all(|l| in_cycles.contains(&(l.waiter.task, l.resource)))
        {
            out.push_str("  (its steps are those of the deadlock above)\n");
        } else {
            links_text(&mut out, &chain.links, &resources, &mut shown);
        }
    }
    out
}

fn links_text(
    out: &mut String,
    links: &[Link],
    resources: &HashMap<u64, &Resource>,
    shown: &mut HashSet<u64>,
) {
    for (i, link) in links.iter().enumerate() {
        let _ = writeln!(
            out,
            "  {}. {} waits {} for {} ({})",
            i + 1,
            party_name(&link.waiter),
            secs(link.waiter.since_ms),
            printable(&link.resource_label),
            access(link.waiter.access),
        );
        party_place(out, &link.waiter, "       ");
        let created = resources
            .get(&link.resource)
            .map(|r| format!(", created at {},", printable(&r.location)))
            .unwrap_or_default();
        if link.holders.is_empty() && link.extra_holders == 0 && link.unlisted_holders == 0 {
            let _ = writeln!(
                out,
                "     {}{created} is held by nobody TurboWish saw",
                printable(&link.resource_label)
            );
            continue;
        }
        let _ = writeln!(
            out,
            "     {}{created} is held by",
            printable(&link.resource_label)
        );
        for holder in &link.holders {
            let _ = writeln!(
                out,
                "       {} since {} ({}, {})",
                party_name(holder),
                secs(holder.since_ms),
                access(holder.access),
                match &holder.provenance {
                    Provenance::Recorded => "recorded",
                    Provenance::Owns { .. } => "owns",
                    Provenance::Tokio => "reported by tokio",
                },
            );
            match &holder.provenance {
                Provenance::Owns { path } => {
                    let _ = writeln!(out, "         in its state at {}", printable(path));
                }
                Provenance::Recorded | Provenance::Tokio => party_place(out, holder, "         "),
            }
            if !holder.parked_in.is_empty() {
                let _ = writeln!(
                    out,
                    "         parked now in {}",
                    printable(&holder.parked_in.join(" › "))
                );
            }
        }
        if link.unlisted_holders > 0 {
            let _ = writeln!(
                out,
                "       and {} more named holder(s) (the snapshot's resources list them all)",
                link.unlisted_holders
            );
        }
        if link.extra_holders > 0 {
            let tokio = resources
                .get(&link.resource)
                .is_some_and(|r| matches!(r.kind, ResourceKind::Tokio(_)));
            let _ = if tokio {
                writeln!(
                    out,
                    "       and {} holder(s) tokio's instrumentation does not name (TurboWish does not guess)",
                    link.extra_holders
                )
            } else {
                writeln!(
                    out,
                    "       and {} holder(s) TurboWish counted but did not name",
                    link.extra_holders
                )
            };
        }
        if let Some(r) = resources.get(&link.resource) {
            may_lock_line(out, r, shown);
        }
    }
}

/// A lock or semaphore with the tasks (and roots) whose state owns a
/// handle to it: who may take it next, not only who waits now.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MayLock {
    /// The resource ([`Resource::id`]).
    pub resource: u64,
    /// Kind and name, e.g. `Mutex "accounts[2]"`.
    pub resource_label: String,
    /// Its owners, as the walker found them.
    pub owners: Vec<HandleOwner>,
}

/// Every lock and semaphore some task owns a handle to, in resource order
/// (empty for a version-1 snapshot, which has no ownership).
///
/// ```
/// # let snap: turbowish_snapshot::Snapshot = serde_json::from_str(include_str!("../../turbowish-snapshot/tests/fixtures/service.json")).unwrap();
/// let locks = turbowish_report::chains::may_lock(&snap);
/// assert!(locks.iter().all(|l| !l.owners.is_empty()));
/// ```
pub fn may_lock(snap: &Snapshot) -> Vec<MayLock> {
    snap.resources
        .iter()
        .filter_map(|r| {
            let owners: Vec<HandleOwner> = r
                .owners
                .iter()
                .filter(|o| o.handle == HandleKind::Lock)
                .cloned()
                .collect();
            (!owners.is_empty()).then(|| MayLock {
                resource: r.id,
                resource_label: format!("{} \"{}\"", r.kind.name(), r.name),
                owners,
            })
        })
        .collect()
}

/// The tasks owning an `Arc` to (or the value of) a lock, who may take it
/// next: `     may lock: task "a" (#1) at future state +0x30, …`.
/// Only the first step of the output that names `r` lists them; later
/// ones say `may lock: as above`.
fn may_lock_line(out: &mut String, r: &Resource, shown: &mut HashSet<u64>) {
    if !r.owners.iter().any(|o| o.handle == HandleKind::Lock) {
        return;
    }
    if !shown.insert(r.id) {
        out.push_str("     may lock: as above\n");
        return;
    }
    let owners: Vec<String> = r
        .owners
        .iter()
        .filter(|o| o.handle == HandleKind::Lock)
        .map(|o| {
            let who = match o.task {
                Some(task) => format!("task \"{}\" ({})", printable(&o.name), task_ref(task)),
                None => format!("root \"{}\"", printable(&o.name)),
            };
            format!("{who} at {}", printable(&o.path))
        })
        .collect();
    if !owners.is_empty() {
        let _ = writeln!(out, "     may lock: {}", owners.join(", "));
    }
}

fn party_name(p: &Party) -> String {
    format!(
        "task \"{}\" ({})",
        printable(&p.task_name),
        task_ref(p.task)
    )
}

/// Where a party acquired or waits, and in which frames. What tokio's
/// instrumentation reported has no place: the line says so.
fn party_place(out: &mut String, p: &Party, indent: &str) {
    let at = match p.provenance {
        Provenance::Tokio => "at a place tokio's instrumentation does not report".to_owned(),
        _ => format!("at {}", printable(&p.location)),
    };
    if p.frames.is_empty() {
        let _ = writeln!(out, "{indent}{at}");
    } else {
        let _ = writeln!(out, "{indent}{at} in {}", printable(&p.frames.join(" › ")));
    }
}

fn access(a: Access) -> String {
    match a {
        Access::Exclusive => "exclusive".to_owned(),
        Access::Shared => "shared".to_owned(),
        Access::Permits(n) => format!("{n} permit{}", if n == 1 { "" } else { "s" }),
        Access::Send => "send".to_owned(),
        Access::Receive => "receive".to_owned(),
    }
}

fn secs(ms: u64) -> String {
    format!("{:.1}s", ms as f64 / 1000.0)
}

/// The task↔resource graph as Graphviz DOT: tasks as ellipses, resources
/// as boxes, `holds` edges from a resource to its holders, `waits` edges
/// from a task to the resource it waits for. Edges of a deadlock cycle are
/// red and bold. Resources nobody holds or waits for are left out.
///
/// ```
/// # let snap: turbowish_snapshot::Snapshot = serde_json::from_str(include_str!("../../turbowish-snapshot/tests/fixtures/service.json")).unwrap();
/// let dot = turbowish_report::chains::chains_dot(&snap);
/// assert!(dot.starts_with("digraph turbowish {"));
/// assert!(dot.contains("color=red"));
/// ```
pub fn chains_dot(snap: &Snapshot) -> String {
    let (cycle_waits, cycle_holds) = cycle_edges(snap);

    let mut out = String::from("digraph turbowish {\n  rankdir=LR;\n");
    // Tasks in order of first appearance, each drawn once.
    let mut tasks: Vec<(TaskRef, &str)> = Vec::new();
    let mut seen: HashSet<TaskRef> = HashSet::new();
    let mut edges = String::new();
    for r in &snap.resources {
        if r.holders.is_empty() && r.waiters.is_empty() {
            continue;
        }
        // Names pass the shared escaping first; `escape` then quotes for
        // DOT (our own `\n` separators become DOT line breaks).
        let mut label = format!(
            "{} \"{}\"\n{}",
            printable(r.kind.name()),
            printable(&r.name),
            printable(&r.location)
        );
        if r.extra_holders > 0 {
            let _ = write!(label, "\n+{} unnamed holder(s)", r.extra_holders);
        }
        if let Some(permits) = r.permits {
            let _ = write!(label, "\n{permits} permit(s) free");
        }
        let _ = writeln!(
            out,
            "  {} [shape=box, label=\"{}\"];",
            resource_node(r.id),
            escape(&label)
        );
        for h in &r.holders {
            if seen.insert(h.task) {
                tasks.push((h.task, &h.task_name));
            }
            let hot = cycle_holds.contains(&(r.id, h.task));
            let _ = writeln!(
                edges,
                "  {} -> {} [label=\"holds\"{}];",
                resource_node(r.id),
                task_node(h.task),
                if hot { HOT_HOLDS } else { "" }
            );
        }
        for w in &r.waiters {
            if seen.insert(w.task) {
                tasks.push((w.task, &w.task_name));
            }
            let hot = cycle_waits.contains(&(w.task, r.id));
            let _ = writeln!(
                edges,
                "  {} -> {} [label=\"waits\", {}];",
                task_node(w.task),
                resource_node(r.id),
                if hot { HOT_WAITS } else { "style=dashed" }
            );
        }
    }
    for (task, name) in tasks {
        let label = format!("{}\n{}", printable(name), task_ref(task));
        let _ = writeln!(
            out,
            "  {} [shape=ellipse, label=\"{}\"];",
            task_node(task),
            escape(&label)
        );
    }
    out.push_str(&edges);
    out.push_str("}\n");
    out
}

/// `(waiter, resource)` edges on a deadlock cycle.
pub(crate) type CycleWaits = BTreeSet<(TaskRef, u64)>;
/// `(resource, holder)` edges on a deadlock cycle.
pub(crate) type CycleHolds = BTreeSet<(u64, TaskRef)>;

/// The edges of the snapshot's deadlock cycles: `(waiter, resource)` wait
/// edges and `(resource, holder)` hold edges, where each link's holder is
/// the next link's waiter.
pub(crate) fn cycle_edges(snap: &Snapshot) -> (CycleWaits, CycleHolds) {
    let mut waits = BTreeSet::new();
    let mut holds = BTreeSet::new();
    for cycle in &snap.cycles {
        let n = cycle.links.len();
        for (i, link) in cycle.links.iter().enumerate() {
            waits.insert((link.waiter.task, link.resource));
            holds.insert((link.resource, cycle.links[(i + 1) % n].waiter.task));
        }
    }
    (waits, holds)
}

/// Attributes of a hold edge on a deadlock cycle.
const HOT_HOLDS: &str = ", style=bold, color=red, fontcolor=red, penwidth=2";
/// Attributes of a wait edge on a deadlock cycle (waits stay dashed).
const HOT_WAITS: &str = "style=\"dashed,bold\", color=red, fontcolor=red, penwidth=2";

fn resource_node(id: u64) -> String {
    format!("resource_{id}")
}

fn task_node(task: TaskRef) -> String {
    match task {
        TaskRef::Task(id) => format!("task_{id}"),
        TaskRef::TokioTask(id) => format!("tokio_{id}"),
        TaskRef::Thread(n) => format!("thread_{n}"),
    }
}

/// A DOT double-quoted string's content; newlines become `\n` line breaks.
/// Text from the snapshot in `s` has passed [`printable`] already, so the
/// only line breaks left are the label's own.
fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => {}
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_keeps_dot_strings_closed() {
        assert_eq!(escape("a \"b\"\\c\nd\r"), "a \\\"b\\\"\\\\c\\nd");
    }

    #[test]
    fn who_may_lock_a_resource_is_listed_at_its_first_step_only() {
        let mut snap: Snapshot = serde_json::from_str(include_str!(
            "../../turbowish-snapshot/tests/fixtures/service.json"
        ))
        .unwrap();
        let once = chains_text(&snap);
        assert_eq!(once.matches("may lock: task").count(), 2, "{once}");
        assert!(!once.contains("as above"), "{once}");
        snap.cycles.push(snap.cycles[0].clone());
        let twice = chains_text(&snap);
        assert_eq!(twice.matches("may lock: task").count(), 2, "{twice}");
        assert_eq!(
            twice.matches("     may lock: as above\n").count(),
            2,
            "{twice}"
        );
    }

    #[test]
    fn unlisted_and_unnamed_holders_are_told_apart() {
        let mut snap: Snapshot = serde_json::from_str(include_str!(
            "../../turbowish-snapshot/tests/fixtures/service.json"
        ))
        .unwrap();
        let link = &mut snap.cycles[0].links[0];
        link.unlisted_holders = 42;
        link.extra_holders = 3;
        let text = chains_text(&snap);
        assert!(
            text.contains(
                "       and 42 more named holder(s) (the snapshot's resources list them all)\n"
            ),
            "{text}"
        );
        assert!(
            text.contains("       and 3 holder(s) TurboWish counted but did not name\n"),
            "{text}"
        );
    }

    #[test]
    fn dot_labels_show_controls_and_bidi_escaped() {
        let mut snap: Snapshot = serde_json::from_str(include_str!(
            "../../turbowish-snapshot/tests/fixtures/service.json"
        ))
        .unwrap();
        snap.resources[0].name = "evil\u{1b}[31m\u{7}\u{0}\u{202e}".to_owned();
        snap.resources[0].holders[0].task_name = "t\u{202e}\"x\n".to_owned();
        let dot = chains_dot(&snap);
        assert!(
            !dot.chars()
                .any(|c| c != '\n' && turbowish_snapshot::format::shown_escaped(c)),
            "{dot}"
        );
        assert!(
            dot.contains("evil\\\\u{1b}[31m\\\\u{7}\\\\u{0}\\\\u{202e}"),
            "{dot}"
        );
        assert!(dot.contains("t\\\\u{202e}\\\"x\\\\u{a}\\n#"), "{dot}");
    }
}
