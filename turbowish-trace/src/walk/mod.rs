//! The heap walker: which task (or named root) *retains* each live block.
//!
//! # How a walk works
//!
//! A walk starts at every root — each TurboWish task's root cell (its boxed
//! future) and each value registered with [`crate::root`] — and builds the
//! ownership graph between roots and live blocks:
//!
//! * **Precise** where a [`Trace`] impl describes a value: the impl reports
//!   the blocks it owns with their type, capacity and payload, and traces
//!   what is inside them. Field names make up the paths of guards.
//! * **Conservative** where nothing does: a task's future (a compiler-made
//!   state machine no one can implement `Trace` for) and any block only
//!   reached through it are scanned word by word, and every word whose value
//!   is an address inside a live block — its start or any byte inside — is
//!   an edge to that block.
//!
//! Each block is expanded once per walk (a block reached again, from the
//! same root or another, only gains an edge). Then every root's reach is
//! traversed: a block reached from one root only is *retained* by it, one
//! reached from several is *shared*, and one reached from none is
//! *unattributed* (statics, data on thread stacks, leaks), grouped by the
//! task that allocated it.
//!
//! # Safety of the scanner
//!
//! The scanner reads memory the program owns and may be mutating, without
//! synchronisation. That is sound enough because of what it reads and how:
//!
//! * **Only live blocks are read**, each one whole: the blocks of the
//!   [`BlockIndex`], whose constructor makes the caller promise they stay
//!   allocated while it is used. [`walk`] builds it from the allocator's heap
//!   view, which defers every free while it exists, so no block is returned
//!   to the system mid-walk even if the program drops it; and the inline
//!   bytes of a value a `Trace` impl holds a reference to.
//! * **Reads are copies of machine words, never references.** Each word is
//!   read with one aligned `read_volatile` of a `usize`: no `&T` or `&[u8]` is
//!   formed over the program's memory, so no aliasing promise is made to the
//!   compiler, and the volatile access keeps it from assuming the value is
//!   stable or initialised. The word is only compared with block bounds; it
//!   is never dereferenced as a pointer.
//! * **A racing writer can only make the answer stale.** A word that changes
//!   while it is read is read either before or after (aligned word accesses
//!   do not tear on the platforms TurboWish supports); either way it is an
//!   integer that does or does not fall inside a live block. The walk is a
//!   snapshot of a running program, like any sampling profiler's.
//!
//! * **Typed access only through real references.** `Trace` impls run on
//!   the value of a typed root (a `&'static T: Sync` for [`crate::root`]) and
//!   on what it owns, through the references Rust gives them; the walker
//!   never turns a scanned address into a typed reference.
//!
//! Formally, reading uninitialised bytes (spare capacity, padding) as an
//! integer is outside what the Rust abstract machine defines; conservative
//! collectors (Boehm's, for one) rely on the same machine-level behaviour.
//! TurboWish accepts that for a diagnostic read that never feeds back into
//! the program.
//!
//! # What the conservative path gets wrong
//!
//! * **False positives**: an integer, a hash or stale bytes that happen to
//!   hold an address inside a live block make an edge that is not real, so a
//!   block may be reported retained (or shared) when it is not. Addresses on
//!   64-bit systems are sparse, so this is rare for random data, but stale
//!   pointers left in a future's state after the value moved out, or in a
//!   `Vec`'s spare capacity after `pop`, do occur: they inflate, never hide.
//! * **Missed edges**: a pointer stored encoded (tagged, compressed, XORed,
//!   or as an offset) is not recognised, and what it points to shows up as
//!   unattributed.
//! * **Reaching is not owning**: a waker or a runtime handle in a task's
//!   state leads to the runtime's structures, which then count as the
//!   task's (or as shared, when several tasks reach them). Two barriers
//!   limit this: a root's own cell (or the block its value sits in) is
//!   entered only from that root, so a task holding another task's waker
//!   does not take over its state; and blocks TurboWish allocated for
//!   itself (`Owner::Internal`, such as the task registry) are entered by
//!   no root.
//! * **Guards in opaque state** are recognised by the mark word owned guards
//!   and permits carry (their resource's record address XORed with a
//!   constant whose top 16 bits no user-space address has), and only for
//!   resources held at the time of the walk. A stale copy of a guard left
//!   behind by a move still carries its mark, so a guard can be reported in
//!   the task it moved from as well as in the one holding it.
//! * Precise tracing trusts the impls: a `#[trace(skip = "...")]` field's
//!   memory is not followed, and a `std::sync::Mutex` locked during the walk
//!   is not traced (the walker never blocks).
//!
//! Precise tracing recurses through `Trace` impls, so a very deep owned
//! structure (a linked list of `Box`es a million long) needs as much stack
//! as dropping it would.

