//! Limits on the shape of a snapshot, so that what reading it costs is
//! bounded by the file: a few times its size plus a fixed amount, and,
//! for what renderers must spell out (each stack of a flame graph names
//! every frame), the [`text_budget`].
//!
//! A snapshot is untrusted input, and JSON lets a small file describe a
//! large structure: `"",` is 3 bytes of a list of strings but 24 bytes of
//! `String`; a site's stack of 1,000 copies of one location of 200
//! inlined lines is 200,000 frames for every renderer to walk. Lists that
//! no real snapshot makes long are refused *while they are parsed*, as
//! soon as they pass their limit ([`MAX_ARGS`], [`MAX_PARTY_FRAMES`],
//! [`MAX_STACK_DEPTH`], [`MAX_INLINE_DEPTH`], [`MAX_LINKS`], and
//! [`name_budget`] for all parties' frames together); what
//! renderers expand (a site's stack with its locations' inlined lines;
//! the stacks of a flame graph, one per owner name and site; a resource's
//! place repeated at every step of a chain) is checked once the file is
//! parsed, against a budget that grows with the file ([`frame_budget`],
//! [`text_budget`]).
//! JSON nesting is limited by serde_json (128 levels).
//!
//! Real snapshots are far inside every limit: TurboWish's sampler keeps at
//! most 64 frames a stack, and the large-input bench's snapshot of two
//! million sites (as large as the 512 MiB input cap allows) uses under a
//! tenth of the frame budget and under a twentieth of the text budget.

use std::cell::Cell;
use std::collections::HashMap;
use std::fmt;
use std::marker::PhantomData;

use serde::de::{Deserialize, Deserializer, SeqAccess, Visitor};

use crate::load::LoadError;
use crate::schema::{Owner, Snapshot};

/// Most entries of `process.args`. Linux passes a program at most a few
/// hundred thousand arguments (their bytes and pointers must fit in a
/// quarter of the stack limit).
pub const MAX_ARGS: usize = 1 << 20;

/// Most names in one holder's or waiter's `frames` or `parked_in` (nested
/// `.traced()` futures).
pub const MAX_PARTY_FRAMES: usize = 4096;

/// Most locations in one site's `stack` (TurboWish's sampler keeps 64).
pub const MAX_STACK_DEPTH: usize = 1024;

/// Most source lines (inlined functions) at one location.
pub const MAX_INLINE_DEPTH: usize = 256;

/// Most frames of one site once each location of its stack contributes
/// its inlined lines.
pub const MAX_SITE_FRAMES: usize = 4096;

/// Most steps (`links`) in one chain or cycle.
pub const MAX_LINKS: usize = 1 << 20;

/// The marker that starts the message of a limit hit while parsing, so the
/// loader can tell it from a wrong type.
pub(crate) const OVER_LIMIT: &str = "over the limit: ";

/// The most frames renderers may expand, in all sites and in a flame
/// graph's stacks (each separately), for a file of `len` bytes: 256 Ki
/// plus one for every 2 bytes of the file.
///
/// ```
/// assert_eq!(turbowish_snapshot::limits::frame_budget(0), 262_144);
/// ```
pub fn frame_budget(len: usize) -> u64 {
    (1 << 18) + len as u64 / 2
}

/// The most bytes of names renderers may spell out (function and file
/// names of every frame of every site, and of a flame graph's stacks; the
/// resource's place at every step of every chain; each separately), for a
/// file of `len` bytes: 16 MiB plus 64 bytes for every byte of the file.
/// Real snapshots spell out from 3 (short names, as the large-input
/// bench's) to a few tens (deep stacks of long generic names, a site in
/// the stacks of several task names) bytes a byte: a stack entry is a few
/// bytes of the file but a whole name in a flame graph's line.
///
/// ```
/// assert_eq!(turbowish_snapshot::limits::text_budget(1), (16 << 20) + 64);
/// ```
pub fn text_budget(len: usize) -> u64 {
    (16 << 20) + 64 * len as u64
}

/// The most names all holders' and waiters' `frames` and `parked_in` may
/// hold together, for a file of `len` bytes: 1 Mi plus one for every 16
/// bytes of the file. (A name in such a list is 3 bytes of the file at
/// least, `"",`, but 24 bytes of `String`: spread over many holders, the
/// per-list limit alone would let a file take 8 times its size.)
///
/// ```
/// assert_eq!(turbowish_snapshot::limits::name_budget(160), 1_048_586);
/// ```
pub fn name_budget(len: usize) -> u64 {
    (1 << 20) + len as u64 / 16
}

thread_local! {
    /// `(budget, left)` of names in parties' lists for the file being
    /// parsed on this thread; no budget outside [`NameBudget`].
    static NAMES: Cell<(u64, u64)> = const { Cell::new((u64::MAX, u64::MAX)) };
}

