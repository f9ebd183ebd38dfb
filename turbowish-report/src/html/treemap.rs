//! The ownership treemap: squarified tiles whose areas are bytes, laid out
//! here so that the page needs no layout code and the areas can be checked.
//!
//! A treemap has two levels, an owner (task name, bucket or root) and what
//! it holds (allocation sites). The root view draws both levels; each owner
//! with children also gets a view of its own, in which its children fill
//! the whole canvas: clicking an owner's tile shows that view (a zoom).
//! Every tile's area is exactly proportional to its bytes within its view,
//! so nothing is inset for borders or labels: borders are strokes and
//! labels are drawn on top.

use std::fmt::Write as _;

use turbowish_snapshot::format::{block_word, human_bytes};

use super::escape::{push_text, text, truncate};

/// Canvas width of every view, in SVG user units.
pub(crate) const WIDTH: f64 = 1200.0;
/// Canvas height of every view.
pub(crate) const HEIGHT: f64 = 640.0;

/// Items smaller than this share of their view are merged into one
/// `(N smaller)` tile: a tile under ~80 square units could show no label,
/// could not be hovered, and would only grow the page.
const MIN_SHARE: f64 = 1e-4;

/// The most tiles one view shows, the last of them `(N smaller)`: 10,000
/// tasks of similar size would otherwise be 10,000 unreadable slivers,
/// each with a view of its own, and a page of tens of megabytes.
const MAX_OWNERS: usize = 200;

/// The most sites shown inside one owner.
const MAX_CHILDREN: usize = 16;

/// A first-level tile smaller than this (in square units) shows no sites
/// inside it in the root view: they could not be told apart. Its zoom
/// view still shows them.
const MIN_NESTED_AREA: f64 = 1500.0;

/// One tile's content: an owner, or what an owner holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Item {
    /// What the tile says.
    pub(crate) label: String,
    /// Where it comes from, for the tooltip: a task's spawn location, a
    /// site's frames outermost first.
    pub(crate) path: String,
    /// Its area.
    pub(crate) bytes: u64,
    /// Blocks, for the tooltip.
    pub(crate) blocks: u64,
    /// What it holds (empty for a leaf).
    pub(crate) children: Vec<Item>,
    /// For a `(N smaller)` tile made before pruning (too many sites to
    /// label them all): N, the items it stands for; 0 for any other item.
    pub(crate) merged: usize,
}

/// An axis-aligned rectangle.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Rect {
    pub(crate) x: f64,
    pub(crate) y: f64,
    pub(crate) w: f64,
    pub(crate) h: f64,
}

impl Rect {
    fn area(&self) -> f64 {
        self.w * self.h
    }

    /// The same rectangle with x and y swapped.
    fn transposed(self) -> Rect {
        Rect {
            x: self.y,
            y: self.x,
            w: self.h,
            h: self.w,
        }
    }
}

