//! `turbowish html`: one self-contained page of pictures of a snapshot.
//!
//! The page makes no request: its CSS, script and pictures are inline, and
//! its Content-Security-Policy (`default-src 'none'`) forbids anything
//! else, so it opens the same from a file on an air-gapped laptop. The
//! layouts (treemap, graph) are computed here, in Rust; the page's script
//! only sorts tables, switches views and zooms.
//!
//! Sections: a deadlock banner when there is a cycle; the per-task table
//! (as `turbowish report`, sortable by every column); the ownership
//! treemap (*allocated-by*, and *retained-by* when the snapshot has a heap
//! walk); the task ↔ resource graph; the flame graph (inferno), rooted at
//! tasks; and, given a base snapshot, the growth per task and per site.

mod escape;
mod graph;
mod treemap;

use std::collections::HashMap;
use std::fmt::{self, Write as _};

use turbowish_snapshot::format::{human_bytes, signed_bytes};
use turbowish_snapshot::schema::{Owner, Snapshot};
use turbowish_snapshot::table::{MemoryReport, MemoryRow, SortKey, LARGE_FUTURE_BYTES};

use crate::chains::chains_text;
use crate::diff::{diff, DiffError, Growth, SnapshotDiff};
use crate::flame::FoldedStacks;
use crate::labels::{Frame, Names};
use escape::{push_markup_attribute, push_text, text};
use treemap::Item;

/// The most rows the per-task table shows; the rest are summed in one row
/// (as `report --top` does), which keeps a page of 100,000 tasks small.
pub const MAX_TABLE_ROWS: usize = 1000;

/// The most rows each diff table shows.
const MAX_DIFF_ROWS: usize = 200;

/// The embedded flame graph's width in pixels, the treemap's.
const FLAME_WIDTH: usize = 1200;

/// What to put on the page besides the snapshot itself.
///
/// ```
/// # let old: turbowish_snapshot::Snapshot = serde_json::from_str(include_str!("../../../turbowish-snapshot/tests/fixtures/service.json")).unwrap();
/// # let new: turbowish_snapshot::Snapshot = serde_json::from_str(include_str!("../../../turbowish-snapshot/tests/fixtures/service-later.json")).unwrap();
/// use turbowish_report::html::{page, PageOptions};
/// let html = page(&new, &PageOptions { base: Some(&old), ..PageOptions::default() }).unwrap();
/// assert!(html.starts_with("<!DOCTYPE html>"));
/// assert!(html.contains("id=\"diff\""));
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct PageOptions<'a> {
    /// An earlier snapshot of the same program: adds the growth view.
    pub base: Option<&'a Snapshot>,
    /// Compare with `base` even when it is of another executable.
    pub force: bool,
}

/// Why a page could not be made.
#[derive(Debug)]
#[non_exhaustive]
pub enum PageError {
    /// The base snapshot cannot be compared with this one.
    Diff(DiffError),
}

impl fmt::Display for PageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PageError::Diff(e) => write!(f, "--base: {e}"),
        }
    }
}

impl std::error::Error for PageError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            PageError::Diff(e) => Some(e),
        }
    }
}

