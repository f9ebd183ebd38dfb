//! `turbowish flamegraph`: live bytes by owner, then by call path, as
//! collapsed ("folded") stacks or an inferno SVG.

use std::collections::HashMap;
use std::fmt;

use crate::labels::{Names, PerId};
use turbowish_snapshot::format::printable;
use turbowish_snapshot::schema::{Owner, Snapshot};

/// Collapsed stacks of live bytes: each stack starts at its owner's name
/// (task or bucket), then the frames outermost to innermost; the count is
/// the estimated live bytes allocated there.
///
/// Without sampled sites (`sample_interval` 0, or no live sample), each
/// stack is only an owner name with its exact live bytes, so the picture
/// still shows memory by task.
///
/// Frame names are interned and numbered in sorted order, so each stack is
/// a short run of `u32`s and sorting the stacks by those runs sorts them
/// by name, frame by frame; equal stacks are then merged. A snapshot of
/// millions of sites costs one small record per owner and site and one
/// `u32` per frame of each distinct site, never a node per frame, and the
/// SVG is drawn from the frames wide enough to be seen, found in one pass
/// over the sorted stacks.
///
/// ```
/// # let snap: turbowish_snapshot::Snapshot = serde_json::from_str(include_str!("../../turbowish-snapshot/tests/fixtures/service.json")).unwrap();
/// let folded = turbowish_report::flame::FoldedStacks::new(&snap);
/// assert!(folded.sampled);
/// assert!(folded.to_string().lines().all(|l| l.rsplit_once(' ').is_some()));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FoldedStacks {
    /// Frame names (made safe by `frame_name`), each once, sorted: a
    /// name's id is its rank.
    names: Vec<String>,
    /// The frames of every site's path, outermost first, back to back.
    frames: Vec<u32>,
    /// The stacks, sorted by owner then path, equal ones merged.
    stacks: Vec<Stack>,
    /// Bytes over all stacks.
    total: u64,
    /// Whether the stacks come from sampled sites (else: owner names only).
    pub sampled: bool,
}

/// A frame of the current stack in [`FoldedStacks::walk`]: its name, its
/// subtree's bytes, and the bytes it shows itself (its own and small
/// subtrees').
struct Open {
    name: u32,
    total: u64,
    here: u64,
}

/// One stack: its owner's name, then `frames[start..start + len]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stack {
    owner: u32,
    len: u32,
    start: usize,
    bytes: u64,
}

/// The largest sum of counts handed to inferno, which adds them up in a
/// `usize` and scales them in `f64`s: 2^52 fits both, exactly.
const MAX_INFERNO_SUM: u128 = 1 << 52;

/// The most frames the SVG draws besides the owners: a picture of more is
/// unreadable, and each costs the SVG its name twice and some markup.
const MAX_DRAWN: usize = 50_000;

/// The longest frame name the SVG spells out (in bytes; longer ones are
/// cut, with `…`); the folded stacks keep every name whole.
const MAX_DRAWN_NAME: usize = 1_000;

/// `name` cut to [`MAX_DRAWN_NAME`] bytes (at a character boundary), for
/// inferno: a name that ends in a space and a number (`tokio task 1999`)
/// has that space made a no-break one, since inferno reads a line ending
/// in two numbers as a differential one (`stack before after`) and would
/// take the task's number for a count.
fn drawn_name(name: &str) -> std::borrow::Cow<'_, str> {
    let mut cut = name.len().min(MAX_DRAWN_NAME);
    while !name.is_char_boundary(cut) {
        cut -= 1;
    }
    let numbered = name[..cut]
        .rsplit_once(' ')
        .filter(|(_, last)| last.parse::<f64>().is_ok());
    match (numbered, cut < name.len()) {
        (None, false) => name.into(),
        (None, true) => format!("{}…", &name[..cut]).into(),
        (Some((head, last)), cut_off) => {
            format!("{head}\u{a0}{last}{}", if cut_off { "…" } else { "" }).into()
        }
    }
}

/// The least share of the total a frame needs to be drawn: inferno leaves
/// out frames narrower than 0.1 px, and the SVG is 1,200 px wide.
const DRAWN_SHARE: u64 = 12_000;

