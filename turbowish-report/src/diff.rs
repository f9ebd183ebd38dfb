//! `turbowish diff`: growth between two snapshots of one process, per task
//! name and per allocation site: the leak hunter's view.

use std::collections::{BTreeMap, HashMap};
use std::fmt::{self, Write as _};

use serde::Serialize;

use turbowish_snapshot::format::{delta, human_bytes, printable, signed_bytes};
use turbowish_snapshot::schema::Snapshot;

use crate::labels::{Names, PerId};

/// The growth from an OLD snapshot to a NEW one.
///
/// ```
/// # let old: turbowish_snapshot::Snapshot = serde_json::from_str(include_str!("../../turbowish-snapshot/tests/fixtures/service.json")).unwrap();
/// # let new: turbowish_snapshot::Snapshot = serde_json::from_str(include_str!("../../turbowish-snapshot/tests/fixtures/service-later.json")).unwrap();
/// let d = turbowish_report::diff::diff(&old, &new, false).unwrap();
/// assert_eq!(d.total.live_bytes, new.totals.live_bytes as i64 - old.totals.live_bytes as i64);
/// assert!(d.tasks.windows(2).all(|w| w[0].growth.live_bytes >= w[1].growth.live_bytes));
/// ```
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SnapshotDiff {
    /// The older snapshot (as given).
    pub old: SnapshotSide,
    /// The newer snapshot (as given).
    pub new: SnapshotSide,
    /// NEW was taken before OLD: the growth shown is backwards in time.
    pub new_is_older: bool,
    /// The snapshots are of different executables (compared with `force`).
    pub different_executables: bool,
    /// The snapshots are of different processes (pids or start times).
    pub different_processes: bool,
    /// Process-wide growth (the snapshots' `totals`).
    pub total: Growth,
    /// Growth per task name (and per bucket), biggest growth first.
    pub tasks: Vec<TaskGrowth>,
    /// Growth per allocation site, matched by symbolised stack, biggest
    /// growth first (estimates; empty when either snapshot has no sites).
    pub sites: Vec<SiteGrowth>,
    /// Whether both snapshots carry sampled sites.
    pub sampled: bool,
    /// Whether either snapshot was taken with sampling off (so it has no
    /// sites by design, rather than by chance).
    pub sampling_off: bool,
}

/// Which snapshot a side of a [`SnapshotDiff`] is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SnapshotSide {
    /// The process's executable.
    pub executable: String,
    /// Its pid.
    pub pid: u32,
    /// When the snapshot was taken, in ms since the Unix epoch.
    pub taken_at_ms: u64,
}

/// Live memory before and after.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Growth {
    /// Live bytes in OLD.
    pub old_live_bytes: u64,
    /// Live bytes in NEW.
    pub new_live_bytes: u64,
    /// NEW minus OLD.
    pub live_bytes: i64,
    /// Live blocks in OLD.
    pub old_live_blocks: u64,
    /// Live blocks in NEW.
    pub new_live_blocks: u64,
    /// NEW minus OLD.
    pub live_blocks: i64,
}

impl Growth {
    /// Whether live bytes or blocks changed.
    pub fn changed(&self) -> bool {
        self.live_bytes != 0 || self.live_blocks != 0
    }
}

/// Growth of the tasks sharing a name (or of a bucket).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TaskGrowth {
    /// Task or bucket name.
    pub name: String,
    /// Tasks of that name in OLD.
    pub old_tasks: usize,
    /// Tasks of that name in NEW.
    pub new_tasks: usize,
    /// Their summed live memory.
    pub growth: Growth,
}

/// Growth of one allocation site.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SiteGrowth {
    /// The stack, innermost first, each frame `function file:line`.
    pub frames: Vec<String>,
    /// Estimated live memory allocated there.
    pub growth: Growth,
}

/// Why two snapshots were not compared.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DiffError {
    /// They are of different executables.
    DifferentExecutables {
        /// OLD's executable.
        old: String,
        /// NEW's executable.
        new: String,
    },
}

impl fmt::Display for DiffError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DiffError::DifferentExecutables { old, new } => write!(
                f,
                "the snapshots are of different executables ({} and {}); their tasks and sites need not correspond (pass --force to compare anyway)",
                printable(old),
                printable(new)
            ),
        }
    }
}

impl std::error::Error for DiffError {}

