//! Discovery: what the roots' `Trace` impls report (typed blocks, their
//! precise out-edges, guards and handles on the way), and the traversal
//! that marks which root reaches each block.
//!
//! Edges are kept only where they cannot be found again: those from roots
//! and from blocks a `Trace` impl expanded. A block scanned conservatively
//! is scanned when a traversal first enters it, and again when it is
//! expanded again (the second root that reaches it, and the shared-block
//! graph of attribution): a scan costs a read of the block, where keeping
//! every scanned edge cost 8 bytes per edge and 28 per block for millions
//! of blocks. Only typed blocks, a minority, have a record of their own.

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::atomic::{AtomicU16, AtomicU32, Ordering};

use super::index::BlockIndex;
use super::scan;
use crate::ownership::{HandleKind, MarkScanner, MarkedHandle};
use crate::sync::LiveResources;
use crate::trace::{BlockReport, Position, Sink};

/// A hash map keyed by block: blocks a `Trace` impl names are looked up
/// once or more per report, often in address order (a vector's elements).
pub(super) type BlockMap<V> = HashMap<u32, V, BuildHasherDefault<BlockHasher>>;

/// The hash of a block index: the index itself in the low bits, so that
/// neighbouring blocks land in neighbouring buckets (with SipHash, a
/// precise walk of 1,000,000 strings waited on a cache miss per insert and
/// per lookup: 1.5 s against 0.12 s with a vector per block), and a
/// multiplicative mix in the top 7 bits, which the table's control bytes
/// compare.
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct BlockHasher(u64);

impl Hasher for BlockHasher {
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 << 8) | u64::from(b);
        }
    }

    fn write_u32(&mut self, n: u32) {
        self.0 = u64::from(n);
    }

    fn finish(&self) -> u64 {
        let mix = self.0.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 57;
        (self.0 & ((1 << 57) - 1)) | (mix << 57)
    }
}

/// No edge / no type.
pub(super) const NIL: u32 = u32::MAX;

/// Marks of [`Graph::mark`]: no root reaches the block.
pub(super) const NONE: u32 = u32::MAX;
/// Marks of [`Graph::mark`]: several roots reach the block.
pub(super) const MULTI: u32 = u32::MAX - 1;

/// What discovery learnt about one block a `Trace` impl named.
#[derive(Debug, Clone, Copy)]
pub(super) struct Node {
    /// Index into `Graph::types`, or `NIL` when no `Trace` impl named it.
    pub(super) type_id: u32,
    /// Payload bytes a `Trace` impl reported (`usize::MAX`: not reported).
    pub(super) used: usize,
    /// Whether a `Trace` impl expanded it (then it is not scanned unless
    /// the impl asked for that too).
    pub(super) precise: bool,
    /// Whether a precise block is scanned as well.
    pub(super) scan: bool,
}

impl Node {
    const UNKNOWN: Node = Node {
        type_id: NIL,
        used: usize::MAX,
        precise: false,
        scan: false,
    };

    /// Whether expanding the block scans its words.
    fn scanned(&self) -> bool {
        !self.precise || self.scan
    }
}

/// An estimate a `Trace` impl reported without an address.
#[derive(Debug, Clone, Copy)]
pub(super) struct Unlocated {
    pub(super) position: Position,
    pub(super) type_id: u32,
    pub(super) estimated: usize,
    pub(super) used: usize,
}

/// A guard a `Trace` impl reported.
#[derive(Debug, Clone)]
pub(super) struct FoundGuard {
    pub(super) resource_id: u64,
    pub(super) resource_name: String,
    pub(super) position: Position,
    /// Field path from the root; `None` for a guard found by its mark in
    /// scanned memory.
    pub(super) path: Option<String>,
}

/// A channel end or lock found during the walk: by the mark scanner in a
/// block (`path` `None`: the block's offset says where), or by a `Trace`
/// impl (with its field path).
#[derive(Debug, Clone)]
pub(super) struct FoundHandleAt {
    pub(super) handle: MarkedHandle,
    pub(super) position: Position,
    pub(super) offset: usize,
    pub(super) path: Option<String>,
}

