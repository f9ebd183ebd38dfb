//! The [`Trace`] trait, through which a value tells the heap walker which
//! heap blocks it owns, and the [`Tracer`] it reports to.

mod std_impls;
mod tokio_impls;

use std::mem::size_of_val;

/// A value that can tell the heap walker which heap blocks it owns.
///
/// An impl reports each block it owns with [`Tracer::owned`] (or
/// [`Tracer::shared`] for the inner block of an `Rc`/`Arc`) and traces the
/// values inside from the closure it passes, and traces its inline fields
/// with [`Tracer::field`]. The walker calls the closure only the first time
/// it meets a block in a walk, so shared blocks are traced once.
///
/// Derive it for your own types (the `derive` feature, on by default):
///
/// ```
/// use turbowish_trace::Trace;
///
/// #[derive(Trace)]
/// struct Session {
///     user: String,
///     history: Vec<String>,
///     #[trace(skip = "a handle into the OS, owns no heap memory of ours")]
///     fd: i32,
/// }
/// # let _ = Session { user: String::new(), history: Vec::new(), fd: 0 };
/// ```
///
/// Or implement it by hand:
///
/// ```
/// use turbowish_trace::{Trace, Tracer};
///
/// struct Buffer {
///     data: Box<[u8]>,
///     name: String,
/// }
///
/// impl Trace for Buffer {
///     fn trace(&self, tracer: &mut Tracer<'_>) {
///         tracer.field("data", &self.data);
///         tracer.field("name", &self.name);
///     }
/// }
/// ```
pub trait Trace {
    /// Reports the heap blocks `self` owns to `tracer`.
    fn trace(&self, tracer: &mut Tracer<'_>);
}

/// What a [`Trace`] impl reports to: the heap walker's view of the value
/// being traced. Built only by the walker.
pub struct Tracer<'w> {
    sink: &'w mut (dyn Sink + 'w),
}

impl std::fmt::Debug for Tracer<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tracer").finish_non_exhaustive()
    }
}

