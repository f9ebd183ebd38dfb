//! tokio's own `Mutex`, `RwLock`, `Semaphore`, `mpsc` and `oneshot` as
//! TurboWish resources, without swapping imports: a
//! [`tracing_subscriber::Layer`] that reads the instrumentation tokio emits
//! under `--cfg tokio_unstable` (its *resource* spans, their *state
//! updates*, and the *async op* spans of each lock, acquire and receive:
//! what tokio-console reads) and records holders and waiters on TurboWish
//! resources of kind [`ResourceKind::Tokio`](crate::sync::ResourceKind::Tokio).
//!
//! Needs `RUSTFLAGS="--cfg tokio_unstable"` and the `tokio-resources`
//! feature (which turns on tokio's `tracing` feature). Install the layer
//! before creating the resources (a resource created earlier is not seen):
//!
//! ```ignore
//! // First thing in `main`:
//! turbowish::trace::tokio_resources::install()?;
//! // or, composed with other layers:
//! use tracing_subscriber::layer::SubscriberExt;
//! let subscriber = tracing_subscriber::registry()
//!     .with(turbowish::trace::tokio_resources::layer())
//!     .with(tracing_subscriber::fmt::layer());
//! tracing::subscriber::set_global_default(subscriber)?;
//! ```
//!
//! What tokio's events can and cannot say, and what TurboWish does:
//!
//! - Every party is the task current when tokio emitted the event
//!   ([`Provenance::Tokio`](crate::sync::Provenance::Tokio)), with its
//!   TurboWish frames; tokio reports no place in the task's code, and a
//!   resource is named after its creation place (`src/db.rs:40:17`).
//! - **`Mutex`**: a holder when tokio reports it locked (`lock`,
//!   `lock_owned`, `try_lock*`), released in order when it reports it
//!   unlocked; waiters from `lock`'s async op. A guard moved to another
//!   task keeps naming the task that locked (as a TurboWish owned guard's
//!   record does).
//! - **`RwLock`**: the writer as for `Mutex`; each reader by the task that
//!   read. A reader released by a task that holds no read lock (a moved
//!   owned guard) cannot be matched: the lock's readers are then counted,
//!   not named.
//! - **`Semaphore`**: a holder of `n` permits when its `acquire*` completes;
//!   released by the task giving permits back. Permits taken by
//!   `try_acquire*` are not reported by tokio, and permits given back by a
//!   task that holds none (a moved permit, a `try_acquire`d one,
//!   `add_permits`) cannot be matched: the semaphore's holders are then
//!   counted, not named.
//! - **`mpsc`** (bounded): a sender waiting on a full buffer; tokio reports
//!   nothing that names the receiver's task, nor a receiver waiting on an
//!   empty channel.
//! - **`oneshot`**: the receiver waiting; the sender's task is not
//!   reported (until it is dropped or has sent).
//!
//! Where no holder is named, a chain ends saying that tokio's
//! instrumentation does not name it
//! ([`ChainEnd::HolderNotReported`](crate::chains::ChainEnd::HolderNotReported)):
//! TurboWish does not guess.

use std::collections::VecDeque;
use std::fmt;
use std::panic::Location;
use std::sync::{Arc, Mutex};

use tracing::field::{Field, Visit};
use tracing::span;
use tracing::{Event, Metadata, Subscriber};
use tracing_subscriber::layer::{Context, Layer};
use tracing_subscriber::registry::{LookupSpan, SpanRef};

use crate::resource::{OwnedHold, OwnedWait, Resource};
use crate::sync::{Access, Class, ResourceKind, TaskRef, TokioKind};

const RESOURCE_SPAN: &str = "runtime.resource";
const ASYNC_OP_SPAN: &str = "runtime.resource.async_op";
const POLL_SPAN: &str = "runtime.resource.async_op.poll";
const STATE_UPDATE: &str = "runtime::resource::state_update";
const OP_STATE_UPDATE: &str = "runtime::resource::async_op::state_update";
const POLL_OP: &str = "runtime::resource::poll_op";

/// The layer: records tokio's resources as TurboWish resources. Install it
/// with [`install`], or compose it with [`layer`] (which adds the filter
/// that lets every other callsite stay disabled).
#[derive(Debug, Default)]
pub struct TokioResources {
    _private: (),
}