mod attribute;
mod graph;
mod heap_view;
mod index;
mod report;
mod scan;

pub(crate) use scan::words as scan_words;

use std::mem::size_of_val;
use std::time::Instant;

pub use crate::roots::{root, unroot, RootId};
pub use index::{Block, BlockIndex, IndexError};
pub use report::{
    Amount, GuardLocation, Holder, LocatedBlock, RootRetained, TaskRetained, TypeCensus,
    Unattributed, WalkReport, WalkStats,
};

use crate::trace::{Trace, Tracer};
use graph::Graph;

/// Walks the heap now: every TurboWish task's root cell and every
/// registered [`crate::root`]. `None` unless the allocator runs in heap-walk
/// mode (only then is there a heap view to walk).
///
/// Other threads keep running during the walk; the blocks they free are
/// released when it ends.
pub fn walk() -> Option<WalkReport> {
    walk_locating(&[])
}

/// [`walk`], also telling who holds each block starting at one of `starts`
/// (sorted or not), in [`WalkReport::located`]: which task retains each
/// sampled block, say, to break a task's retained memory down by
/// allocation site. Costs one index lookup per address on top of the walk.
///
/// ```
/// // Not in heap-walk mode here, so there is no heap to walk.
/// assert!(turbowish_trace::walk::walk_locating(&[0x1000]).is_none());
/// ```
pub fn walk_locating(starts: &[usize]) -> Option<WalkReport> {
    let _internal = turbowish_alloc::internal();
    let named = crate::roots::registered();
    heap_view::with_index(|index| {
        // Read the task list with frees already deferred: a task seen live
        // here has a root cell the view can still read.
        let tasks = crate::registry::live_roots();
        let mut roots: Vec<WalkRoot<'_>> = Vec::with_capacity(tasks.len() + named.len());
        roots.extend(
            tasks
                .into_iter()
                .map(|(id, name, addr, size)| WalkRoot::task_cell(id, name, addr, size)),
        );
        roots.extend(named.iter().map(|r| WalkRoot {
            kind: RootKind::Named(r.name.to_string()),
            entry: Entry::Traced {
                value: r.value,
                addr: r.addr,
                size: r.size,
                type_name: r.type_name,
            },
        }));
        walk_inner(index, &roots, starts)
    })
}

