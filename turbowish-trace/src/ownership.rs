//! Who *owns* each resource handle: the tasks whose state holds a channel's
//! sender or receiver, an `Arc` to a lock or semaphore, or a guard, as the
//! walker finds them, rather than who created, cloned or last used it.
//!
//! Every instrumented handle tells the walker which resource it belongs
//! to and which end it is:
//!
//! - **precisely**, through its `Trace` impl, where a value is traced (a
//!   named root, a `#[derive(Trace)]` struct): the handle is found with its
//!   field path;
//! - **conservatively**, in opaque state (a task's future): a channel end
//!   carries a mark word (its resource's record address XORed with a
//!   constant no user-space address has) followed by its holder slot, a
//!   lock carries a mark too, and a pointer to a lock (or to the `Arc`
//!   block holding it) is recognised by the address the lock was last used
//!   at.
//!
//! [`find`] scans every live TurboWish task's root cell (its future's
//! state) for handles held there directly; this needs no block registry,
//! so it works in counting mode. In heap-walk mode the walk also finds
//! handles anywhere a task reaches alone ([`crate::walk::WalkReport::handles`]).
//! [`apply`] then puts the owners into the wait-for graph: each channel
//! end's holder becomes the task owning it ([`Provenance::Owns`]), the
//! recorded holder staying where no owner was found, and every resource
//! lists its owners (for a lock: the tasks that *may lock* it next).
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! use turbowish_trace::sync::mpsc;
//!
//! let (tx, mut rx) = mpsc::channel_named::<u32>("jobs", 1);
//! let worker = turbowish_trace::spawn("worker", async move {
//!     let _keep = &tx;
//!     std::future::pending::<()>().await;
//! });
//! tokio::task::yield_now().await;
//! let mut graph = turbowish_trace::sync::resources();
//! turbowish_trace::ownership::apply(&mut graph, &turbowish_trace::ownership::find());
//! let jobs = graph.iter().find(|r| r.name == "jobs").unwrap();
//! let sender = jobs.holders.iter().find(|h| h.task_name == "worker").unwrap();
//! assert!(matches!(sender.provenance, turbowish_trace::sync::Provenance::Owns { .. }));
//! # worker.abort();
//! # drop(rx.try_recv());
//! # }
//! ```

use std::fmt;

use crate::frame::FramePath;
use crate::sync::{Access, LiveResources, MarkKind, Party, Provenance, ResourceInfo, TaskRef};

/// Which kind of handle a task owns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum HandleKind {
    /// A channel's sending end (`mpsc::Sender`, `UnboundedSender`,
    /// `oneshot::Sender`).
    Sender,
    /// A channel's receiving end.
    Receiver,
    /// A lock or semaphore, or an `Arc` to one: the owner *may lock* it.
    Lock,
    /// An owned guard or permit.
    Guard,
    /// The [`crate::task::JoinHandle`] of a task, while it is awaited: a
    /// handle to the task's resource ([`crate::sync::ResourceKind::Task`]).
    /// A handle not awaited has no resource to belong to, and is not found.
    Join,
}

impl fmt::Display for HandleKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            HandleKind::Sender => "sender",
            HandleKind::Receiver => "receiver",
            HandleKind::Lock => "lock",
            HandleKind::Guard => "guard",
            HandleKind::Join => "join handle",
        })
    }
}

/// A handle found in a task's (or named root's) state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FoundHandle {
    /// The resource ([`ResourceInfo::id`]).
    pub resource_id: u64,
    /// For a channel end: the slot of its holder record (`None` for an end
    /// counted but not named, or for other handles).
    pub slot: Option<usize>,
    /// What the handle is.
    pub handle: HandleKind,
    /// The owning task; `None` for a named root.
    pub task: Option<TaskRef>,
    /// The task's (or root's) name.
    pub name: String,
    /// Where: `future state +0x28` when found by the scan of the task's
    /// state, `… › heap block +0x10` in a block only it reaches, or the
    /// field path when traced precisely.
    pub path: String,
    /// For a TurboWish task: the frame path it was parked in when the
    /// handle was found (see [`crate::sync::Party::parked_in`]).
    pub parked_in: Option<FramePath>,
}

/// One owner of a resource, in [`ResourceInfo::owners`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HandleOwner {
    /// The owning task; `None` for a named root.
    pub task: Option<TaskRef>,
    /// The task's (or root's) name.
    pub name: String,
    /// What it owns.
    pub handle: HandleKind,
    /// Where the handle was found (see [`FoundHandle::path`]).
    pub path: String,
}