impl<'w> Tracer<'w> {
    pub(crate) fn new(sink: &'w mut (dyn Sink + 'w)) -> Tracer<'w> {
        Tracer { sink }
    }

    /// Traces an inline field of the value being traced, under `name` in
    /// the walk's paths.
    pub fn field<T: Trace + ?Sized>(&mut self, name: &'static str, value: &T) {
        self.sink.push_path(name);
        value.trace(self);
        self.sink.pop_path();
    }

    /// Reports a heap block the value owns alone: `ptr` points into it (its
    /// start or any byte inside: the walker finds the block), `capacity` is
    /// the bytes the value asked for, `used` the bytes of it holding live
    /// payload (a `Vec`'s `len × size_of::<T>()`), so `capacity - used` is
    /// the block's *slack*. `contents` traces the values inside the block;
    /// it runs at most once per block and walk.
    ///
    /// A pointer into no live block (a dangling `Vec` of capacity 0, a
    /// static) is not an error: no block is counted and `contents` still
    /// runs, so whatever the values inside own is still found.
    pub fn owned(
        &mut self,
        ptr: *const u8,
        capacity: usize,
        used: usize,
        type_name: &'static str,
        contents: impl FnOnce(&mut Tracer<'_>),
    ) {
        let block = BlockReport {
            addr: ptr as usize,
            used: Some(used.min(capacity)),
            type_name,
            scan_too: false,
        };
        if let Some(previous) = self.sink.enter(&block) {
            contents(self);
            self.sink.leave(previous);
        }
    }

    /// Reports the inner block of a shared-ownership pointer (`Rc`, `Arc`):
    /// `ptr` points into it (`Arc::as_ptr` does). Like [`Tracer::owned`],
    /// but the block is marked shared, and however many clones point to
    /// it, `contents` runs once per walk.
    pub fn shared(
        &mut self,
        ptr: *const u8,
        type_name: &'static str,
        contents: impl FnOnce(&mut Tracer<'_>),
    ) {
        let block = BlockReport {
            addr: ptr as usize,
            used: None,
            type_name,
            scan_too: false,
        };
        if let Some(previous) = self.sink.enter(&block) {
            contents(self);
            self.sink.leave(previous);
        }
    }

    /// Reports a heap block whose contents no `Trace` impl describes (a
    /// `Box<dyn Any>`, a foreign buffer): the walker scans it word by word
    /// for pointers into live blocks (see the `walk` module docs). Called
    /// on the block being traced (from inside its `contents`), it asks for
    /// that block to be scanned as well.
    pub fn opaque(&mut self, ptr: *const u8, type_name: &'static str) {
        self.sink.opaque(ptr as usize, type_name);
    }

    /// Scans the inline bytes of `value` conservatively: every word that
    /// points into a live block is an edge, and the blocks found are
    /// scanned too. For fields of types without a `Trace` impl whose
    /// pointers are private (a third-party handle, a channel end).
    pub fn conservative<T: ?Sized>(&mut self, value: &T) {
        let start = value as *const T as *const u8 as usize;
        self.sink.scan_inline(start, size_of_val(value));
    }

    /// Reports a heap block the value owns but whose address it does not
    /// expose (a `HashMap`'s table, a `BTreeMap`'s root node): the walker
    /// looks for it among the words of `holder` itself, taking the block
    /// they point into whose size is closest to `estimated`. When none is
    /// found (an empty map, or not a block the walker knows), `estimated`
    /// bytes are reported as *unlocated* and `contents` still runs.
    ///
    /// With `scan_too`, the block is also scanned conservatively after
    /// `contents` ran, to find the blocks it links to that no `Trace` impl
    /// can name (a B-tree's inner nodes).
    pub fn owned_in<H: ?Sized>(
        &mut self,
        holder: &H,
        estimated: usize,
        used: usize,
        type_name: &'static str,
        scan_too: bool,
        contents: impl FnOnce(&mut Tracer<'_>),
    ) {
        let start = holder as *const H as *const u8 as usize;
        let found = self.sink.locate(start, size_of_val(holder), estimated);
        let Some(addr) = found else {
            self.sink
                .unlocated(type_name, estimated, used.min(estimated));
            contents(self);
            return;
        };
        let block = BlockReport {
            addr,
            used: Some(used.min(estimated)),
            type_name,
            scan_too,
        };
        if let Some(previous) = self.sink.enter(&block) {
            contents(self);
            self.sink.leave(previous);
        }
    }

    /// Reports a held TurboWish guard or permit of resource `resource_id`,
    /// so the walk names the root (task) whose state holds it.
    /// Reports a resource handle (a channel end, a lock) at the current
    /// field path, for [`crate::ownership`].
    pub(crate) fn handle(
        &mut self,
        resource_id: u64,
        slot: Option<usize>,
        kind: crate::ownership::HandleKind,
    ) {
        self.sink.handle(crate::ownership::MarkedHandle {
            resource_id,
            slot,
            kind,
        });
    }

    pub(crate) fn guard(&mut self, resource_id: u64, resource_name: &str) {
        self.sink.guard(resource_id, resource_name);
    }
}

/// One block as a `Trace` impl reports it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct BlockReport {
    pub(crate) addr: usize,
    /// Payload bytes; `None` for a shared block (its layout is the
    /// pointer's, not the value's).
    pub(crate) used: Option<usize>,
    pub(crate) type_name: &'static str,
    pub(crate) scan_too: bool,
}

/// Where a [`Tracer`]'s reports go: the walker's graph builder.
pub(crate) trait Sink {
    /// A block reached from the current position. `Some(previous position)`
    /// when its contents are to be traced now (first visit, or not a known
    /// block); the caller passes it back to `leave` afterwards.
    fn enter(&mut self, block: &BlockReport) -> Option<Position>;
    fn leave(&mut self, previous: Position);
    fn opaque(&mut self, addr: usize, type_name: &'static str);
    /// A block one of the words in `[start, start + len)` points into,
    /// closest in size to `estimated`.
    fn locate(&mut self, start: usize, len: usize, estimated: usize) -> Option<usize>;
    /// Conservative edges from the current position to the blocks the
    /// words in `[start, start + len)` point into.
    fn scan_inline(&mut self, start: usize, len: usize);
    fn unlocated(&mut self, type_name: &'static str, estimated: usize, used: usize);
    fn guard(&mut self, resource_id: u64, resource_name: &str);
    fn handle(&mut self, handle: crate::ownership::MarkedHandle);
    fn push_path(&mut self, segment: &'static str);
    fn pop_path(&mut self);
}

/// Where in the graph a `Trace` impl is reporting from: directly under a
/// root, or inside a block (by index).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Position {
    Root(u32),
    Block(u32),
}
