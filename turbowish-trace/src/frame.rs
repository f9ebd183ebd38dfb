//! Frames: named futures inside a task, so a report can say which future
//! holds or waits, not only which task.
//!
//! Each thread keeps a fixed-size stack of frame names. A [`Frame`] pushes
//! its name for the length of each of its polls and pops it afterwards (also
//! when the poll panics), so the stack always spells the path from the task
//! down to the future being polled now. Futures polled side by side by
//! `join!` or `select!` are polled one after the other, each inside its own
//! push and pop, so a sibling's frame is never left on the stack. Nothing on
//! this path allocates.

use core::cell::Cell;
use core::fmt;
use core::future::Future;
use core::pin::Pin;
use core::task::{Context, Poll};

/// Deepest frame nesting recorded; deeper frames are counted but not named.
pub const MAX_FRAMES: usize = 32;

struct Stack {
    names: [Cell<&'static str>; MAX_FRAMES],
    depth: Cell<usize>,
    /// Whether this task poll has already noted where the task parks (the
    /// innermost frame returning `Pending` notes it, and it returns first).
    parked_noted: Cell<bool>,
    /// Depth at which the innermost task's frames start.
    base: Cell<usize>,
}

thread_local! {
    static STACK: Stack = const {
        Stack {
            names: [const { Cell::new("") }; MAX_FRAMES],
            depth: Cell::new(0),
            parked_noted: Cell::new(false),
            base: Cell::new(0),
        }
    };
}

/// Adds [`traced`](TracedExt::traced) to every future.
pub trait TracedExt: Future + Sized {
    /// Names this future as a frame: while it is polled, `name` is on the
    /// current task's frame stack.
    ///
    /// ```
    /// use std::future::Future;
    /// use turbowish_trace::frame::current_frames;
    /// use turbowish_trace::TracedExt;
    ///
    /// let fut = async { current_frames().to_string() }.traced("load_user");
    /// let mut fut = std::pin::pin!(fut);
    /// let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    /// let path = match fut.as_mut().poll(&mut cx) {
    ///     std::task::Poll::Ready(path) => path,
    ///     std::task::Poll::Pending => unreachable!(),
    /// };
    /// assert_eq!(path, "load_user");
    /// ```
    fn traced(self, name: &'static str) -> Frame<Self> {
        Frame { name, inner: self }
    }
}

impl<F: Future> TracedExt for F {}

pin_project_lite::pin_project! {
    /// A future named as a frame; see [`TracedExt::traced`].
    #[derive(Debug)]
    #[must_use = "futures do nothing unless polled"]
    pub struct Frame<F> {
        name: &'static str,
        #[pin]
        inner: F,
    }
}

impl<F: Future> Future for Frame<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        let _pushed = Push::new(this.name);
        let poll = this.inner.poll(cx);
        if poll.is_pending() {
            note_parked();
        }
        poll
    }
}

/// Pops on drop, so a panicking poll leaves the stack as it found it.
struct Push {
    depth: usize,
}

impl Push {
    fn new(name: &'static str) -> Push {
        STACK.with(|s| {
            let depth = s.depth.get();
            if let Some(slot) = s.names.get(depth) {
                slot.set(name);
            }
            s.depth.set(depth + 1);
            Push { depth }
        })
    }
}

impl Drop for Push {
    fn drop(&mut self) {
        let _ = STACK.try_with(|s| s.depth.set(self.depth));
    }
}

/// The innermost frame returning `Pending` in a task poll records the
/// frame path the task is parked in (once per poll: the outer frames
/// return `Pending` after it and find it noted). A holder's parked path is
/// what a chain needs at its end: not where the task took the lock, but
/// which future inside it is waiting now.
fn note_parked() {
    let first = STACK.with(|s| !s.parked_noted.replace(true));
    if first {
        crate::registry::note_parked(current_path());
    }
}

/// Marks the start of a task's frames for the length of one task poll; a
/// task polled inside another (a nested `block_on`) starts a fresh path.
#[derive(Debug)]
pub(crate) struct TaskScope {
    base: usize,
    parked_noted: bool,
}

impl TaskScope {
    pub(crate) fn enter() -> TaskScope {
        STACK.with(|s| TaskScope {
            base: s.base.replace(s.depth.get()),
            parked_noted: s.parked_noted.replace(false),
        })
    }