/// The page for `snap`, as one HTML document.
///
/// ```
/// # let snap: turbowish_snapshot::Snapshot = serde_json::from_str(include_str!("../../../turbowish-snapshot/tests/fixtures/service.json")).unwrap();
/// let html = turbowish_report::html::page(&snap, &Default::default()).unwrap();
/// assert!(html.contains("default-src 'none'"));
/// assert!(html.contains("class=\"banner deadlock\""));
/// ```
pub fn page(snap: &Snapshot, options: &PageOptions<'_>) -> Result<String, PageError> {
    let growth = match options.base {
        Some(base) => Some(diff(base, snap, options.force).map_err(PageError::Diff)?),
        None => None,
    };
    let names = Names::new(snap);
    let mut out = String::with_capacity(256 * 1024);
    let title = format!(
        "TurboWish: {} (pid {})",
        snap.process.executable, snap.process.pid
    );
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n<meta http-equiv=\"Content-Security-Policy\" content=\"{CSP}\">\n<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<meta name=\"generator\" content=\"turbowish {}\">\n<title>{}</title>\n<style>{CSS}</style>\n</head>\n<body data-ready=\"0\">\n",
        env!("CARGO_PKG_VERSION"),
        text(&title)
    );
    // The flame graph, the page's costliest section on a large snapshot
    // (about a third of its time at two million sites), is made on a
    // thread of its own meanwhile.
    let flame = std::thread::scope(|scope| {
        let flame = scope.spawn(|| {
            let mut flame = String::new();
            flame_section(&mut flame, snap);
            flame
        });
        header(&mut out, snap);
        banners(&mut out, snap);
        overview(&mut out, snap);
        treemaps(&mut out, snap, &names);
        graph_section(&mut out, snap);
        flame.join()
    });
    match flame {
        Ok(flame) => out.push_str(&flame),
        Err(panic) => std::panic::resume_unwind(panic),
    }
    if let Some(d) = &growth {
        diff_section(&mut out, d);
    }
    let _ = write!(
        out,
        "<footer>Written by <code>turbowish html</code> {} from format version {}. Names come from the program and are shown as text.</footer>\n<script>{JS}</script>\n</body></html>\n",
        env!("CARGO_PKG_VERSION"),
        snap.format_version
    );
    Ok(out)
}

/// Nothing but what the page carries: inline styles and scripts, and the
/// flame graph's frame from `srcdoc` (which inherits this policy).
const CSP: &str = "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:; frame-src 'self'; base-uri 'none'; form-action 'none'";
const CSS: &str = include_str!("page.css");
const JS: &str = include_str!("page.js");

fn header(out: &mut String, snap: &Snapshot) {
    out.push_str("<header><h1>TurboWish report</h1><p class=\"meta\"><span class=\"exe\">");
    push_text(out, &snap.process.executable);
    let _ = write!(
        out,
        "</span> · pid {} · taken {} UTC · {} live in {} blocks · ",
        snap.process.pid,
        utc(snap.taken_at_ms),
        human_bytes(snap.totals.live_bytes),
        snap.totals.live_blocks
    );
    match snap.sample_interval {
        0 => out.push_str("sampling off"),
        1 => out.push_str("every allocation sampled"),
        n => {
            let _ = write!(out, "sampled every {} on average", human_bytes(n));
        }
    }
    out.push_str(if snap.walk.is_some() {
        " · heap walk"
    } else {
        " · no heap walk"
    });
    out.push_str("</p>\n<nav><a href=\"#overview\">Tasks</a> <a href=\"#treemap\">Treemap</a> <a href=\"#graph\">Tasks and resources</a> <a href=\"#flame\">Flame graph</a>");
    out.push_str("</nav></header>\n");
}

/// One banner per deadlock, naming it, at the top of the page.
fn banners(out: &mut String, snap: &Snapshot) {
    for cycle in &snap.cycles {
        out.push_str("<div class=\"banner deadlock\" role=\"alert\"><strong>Deadlock.</strong> ");
        push_text(out, &cycle.text);
        out.push_str(" <a href=\"#graph\">See the graph.</a></div>\n");
    }
}