/// Walks from `roots` over the blocks of `index`: the engine behind
/// [`walk`], usable with any block list (a test's, another allocator's).
///
/// ```
/// use turbowish_alloc::Owner;
/// use turbowish_trace::walk::{walk_with, Block, BlockIndex, WalkRoot};
///
/// let names: Vec<String> = vec!["ada".into(), "grace".into()];
/// let mut blocks = vec![Block {
///     start: names.as_ptr() as usize,
///     size: names.capacity() * size_of::<String>(),
///     owner: Owner::Main,
/// }];
/// for name in &names {
///     blocks.push(Block { start: name.as_ptr() as usize, size: name.capacity(), owner: Owner::Main });
/// }
/// // SAFETY: the blocks are `names`' buffers, alive until the end.
/// let index = unsafe { BlockIndex::new(blocks) }.unwrap();
/// let report = walk_with(&index, &[WalkRoot::named("names", &names)]);
/// assert_eq!(report.roots[0].retained.blocks, 3);
/// assert!(report.unattributed.is_empty());
/// ```
pub fn walk_with(index: &BlockIndex, roots: &[WalkRoot<'_>]) -> WalkReport {
    walk_inner(index, roots, &[])
}

fn walk_inner(index: &BlockIndex, roots: &[WalkRoot<'_>], locate: &[usize]) -> WalkReport {
    let started = Instant::now();
    let mut graph = Graph::new(index, roots.len(), crate::sync::live_resources());
    // Precise roots first: a block they name gets its type even when a
    // conservative scan would also reach it.
    let order = roots
        .iter()
        .enumerate()
        .filter(|(_, r)| matches!(r.entry, Entry::Traced { .. }))
        .chain(
            roots
                .iter()
                .enumerate()
                .filter(|(_, r)| matches!(r.entry, Entry::Cell { .. })),
        );
    // The block each root's state sits in, if it is a heap block.
    let mut anchors: Vec<Option<u32>> = vec![None; roots.len()];
    for (i, root) in order {
        graph.start_root(i as u32, root.kind.name());
        match root.entry {
            Entry::Cell { addr, .. } => {
                if let Some(block) = index.index_of(addr) {
                    anchors[i] = Some(block as u32);
                    graph.conservative_edge(crate::trace::Position::Root(i as u32), block as u32);
                }
            }
            Entry::Traced {
                value,
                addr,
                size,
                type_name,
            } => {
                anchors[i] = index.index_of(addr).map(|b| b as u32);
                let mut tracer = Tracer::new(&mut graph);
                // The value itself may sit in a heap block (a leaked box):
                // that block is the root's too.
                tracer.owned(addr as *const u8, size, size, type_name, |t| value.trace(t));
            }
        }
    }
    let kinds: Vec<&RootKind> = roots.iter().map(|r| &r.kind).collect();
    let mut report = attribute::attribute(&mut graph, &kinds, &anchors, locate);
    report.stats = WalkStats {
        live_blocks: index.len() as u64,
        blocks_scanned: graph.blocks_scanned,
        bytes_scanned: graph.bytes_scanned,
        blocks_traced: graph.blocks_traced,
        edges: graph.edge_count,
        duration: started.elapsed(),
    };
    report
}

/// One starting point of a walk.
#[derive(Debug)]
pub struct WalkRoot<'a> {
    kind: RootKind,
    entry: Entry<'a>,
}

impl<'a> WalkRoot<'a> {
    /// A task whose state is opaque: its root cell at `addr` (`size`
    /// bytes, the task's future) is scanned conservatively. What is read is
    /// the whole block of the index containing `addr` (nothing if there is
    /// none); `size` only documents the root in `Debug` output.
    pub fn task_cell(id: u64, name: impl Into<String>, addr: usize, size: usize) -> WalkRoot<'a> {
        WalkRoot {
            kind: RootKind::Task {
                id,
                name: name.into(),
            },
            entry: Entry::Cell { addr, size },
        }
    }

    /// A task whose state is described by `state` and traced precisely
    /// (for executors that keep a task's state in a `Trace` value).
    pub fn task_state<T: Trace>(id: u64, name: impl Into<String>, state: &'a T) -> WalkRoot<'a> {
        WalkRoot {
            kind: RootKind::Task {
                id,
                name: name.into(),
            },
            entry: Entry::traced(state),
        }
    }

    /// A named root: `value` is traced precisely.
    pub fn named<T: Trace>(name: impl Into<String>, value: &'a T) -> WalkRoot<'a> {
        WalkRoot {
            kind: RootKind::Named(name.into()),
            entry: Entry::traced(value),
        }
    }
}

/// Whose root a [`WalkRoot`] is.
#[derive(Debug, Clone)]
pub(crate) enum RootKind {
    Task { id: u64, name: String },
    Named(String),
}

impl RootKind {
    fn name(&self) -> &str {
        match self {
            RootKind::Task { name, .. } | RootKind::Named(name) => name,
        }
    }

    fn holder(&self) -> Holder {
        match self {
            RootKind::Task { id, name } => Holder::Task {
                id: *id,
                name: name.clone(),
            },
            RootKind::Named(name) => Holder::Root { name: name.clone() },
        }
    }
}

enum Entry<'a> {
    Cell {
        addr: usize,
        size: usize,
    },
    Traced {
        value: &'a dyn Trace,
        addr: usize,
        size: usize,
        type_name: &'static str,
    },
}

impl<'a> Entry<'a> {
    fn traced<T: Trace>(value: &'a T) -> Entry<'a> {
        Entry::Traced {
            value,
            addr: value as *const T as usize,
            size: size_of_val(value),
            type_name: std::any::type_name::<T>(),
        }
    }
}

impl std::fmt::Debug for Entry<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Entry::Cell { addr, size } => write!(f, "Cell({addr:#x}+{size})"),
            Entry::Traced {
                addr, type_name, ..
            } => write!(f, "Traced({type_name} at {addr:#x})"),
        }
    }
}

/// A xorshift generator for the randomized unit tests of this module: a
/// closure giving numbers below its argument, the same ones on every run.
#[cfg(test)]
fn test_rng(seed: u64) -> impl FnMut(usize) -> usize {
    let mut x = seed;
    move |bound| {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        (x % bound as u64) as usize
    }
}