/// The result of [`Graph::mark`].
#[derive(Debug)]
pub(super) struct Marks {
    /// Per block: the one root that reaches it, `MULTI`, or `NONE`.
    pub(super) owner: BlockOwners,
    /// (root, block) for shared blocks each root reaches: every block of a
    /// root's *frontier* (the `MULTI` blocks it, or a block marked with it,
    /// points to) is among them, and every one lies in the root's reach;
    /// sorted, without repeats, `MULTI` blocks only.
    pub(super) frontier: Vec<(u32, u32)>,
}

/// Per block, the one root that reaches it, [`MULTI`] or [`NONE`]: two
/// bytes a block when the roots leave room for the two marks in a `u16`
/// (the common case: fewer than 65,534 tasks and named roots), four
/// otherwise. It is the largest array a walk adds to the heap view's 8
/// bytes a block; two bytes less a block is an eighth of the walk's peak
/// of memory over a big heap. Atomic, so that the workers of a parallel
/// [`Graph::mark`] claim blocks from one table; a relaxed load or store is
/// a plain one on the platforms TurboWish runs on, so a single worker pays
/// nothing for it.
#[derive(Debug)]
pub(super) enum BlockOwners {
    Narrow(Vec<AtomicU16>),
    Wide(Vec<AtomicU32>),
}

impl BlockOwners {
    /// `blocks` blocks, none reached yet, for `roots` roots.
    pub(super) fn new(blocks: usize, roots: usize) -> BlockOwners {
        if roots < usize::from(NARROW_MULTI) {
            BlockOwners::Narrow((0..blocks).map(|_| AtomicU16::new(NARROW_NONE)).collect())
        } else {
            BlockOwners::Wide((0..blocks).map(|_| AtomicU32::new(NONE)).collect())
        }
    }

    pub(super) fn len(&self) -> usize {
        match self {
            BlockOwners::Narrow(v) => v.len(),
            BlockOwners::Wide(v) => v.len(),
        }
    }

    /// Block `i`'s owner: a root, `MULTI` or `NONE`.
    #[inline]
    pub(super) fn get(&self, i: usize) -> u32 {
        match self {
            BlockOwners::Narrow(v) => widen(v[i].load(Ordering::Relaxed)),
            BlockOwners::Wide(v) => v[i].load(Ordering::Relaxed),
        }
    }

    /// Sets block `i`'s owner from `from` to `to` (each a root below the
    /// bound given to `new`, `MULTI` or `NONE`), unless another worker
    /// changed it first: then `Err` with the owner it set. Relaxed: the
    /// marks publish nothing else, and the workers' results are read after
    /// they are joined.
    #[inline]
    pub(super) fn claim(&self, i: usize, from: u32, to: u32) -> Result<(), u32> {
        match self {
            BlockOwners::Narrow(v) => v[i]
                .compare_exchange(
                    narrow(from),
                    narrow(to),
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                )
                .map(drop)
                .map_err(widen),
            BlockOwners::Wide(v) => v[i]
                .compare_exchange(from, to, Ordering::Relaxed, Ordering::Relaxed)
                .map(drop),
        }
    }

    /// The owners in block order.
    pub(super) fn iter(&self) -> impl Iterator<Item = u32> + '_ {
        (0..self.len()).map(|i| self.get(i))
    }
}

/// A narrow owner as a wide one.
#[inline]
fn widen(owner: u16) -> u32 {
    match owner {
        NARROW_NONE => NONE,
        NARROW_MULTI => MULTI,
        r => u32::from(r),
    }
}

/// A wide owner (a root below `NARROW_MULTI`, `MULTI` or `NONE`) as a
/// narrow one.
#[inline]
fn narrow(owner: u32) -> u16 {
    match owner {
        NONE => NARROW_NONE,
        MULTI => NARROW_MULTI,
        r => {
            debug_assert!(r < u32::from(NARROW_MULTI));
            r as u16
        }
    }
}

const NARROW_NONE: u16 = u16::MAX;
const NARROW_MULTI: u16 = u16::MAX - 1;