fn overview(out: &mut String, snap: &Snapshot) {
    let report = MemoryReport::new(snap, SortKey::Live, MAX_TABLE_ROWS);
    let walk = snap.walk.is_some();
    out.push_str("<section id=\"overview\"><h2>Tasks</h2>\n<p class=\"summary\">");
    push_text(out, &report.summary.to_string());
    out.push_str("</p>\n<p class=\"hint\">Click a column to sort by it (again to reverse); <code>#sort=blocks</code> (or <code>-asc</code>, <code>-desc</code>) in the address does the same. Live bytes are <em>allocated-by</em>: what each task allocated and is still live.");
    if walk {
        out.push_str(" Retained is what ending the task would free (found by the heap walk); shared is reachable from it and from other roots too.");
    }
    out.push_str("</p>\n<table id=\"tasks\" class=\"sortable\"><thead><tr>");
    let mut columns: Vec<(&str, &str, &str)> = vec![
        ("name", "Task", "text"),
        ("count", "Tasks", "num"),
        ("state", "State", "text"),
        ("live", "Live", "num"),
        ("blocks", "Blocks", "num"),
        ("total", "Allocated ever", "num"),
        ("peak", "Peak", "num"),
        ("future", "Future", "num"),
    ];
    if walk {
        columns.push(("retained", "Retained", "num"));
        columns.push(("shared", "Shared", "num"));
    }
    columns.push(("location", "Spawned at", "text"));
    for (key, label, kind) in &columns {
        let _ = write!(
            out,
            "<th data-key=\"{key}\" data-type=\"{kind}\" tabindex=\"0\">{label}</th>"
        );
    }
    out.push_str("</tr></thead>\n<tbody>\n");
    for row in &report.rows {
        table_row(out, row, walk);
    }
    out.push_str("</tbody>\n<tfoot>\n");
    if let Some(rest) = &report.rest {
        table_row(out, rest, walk);
    }
    let _ = write!(
        out,
        "<tr class=\"total\"><td>total</td><td></td><td></td><td data-v=\"{}\">{}</td><td>{}</td><td>{}</td><td>{}</td><td></td>",
        report.totals.live_bytes,
        human_bytes(report.totals.live_bytes),
        report.totals.live_blocks,
        human_bytes(report.totals.total_bytes),
        human_bytes(report.totals.peak_live_bytes),
    );
    if walk {
        out.push_str("<td></td><td></td>");
    }
    out.push_str("<td></td></tr>\n</tfoot></table></section>\n");
}

fn table_row(out: &mut String, row: &MemoryRow, walk: bool) {
    out.push_str("<tr");
    if row.bucket {
        out.push_str(" class=\"bucket\"");
    }
    out.push_str(" data-name=\"");
    push_text(out, &row.name);
    out.push_str("\"><td data-key=\"name\">");
    push_text(out, &row.name);
    let count = row.task_ids.len();
    let _ = write!(
        out,
        "</td><td data-key=\"count\" data-v=\"{count}\">{}</td>",
        if row.bucket {
            String::new()
        } else {
            count.to_string()
        }
    );
    let state = row
        .state
        .map(|s| s.name())
        .unwrap_or(if row.bucket { "" } else { "-" });
    let _ = write!(out, "<td data-key=\"state\">{state}</td>");
    for (key, v) in [
        ("live", row.memory.live_bytes),
        ("blocks", row.memory.live_blocks),
        ("total", row.memory.total_bytes),
        ("peak", row.memory.peak_live_bytes),
    ] {
        let shown = if key == "blocks" {
            v.to_string()
        } else {
            human_bytes(v)
        };
        let _ = write!(out, "<td data-key=\"{key}\" data-v=\"{v}\">{shown}</td>");
    }
    match row.future_size {
        Some(f) if f > LARGE_FUTURE_BYTES => {
            let _ = write!(
                out,
                "<td data-key=\"future\" data-v=\"{f}\" class=\"large\" title=\"a future over {} lives in the task's root cell as long as the task\">{} !</td>",
                human_bytes(LARGE_FUTURE_BYTES),
                human_bytes(f)
            );
        }
        Some(f) => {
            let _ = write!(
                out,
                "<td data-key=\"future\" data-v=\"{f}\">{}</td>",
                human_bytes(f)
            );
        }
        None => out.push_str("<td data-key=\"future\" data-v=\"0\"></td>"),
    }
    if walk {
        let (r, s) = row
            .walk
            .as_ref()
            .map(|w| (w.retained.bytes, w.shared.bytes))
            .unwrap_or_default();
        let _ = write!(
            out,
            "<td data-key=\"retained\" data-v=\"{r}\">{}</td><td data-key=\"shared\" data-v=\"{s}\">{}</td>",
            human_bytes(r),
            human_bytes(s)
        );
    }
    out.push_str("<td data-key=\"location\">");
    if let Some(l) = &row.location {
        push_text(out, l);
    }
    out.push_str("</td></tr>\n");
}

