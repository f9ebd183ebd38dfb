//! `turbowish flamegraph`: live bytes by owner, then by call path, as
//! collapsed ("folded") stacks or an inferno SVG.

use std::collections::{BTreeMap, HashMap};
use std::fmt;

use crate::labels::Names;
use turbowish_snapshot::schema::{Owner, Snapshot};

/// Collapsed stacks of live bytes: each stack starts at its owner's name
/// (task or bucket), then the frames outermost to innermost; the count is
/// the estimated live bytes allocated there.
///
/// Without sampled sites (`sample_interval` 0, or no live sample), each
/// stack is only an owner name with its exact live bytes, so the picture
/// still shows memory by task.
///
/// ```
/// # let snap: turbowish_snapshot::Snapshot = serde_json::from_str(include_str!("../../turbowish-snapshot/tests/fixtures/service.json")).unwrap();
/// let folded = turbowish_report::flame::FoldedStacks::new(&snap);
/// assert!(folded.sampled);
/// assert!(folded.to_string().lines().all(|l| l.rsplit_once(' ').is_some()));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FoldedStacks {
    /// `stack -> bytes`, frames separated by `;`, sorted (as inferno wants).
    pub stacks: BTreeMap<String, u64>,
    /// Whether the stacks come from sampled sites (else: owner names only).
    pub sampled: bool,
}

impl FoldedStacks {
    /// Folds the snapshot's owner-site estimates (or, without them, the
    /// owners' live bytes).
    pub fn new(snap: &Snapshot) -> FoldedStacks {
        let names = Names::new(snap);
        let mut stacks: BTreeMap<String, u64> = BTreeMap::new();
        let mut add = |stack: String, bytes: u64| {
            if bytes > 0 {
                let count = stacks.entry(stack).or_default();
                *count = count.saturating_add(bytes);
            }
        };
        let sampled = !snap.owner_sites.is_empty();
        if sampled {
            // Many owners share a site: fold each site's frames once.
            let mut suffixes: HashMap<u32, String> = HashMap::new();
            let mut owners: HashMap<Owner, String> = HashMap::new();
            for os in &snap.owner_sites {
                let suffix = suffixes.entry(os.site).or_insert_with(|| {
                    let frames = names
                        .site(os.site)
                        .map(|s| names.frames(&s.stack))
                        .unwrap_or_default();
                    // Sites store the innermost frame first; flame graphs
                    // grow from the outermost.
                    let mut suffix = String::new();
                    for frame in frames.iter().rev() {
                        suffix.push(';');
                        suffix.push_str(&frame_name(&frame.function_name()));
                    }
                    suffix
                });
                let owner = owners
                    .entry(os.owner)
                    .or_insert_with(|| frame_name(&names.owner(os.owner)));
                add(format!("{owner}{suffix}"), os.live_bytes);
            }
        } else {
            for task in &snap.tasks {
                add(frame_name(&task.name), task.memory.live_bytes);
            }
            for bucket in &snap.buckets {
                add(frame_name(&bucket.name), bucket.memory.live_bytes);
            }
        }
        FoldedStacks { stacks, sampled }
    }

    /// Total bytes over all stacks.
    pub fn total(&self) -> u64 {
        self.stacks
            .values()
            .fold(0u64, |sum, &bytes| sum.saturating_add(bytes))
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
        if self.stacks.is_empty() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                "nothing to draw: no live bytes in the snapshot",
            ));
        }
        let lines: Vec<String> = self
            .stacks
            .iter()
            .map(|(stack, bytes)| format!("{stack} {bytes}"))
            .collect();
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
}

impl fmt::Display for FoldedStacks {
    /// One `stack bytes` line per stack.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (stack, bytes) in &self.stacks {
            writeln!(f, "{stack} {bytes}")?;
        }
        Ok(())
    }
}

/// A name as one frame of a folded stack: no `;` (it separates frames, and
/// Rust names have it in array types, `[u8; 4]`), no control character (a
/// line break would split the line, and XML 1.0 allows none of the others,
/// even escaped, so the SVG would not parse), and neither of the two
/// noncharacters XML also refuses.
fn frame_name(name: &str) -> String {
    name.chars()
        .map(|c| match c {
            ';' => ',',
            c if c.is_control() || c == '\u{fffe}' || c == '\u{ffff}' => ' ',
            c => c,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_names_cannot_split_stacks_or_lines() {
        assert_eq!(frame_name("f<[u8; 4]>"), "f<[u8, 4]>");
        assert_eq!(frame_name("a\nb\rc"), "a b c");
        assert_eq!(frame_name("bad\u{1}name\u{1b}[31m"), "bad name [31m");
    }

    #[test]
    fn nothing_to_draw_is_an_error_not_an_empty_svg() {
        let empty = FoldedStacks {
            stacks: BTreeMap::new(),
            sampled: false,
        };
        let err = empty.to_svg("t").unwrap_err();
        assert!(err.to_string().contains("nothing to draw"));
    }
}
