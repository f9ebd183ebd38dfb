//! [`channel`] and [`unbounded_channel`]: tokio's mpsc channels, recording
//! which tasks hold senders and the receiver, and who waits.
//!
//! A channel is a *cumulative* resource (Holt's resource-allocation graph):
//! a receiver waiting on an empty channel waits for every task holding a
//! sender; a sender blocked on a full channel waits for the receiver's task.
//! Which task holds a sender is recorded when it is created, cloned, and at
//! each send; a sender moved into another task and not yet used there is
//! still attributed to the task that last used it.

use std::borrow::Cow;
use std::future::Future;
use std::panic::Location;

use super::resource::{Access, Class, ResourceKind};
use super::{acquire_recorded, cooperate};
use crate::resource::{End, Resource};

pub use tokio::sync::mpsc::error::{SendError, TryRecvError, TrySendError};
pub use tokio::sync::mpsc::Permit;

/// The methods both receivers share, written once: their inner tokio
/// receivers have the same API but no common trait.
macro_rules! receiver_methods {
    () => {
        /// Receives the next value, waiting (recorded: this task waits for
        /// the senders' tasks) while the channel is empty. `None` once every
        /// sender is gone.
        #[track_caller]
        pub fn recv(&mut self) -> impl Future<Output = Option<T>> + '_ {
            let location = Location::caller();
            async move {
                self.end.mark_held_at(location);
                acquire_recorded(
                    || self.end.wait_at(location),
                    &mut self.inner,
                    |inner| ready_or_closed(inner.try_recv()),
                    |inner| inner.recv(),
                )
                .await
            }
        }

        /// Receives up to `limit` values into `buffer`, waiting (recorded
        /// like `recv`) while the channel is empty; returns how many were
        /// received, 0 once every sender is gone (or `limit` is 0).
        #[track_caller]
        pub fn recv_many<'a>(
            &'a mut self,
            buffer: &'a mut Vec<T>,
            limit: usize,
        ) -> impl Future<Output = usize> + 'a {
            let location = Location::caller();
            async move {
                self.end.mark_held_at(location);
                acquire_recorded(
                    || self.end.wait_at(location),
                    (&mut self.inner, buffer),
                    |(inner, buffer)| drain_ready(|| inner.try_recv(), buffer, limit),
                    |(inner, buffer)| inner.recv_many(buffer, limit),
                )
                .await
            }
        }

        /// Receives without waiting.
        pub fn try_recv(&mut self) -> Result<T, TryRecvError> {
            self.inner.try_recv()
        }

        /// Closes the channel for senders; buffered values can still be
        /// read.
        pub fn close(&mut self) {
            self.inner.close();
        }

        /// Whether the channel is closed (every sender gone, or `close`).
        pub fn is_closed(&self) -> bool {
            self.inner.is_closed()
        }

        /// Values buffered now.
        pub fn len(&self) -> usize {
            self.inner.len()
        }

        /// Whether no value is buffered.
        pub fn is_empty(&self) -> bool {
            self.inner.is_empty()
        }
    };
}

/// A bounded channel of `buffer` messages, named after its creation place.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let (tx, mut rx) = turbowish_trace::sync::mpsc::channel(8);
/// tx.send("move e4").await.unwrap();
/// assert_eq!(rx.recv().await, Some("move e4"));
/// # }
/// ```
#[track_caller]
pub fn channel<T>(buffer: usize) -> (Sender<T>, Receiver<T>) {
    channel_at(None, buffer, Location::caller())
}

/// A bounded channel with a name for reports, such as `"player move"`.
#[track_caller]
pub fn channel_named<T>(
    name: impl Into<Cow<'static, str>>,
    buffer: usize,
) -> (Sender<T>, Receiver<T>) {
    channel_at(Some(name.into()), buffer, Location::caller())
}