fn treemaps(out: &mut String, snap: &Snapshot, names: &Names<'_>) {
    out.push_str("<section id=\"treemap\"><h2>Ownership treemap</h2>\n");
    let retained = snap.walk.as_ref().map(|_| retained_items(snap, names));
    out.push_str("<p class=\"hint\">Area is bytes. Each task (tasks sharing a name together) or bucket, then the allocation sites of its memory; hover a tile for its name, bytes, blocks and path, click a task to zoom in.</p>\n<div class=\"modes\" role=\"tablist\">");
    out.push_str("<button type=\"button\" data-mode=\"allocated\" aria-pressed=\"true\">Allocated by</button>");
    if retained.is_some() {
        out.push_str("<button type=\"button\" data-mode=\"retained\" aria-pressed=\"false\">Retained by</button>");
    }
    out.push_str(" <button type=\"button\" class=\"zoom-out\" hidden>Back to all</button> <span class=\"crumb\"></span></div>\n");
    out.push_str("<div class=\"treemap-mode\" data-mode=\"allocated\">\n");
    let allocated = allocated_items(snap, names);
    if allocated.iter().any(|i| i.bytes > 0) {
        treemap::render(out, "allocated", "live bytes by allocating task", allocated);
    } else {
        out.push_str("<p>No live bytes.</p>\n");
    }
    out.push_str("</div>\n");
    if let Some(items) = retained {
        out.push_str("<div class=\"treemap-mode\" data-mode=\"retained\" hidden>\n<p class=\"hint\">Retained by: what each task's state (or a named root) owns alone, found by the heap walk, by allocation site; memory reachable from several roots is in none of them.</p>\n");
        if items.iter().any(|i| i.bytes > 0) {
            treemap::render(out, "retained", "retained bytes by owning task", items);
        } else {
            out.push_str("<p>The walk found nothing retained.</p>\n");
        }
        out.push_str("</div>\n");
    }
    out.push_str("</section>\n");
}

/// The most sites of one owner that get a label: well above the treemap's
/// tiles per owner, so which sites show does not change.
const LABELLED_SITES: usize = 64;

/// Live bytes and blocks per site id, for one owner.
type SiteSums = HashMap<u32, (u64, u64)>;

/// A tile with no children yet.
fn item(label: &str, path: String, bytes: u64, blocks: u64) -> Item {
    Item {
        merged: 0,
        label: label.to_owned(),
        path,
        bytes,
        blocks,
        children: Vec::new(),
    }
}

/// The index of the owner named `name`, pushed (empty) when new: tasks
/// sharing a name share a tile, as they share a row of the table.
fn group<'a>(
    owners: &mut Vec<Item>,
    sites: &mut Vec<SiteSums>,
    by_name: &mut HashMap<&'a str, usize>,
    name: &'a str,
    path: impl FnOnce() -> String,
) -> usize {
    *by_name.entry(name).or_insert_with(|| {
        owners.push(item(name, path(), 0, 0));
        sites.push(SiteSums::new());
        owners.len() - 1
    })
}

/// Adds bytes and blocks, saturating (a snapshot is untrusted input).
fn add_amount(sum: &mut (u64, u64), bytes: u64, blocks: u64) {
    sum.0 = sum.0.saturating_add(bytes);
    sum.1 = sum.1.saturating_add(blocks);
}