/// Squarified layout (Bruls, Huizing and van Wijk, 2000) of `values`,
/// which must be sorted biggest first and positive, into `rect`: one
/// rectangle per value, in order, areas proportional to the values, tiling
/// `rect` exactly.
///
/// It fills rows along the shorter side, adding the next value to the row
/// while that does not make the row's worst aspect ratio worse.
pub(crate) fn squarify(values: &[f64], rect: Rect) -> Vec<Rect> {
    debug_assert!(values.windows(2).all(|w| w[0] >= w[1]));
    let total: f64 = values.iter().sum();
    let mut out = Vec::with_capacity(values.len());
    if values.is_empty() || total <= 0.0 || rect.area() <= 0.0 {
        return out;
    }
    let scale = rect.area() / total;
    let areas: Vec<f64> = values.iter().map(|v| v * scale).collect();
    let mut free = rect;
    let mut start = 0;
    while start < areas.len() {
        let side = free.w.min(free.h);
        let mut end = start + 1;
        let mut sum = areas[start];
        while end < areas.len() {
            let longer = sum + areas[end];
            if worst(&areas[start..=end], longer, side) > worst(&areas[start..end], sum, side) {
                break;
            }
            sum = longer;
            end += 1;
        }
        // A row runs down the left of a wide free rectangle, along the top
        // of a tall one: the second case is the first with the axes swapped.
        let wide = free.w >= free.h;
        let mut f = if wide { free } else { free.transposed() };
        // The last row takes whatever is left, so that rounding cannot
        // leave a sliver of canvas uncovered.
        let last = end == areas.len();
        let width = if last { f.w } else { sum / f.h };
        let mut y = f.y;
        for (i, a) in areas[start..end].iter().enumerate() {
            let h = if last && i + 1 == end - start {
                f.y + f.h - y
            } else {
                a / width
            };
            let r = Rect {
                x: f.x,
                y,
                w: width,
                h,
            };
            out.push(if wide { r } else { r.transposed() });
            y += h;
        }
        f.x += width;
        f.w -= width;
        free = if wide { f } else { f.transposed() };
        start = end;
    }
    out
}

/// The worst aspect ratio of a row of `areas` (summing to `sum`) laid
/// along a side of length `side`.
fn worst(areas: &[f64], sum: f64, side: f64) -> f64 {
    let (mut max, mut min) = (0.0f64, f64::INFINITY);
    for &a in areas {
        max = max.max(a);
        min = min.min(a);
    }
    let (s2, w2) = (sum * sum, side * side);
    (w2 * max / s2).max(s2 / (w2 * min))
}

/// Sorts items biggest first, drops empty ones, and merges the ones below
/// [`MIN_SHARE`] of `view_bytes`, and any beyond the first `max`, into one
/// `(N smaller)` item.
/// An item already merged (`merged` > 0) goes into the `(N smaller)` one
/// and counts as the items it stands for.
pub(crate) fn prune(items: &mut Vec<Item>, view_bytes: u64, max: usize) {
    items.retain(|i| i.bytes > 0);
    let premerged: Vec<Item> = if items.iter().any(|i| i.merged > 0) {
        let (merged, rest): (Vec<Item>, Vec<Item>) = std::mem::take(items)
            .into_iter()
            .partition(|i| i.merged > 0);
        *items = rest;
        merged
    } else {
        Vec::new()
    };
    items.sort_by(|a, b| b.bytes.cmp(&a.bytes).then_with(|| a.label.cmp(&b.label)));
    let floor = (view_bytes as f64 * MIN_SHARE) as u64;
    let mut keep = items.iter().take_while(|i| i.bytes >= floor).count();
    let count = items.len() + premerged.len();
    if keep >= max && count > max {
        keep = max - 1;
    }
    if count - keep > 1 || !premerged.is_empty() {
        let mut small = items.split_off(keep);
        small.extend(premerged);
        let n: usize = small.iter().map(|i| i.merged.max(1)).sum();
        let mut merged = Item {
            label: format!("({n} smaller)"),
            path: format!(
                "{n} items, each under {:.2} % of this view",
                MIN_SHARE * 100.0
            ),
            bytes: 0,
            blocks: 0,
            children: Vec::new(),
            merged: 0,
        };
        for i in small {
            merged.bytes = merged.bytes.saturating_add(i.bytes);
            merged.blocks = merged.blocks.saturating_add(i.blocks);
        }
        let at = items
            .iter()
            .position(|i| i.bytes < merged.bytes)
            .unwrap_or(items.len());
        items.insert(at, merged);
    }
}