fn channel_at<T>(
    name: Option<Cow<'static, str>>,
    buffer: usize,
    location: &'static Location<'static>,
) -> (Sender<T>, Receiver<T>) {
    let (tx, rx) = tokio::sync::mpsc::channel(buffer);
    let (send, receive) = channel_resource(name, location);
    let sender = Sender {
        end: send,
        inner: tx,
    };
    let receiver = Receiver {
        end: receive,
        inner: rx,
    };
    (sender, receiver)
}

/// A channel's record ([`Class::Channel`]) and its first two ends, held by
/// the caller; the ends keep the record alive.
pub(super) fn channel_resource(
    name: Option<Cow<'static, str>>,
    location: &'static Location<'static>,
) -> (End, End) {
    let resource = Resource::declared(ResourceKind::Channel, name, Class::Channel, location);
    let send = End::new(resource.state_arc(), location, Access::Send);
    let receive = End::new(resource.state_arc(), location, Access::Receive);
    (send, receive)
}

/// What a receive that need not wait returns: the value, or `None` once
/// the channel is closed and empty; `Err(Empty)` means it must wait.
fn ready_or_closed<T>(tried: Result<T, TryRecvError>) -> Option<Option<T>> {
    match tried {
        Ok(value) => Some(Some(value)),
        Err(TryRecvError::Disconnected) => Some(None),
        Err(TryRecvError::Empty) => None,
    }
}

/// The sending half of [`channel`].
#[derive(Debug)]
pub struct Sender<T> {
    inner: tokio::sync::mpsc::Sender<T>,
    end: End,
}

impl<T> Sender<T> {
    /// Sends a value, waiting (recorded: this task waits for the receiver's)
    /// while the channel is full.
    #[track_caller]
    pub fn send(&self, value: T) -> impl Future<Output = Result<(), SendError<T>>> + '_ {
        let location = Location::caller();
        async move {
            self.end.mark_held_at(location);
            cooperate().await;
            match self.inner.try_send(value) {
                Ok(()) => Ok(()),
                Err(TrySendError::Closed(value)) => Err(SendError(value)),
                Err(TrySendError::Full(value)) => {
                    let _waiting = self.end.wait_at(location);
                    self.inner.send(value).await
                }
            }
        }
    }

    /// Sends without waiting.
    #[track_caller]
    pub fn try_send(&self, value: T) -> Result<(), TrySendError<T>> {
        self.end.mark_held_at(Location::caller());
        self.inner.try_send(value)
    }

    /// Reserves a slot, waiting (recorded like [`Sender::send`]) while the
    /// channel is full; the permit sends without waiting.
    #[track_caller]
    pub fn reserve(&self) -> impl Future<Output = Result<Permit<'_, T>, SendError<()>>> + '_ {
        let location = Location::caller();
        async move {
            self.end.mark_held_at(location);
            acquire_recorded(
                || self.end.wait_at(location),
                &self.inner,
                |inner| match inner.try_reserve() {
                    Ok(permit) => Some(Ok(permit)),
                    Err(TrySendError::Closed(())) => Some(Err(SendError(()))),
                    Err(TrySendError::Full(())) => None,
                },
                |inner| inner.reserve(),
            )
            .await
        }
    }

    /// Reserves a slot without waiting.
    #[track_caller]
    pub fn try_reserve(&self) -> Result<Permit<'_, T>, TrySendError<()>> {
        self.end.mark_held_at(Location::caller());
        self.inner.try_reserve()
    }

    /// Completes when the receiver is gone (not a wait on a resource: it is
    /// not recorded).
    pub async fn closed(&self) {
        self.inner.closed().await
    }

    /// Free slots now.
    pub fn capacity(&self) -> usize {
        self.inner.capacity()
    }

    /// The buffer size the channel was created with.
    pub fn max_capacity(&self) -> usize {
        self.inner.max_capacity()
    }

    /// Whether the receiver is gone.
    pub fn is_closed(&self) -> bool {
        self.inner.is_closed()
    }

    /// Records the calling task as this sender's holder, e.g. right after
    /// moving the sender into a task, before its first send.
    #[track_caller]
    pub fn mark_held(&self) {
        self.end.mark_held_at(Location::caller());
    }
}