/// Owners (task names, buckets) → allocation sites, by live bytes.
fn allocated_items(snap: &Snapshot, names: &Names<'_>) -> Vec<Item> {
    let mut owners: Vec<Item> = Vec::new();
    let mut sites: Vec<SiteSums> = Vec::new();
    let mut by_name: HashMap<&str, usize> = HashMap::new();
    let mut of_owner: HashMap<Owner, usize> = HashMap::new();
    let mut counts: HashMap<usize, usize> = HashMap::new();
    for t in &snap.tasks {
        let path = || t.location.clone().unwrap_or_default();
        let i = group(&mut owners, &mut sites, &mut by_name, &t.name, path);
        let mut sum = (owners[i].bytes, owners[i].blocks);
        add_amount(&mut sum, t.memory.live_bytes, t.memory.live_blocks);
        (owners[i].bytes, owners[i].blocks) = sum;
        *counts.entry(i).or_default() += 1;
        of_owner.insert(Owner::Task(t.id), i);
    }
    for (&i, &n) in &counts {
        if n > 1 {
            owners[i].path = format!("{n} tasks · {}", owners[i].path);
        }
    }
    for b in &snap.buckets {
        of_owner.insert(b.owner, owners.len());
        owners.push(item(
            &b.name,
            String::new(),
            b.memory.live_bytes,
            b.memory.live_blocks,
        ));
        sites.push(SiteSums::new());
    }
    for os in &snap.owner_sites {
        if let Some(&i) = of_owner.get(&os.owner) {
            add_amount(
                sites[i].entry(os.site).or_default(),
                os.live_bytes,
                os.live_blocks,
            );
        }
    }
    for (owner, sites) in owners.iter_mut().zip(sites) {
        fill_children(owner, sites, names);
    }
    owners
}

/// Task names and named roots → retained allocation sites, and what no
/// root reaches by allocating owner.
fn retained_items(snap: &Snapshot, names: &Names<'_>) -> Vec<Item> {
    let Some(walk) = &snap.walk else {
        return Vec::new();
    };
    let mut owners: Vec<Item> = Vec::new();
    let mut sites: Vec<SiteSums> = Vec::new();
    let mut by_name: HashMap<&str, usize> = HashMap::new();
    for t in &walk.tasks {
        let i = group(&mut owners, &mut sites, &mut by_name, &t.name, String::new);
        let mut sum = (owners[i].bytes, owners[i].blocks);
        add_amount(&mut sum, t.retained.bytes, t.retained.blocks);
        (owners[i].bytes, owners[i].blocks) = sum;
        for s in &t.sites {
            add_amount(sites[i].entry(s.site).or_default(), s.bytes, s.blocks);
        }
    }
    for (owner, sites) in owners.iter_mut().zip(sites) {
        fill_children(owner, sites, names);
    }
    for r in &walk.roots {
        let path = "a named root (turbowish::trace::root)".to_owned();
        owners.push(item(
            &format!("root {}", r.name),
            path,
            r.retained.bytes,
            r.retained.blocks,
        ));
    }
    let path = "statics, data on thread stacks, leaks: by allocating owner".to_owned();
    let mut dark = item("reachable from no root", path, 0, 0);
    let mut sum = (0, 0);
    for u in &walk.unattributed {
        add_amount(&mut sum, u.amount.bytes, u.amount.blocks);
        let label = format!("allocated by {}", names.owner(u.owner));
        dark.children
            .push(item(&label, String::new(), u.amount.bytes, u.amount.blocks));
    }
    (dark.bytes, dark.blocks) = sum;
    owners.push(dark);
    owners
}

/// Gives `owner` one child per site, plus what the sites do not cover.
/// Site figures are estimates from samples: when they add up to more than
/// the owner's exact bytes, the owner's tile takes their sum, so that its
/// children fit it exactly.
fn fill_children(owner: &mut Item, sites: SiteSums, names: &Names<'_>) {
    if sites.is_empty() {
        return;
    }
    let mut sampled = (0u64, 0u64);
    let mut rows: Vec<(u32, (u64, u64))> = sites.into_iter().collect();
    // Only the biggest sites can get a tile of their own (the treemap
    // shows a few per owner): the others are merged before any label is
    // made, so a snapshot of millions of sites costs no string for each.
    if rows.len() > LABELLED_SITES {
        rows.select_nth_unstable_by(LABELLED_SITES - 1, |a, b| {
            b.1 .0.cmp(&a.1 .0).then(a.0.cmp(&b.0))
        });
        let mut rest = item("", String::new(), 0, 0);
        rest.merged = rows.len() - LABELLED_SITES;
        for (_, (bytes, blocks)) in rows.drain(LABELLED_SITES..) {
            add_amount(&mut sampled, bytes, blocks);
            let mut sum = (rest.bytes, rest.blocks);
            add_amount(&mut sum, bytes, blocks);
            (rest.bytes, rest.blocks) = sum;
        }
        owner.children.push(rest);
    }
    for (site, (bytes, blocks)) in rows {
        add_amount(&mut sampled, bytes, blocks);
        let (label, path) = site_label(names, site);
        owner.children.push(item(&label, path, bytes, blocks));
    }
    if sampled.0 < owner.bytes {
        owner.children.push(item(
            "(not in a sampled site)",
            "live bytes the sampled sites do not account for".to_owned(),
            owner.bytes - sampled.0,
            owner.blocks.saturating_sub(sampled.1),
        ));
    } else if sampled.0 > owner.bytes {
        owner.path = format!(
            "{}{}sampled estimate: exact live {}",
            owner.path,
            if owner.path.is_empty() { "" } else { " · " },
            human_bytes(owner.bytes)
        );
        owner.bytes = sampled.0;
    }
}