/// Writes one treemap (the root view and a view per owner with children)
/// as SVG elements. `mode` names it (`allocated`, `retained`); views are
/// `<svg>` elements with ids `{mode}-view-{n}`, the root view first and
/// shown, the others hidden until their owner is clicked.
///
/// Every tile is a `<rect class="tile">` with `data-bytes`, `data-blocks`
/// and, below the first level, `data-parent` (the `id` of the tile it is
/// inside), so a test can check every area against its bytes.
pub(crate) fn render(out: &mut String, mode: &str, title: &str, mut owners: Vec<Item>) {
    let total: u64 = owners.iter().map(|o| o.bytes).fold(0, u64::saturating_add);
    prune(&mut owners, total, MAX_OWNERS);
    for owner in &mut owners {
        let bytes = owner.bytes;
        prune(&mut owner.children, bytes, MAX_CHILDREN);
    }
    let canvas = Rect {
        x: 0.0,
        y: 0.0,
        w: WIDTH,
        h: HEIGHT,
    };
    let values: Vec<f64> = owners.iter().map(|o| o.bytes as f64).collect();
    let rects = squarify(&values, canvas);

    let root = format!("{mode}-view-0");
    view_open(out, &root, mode, title, total, None);
    let mut zooms = Vec::new();
    for (i, (owner, rect)) in owners.iter().zip(&rects).enumerate() {
        let id = format!("{mode}-t{i}");
        let zoom = (owner.children.len() > 1).then(|| {
            zooms.push(i);
            format!("{mode}-view-{}", i + 1)
        });
        let hue = hue(&owner.label);
        // The owner's tile underneath, its sites over it, then its outline
        // and label on top (neither catches the pointer).
        out.push_str("<g class=\"tile-group d1\">");
        let fill = format!("hsl({hue},45%,80%)");
        tile_rect(out, &id, None, owner, rect, &fill, 1, zoom.as_deref(), "");
        let child_values: Vec<f64> = if rect.area() >= MIN_NESTED_AREA {
            owner.children.iter().map(|c| c.bytes as f64).collect()
        } else {
            Vec::new()
        };
        let child_rects = squarify(&child_values, *rect);
        for (j, (child, r)) in owner.children.iter().zip(&child_rects).enumerate() {
            out.push_str("<g class=\"tile-group d2\">");
            let fill = leaf_fill(hue, &child.label);
            tile_rect(
                out,
                &format!("{id}-{j}"),
                Some(&id),
                child,
                r,
                &fill,
                2,
                None,
                &owner.label,
            );
            // Below the owner's label when it starts at the owner's top.
            let skip = if (r.y - rect.y).abs() < 0.5 {
                13.0
            } else {
                0.0
            };
            tile_label(out, child, r, false, skip);
            out.push_str("</g>");
        }
        let _ = write!(
            out,
            "<rect class=\"outline\" x=\"{:.3}\" y=\"{:.3}\" width=\"{:.3}\" height=\"{:.3}\"/>",
            rect.x, rect.y, rect.w, rect.h
        );
        tile_label(out, owner, rect, true, 0.0);
        out.push_str("</g>\n");
    }
    out.push_str("</svg>\n");

    for i in zooms {
        let owner = &owners[i];
        let view = format!("{mode}-view-{}", i + 1);
        view_open(out, &view, mode, &owner.label, owner.bytes, Some(&root));
        let values: Vec<f64> = owner.children.iter().map(|c| c.bytes as f64).collect();
        let hue = hue(&owner.label);
        for (j, (child, r)) in owner
            .children
            .iter()
            .zip(squarify(&values, canvas))
            .enumerate()
        {
            out.push_str("<g class=\"tile-group d1\">");
            let fill = leaf_fill(hue, &child.label);
            tile_rect(
                out,
                &format!("{view}-t{j}"),
                None,
                child,
                &r,
                &fill,
                1,
                None,
                &owner.label,
            );
            tile_label(out, child, &r, false, 0.0);
            out.push_str("</g>\n");
        }
        out.push_str("</svg>\n");
    }
}

