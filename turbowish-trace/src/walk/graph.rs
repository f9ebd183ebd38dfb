//! Discovery: the ownership graph between roots and live blocks, built
//! once per walk. Every block is expanded at most once — precisely by the
//! `Trace` impl that first reports it, or conservatively by scanning its
//! words — and its out-edges are kept, so attribution (in `attribute`) can
//! traverse the graph from each root without tracing anything again.

use std::collections::{HashMap, HashSet};

use super::index::BlockIndex;
use super::scan;
use crate::ownership::{HandleKind, MarkScanner, MarkedHandle};
use crate::sync::LiveResources;
use crate::trace::{BlockReport, Position, Sink};

/// Marks `Node::scan`.
pub(super) const SCAN_NONE: u8 = 0;
pub(super) const SCAN_QUEUED: u8 = 1;
pub(super) const SCAN_DONE: u8 = 2;

/// No edge / no type.
pub(super) const NIL: u32 = u32::MAX;

/// What discovery learnt about one block.
#[derive(Debug, Clone, Copy)]
pub(super) struct Node {
    /// Index into `Graph::types`, or `NIL` when no `Trace` impl named it.
    pub(super) type_id: u32,
    /// Payload bytes a `Trace` impl reported (`usize::MAX`: not reported).
    pub(super) used: usize,
    /// Whether a `Trace` impl expanded it (then it is not scanned unless
    /// the impl asked for that too).
    pub(super) precise: bool,
    pub(super) scan: u8,
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

/// The graph under construction; the [`Sink`] every `Tracer` of a walk
/// reports to.
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

#[derive(Debug)]
pub(super) struct Graph<'i> {
    pub(super) index: &'i BlockIndex,
    pub(super) nodes: Vec<Node>,
    /// Per block, the first of its out-edges in `edges` (`NIL`: none).
    head: Vec<u32>,
    /// Out-edges as linked lists: (target block, next edge). Blocks are
    /// expanded nested inside each other (a `Vec<String>`'s strings while
    /// the vector's buffer is open), so one block's edges are not
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
    queue: Vec<u32>,
    /// Addresses outside the index already traced through, per position:
    /// a cycle through blocks the index lacks (allocated after the view
    /// was taken, or never registered) would otherwise recurse forever.
    /// Keyed by position too, so that another root (or block) reaching the
    /// same address still records its own edges behind it.
    outside: HashSet<(Position, usize)>,
    pub(super) blocks_scanned: u64,
    pub(super) bytes_scanned: u64,
    pub(super) blocks_traced: u64,
    pub(super) edge_count: u64,
}

impl<'i> Graph<'i> {
    pub(super) fn new(index: &'i BlockIndex, roots: usize, live: LiveResources) -> Graph<'i> {
        Graph {
            index,
            nodes: vec![
                Node {
                    type_id: NIL,
                    used: usize::MAX,
                    precise: false,
                    scan: SCAN_NONE,
                };
                index.len()
            ],
            head: vec![NIL; index.len()],
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
            queue: Vec::new(),
            outside: HashSet::new(),
            blocks_scanned: 0,
            bytes_scanned: 0,
            blocks_traced: 0,
            edge_count: 0,
        }
    }

    /// Makes root `root` (named `name` in guard paths) the position the
    /// next reports come from.
    pub(super) fn start_root(&mut self, root: u32, name: &str) {
        self.position = Position::Root(root);
        self.root_name.clear();
        self.root_name.push_str(name);
        self.path.clear();
    }

    /// The out-edges of block `block`.
    pub(super) fn children(&self, block: u32) -> Children<'_> {
        Children {
            edges: &self.edges,
            next: self.head[block as usize],
        }
    }

