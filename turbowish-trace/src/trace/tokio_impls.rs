//! [`Trace`] for tokio's and TurboWish's asynchronous types.
//!
//! A channel's buffer sits in a block its ends share, behind pointers
//! neither tokio nor TurboWish exposes: the ends are scanned
//! conservatively, so the buffer (and the messages in it) counts for
//! whoever holds an end, shared when the ends are held by different roots.

use tokio::task::JoinHandle;

use super::{Trace, Tracer};

/// A handle to a task owns none of the task's state (each task is a root
/// of its own).
impl<T> Trace for JoinHandle<T> {
    fn trace(&self, _: &mut Tracer<'_>) {}
}

/// Traced when it can be locked without waiting; otherwise the value is
/// not traced (the walker never waits for the program's locks).
impl<T: Trace + ?Sized> Trace for tokio::sync::Mutex<T> {
    fn trace(&self, tracer: &mut Tracer<'_>) {
        if let Ok(value) = self.try_lock() {
            value.trace(tracer);
        }
    }
}

/// Traced when it can be read without waiting.
impl<T: Trace + ?Sized> Trace for tokio::sync::RwLock<T> {
    fn trace(&self, tracer: &mut Tracer<'_>) {
        if let Ok(value) = self.try_read() {
            value.trace(tracer);
        }
    }
}

macro_rules! trace_channel_end {
    ($($end:ty),* $(,)?) => {
        $(
            /// Scanned conservatively: see the module docs.
            impl<T> Trace for $end {
                fn trace(&self, tracer: &mut Tracer<'_>) {
                    tracer.conservative(self);
                }
            }
        )*
    };
}

trace_channel_end!(
    tokio::sync::mpsc::Sender<T>,
    tokio::sync::mpsc::Receiver<T>,
    tokio::sync::mpsc::UnboundedSender<T>,
    tokio::sync::mpsc::UnboundedReceiver<T>,
    tokio::sync::oneshot::Sender<T>,
    tokio::sync::oneshot::Receiver<T>,
);
