//! The task ↔ resource graph as SVG, with a layered layout of our own:
//! cycles broken by a depth-first search, layers by longest path, order
//! within layers by barycentre sweeps, then columns left to right as in
//! `chains --dot` (`rankdir=LR`).
//!
//! Edges are *holds* (resource → holder), *waits* (task → resource) and
//! *owns* (a task whose state owns a handle → the resource, found by the
//! walker). Nodes and edges of a deadlock cycle carry the class `cycle`.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::fmt::Write as _;

use turbowish_snapshot::schema::{HandleKind, Snapshot, TaskRef};

use super::escape::{push_text, text, truncate};
use crate::labels::task_ref;

/// Above this many nodes the graph keeps only what is on a chain or a
/// cycle (and says so): a picture of thousands of boxes shows nothing.
pub(crate) const MAX_NODES: usize = 400;

const NODE_W: f64 = 210.0;
const NODE_H: f64 = 38.0;
const COL_GAP: f64 = 120.0;
const ROW_GAP: f64 = 22.0;
const MARGIN: f64 = 24.0;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum NodeKey {
    Task(TaskRef),
    Resource(u64),
}

#[derive(Debug)]
struct Node {
    key: NodeKey,
    label: String,
    detail: String,
    cycle: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum EdgeKind {
    Holds,
    Waits,
    Owns(HandleKind),
}

impl EdgeKind {
    fn class(self) -> &'static str {
        match self {
            EdgeKind::Holds => "holds",
            EdgeKind::Waits => "waits",
            EdgeKind::Owns(_) => "owns",
        }
    }
}

/// What [`render`] drew, for the page's caption.
#[derive(Debug, Default)]
pub(crate) struct Drawn {
    pub(crate) nodes: usize,
    pub(crate) edges: usize,
    /// Nodes left out because the graph was over [`MAX_NODES`].
    pub(crate) left_out: usize,
}

