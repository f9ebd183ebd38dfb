//! `turbowish flamegraph`: live bytes by owner, then by call path, as
//! collapsed ("folded") stacks or an inferno SVG.

use std::collections::HashMap;
use std::fmt;

use crate::labels::Names;
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
/// The stacks are kept as a tree of interned frame names, so a snapshot of
/// millions of sites costs memory in its distinct frames, not in one
/// string per stack, and the SVG is drawn from the frames wide enough to
/// be seen.
///
/// ```
/// # let snap: turbowish_snapshot::Snapshot = serde_json::from_str(include_str!("../../turbowish-snapshot/tests/fixtures/service.json")).unwrap();
/// let folded = turbowish_report::flame::FoldedStacks::new(&snap);
/// assert!(folded.sampled);
/// assert!(folded.to_string().lines().all(|l| l.rsplit_once(' ').is_some()));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FoldedStacks {
    /// Frame names (made safe by `frame_name`), each once.
    names: Vec<String>,
    /// The tree; `nodes[0]` is the root, above the owners.
    nodes: Vec<Node>,
    /// Whether the stacks come from sampled sites (else: owner names only).
    pub sampled: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Node {
    /// Index into `names` (unused for the root).
    name: u32,
    /// Bytes of stacks that end here.
    bytes: u64,
    /// Bytes of this node and everything under it.
    total: u64,
    children: Vec<u32>,
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

/// `name` cut to [`MAX_DRAWN_NAME`] bytes (at a character boundary).
fn drawn_name(name: &str) -> std::borrow::Cow<'_, str> {
    if name.len() <= MAX_DRAWN_NAME {
        return name.into();
    }
    let mut cut = MAX_DRAWN_NAME;
    while !name.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}…", &name[..cut]).into()
}

/// The least share of the total a frame needs to be drawn: inferno leaves
/// out frames narrower than 0.1 px, and the SVG is 1,200 px wide.
const DRAWN_SHARE: u64 = 12_000;

impl FoldedStacks {
    /// Folds the snapshot's owner-site estimates (or, without them, the
    /// owners' live bytes).
    pub fn new(snap: &Snapshot) -> FoldedStacks {
        let names = Names::new(snap);
        let mut tree = Builder::new();
        let sampled = !snap.owner_sites.is_empty();
        if sampled {
            // Each location's frames, and each site's path, made once:
            // many owners share a site, and many sites a location.
            let mut location_frames: HashMap<u32, Vec<u32>> = HashMap::new();
            let mut site_paths: HashMap<u32, Vec<u32>> = HashMap::new();
            let mut owners: HashMap<Owner, u32> = HashMap::new();
            let mut path = Vec::new();
            for os in &snap.owner_sites {
                if os.live_bytes == 0 {
                    continue;
                }
                let owner = *owners
                    .entry(os.owner)
                    .or_insert_with(|| tree.intern(&names.owner(os.owner)));
                let site_path = site_paths.entry(os.site).or_insert_with(|| {
                    let mut frames = Vec::new();
                    if let Some(site) = names.site(os.site) {
                        // Sites store the innermost frame first; flame
                        // graphs grow from the outermost.
                        for &location in site.stack.iter().rev() {
                            let of_location =
                                location_frames.entry(location).or_insert_with(|| {
                                    let mut lines: Vec<u32> = names
                                        .frames(&[location])
                                        .iter()
                                        .map(|f| tree.intern(&f.function_name()))
                                        .collect();
                                    lines.reverse();
                                    lines
                                });
                            frames.extend_from_slice(of_location);
                        }
                    }
                    frames
                });
                path.clear();
                path.push(owner);
                path.extend_from_slice(site_path);
                tree.add(&path, os.live_bytes);
            }
        } else {
            for (name, bytes) in snap
                .tasks
                .iter()
                .map(|t| (&t.name, t.memory.live_bytes))
                .chain(snap.buckets.iter().map(|b| (&b.name, b.memory.live_bytes)))
            {
                if bytes > 0 {
                    let owner = tree.intern(name);
                    tree.add(&[owner], bytes);
                }
            }
        }
        let mut stacks = FoldedStacks {
            names: tree.names,
            nodes: tree.nodes,
            sampled,
        };
        stacks.sort_children();
        stacks
    }

