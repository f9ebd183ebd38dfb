#![doc = include_str!("../README.md")]

mod header;
mod record;
mod registry;
mod sample;
mod shard;
mod stats;
#[cfg(all(target_arch = "x86_64", target_os = "linux"))]
mod unwind;

pub mod budget;
pub mod context;

use core::alloc::{GlobalAlloc, Layout};
use core::sync::atomic::Ordering;
use std::alloc::System;

use header::{Header, SAMPLED};

pub use record::{Tag, TaskTag};
pub use registry::{
    heap_view, heap_walk_enabled, helper_threads, is_internal_block, owner_of_block, CompactBlocks,
    HeapView, LiveBlock, PauseGuard,
};
pub use sample::{
    sample_interval, samples, Sample, DEFAULT_SAMPLE_INTERVAL, MAX_FRAMES, SAMPLE_INTERVAL_ENV,
};
pub use shard::InternalGuard;
pub use stats::{stats, sweep_idle_records, Counters, Owner, Stats, TaskStats};

/// The TurboWish global allocator: wraps an inner allocator `A` and tags
/// every block with the task that allocated it.
///
/// Each block gets an 8-byte prefix header (more only for alignments above 8,
/// where the prefix is the alignment) holding the allocating task's slot. The
/// hot path (an allocation, or a free of the running task's block, on a
/// thread already counting for that task) takes no lock, does no hashing,
/// never allocates and does no atomic read-modify-write: counts are batched
/// per thread (see the crate docs). Switching task, and freeing another
/// task's block, cost a few atomic operations more.
///
/// The allocator value also fixes what else it does, before its first
/// allocation: sampling allocations with their stacks
/// ([`TurboWish::sample_interval`], on by default) and heap-walk mode
/// ([`TurboWish::heap_walk`], off by default). What a `static` allocator
/// leaves off is compiled out.
///
/// ```
/// use turbowish_alloc::TurboWish;
///
/// #[global_allocator]
/// static ALLOC: TurboWish = TurboWish::system();
/// # fn main() {}
/// ```
#[derive(Debug)]
pub struct TurboWish<A = System> {
    inner: A,
    /// Mean sampling interval in bytes; 0 compiles sampling out.
    sample_interval: u64,
    /// Heap-walk mode: register every block (see [`heap_view`]).
    heap_walk: bool,
}

impl TurboWish<System> {
    /// TurboWish over the system allocator, sampling at
    /// [`DEFAULT_SAMPLE_INTERVAL`].
    pub const fn system() -> TurboWish<System> {
        TurboWish::new(System)
    }
}

impl<A: Default> Default for TurboWish<A> {
    fn default() -> TurboWish<A> {
        TurboWish::new(A::default())
    }
}

impl<A> TurboWish<A> {
    /// TurboWish over any allocator, sampling at [`DEFAULT_SAMPLE_INTERVAL`].
    pub const fn new(inner: A) -> TurboWish<A> {
        TurboWish {
            inner,
            sample_interval: DEFAULT_SAMPLE_INTERVAL,
            heap_walk: false,
        }
    }

    /// Heap-walk mode: besides counting (and sampling), keep a registry of
    /// every live block, so that [`heap_view`] can list them and map any
    /// address to its block, with frees paused while it looks.
    ///
    /// The mode is part of the allocator value, so it is fixed before the
    /// first allocation, and an allocator without it has none of its code.
    /// It is meant for the global allocator: the registry belongs to the
    /// first heap-walk allocator that allocates, which must live as long as
    /// its blocks (a `static` does); the blocks of any other heap-walk
    /// allocator are not registered.
    ///
    /// It costs each allocation and free a few thread-local loads and
    /// stores and one write of a 16-byte registry entry (see the crate
    /// docs for figures).
    ///
    /// ```
    /// use turbowish_alloc::TurboWish;
    ///
    /// #[global_allocator]
    /// static ALLOC: TurboWish = TurboWish::system().heap_walk();
    /// # fn main() { assert!(turbowish_alloc::heap_walk_enabled()); }
    /// ```
    pub const fn heap_walk(mut self) -> TurboWish<A> {
        self.heap_walk = true;
        self
    }