/// Scans the root cell (the future's state) of every live TurboWish task
/// for handles held there directly. No block registry is needed: this is
/// counting mode's ownership (a heap walk scans the cells itself, so a
/// snapshot with a walk uses the walk's handles instead).
///
/// Cells are read word by word while the program runs; a task cannot free
/// its cell while it is being read (completion waits for the scan), but a
/// task being polled may change it meanwhile, so a handle moved at that
/// instant can be missed or seen twice (then in both tasks).
pub fn find() -> Vec<FoundHandle> {
    let _internal = turbowish_alloc::internal();
    let live = crate::sync::live_resources();
    let mut found = Vec::new();
    if live.by_record.is_empty() {
        return found;
    }
    crate::registry::scan_live_cells(|cell| {
        let before = found.len();
        // SAFETY: `scan_live_cells` keeps the cell allocated and readable
        // for the length of the call.
        unsafe {
            scan_marks(&live, cell.start, cell.len, |offset, handle| {
                found.push(FoundHandle {
                    resource_id: handle.resource_id,
                    slot: handle.slot,
                    handle: handle.kind,
                    task: Some(TaskRef::Task(cell.id())),
                    name: cell.name().to_owned(),
                    path: future_state_path(offset),
                    parked_in: None,
                });
            });
        }
        // Read once per task that owns something, not per handle.
        if found.len() > before {
            let parked = cell.parked_path();
            for f in &mut found[before..] {
                f.parked_in = parked;
            }
        }
    });
    found
}

/// The wait-for graph now with its owners: [`crate::sync::resources`],
/// then [`apply`] of [`find`] (the scan of every task's root cell). What a
/// snapshot does in counting mode; heap-walk mode adds the walk's handles.
///
/// ```
/// let graph = turbowish_trace::ownership::resources();
/// for cycle in turbowish_trace::chains::cycles(&graph) {
///     println!("{cycle}");
/// }
/// ```
pub fn resources() -> Vec<ResourceInfo> {
    let mut graph = crate::sync::resources();
    apply(&mut graph, &find());
    graph
}

/// Puts the owners in `found` into `resources`: every channel end's
/// recorded holder is replaced by the tasks whose state owns that end
/// ([`Provenance::Owns`], with the path), an end no task owns keeps its
/// record ([`Provenance::Recorded`]: the thread or task that created or
/// last used it), and every resource lists its owners in
/// [`ResourceInfo::owners`]. Apply before [`crate::chains::chains`] and
/// [`crate::chains::cycles`], so that they follow ownership.
pub fn apply(resources: &mut [ResourceInfo], found: &[FoundHandle]) {
    // One sort groups the handles by resource, the most specific place
    // first, then in the order found: no filter of every handle per
    // resource, and no hashing of names.
    let mut order: Vec<(u64, u8, usize)> = found
        .iter()
        .enumerate()
        .map(|(i, f)| (f.resource_id, path_rank(&f.path), i))
        .collect();
    order.sort_unstable();
    for r in resources.iter_mut() {
        let from = order.partition_point(|o| o.0 < r.id);
        let to = from + order[from..].partition_point(|o| o.0 == r.id);
        if from == to {
            continue;
        }
        let mine: Vec<&FoundHandle> = order[from..to].iter().map(|o| &found[o.2]).collect();
        r.owners = owners(&mine);
        let ends = distinct_ends(&mine);
        let mut holders = Vec::with_capacity(r.holders.len());
        for holder in r.holders.drain(..) {
            let end = match holder.access {
                Access::Send => HandleKind::Sender,
                Access::Receive => HandleKind::Receiver,
                _ => {
                    holders.push(holder);
                    continue;
                }
            };
            let owners = ends_of(&ends, end, holder.slot);
            if owners.is_empty() {
                holders.push(holder);
                continue;
            }
            holders.extend(owners.iter().map(|f| owned_by(&holder, f)));
        }
        // Ends counted but not named (past the named slots) that a task
        // owns: named now.
        for end in [HandleKind::Sender, HandleKind::Receiver] {
            let unnamed = ends_of(&ends, end, None);
            if unnamed.is_empty() || r.extra_holders == 0 {
                continue;
            }
            let Some(template) = holders
                .iter()
                .find(|h| h.access == end_access(end))
                .cloned()
            else {
                continue;
            };
            let named = unnamed.len().min(r.extra_holders);
            holders.extend(unnamed[..named].iter().map(|f| owned_by(&template, f)));
            r.extra_holders -= named;
        }
        r.holders = holders;
    }
}

