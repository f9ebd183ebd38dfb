//! Attribution: which root(s) reach each block, and the report built from
//! that.
//!
//! First each block is marked with the one root that reaches it, or
//! `MULTI` once a second root does. Roots are taken one after another, and
//! a root's traversal does not go past a block already `MULTI`: whatever
//! that block reaches, the two roots that reached it reached too, but for
//! the later root's own anchor (its cell, which only it enters), and that
//! the later root reaches directly: every root with an anchor has an edge
//! to it (`walk_inner` records one for each). So a
//! block is expanded at most twice over all roots (when it gets its first
//! root, and when it gets its second), and marking costs O(blocks + edges)
//! however many roots share what.
//!
//! Then a root's *retained* figures are the sum over the blocks marked
//! with it (one pass over all blocks), and its *shared* figures the sum
//! over the `MULTI` blocks it reaches. Everything `MULTI` a root reaches
//! lies beyond its *frontier* (the `MULTI` blocks it, or a block marked
//! with it, points to), through `MULTI` blocks only. The set of roots
//! reaching each `MULTI` block is worked out once for all roots: the
//! `MULTI` blocks are condensed into strongly connected components, whose
//! root sets flow from sources to sinks, interned
//! (`shared_by_root_sets`). Should the distinct sets grow past a budget
//! (a few elements per block), each distinct frontier is traversed
//! instead (`shared_by_frontier`).
//!
//! Every root used to traverse all it reached, twice: a thousand tasks
//! sharing a structure of 100,001 blocks (each also sharing a value with
//! its neighbours, values that point at the structure too) took 614 ms to
//! attribute, and takes 9.5 ms with root sets (`cargo bench --bench walk
//! -- shared_by`).

use std::collections::{BTreeMap, HashMap};
use std::hash::BuildHasher;

use turbowish_alloc::Owner;

use super::graph::{BlockOwners, Graph, Marks, MULTI, NIL, NONE};
use super::report::{
    Amount, GuardLocation, Holder, LocatedBlock, RootRetained, TaskRetained, TypeCensus,
    Unattributed, WalkReport,
};
use super::RootKind;
use crate::frame::FramePath;
use crate::ownership::FoundHandle;
use crate::sync::TaskRef;
use crate::trace::Position;

/// Builds the report from a discovered graph; `kinds` are the roots, in
/// the order their edges were recorded.
pub(super) fn attribute(
    graph: &mut Graph<'_>,
    kinds: &[&RootKind],
    anchors: &[Option<u32>],
    locate: &[usize],
) -> WalkReport {
    attribute_with(graph, kinds, anchors, locate, None, None)
}