impl FoldedStacks {
    /// Folds the snapshot's owner-site estimates (or, without them, the
    /// owners' live bytes).
    pub fn new(snap: &Snapshot) -> FoldedStacks {
        let names = Names::new(snap);
        let mut interner = Interner::default();
        let mut frames: Vec<u32> = Vec::new();
        let mut stacks: Vec<Stack> = Vec::new();
        let sampled = !snap.owner_sites.is_empty();
        if sampled {
            // Each location's frames (outermost first), and each site's
            // path, made once: many owners share a site, and many sites a
            // location.
            let mut location_frames: PerId<(u32, u32)> = PerId::new(snap.locations.len());
            let mut of_locations: Vec<u32> = Vec::new();
            let mut site_paths: PerId<(usize, u32)> = PerId::new(snap.sites.len());
            let mut owners: HashMap<Owner, u32> = HashMap::new();
            for os in &snap.owner_sites {
                if os.live_bytes == 0 {
                    continue;
                }
                let owner = *owners
                    .entry(os.owner)
                    .or_insert_with(|| interner.intern(&names.owner(os.owner)));
                let (start, len) = site_paths.get_or_insert_with(os.site, || {
                    let start = frames.len();
                    if let Some(site) = names.site(os.site) {
                        // Sites store the innermost frame first; flame
                        // graphs grow from the outermost.
                        for &location in site.stack.iter().rev() {
                            let (at, n) = location_frames.get_or_insert_with(location, || {
                                let at = of_locations.len();
                                for f in names.frames(&[location]).iter().rev() {
                                    of_locations.push(interner.intern(&f.function_name()));
                                }
                                (at as u32, (of_locations.len() - at) as u32)
                            });
                            frames.extend_from_slice(&of_locations[at as usize..(at + n) as usize]);
                        }
                    }
                    (
                        start,
                        u32::try_from(frames.len() - start).unwrap_or(u32::MAX),
                    )
                });
                stacks.push(Stack {
                    owner,
                    len,
                    start,
                    bytes: os.live_bytes,
                });
            }
        } else {
            for (name, bytes) in snap
                .tasks
                .iter()
                .map(|t| (&t.name, t.memory.live_bytes))
                .chain(snap.buckets.iter().map(|b| (&b.name, b.memory.live_bytes)))
            {
                if bytes > 0 {
                    stacks.push(Stack {
                        owner: interner.intern(name),
                        len: 0,
                        start: 0,
                        bytes,
                    });
                }
            }
        }
        FoldedStacks::from_parts(interner, frames, stacks, sampled)
    }

    /// Numbers the interned names in sorted order and sorts and merges the
    /// stacks: what [`FoldedStacks::new`] read, made into the folded form.
    fn from_parts(
        interner: Interner,
        mut frames: Vec<u32>,
        mut stacks: Vec<Stack>,
        sampled: bool,
    ) -> FoldedStacks {
        // Number the names in sorted order.
        let mut order: Vec<u32> = (0..interner.names.len() as u32).collect();
        order
            .sort_unstable_by(|&a, &b| interner.names[a as usize].cmp(&interner.names[b as usize]));
        let mut rank = vec![0u32; order.len()];
        for (r, &id) in order.iter().enumerate() {
            rank[id as usize] = r as u32;
        }
        let mut all_names = interner.names;
        let names: Vec<String> = order
            .iter()
            .map(|&id| std::mem::take(&mut all_names[id as usize]))
            .collect();
        for f in &mut frames {
            *f = rank[*f as usize];
        }
        for s in &mut stacks {
            s.owner = rank[s.owner as usize];
        }
        let path = |s: &Stack| &frames[s.start..s.start + s.len as usize];
        stacks.sort_unstable_by(|a, b| a.owner.cmp(&b.owner).then_with(|| path(a).cmp(path(b))));
        let mut merged: Vec<Stack> = Vec::with_capacity(stacks.len());
        let mut total = 0u64;
        for s in stacks {
            total = total.saturating_add(s.bytes);
            match merged.last_mut() {
                Some(last) if last.owner == s.owner && path(last) == path(&s) => {
                    last.bytes = last.bytes.saturating_add(s.bytes);
                }
                _ => merged.push(s),
            }
        }
        merged.shrink_to_fit();
        FoldedStacks {
            names,
            frames,
            stacks: merged,
            total,
            sampled,
        }
    }

    /// Total bytes over all stacks.
    pub fn total(&self) -> u64 {
        self.total
    }