/// Writes the graph as one `<svg id="graph-svg">`, or nothing when no task
/// holds or waits for a tracked resource.
///
/// Nodes are `<g class="node task|resource [cycle]" data-node="task-3">`;
/// edges are `<path class="edge holds|waits|owns [cycle]" data-from
/// data-to>`.
pub(crate) fn render(out: &mut String, snap: &Snapshot) -> Drawn {
    let (nodes, edges, left_out) = build(snap);
    if nodes.is_empty() {
        return Drawn::default();
    }
    let index: HashMap<NodeKey, usize> =
        nodes.iter().enumerate().map(|(i, n)| (n.key, i)).collect();
    let pairs: Vec<(usize, usize)> = edges.iter().map(|e| (index[&e.0], index[&e.1])).collect();
    let (layer, order) = layout(nodes.len(), &pairs);

    let layers = layer.iter().copied().max().unwrap_or(0) + 1;
    let mut per_layer = vec![0usize; layers];
    for &l in &layer {
        per_layer[l] += 1;
    }
    let rows = per_layer.iter().copied().max().unwrap_or(1);
    let width = MARGIN * 2.0 + layers as f64 * NODE_W + (layers - 1) as f64 * COL_GAP;
    let height = MARGIN * 2.0 + rows as f64 * NODE_H + (rows.saturating_sub(1)) as f64 * ROW_GAP;
    // Each layer is centred vertically.
    let pos = |i: usize| -> (f64, f64) {
        let l = layer[i];
        let offset = (rows - per_layer[l]) as f64 * (NODE_H + ROW_GAP) / 2.0;
        (
            MARGIN + l as f64 * (NODE_W + COL_GAP),
            MARGIN + offset + order[i] as f64 * (NODE_H + ROW_GAP),
        )
    };

    let _ = writeln!(
        out,
        "<svg id=\"graph-svg\" viewBox=\"0 0 {width:.0} {height:.0}\" width=\"{width:.0}\" height=\"{height:.0}\" role=\"img\" aria-label=\"tasks and resources\">\n<defs><marker id=\"arrow\" viewBox=\"0 0 10 10\" refX=\"10\" refY=\"5\" markerWidth=\"7\" markerHeight=\"7\" orient=\"auto-start-reverse\"><path d=\"M0,0L10,5L0,10z\" fill=\"#555\"/></marker><marker id=\"arrow-cycle\" viewBox=\"0 0 10 10\" refX=\"10\" refY=\"5\" markerWidth=\"7\" markerHeight=\"7\" orient=\"auto-start-reverse\"><path d=\"M0,0L10,5L0,10z\" fill=\"#c00\"/></marker></defs>"
    );
    let key_id = |k: NodeKey| match k {
        NodeKey::Task(t) => format!("task-{}", task_key(t)),
        NodeKey::Resource(id) => format!("resource-{id}"),
    };
    // Edges between the same two nodes (a task holds a channel and owns
    // its sender) fan out instead of drawing over each other.
    let mut parallel: HashMap<(usize, usize), (usize, usize)> = HashMap::new();
    for &(a, b) in &pairs {
        parallel.entry((a.min(b), a.max(b))).or_default().1 += 1;
    }
    for (e, &(a, b)) in edges.iter().zip(&pairs) {
        let ((ax, ay), (bx, by)) = (pos(a), pos(b));
        let slot = parallel.get_mut(&(a.min(b), a.max(b))).unwrap();
        let fan = (slot.0 as f64 - (slot.1 - 1) as f64 / 2.0) * 12.0;
        slot.0 += 1;
        let (ay, by) = (ay + NODE_H / 2.0 + fan, by + NODE_H / 2.0 + fan);
        // Leave from the side facing the target; a backward edge curves
        // out and around.
        let (x1, x2) = if bx >= ax + NODE_W {
            (ax + NODE_W, bx)
        } else if bx + NODE_W <= ax {
            (ax, bx + NODE_W)
        } else {
            (ax + NODE_W, bx + NODE_W)
        };
        let bend = ((x2 - x1).abs() / 2.0).max(60.0);
        let (c1, c2) = if x2 >= x1 && layer[a] != layer[b] {
            (x1 + bend, x2 - bend)
        } else if x2 < x1 {
            (x1 - bend, x2 + bend)
        } else {
            (x1 + bend, x2 + bend)
        };
        let class = if e.3 { " cycle" } else { "" };
        let marker = if e.3 { "arrow-cycle" } else { "arrow" };
        let _ = write!(
            out,
            "<path class=\"edge {}{class}\" data-from=\"{}\" data-to=\"{}\" d=\"M{x1:.1},{ay:.1} C{c1:.1},{ay:.1} {c2:.1},{by:.1} {x2:.1},{by:.1}\" marker-end=\"url(#{marker})\"><title>",
            e.2.class(),
            key_id(e.0),
            key_id(e.1),
        );
        push_text(out, &nodes[a].label);
        let _ = write!(out, " {} ", edge_verb(e.2));
        push_text(out, &nodes[b].label);
        out.push_str("</title></path>\n");
        let (mx, my) = ((x1 + x2) / 2.0, (ay + by) / 2.0 - 3.0 + fan);
        let _ = writeln!(
            out,
            "<text class=\"edge-label{class}\" x=\"{mx:.1}\" y=\"{my:.1}\">{}</text>",
            edge_verb(e.2)
        );
    }
    for (i, n) in nodes.iter().enumerate() {
        let (x, y) = pos(i);
        let kind = match n.key {
            NodeKey::Task(_) => "task",
            NodeKey::Resource(_) => "resource",
        };
        let class = if n.cycle { " cycle" } else { "" };
        let rx = if kind == "task" { NODE_H / 2.0 } else { 3.0 };
        let _ = write!(
            out,
            "<g class=\"node {kind}{class}\" data-node=\"{}\"><rect x=\"{x:.1}\" y=\"{y:.1}\" width=\"{NODE_W}\" height=\"{NODE_H}\" rx=\"{rx}\"/><title>",
            key_id(n.key)
        );
        push_text(out, &n.label);
        out.push('\n');
        push_text(out, &n.detail);
        let _ = writeln!(
            out,
            "</title><text x=\"{:.1}\" y=\"{:.1}\" class=\"node-label\">{}</text><text x=\"{:.1}\" y=\"{:.1}\" class=\"node-detail\">{}</text></g>",
            x + 8.0,
            y + 16.0,
            text(&truncate(&n.label, 30)),
            x + 8.0,
            y + 30.0,
            text(&truncate(&n.detail, 32)),
        );
    }
    out.push_str("</svg>\n");
    Drawn {
        nodes: nodes.len(),
        edges: edges.len(),
        left_out,
    }
}

type Edge = (NodeKey, NodeKey, EdgeKind, bool);