/// A site's tile label, its innermost frame outside the standard library
/// and the allocator's collections, and its path, outermost frame first.
fn site_label(names: &Names<'_>, site: u32) -> (String, String) {
    let Some(s) = names.site(site) else {
        return (format!("site {site} (missing)"), String::new());
    };
    let frames = names.frames(&s.stack);
    let label = frames
        .iter()
        .find(|f| !is_library_frame(f))
        .or(frames.first())
        .map(|f| f.function_name())
        .unwrap_or_else(|| format!("site {site}"));
    // The innermost frames say most; a tooltip has room for a few.
    let shown = frames.len().min(8);
    let mut path: Vec<String> = frames[..shown].iter().rev().map(|f| f.key()).collect();
    if frames.len() > shown {
        path.insert(0, "…".to_owned());
    }
    (label, path.join(" › "))
}

fn is_library_frame(f: &Frame<'_>) -> bool {
    const PREFIXES: [&str; 5] = ["alloc::", "core::", "std::", "hashbrown::", "__rust"];
    let name = f.function.trim_start_matches('<');
    f.address.is_none() && PREFIXES.iter().any(|p| name.starts_with(p))
}

fn graph_section(out: &mut String, snap: &Snapshot) {
    out.push_str("<section id=\"graph\"><h2>Tasks and resources</h2>\n");
    let mut svg = String::new();
    let drawn = graph::render(&mut svg, snap);
    if drawn.nodes == 0 {
        out.push_str("<p>No task holds or waits for a resource TurboWish tracks.</p>\n");
    } else {
        let _ = write!(
            out,
            "<p class=\"hint\">Tasks are rounded, resources square. <em>held by</em> runs from a resource to its holder, <em>waits for</em> from a task to the resource; <em>owns</em> edges come from the heap walk (a handle in the task's state). A deadlock's nodes and edges are red. {} nodes, {} edges.",
            drawn.nodes, drawn.edges
        );
        if drawn.left_out > 0 {
            let _ = write!(
                out,
                " Over {} nodes: {} not on a chain are left out.",
                graph::MAX_NODES,
                drawn.left_out
            );
        }
        out.push_str("</p>\n<div class=\"scroll\">");
        out.push_str(&svg);
        out.push_str("</div>\n");
    }
    if !snap.chains.is_empty() || !snap.cycles.is_empty() {
        out.push_str(
            "<details><summary>Chains as text (<code>turbowish chains</code>)</summary><pre>",
        );
        push_text_lines(out, &chains_text(snap));
        out.push_str("</pre></details>\n");
    }
    out.push_str("</section>\n");
}

/// [`push_text`] line by line, keeping the line breaks.
fn push_text_lines(out: &mut String, s: &str) {
    for (i, line) in s.split('\n').enumerate() {
        if i > 0 {
            out.push('\n');
        }
        push_text(out, line);
    }
}