    /// Total bytes over all stacks.
    pub fn total(&self) -> u64 {
        self.nodes[0].total
    }

    /// Whether there is no stack (no live bytes).
    pub fn is_empty(&self) -> bool {
        self.nodes[0].total == 0
    }

    /// Every `stack bytes` line, stacks in sorted order (frames compared
    /// one by one), as `Display` writes them.
    pub fn lines(&self) -> Vec<String> {
        let mut lines = Vec::new();
        self.walk(0, |stack, bytes| lines.push(format!("{stack} {bytes}")));
        lines
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

    /// The folded lines inferno draws the SVG from.
    fn svg_lines(&self) -> Vec<String> {
        // Frames too narrow to be drawn are folded into their parent: the
        // widths of those drawn stay exact, and inferno gets thousands of
        // lines, not millions.
        let mut least = self.total() / DRAWN_SHARE;
        // At most MAX_DRAWN frames besides the owners: a node's total is
        // at least each child's, so the frames drawn at a threshold are
        // exactly those whose total reaches it.
        let wide = |n: &&Node| n.total >= least;
        if self.nodes[1..].iter().filter(wide).count() > MAX_DRAWN {
            let mut totals: Vec<u64> = self.nodes[1..]
                .iter()
                .filter(wide)
                .map(|n| n.total)
                .collect();
            let (_, &mut nth, _) = totals.select_nth_unstable_by(MAX_DRAWN, |a, b| b.cmp(a));
            least = least.max(nth.saturating_add(1));
        }
        let long_names = self.names.iter().any(|n| n.len() > MAX_DRAWN_NAME);
        let mut stacks = Vec::new();
        self.walk(least, |stack, bytes| {
            let stack = if long_names {
                stack
                    .split(';')
                    .map(drawn_name)
                    .collect::<Vec<_>>()
                    .join(";")
            } else {
                stack.to_owned()
            };
            stacks.push((stack, bytes));
        });
        // inferno adds the counts up in a `usize` (and panics, or wraps,
        // past it): figures a snapshot made absurd (sums saturated at
        // `u64::MAX`) are scaled down until their sum fits, which keeps
        // the picture's proportions.
        let sum: u128 = stacks.iter().map(|(_, bytes)| u128::from(*bytes)).sum();
        let mut shift = 0;
        while sum >> shift > MAX_INFERNO_SUM {
            shift += 1;
        }
        stacks
            .into_iter()
            .map(|(stack, bytes)| format!("{stack} {}", bytes >> shift))
            .collect()
    }

    /// Calls `line` with each stack and its bytes, in order; a subtree of
    /// less than `least` bytes is counted in the stack above it.
    fn walk(&self, least: u64, mut line: impl FnMut(&str, u64)) {
        let mut stack = String::new();
        // (node, length of `stack` before this node's name)
        let mut todo: Vec<(u32, usize)> = self.nodes[0]
            .children
            .iter()
            .rev()
            .map(|&c| (c, 0))
            .collect();
        while let Some((id, cut)) = todo.pop() {
            let node = &self.nodes[id as usize];
            stack.truncate(cut);
            if cut > 0 {
                stack.push(';');
            }
            stack.push_str(&self.names[node.name as usize]);
            let mut here = node.bytes;
            let below = stack.len();
            for &child in node.children.iter().rev() {
                let c = &self.nodes[child as usize];
                if c.total < least {
                    here = here.saturating_add(c.total);
                } else {
                    todo.push((child, below));
                }
            }
            if here > 0 {
                line(&stack, here);
            }
        }
    }

    /// Orders every node's children by name, so stacks come out sorted.
    fn sort_children(&mut self) {
        let names = &self.names;
        let nodes = &mut self.nodes;
        let keys: Vec<u32> = nodes.iter().map(|n| n.name).collect();
        for node in nodes.iter_mut() {
            node.children.sort_by(|&a, &b| {
                names[keys[a as usize] as usize].cmp(&names[keys[b as usize] as usize])
            });
        }
    }
}

impl fmt::Display for FoldedStacks {
    /// One `stack bytes` line per stack.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut result = Ok(());
        self.walk(0, |stack, bytes| {
            if result.is_ok() {
                result = writeln!(f, "{stack} {bytes}");
            }
        });
        result
    }
}