/// The nodes and edges to draw: every resource someone holds or waits for,
/// its holders and waiters, and the tasks owning handles to it.
fn build(snap: &Snapshot) -> (Vec<Node>, Vec<Edge>, usize) {
    let (cycle_waits, cycle_holds) = crate::chains::cycle_edges(snap);
    // A node is on a cycle when it is a waiter or a resource of one.
    let on_cycles: HashSet<NodeKey> = cycle_waits
        .iter()
        .flat_map(|&(t, r)| [NodeKey::Task(t), NodeKey::Resource(r)])
        .collect();

    let mut nodes: Vec<Node> = Vec::new();
    let mut seen: HashSet<NodeKey> = HashSet::new();
    let mut edges: BTreeSet<Edge> = BTreeSet::new();
    let add = |nodes: &mut Vec<Node>, key: NodeKey, label: String, detail: String| {
        nodes.push(Node {
            key,
            label,
            detail,
            cycle: on_cycles.contains(&key),
        });
    };
    let task_label = |t: TaskRef, name: &str| format!("{name} ({})", task_ref(t));
    for r in &snap.resources {
        if r.holders.is_empty() && r.waiters.is_empty() {
            continue;
        }
        let key = NodeKey::Resource(r.id);
        let mut detail = r.location.clone();
        if let Some(p) = r.permits {
            detail = format!("{p} permit(s) free · {detail}");
        }
        if r.extra_holders > 0 {
            detail = format!("+{} unnamed holder(s) · {detail}", r.extra_holders);
        }
        if seen.insert(key) {
            add(
                &mut nodes,
                key,
                format!("{} \"{}\"", r.kind.name(), r.name),
                detail,
            );
        }
        // Holds edges run from the resource to the task, waits edges the
        // other way.
        let parties = r.holders.iter().map(|h| (h, EdgeKind::Holds));
        for (party, kind) in parties.chain(r.waiters.iter().map(|w| (w, EdgeKind::Waits))) {
            let task = NodeKey::Task(party.task);
            if seen.insert(task) {
                let label = task_label(party.task, &party.task_name);
                add(&mut nodes, task, label, party.location.clone());
            }
            let edge = match kind {
                EdgeKind::Holds => (key, task, kind, cycle_holds.contains(&(r.id, party.task))),
                _ => (task, key, kind, cycle_waits.contains(&(party.task, r.id))),
            };
            edges.insert(edge);
        }
    }
    // Ownership edges, where they add to holds and waits: a task whose
    // state owns a handle to a resource in the graph.
    for r in &snap.resources {
        if !seen.contains(&NodeKey::Resource(r.id)) {
            continue;
        }
        for o in &r.owners {
            let Some(t) = o.task else { continue };
            let task = NodeKey::Task(t);
            if !seen.contains(&task) {
                if nodes.len() >= MAX_NODES {
                    continue;
                }
                seen.insert(task);
                add(&mut nodes, task, task_label(t, &o.name), String::new());
            }
            let kind = EdgeKind::Owns(o.handle);
            edges.insert((NodeKey::Task(t), NodeKey::Resource(r.id), kind, false));
        }
    }
    let mut edges: Vec<Edge> = edges.into_iter().collect();
    let mut left_out = 0;
    if nodes.len() > MAX_NODES {
        let keep: BTreeSet<NodeKey> = snap
            .chains
            .iter()
            .flat_map(|c| c.links.iter())
            .chain(snap.cycles.iter().flat_map(|c| c.links.iter()))
            .flat_map(|l| {
                std::iter::once(NodeKey::Task(l.waiter.task))
                    .chain(std::iter::once(NodeKey::Resource(l.resource)))
                    .chain(l.holders.iter().map(|h| NodeKey::Task(h.task)))
            })
            .collect();
        let before = nodes.len();
        let mut kept: Vec<Node> = nodes
            .into_iter()
            .filter(|n| keep.contains(&n.key))
            .collect();
        kept.truncate(MAX_NODES);
        left_out = before - kept.len();
        let present: BTreeSet<NodeKey> = kept.iter().map(|n| n.key).collect();
        edges.retain(|e| present.contains(&e.0) && present.contains(&e.1));
        nodes = kept;
    }
    (nodes, edges, left_out)
}

fn edge_verb(kind: EdgeKind) -> &'static str {
    match kind {
        EdgeKind::Holds => "held by",
        EdgeKind::Waits => "waits for",
        EdgeKind::Owns(HandleKind::Sender) => "owns a sender of",
        EdgeKind::Owns(HandleKind::Receiver) => "owns the receiver of",
        EdgeKind::Owns(HandleKind::Guard) => "owns a guard of",
        EdgeKind::Owns(HandleKind::Join) => "owns the join handle of",
        EdgeKind::Owns(HandleKind::Lock) => "may lock",
    }
}

fn task_key(t: TaskRef) -> String {
    match t {
        TaskRef::Task(id) => id.to_string(),
        TaskRef::TokioTask(id) => format!("tokio{id}"),
        TaskRef::Thread(n) => format!("thread{n}"),
    }
}