    /// Scans every block queued for a conservative scan, and the blocks
    /// those scans find, until none is left.
    pub(super) fn drain(&mut self) {
        let index = self.index;
        let live = std::mem::take(&mut self.live);
        while let Some(i) = self.queue.pop() {
            let node = &mut self.nodes[i as usize];
            if node.scan != SCAN_QUEUED {
                continue;
            }
            node.scan = SCAN_DONE;
            let block = index.blocks()[i as usize];
            self.blocks_scanned += 1;
            self.bytes_scanned += block.size as u64;
            let mut marks = MarkScanner::new(&live, block.start);
            let mut found_here: Vec<(usize, MarkedHandle)> = Vec::new();
            let mut found = |offset: usize, handle: MarkedHandle| found_here.push((offset, handle));
            // SAFETY: the block is in the index, whose contract (see
            // `BlockIndex::new`) is that its blocks stay allocated and
            // readable while it is used.
            unsafe {
                scan::words(block.start, block.size, |word| {
                    marks.word(word, &mut found);
                    if let Some(j) = index.index_of(word) {
                        self.conservative_edge(Position::Block(i), j as u32);
                    }
                });
            }
            for (offset, handle) in found_here {
                let position = Position::Block(i);
                // A held guard has its own record; ends and locks go to
                // ownership.
                match handle.kind {
                    HandleKind::Guard => self.guards.push(FoundGuard {
                        resource_id: handle.resource_id,
                        resource_name: live.held[&handle.resource_id].clone(),
                        position,
                        path: None,
                    }),
                    _ => self.handles.push(FoundHandleAt {
                        handle,
                        position,
                        offset,
                        path: None,
                    }),
                }
            }
        }
        self.live = live;
    }

    /// A conservative edge from `from` to block `to`: queues `to` for a
    /// scan unless something expanded or queued it already.
    pub(super) fn conservative_edge(&mut self, from: Position, to: u32) {
        if from == Position::Block(to) {
            return;
        }
        self.add_edge(from, to);
        let node = &mut self.nodes[to as usize];
        if !node.precise && node.scan == SCAN_NONE {
            node.scan = SCAN_QUEUED;
            self.queue.push(to);
        }
    }

    fn add_edge(&mut self, from: Position, to: u32) {
        self.edge_count += 1;
        match from {
            Position::Root(r) => self.root_edges[r as usize].push(to),
            Position::Block(b) => {
                let b = b as usize;
                self.edges.push((to, self.head[b]));
                self.head[b] = (self.edges.len() - 1) as u32;
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
        let node = &mut self.nodes[i as usize];
        if node.precise {
            return None;
        }
        node.precise = true;
        node.type_id = type_id;
        node.used = block.used.unwrap_or(usize::MAX);
        if block.scan_too {
            if node.scan == SCAN_NONE {
                node.scan = SCAN_QUEUED;
                self.queue.push(i);
            }
        } else if node.scan == SCAN_QUEUED {
            // Found by a conservative scan before, but a `Trace` impl knows
            // better: no need to scan it.
            node.scan = SCAN_NONE;
        }
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
        let node = &mut self.nodes[i as usize];
        if node.type_id == NIL {
            node.type_id = type_id;
        }
        if node.scan == SCAN_NONE && (inside || !node.precise) {
            node.scan = SCAN_QUEUED;
            self.queue.push(i);
        }
    }

    fn locate(&mut self, start: usize, len: usize, estimated: usize) -> Option<usize> {
        let index = self.index;
        let mut best: Option<(usize, usize)> = None;
        // SAFETY: `[start, start + len)` is the value a `Trace` impl holds a
        // reference to (see `Tracer::owned_in`), so it is readable.
        unsafe {
            scan::words(start, len, |word| {
                if let Some(block) = index.find(word) {
                    let distance = block.size.abs_diff(estimated);
                    if best.is_none_or(|(_, d)| distance < d) {
                        best = Some((block.start, distance));
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

/// Iterator over a block's out-edges.
#[derive(Debug)]
pub(super) struct Children<'g> {
    edges: &'g [(u32, u32)],
    next: u32,
}

impl Iterator for Children<'_> {
    type Item = u32;

    fn next(&mut self) -> Option<u32> {
        if self.next == NIL {
            return None;
        }
        let (target, next) = self.edges[self.next as usize];
        self.next = next;
        Some(target)
    }
}