/// Builds the tree: interns names and finds each child by (parent, name).
struct Builder {
    names: Vec<String>,
    ids: HashMap<String, u32>,
    nodes: Vec<Node>,
    children: HashMap<(u32, u32), u32, BuildFast>,
}

impl Builder {
    fn new() -> Builder {
        Builder {
            names: Vec::new(),
            ids: HashMap::new(),
            nodes: vec![Node {
                name: 0,
                bytes: 0,
                total: 0,
                children: Vec::new(),
            }],
            children: HashMap::default(),
        }
    }

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

    /// Adds `bytes` to the stack `path` (name ids, outermost first).
    fn add(&mut self, path: &[u32], bytes: u64) {
        let mut at = 0u32;
        self.nodes[0].total = self.nodes[0].total.saturating_add(bytes);
        for &name in path {
            let next = match self.children.get(&(at, name)) {
                Some(&child) => child,
                None => {
                    let child = self.nodes.len() as u32;
                    self.nodes.push(Node {
                        name,
                        bytes: 0,
                        total: 0,
                        children: Vec::new(),
                    });
                    self.nodes[at as usize].children.push(child);
                    self.children.insert((at, name), child);
                    child
                }
            };
            at = next;
            let node = &mut self.nodes[at as usize];
            node.total = node.total.saturating_add(bytes);
        }
        let node = &mut self.nodes[at as usize];
        node.bytes = node.bytes.saturating_add(bytes);
    }
}

/// A fast hasher for pairs of small integers (the tree's child index is
/// looked up once per frame of every stack; SipHash's resistance to
/// chosen keys buys nothing for ids we assign).
#[derive(Default, Clone, Copy)]
struct BuildFast;

impl std::hash::BuildHasher for BuildFast {
    type Hasher = Fast;
    fn build_hasher(&self) -> Fast {
        Fast(0)
    }
}

struct Fast(u64);

impl std::hash::Hasher for Fast {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64(u64::from(b));
        }
    }
    fn write_u32(&mut self, n: u32) {
        self.write_u64(u64::from(n));
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0.rotate_left(5) ^ n).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
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

    #[test]
    fn absurd_byte_counts_are_scaled_for_inferno_not_overflowed() {
        let mut tree = Builder::new();
        for name in ["a", "b", "c"] {
            let id = tree.intern(name);
            tree.add(&[id], u64::MAX);
        }
        let stacks = FoldedStacks {
            names: tree.names,
            nodes: tree.nodes,
            sampled: false,
        };
        let svg = String::from_utf8(stacks.to_svg("t").unwrap()).unwrap();
        for name in ["a", "b", "c"] {
            assert!(svg.contains(&format!("<title>{name} (")), "{name}");
        }
    }

    #[test]
    fn the_svg_draws_at_most_its_limit_of_frames_and_cuts_long_names() {
        // 20 chains of 3,000 frames under one owner, chain i of
        // (i + 1) * 1,000 bytes: 60,000 frames, each wide enough. The
        // 16 widest chains (48,000 frames) are drawn; the 4 narrowest
        // fold into the owner's line.
        let mut tree = Builder::new();
        let owner = tree.intern("owner");
        let depth: Vec<u32> = (1..3_000).map(|j| tree.intern(&format!("f{j}"))).collect();
        for i in 0..20u64 {
            let mut path = vec![owner, tree.intern(&format!("c{i}"))];
            path.extend_from_slice(&depth);
            tree.add(&path, (i + 1) * 1_000);
        }
        // A name over the SVG's length, cut there.
        let other = tree.intern("other");
        let long = tree.intern(&"x".repeat(5_000));
        tree.add(&[other, long], 100_000);
        let mut stacks = FoldedStacks {
            names: tree.names,
            nodes: tree.nodes,
            sampled: true,
        };
        stacks.sort_children();
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
        assert_eq!(drawn_name(&"é".repeat(600)).chars().count(), 501);
    }

    #[test]
    fn nothing_to_draw_is_an_error_not_an_empty_svg() {
        let empty = FoldedStacks {
            names: Vec::new(),
            nodes: vec![Node {
                name: 0,
                bytes: 0,
                total: 0,
                children: Vec::new(),
            }],
            sampled: false,
        };
        let err = empty.to_svg("t").unwrap_err();
        assert!(err.to_string().contains("nothing to draw"));
    }
}