/// The graph under construction; the [`Sink`] every `Tracer` of a walk
/// reports to.
#[derive(Debug)]
pub(super) struct Graph<'i> {
    pub(super) index: &'i BlockIndex,
    /// Blocks a `Trace` impl named, and what it said.
    pub(super) typed: BlockMap<Node>,
    /// One bit per block: whether it is in `typed` (a traversal asks for
    /// every block it enters; the map is asked only for those).
    typed_bits: Vec<u64>,
    /// Per block with kept out-edges, the first of them in `edges`.
    head: BlockMap<u32>,
    /// Kept out-edges as linked lists: (target block, next edge). Blocks
    /// are expanded nested inside each other (a `Vec<String>`'s strings
    /// while the vector's buffer is open), so one block's edges are not
    /// contiguous.
    edges: Vec<(u32, u32)>,
    pub(super) root_edges: Vec<Vec<u32>>,
    pub(super) types: Vec<&'static str>,
    type_ids: HashMap<&'static str, u32>,
    pub(super) unlocated: Vec<Unlocated>,
    pub(super) guards: Vec<FoundGuard>,
    pub(super) handles: Vec<FoundHandleAt>,
    live: LiveResources,
    position: Position,
    root_name: String,
    path: Vec<&'static str>,
    /// Addresses outside the index already traced through, per position:
    /// a cycle through blocks the index lacks (allocated after the view
    /// was taken, or never registered) would otherwise recurse forever.
    /// Keyed by position too, so that another root (or block) reaching the
    /// same address still records its own edges behind it.
    outside: HashSet<(Position, usize)>,
    /// Whether expanding a block reads its memory (off in unit tests of
    /// attribution, whose blocks are made up).
    read_memory: bool,
    pub(super) blocks_scanned: u64,
    pub(super) bytes_scanned: u64,
    pub(super) blocks_traced: u64,
    pub(super) edge_count: u64,
}