fn flame_section(out: &mut String, snap: &Snapshot) {
    out.push_str("<section id=\"flame\"><h2>Flame graph</h2>\n");
    let stacks = FoldedStacks::new(snap);
    let title = format!("Live bytes by task: {}", snap.process.executable);
    match stacks.to_svg_with_width(&title, FLAME_WIDTH) {
        Ok(svg) => {
            if !stacks.sampled {
                out.push_str("<p class=\"hint\">The snapshot has no sampled allocation sites: each stack is a task or bucket with its live bytes.</p>\n");
            }
            out.push_str("<p class=\"hint\">Live bytes, rooted at tasks; click a frame to zoom, Ctrl-F inside it to search.</p>\n");
            // The frame runs inferno's own script, apart from this page's
            // (it looks for the first <svg> of its document).
            let _ = write!(
                out,
                "<iframe id=\"flame-frame\" title=\"flame graph\" sandbox=\"allow-scripts\" style=\"height:{}px\" srcdoc=\"",
                svg_height(&svg).unwrap_or(600) + 24
            );
            push_markup_attribute(
                out,
                "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><style>html,body{margin:0}</style></head><body>",
            );
            push_markup_attribute(out, &String::from_utf8_lossy(strip_xml_prolog(&svg)));
            push_markup_attribute(out, "</body></html>");
            out.push_str("\"></iframe>\n");
        }
        Err(_) => out.push_str("<p>No live bytes to draw.</p>\n"),
    }
    out.push_str("</section>\n");
}

/// The `height` inferno gave its `<svg>` element.
fn svg_height(svg: &[u8]) -> Option<u32> {
    let at = svg.windows(4).position(|w| w == b"<svg")?;
    let tag = &svg[at..];
    let end = tag.iter().position(|&b| b == b'>')?;
    let tag = std::str::from_utf8(&tag[..end]).ok()?;
    let value = tag.split(" height=\"").nth(1)?.split('"').next()?;
    value.parse().ok()
}

/// The SVG without its `<?xml …?>` declaration and DOCTYPE, which have no
/// place inside an HTML document.
fn strip_xml_prolog(svg: &[u8]) -> &[u8] {
    match svg.windows(4).position(|w| w == b"<svg") {
        Some(at) => &svg[at..],
        None => svg,
    }
}

fn diff_section(out: &mut String, d: &SnapshotDiff) {
    out.push_str(
        "<section id=\"diff\"><h2>Growth since the base snapshot</h2>\n<p class=\"summary\">",
    );
    let t = &d.total;
    let elapsed = d.new.taken_at_ms.abs_diff(d.old.taken_at_ms) as f64 / 1000.0;
    let _ = write!(
        out,
        "Live {} → {} ({}), blocks {} → {} ({:+}), over {elapsed:.1} s.",
        human_bytes(t.old_live_bytes),
        human_bytes(t.new_live_bytes),
        signed_bytes(t.live_bytes),
        t.old_live_blocks,
        t.new_live_blocks,
        t.live_blocks
    );
    if d.new_is_older {
        out.push_str(" <strong>This snapshot was taken before the base: growth runs backwards in time.</strong>");
    }
    if d.different_executables {
        out.push_str(" <strong>The snapshots are of different executables (--force).</strong>");
    } else if d.different_processes {
        out.push_str(" The snapshots are of different runs of the executable.");
    }
    out.push_str("</p>\n<h3>Per task</h3>\n<table id=\"diff-tasks\" class=\"sortable\"><thead><tr><th data-key=\"name\" data-type=\"text\">Task</th><th data-key=\"tasks\" data-type=\"num\">Tasks</th><th data-key=\"old\" data-type=\"num\">Base live</th><th data-key=\"new\" data-type=\"num\">Live</th><th data-key=\"growth\" data-type=\"num\">Growth</th><th data-key=\"blocks\" data-type=\"num\">Blocks</th></tr></thead><tbody>\n");
    for row in d.tasks.iter().take(MAX_DIFF_ROWS) {
        let g = &row.growth;
        out.push_str("<tr data-name=\"");
        push_text(out, &row.name);
        out.push_str("\"><td data-key=\"name\">");
        push_text(out, &row.name);
        let _ = write!(
            out,
            "</td><td data-key=\"tasks\" data-v=\"{}\">{} → {}</td>",
            row.new_tasks, row.old_tasks, row.new_tasks
        );
        growth_cells(out, g);
    }
    out.push_str("</tbody></table>\n");
    more_rows(out, d.tasks.len());
    out.push_str("<h3>Per allocation site</h3>\n");
    if d.sites.is_empty() {
        out.push_str(if d.sampled {
            "<p>No site changed.</p>\n"
        } else {
            "<p>One of the snapshots has no sampled sites.</p>\n"
        });
    } else {
        out.push_str("<table id=\"diff-sites\" class=\"sortable\"><thead><tr><th data-key=\"site\" data-type=\"text\">Site (innermost frame)</th><th data-key=\"old\" data-type=\"num\">Base live</th><th data-key=\"new\" data-type=\"num\">Live</th><th data-key=\"growth\" data-type=\"num\">Growth</th><th data-key=\"blocks\" data-type=\"num\">Blocks</th></tr></thead><tbody>\n");
        for row in d.sites.iter().take(MAX_DIFF_ROWS) {
            let g = &row.growth;
            let inner = row
                .frames
                .first()
                .map(String::as_str)
                .unwrap_or("(no frames)");
            out.push_str("<tr><td data-key=\"site\" title=\"");
            let path: Vec<&str> = row.frames.iter().rev().map(String::as_str).collect();
            push_text(out, &path.join(" › "));
            out.push_str("\">");
            push_text(out, inner);
            out.push_str("</td>");
            growth_cells(out, g);
        }
        out.push_str("</tbody></table>\n");
        more_rows(out, d.sites.len());
    }
    out.push_str("</section>\n");
}