/// Layers (columns) and positions within them for `n` nodes and `edges`.
fn layout(n: usize, edges: &[(usize, usize)]) -> (Vec<usize>, Vec<usize>) {
    // Break cycles: edges back to a node on the depth-first stack point
    // the other way for layering only.
    let mut out: Vec<Vec<usize>> = vec![Vec::new(); n];
    for &(a, b) in edges {
        if a != b {
            out[a].push(b);
        }
    }
    let mut state = vec![0u8; n]; // 0 new, 1 on stack, 2 done
    let mut dag: Vec<(usize, usize)> = Vec::with_capacity(edges.len());
    for start in 0..n {
        if state[start] != 0 {
            continue;
        }
        let mut stack: Vec<(usize, usize)> = vec![(start, 0)];
        state[start] = 1;
        while let Some(&mut (v, ref mut next)) = stack.last_mut() {
            if *next < out[v].len() {
                let w = out[v][*next];
                *next += 1;
                match state[w] {
                    0 => {
                        dag.push((v, w));
                        state[w] = 1;
                        stack.push((w, 0));
                    }
                    1 => dag.push((w, v)),
                    _ => dag.push((v, w)),
                }
            } else {
                state[v] = 2;
                stack.pop();
            }
        }
    }
    dag.sort_unstable();
    dag.dedup();
    // Longest path from the sources, in topological order (Kahn).
    let mut indeg = vec![0usize; n];
    let mut succ: Vec<Vec<usize>> = vec![Vec::new(); n];
    let mut pred: Vec<Vec<usize>> = vec![Vec::new(); n];
    for &(a, b) in &dag {
        indeg[b] += 1;
        succ[a].push(b);
        pred[b].push(a);
    }
    let mut layer = vec![0usize; n];
    let mut queue: Vec<usize> = (0..n).filter(|&v| indeg[v] == 0).collect();
    let mut i = 0;
    while i < queue.len() {
        let v = queue[i];
        i += 1;
        for &w in &succ[v] {
            layer[w] = layer[w].max(layer[v] + 1);
            indeg[w] -= 1;
            if indeg[w] == 0 {
                queue.push(w);
            }
        }
    }
    // Order within layers: first appearance, then barycentre sweeps down
    // and up, which untangle most crossings of graphs this size.
    let layers = layer.iter().copied().max().unwrap_or(0) + 1;
    let mut by_layer: Vec<Vec<usize>> = vec![Vec::new(); layers];
    for v in 0..n {
        by_layer[layer[v]].push(v);
    }
    let mut order = vec![0usize; n];
    let renumber = |by_layer: &Vec<Vec<usize>>, order: &mut Vec<usize>| {
        for l in by_layer {
            for (i, &v) in l.iter().enumerate() {
                order[v] = i;
            }
        }
    };
    renumber(&by_layer, &mut order);
    for sweep in 0..4 {
        let down = sweep % 2 == 0;
        let range: Vec<usize> = if down {
            (1..layers).collect()
        } else {
            (0..layers.saturating_sub(1)).rev().collect()
        };
        for l in range {
            let neighbours = if down { &pred } else { &succ };
            let mut keyed: Vec<(f64, usize, usize)> = by_layer[l]
                .iter()
                .map(|&v| {
                    let ns = &neighbours[v];
                    let bary = if ns.is_empty() {
                        order[v] as f64
                    } else {
                        ns.iter().map(|&u| order[u] as f64).sum::<f64>() / ns.len() as f64
                    };
                    (bary, order[v], v)
                })
                .collect();
            keyed.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
            by_layer[l] = keyed.into_iter().map(|k| k.2).collect();
            renumber(&by_layer, &mut order);
        }
    }
    (layer, order)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cycle_is_layered_without_looping_and_every_node_placed() {
        // 0 -> 1 -> 2 -> 0, and 3 -> 1.
        let (layer, order) = layout(4, &[(0, 1), (1, 2), (2, 0), (3, 1)]);
        assert_eq!(layer.len(), 4);
        // The back edge 2 -> 0 is turned round: 0 before 1 before 2.
        assert!(layer[0] < layer[1] && layer[1] < layer[2], "{layer:?}");
        // No two nodes share a slot.
        let mut slots: Vec<(usize, usize)> = layer.iter().copied().zip(order).collect();
        slots.sort_unstable();
        slots.dedup();
        assert_eq!(slots.len(), 4);
    }

    #[test]
    fn the_fixture_cycle_is_drawn_red_and_names_are_escaped() {
        let json = include_str!("../../../turbowish-snapshot/tests/fixtures/service.json");
        let mut snap: Snapshot = serde_json::from_str(json).unwrap();
        snap.resources[0].name = "<script>alert(1)</script>".to_owned();
        let mut out = String::new();
        let drawn = render(&mut out, &snap);
        assert!(drawn.nodes > 0 && drawn.edges > 0);
        assert!(!out.contains("<script>"));
        let cycle = &snap.cycles[0];
        for link in &cycle.links {
            let waiter = format!("data-node=\"task-{}\"", task_key(link.waiter.task));
            let node = out.lines().find(|l| l.contains(&waiter)).unwrap();
            assert!(node.starts_with("<g class=\"node task cycle\""), "{node}");
            let edge = format!(
                "class=\"edge waits cycle\" data-from=\"task-{}\" data-to=\"resource-{}\"",
                task_key(link.waiter.task),
                link.resource
            );
            assert!(out.contains(&edge), "no {edge}");
        }
    }
}