impl<'i> Graph<'i> {
    pub(super) fn new(index: &'i BlockIndex, roots: usize, live: LiveResources) -> Graph<'i> {
        Graph {
            index,
            typed: BlockMap::default(),
            typed_bits: vec![0; index.len().div_ceil(64)],
            head: BlockMap::default(),
            edges: Vec::new(),
            root_edges: vec![Vec::new(); roots],
            types: Vec::new(),
            type_ids: HashMap::new(),
            unlocated: Vec::new(),
            guards: Vec::new(),
            handles: Vec::new(),
            live,
            position: Position::Root(0),
            root_name: String::new(),
            path: Vec::new(),
            outside: HashSet::new(),
            read_memory: true,
            blocks_scanned: 0,
            bytes_scanned: 0,
            blocks_traced: 0,
            edge_count: 0,
        }
    }

    /// A graph whose blocks are never read: for unit tests that make up
    /// blocks and give every edge by hand.
    #[cfg(test)]
    pub(super) fn without_reads(mut self) -> Self {
        self.read_memory = false;
        self
    }

    /// Makes root `root` (named `name` in guard paths) the position the
    /// next reports come from.
    pub(super) fn start_root(&mut self, root: u32, name: &str) {
        self.position = Position::Root(root);
        self.root_name.clear();
        self.root_name.push_str(name);
        self.path.clear();
    }

    /// What a `Trace` impl said about block `i`, if anything.
    #[inline]
    fn node(&self, i: u32) -> Option<&Node> {
        if self.typed_bits[i as usize / 64] & (1 << (i % 64)) == 0 {
            return None;
        }
        self.typed.get(&i)
    }

    fn node_mut(&mut self, i: u32) -> &mut Node {
        self.typed_bits[i as usize / 64] |= 1 << (i % 64);
        self.typed.entry(i).or_insert(Node::UNKNOWN)
    }

    /// Makes sure block `i` has a node.
    fn ensure_node(&mut self, i: u32) {
        if self.typed_bits[i as usize / 64] & (1 << (i % 64)) == 0 {
            self.node_mut(i);
        }
    }

    /// Appends block `i`'s out-edges to `out`: the kept ones, then (unless
    /// a `Trace` impl expanded it and asked for none) every word of it that
    /// points into a live block other than itself. With `first` (the
    /// block's first expansion), also the handles and guards its words
    /// carry, and the walk's statistics, into `first`.
    fn expand(&self, i: u32, out: &mut Vec<u32>, first: Option<&mut Found>) {
        let node = self.node(i).copied();
        let mut next = if node.is_some() {
            self.head.get(&i).copied().unwrap_or(NIL)
        } else {
            NIL
        };
        while next != NIL {
            let (target, after) = self.edges[next as usize];
            out.push(target);
            next = after;
        }
        if !self.read_memory || !node.is_none_or(|n| n.scanned()) {
            return;
        }
        let index = self.index;
        let (start, size) = (index.start(i as usize), index.size(i as usize));
        let Some(found) = first else {
            // SAFETY: the block is in the index, whose contract (see
            // `BlockIndex::new`) is that its blocks stay allocated and
            // readable while it is used.
            unsafe {
                scan::words(start, size, |word| {
                    if let Some(j) = index.index_of(word) {
                        if j as u32 != i {
                            out.push(j as u32);
                        }
                    }
                });
            }
            return;
        };
        found.blocks_scanned += 1;
        found.bytes_scanned += size as u64;
        let before = out.len();
        let live = &self.live;
        let mut marks = MarkScanner::new(live, start);
        let mut found_here: Vec<(usize, MarkedHandle)> = Vec::new();
        let mut note = |offset: usize, handle: MarkedHandle| found_here.push((offset, handle));
        // SAFETY: as above.
        unsafe {
            scan::words(start, size, |word| {
                marks.word(word, &mut note);
                if let Some(j) = index.index_of(word) {
                    if j as u32 != i {
                        out.push(j as u32);
                    }
                }
            });
        }
        found.edges += (out.len() - before) as u64;
        for (offset, handle) in found_here {
            let position = Position::Block(i);
            // A held guard has its own record; ends and locks go to
            // ownership.
            match handle.kind {
                HandleKind::Guard => found.guards.push(FoundGuard {
                    resource_id: handle.resource_id,
                    resource_name: self.live.held[&handle.resource_id].clone(),
                    position,
                    path: None,
                }),
                _ => found.handles.push(FoundHandleAt {
                    handle,
                    position,
                    offset,
                    path: None,
                }),
            }
        }
    }

    /// Block `i`'s out-edges, again (for attribution's shared-block graph).
    pub(super) fn children(&self, i: u32, out: &mut Vec<u32>) {
        self.expand(i, out, None);
    }

    /// Marks the blocks each root reaches: a block no other root reached
    /// becomes the root's, one another root reached becomes `MULTI`; a
    /// block already the root's or `MULTI` is not expanded again, so each
    /// block is expanded at most twice. A root's anchor (`anchors`: the
    /// block its state sits in) is entered only from that root (the last
    /// naming it), and blocks TurboWish allocated for itself
    /// (`Owner::Internal`) from none.
    ///
    /// Over a large heap the roots are shared out among workers on
    /// threads of their own (see [`mark_workers`]): the marks do not
    /// depend on the order roots are taken in, nor on which worker takes
    /// which, so they are the same as one worker's. That rests on every
    /// root with an anchor having an edge to it (`walk_inner` records one
    /// for each): past a `MULTI` block a root stops, and the only block
    /// there it may enter and the two roots that made it `MULTI` may not is
    /// its own anchor, which it reaches directly.
    pub(super) fn mark(&mut self, anchors: &[Option<u32>]) -> Marks {
        self.mark_with(anchors, mark_workers(self.index.len()))
    }

    /// [`Graph::mark`] with `workers` workers (at least one: the calling
    /// thread).
    pub(super) fn mark_with(&mut self, anchors: &[Option<u32>], workers: usize) -> Marks {
        let n = self.index.len();
        let barrier: HashMap<u32, u32> = anchors
            .iter()
            .enumerate()
            .filter_map(|(r, a)| a.map(|a| (a, r as u32)))
            .collect();
        // Every block entered is asked whether it is an anchor: a bit per
        // block answers, the map only for anchors (hashing every block
        // cost 60-80 ms of a walk of 4,000,000).
        let mut anchor_bits = vec![0u64; n.div_ceil(64)];
        for &a in barrier.keys() {
            anchor_bits[a as usize / 64] |= 1 << (a % 64);
        }
        let owner = BlockOwners::new(n, self.root_edges.len());
        let work = MarkWork {
            graph: self,
            owner: &owner,
            barrier: &barrier,
            anchor_bits: &anchor_bits,
            next_root: AtomicU32::new(0),
        };
        let mut done = vec![];
        std::thread::scope(|scope| {
            let helpers: Vec<_> = (1..workers.max(1))
                .filter_map(|_| {
                    // A helper that cannot be started leaves its roots to
                    // the others: taken one at a time from one counter, all
                    // are marked whoever takes them.
                    std::thread::Builder::new()
                        .name("turbowish-walk".into())
                        .spawn_scoped(scope, || {
                            // Its vectors are TurboWish's own, like the
                            // calling thread's.
                            let _internal = turbowish_alloc::internal();
                            work.run()
                        })
                        .ok()
                })
                .collect();
            done.push(work.run());
            for helper in helpers {
                match helper.join() {
                    Ok(result) => done.push(result),
                    Err(panic) => std::panic::resume_unwind(panic),
                }
            }
        });
        // The workers' frontiers, each cut to its `MULTI` blocks and
        // without repeats first, then appended to the largest: merging
        // into a new vector held every pair twice (2.5 MB more at the
        // walk's peak over 4,000,000 blocks).
        for (front, _) in &mut done {
            front.retain(|&(_, i)| owner.get(i as usize) == MULTI);
            front.sort_unstable();
            front.dedup();
        }
        let largest = (0..done.len())
            .max_by_key(|&w| done[w].0.len())
            .expect("the calling thread's result");
        let mut frontier = std::mem::take(&mut done[largest].0);
        frontier.reserve_exact(done.iter().map(|(front, _)| front.len()).sum());
        let mut found = Found::default();
        for (front, worker) in done {
            frontier.extend(front);
            found.blocks_scanned += worker.blocks_scanned;
            found.bytes_scanned += worker.bytes_scanned;
            found.edges += worker.edges;
            found.guards.extend(worker.guards);
            found.handles.extend(worker.handles);
        }
        // In block order (a block's own in the order of its words), however
        // the blocks were shared out.
        let block = |p: &Position| match *p {
            Position::Block(b) => b,
            Position::Root(_) => NIL,
        };
        found.guards.sort_by_key(|g| block(&g.position));
        found.handles.sort_by_key(|h| block(&h.position));
        self.blocks_scanned += found.blocks_scanned;
        self.bytes_scanned += found.bytes_scanned;
        self.edge_count += found.edges;
        self.guards.extend(found.guards);
        self.handles.extend(found.handles);
        if workers > 1 {
            frontier.sort_unstable();
            frontier.dedup();
        }
        Marks { owner, frontier }
    }

    /// A conservative edge from `from` to block `to`.
    pub(super) fn conservative_edge(&mut self, from: Position, to: u32) {
        if from == Position::Block(to) {
            return;
        }
        self.add_edge(from, to);
    }

    fn add_edge(&mut self, from: Position, to: u32) {
        self.edge_count += 1;
        match from {
            Position::Root(r) => self.root_edges[r as usize].push(to),
            Position::Block(b) => {
                // A block with kept edges has a node: expansion looks for
                // its edges only then.
                self.ensure_node(b);
                let next = self.head.get(&b).copied().unwrap_or(NIL);
                self.edges.push((to, next));
                self.head.insert(b, (self.edges.len() - 1) as u32);
            }
        }
    }

    fn type_id(&mut self, name: &'static str) -> u32 {
        let next = self.types.len() as u32;
        let id = *self.type_ids.entry(name).or_insert(next);
        if id == next {
            self.types.push(name);
        }
        id
    }
}

/// How many workers mark a heap of `blocks` blocks: one per core (at most
/// four) from [`PARALLEL_BLOCKS`] blocks on, one below that, where
/// starting a thread would cost more than it saves.
fn mark_workers(blocks: usize) -> usize {
    turbowish_alloc::helper_threads(blocks, PARALLEL_BLOCKS)
}

/// The heap size from which marking is shared out among threads: 64 Ki
/// blocks take a few milliseconds to mark, a thread tens of microseconds
/// to start.
const PARALLEL_BLOCKS: usize = 1 << 16;

/// What first expansions found besides edges: the handles and guards in
/// scanned blocks, and the walk's statistics. Each marking worker keeps
/// its own; they are added up once the workers are done.
#[derive(Debug, Default)]
struct Found {
    guards: Vec<FoundGuard>,
    handles: Vec<FoundHandleAt>,
    blocks_scanned: u64,
    bytes_scanned: u64,
    edges: u64,
}

/// What the workers of one [`Graph::mark_with`] share: the graph (read
/// only), the owner table they claim blocks in, and the next root to take.
struct MarkWork<'g, 'i> {
    graph: &'g Graph<'i>,
    owner: &'g BlockOwners,
    barrier: &'g HashMap<u32, u32>,
    anchor_bits: &'g [u64],
    next_root: AtomicU32,
}

impl MarkWork<'_, '_> {
    /// The root whose anchor block `i` is, if any.
    #[inline]
    fn anchor(&self, i: u32) -> Option<u32> {
        if self.anchor_bits[i as usize / 64] & (1 << (i % 64)) == 0 {
            return None;
        }
        self.barrier.get(&i).copied()
    }