    /// Samples allocations with a backtrace every `bytes` allocated bytes
    /// on average (see [`samples`]); 1 samples every allocation.
    ///
    /// 0 removes sampling from the allocator altogether (it is compiled
    /// out, and the `TURBOWISH_SAMPLE_INTERVAL` environment variable then
    /// cannot turn it on). Otherwise the variable, read once at the first
    /// allocation, overrides `bytes` (0 in it turns sampling off).
    ///
    /// ```
    /// use turbowish_alloc::TurboWish;
    ///
    /// #[global_allocator]
    /// static ALLOC: TurboWish = TurboWish::system().sample_interval(64 * 1024);
    ///
    /// fn main() {
    ///     # if std::env::var_os("TURBOWISH_SAMPLE_INTERVAL").is_none() {
    ///     assert_eq!(turbowish_alloc::sample_interval(), 64 * 1024);
    ///     # }
    /// }
    /// ```
    pub const fn sample_interval(mut self, bytes: u64) -> TurboWish<A> {
        self.sample_interval = bytes;
        self
    }

    /// The wrapped allocator.
    pub const fn inner(&self) -> &A {
        &self.inner
    }
}

// SAFETY: every method forwards to `A` with a layout grown by the prefix (and
// checked by `header::inner_layout`), returns `A`'s null unchanged, and hands
// out the pointer `prefix` bytes into `A`'s block, which keeps the caller's
// alignment because the prefix is a multiple of it. Deallocation and realloc
// recompute the same prefix from the caller's layout.
unsafe impl<A: GlobalAlloc> GlobalAlloc for TurboWish<A> {
    // `alloc` and `dealloc` are always inlined into their caller (the
    // `__rust_alloc` shim, or a direct caller): with plain `#[inline]`
    // LLVM kept them out of line in two of the bench binaries, and the
    // out-of-line copies spilled registers around the inner call: a
    // 16-byte pair took 9.1–9.3 ns there, against 7.8–7.9 ns always
    // inlined in the same binaries. The cold paths stay out of line
    // (`#[cold]` functions), so the inlined body is small.
    #[inline(always)]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let Some(inner_layout) = header::inner_layout(layout) else {
            return core::ptr::null_mut();
        };
        // SAFETY: `inner_layout` has non-zero size (it includes the header).
        let inner = unsafe { self.inner.alloc(inner_layout) };
        if inner.is_null() {
            return inner;
        }
        // SAFETY: `inner` is a fresh block of `inner_layout`.
        unsafe { self.finish_alloc(inner, layout) }
    }

    #[inline]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let Some(inner_layout) = header::inner_layout(layout) else {
            return core::ptr::null_mut();
        };
        // SAFETY: `inner_layout` has non-zero size.
        let inner = unsafe { self.inner.alloc_zeroed(inner_layout) };
        if inner.is_null() {
            return inner;
        }
        // SAFETY: as in `alloc`; writing the header leaves the user bytes zero.
        unsafe { self.finish_alloc(inner, layout) }
    }

    #[inline(always)]
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        let ptr = header::launder(ptr);
        // SAFETY: the caller passes a block of ours with its layout, so its
        // header was written by `finish_alloc`.
        let header = unsafe { header::read(ptr) };
        if self.heap_walk {
            let index = header.flags & registry::INDEX_MASK;
            if index != 0 {
                // SAFETY: as for this function; the registry calls it once,
                // now or when the heap view that paused frees is dropped.
                registry::free(index, || unsafe { self.release(ptr, layout, header) });
                return;
            }
        }
        // SAFETY: as for this function.
        unsafe { self.release(ptr, layout, header) }
    }

    #[inline]
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let ptr = header::launder(ptr);
        // SAFETY: `ptr` is a block of ours (see `dealloc`).
        let old = unsafe { header::read(ptr) };
        if self.heap_walk {
            let index = old.flags & registry::INDEX_MASK;
            if index != 0 {
                // SAFETY: as for this function.
                return unsafe { self.realloc_registered(ptr, layout, new_size, old, index) };
            }
        }
        // SAFETY: as for this function.
        unsafe { self.resize(ptr, layout, new_size, old) }
            .map_or(core::ptr::null_mut(), |(user, _)| user)
    }
}

impl<A: GlobalAlloc> TurboWish<A> {
    /// Counts a fresh inner block and returns its user pointer.
    ///
    /// # Safety
    ///
    /// `inner` must be a live block allocated from `self.inner` with
    /// `header::inner_layout(layout)`.
    #[inline(always)]
    unsafe fn finish_alloc(&self, inner: *mut u8, layout: Layout) -> *mut u8 {
        let (tag, due) = shard::on_alloc_sampled(layout.size(), self.sample_interval != 0);
        // SAFETY: guaranteed by the caller.
        let user = unsafe { header::user_from_inner(inner, layout.align()) };
        let flags = self.sample(due, user, layout.size(), tag);
        // A registered block's header is written by the registry, before
        // its entry is published.
        // SAFETY: `user` is the user pointer of the fresh block `inner`.
        if !(self.heap_walk && unsafe { self.register(user, layout, tag, flags) }) {
            // SAFETY: `user` is the user pointer of the live block `inner`.
            unsafe { header::write(user, Header { tag, flags }) };
        }
        user
    }

