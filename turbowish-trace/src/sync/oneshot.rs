//! [`channel`]: tokio's oneshot channel, recording which task holds the
//! sender and who waits on the receiver.

use std::borrow::Cow;
use std::future::Future;
use std::panic::Location;
use std::pin::Pin;
use std::task::{Context, Poll};

use crate::resource::{End, OwnedWait};

pub use tokio::sync::oneshot::error::RecvError;

/// A oneshot channel named after its creation place.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let (tx, rx) = turbowish_trace::sync::oneshot::channel();
/// tx.send(7).unwrap();
/// assert_eq!(rx.await, Ok(7));
/// # }
/// ```
#[track_caller]
pub fn channel<T>() -> (Sender<T>, Receiver<T>) {
    channel_at(None, Location::caller())
}

/// A oneshot channel with a name for reports.
#[track_caller]
pub fn channel_named<T>(name: impl Into<Cow<'static, str>>) -> (Sender<T>, Receiver<T>) {
    channel_at(Some(name.into()), Location::caller())
}

fn channel_at<T>(
    name: Option<Cow<'static, str>>,
    location: &'static Location<'static>,
) -> (Sender<T>, Receiver<T>) {
    let (tx, rx) = tokio::sync::oneshot::channel();
    let (send, receive) = super::mpsc::channel_resource(name, location);
    let sender = Sender {
        end: send,
        inner: Some(tx),
    };
    let receiver = Receiver {
        end: receive,
        location,
        inner: rx,
        waiting: None,
    };
    (sender, receiver)
}

/// The sending half of a oneshot [`channel`].
#[derive(Debug)]
pub struct Sender<T> {
    inner: Option<tokio::sync::oneshot::Sender<T>>,
    end: End,
}

impl<T> Sender<T> {
    /// Sends the value; `Err(value)` if the receiver is gone.
    pub fn send(mut self, value: T) -> Result<(), T> {
        match self.inner.take() {
            Some(tx) => tx.send(value),
            None => Err(value),
        }
    }

    /// Records the calling task as the sender's holder (after moving the
    /// sender into another task, say).
    #[track_caller]
    pub fn mark_held(&self) {
        self.end.mark_held_at(Location::caller());
    }

    /// Whether the receiver is gone.
    pub fn is_closed(&self) -> bool {
        self.inner.as_ref().is_none_or(|tx| tx.is_closed())
    }
}

/// The receiving half of a oneshot [`channel`]; await it for the value.
#[derive(Debug)]
pub struct Receiver<T> {
    inner: tokio::sync::oneshot::Receiver<T>,
    /// The receiving end's holder record and mark, so the walker names the
    /// task owning the receiver (see [`crate::ownership`]).
    end: End,
    location: &'static Location<'static>,
    /// Set while a poll has returned `Pending`.
    waiting: Option<OwnedWait>,
}

impl<T> Receiver<T> {
    /// The value if it has been sent, without waiting.
    pub fn try_recv(&mut self) -> Result<T, tokio::sync::oneshot::error::TryRecvError> {
        self.inner.try_recv()
    }

    /// Closes the channel: a later send fails.
    pub fn close(&mut self) {
        self.inner.close();
    }
}

impl<T> Future for Receiver<T> {
    type Output = Result<T, RecvError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        match Pin::new(&mut this.inner).poll(cx) {
            Poll::Ready(result) => {
                this.waiting = None;
                Poll::Ready(result)
            }
            Poll::Pending => {
                if this.waiting.is_none() {
                    this.end.mark_held_at(this.location);
                    this.waiting = Some(this.end.wait_owned_at(this.location));
                }
                Poll::Pending
            }
        }
    }
}

/// Reports the end to the walker (see [`crate::ownership`]); tokio's
/// channel inside is scanned conservatively.
impl<T> crate::Trace for Receiver<T> {
    fn trace(&self, tracer: &mut crate::Tracer<'_>) {
        self.end.trace_end(tracer);
        tracer.conservative(&self.inner);
    }
}

/// Reports the end to the walker (see [`crate::ownership`]); tokio's
/// channel inside is scanned conservatively.
impl<T> crate::Trace for Sender<T> {
    fn trace(&self, tracer: &mut crate::Tracer<'_>) {
        self.end.trace_end(tracer);
        tracer.conservative(&self.inner);
    }
}