    /// Takes roots until none is left and marks what each reaches; returns
    /// the (root, block) pairs of `MULTI` blocks met (with repeats, and
    /// some blocks that are not `MULTI` in the end) and what the first
    /// expansions found.
    ///
    /// Workers race only on the owner table, and every change there is a
    /// compare-and-swap from the owner just read: a block goes from `NONE`
    /// to one root, whose worker expands it first, and from one root to
    /// `MULTI`, whose worker expands it again (and notes both roots), each
    /// exactly once however the workers interleave. A root that meets a
    /// block `MULTI` stops there, as one worker alone would: the two roots
    /// that made it so both expand it, so every block past it is reached by
    /// two roots too, and ends `MULTI` whichever worker gets there first.
    fn run(&self) -> (Vec<(u32, u32)>, Found) {
        let graph = self.graph;
        let roots = graph.root_edges.len() as u32;
        let mut frontier: Vec<(u32, u32)> = Vec::new();
        let mut found = Found::default();
        // The (root, block) last recorded at a slot: a block many blocks
        // of one root point to is recorded about once, not once per edge.
        let mut recent = vec![u64::MAX; 1024];
        let mut note = |frontier: &mut Vec<(u32, u32)>, r: u32, i: u32| {
            let key = (u64::from(r) << 32) | u64::from(i);
            let slot = &mut recent[(i as usize ^ r as usize) % 1024];
            if *slot != key {
                *slot = key;
                frontier.push((r, i));
            }
        };
        let mut stack: Vec<u32> = Vec::new();
        loop {
            let r = self.next_root.fetch_add(1, Ordering::Relaxed);
            if r >= roots {
                break;
            }
            stack.clear();
            stack.extend_from_slice(&graph.root_edges[r as usize]);
            while let Some(i) = stack.pop() {
                let mut o = self.owner.get(i as usize);
                loop {
                    if o == r {
                        break;
                    }
                    if o == MULTI {
                        note(&mut frontier, r, i);
                        break;
                    }
                    // Asked only of blocks not already this root's or
                    // `MULTI` (most visits), as before marking went parallel.
                    let entered = match self.anchor(i) {
                        Some(b) => b == r,
                        None => o != NONE || !graph.index.is_internal(i as usize),
                    };
                    if !entered {
                        break;
                    }
                    let to = if o == NONE { r } else { MULTI };
                    if let Err(now) = self.owner.claim(i as usize, o, to) {
                        // Another worker's root got there first: decide
                        // again on what it made of the block.
                        o = now;
                        continue;
                    }
                    if o == NONE {
                        graph.expand(i, &mut stack, Some(&mut found));
                    } else {
                        note(&mut frontier, r, i);
                        note(&mut frontier, o, i);
                        graph.expand(i, &mut stack, None);
                    }
                    break;
                }
            }
        }
        (frontier, found)
    }
}

impl Graph<'_> {
    /// `root › field › field`: where the value being traced now sits.
    fn field_path(&self) -> String {
        let mut path = self.root_name.clone();
        for segment in &self.path {
            path.push_str(" › ");
            path.push_str(segment);
        }
        path
    }
}

