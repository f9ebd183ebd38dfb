//! What a walk returns: plain data, converted to the snapshot schema by
//! turbowish-report.

use std::time::Duration;

use turbowish_alloc::Owner;

/// The results of one heap walk.
#[derive(Debug, Clone, Default)]
pub struct WalkReport {
    /// Per task spawned through TurboWish (and per task root given to
    /// [`crate::walk::walk_with`]), in root order.
    pub tasks: Vec<TaskRetained>,
    /// Per named root ([`crate::root`]), in root order.
    pub roots: Vec<RootRetained>,
    /// Live blocks reachable from no root, by allocating owner, biggest
    /// first: statics, thread stacks' data, leaks.
    pub unattributed: Vec<Unattributed>,
    /// Blocks a `Trace` impl named, per holder and type, biggest first.
    pub census: Vec<TypeCensus>,
    /// Held TurboWish guards found in a root's state.
    pub guards: Vec<GuardLocation>,
    /// Channel ends and locks found in what one task or named root alone
    /// reaches (see [`crate::ownership`]); handles in shared memory name no
    /// single owner and are left out.
    pub handles: Vec<crate::ownership::FoundHandle>,
    /// What the walk did.
    pub stats: WalkStats,
    /// Who holds each block asked for with [`crate::walk::walk_locating`], in
    /// address order; blocks not live at the walk are left out. Empty for
    /// [`crate::walk`].
    pub located: Vec<LocatedBlock>,
}

/// Who holds one block the caller asked about ([`crate::walk::walk_locating`]):
/// how a profiler joins its own per-block data (sampled stacks) to the walk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocatedBlock {
    /// The block's start (the address its allocation returned).
    pub start: usize,
    /// Its size in bytes.
    pub size: usize,
    /// The task or root that retains it, [`Holder::Shared`] when several
    /// roots reach it, `None` when none does (unattributed).
    pub holder: Option<Holder>,
}

/// Bytes and blocks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Amount {
    /// Bytes (block sizes as the program asked for them).
    pub bytes: u64,
    /// Blocks.
    pub blocks: u64,
}

impl Amount {
    pub(crate) fn add(&mut self, bytes: usize) {
        self.bytes += bytes as u64;
        self.blocks += 1;
    }
}

/// What a task's root reaches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskRetained {
    /// The task's TurboWish id.
    pub id: u64,
    /// The task's name.
    pub name: String,
    /// Reachable from this task's root only: freed if the task ended now.
    /// Includes the root cell.
    pub retained: Amount,
    /// Reachable from this task and from other roots too.
    pub shared: Amount,
    /// Bytes `Trace` impls reported without an address (hash tables the
    /// walker could not locate), counted here by estimate, not in `retained`.
    pub unlocated_bytes: u64,
}

/// What a named root reaches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RootRetained {
    /// The root's name.
    pub name: String,
    /// Owned by this root alone.
    pub retained: Amount,
    /// Owned, but shared with other roots (through `Rc`/`Arc` or a
    /// conservative edge).
    pub shared: Amount,
    /// As in [`TaskRetained::unlocated_bytes`].
    pub unlocated_bytes: u64,
}

/// Live bytes reachable from no root, allocated by one owner.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unattributed {
    /// Who allocated them.
    pub owner: Owner,
    /// How much.
    pub amount: Amount,
}

/// Who a census row or a guard belongs to.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Holder {
    /// A task, by TurboWish id.
    Task {
        /// TurboWish id.
        id: u64,
        /// Name.
        name: String,
    },
    /// A named root.
    Root {
        /// Name.
        name: String,
    },
    /// Reachable from several roots.
    Shared,
}

/// Blocks of one type held by one holder: the fragmentation view.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TypeCensus {
    /// Who holds them (retained by a task or root, or shared).
    pub holder: Holder,
    /// The type `Trace` named (`alloc::vec::Vec<u8>`, `Arc<Config>`).
    pub type_name: &'static str,
    /// Blocks (objects).
    pub objects: u64,
    /// Their bytes.
    pub bytes: u64,
    /// Bytes allocated but not holding payload (unused capacity).
    pub slack: u64,
}

/// A held TurboWish guard (or permit) found in a root's state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GuardLocation {
    /// The resource's id (as in [`crate::sync::resources`]).
    pub resource_id: u64,
    /// The resource's name.
    pub resource_name: String,
    /// Whose state contains the guard: the task (or root) that actually
    /// holds it, whichever task acquired it.
    pub holder: Holder,
    /// Field path from the root to the guard (`worker › pending.0`).
    pub path: String,
}

/// What a walk did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WalkStats {
    /// Live blocks in the index.
    pub live_blocks: u64,
    /// Blocks scanned conservatively (word by word).
    pub blocks_scanned: u64,
    /// Bytes scanned conservatively.
    pub bytes_scanned: u64,
    /// Blocks traced precisely through `Trace` impls.
    pub blocks_traced: u64,
    /// Edges found between blocks and from roots.
    pub edges: u64,
    /// How long the walk took.
    pub duration: Duration,
}