/// [`attribute`], with the root sets' element budget (see
/// [`shared_by_root_sets`]) and the number of marking workers given, for
/// tests of both ways to the shared figures and of parallel marking.
fn attribute_with(
    graph: &mut Graph<'_>,
    kinds: &[&RootKind],
    anchors: &[Option<u32>],
    locate: &[usize],
    set_budget: Option<usize>,
    workers: Option<usize>,
) -> WalkReport {
    let Marks { owner, frontier } = match workers {
        Some(workers) => graph.mark_with(anchors, workers),
        None => graph.mark(anchors),
    };
    let index = graph.index;

    // Unlocated estimates under a block count for whoever reaches the block.
    let mut unlocated_under: HashMap<u32, u64> = HashMap::new();
    let mut retained = vec![(Amount::default(), Amount::default(), 0u64); kinds.len()];
    for u in &graph.unlocated {
        match u.position {
            Position::Root(r) => retained[r as usize].2 += u.estimated as u64,
            Position::Block(b) => *unlocated_under.entry(b).or_default() += u.estimated as u64,
        }
    }
    let under = |i: u32| {
        if unlocated_under.is_empty() {
            0
        } else {
            unlocated_under.get(&i).copied().unwrap_or(0)
        }
    };

    // Retained: the blocks marked with one root.
    for (i, o) in owner.iter().enumerate() {
        if o == NONE || o == MULTI {
            continue;
        }
        let (own, _, unlocated) = &mut retained[o as usize];
        own.add(index.size(i));
        *unlocated += under(i as u32);
    }

    // Shared: the `MULTI` blocks beyond each root's frontier, in the graph
    // of `MULTI` blocks alone (numbered in block order).
    let multi = MultiGraph::new(graph, &owner);

    let mut fronts: Vec<Vec<u32>> = vec![Vec::new(); kinds.len()];
    for &(r, i) in &frontier {
        fronts[r as usize].push(multi.id(i));
    }
    // Its pairs now live in `fronts`; the root sets below are the walk's
    // last peak of memory.
    drop(frontier);
    let weight = |k: u32| {
        let i = multi.blocks[k as usize];
        (index.size(i as usize), under(i))
    };
    let budget = set_budget.unwrap_or(4 * (multi.len() + fronts.len()) + (1 << 16));
    let shared = shared_by_root_sets(&multi, &fronts, weight, budget)
        .unwrap_or_else(|| shared_by_frontier(&multi, &fronts, weight));

    for (r, (amount, unlocated)) in shared.into_iter().enumerate() {
        retained[r].1 = amount;
        retained[r].2 += unlocated;
    }

    let holder = |position: Position| -> Option<Holder> {
        let o = match position {
            Position::Root(r) => r,
            Position::Block(b) => owner.get(b as usize),
        };
        match o {
            NONE => None,
            MULTI => Some(Holder::Shared),
            r => Some(kinds[r as usize].holder()),
        }
    };

    let mut report = WalkReport::default();
    for &start in locate {
        let Some(i) = index.index_of(start) else {
            continue;
        };
        if index.start(i) == start {
            report.located.push(LocatedBlock {
                start,
                size: index.size(i),
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
    for (i, o) in owner.iter().enumerate() {
        if o == NONE {
            dark.entry(index.owner(i)).or_default().add(index.size(i));
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
    for (&i, node) in &graph.typed {
        count(
            owner.get(i as usize),
            node.type_id,
            index.size(i as usize),
            node.used,
        );
    }
    for u in &graph.unlocated {
        let o = match u.position {
            Position::Root(r) => r,
            Position::Block(b) => owner.get(b as usize),
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

    // An anchor block (a task's root cell) is its root's barrier.
    let is_anchor = |b: u32| anchors.contains(&Some(b));
    // Handles are in block order, so a task's often come in runs: the last
    // task's parked frame path is kept for the next handle.
    let mut parked: Option<(u64, Option<FramePath>)> = None;
    for h in &graph.handles {
        let (task, name) = match holder(h.position) {
            Some(Holder::Task { id, name }) => (Some(TaskRef::Task(id)), name),
            Some(Holder::Root { name }) => (None, name),
            Some(Holder::Shared) | None => continue,
        };
        let path = match (&h.path, h.position) {
            (Some(path), _) => path.clone(),
            (None, Position::Block(b)) if task.is_some() && is_anchor(b) => {
                crate::ownership::future_state_path(h.offset)
            }
            (None, _) => format!("{name} › heap block +{:#x}", h.offset),
        };
        let parked_in = match task {
            Some(TaskRef::Task(id)) => match parked {
                Some((seen, path)) if seen == id => path,
                _ => {
                    let path = crate::registry::parked_path(id);
                    parked = Some((id, path));
                    path
                }
            },
            _ => None,
        };
        report.handles.push(FoundHandle {
            resource_id: h.handle.resource_id,
            slot: h.handle.slot,
            handle: h.handle.kind,
            task,
            name,
            path,
            parked_in,
        });
    }
    report
}

/// The shared figures (amount, unlocated estimates) of every root, from
/// the set of roots that reach each `MULTI` block: the `MULTI` blocks
/// and their edges are condensed into strongly connected components,
/// and each component's root set is the union of the sets flowing into
/// it (from the roots whose frontier holds one of its blocks, and from
/// the components that point to it), taken sources first. Sets are
/// interned, and a component into which one set flows and which adds no
/// root takes that set as it is, so the common shapes (a large structure
/// every root reaches, values shared by pairs, hubs) cost about one pass
/// over the graph. `None` once the distinct sets hold more than `budget`
/// elements in all (then [`shared_by_frontier`] does it).
fn shared_by_root_sets(
    graph: &MultiGraph,
    frontier: &[Vec<u32>],
    weight: impl Fn(u32) -> (usize, u64),
    budget: usize,
) -> Option<Vec<(Amount, u64)>> {
    let m = graph.len();
    let (comp, count) =
        crate::scc::components(m, 0..m as u32, |v| graph.children(v).iter().copied());
    // Members of each component, in one array (counting sort by component).
    let mut first = vec![0u32; count as usize + 1];
    for &c in &comp {
        first[c as usize + 1] += 1;
    }
    for c in 0..count as usize {
        first[c + 1] += first[c];
    }
    let mut members = vec![0u32; m];
    let mut fill = first.clone();
    for (k, &c) in comp.iter().enumerate() {
        members[fill[c as usize] as usize] = k as u32;
        fill[c as usize] += 1;
    }
    // Each component's own roots: those whose frontier holds a member.
    // (Reserved exactly: grown by doubling, it took twice its size at the
    // walk's peak of memory.)
    let mut seeds: Vec<(u32, u32)> = Vec::with_capacity(frontier.iter().map(Vec::len).sum());
    for (r, front) in frontier.iter().enumerate() {
        seeds.extend(front.iter().map(|&f| (comp[f as usize], r as u32)));
    }
    seeds.sort_unstable();
    seeds.dedup();

    let mut sets = RootSets::new(budget);
    let mut scratch: Vec<u32> = Vec::new();
    // The sets flowing into each component, merged once when it is
    // reached: merging them one edge at a time would intern every partial
    // union (a hub that k differently shared values point to: k²/2
    // elements).
    let mut incoming: Vec<Vec<u32>> = vec![Vec::new(); count as usize];
    let mut of_comp = vec![EMPTY_SET; count as usize];
    let mut next_seed = seeds.len();
    // Tarjan numbers components sinks first: sources first is downwards.
    for c in (0..count).rev() {
        // Seeds sort by component, and components go downwards: the
        // ones of `c` end the seeds not yet taken.
        let mut from = next_seed;
        while from > 0 && seeds[from - 1].0 >= c {
            from -= 1;
        }
        let own = &seeds[from..next_seed];
        next_seed = from;
        let mut into = std::mem::take(&mut incoming[c as usize]);
        into.sort_unstable();
        into.dedup();
        let set = match (into.as_slice(), own.is_empty()) {
            ([], _) => {
                scratch.clear();
                scratch.extend(own.iter().map(|&(_, r)| r));
                sets.intern(&scratch)?
            }
            // One set flows in and the component adds no root it lacks:
            // the common case inside a structure, and for blocks that a
            // structure every root reaches holds, taken without copying
            // (a union per block cost a sort and a hash of the whole set:
            // 1.2 s for 40,000 blocks under 1,000 roots).
            (&[one], _)
                if own
                    .iter()
                    .all(|&(_, r)| sets.get(one).binary_search(&r).is_ok()) =>
            {
                one
            }
            (many, _) => {
                scratch.clear();
                for &id in many {
                    scratch.extend_from_slice(sets.get(id));
                }
                scratch.extend(own.iter().map(|&(_, r)| r));
                scratch.sort_unstable();
                scratch.dedup();
                sets.intern(&scratch)?
            }
        };
        of_comp[c as usize] = set;
        let span = first[c as usize] as usize..first[c as usize + 1] as usize;
        for &k in &members[span] {
            for &w in graph.children(k) {
                let cw = comp[w as usize];
                if cw != c {
                    incoming[cw as usize].push(set);
                }
            }
        }
    }
    let mut totals = vec![(Amount::default(), 0u64); sets.len()];
    for (k, &c) in comp.iter().enumerate() {
        let (size, unlocated) = weight(k as u32);
        let total = &mut totals[of_comp[c as usize] as usize];
        total.0.add(size);
        total.1 += unlocated;
    }
    let mut shared = vec![(Amount::default(), 0u64); frontier.len()];
    for (set, (amount, unlocated)) in totals.iter().enumerate() {
        for &r in sets.get(set as u32) {
            let s = &mut shared[r as usize];
            s.0.bytes += amount.bytes;
            s.0.blocks += amount.blocks;
            s.1 += unlocated;
        }
    }
    Some(shared)
}

/// The `MULTI` blocks and the edges between them, numbered `0..len()` in
/// block order: the graph the shared figures are worked out on, built by
/// expanding each `MULTI` block once more.
struct MultiGraph {
    /// The `MULTI` blocks, sorted.
    blocks: Vec<u32>,
    /// One bit per block, set for the `MULTI` ones, and per word of bits
    /// the number set before it: a block's node in two reads (a binary
    /// search of `blocks` per edge was most of attributing a structure
    /// of 100,000 blocks that 1,000 roots share).
    bits: Vec<u64>,
    before: Vec<u32>,
    /// Per node, where its successors start in `targets`.
    offsets: Vec<u32>,
    targets: Vec<u32>,
}

impl MultiGraph {
    fn new(graph: &mut Graph<'_>, owner: &BlockOwners) -> MultiGraph {
        let blocks: Vec<u32> = (0..owner.len() as u32)
            .filter(|&i| owner.get(i as usize) == MULTI)
            .collect();
        let mut bits = vec![0u64; owner.len().div_ceil(64)];
        for &i in &blocks {
            bits[i as usize / 64] |= 1 << (i % 64);
        }
        let mut before = Vec::with_capacity(bits.len());
        let mut count = 0u32;
        for word in &bits {
            before.push(count);
            count += word.count_ones();
        }
        let rank = |i: u32| {
            let (w, b) = (i as usize / 64, i % 64);
            before[w] + (bits[w] & ((1u64 << b) - 1)).count_ones()
        };
        let mut offsets = Vec::with_capacity(blocks.len() + 1);
        let mut targets = Vec::new();
        let mut out = Vec::new();
        for &i in &blocks {
            offsets.push(targets.len() as u32);
            out.clear();
            graph.children(i, &mut out);
            out.sort_unstable();
            out.dedup();
            for &w in &out {
                if owner.get(w as usize) == MULTI {
                    targets.push(rank(w));
                }
            }
        }
        offsets.push(targets.len() as u32);
        MultiGraph {
            blocks,
            bits,
            before,
            offsets,
            targets,
        }
    }

    fn len(&self) -> usize {
        self.blocks.len()
    }

    /// The node of `MULTI` block `i`.
    fn id(&self, i: u32) -> u32 {
        let (w, b) = (i as usize / 64, i % 64);
        debug_assert!(self.bits[w] & (1 << b) != 0, "a MULTI block");
        self.before[w] + (self.bits[w] & ((1u64 << b) - 1)).count_ones()
    }

    fn children(&self, k: u32) -> &[u32] {
        &self.targets[self.offsets[k as usize] as usize..self.offsets[k as usize + 1] as usize]
    }
}

/// The empty root set's id in [`RootSets`].
const EMPTY_SET: u32 = 0;

/// Interned sets of roots (sorted, without repeats); refuses to hold more
/// than a budget of elements in all.
///
/// Every set is held once, back to back in one array: a walk of 4,000,000
/// blocks interns a set for each of 40,000 shared values, and a `Vec` per
/// set, kept again as a map key, cost 8 MB, two bytes per block of the
/// walk at its peak of memory.
struct RootSets {
    /// The sets' roots, set after set.
    roots: Vec<u32>,
    /// Set `k` is `roots[ends[k - 1]..ends[k]]` (`ends[0]` is the empty
    /// set's end, 0).
    ends: Vec<u32>,
    /// The newest set with a hash, by hash.
    by_hash: HashMap<u64, u32>,
    /// Per set, the next older set with its hash, or [`NONE`].
    older: Vec<u32>,
    hasher: std::hash::RandomState,
    budget: usize,
}

impl RootSets {
    fn new(budget: usize) -> RootSets {
        RootSets {
            roots: Vec::new(),
            ends: vec![0],
            by_hash: HashMap::new(),
            older: vec![NONE],
            hasher: std::hash::RandomState::new(),
            // (Set bounds are `u32`s.)
            budget: budget.min(u32::MAX as usize),
        }
    }

    fn len(&self) -> usize {
        self.ends.len()
    }

    fn get(&self, id: u32) -> &[u32] {
        let id = id as usize;
        let start = if id == 0 { 0 } else { self.ends[id - 1] };
        &self.roots[start as usize..self.ends[id] as usize]
    }

    /// The id of `roots` (sorted, without repeats); `None` past the budget.
    fn intern(&mut self, roots: &[u32]) -> Option<u32> {
        if roots.is_empty() {
            return Some(EMPTY_SET);
        }
        let hash = self.hasher.hash_one(roots);
        let newest = self.by_hash.get(&hash).copied().unwrap_or(NONE);
        let mut id = newest;
        while id != NONE {
            if self.get(id) == roots {
                return Some(id);
            }
            id = self.older[id as usize];
        }
        if self.roots.len() + roots.len() > self.budget {
            return None;
        }
        self.roots.extend_from_slice(roots);
        let id = self.ends.len() as u32;
        self.ends.push(self.roots.len() as u32);
        self.older.push(newest);
        self.by_hash.insert(hash, id);
        Some(id)
    }
}

/// The shared figures of every root by a traversal beyond its frontier,
/// once per distinct frontier: exact, and quick when many roots point into
/// shared memory at the same places, but a traversal per root when every
/// frontier differs. The fallback of [`shared_by_root_sets`].
fn shared_by_frontier(
    graph: &MultiGraph,
    frontier: &[Vec<u32>],
    weight: impl Fn(u32) -> (usize, u64),
) -> Vec<(Amount, u64)> {
    let mut seen = vec![0u32; graph.len()];
    let mut epoch = 0;
    let mut stack = Vec::new();
    let mut beyond: HashMap<&[u32], (Amount, u64)> = HashMap::new();
    frontier
        .iter()
        .map(|front| {
            if front.is_empty() {
                return (Amount::default(), 0);
            }
            *beyond.entry(front).or_insert_with(|| {
                epoch += 1;
                let mut sum = (Amount::default(), 0u64);
                stack.clear();
                stack.extend_from_slice(front);
                while let Some(i) = stack.pop() {
                    if seen[i as usize] == epoch {
                        continue;
                    }
                    seen[i as usize] = epoch;
                    let (size, unlocated) = weight(i);
                    sum.0.add(size);
                    sum.1 += unlocated;
                    // Past a `MULTI` block lie only `MULTI` blocks, and the
                    // anchors of roots (marked with their root) that other
                    // roots do not enter.
                    stack.extend_from_slice(graph.children(i));
                }
                sum
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::walk::index::{Block, BlockIndex};

    /// `n` made-up blocks `spacing` bytes apart, about one in
    /// `internal_in` TurboWish's own: for graphs given edge by edge, whose
    /// blocks are never read.
    fn made_up_index(
        n: usize,
        spacing: usize,
        internal_in: usize,
        next: &mut impl FnMut(usize) -> usize,
    ) -> BlockIndex {
        let blocks: Vec<Block> = (0..n)
            .map(|i| Block {
                start: 0x10_0000 + i * spacing,
                size: 16 + (i * 7) % (spacing - 16),
                owner: if next(internal_in) == 0 {
                    Owner::Internal
                } else {
                    Owner::Main
                },
            })
            .collect();
        // SAFETY: the walk's scanner never runs on these graphs (they are
        // made `without_reads`), so the made-up addresses are never read.
        unsafe { BlockIndex::new(blocks) }.unwrap()
    }

    /// Roots `0..roots` as tasks `t0`, `t1`, ….
    fn task_kinds(roots: usize) -> Vec<RootKind> {
        (0..roots)
            .map(|r| RootKind::Task {
                id: r as u64,
                name: format!("t{r}"),
            })
            .collect()
    }

    /// Marking shared out among workers gives every block the owner one
    /// worker gives it, and the same figures, on graphs big enough that
    /// the workers run at once: each root has a region of its own (some
    /// blocks in it TurboWish's), its blocks point within it and now and
    /// then anywhere, so roots race into each other's regions.
    #[test]
    fn parallel_marks_are_one_workers_marks() {
        let mut next = super::super::test_rng(0x2545_f491_4f6c_dd1d);
        for round in 0..8 {
            let roots = 2 + next(30);
            let region = 2_000 + next(3_000);
            let n = roots * region;
            let index = made_up_index(n, 0x40, 40, &mut next);
            let mut graph = Graph::new(&index, roots, Default::default()).without_reads();
            let anchors: Vec<Option<u32>> = (0..roots)
                .map(|r| (next(3) != 0).then_some((r * region) as u32))
                .collect();
            // A block in the region from `base`, or one in `anywhere` a
            // block anywhere.
            let target = |next: &mut dyn FnMut(usize) -> usize, base: usize, anywhere: usize| {
                let t = if next(anywhere) == 0 {
                    next(n)
                } else {
                    base + next(region)
                };
                t as u32
            };
            for (r, anchor) in anchors.iter().enumerate() {
                for _ in 0..1 + next(3) {
                    let t = target(&mut next, r * region, 4);
                    graph.conservative_edge(Position::Root(r as u32), t);
                }
                if let Some(a) = *anchor {
                    graph.conservative_edge(Position::Root(r as u32), a);
                }
            }
            for i in 0..n {
                for _ in 0..1 + next(2) {
                    let t = target(&mut next, i / region * region, 60);
                    graph.conservative_edge(Position::Block(i as u32), t);
                }
            }
            let one = graph.mark_with(&anchors, 1);
            for workers in [2, 4] {
                let many = graph.mark_with(&anchors, workers);
                assert!(
                    one.owner.iter().eq(many.owner.iter()),
                    "round {round}, {workers} workers"
                );
            }
            assert!(one.owner.iter().any(|o| o == MULTI), "round {round}");
            assert!(one.owner.iter().any(|o| o < MULTI), "round {round}");
            let kinds = task_kinds(roots);
            let kinds: Vec<&RootKind> = kinds.iter().collect();
            let alone = attribute_with(&mut graph, &kinds, &anchors, &[], None, Some(1));
            let shared_out = attribute_with(&mut graph, &kinds, &anchors, &[], None, Some(2));
            assert_eq!(alone.tasks, shared_out.tasks, "round {round}");
        }
    }

    /// Both ways to the shared figures (root sets, and the traversal per
    /// distinct frontier they fall back to) agree with each other and with
    /// each root's reach worked out on its own, on random graphs with
    /// cycles, hubs, anchors reached from elsewhere, roots without an
    /// anchor, and TurboWish blocks.
    #[test]
    fn root_sets_and_frontier_traversals_agree_with_brute_force() {
        let mut next = super::super::test_rng(0x9e37_79b9_7f4a_7c15);
        for round in 0..300 {
            let n = 1 + next(150);
            let roots = 1 + next(12);
            let index = made_up_index(n, 0x100, 25, &mut next);
            let mut graph = Graph::new(&index, roots, Default::default()).without_reads();
            let anchors: Vec<Option<u32>> = (0..roots)
                .map(|r| (r < n && next(4) != 0).then_some(r as u32))
                .collect();
            let hubs: Vec<u32> = (0..3).map(|_| next(n) as u32).collect();
            let mut root_edges = vec![Vec::new(); roots];
            let mut edges = vec![Vec::new(); n];
            for r in 0..roots {
                let mut targets: Vec<u32> = anchors[r].into_iter().collect();
                for _ in 0..next(3) {
                    targets.push(if next(2) == 0 {
                        hubs[next(3)]
                    } else {
                        next(n) as u32
                    });
                }
                for t in targets {
                    graph.conservative_edge(Position::Root(r as u32), t);
                    root_edges[r].push(t);
                }
            }
            for (i, out) in edges.iter_mut().enumerate() {
                for _ in 0..next(4) {
                    let t = match next(6) {
                        0 => hubs[next(3)],
                        1 => next(roots.min(n)) as u32,
                        _ => next(n) as u32,
                    };
                    if t as usize != i {
                        graph.conservative_edge(Position::Block(i as u32), t);
                        out.push(t);
                    }
                }
            }
            // Estimates of memory no block describes, under roots and
            // blocks: they count for every root that reaches them.
            let mut under = vec![0u64; n];
            let mut at_root = vec![0u64; roots];
            for _ in 0..next(8) {
                let estimated = 1 + next(1000);
                let position = if next(3) == 0 {
                    let r = next(roots);
                    at_root[r] += estimated as u64;
                    Position::Root(r as u32)
                } else {
                    let b = next(n);
                    under[b] += estimated as u64;
                    Position::Block(b as u32)
                };
                graph.unlocated.push(crate::walk::graph::Unlocated {
                    position,
                    type_id: crate::walk::graph::NIL,
                    estimated,
                    used: usize::MAX,
                });
            }
            let kinds = task_kinds(roots);
            let kinds: Vec<&RootKind> = kinds.iter().collect();
            let by_sets = attribute_with(&mut graph, &kinds, &anchors, &[], None, Some(1));
            let by_frontier = attribute_with(&mut graph, &kinds, &anchors, &[], Some(0), Some(1));
            assert_eq!(by_sets.tasks, by_frontier.tasks, "round {round}");
            let in_parallel = attribute_with(&mut graph, &kinds, &anchors, &[], None, Some(3));
            assert_eq!(by_sets.tasks, in_parallel.tasks, "round {round}");

            let enters = |r: usize, i: usize| {
                let internal = index.blocks()[i].owner == Owner::Internal;
                match anchors.iter().position(|a| *a == Some(i as u32)) {
                    // The last root naming it as its anchor owns it.
                    Some(_) => anchors.iter().rposition(|a| *a == Some(i as u32)) == Some(r),
                    None => !internal,
                }
            };
            let reach: Vec<Vec<bool>> = (0..roots)
                .map(|r| {
                    let mut seen = vec![false; n];
                    let mut stack = root_edges[r].clone();
                    while let Some(i) = stack.pop() {
                        let i = i as usize;
                        if seen[i] || !enters(r, i) {
                            continue;
                        }
                        seen[i] = true;
                        stack.extend(&edges[i]);
                    }
                    seen
                })
                .collect();
            for (r, task) in by_sets.tasks.iter().enumerate() {
                let (mut own, mut shared) = (Amount::default(), Amount::default());
                let mut unlocated = at_root[r];
                for i in (0..n).filter(|&i| reach[r][i]) {
                    unlocated += under[i];
                    let by = reach.iter().filter(|s| s[i]).count();
                    let size = index.blocks()[i].size;
                    if by == 1 {
                        own.add(size);
                    } else {
                        shared.add(size);
                    }
                }
                assert_eq!(
                    (task.retained, task.shared, task.unlocated_bytes),
                    (own, shared, unlocated),
                    "round {round} root {r}"
                );
            }
        }
    }
}