    /// Samples a fresh block whose allocation ran the countdown out (`due`)
    /// and returns the header flags it earns ([`SAMPLED`] or nothing). With
    /// sampling configured off this is a constant 0.
    #[inline(always)]
    fn sample(&self, due: bool, user: *mut u8, size: usize, tag: u32) -> u32 {
        if self.sample_interval != 0
            && due
            && sample::on_due(self.sample_interval, user as usize, size, tag)
        {
            SAMPLED
        } else {
            0
        }
    }

    /// Registers a fresh block in heap-walk mode, writing its header (with
    /// its registry index); false when it is not registered and its header
    /// is still to be written.
    ///
    /// # Safety
    ///
    /// `user` must be the user pointer of a fresh block of ours, whose
    /// header has not been written.
    #[inline(always)]
    unsafe fn register(&self, user: *mut u8, layout: Layout, tag: u32, flags: u32) -> bool {
        // SAFETY: guaranteed by the caller.
        unsafe {
            registry::register(
                (self as *const Self).cast(),
                Self::release_erased,
                user as usize,
                layout,
                tag,
                flags,
            )
        }
    }

    /// Frees a block: its counters, its sample, the inner block.
    ///
    /// # Safety
    ///
    /// `ptr` must be a live block of ours allocated with `layout`, whose
    /// header is `header`; it is freed.
    #[inline(always)]
    unsafe fn release(&self, ptr: *mut u8, layout: Layout, header: Header) {
        shard::on_free(header.tag, layout.size());
        if self.sample_interval != 0 && header.flags & SAMPLED != 0 {
            sample::forget(ptr as usize);
        }
        // SAFETY: `ptr` came from `user_from_inner` with this alignment and
        // the block was allocated with `inner_layout(layout)`.
        unsafe {
            let inner = header::inner_from_user(ptr, layout.align());
            self.inner
                .dealloc(inner, header::inner_layout_unchecked(layout))
        }
    }

    /// [`TurboWish::release`] for the registry, which keeps allocators
    /// type-erased.
    ///
    /// # Safety
    ///
    /// `this` must point to a live `TurboWish<A>`, and `ptr` be a live block
    /// of it allocated with `layout`; it is freed.
    unsafe fn release_erased(this: *const (), ptr: *mut u8, layout: Layout) {
        // SAFETY: guaranteed by the caller.
        unsafe {
            let this = &*this.cast::<Self>();
            this.release(ptr, layout, header::read(ptr));
        }
    }