impl Sink for Graph<'_> {
    fn enter(&mut self, block: &BlockReport) -> Option<Position> {
        let Some(i) = self.index.index_of(block.addr) else {
            // Not a live block (a static, a dangling pointer of an empty
            // collection, a block newer than the view): nothing to count,
            // but trace through it, once from here.
            return self
                .outside
                .insert((self.position, block.addr))
                .then_some(self.position);
        };
        let i = i as u32;
        if self.position == Position::Block(i) {
            // A value inline in the block being traced points into it.
            return None;
        }
        self.add_edge(self.position, i);
        let type_id = self.type_id(block.type_name);
        let node = self.node_mut(i);
        if node.precise {
            return None;
        }
        node.precise = true;
        node.type_id = type_id;
        node.used = block.used.unwrap_or(usize::MAX);
        // Unless the impl asks for a scan too, it knows better than one.
        node.scan = block.scan_too;
        self.blocks_traced += 1;
        Some(std::mem::replace(&mut self.position, Position::Block(i)))
    }

    fn leave(&mut self, previous: Position) {
        self.position = previous;
    }

    fn opaque(&mut self, addr: usize, type_name: &'static str) {
        let Some(i) = self.index.index_of(addr) else {
            return;
        };
        let i = i as u32;
        let type_id = self.type_id(type_name);
        let inside = self.position == Position::Block(i);
        if !inside {
            self.add_edge(self.position, i);
        }
        let node = self.node_mut(i);
        if node.type_id == NIL {
            node.type_id = type_id;
        }
        // An opaque value inside a precise block makes it scanned; a block
        // that is not precise is scanned anyway.
        if inside {
            node.scan = true;
        }
    }

    fn locate(&mut self, start: usize, len: usize, estimated: usize) -> Option<usize> {
        let index = self.index;
        let mut best: Option<(usize, usize)> = None;
        // SAFETY: `[start, start + len)` is the value a `Trace` impl holds a
        // reference to (see `Tracer::owned_in`), so it is readable.
        unsafe {
            scan::words(start, len, |word| {
                if let Some(j) = index.index_of(word) {
                    let distance = index.size(j).abs_diff(estimated);
                    if best.is_none_or(|(_, d)| distance < d) {
                        best = Some((index.start(j), distance));
                    }
                }
            });
        }
        best.map(|(start, _)| start)
    }

    fn scan_inline(&mut self, start: usize, len: usize) {
        let index = self.index;
        let from = self.position;
        // SAFETY: `[start, start + len)` is a value a `Trace` impl holds a
        // reference to (see `Tracer::conservative`), so it is readable.
        unsafe {
            scan::words(start, len, |word| {
                if let Some(j) = index.index_of(word) {
                    self.conservative_edge(from, j as u32);
                }
            });
        }
    }

    fn unlocated(&mut self, type_name: &'static str, estimated: usize, used: usize) {
        let type_id = self.type_id(type_name);
        self.unlocated.push(Unlocated {
            position: self.position,
            type_id,
            estimated,
            used,
        });
    }

    fn guard(&mut self, resource_id: u64, resource_name: &str) {
        let path = self.field_path();
        self.guards.push(FoundGuard {
            resource_id,
            resource_name: resource_name.to_owned(),
            position: self.position,
            path: Some(path),
        });
    }

    fn handle(&mut self, handle: MarkedHandle) {
        let path = self.field_path();
        self.handles.push(FoundHandleAt {
            handle,
            position: self.position,
            offset: 0,
            path: Some(path),
        });
    }

    fn push_path(&mut self, segment: &'static str) {
        self.path.push(segment);
    }

    fn pop_path(&mut self) {
        self.path.pop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn block_owners_hold_every_root_and_both_marks_narrow_or_wide() {
        let narrow_roots = usize::from(NARROW_MULTI) - 1;
        for (roots, narrow) in [(3, true), (narrow_roots, true), (narrow_roots + 1, false)] {
            let owners = BlockOwners::new(5, roots);
            assert_eq!(matches!(owners, BlockOwners::Narrow(_)), narrow, "{roots}");
            assert_eq!(owners.len(), 5);
            assert!(owners.iter().all(|o| o == NONE));
            let last = roots as u32 - 1;
            assert_eq!(owners.claim(0, NONE, 0), Ok(()));
            assert_eq!(owners.claim(1, NONE, last), Ok(()));
            assert_eq!(owners.claim(2, NONE, MULTI), Ok(()));
            assert_eq!(owners.claim(3, NONE, last), Ok(()));
            // A claim from an owner the block no longer has fails with the
            // owner it has.
            assert_eq!(owners.claim(3, NONE, 0), Err(last));
            assert_eq!(owners.claim(1, 0, MULTI), Err(last));
            assert_eq!(owners.claim(3, last, MULTI), Ok(()));
            assert_eq!(owners.claim(3, MULTI, NONE), Ok(()));
            assert_eq!(
                owners.iter().collect::<Vec<_>>(),
                vec![0, last, MULTI, NONE, NONE],
                "{roots}"
            );
        }
    }
}