fn view_open(out: &mut String, id: &str, mode: &str, title: &str, total: u64, back: Option<&str>) {
    let _ = write!(
        out,
        "<svg class=\"treemap-view\" id=\"{id}\" data-mode=\"{mode}\" data-total=\"{total}\" viewBox=\"0 0 {WIDTH} {HEIGHT}\" width=\"{WIDTH}\" height=\"{HEIGHT}\" role=\"img\" aria-label=\"{}\"",
        text(title)
    );
    match back {
        Some(root) => {
            let _ = write!(out, " data-back=\"{root}\" hidden>");
        }
        None => out.push('>'),
    }
    out.push('\n');
}

#[allow(clippy::too_many_arguments)]
fn tile_rect(
    out: &mut String,
    id: &str,
    parent: Option<&str>,
    item: &Item,
    r: &Rect,
    fill: &str,
    depth: u8,
    zoom: Option<&str>,
    owner: &str,
) {
    let _ = write!(
        out,
        "<rect class=\"tile d{depth}\" id=\"{id}\" x=\"{:.3}\" y=\"{:.3}\" width=\"{:.3}\" height=\"{:.3}\" fill=\"{fill}\" data-bytes=\"{}\" data-blocks=\"{}\"",
        r.x, r.y, r.w, r.h, item.bytes, item.blocks
    );
    if let Some(p) = parent {
        let _ = write!(out, " data-parent=\"{p}\"");
    }
    if let Some(z) = zoom {
        let _ = write!(out, " data-zoom=\"{z}\"");
    }
    out.push_str(" data-name=\"");
    push_text(out, &item.label);
    out.push_str("\"><title>");
    if !owner.is_empty() {
        push_text(out, owner);
        out.push_str(" › ");
    }
    push_text(out, &item.label);
    let _ = write!(
        out,
        "\n{} in {} {}",
        human_bytes(item.bytes),
        item.blocks,
        block_word(item.blocks)
    );
    if !item.path.is_empty() {
        out.push('\n');
        push_text(out, &item.path);
    }
    if zoom.is_some() || parent.is_some() {
        out.push_str("\n(click to zoom in)");
    }
    out.push_str("</title></rect>");
}

/// The tile's name in its top-left corner and its size below, when they
/// fit (about 6.5 units a character at 11 units). An owner's label sits
/// above its sites' labels, which start a line lower.
fn tile_label(out: &mut String, item: &Item, r: &Rect, owner: bool, skip: f64) {
    let room = ((r.w - 6.0) / 6.5).floor();
    if r.h < 16.0 + skip || room < 4.0 {
        return;
    }
    let class = if owner { "tile-label d1" } else { "tile-label" };
    let _ = write!(
        out,
        "<text x=\"{:.1}\" y=\"{:.1}\" class=\"{class}\">{}</text>",
        r.x + 3.0,
        r.y + 13.0 + skip,
        text(&truncate(&item.label, room as usize))
    );
    if !owner && r.h >= 30.0 + skip {
        let _ = write!(
            out,
            "<text x=\"{:.1}\" y=\"{:.1}\" class=\"tile-size\">{}</text>",
            r.x + 3.0,
            r.y + 26.0 + skip,
            human_bytes(item.bytes)
        );
    }
}

/// A site's colour: its owner's hue, a lightness of its own.
fn leaf_fill(hue: u32, label: &str) -> String {
    format!("hsl({hue},50%,{}%)", 66 + hash(label) % 18)
}

/// A colour for a name that stays the same from page to page.
fn hue(name: &str) -> u32 {
    hash(name) % 360
}