/// Compares two snapshots. Refuses snapshots of different executables
/// unless `force`.
pub fn diff(old: &Snapshot, new: &Snapshot, force: bool) -> Result<SnapshotDiff, DiffError> {
    let different_executables = old.process.executable != new.process.executable;
    if different_executables && !force {
        return Err(DiffError::DifferentExecutables {
            old: old.process.executable.clone(),
            new: new.process.executable.clone(),
        });
    }
    let sampled = !old.owner_sites.is_empty() && !new.owner_sites.is_empty();
    Ok(SnapshotDiff {
        old: side(old),
        new: side(new),
        new_is_older: new.taken_at_ms < old.taken_at_ms,
        different_executables,
        different_processes: old.process.pid != new.process.pid
            || old.process.start_time_ms != new.process.start_time_ms,
        total: growth(
            (old.totals.live_bytes, old.totals.live_blocks),
            (new.totals.live_bytes, new.totals.live_blocks),
        ),
        tasks: task_growth(old, new),
        sites: if sampled {
            site_growth(old, new)
        } else {
            Vec::new()
        },
        sampled,
        sampling_off: old.sample_interval == 0 || new.sample_interval == 0,
    })
}

fn side(snap: &Snapshot) -> SnapshotSide {
    SnapshotSide {
        executable: snap.process.executable.clone(),
        pid: snap.process.pid,
        taken_at_ms: snap.taken_at_ms,
    }
}

fn growth(old: (u64, u64), new: (u64, u64)) -> Growth {
    Growth {
        old_live_bytes: old.0,
        new_live_bytes: new.0,
        live_bytes: delta(old.0, new.0),
        old_live_blocks: old.1,
        new_live_blocks: new.1,
        live_blocks: delta(old.1, new.1),
    }
}

/// `(tasks, live bytes, live blocks)` per task or bucket name.
type Sums = BTreeMap<String, (usize, u64, u64)>;

fn task_growth(old: &Snapshot, new: &Snapshot) -> Vec<TaskGrowth> {
    fn sums(snap: &Snapshot) -> Sums {
        let mut sums = Sums::new();
        for t in &snap.tasks {
            let e = sums.entry(t.name.clone()).or_default();
            e.0 += 1;
            e.1 = e.1.saturating_add(t.memory.live_bytes);
            e.2 = e.2.saturating_add(t.memory.live_blocks);
        }
        for b in &snap.buckets {
            let e = sums.entry(b.name.clone()).or_default();
            e.1 = e.1.saturating_add(b.memory.live_bytes);
            e.2 = e.2.saturating_add(b.memory.live_blocks);
        }
        sums
    }
    let (old, new) = (sums(old), sums(new));
    let mut names: Vec<&String> = old.keys().chain(new.keys()).collect();
    names.sort();
    names.dedup();
    let mut rows: Vec<TaskGrowth> = names
        .into_iter()
        .map(|name| {
            let o = old.get(name).copied().unwrap_or_default();
            let n = new.get(name).copied().unwrap_or_default();
            TaskGrowth {
                name: name.clone(),
                old_tasks: o.0,
                new_tasks: n.0,
                growth: growth((o.1, o.2), (n.1, n.2)),
            }
        })
        .filter(|row| row.growth.changed() || row.old_tasks != row.new_tasks)
        .collect();
    rows.sort_by(|a, b| {
        b.growth
            .live_bytes
            .cmp(&a.growth.live_bytes)
            .then_with(|| a.name.cmp(&b.name))
    });
    rows
}

fn site_growth(old: &Snapshot, new: &Snapshot) -> Vec<SiteGrowth> {
    // Site ids and addresses differ between processes; the symbolised stack
    // is what stays the same. Each distinct frame (`function file:line`)
    // gets one id for both snapshots, made once per location, so a stack is
    // a short run of ids and no string is built per frame of every site;
    // strings are made only for the rows that changed.
    let mut frames = FrameIds::default();
    let (old_ids, new_ids) = (frames.locations(old), frames.locations(new));
    // The two sides' stacks are made and sorted at once, one a thread.
    let (old, new) = std::thread::scope(|s| {
        let o = s.spawn(|| old_ids.sums(old));
        let n = new_ids.sums(new);
        (
            o.join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic)),
            n,
        )
    });
    let mut rows: Vec<SiteGrowth> = Vec::new();
    let mut row = |key: &[u32], o: (u64, u64), n: (u64, u64)| {
        let g = growth(o, n);
        if g.changed() {
            rows.push(SiteGrowth {
                frames: key
                    .iter()
                    .map(|&id| frames.keys[id as usize].clone())
                    .collect(),
                growth: g,
            });
        }
    };
    // Both sides are sorted by (hash, stack): merge them.
    let (mut i, mut j) = (0, 0);
    while i < old.stacks.len() || j < new.stacks.len() {
        let order = match (old.stacks.get(i), new.stacks.get(j)) {
            (Some(a), Some(b)) => old.order(a, &new, b),
            (Some(_), None) => std::cmp::Ordering::Less,
            _ => std::cmp::Ordering::Greater,
        };
        match order {
            std::cmp::Ordering::Less => {
                let a = &old.stacks[i];
                row(old.key(a), a.sums, (0, 0));
                i += 1;
            }
            std::cmp::Ordering::Greater => {
                let b = &new.stacks[j];
                row(new.key(b), (0, 0), b.sums);
                j += 1;
            }
            std::cmp::Ordering::Equal => {
                let (a, b) = (&old.stacks[i], &new.stacks[j]);
                row(old.key(a), a.sums, b.sums);
                i += 1;
                j += 1;
            }
        }
    }
    rows.sort_by(|a, b| {
        b.growth
            .live_bytes
            .cmp(&a.growth.live_bytes)
            .then_with(|| a.frames.cmp(&b.frames))
    });
    rows
}