/// While alive, parties' lists on this thread count against
/// [`name_budget`] of a file of the given length.
pub(crate) struct NameBudget(());

impl NameBudget {
    pub(crate) fn start(len: usize) -> NameBudget {
        let budget = name_budget(len);
        NAMES.with(|n| n.set((budget, budget)));
        NameBudget(())
    }
}

impl Drop for NameBudget {
    fn drop(&mut self) {
        NAMES.with(|n| n.set((u64::MAX, u64::MAX)));
    }
}

/// Deserializes a list, refusing it once it has more than `max` entries
/// (before the next one is stored); with `names`, each entry also counts
/// against the [`NameBudget`].
fn bounded<'de, D, T>(d: D, max: usize, what: &'static str, names: bool) -> Result<Vec<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    struct Bounded<T> {
        max: usize,
        what: &'static str,
        names: bool,
        marker: PhantomData<T>,
    }
    impl<'de, T: Deserialize<'de>> Visitor<'de> for Bounded<T> {
        type Value = Vec<T>;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            write!(f, "a list of at most {} {}", self.max, self.what)
        }

        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<T>, A::Error> {
            let mut items = Vec::new();
            while let Some(item) = seq.next_element()? {
                if items.len() == self.max {
                    return Err(serde::de::Error::custom(format_args!(
                        "{OVER_LIMIT}more than {} {} (limit {})",
                        self.max, self.what, self.max
                    )));
                }
                if self.names {
                    let (budget, left) = NAMES.with(Cell::get);
                    if left == 0 {
                        return Err(serde::de::Error::custom(format_args!(
                            "{OVER_LIMIT}more names in all holders' and waiters' frames than a file of this size may hold (limit {budget}: 1048576 + 1 per 16 bytes)"
                        )));
                    }
                    NAMES.with(|n| n.set((budget, left - 1)));
                }
                items.push(item);
            }
            Ok(items)
        }
    }
    d.deserialize_seq(Bounded {
        max,
        what,
        names,
        marker: PhantomData,
    })
}

pub(crate) fn args<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    bounded(d, MAX_ARGS, "arguments", false)
}

pub(crate) fn party_frames<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    bounded(d, MAX_PARTY_FRAMES, "frames", true)
}

pub(crate) fn stack<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u32>, D::Error> {
    bounded(d, MAX_STACK_DEPTH, "locations", false)
}

pub(crate) fn lines<'de, D, T>(d: D) -> Result<Vec<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    bounded(d, MAX_INLINE_DEPTH, "lines", false)
}

pub(crate) fn links<'de, D, T>(d: D) -> Result<Vec<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    bounded(d, MAX_LINKS, "entries", false)
}

/// Text a frame adds besides its names (`:line`, separators).
const FRAME_OVERHEAD: u64 = 16;

/// Checks what renderers would expand from `snap` (parsed from `len`
/// bytes) against the per-site limit and the budgets.
pub(crate) fn check_expansion(snap: &Snapshot, len: usize, origin: &str) -> Result<(), LoadError> {
    let over = |path: String, message: String| LoadError::Limit {
        origin: origin.to_owned(),
        path,
        message,
    };
    let frames_max = frame_budget(len);
    let text_max = text_budget(len);

    let (_, frames_all, text_all) = site_costs(snap, &over)?;
    check_budget(&over, "sites", frames_all, text_all, frames_max, text_max)?;

    // Each step of a chain shows its resource's place (who may lock it
    // only at its first step).
    let resource_text: HashMap<u64, u64> = snap
        .resources
        .iter()
        .map(|r| (r.id, r.location.len() as u64 + FRAME_OVERHEAD))
        .collect();
    for (field, links) in [
        (
            "chains",
            snap.chains.iter().map(|c| &c.links).collect::<Vec<_>>(),
        ),
        ("cycles", snap.cycles.iter().map(|c| &c.links).collect()),
    ] {
        let text: u64 = links
            .iter()
            .flat_map(|links| links.iter())
            .map(|l| resource_text.get(&l.resource).copied().unwrap_or(0))
            .fold(0u64, u64::saturating_add);
        if text > text_max {
            return Err(over(
                field.to_owned(),
                format!(
                    "its steps repeat {text} bytes of their resources' places, more than a file of this size may expand to (limit {text_max}: 16 MiB + 64 bytes a byte)"
                ),
            ));
        }
    }
    Ok(())
}