impl TokioResources {
    /// The layer, unfiltered: it looks at every span and event it is
    /// given and ignores what is not tokio's resource instrumentation.
    pub fn new() -> TokioResources {
        TokioResources::default()
    }
}

/// Whether `meta` is one of tokio's resource spans or events: what the
/// layer reads.
///
/// ```
/// let any = tracing::trace_span!("request");
/// let meta = any.metadata().map(turbowish_trace::tokio_resources::is_tokio_resource_callsite);
/// assert_ne!(meta, Some(true));
/// ```
pub fn is_tokio_resource_callsite(meta: &Metadata<'_>) -> bool {
    if meta.is_span() {
        matches!(meta.name(), RESOURCE_SPAN | ASYNC_OP_SPAN | POLL_SPAN)
    } else {
        matches!(meta.target(), STATE_UPDATE | OP_STATE_UPDATE | POLL_OP)
    }
}

/// [`TokioResources`] with a per-layer filter admitting only tokio's
/// resource callsites ([`is_tokio_resource_callsite`]), to compose with
/// other layers on a [`tracing_subscriber::Registry`].
pub fn layer<S>() -> impl Layer<S> + Send + Sync + 'static
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    TokioResources::new().with_filter(tracing_subscriber::filter::filter_fn(
        is_tokio_resource_callsite,
    ))
}

/// Installs [`layer`] on a [`tracing_subscriber::Registry`] as the global
/// default subscriber. Call it first thing in `main`, before the runtime
/// and its resources are made.
///
/// ```
/// use turbowish_trace::sync::{ResourceKind, TokioKind};
///
/// turbowish_trace::tokio_resources::install().unwrap();
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let config = tokio::sync::Mutex::new(0);
/// let guard = config.lock().await;
/// let graph = turbowish_trace::sync::resources();
/// let seen = graph
///     .iter()
///     .find(|r| r.kind == ResourceKind::Tokio(TokioKind::Mutex))
///     .unwrap();
/// assert_eq!(seen.holders.len(), 1);
/// drop(guard);
/// # });
/// ```
///
/// # Errors
///
/// [`InstallError`] when a global default subscriber is already set
/// (compose [`layer`] into that one instead).
pub fn install() -> Result<(), InstallError> {
    use tracing_subscriber::layer::SubscriberExt;
    let subscriber = tracing_subscriber::registry().with(layer());
    tracing::subscriber::set_global_default(subscriber).map_err(|source| InstallError { source })
}

/// Why [`install`] failed: a global default subscriber was already set.
#[derive(Debug)]
pub struct InstallError {
    source: tracing::subscriber::SetGlobalDefaultError,
}

impl fmt::Display for InstallError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(
            "a global tracing subscriber is already set: add \
             turbowish::trace::tokio_resources::layer() to it instead",
        )
    }
}

impl std::error::Error for InstallError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}

/// The place every record from tokio's events carries: tokio reports none
/// (reports say so; see [`crate::sync::Provenance::Tokio`]).
fn no_place() -> &'static Location<'static> {
    Location::caller()
}

/// A resource span's part, in its extensions.
enum Res {
    /// One of the primitives TurboWish records.
    Tracked(Arc<Tracked>),
    /// The semaphore inside a `tokio::sync::Semaphore`: its events are the
    /// semaphore's.
    Inner(Arc<Tracked>),
    /// The semaphore inside a `Mutex` or `RwLock`, or a resource TurboWish
    /// does not record (a timer, a barrier): its events are ignored.
    Ignored,
}

/// One of tokio's resources, as a TurboWish resource with the holds
/// tokio's events imply.
struct Tracked {
    kind: TokioKind,
    resource: Resource,
    holds: Mutex<Holds>,
}

#[derive(Default)]
struct Holds {
    /// Exclusive holders (a locked `Mutex`, an `RwLock`'s writer), oldest
    /// first: an exclusive lock is released in the order it was taken.
    exclusive: VecDeque<OwnedHold>,
    /// Readers and permit holders: the task, the units, the record.
    units: Vec<(TaskRef, u32, OwnedHold)>,
    /// Holders counted, not named (see [`crate::sync::ResourceInfo::extra_holders`]).
    unnamed: usize,
    /// Units a task gave back that cover none of its holds yet (a release
    /// reported in parts).
    given_back: Vec<(TaskRef, u64)>,
}