/// Frame keys (`function file:line`) by id, shared by both snapshots.
#[derive(Default)]
struct FrameIds {
    keys: Vec<String>,
    ids: HashMap<String, u32>,
}

impl FrameIds {
    fn id(&mut self, key: String) -> u32 {
        if let Some(&id) = self.ids.get(&key) {
            return id;
        }
        let id = self.keys.len() as u32;
        self.keys.push(key.clone());
        self.ids.insert(key, id);
        id
    }

    /// The frame ids of every location the snapshot's sites use.
    fn locations(&mut self, snap: &Snapshot) -> LocationIds {
        let names = Names::new(snap);
        let mut out = LocationIds {
            of_location: PerId::new(snap.locations.len()),
            spans: Vec::new(),
            frames: Vec::new(),
        };
        for site in &snap.sites {
            for &location in &site.stack {
                out.of_location.get_or_insert_with(location, || {
                    let ids: Vec<u32> = names
                        .frames(&[location])
                        .iter()
                        .map(|f| self.id(f.key()))
                        .collect();
                    match ids[..] {
                        [id] if id < SPAN => id,
                        _ => {
                            out.spans.push((out.frames.len(), ids.len()));
                            out.frames.extend_from_slice(&ids);
                            SPAN | (out.spans.len() - 1) as u32
                        }
                    }
                });
            }
        }
        out
    }
}

/// A location's frame ids in [`LocationIds`]: the id itself when it is
/// one frame (most are), else this bit and the index of its span.
const SPAN: u32 = 1 << 31;

/// The frame ids of one snapshot's locations.
struct LocationIds {
    of_location: PerId<u32>,
    spans: Vec<(usize, usize)>,
    frames: Vec<u32>,
}

impl LocationIds {
    /// Live bytes and blocks per symbolised stack (frame ids, innermost
    /// first), sorted by the stack's hash then the stack: sorting and
    /// merging runs of ids touches memory in order, where a hash table of
    /// millions of stacks would miss the cache on every look-up.
    fn sums(&self, snap: &Snapshot) -> StackSums {
        let mut out = StackSums {
            ids: Vec::new(),
            stacks: Vec::with_capacity(snap.sites.len()),
        };
        for site in &snap.sites {
            let start = out.ids.len();
            for &location in &site.stack {
                // Every location of every site is in the table.
                let Some(ids) = self.of_location.get(location) else {
                    continue;
                };
                if ids & SPAN == 0 {
                    out.ids.push(ids);
                } else if let Some(&(at, len)) = self.spans.get((ids & !SPAN) as usize) {
                    out.ids.extend_from_slice(&self.frames[at..at + len]);
                }
            }
            let key = &out.ids[start..];
            out.stacks.push(StackSum {
                hash: hash_ids(key),
                // A snapshot within the input cap has far fewer than 2^32
                // frames in all its sites.
                start: u32::try_from(start).unwrap_or(u32::MAX),
                len: u32::try_from(key.len()).unwrap_or(0),
                sums: (site.live_bytes, site.live_blocks),
            });
        }
        let mut stacks = std::mem::take(&mut out.stacks);
        stacks.sort_unstable_by(|a, b| out.order(a, &out, b));
        // Sites with one symbolised stack are one row (merged in place).
        stacks.dedup_by(|s, last| {
            let same = out.order(last, &out, s).is_eq();
            if same {
                last.sums.0 = last.sums.0.saturating_add(s.sums.0);
                last.sums.1 = last.sums.1.saturating_add(s.sums.1);
            }
            same
        });
        out.stacks = stacks;
        out
    }
}

/// One snapshot's live bytes and blocks per symbolised stack.
struct StackSums {
    /// The stacks' frame ids, back to back.
    ids: Vec<u32>,
    /// Sorted by [`order`](Self::order), one per stack.
    stacks: Vec<StackSum>,
}

struct StackSum {
    hash: u64,
    start: u32,
    len: u32,
    /// Live bytes and blocks.
    sums: (u64, u64),
}