/// Checks what a flame graph of `snap` (parsed from `len` bytes) spells
/// out against the budgets: one stack for each distinct owner name and
/// site, naming every frame of the site. Only `flamegraph --folded`, which
/// writes those stacks out, asks: the other commands read a snapshot of
/// thousands of tasks at shared deep sites without spelling it out (the
/// SVG draws a bounded number of frames from stacks kept once a site).
///
/// ```
/// let snap: turbowish_snapshot::Snapshot =
///     serde_json::from_str(include_str!("../tests/fixtures/service.json")).unwrap();
/// assert!(turbowish_snapshot::limits::check_flame_stacks(&snap, 10_000, "s.json").is_ok());
/// ```
pub fn check_flame_stacks(snap: &Snapshot, len: usize, origin: &str) -> Result<(), LoadError> {
    let over = |path: String, message: String| LoadError::Limit {
        origin: origin.to_owned(),
        path,
        message,
    };
    let frames_max = frame_budget(len);
    let text_max = text_budget(len);
    let (site_cost, _, _) = site_costs(snap, &over)?;
    // A flame graph draws the stacks of each owner name apart (tasks of
    // one name share theirs): each distinct (owner name, site) is a line
    // spelling its whole stack, whatever the number of rows behind it.
    let mut name_ids: HashMap<&str, u64> = HashMap::new();
    let mut name_len: Vec<u64> = Vec::new();
    let mut named: HashMap<Owner, u64> = HashMap::new();
    for (owner, name) in snap
        .tasks
        .iter()
        .map(|t| (Owner::Task(t.id), t.name.as_str()))
        .chain(snap.buckets.iter().map(|b| (b.owner, b.name.as_str())))
    {
        let next = name_len.len() as u64;
        let id = *name_ids.entry(name).or_insert(next);
        if id == next {
            name_len.push(name.len() as u64);
        }
        named.insert(owner, id);
    }
    // An owner the snapshot does not name is drawn under a name of its
    // own (`task #7`): a key of its own, past the names'.
    let mut unnamed: HashMap<Owner, u64> = HashMap::new();
    let mut pairs: Vec<(u64, u32)> = snap
        .owner_sites
        .iter()
        .map(|os| {
            let key = match named.get(&os.owner) {
                Some(&id) => id,
                None => {
                    let next = (1 << 32) + unnamed.len() as u64;
                    *unnamed.entry(os.owner).or_insert(next)
                }
            };
            (key, os.site)
        })
        .collect();
    pairs.sort_unstable();
    pairs.dedup();
    let (mut frames_all, mut text_all) = (0u64, 0u64);
    for &(owner, site) in &pairs {
        let (frames, text) = site_cost.get(site);
        let owner = name_len.get(owner as usize).copied().unwrap_or(0).max(24);
        frames_all = frames_all.saturating_add(frames + 1);
        text_all = text_all.saturating_add(text.saturating_add(owner + FRAME_OVERHEAD));
    }
    drop(pairs);
    check_budget(
        &over,
        "owner_sites",
        frames_all,
        text_all,
        frames_max,
        text_max,
    )?;

    Ok(())
}

/// Each site's `(frames, text)` once its locations' inlined lines are
/// counted, and their sums; a site over [`MAX_SITE_FRAMES`] is refused.
fn site_costs(
    snap: &Snapshot,
    over: &impl Fn(String, String) -> LoadError,
) -> Result<(SiteCosts, u64, u64), LoadError> {
    // (frames, text bytes) of each location.
    let locations: HashMap<u32, (u64, u64)> = snap
        .locations
        .iter()
        .map(|l| {
            let text = l.lines.iter().fold(0u64, |sum, line| {
                sum.saturating_add(
                    line.function.len() as u64
                        + line.file.as_ref().map_or(0, |f| f.len() as u64)
                        + FRAME_OVERHEAD,
                )
            });
            // An unsymbolised location is one frame: its address.
            let frames = (l.lines.len() as u64).max(1);
            (l.id, (frames, text.max(FRAME_OVERHEAD + 2)))
        })
        .collect();
    let mut site_cost = SiteCosts::new(snap);
    let (mut frames_all, mut text_all) = (0u64, 0u64);
    for (i, site) in snap.sites.iter().enumerate() {
        let (mut frames, mut text) = (0u64, 0u64);
        for id in &site.stack {
            // A dangling id renders as one placeholder frame.
            let (f, t) = locations
                .get(id)
                .copied()
                .unwrap_or((1, FRAME_OVERHEAD + 20));
            frames += f;
            text = text.saturating_add(t);
        }
        if frames > MAX_SITE_FRAMES as u64 {
            return Err(over(
                format!("sites[{i}].stack"),
                format!(
                    "{frames} frames once its locations' inlined lines are counted (limit {MAX_SITE_FRAMES})"
                ),
            ));
        }
        frames_all = frames_all.saturating_add(frames);
        text_all = text_all.saturating_add(text);
        site_cost.insert(site.id, frames, text);
    }
    Ok((site_cost, frames_all, text_all))
}

/// `(frames, text)` of each site by id: a vector when the ids are dense
/// (a snapshot's are `0..n`), else a map.
enum SiteCosts {
    Dense(Vec<(u64, u64)>),
    Sparse(HashMap<u32, (u64, u64)>),
}