/// The base, now, growth and blocks cells of a growth row, and its end.
fn growth_cells(out: &mut String, g: &Growth) {
    let _ = writeln!(
        out,
        "<td data-key=\"old\" data-v=\"{}\">{}</td><td data-key=\"new\" data-v=\"{}\">{}</td><td data-key=\"growth\" data-v=\"{}\" class=\"{}\">{}</td><td data-key=\"blocks\" data-v=\"{}\">{:+}</td></tr>",
        g.old_live_bytes,
        human_bytes(g.old_live_bytes),
        g.new_live_bytes,
        human_bytes(g.new_live_bytes),
        g.live_bytes,
        sign_class(g.live_bytes),
        signed_bytes(g.live_bytes),
        g.live_blocks,
        g.live_blocks
    );
}

fn more_rows(out: &mut String, len: usize) {
    if len > MAX_DIFF_ROWS {
        let _ = writeln!(
            out,
            "<p class=\"hint\">{} more rows: <code>turbowish diff --json</code> has them all.</p>",
            len - MAX_DIFF_ROWS
        );
    }
}

fn sign_class(v: i64) -> &'static str {
    match v.signum() {
        1 => "grew",
        -1 => "shrank",
        _ => "same",
    }
}

/// `2026-12-04 11:09:20` for ms since the Unix epoch (the proleptic
/// Gregorian calendar, as `date -u` prints it).
fn utc(ms: u64) -> String {
    let secs = ms / 1000;
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Days to a civil date (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_dates_match_date_u() {
        assert_eq!(utc(0), "1970-01-01 00:00:00");
        // date -u -d @1796382560
        assert_eq!(utc(1_796_382_560_000), "2026-12-04 11:09:20");
        assert_eq!(utc(951_782_400_000), "2000-02-29 00:00:00");
    }

    #[test]
    fn a_hostile_task_name_is_text_everywhere_on_the_page() {
        let json = include_str!("../../../turbowish-snapshot/tests/fixtures/service.json");
        let mut snap: Snapshot = serde_json::from_str(json).unwrap();
        let evil = "<script>alert(1)</script>";
        snap.tasks[0].name = evil.to_owned();
        for r in &mut snap.resources {
            for p in r.holders.iter_mut().chain(r.waiters.iter_mut()) {
                p.task_name = evil.to_owned();
            }
        }
        snap.process.executable = format!("\"/><img src=x>{evil}");
        let html = page(&snap, &PageOptions::default()).unwrap();
        // The page's own script is the only one.
        assert_eq!(html.matches("<script>").count(), 1, "{html}");
        assert!(!html.contains("<img"));
        assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    }
}