impl StackSums {
    fn key(&self, s: &StackSum) -> &[u32] {
        let start = s.start as usize;
        self.ids.get(start..start + s.len as usize).unwrap_or(&[])
    }

    /// By hash, then by the ids themselves: a total order in which equal
    /// stacks (of either snapshot, whose ids are shared) are adjacent.
    fn order(&self, a: &StackSum, other: &StackSums, b: &StackSum) -> std::cmp::Ordering {
        a.hash
            .cmp(&b.hash)
            .then_with(|| self.key(a).cmp(other.key(b)))
    }
}

/// A fast hash of a run of ids (ties are told apart by the ids, so a
/// collision only costs a comparison).
fn hash_ids(ids: &[u32]) -> u64 {
    let mut h = ids.len() as u64;
    for &id in ids {
        h = (h.rotate_left(5) ^ u64::from(id)).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
    h ^ (h >> 29)
}

impl SnapshotDiff {
    /// The diff as text, at most `top` tasks and `top` sites, each site
    /// with its innermost 12 frames (the JSON form has every frame).
    pub fn render(&self, top: usize) -> String {
        let mut out = String::new();
        let elapsed = self.new.taken_at_ms.abs_diff(self.old.taken_at_ms) as f64 / 1000.0;
        let _ = writeln!(
            out,
            "OLD: {} (pid {}), NEW: {} (pid {}), taken {elapsed:.1}s {}",
            printable(&self.old.executable),
            self.old.pid,
            printable(&self.new.executable),
            self.new.pid,
            if self.new_is_older {
                "EARLIER"
            } else {
                "later"
            },
        );
        if self.different_executables {
            out.push_str("warning: the snapshots are of different executables (--force)\n");
        } else if self.different_processes {
            out.push_str("note: the snapshots are of different runs of the executable\n");
        }
        let t = &self.total;
        let _ = writeln!(
            out,
            "live: {} -> {} ({}), blocks: {} -> {} ({:+})",
            human_bytes(t.old_live_bytes),
            human_bytes(t.new_live_bytes),
            signed_bytes(t.live_bytes),
            t.old_live_blocks,
            t.new_live_blocks,
            t.live_blocks,
        );

        out.push_str("\ngrowth by task:\n");
        if self.tasks.is_empty() {
            out.push_str("  (no change)\n");
        } else {
            let _ = writeln!(
                out,
                "  {:>11}  {:>10}  {:>10}  {:>8}  {:>7}  TASK",
                "GROWTH", "OLD", "NEW", "BLOCKS", "TASKS"
            );
            for row in self.tasks.iter().take(top) {
                let g = &row.growth;
                let _ = writeln!(
                    out,
                    "  {:>11}  {:>10}  {:>10}  {:>+8}  {:>7}  {}",
                    signed_bytes(g.live_bytes),
                    human_bytes(g.old_live_bytes),
                    human_bytes(g.new_live_bytes),
                    g.live_blocks,
                    format!("{}->{}", row.old_tasks, row.new_tasks),
                    printable(&row.name),
                );
            }
            more(&mut out, self.tasks.len(), top, "tasks");
        }

        out.push_str("\ngrowth by allocation site (estimated), innermost frame first:\n");
        if !self.sampled && self.sampling_off {
            out.push_str("  (no sites: a snapshot was taken with sampling off)\n");
        } else if !self.sampled {
            out.push_str("  (no sites: one of the snapshots has no live sampled block)\n");
        } else if self.sites.is_empty() {
            out.push_str("  (no change)\n");
        } else {
            for row in self.sites.iter().take(top) {
                let g = &row.growth;
                let _ = writeln!(
                    out,
                    "  {:>11}  {} -> {}  ({:+} blocks)",
                    signed_bytes(g.live_bytes),
                    human_bytes(g.old_live_bytes),
                    human_bytes(g.new_live_bytes),
                    g.live_blocks,
                );
                // The innermost frames name the site; a thread's whole
                // stack (outside tasks) would bury the next one.
                for frame in row.frames.iter().take(MAX_FRAMES) {
                    let _ = writeln!(out, "        {}", printable(frame));
                }
                if row.frames.len() > MAX_FRAMES {
                    let _ = writeln!(
                        out,
                        "        ({} outer frames; --json has them all)",
                        row.frames.len() - MAX_FRAMES
                    );
                }
            }
            more(&mut out, self.sites.len(), top, "sites");
        }
        out
    }
}

/// Frames shown per site by [`SnapshotDiff::render`].
const MAX_FRAMES: usize = 12;

fn more(out: &mut String, len: usize, top: usize, what: &str) {
    if len > top {
        let _ = writeln!(out, "  ({} more {what})", len - top);
    }
}