    /// The inner realloc, with counting and sampling: returns the new user
    /// pointer and header, or `None` (the old block then stays as it was,
    /// but for its sample, which is dropped).
    ///
    /// # Safety
    ///
    /// As for [`GlobalAlloc::realloc`]; `old` is `ptr`'s header.
    #[inline(always)]
    unsafe fn resize(
        &self,
        ptr: *mut u8,
        layout: Layout,
        new_size: usize,
        old: Header,
    ) -> Option<(*mut u8, Header)> {
        debug_assert!(Layout::from_size_align(new_size, layout.align()).is_ok());
        // SAFETY: the caller guarantees `new_size` is valid for this alignment.
        let new_layout = unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) };
        let new_inner = header::inner_layout(new_layout)?;
        let was_sampled = self.sample_interval != 0 && old.flags & SAMPLED != 0;
        if was_sampled {
            // Before the inner realloc: once the old address is free,
            // another thread may get it and sample it.
            sample::forget(ptr as usize);
        }
        // SAFETY: the block was allocated with `inner_layout(layout)`; the
        // prefix is unchanged because the alignment is, so the header and
        // contents move together.
        let inner = unsafe {
            self.inner.realloc(
                header::inner_from_user(ptr, layout.align()),
                header::inner_layout_unchecked(layout),
                new_inner.size(),
            )
        };
        if inner.is_null() {
            // The old block is untouched and still counted; its sample is
            // gone, so it is no longer marked sampled.
            if was_sampled {
                // SAFETY: the old block is still live and ours.
                unsafe {
                    header::write(
                        ptr,
                        Header {
                            flags: old.flags & !SAMPLED,
                            ..old
                        },
                    )
                };
            }
            return None;
        }
        // Like jemalloc: a realloc is a free by the block's owner plus an
        // allocation by whoever is running now.
        shard::on_free(old.tag, layout.size());
        let (tag, due) = shard::on_alloc_sampled(new_size, self.sample_interval != 0);
        // SAFETY: `inner` is a live block of `new_inner`.
        let user = unsafe { header::user_from_inner(inner, layout.align()) };
        // (The registry index, if any, stays.)
        let flags = (old.flags & !SAMPLED) | self.sample(due, user, new_size, tag);
        let header = Header { tag, flags };
        // SAFETY: `user` is the user pointer of the live block `inner`.
        unsafe { header::write(user, header) };
        Some((user, header))
    }

    /// `realloc` of a block registered in heap-walk mode.
    ///
    /// # Safety
    ///
    /// As for [`GlobalAlloc::realloc`]; `old` is `ptr`'s header and `index`
    /// its registry index.
    #[cold]
    unsafe fn realloc_registered(
        &self,
        ptr: *mut u8,
        layout: Layout,
        new_size: usize,
        old: Header,
        index: u32,
    ) -> *mut u8 {
        // SAFETY: the caller guarantees `new_size` is valid for this alignment.
        let new_layout = unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) };
        let resized = registry::resize(index, new_layout, || {
            // SAFETY: as for this function.
            unsafe { self.resize(ptr, layout, new_size, old) }.map(|(user, _)| user as usize)
        });
        match resized {
            Some(user) => user.map_or(core::ptr::null_mut(), |u| u as *mut u8),
            None => {
                // A heap view has paused frees: the old block must stay
                // where it is until the view is dropped. Move by hand.
                // SAFETY: `new_layout` is valid (see above) and non-zero
                // in size or not, `alloc` handles it like any layout.
                let new = unsafe { self.alloc(new_layout) };
                if !new.is_null() {
                    // SAFETY: both blocks are live, distinct, and at least
                    // this long; the old one is then freed (deferred).
                    unsafe {
                        core::ptr::copy_nonoverlapping(ptr, new, layout.size().min(new_size));
                        self.dealloc(ptr, layout);
                    }
                }
                new
            }
        }
    }
}

/// Charges this thread's allocations to the `internal` bucket until the
/// guard is dropped: for TurboWish's own bookkeeping (registries, reports)
/// and tools built on it, so that it is not charged to the user's tasks.
///
/// ```
/// let guard = turbowish_alloc::internal();
/// let bookkeeping = vec![0u8; 64];
/// drop(guard);
/// # drop(bookkeeping);
/// ```
pub fn internal() -> InternalGuard {
    InternalGuard::new()
}

/// The number tokio's task `Id` displays as, read without allocating:
/// `Owner::TokioTask` carries it. (tokio exposes the value only through
/// `Display`, which allocates when collected into a string, and `Hash`,
/// which this reads through a capturing hasher.)
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let task = tokio::spawn(async {});
/// let n = turbowish_alloc::tokio_task_number(task.id());
/// assert_eq!(n.to_string(), task.id().to_string());
/// # }
/// ```
#[cfg(feature = "tokio")]
#[inline]
pub fn tokio_task_number(id: tokio::task::Id) -> u64 {
    use core::hash::{Hash, Hasher};

    struct Capture(u64);
    impl Hasher for Capture {
        fn finish(&self) -> u64 {
            self.0
        }
        fn write(&mut self, bytes: &[u8]) {
            for &b in bytes {
                self.0 = (self.0 << 8) | u64::from(b);
            }
        }
        fn write_u64(&mut self, v: u64) {
            self.0 = v;
        }
    }
    let mut capture = Capture(0);
    id.hash(&mut capture);
    capture.0
}

/// Switches tagging on or off at run time (on by default).
///
/// While off, blocks still get a header (so a block allocated while off can
/// be freed while on, and the other way round) but no allocation is counted
/// or sampled, and freeing a block allocated while off moves no counter. Freeing a block
/// allocated while on still is counted, so the live counts stay exact. An
/// allocation then costs the header and one relaxed atomic load more than
/// the inner allocator.
///
/// ```
/// turbowish_alloc::set_enabled(false);
/// assert!(!turbowish_alloc::is_enabled());
/// turbowish_alloc::set_enabled(true);
/// ```
pub fn set_enabled(enabled: bool) {
    shard::ENABLED.store(enabled, Ordering::Relaxed);
}

/// Whether tagging is on (see [`set_enabled`]).
pub fn is_enabled() -> bool {
    shard::ENABLED.load(Ordering::Relaxed)
}