/// `future state +0x28`: where the scan of a task's root cell found a
/// handle. Written by hand: a counting snapshot of 10,000 tasks names a
/// few thousand, and `format!` took a tenth of the scan.
pub(crate) fn future_state_path(offset: usize) -> String {
    const PREFIX: &str = "future state +0x";
    let digits = (usize::BITS - offset.leading_zeros()).div_ceil(4).max(1) as usize;
    let mut path = String::with_capacity(PREFIX.len() + digits);
    path.push_str(PREFIX);
    for i in (0..digits).rev() {
        let nibble = (offset >> (4 * i)) & 0xf;
        path.push(char::from_digit(nibble as u32, 16).unwrap_or('?'));
    }
    path
}

/// How specific a place a path names (lower first): a precise field path,
/// a heap block only the task reaches, the future's state.
fn path_rank(path: &str) -> u8 {
    if path.starts_with("future state") {
        2
    } else if path.contains("heap block") {
        1
    } else {
        0
    }
}

/// One resource's owners from its handles (`mine`, most specific place
/// first): one per task (or root) and kind of handle, at the most
/// specific place it was seen. One handle can be seen twice in a task:
/// where it is, and as the stale bytes a move left behind (in the future's
/// state, most often). Roots first, then tasks in order of id.
fn owners(mine: &[&FoundHandle]) -> Vec<HandleOwner> {
    first_of_each(mine, |f| Some((f.task, f.handle, f.name.as_str())))
        .into_iter()
        .map(|(_, f)| HandleOwner {
            task: f.task,
            name: f.name.clone(),
            handle: f.handle,
            path: f.path.clone(),
        })
        .collect()
}

/// An end, its holder slot and the task owning it.
type EndKey = (HandleKind, Option<usize>, TaskRef);

/// The channel ends in `mine` owned by tasks, one per (end, slot, task) at
/// its most specific place, sorted by end, slot and task.
fn distinct_ends<'a>(mine: &[&'a FoundHandle]) -> Vec<(EndKey, &'a FoundHandle)> {
    first_of_each(mine, |f| match f.handle {
        HandleKind::Sender | HandleKind::Receiver => Some((f.handle, f.slot, f.task?)),
        _ => None,
    })
}

/// The handles of `mine` (most specific place first) that `key` keeps,
/// sorted by key, with only the first of each key: one sort instead of a
/// hashed set of keys seen.
fn first_of_each<'a, K: Ord>(
    mine: &[&'a FoundHandle],
    key: impl Fn(&'a FoundHandle) -> Option<K>,
) -> Vec<(K, &'a FoundHandle)> {
    let mut keyed: Vec<(K, usize, &FoundHandle)> = mine
        .iter()
        .enumerate()
        .filter_map(|(i, &f)| Some((key(f)?, i, f)))
        .collect();
    keyed.sort_by(|a, b| (&a.0, a.1).cmp(&(&b.0, b.1)));
    keyed.dedup_by(|later, first| later.0 == first.0);
    keyed.into_iter().map(|(k, _, f)| (k, f)).collect()
}

/// The run of `ends` (see [`distinct_ends`]) owning `end` of slot `slot`.
fn ends_of<'e, 'a>(
    ends: &'e [(EndKey, &'a FoundHandle)],
    end: HandleKind,
    slot: Option<usize>,
) -> &'e [(EndKey, &'a FoundHandle)] {
    let from = ends.partition_point(|((h, s, _), _)| (*h, *s) < (end, slot));
    let to = from + ends[from..].partition_point(|((h, s, _), _)| (*h, *s) == (end, slot));
    &ends[from..to]
}

fn end_access(end: HandleKind) -> Access {
    match end {
        HandleKind::Receiver => Access::Receive,
        _ => Access::Send,
    }
}

/// `recorded`'s end, held by `task`, whose state owns it as `owner` found.
fn owned_by(recorded: &Party, ((_, _, task), owner): &(EndKey, &FoundHandle)) -> Party {
    Party {
        task: *task,
        task_name: owner.name.clone(),
        // Where the owner is now says more than where the end was made.
        frames: Default::default(),
        location: recorded.location,
        since: recorded.since,
        access: recorded.access,
        movable: recorded.movable,
        parked_in: owner.parked_in,
        provenance: Provenance::Owns {
            path: owner.path.clone(),
        },
        slot: None,
    }
}