impl Tracked {
    fn new(kind: TokioKind, name: String, class: Class) -> Arc<Tracked> {
        Arc::new(Tracked {
            kind,
            resource: Resource::declared(
                ResourceKind::Tokio(kind),
                Some(name.into()),
                class,
                no_place(),
            ),
            holds: Mutex::new(Holds::default()),
        })
    }

    fn holds(&self) -> std::sync::MutexGuard<'_, Holds> {
        self.holds.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn hold(&self, access: Access) -> OwnedHold {
        self.resource.hold_owned_as(access, false, no_place())
    }

    /// The current task took the exclusive lock.
    fn lock(&self) {
        let hold = self.hold(Access::Exclusive);
        self.holds().exclusive.push_back(hold);
    }

    /// The exclusive lock was released: its oldest holder's, whichever
    /// task tokio reports it from (tokio releases, then reports, so the
    /// next holder's report can come first).
    fn unlock(&self) {
        let released = self.holds().exclusive.pop_front();
        drop(released);
    }

    /// The current task took `units` (a read lock: 1) with `access`.
    fn take(&self, access: Access, units: u32) {
        let task = TaskRef::current();
        let hold = self.hold(access);
        self.holds().units.push((task, units, hold));
    }

    /// The current task gave `units` back. Its own holds go, oldest first,
    /// once the units it gave back (tokio may report one release in parts:
    /// some handed to a waiter, the rest to the semaphore) cover them. When
    /// it holds none, tokio's events cannot say whose units these were, and
    /// the resource's holders are counted from now on, not named.
    fn give_back(&self, units: u64) {
        let task = TaskRef::current();
        let mut holds = self.holds();
        if !holds.units.iter().any(|(t, _, _)| *t == task) {
            self.unmatched(&mut holds);
            return;
        }
        let mut left = units;
        if let Some(at) = holds.given_back.iter().position(|(t, _)| *t == task) {
            left += holds.given_back.swap_remove(at).1;
        }
        while let Some(at) = holds.units.iter().position(|(t, _, _)| *t == task) {
            let n = u64::from(holds.units[at].1);
            if n > left {
                holds.given_back.push((task, left));
                return;
            }
            left -= n;
            drop(holds.units.remove(at));
        }
        if left > 0 {
            // More than it was seen to take.
            self.unmatched(&mut holds);
        }
    }

    /// Units given back that no recorded hold accounts for: every named
    /// holder becomes a counted one, one fewer (one of them gave back).
    fn unmatched(&self, holds: &mut Holds) {
        let named = std::mem::take(&mut holds.units).len();
        holds.given_back.clear();
        let now = (holds.unnamed + named).saturating_sub(1);
        self.resource.state().add_unnamed(now);
        self.resource.state().remove_unnamed(holds.unnamed);
        holds.unnamed = now;
    }

    /// The readers tokio reports now: `0` clears them all.
    fn readers_reset(&self) {
        let mut holds = self.holds();
        holds.units.clear();
        holds.given_back.clear();
        self.resource.state().remove_unnamed(holds.unnamed);
        holds.unnamed = 0;
    }

    /// Counts one holder tokio does not name (an `mpsc` receiver, a
    /// `oneshot` sender), until [`Tracked::unnamed_gone`].
    fn unnamed_holder(&self) {
        self.holds().unnamed += 1;
        self.resource.state().add_unnamed(1);
    }

    fn unnamed_gone(&self) {
        let mut holds = self.holds();
        if holds.unnamed > 0 {
            holds.unnamed -= 1;
            self.resource.state().remove_unnamed(1);
        }
    }
}