    /// Whether a frame noted where this poll parks.
    pub(crate) fn parked_noted(&self) -> bool {
        STACK.with(|s| s.parked_noted.get())
    }
}

impl Drop for TaskScope {
    fn drop(&mut self) {
        let _ = STACK.try_with(|s| {
            s.base.set(self.base);
            s.parked_noted.set(self.parked_noted);
        });
    }
}

/// The frame path of the future being polled on this thread, innermost
/// last. Copies at most [`MAX_FRAMES`] names; never allocates.
pub fn current_frames() -> Frames {
    STACK.with(|s| {
        let (base, depth) = (s.base.get(), s.depth.get());
        let mut frames = Frames {
            names: [""; MAX_FRAMES],
            len: 0,
            hidden: 0,
        };
        for i in base..depth {
            match s.names.get(i) {
                Some(name) => {
                    frames.names[frames.len] = name.get();
                    frames.len += 1;
                }
                None => frames.hidden += 1,
            }
        }
        frames
    })
}

/// Frames a resource record keeps: enough to name the future, small enough
/// to copy on every lock.
pub(crate) const RECORDED_FRAMES: usize = 6;

/// The current frame path, innermost [`RECORDED_FRAMES`] names kept.
#[inline]
pub(crate) fn current_path() -> FramePath {
    let mut path = FramePath::default();
    fill_path(&mut path);
    path
}

/// Fills an empty `path` with the current frame path (see
/// [`current_path`]), in place: resource records are filled where they sit.
/// Names past the path's length are left as they are, so `path` must be
/// `FramePath::default()` for equality to mean equal paths.
#[inline]
pub(crate) fn fill_path(path: &mut FramePath) {
    debug_assert_eq!(*path, FramePath::default());
    STACK.with(|s| {
        let depth = s.depth.get().min(MAX_FRAMES);
        let base = s.base.get().min(depth);
        let start = depth - (depth - base).min(RECORDED_FRAMES);
        path.hidden = (start - base) as u16;
        path.len = (depth - start) as u8;
        for (dst, src) in path.names.iter_mut().zip(&s.names[start..depth]) {
            *dst = src.get();
        }
    })
}

/// A short frame path kept in resource records: the innermost 6 frame
/// names at the moment of the acquisition or wait (the outermost are
/// dropped first when the path is deeper).
#[derive(Clone, Copy, Default, PartialEq, Eq)]
pub struct FramePath {
    names: [&'static str; RECORDED_FRAMES],
    len: u8,
    hidden: u16,
}

impl FramePath {
    /// The frame names kept, outermost first.
    pub fn names(&self) -> &[&'static str] {
        &self.names[..self.len as usize]
    }

    /// Whether no frame was active.
    pub fn is_empty(&self) -> bool {
        self.len == 0 && self.hidden == 0
    }
}

impl fmt::Display for FramePath {
    /// `… › handle_request › load_user`
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.hidden > 0 {
            f.write_str("…")?;
        }
        for (i, name) in self.names().iter().enumerate() {
            if i > 0 || self.hidden > 0 {
                f.write_str(" › ")?;
            }
            f.write_str(name)?;
        }
        Ok(())
    }
}

impl fmt::Debug for FramePath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "\"{self}\"")
    }
}

/// A copy of a frame path; see [`current_frames`].
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Frames {
    names: [&'static str; MAX_FRAMES],
    len: usize,
    hidden: usize,
}

impl Frames {
    /// The frame names, outermost first.
    pub fn names(&self) -> &[&'static str] {
        &self.names[..self.len]
    }

    /// Whether no frame is active.
    pub fn is_empty(&self) -> bool {
        self.len == 0 && self.hidden == 0
    }

    /// Frames nested deeper than [`MAX_FRAMES`], not named.
    pub fn hidden(&self) -> usize {
        self.hidden
    }
}

impl fmt::Display for Frames {
    /// `handle_request › load_user`
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, name) in self.names().iter().enumerate() {
            if i > 0 {
                f.write_str(" › ")?;
            }
            f.write_str(name)?;
        }
        if self.hidden > 0 {
            write!(f, " › … ({} more)", self.hidden)?;
        }
        Ok(())
    }
}

impl fmt::Debug for Frames {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.names()).finish()
    }
}