/// A handle recognised in raw memory.
#[derive(Debug, Clone, Copy)]
pub(crate) struct MarkedHandle {
    pub(crate) resource_id: u64,
    pub(crate) slot: Option<usize>,
    pub(crate) kind: HandleKind,
}

/// Calls `each(offset, handle)` for every handle recognised in the words of
/// `[start, start + len)` (see [`MarkScanner`]).
///
/// # Safety
///
/// `[start, start + len)` must be allocated, readable memory for the length
/// of the call.
pub(crate) unsafe fn scan_marks(
    live: &LiveResources,
    start: usize,
    len: usize,
    mut each: impl FnMut(usize, MarkedHandle),
) {
    let mut scanner = MarkScanner::new(live, start);
    // SAFETY: forwarded from the caller.
    unsafe { crate::walk::scan_words(start, len, |word| scanner.word(word, &mut each)) };
}

/// Recognises handles in consecutive aligned words of one range: channel
/// ends by their two-word mark, guards and locks by their mark, pointers to
/// locks (or to the `Arc` blocks holding them) by the lock's last-seen
/// address. Only marks of live resources count, an end's only while its
/// holder slot is occupied, a guard's only while its resource is held.
#[derive(Debug)]
pub(crate) struct MarkScanner<'a> {
    live: &'a LiveResources,
    start: usize,
    at: usize,
    /// An end's mark, waiting for its slot word: (offset, kind, id, slots).
    pending: Option<(usize, HandleKind, u64, u32)>,
}

impl<'a> MarkScanner<'a> {
    /// A scanner for words read from `start` on (aligned up).
    pub(crate) fn new(live: &'a LiveResources, start: usize) -> MarkScanner<'a> {
        MarkScanner {
            live,
            start,
            at: start.next_multiple_of(align_of::<usize>()),
            pending: None,
        }
    }

    /// The next word; `each(offset, handle)` for a handle it completes.
    #[inline]
    pub(crate) fn word(&mut self, word: usize, each: &mut impl FnMut(usize, MarkedHandle)) {
        let offset = self.at - self.start;
        self.at += size_of::<usize>();
        if let Some((mark_at, kind, id, occupied)) = self.pending.take() {
            if let Some(slot) = crate::sync::marked_slot(word) {
                let held = match slot {
                    Some(i) => occupied & (1 << i) != 0,
                    None => true,
                };
                if held {
                    let handle = MarkedHandle {
                        resource_id: id,
                        slot,
                        kind,
                    };
                    each(mark_at, handle);
                }
                return;
            }
        }
        let found = |kind| MarkedHandle {
            resource_id: 0,
            slot: None,
            kind,
        };
        if let Some((kind, record)) = crate::sync::marked(word) {
            let Some(&(id, _, occupied)) = self.live.by_record.get(&record) else {
                return;
            };
            match kind {
                MarkKind::Sender => self.pending = Some((offset, HandleKind::Sender, id, occupied)),
                MarkKind::Receiver => {
                    self.pending = Some((offset, HandleKind::Receiver, id, occupied))
                }
                MarkKind::Guard if self.live.held.contains_key(&id) => each(
                    offset,
                    MarkedHandle {
                        resource_id: id,
                        ..found(HandleKind::Guard)
                    },
                ),
                MarkKind::Guard => {}
                MarkKind::Lock => each(
                    offset,
                    MarkedHandle {
                        resource_id: id,
                        ..found(HandleKind::Lock)
                    },
                ),
                MarkKind::Join => each(
                    offset,
                    MarkedHandle {
                        resource_id: id,
                        ..found(HandleKind::Join)
                    },
                ),
            }
        } else if let Some(id) = self.live.home(word) {
            each(
                offset,
                MarkedHandle {
                    resource_id: id,
                    ..found(HandleKind::Lock)
                },
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::future_state_path;

    #[test]
    fn future_state_path_reads_as_format_would_write_it() {
        for offset in [0, 1, 0x8, 0xf, 0x10, 0x28, 0xabc, 0x1000, usize::MAX] {
            assert_eq!(
                future_state_path(offset),
                format!("future state +{offset:#x}")
            );
        }
    }
}