    /// Whether there is no stack (no live bytes).
    pub fn is_empty(&self) -> bool {
        self.total == 0
    }

    /// Every `stack bytes` line, stacks in sorted order (frames compared
    /// one by one), as `Display` writes them.
    pub fn lines(&self) -> Vec<String> {
        self.to_string().lines().map(str::to_owned).collect()
    }

    /// Renders the stacks as an inferno flame graph (SVG). Fails when there
    /// is nothing to draw (no live bytes).
    pub fn to_svg(&self, title: &str) -> std::io::Result<Vec<u8>> {
        self.svg(title, None)
    }

    /// [`to_svg`](Self::to_svg) at a fixed width in pixels, for a page that
    /// embeds it: a "fluid" SVG sizes itself from its parent when it loads,
    /// which inside a frame that is still being laid out is zero wide.
    pub fn to_svg_with_width(&self, title: &str, width: usize) -> std::io::Result<Vec<u8>> {
        self.svg(title, Some(width))
    }

    fn svg(&self, title: &str, width: Option<usize>) -> std::io::Result<Vec<u8>> {
        if self.is_empty() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                "nothing to draw: no live bytes in the snapshot",
            ));
        }
        let lines = self.svg_lines();
        let mut options = inferno::flamegraph::Options::default();
        options.title = frame_name(title);
        options.count_name = "bytes".to_owned();
        options.name_type = "Frame:".to_owned();
        // Same input, same picture: colours by name, not at random.
        options.hash = true;
        options.deterministic = true;
        options.image_width = width;
        let mut svg = Vec::new();
        inferno::flamegraph::from_lines(&mut options, lines.iter().map(String::as_str), &mut svg)?;
        Ok(svg)
    }

    /// The folded lines inferno draws the SVG from, sorted. Frames too
    /// narrow to be drawn are folded into their parent (the widths of those
    /// drawn stay exact, and inferno gets thousands of lines, not
    /// millions), and to at most [`MAX_DRAWN`] frames besides the owners
    /// (the widest); names over [`MAX_DRAWN_NAME`]
    /// bytes are cut; and figures a snapshot made absurd (sums saturated
    /// at `u64::MAX`) are scaled down until their sum fits inferno's
    /// arithmetic (it adds the counts up in a `usize`, and panics or wraps
    /// past it), which keeps the picture's proportions.
    fn svg_lines(&self) -> Vec<String> {
        let mut least = self.total() / DRAWN_SHARE;
        // At most MAX_DRAWN frames besides the owners: a frame's total is
        // at least each of its children's, so the frames drawn at a
        // threshold are exactly those whose total reaches it.
        let mut totals: Vec<u64> = Vec::new();
        self.walk(least, |path, frame| {
            if !path.is_empty() {
                totals.push(frame.total);
            }
        });
        if totals.len() > MAX_DRAWN {
            let (_, &mut nth, _) = totals.select_nth_unstable_by(MAX_DRAWN, |a, b| b.cmp(a));
            least = least.max(nth.saturating_add(1));
        }
        drop(totals);
        let stacks = self.drawn(least);
        let sum: u128 = stacks.iter().map(|(_, bytes)| u128::from(*bytes)).sum();
        let mut shift = 0;
        while sum >> shift > MAX_INFERNO_SUM {
            shift += 1;
        }
        let mut lines: Vec<String> = stacks
            .into_iter()
            .map(|(stack, bytes)| format!("{stack} {}", bytes >> shift))
            .collect();
        lines.sort_unstable();
        lines
    }

    /// The name ids of a stack's frames, its owner first.
    fn path(&self, s: &Stack) -> impl Iterator<Item = u32> + '_ {
        std::iter::once(s.owner).chain(
            self.frames[s.start..s.start + s.len as usize]
                .iter()
                .copied(),
        )
    }

    /// The stacks and bytes of the frames of at least `least` bytes (an
    /// owner always), names cut for drawing: a smaller subtree is counted
    /// in the frame above it.
    fn drawn(&self, least: u64) -> Vec<(String, u64)> {
        let mut lines = Vec::new();
        self.walk(least, |path, frame| {
            if frame.here > 0 {
                let mut line = String::new();
                for f in path.iter().chain([frame]) {
                    if !line.is_empty() {
                        line.push(';');
                    }
                    line.push_str(&drawn_name(&self.names[f.name as usize]));
                }
                lines.push((line, frame.here));
            }
        });
        lines
    }

    /// Visits every frame of at least `least` bytes (an owner always) once
    /// its subtree is complete, with the frames above it; a smaller subtree
    /// is counted in the frame above it (in its `here`). One pass over the
    /// sorted stacks, keeping only the frames of the current stack open: a
    /// frame's subtree is complete when a stack leaves it.
    fn walk(&self, least: u64, mut visit: impl FnMut(&[Open], &Open)) {
        let mut open: Vec<Open> = Vec::new();
        let mut close = |open: &mut Vec<Open>| {
            let Some(frame) = open.pop() else { return };
            match open.last_mut() {
                Some(parent) if frame.total < least => {
                    parent.here = parent.here.saturating_add(frame.total);
                }
                _ => visit(open, &frame),
            }
        };
        for s in &self.stacks {
            let shared = self
                .path(s)
                .zip(&open)
                .take_while(|(name, o)| *name == o.name)
                .count();
            while open.len() > shared {
                close(&mut open);
            }
            for name in self.path(s).skip(shared) {
                open.push(Open {
                    name,
                    total: 0,
                    here: 0,
                });
            }
            for o in &mut open {
                o.total = o.total.saturating_add(s.bytes);
            }
            if let Some(last) = open.last_mut() {
                last.here = last.here.saturating_add(s.bytes);
            }
        }
        while !open.is_empty() {
            close(&mut open);
        }
    }

    /// The folded text, as `Display` writes it, made in one buffer of the
    /// exact size: millions of stacks are hundreds of megabytes of text,
    /// which a growing string would copy and a formatter write piece by
    /// piece.
    ///
    /// ```
    /// # let snap: turbowish_snapshot::Snapshot = serde_json::from_str(include_str!("../../turbowish-snapshot/tests/fixtures/service.json")).unwrap();
    /// let folded = turbowish_report::flame::FoldedStacks::new(&snap);
    /// assert_eq!(folded.folded_text(), folded.to_string());
    /// ```
    pub fn folded_text(&self) -> String {
        String::from_utf8(self.folded_bytes())
            .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
    }

    /// [`folded_text`](Self::folded_text) as bytes, in one buffer of the
    /// text's exact size (made by [`write_folded`](Self::write_folded),
    /// for standard output, which takes the text whole).
    pub fn folded_bytes(&self) -> Vec<u8> {
        let digits = |n: u64| n.checked_ilog10().map_or(1, |d| d as usize + 1);
        let total: usize = self
            .stacks
            .iter()
            .map(|s| {
                self.path(s)
                    .map(|name| self.names[name as usize].len() + 1)
                    .sum::<usize>()
                    + digits(s.bytes)
                    + 1
            })
            .sum();
        let mut buf = Vec::with_capacity(total);
        // Writing into a `Vec` cannot fail.
        let _ = self.write_folded(&mut buf);
        buf
    }

    /// Writes the folded text (as [`folded_bytes`](Self::folded_bytes))
    /// to `out` a few megabytes at a time, from one reused buffer: the
    /// text of millions of stacks is hundreds of megabytes, which a buffer
    /// of its whole size would take in memory and in page faults (about
    /// as long as making the text, measured on 2,090,000 sites).
    ///
    /// ```
    /// # let snap: turbowish_snapshot::Snapshot = serde_json::from_str(include_str!("../../turbowish-snapshot/tests/fixtures/service.json")).unwrap();
    /// let folded = turbowish_report::flame::FoldedStacks::new(&snap);
    /// let mut out = Vec::new();
    /// folded.write_folded(&mut out).unwrap();
    /// assert_eq!(out, folded.folded_bytes());
    /// ```
    pub fn write_folded(&self, out: &mut impl std::io::Write) -> std::io::Result<()> {
        const CHUNK: usize = 4 << 20;
        // Two buffers go round: one is filled on a thread of its own while
        // the other is written (a write of hundreds of megabytes is about
        // a third of the time it takes to make them).
        let (full_tx, full_rx) = std::sync::mpsc::sync_channel::<Vec<u8>>(1);
        let (empty_tx, empty_rx) = std::sync::mpsc::sync_channel::<Vec<u8>>(2);
        for _ in 0..2 {
            let _ = empty_tx.send(Vec::with_capacity(CHUNK + 4096));
        }
        std::thread::scope(move |scope| {
            scope.spawn(move || {
                let mut number = itoa_buffer();
                let Ok(mut buf) = empty_rx.recv() else { return };
                for s in &self.stacks {
                    let mut first = true;
                    for name in self.path(s) {
                        if !first {
                            buf.push(b';');
                        }
                        first = false;
                        buf.extend_from_slice(self.names[name as usize].as_bytes());
                    }
                    buf.push(b' ');
                    buf.extend_from_slice(format_u64(&mut number, s.bytes).as_bytes());
                    buf.push(b'\n');
                    if buf.len() >= CHUNK {
                        // The writer hung up (a write failed): stop.
                        if full_tx.send(buf).is_err() {
                            return;
                        }
                        let Ok(next) = empty_rx.recv() else { return };
                        buf = next;
                    }
                }
                let _ = full_tx.send(buf);
            });
            // Until the filler is done (its sender dropped) or a write
            // fails: then both channels are dropped, which stops the
            // filler whether it is sending a full buffer or waiting for an
            // empty one.
            let mut written = Ok(());
            for mut buf in full_rx.iter() {
                if let Err(e) = out.write_all(&buf) {
                    written = Err(e);
                    break;
                }
                buf.clear();
                let _ = empty_tx.send(buf);
            }
            drop(empty_tx);
            drop(full_rx);
            written
        })
    }

    /// Writes every `stack bytes` line, in sorted order.
    fn write_lines(&self, out: &mut impl fmt::Write) -> fmt::Result {
        for s in &self.stacks {
            let mut first = true;
            for name in self.path(s) {
                if !first {
                    out.write_char(';')?;
                }
                first = false;
                out.write_str(&self.names[name as usize])?;
            }
            writeln!(out, " {}", s.bytes)?;
        }
        Ok(())
    }
}

