//! Attribution: which root(s) reach each block, and the report built from
//! that.
//!
//! Two traversals of the graph per root. The first marks each block with
//! the one root that reaches it, or `MULTI` once a second root does; the
//! second sums, per root, the blocks it reaches that are its alone
//! (retained) and those it shares. Cost: O(sum over roots of the blocks
//! each reaches), so a large structure shared by many roots is traversed
//! once per root (tracing and scanning happened once, in discovery).

use std::collections::{BTreeMap, HashMap};

use turbowish_alloc::Owner;

use super::graph::{Graph, NIL};
use super::report::{
    Amount, GuardLocation, Holder, LocatedBlock, RootRetained, TaskRetained, TypeCensus,
    Unattributed, WalkReport,
};
use super::RootKind;
use crate::trace::Position;

const NONE: u32 = u32::MAX;
const MULTI: u32 = u32::MAX - 1;

/// Builds the report from a discovered graph; `kinds` are the roots, in
/// the order their edges were recorded.
pub(super) fn attribute(
    graph: &Graph<'_>,
    kinds: &[&RootKind],
    anchors: &[Option<u32>],
    locate: &[usize],
) -> WalkReport {
    let blocks = graph.index.blocks();
    // Blocks a traversal does not enter: a root's own cell or anchor block
    // is entered only from that root (a task whose state holds a waker or a
    // reference to another root's value does not own that root's state),
    // and TurboWish's bookkeeping (the task registry reached through a
    // task's header) is no root's.
    let mut barrier: Vec<u32> = blocks
        .iter()
        .map(|b| {
            if b.owner == Owner::Internal {
                MULTI
            } else {
                NONE
            }
        })
        .collect();
    for (r, anchor) in anchors.iter().enumerate() {
        if let Some(i) = anchor {
            barrier[*i as usize] = r as u32;
        }
    }
    let mut owner = vec![NONE; blocks.len()];
    let mut seen = vec![0u32; blocks.len()];
    let mut stack = Vec::new();
    let roots = kinds.len() as u32;

    for r in 0..roots {
        traverse(graph, r, r + 1, &barrier, &mut seen, &mut stack, |i| {
            let o = &mut owner[i as usize];
            *o = match *o {
                NONE => r,
                o if o == r => r,
                _ => MULTI,
            };
        });
    }

    // Unlocated estimates under a block count for whoever reaches the block.
    let mut unlocated_under: HashMap<u32, u64> = HashMap::new();
    let mut retained = vec![(Amount::default(), Amount::default(), 0u64); kinds.len()];
    for u in &graph.unlocated {
        match u.position {
            Position::Root(r) => retained[r as usize].2 += u.estimated as u64,
            Position::Block(b) => *unlocated_under.entry(b).or_default() += u.estimated as u64,
        }
    }
    for r in 0..roots {
        let (own, shared, unlocated) = &mut retained[r as usize];
        traverse(
            graph,
            r,
            roots + r + 1,
            &barrier,
            &mut seen,
            &mut stack,
            |i| {
                let size = blocks[i as usize].size;
                if owner[i as usize] == MULTI {
                    shared.add(size);
                } else {
                    own.add(size);
                }
                if let Some(bytes) = unlocated_under.get(&i) {
                    *unlocated += bytes;
                }
            },
        );
    }

    let holder = |position: Position| -> Option<Holder> {
        let o = match position {
            Position::Root(r) => r,
            Position::Block(b) => owner[b as usize],
        };
        match o {
            NONE => None,
            MULTI => Some(Holder::Shared),
            r => Some(kinds[r as usize].holder()),
        }
    };

    let mut report = WalkReport::default();
    for &start in locate {
        let Some(i) = graph.index.index_of(start) else {
            continue;
        };
        let block = &blocks[i];
        if block.start == start {
            report.located.push(LocatedBlock {
                start,
                size: block.size,
                holder: holder(Position::Block(i as u32)),
            });
        }
    }
    report.located.sort_by_key(|b| b.start);
    report.located.dedup_by_key(|b| b.start);
    for (kind, (own, shared, unlocated)) in kinds.iter().zip(retained) {
        match kind {
            RootKind::Task { id, name } => report.tasks.push(TaskRetained {
                id: *id,
                name: name.clone(),
                retained: own,
                shared,
                unlocated_bytes: unlocated,
            }),
            RootKind::Named(name) => report.roots.push(RootRetained {
                name: name.clone(),
                retained: own,
                shared,
                unlocated_bytes: unlocated,
            }),
        }
    }

    let mut dark: BTreeMap<Owner, Amount> = BTreeMap::new();
    for (block, &o) in blocks.iter().zip(&owner) {
        if o == NONE {
            dark.entry(block.owner).or_default().add(block.size);
        }
    }
    report.unattributed = dark
        .into_iter()
        .map(|(owner, amount)| Unattributed { owner, amount })
        .collect();
    report
        .unattributed
        .sort_by_key(|u| std::cmp::Reverse(u.amount.bytes));

    let mut census: HashMap<(u32, u32), TypeCensus> = HashMap::new();
    let mut count = |o: u32, type_id: u32, bytes: usize, used: usize| {
        if o == NONE || type_id == NIL {
            return;
        }
        let row = census.entry((o, type_id)).or_insert_with(|| TypeCensus {
            holder: match o {
                MULTI => Holder::Shared,
                r => kinds[r as usize].holder(),
            },
            type_name: graph.types[type_id as usize],
            objects: 0,
            bytes: 0,
            slack: 0,
        });
        row.objects += 1;
        row.bytes += bytes as u64;
        if used != usize::MAX {
            row.slack += bytes.saturating_sub(used) as u64;
        }
    };
    for (i, node) in graph.nodes.iter().enumerate() {
        count(owner[i], node.type_id, blocks[i].size, node.used);
    }
    for u in &graph.unlocated {
        let o = match u.position {
            Position::Root(r) => r,
            Position::Block(b) => owner[b as usize],
        };
        count(o, u.type_id, u.estimated, u.used);
    }
    report.census = census.into_values().collect();
    report.census.sort_by(|a, b| {
        b.bytes
            .cmp(&a.bytes)
            .then_with(|| a.type_name.cmp(b.type_name))
            .then_with(|| a.holder.cmp(&b.holder))
    });

    for g in &graph.guards {
        let Some(holder) = holder(g.position) else {
            continue;
        };
        if report
            .guards
            .iter()
            .any(|seen| seen.resource_id == g.resource_id && seen.holder == holder)
        {
            // Found twice (traced and by its mark): one guard.
            continue;
        }
        let path = match &g.path {
            Some(path) => path.clone(),
            None => match &holder {
                Holder::Task { name, .. } | Holder::Root { name } => {
                    format!("{name} › (opaque state)")
                }
                Holder::Shared => "(opaque state shared by several roots)".to_owned(),
            },
        };
        report.guards.push(GuardLocation {
            resource_id: g.resource_id,
            resource_name: g.resource_name.clone(),
            holder,
            path,
        });
    }
    report
}

/// Depth-first traversal of everything root `r` reaches, calling `visit`
/// once per block; `epoch` marks this traversal in `seen`. Blocks whose
/// `barrier` is neither `NONE` nor `r` are not entered.
fn traverse(
    graph: &Graph<'_>,
    r: u32,
    epoch: u32,
    barrier: &[u32],
    seen: &mut [u32],
    stack: &mut Vec<u32>,
    mut visit: impl FnMut(u32),
) {
    stack.clear();
    stack.extend_from_slice(&graph.root_edges[r as usize]);
    while let Some(i) = stack.pop() {
        if seen[i as usize] == epoch || (barrier[i as usize] != NONE && barrier[i as usize] != r) {
            continue;
        }
        seen[i as usize] = epoch;
        visit(i);
        stack.extend(graph.children(i));
    }
}