impl<T> Clone for Sender<T> {
    #[track_caller]
    fn clone(&self) -> Self {
        Sender {
            inner: self.inner.clone(),
            end: self.end.clone_at(Location::caller()),
        }
    }
}

/// The receiving half of [`channel`].
#[derive(Debug)]
pub struct Receiver<T> {
    inner: tokio::sync::mpsc::Receiver<T>,
    end: End,
}

impl<T> Receiver<T> {
    receiver_methods!();

    /// Free slots now.
    pub fn capacity(&self) -> usize {
        self.inner.capacity()
    }

    /// The buffer size the channel was created with.
    pub fn max_capacity(&self) -> usize {
        self.inner.max_capacity()
    }
}

/// An unbounded channel: sends never wait; a receiver on an empty channel
/// waits for the senders' tasks.
#[track_caller]
pub fn unbounded_channel<T>() -> (UnboundedSender<T>, UnboundedReceiver<T>) {
    unbounded_at(None, Location::caller())
}

/// An unbounded channel with a name for reports.
#[track_caller]
pub fn unbounded_channel_named<T>(
    name: impl Into<Cow<'static, str>>,
) -> (UnboundedSender<T>, UnboundedReceiver<T>) {
    unbounded_at(Some(name.into()), Location::caller())
}

fn unbounded_at<T>(
    name: Option<Cow<'static, str>>,
    location: &'static Location<'static>,
) -> (UnboundedSender<T>, UnboundedReceiver<T>) {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let (send, receive) = channel_resource(name, location);
    let sender = UnboundedSender {
        end: send,
        inner: tx,
    };
    let receiver = UnboundedReceiver {
        end: receive,
        inner: rx,
    };
    (sender, receiver)
}

/// The sending half of [`unbounded_channel`].
#[derive(Debug)]
pub struct UnboundedSender<T> {
    inner: tokio::sync::mpsc::UnboundedSender<T>,
    end: End,
}

impl<T> UnboundedSender<T> {
    /// Sends a value (never waits).
    #[track_caller]
    pub fn send(&self, value: T) -> Result<(), SendError<T>> {
        self.end.mark_held_at(Location::caller());
        self.inner.send(value)
    }
}

impl<T> Clone for UnboundedSender<T> {
    #[track_caller]
    fn clone(&self) -> Self {
        UnboundedSender {
            inner: self.inner.clone(),
            end: self.end.clone_at(Location::caller()),
        }
    }
}

/// The receiving half of [`unbounded_channel`].
#[derive(Debug)]
pub struct UnboundedReceiver<T> {
    inner: tokio::sync::mpsc::UnboundedReceiver<T>,
    end: End,
}

impl<T> UnboundedReceiver<T> {
    receiver_methods!();
}

/// What a `recv_many` that need not wait returns: the count of values
/// moved into `buffer` (up to `limit`), 0 when closed and empty or `limit`
/// is 0; `None` when it must wait.
fn drain_ready<T>(
    mut try_recv: impl FnMut() -> Result<T, TryRecvError>,
    buffer: &mut Vec<T>,
    limit: usize,
) -> Option<usize> {
    if limit == 0 {
        return Some(0);
    }
    let mut received = 0;
    while received < limit {
        match try_recv() {
            Ok(value) => {
                buffer.push(value);
                received += 1;
            }
            Err(TryRecvError::Disconnected) => return Some(received),
            Err(TryRecvError::Empty) if received > 0 => return Some(received),
            Err(TryRecvError::Empty) => return None,
        }
    }
    Some(received)
}

macro_rules! trace_end {
    ($($end:ident),* $(,)?) => {
        $(
            /// Reports the end to the walker (which resource, which end, at
            /// this field path: see [`crate::ownership`]); tokio's channel
            /// inside is scanned conservatively.
            impl<T> crate::Trace for $end<T> {
                fn trace(&self, tracer: &mut crate::Tracer<'_>) {
                    self.end.trace_end(tracer);
                    tracer.conservative(&self.inner);
                }
            }
        )*
    };
}

trace_end!(Sender, Receiver, UnboundedSender, UnboundedReceiver);
