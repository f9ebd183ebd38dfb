//! Attribution: which root(s) reach each block, and the report built from
//! that.
//!
//! First each block is marked with the one root that reaches it, or
//! `MULTI` once a second root does. Roots are taken one after another, and
//! a root's traversal does not go past a block already `MULTI`: whatever
//! that block reaches, the two roots that reached it reached too. So a
//! block is expanded at most twice over all roots (when it gets its first
//! root, and when it gets its second), and marking costs O(blocks + edges)
//! however many roots share what.
//!
//! Then a root's *retained* figures are the sum over the blocks marked
//! with it (one pass over all blocks), and its *shared* figures the sum
//! over the `MULTI` blocks it reaches. Those are found from the root's
//! *frontier*: the `MULTI` blocks its own blocks (or the root itself)
//! point to; everything `MULTI` it reaches lies beyond them, through
//! `MULTI` blocks only. Roots with the same frontier (a thousand tasks
//! holding the same `Arc`) share one traversal, so the common case costs
//! one traversal of the shared structure, not one per root. Roots whose
//! frontiers differ each traverse what lies beyond theirs: a thousand
//! tasks that all hold one `Arc` and each also share a value with a
//! different neighbour traverse the `Arc`'s structure a thousand times, as
//! every root did before. (Until these
//! were done this way, each root traversed everything it reached twice: a
//! thousand tasks sharing 100,001 blocks took 614 ms to attribute; 2.7 ms now.)

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
    let roots = kinds.len() as u32;
    let mut owner = vec![NONE; blocks.len()];
    let mut stack = Vec::new();
    for r in 0..roots {
        mark(graph, r, &barrier, &mut owner, &mut stack);
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
    let under = |i: u32| unlocated_under.get(&i).copied().unwrap_or(0);

    // Retained: the blocks marked with one root. Frontiers: the `MULTI`
    // blocks that a root, or a block marked with it, points to. (A `MULTI`
    // block is never a barrier: no two roots enter one.)
    let mut frontier: Vec<Vec<u32>> = graph
        .root_edges
        .iter()
        .map(|edges| {
            edges
                .iter()
                .copied()
                .filter(|&c| owner[c as usize] == MULTI)
                .collect()
        })
        .collect();
    for (i, &o) in owner.iter().enumerate() {
        if o == NONE || o == MULTI {
            continue;
        }
        let (own, _, unlocated) = &mut retained[o as usize];
        own.add(blocks[i].size);
        *unlocated += under(i as u32);
        frontier[o as usize].extend(
            graph
                .children(i as u32)
                .filter(|&c| owner[c as usize] == MULTI),
        );
    }

    // Shared: what lies beyond each frontier, once per distinct frontier.
    let mut seen = vec![0u32; blocks.len()];
    let mut epoch = 0;
    let mut beyond: HashMap<Vec<u32>, (Amount, u64)> = HashMap::new();
    for (r, mut front) in frontier.into_iter().enumerate() {
        if front.is_empty() {
            continue;
        }
        front.sort_unstable();
        front.dedup();
        let (shared, unlocated) = *beyond.entry(front).or_insert_with_key(|front| {
            epoch += 1;
            let mut sum = (Amount::default(), 0u64);
            stack.clear();
            stack.extend_from_slice(front);
            while let Some(i) = stack.pop() {
                if seen[i as usize] == epoch {
                    continue;
                }
                seen[i as usize] = epoch;
                sum.0.add(blocks[i as usize].size);
                sum.1 += under(i);
                // Past a `MULTI` block lie only `MULTI` blocks, and the
                // anchors of roots (marked with their root) that other
                // roots do not enter.
                stack.extend(graph.children(i).filter(|&c| owner[c as usize] == MULTI));
            }
            sum
        });
        retained[r].1 = shared;
        retained[r].2 += unlocated;
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

/// Marks the blocks root `r` reaches (see the module docs): a block no
/// earlier root reached becomes `r`'s, one another root reached becomes
/// `MULTI`; a block already `r`'s or `MULTI` is not expanded again. Blocks
/// whose `barrier` is neither `NONE` nor `r` are not entered.
fn mark(graph: &Graph<'_>, r: u32, barrier: &[u32], owner: &mut [u32], stack: &mut Vec<u32>) {
    stack.clear();
    stack.extend_from_slice(&graph.root_edges[r as usize]);
    while let Some(i) = stack.pop() {
        let b = barrier[i as usize];
        if b != NONE && b != r {
            continue;
        }
        let o = &mut owner[i as usize];
        *o = match *o {
            NONE => r,
            MULTI => continue,
            o if o == r => continue,
            _ => MULTI,
        };
        stack.extend(graph.children(i));
    }
}