/// An async op span's part, in its extensions: one lock, acquire or
/// receive, and the wait it records while pending.
struct Op {
    target: Arc<Tracked>,
    role: Role,
    state: Mutex<OpState>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Role {
    /// `Mutex::lock` (exclusive), `RwLock::read` (shared), `RwLock::write`.
    Lock(Access),
    /// The acquire inside a `Semaphore`'s `acquire*`: its completion is the
    /// holder's.
    Acquire,
    /// A bounded `mpsc` sender's wait for room.
    Send,
    /// A `oneshot` receiver's wait.
    Receive,
}

struct OpState {
    /// Permits asked for (an acquire).
    units: u32,
    /// The task that polled it.
    task: Option<TaskRef>,
    waiting: Option<OwnedWait>,
    done: bool,
}

impl Op {
    fn new(target: Arc<Tracked>, role: Role) -> Op {
        Op {
            target,
            role,
            state: Mutex::new(OpState {
                units: 1,
                task: None,
                waiting: None,
                done: false,
            }),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, OpState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn access(&self, units: u32) -> Access {
        match self.role {
            Role::Lock(access) => access,
            Role::Acquire => Access::Permits(units.max(1)),
            Role::Send => Access::Send,
            Role::Receive => Access::Receive,
        }
    }

    /// A poll of the op: pending starts the current task's wait, ready
    /// ends it (and, for an acquire, records the permits held).
    fn polled(&self, ready: bool) {
        let mut state = self.state();
        if state.done {
            return;
        }
        if state.task.is_none() {
            state.task = Some(TaskRef::current());
        }
        if !ready {
            if state.waiting.is_none() {
                let access = self.access(state.units);
                state.waiting = Some(
                    self.target
                        .resource
                        .wait_owned_unchecked(access, no_place()),
                );
            }
            return;
        }
        let waiting = state.waiting.take();
        let units = state.units;
        state.done = self.role == Role::Acquire;
        drop(state);
        drop(waiting);
        if self.role == Role::Acquire {
            self.target.take(self.access(units), units);
        }
    }

    /// Permits assigned to this (waiting) acquire: given back by the
    /// current task when it is not the one waiting.
    fn assigned(&self, units: u64) {
        let waiter = self.state().task;
        if waiter.is_some_and(|w| w != TaskRef::current()) {
            self.target.give_back(units);
        }
    }

    fn close(&self) {
        let waiting = self.state().waiting.take();
        drop(waiting);
    }
}

/// What the layer reads from a span's or event's fields.
#[derive(Default)]
struct Fields {
    concrete_type: Option<Concrete>,
    is_internal: bool,
    loc_file: Option<String>,
    loc_line: Option<u64>,
    loc_col: Option<u64>,
    source: Option<Source>,
    is_ready: Option<bool>,
    locked: Option<bool>,
    write_locked: Option<bool>,
    current_readers: Option<u64>,
    permits: Option<u64>,
    permits_requested: Option<u64>,
    permits_obtained: Option<u64>,
    tx_dropped: Option<bool>,
    value_sent: Option<bool>,
    op: Option<StateOp>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Concrete {
    Mutex,
    RwLock,
    Semaphore,
    Oneshot,
    Other,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Source {
    Lock,
    Read,
    Write,
    Acquire,
    Recv,
    Other,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum StateOp {
    Add,
    Sub,
    Override,
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        match field.name() {
            "concrete_type" => {
                self.concrete_type = Some(match value {
                    "Mutex" => Concrete::Mutex,
                    "RwLock" => Concrete::RwLock,
                    "Semaphore" => Concrete::Semaphore,
                    "Sender|Receiver" => Concrete::Oneshot,
                    _ => Concrete::Other,
                })
            }
            "loc.file" => self.loc_file = Some(value.to_owned()),
            "source" => {
                self.source = Some(match value {
                    "Mutex::lock" | "Mutex::lock_owned" => Source::Lock,
                    "RwLock::read" | "RwLock::read_owned" => Source::Read,
                    "RwLock::write" | "RwLock::write_owned" => Source::Write,
                    "Acquire::new" => Source::Acquire,
                    "Receiver::await" => Source::Recv,
                    _ => Source::Other,
                })
            }
            name if name.ends_with(".op") => {
                self.op = match value {
                    "add" => Some(StateOp::Add),
                    "sub" => Some(StateOp::Sub),
                    "override" => Some(StateOp::Override),
                    _ => None,
                }
            }
            _ => {}
        }
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        match field.name() {
            "is_internal" => self.is_internal = value,
            "is_ready" => self.is_ready = Some(value),
            "locked" => self.locked = Some(value),
            "write_locked" => self.write_locked = Some(value),
            "tx_dropped" => self.tx_dropped = Some(value),
            "value_sent" => self.value_sent = Some(value),
            _ => {}
        }
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        match field.name() {
            "loc.line" => self.loc_line = Some(value),
            "loc.col" => self.loc_col = Some(value),
            "current_readers" => self.current_readers = Some(value),
            "permits" => self.permits = Some(value),
            "permits_requested" => self.permits_requested = Some(value),
            "permits_obtained" => self.permits_obtained = Some(value),
            _ => {}
        }
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        if let Ok(value) = u64::try_from(value) {
            self.record_u64(field, value);
        }
    }

    fn record_debug(&mut self, _: &Field, _: &dyn fmt::Debug) {}
}

impl Fields {
    /// `file:line:col` of a resource's creation, as tokio reports it.
    fn place(&self) -> Option<String> {
        let file = self.loc_file.as_deref()?;
        Some(format!(
            "{file}:{}:{}",
            self.loc_line.unwrap_or(0),
            self.loc_col.unwrap_or(0)
        ))
    }
}

/// The innermost span named `name` around an event.
fn enclosing<'a, S>(
    event: &Event<'_>,
    ctx: &'a Context<'_, S>,
    name: &str,
) -> Option<SpanRef<'a, S>>
where
    S: Subscriber + for<'l> LookupSpan<'l>,
{
    ctx.event_scope(event)?.find(|span| span.name() == name)
}

impl<S> Layer<S> for TokioResources
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &span::Attributes<'_>, id: &span::Id, ctx: Context<'_, S>) {
        let name = attrs.metadata().name();
        if name != RESOURCE_SPAN && name != ASYNC_OP_SPAN {
            return;
        }
        let _internal = turbowish_alloc::internal();
        let Some(span) = ctx.span(id) else {
            return;
        };
        let mut fields = Fields::default();
        attrs.record(&mut fields);
        if name == RESOURCE_SPAN {
            let res = new_resource(&fields, &ctx);
            span.extensions_mut().insert(res);
            return;
        }
        // An async op: its resource is the span it was made in.
        let Some(parent) = span.parent().filter(|p| p.name() == RESOURCE_SPAN) else {
            return;
        };
        let op = {
            let exts = parent.extensions();
            match (exts.get::<Res>(), fields.source) {
                (Some(Res::Tracked(t)), Some(source)) => match (t.kind, source) {
                    (TokioKind::Mutex, Source::Lock) => {
                        Some(Op::new(t.clone(), Role::Lock(Access::Exclusive)))
                    }
                    (TokioKind::RwLock, Source::Read) => {
                        Some(Op::new(t.clone(), Role::Lock(Access::Shared)))
                    }
                    (TokioKind::RwLock, Source::Write) => {
                        Some(Op::new(t.clone(), Role::Lock(Access::Exclusive)))
                    }
                    (TokioKind::Mpsc, Source::Acquire) => Some(Op::new(t.clone(), Role::Send)),
                    (TokioKind::Oneshot, Source::Recv) => Some(Op::new(t.clone(), Role::Receive)),
                    _ => None,
                },
                (Some(Res::Inner(t)), Some(Source::Acquire)) => {
                    Some(Op::new(t.clone(), Role::Acquire))
                }
                _ => None,
            }
        };
        if let Some(op) = op {
            span.extensions_mut().insert(op);
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let target = event.metadata().target();
        if target != STATE_UPDATE && target != OP_STATE_UPDATE && target != POLL_OP {
            return;
        }
        let _internal = turbowish_alloc::internal();
        let mut fields = Fields::default();
        event.record(&mut fields);
        match target {
            POLL_OP => {
                let Some(ready) = fields.is_ready else {
                    return;
                };
                let Some(span) = enclosing(event, &ctx, ASYNC_OP_SPAN) else {
                    return;
                };
                let exts = span.extensions();
                if let Some(op) = exts.get::<Op>() {
                    op.polled(ready);
                }
            }
            OP_STATE_UPDATE => {
                let Some(span) = enclosing(event, &ctx, ASYNC_OP_SPAN) else {
                    return;
                };
                let exts = span.extensions();
                let Some(op) = exts.get::<Op>() else {
                    return;
                };
                if let Some(n) = fields.permits_requested {
                    op.state().units = u32::try_from(n).unwrap_or(u32::MAX);
                }
                if let (Some(n), Some(StateOp::Add)) = (fields.permits_obtained, fields.op) {
                    op.assigned(n);
                }
            }
            _ => {
                let Some(span) = enclosing(event, &ctx, RESOURCE_SPAN) else {
                    return;
                };
                let exts = span.extensions();
                match exts.get::<Res>() {
                    Some(Res::Tracked(t)) => state_update(t, &fields),
                    Some(Res::Inner(t)) => inner_state_update(t, &fields),
                    _ => {}
                }
            }
        }
    }

    fn on_close(&self, id: span::Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(&id) else {
            return;
        };
        if span.name() != ASYNC_OP_SPAN {
            return;
        }
        let _internal = turbowish_alloc::internal();
        let exts = span.extensions();
        if let Some(op) = exts.get::<Op>() {
            op.close();
        }
    }
}

/// What a new resource span is to TurboWish.
fn new_resource<S>(fields: &Fields, ctx: &Context<'_, S>) -> Res
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    let name = || {
        fields
            .place()
            .unwrap_or_else(|| "a place tokio does not report".to_owned())
    };
    match fields.concrete_type {
        Some(Concrete::Mutex) => {
            Res::Tracked(Tracked::new(TokioKind::Mutex, name(), Class::Exclusive))
        }
        Some(Concrete::RwLock) => {
            Res::Tracked(Tracked::new(TokioKind::RwLock, name(), Class::Exclusive))
        }
        Some(Concrete::Oneshot) => {
            let t = Tracked::new(TokioKind::Oneshot, name(), Class::Channel);
            // The sender: held by a task tokio does not name.
            t.unnamed_holder();
            Res::Tracked(t)
        }
        Some(Concrete::Semaphore) if fields.is_internal => {
            // tokio makes a lock's or semaphore's inner semaphore inside
            // the lock's span; a bounded mpsc channel's, outside any.
            let around = ctx
                .lookup_current()
                .filter(|s| s.name() == RESOURCE_SPAN)
                .and_then(|s| match s.extensions().get::<Res>() {
                    Some(Res::Tracked(t)) => Some(t.clone()),
                    Some(_) => None,
                    None => None,
                });
            match around {
                Some(t) if t.kind == TokioKind::Semaphore => Res::Inner(t),
                Some(_) => Res::Ignored,
                None if ctx
                    .lookup_current()
                    .is_some_and(|s| s.name() == RESOURCE_SPAN) =>
                {
                    Res::Ignored
                }
                None => {
                    let t = Tracked::new(
                        TokioKind::Mpsc,
                        "a bounded channel (tokio reports no place)".to_owned(),
                        Class::Channel,
                    );
                    // The receiver: held by a task tokio does not name.
                    t.unnamed_holder();
                    Res::Tracked(t)
                }
            }
        }
        Some(Concrete::Semaphore) => Res::Tracked(Tracked::new(
            TokioKind::Semaphore,
            name(),
            Class::Cumulative { capacity: 0 },
        )),
        Some(Concrete::Other) | None => Res::Ignored,
    }
}

/// A state update of a tracked lock or channel.
fn state_update(t: &Tracked, fields: &Fields) {
    match t.kind {
        TokioKind::Mutex => match fields.locked {
            Some(true) => t.lock(),
            Some(false) => t.unlock(),
            None => {}
        },
        TokioKind::RwLock => {
            match fields.write_locked {
                Some(true) => t.lock(),
                Some(false) => t.unlock(),
                None => {}
            }
            match (fields.current_readers, fields.op) {
                (Some(1), Some(StateOp::Add)) => t.take(Access::Shared, 1),
                (Some(n), Some(StateOp::Sub)) => t.give_back(n),
                (Some(0), Some(StateOp::Override) | None) => t.readers_reset(),
                _ => {}
            }
        }
        TokioKind::Oneshot => {
            if fields.tx_dropped == Some(true) || fields.value_sent == Some(true) {
                t.unnamed_gone();
            }
        }
        TokioKind::Semaphore | TokioKind::Mpsc => {}
    }
}

/// A state update of the semaphore inside a `tokio::sync::Semaphore`.
fn inner_state_update(t: &Tracked, fields: &Fields) {
    match (fields.permits, fields.op) {
        (Some(n), Some(StateOp::Override)) => t
            .resource
            .state()
            .set_permits(usize::try_from(n).unwrap_or(usize::MAX)),
        (Some(n), Some(StateOp::Add)) => t.give_back(n),
        _ => {}
    }
}