impl fmt::Display for FoldedStacks {
    /// One `stack bytes` line per stack.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.write_lines(f)
    }
}

/// A buffer for [`format_u64`].
fn itoa_buffer() -> [u8; 20] {
    [0; 20]
}

/// `n` in decimal, written into `buf` without the formatter.
fn format_u64(buf: &mut [u8; 20], mut n: u64) -> &str {
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    // Only ASCII digits were written.
    std::str::from_utf8(&buf[i..]).unwrap_or("0")
}

/// Interns names made safe as frames.
#[derive(Default)]
struct Interner {
    names: Vec<String>,
    ids: HashMap<String, u32>,
}

impl Interner {
    /// The id of `name` made safe as a frame.
    fn intern(&mut self, name: &str) -> u32 {
        let name = frame_name(name);
        if let Some(&id) = self.ids.get(&name) {
            return id;
        }
        let id = self.names.len() as u32;
        self.names.push(name.clone());
        self.ids.insert(name, id);
        id
    }
}

/// A name as one frame of a folded stack: escaped by [`printable`] (the
/// escaping every writer shares: no control character, so no line break
/// splits the line and XML gets none of those it refuses, no bidi control,
/// no noncharacter), and no `;` (it separates frames, and Rust names have
/// it in array types, `[u8; 4]`: it is written as `,`).
fn frame_name(name: &str) -> String {
    printable(name).replace(';', ",")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_names_cannot_split_stacks_or_lines() {
        assert_eq!(frame_name("f<[u8; 4]>"), "f<[u8, 4]>");
        assert_eq!(frame_name("a\nb\rc"), "a\\u{a}b\\u{d}c");
        assert_eq!(
            frame_name("bad\u{1}name\u{1b}[31m"),
            "bad\\u{1}name\\u{1b}[31m"
        );
        assert_eq!(frame_name("task;fake\u{202e}"), "task,fake\\u{202e}");
    }

    /// Folded stacks of `paths` (owner first, then frames) and their
    /// bytes, as [`FoldedStacks::new`] makes them from a snapshot.
    fn folded(paths: &[(Vec<String>, u64)]) -> FoldedStacks {
        let mut interner = Interner::default();
        let mut frames = Vec::new();
        let mut stacks = Vec::new();
        for (path, bytes) in paths {
            let owner = interner.intern(&path[0]);
            let start = frames.len();
            frames.extend(path[1..].iter().map(|f| interner.intern(f)));
            stacks.push(Stack {
                owner,
                len: (frames.len() - start) as u32,
                start,
                bytes: *bytes,
            });
        }
        FoldedStacks::from_parts(interner, frames, stacks, true)
    }

    #[test]
    fn absurd_byte_counts_are_scaled_for_inferno_not_overflowed() {
        let paths: Vec<(Vec<String>, u64)> = ["a", "b", "c"]
            .iter()
            .map(|n| (vec![n.to_string()], u64::MAX))
            .collect();
        let stacks = folded(&paths);
        let svg = String::from_utf8(stacks.to_svg("t").unwrap()).unwrap();
        for name in ["a", "b", "c"] {
            assert!(svg.contains(&format!("<title>{name} (")), "{name}");
        }
    }

    #[test]
    fn the_svg_draws_at_most_its_limit_of_frames_and_cuts_long_names() {
        // 20 chains of 3,000 frames under one owner, chain i of
        // (i + 1) * 1,000 bytes: 60,000 frames, each wide enough. Past
        // MAX_DRAWN the threshold doubles: the 16 widest chains (48,000
        // frames) are drawn; the 4 narrowest fold into the owner's line.
        let depth: Vec<String> = (1..3_000).map(|j| format!("f{j}")).collect();
        let mut paths: Vec<(Vec<String>, u64)> = (0..20u64)
            .map(|i| {
                let mut path = vec!["owner".to_owned(), format!("c{i:02}")];
                path.extend(depth.iter().cloned());
                (path, (i + 1) * 1_000)
            })
            .collect();
        // A name over the SVG's length, cut there.
        paths.push((vec!["other".to_owned(), "x".repeat(5_000)], 100_000));
        let stacks = folded(&paths);
        let lines = stacks.svg_lines();
        assert_eq!(lines.len(), 18, "{:?}", &lines[..2]);
        assert_eq!(
            lines[0],
            "other;".to_owned() + &"x".repeat(MAX_DRAWN_NAME) + "… 100000"
        );
        assert_eq!(lines[1], "owner 10000");
        assert!(lines[2..]
            .iter()
            .all(|l| l.matches(';').count() == 3_000 && l.starts_with("owner;c")));
        assert_eq!(drawn_name("日本"), "日本");
        assert_eq!(drawn_name("tokio task 1999"), "tokio task\u{a0}1999");
        assert_eq!(drawn_name("tokio task x"), "tokio task x");
        assert_eq!(drawn_name(&"é".repeat(600)).chars().count(), 501);
    }

    #[test]
    fn folded_text_written_in_chunks_is_the_whole_text_and_a_failed_write_stops_it() {
        // About 15 MB of text: several of write_folded's 4 MiB chunks.
        let paths: Vec<(Vec<String>, u64)> = (0..3_000u64)
            .map(|i| (vec![format!("task {i}"), "f".repeat(5_000)], i + 1))
            .collect();
        let stacks = folded(&paths);
        let mut out = Vec::new();
        stacks.write_folded(&mut out).unwrap();
        assert_eq!(out, stacks.to_string().into_bytes());
        assert!(out.len() > 15_000_000, "{}", out.len());

        /// Takes `left` bytes, then fails.
        struct Full {
            left: usize,
        }
        impl std::io::Write for Full {
            fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
                if self.left == 0 {
                    return Err(std::io::Error::other("disk full"));
                }
                let n = buf.len().min(self.left);
                self.left -= n;
                Ok(n)
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        // Fails in the first chunk and in a later one; returns, no hang.
        for left in [10, 9 << 20] {
            let err = stacks.write_folded(&mut Full { left }).unwrap_err();
            assert_eq!(err.to_string(), "disk full");
        }
    }

    #[test]
    fn numbers_are_written_in_decimal() {
        let mut buf = itoa_buffer();
        for n in [0, 7, 10, 524_288, u64::MAX] {
            assert_eq!(format_u64(&mut buf, n), n.to_string());
        }
    }

    #[test]
    fn nothing_to_draw_is_an_error_not_an_empty_svg() {
        let empty = FoldedStacks {
            names: Vec::new(),
            frames: Vec::new(),
            stacks: Vec::new(),
            total: 0,
            sampled: false,
        };
        let err = empty.to_svg("t").unwrap_err();
        assert!(err.to_string().contains("nothing to draw"));
    }
}