/// FNV-1a: a stable, dependency-free hash for colours only.
fn hash(s: &str) -> u32 {
    let mut h: u32 = 0x811c_9dc5;
    for b in s.bytes() {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x0100_0193);
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leaf(label: &str, bytes: u64) -> Item {
        Item {
            merged: 0,
            label: label.to_owned(),
            path: String::new(),
            bytes,
            blocks: 1,
            children: Vec::new(),
        }
    }

    #[test]
    fn squarified_tiles_cover_the_rectangle_in_proportion() {
        let values = [6.0, 6.0, 4.0, 3.0, 2.0, 2.0, 1.0];
        let rect = Rect {
            x: 0.0,
            y: 0.0,
            w: 6.0,
            h: 4.0,
        };
        let rects = squarify(&values, rect);
        assert_eq!(rects.len(), values.len());
        // The paper's example: 6 and 6 first, side by side down the left.
        assert_eq!(
            rects[0],
            Rect {
                x: 0.0,
                y: 0.0,
                w: 3.0,
                h: 2.0
            }
        );
        assert_eq!(
            rects[1],
            Rect {
                x: 0.0,
                y: 2.0,
                w: 3.0,
                h: 2.0
            }
        );
        for (v, r) in values.iter().zip(&rects) {
            assert!((r.area() - v).abs() < 1e-9, "{v} got {r:?}");
            assert!(r.x >= 0.0 && r.y >= 0.0 && r.x + r.w <= 6.0 + 1e-9 && r.y + r.h <= 4.0 + 1e-9);
        }
        let covered: f64 = rects.iter().map(Rect::area).sum();
        assert!((covered - 24.0).abs() < 1e-9);
    }

    #[test]
    fn nothing_to_lay_out_gives_no_tiles() {
        let rect = Rect {
            x: 0.0,
            y: 0.0,
            w: 10.0,
            h: 10.0,
        };
        assert!(squarify(&[], rect).is_empty());
        assert_eq!(squarify(&[5.0], rect), vec![rect]);
    }

    #[test]
    fn tiny_items_merge_into_one_and_empty_ones_go() {
        let mut items = vec![leaf("big", 1_000_000), leaf("zero", 0)];
        items.extend((0..5).map(|i| leaf(&format!("crumb{i}"), 10)));
        prune(&mut items, 1_000_050, 100);
        let labels: Vec<&str> = items.iter().map(|i| i.label.as_str()).collect();
        assert_eq!(labels, ["big", "(5 smaller)"]);
        assert_eq!((items[1].bytes, items[1].blocks), (50, 5));
        // One small item alone stays itself.
        let mut items = vec![leaf("big", 1_000_000), leaf("crumb", 10)];
        prune(&mut items, 1_000_010, 100);
        assert_eq!(items[1].label, "crumb");
        // At most `max` tiles, the last the rest.
        let mut items: Vec<Item> = (0..10).map(|i| leaf(&format!("t{i}"), 100 + i)).collect();
        prune(&mut items, 1045, 4);
        let labels: Vec<&str> = items.iter().map(|i| i.label.as_str()).collect();
        assert_eq!(labels, ["(7 smaller)", "t9", "t8", "t7"]);
    }

    #[test]
    fn items_merged_before_pruning_count_as_what_they_stand_for() {
        // Sites beyond the labelled ones arrive as one item standing for
        // 1,000: it is merged with the small ones, never kept as a tile.
        let mut rest = leaf("", 600_000);
        rest.merged = 1_000;
        let mut items = vec![leaf("a", 500_000), rest, leaf("crumb", 10)];
        prune(&mut items, 1_100_010, 16);
        let labels: Vec<&str> = items.iter().map(|i| i.label.as_str()).collect();
        assert_eq!(labels, ["(1001 smaller)", "a"]);
        assert_eq!(items[0].bytes, 600_010);
    }

    #[test]
    fn names_are_escaped_in_tiles_and_tooltips() {
        let mut out = String::new();
        let mut owner = leaf("<script>alert(1)</script>", 100);
        owner.children = vec![leaf("<b>", 60), leaf("x\u{202e}", 40)];
        render(&mut out, "allocated", "t", vec![owner]);
        assert!(!out.contains("<script>"));
        assert!(!out.contains("<b>"));
        assert!(!out.contains('\u{202e}'));
        assert!(out.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
        // The root view and the owner's zoom view.
        assert_eq!(out.matches("<svg class=\"treemap-view\"").count(), 2);
    }
}