impl SiteCosts {
    fn new(snap: &Snapshot) -> SiteCosts {
        let max = snap.sites.iter().map(|s| s.id as usize).max().unwrap_or(0);
        if max <= 2 * snap.sites.len() + 1024 {
            SiteCosts::Dense(vec![(0, 0); max + 1])
        } else {
            SiteCosts::Sparse(HashMap::with_capacity(snap.sites.len()))
        }
    }

    fn insert(&mut self, id: u32, frames: u64, text: u64) {
        match self {
            SiteCosts::Dense(costs) => costs[id as usize] = (frames, text),
            SiteCosts::Sparse(costs) => {
                costs.insert(id, (frames, text));
            }
        }
    }

    /// A site the snapshot does not have costs nothing (it is drawn as
    /// nothing).
    fn get(&self, id: u32) -> (u64, u64) {
        match self {
            SiteCosts::Dense(costs) => costs.get(id as usize).copied().unwrap_or((0, 0)),
            SiteCosts::Sparse(costs) => costs.get(&id).copied().unwrap_or((0, 0)),
        }
    }
}

fn check_budget(
    over: &impl Fn(String, String) -> LoadError,
    field: &str,
    frames: u64,
    text: u64,
    frames_max: u64,
    text_max: u64,
) -> Result<(), LoadError> {
    if frames > frames_max {
        return Err(over(
            field.to_owned(),
            format!(
                "its stacks expand to {frames} frames, more than a file of this size may expand to (limit {frames_max}: 262144 + 1 per 2 bytes)"
            ),
        ));
    }
    if text > text_max {
        return Err(over(
            field.to_owned(),
            format!(
                "its stacks expand to {text} bytes of names, more than a file of this size may expand to (limit {text_max}: 16 MiB + 64 bytes a byte)"
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::{OwnerSite, SourceLine};

    fn fixture() -> Snapshot {
        serde_json::from_str(include_str!("../tests/fixtures/service.json")).unwrap()
    }

    /// The fixture with location 0 made 64 lines deep and site 0's stack
    /// `depth` copies of it.
    fn deep(depth: usize) -> Snapshot {
        let mut snap = fixture();
        snap.locations[0].lines = (0..64)
            .map(|i| SourceLine {
                function: format!("f{i}"),
                file: None,
                line: None,
            })
            .collect();
        snap.sites[0].stack = vec![0; depth];
        snap
    }

    #[test]
    fn a_site_may_have_exactly_its_limit_of_frames() {
        assert!(check_expansion(&deep(64), 30_000, "f").is_ok());
        let err = check_expansion(&deep(65), 30_000, "f").unwrap_err();
        assert_eq!(
            err.to_string(),
            "f: refused: field `sites[0].stack`: 4160 frames once its locations' inlined lines are counted (limit 4096)"
        );
    }

    #[test]
    fn owners_stacks_count_against_the_frame_budget() {
        // 100 owners of other names each at a 4,096-frame site: 409,700
        // frames, over the budget of a 100 kB file (312,144), under that
        // of a 1 MB one.
        let mut snap = deep(64);
        let row = snap.owner_sites[0];
        assert_eq!(row.site, 0);
        // Rows of one owner name are one stack, however many.
        snap.owner_sites = vec![row; 100];
        assert!(check_flame_stacks(&snap, 100_000, "f").is_ok());
        snap.owner_sites = (0..100)
            .map(|i| OwnerSite {
                owner: Owner::TokioTask(i),
                ..row
            })
            .collect();
        assert!(check_flame_stacks(&snap, 1_000_000, "f").is_ok());
        // The loader leaves them to the folded output's own check.
        assert!(check_expansion(&snap, 100_000, "f").is_ok());
        let err = check_flame_stacks(&snap, 100_000, "f").unwrap_err();
        assert!(
            err.to_string().starts_with(
                "f: refused: field `owner_sites`: its stacks expand to 409700 frames, more than a file of this size may expand to (limit 312144:"
            ),
            "{err}"
        );
    }

    #[test]
    fn names_spelled_out_count_against_the_text_budget() {
        let mut snap = fixture();
        snap.locations[0].lines[0].function = "f".repeat(1 << 20);
        let site = snap
            .sites
            .iter()
            .position(|s| s.stack.contains(&0))
            .unwrap();
        snap.sites[site].stack = vec![0; 20];
        // 20 names of 1 MiB: over 16 MiB + 64 bytes a byte of a 1 kB file.
        let err = check_expansion(&snap, 1_000, "f").unwrap_err();
        assert!(
            err.to_string()
                .starts_with("f: refused: field `sites`: its stacks expand to"),
            "{err}"
        );
        assert!(check_expansion(&snap, 1_000_000, "f").is_ok());
    }
}
