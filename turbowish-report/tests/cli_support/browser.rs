//! Pages from `turbowish html`, loaded in a real headless Chromium: the DOM
//! after the page's script ran, what it logged to the console, and every
//! request the page made (from Chromium's network log), then the checks
//! every page must pass (`check_page`).
//!
//! Chromium is Debian's `chromium` package, which `.ci/run` installs. On a
//! machine without it these tests say so on stderr and check nothing
//! in a browser, unless `CI` or `TURBOWISH_REQUIRE_CHROMIUM` is set, when
//! a missing browser fails them.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use turbowish_snapshot::table::{MemoryReport, SortKey};
use turbowish_snapshot::Snapshot;

/// What a page did in the browser.
pub(crate) struct Loaded {
    /// The DOM after scripts ran (`--dump-dom`).
    pub(crate) dom: String,
    /// Console messages (errors, warnings, logs) the page produced.
    pub(crate) console: Vec<String>,
    /// URLs the page asked for, beyond the file itself.
    pub(crate) requests: Vec<String>,
}

/// The browser to use, or `None` (after saying so) when there is none and
/// none is required.
pub(crate) fn chromium() -> Option<PathBuf> {
    for name in ["chromium", "chromium-browser", "google-chrome"] {
        for dir in std::env::var_os("PATH")
            .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
            .unwrap_or_default()
        {
            let path = dir.join(name);
            if path.is_file() {
                return Some(path);
            }
        }
    }
    let required = std::env::var_os("CI").is_some()
        || std::env::var_os("TURBOWISH_REQUIRE_CHROMIUM").is_some();
    assert!(
        !required,
        "no chromium on PATH: install Debian's `chromium` package (.ci/run does)"
    );
    eprintln!("note: no chromium on PATH: the page is not checked in a browser");
    None
}

/// The flags of every run: a fresh profile, nothing the browser would
/// fetch for itself (updates, sync, field trials), no sandbox (CI runs as
/// root in a container).
fn command(browser: &Path, profile: &Path) -> Command {
    let mut cmd = Command::new(browser);
    cmd.arg("--headless")
        .arg("--no-sandbox")
        .arg("--disable-gpu")
        .arg("--hide-scrollbars")
        .arg("--no-first-run")
        .arg("--disable-background-networking")
        .arg("--disable-component-update")
        .arg("--disable-sync")
        .arg("--disable-default-apps")
        .arg("--disable-extensions")
        .arg(format!("--user-data-dir={}", profile.display()));
    cmd
}

/// Loads `page` (with `fragment`, e.g. `#sort=name`) and returns its DOM,
/// console and requests.
pub(crate) fn load(browser: &Path, page: &Path, fragment: &str) -> Loaded {
    let dir = tempfile::tempdir().unwrap();
    let netlog = dir.path().join("netlog.json");
    let url = format!(
        "file://{}{fragment}",
        page.canonicalize().unwrap().display()
    );
    let out = command(browser, &dir.path().join("profile"))
        .arg("--enable-logging=stderr")
        .arg("--v=0")
        .arg(format!("--log-net-log={}", netlog.display()))
        .arg("--dump-dom")
        .arg(&url)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "chromium failed on {url}: {stderr}");
    let console = stderr
        .lines()
        .filter(|l| l.contains(":CONSOLE"))
        .map(str::to_owned)
        .collect();
    Loaded {
        dom: String::from_utf8(out.stdout).unwrap(),
        console,
        requests: page_requests(&netlog),
    }
}

/// Writes a PNG of `page` as a person would see it, 1300 pixels wide.
pub(crate) fn screenshot(browser: &Path, page: &Path, png: &Path, height: u32) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(png.parent().unwrap()).unwrap();
    let out = command(browser, &dir.path().join("profile"))
        .arg(format!("--window-size=1300,{height}"))
        .arg(format!("--screenshot={}", png.display()))
        .arg(format!("file://{}", page.canonicalize().unwrap().display()))
        .output()
        .unwrap();
    assert!(
        out.status.success() && png.exists(),
        "screenshot of {} failed: {}",
        page.display(),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Requests made for the page: network-log events with an initiator other
/// than the browser itself (`not an origin` marks Chromium's own fetches).
fn page_requests(netlog: &Path) -> Vec<String> {
    let Ok(text) = std::fs::read_to_string(netlog) else {
        return Vec::new();
    };
    // Chromium leaves the file unterminated when it exits without closing
    // the log; the events so far are still there.
    let value: serde_json::Value = serde_json::from_str(&text)
        .or_else(|_| serde_json::from_str(&format!("{}]}}", text.trim_end().trim_end_matches(','))))
        .unwrap_or_else(|e| panic!("net log {}: {e}", netlog.display()));
    let mut urls = Vec::new();
    for event in value["events"].as_array().into_iter().flatten() {
        let params = &event["params"];
        if let (Some(url), Some(initiator)) = (params["url"].as_str(), params["initiator"].as_str())
        {
            if initiator != "not an origin" {
                urls.push(url.to_owned());
            }
        }
    }
    urls
}

/// Where screenshots go: `target/turbowish-html/`, beside the binaries.
pub(crate) fn screenshot_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    // target/<profile>/deps/<test> -> target/
    let target = exe.ancestors().nth(3).unwrap();
    target.join("turbowish-html")
}

/// One tag's attributes, values unescaped.
pub(crate) type Tag = HashMap<String, String>;

/// Every `<name …>` start tag in `html`, in order, with its attributes.
pub(crate) fn tags(html: &str, name: &str) -> Vec<Tag> {
    let open = format!("<{name} ");
    let mut out = Vec::new();
    let mut rest = html;
    while let Some(at) = rest.find(&open) {
        rest = &rest[at + open.len()..];
        let end = rest.find('>').unwrap();
        out.push(attributes(&rest[..end]));
        rest = &rest[end..];
    }
    out
}

fn attributes(mut s: &str) -> Tag {
    let mut tag = Tag::new();
    loop {
        s = s.trim_start();
        let Some(eq) = s.find('=') else {
            for flag in s.split_whitespace() {
                tag.insert(flag.trim_end_matches('/').to_owned(), String::new());
            }
            return tag;
        };
        let (name, after) = (s[..eq].trim(), &s[eq + 1..]);
        // Flags before this attribute (`hidden data-x="…"`).
        let mut words: Vec<&str> = name.split_whitespace().collect();
        let name = words.pop().unwrap_or_default();
        for flag in words {
            tag.insert(flag.to_owned(), String::new());
        }
        let quote = after.chars().next().unwrap();
        assert!(
            quote == '"' || quote == '\'',
            "unquoted attribute {name}: {after}"
        );
        let close = after[1..].find(quote).unwrap();
        tag.insert(name.to_owned(), unescape(&after[1..1 + close]));
        s = &after[close + 2..];
    }
}

/// Undoes HTML's character references as Chromium and `turbowish html`
/// write them.
pub(crate) fn unescape(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&nbsp;", "\u{a0}")
        .replace("&amp;", "&")
}

/// The `data-name` of each body row of the table with `id`, in order.
pub(crate) fn row_names(dom: &str, id: &str) -> Vec<String> {
    let start = dom
        .find(&format!("<table id=\"{id}\""))
        .unwrap_or_else(|| panic!("no table {id}"));
    let table = &dom[start..];
    let body = &table[table.find("<tbody>").unwrap()..table.find("</tbody>").unwrap()];
    tags(body, "tr")
        .into_iter()
        .map(|t| t["data-name"].clone())
        .collect()
}

/// The checks every page passes, in Chromium, for the snapshot `snap` it
/// was made from: scripts ran to the end, nothing logged, nothing
/// requested; every row of `report` in the table; every treemap tile's
/// area proportional to its bytes within 1 %; every deadlock's nodes and
/// edges marked as a cycle; sorting reorders the rows. Writes a
/// screenshot to `target/turbowish-html/<name>.png`. Returns the loaded
/// page, or `None` without a browser.
pub(crate) fn check_page(page: &Path, snap: &Snapshot, name: &str) -> Option<Loaded> {
    let browser = chromium()?;
    let loaded = load(&browser, page, "");
    let dom = &loaded.dom;
    assert!(
        dom.contains("<body data-ready=\"1\">"),
        "{name}: the script did not finish"
    );
    assert!(
        loaded.console.is_empty(),
        "{name}: console: {:?}",
        loaded.console
    );
    assert!(
        loaded.requests.is_empty(),
        "{name}: requests: {:?}",
        loaded.requests
    );
    // The page's script and nothing else.
    assert_eq!(dom.matches("<script").count(), 1, "{name}");

    // The table: every row `report` shows, biggest first.
    let report = MemoryReport::new(snap, SortKey::Live, usize::MAX);
    let rows = row_names(dom, "tasks");
    let expected: Vec<String> = report
        .rows
        .iter()
        .take(turbowish_report::html::MAX_TABLE_ROWS)
        .map(|r| r.name.clone())
        .collect();
    assert_eq!(rows, expected, "{name}: table rows");

    check_treemap(dom, name);
    check_cycles(dom, snap, name);

    // Sorting: by name, then by blocks ascending, from the address.
    if rows.len() > 1 {
        let by_name = row_names(&load(&browser, page, "#sort=name").dom, "tasks");
        let mut sorted = rows.clone();
        sorted.sort_by_key(|n| n.to_lowercase());
        assert_eq!(by_name, sorted, "{name}: #sort=name");
        let blocks: HashMap<&str, u64> = report
            .rows
            .iter()
            .map(|r| (r.name.as_str(), r.memory.live_blocks))
            .collect();
        let by_blocks = row_names(&load(&browser, page, "#sort=blocks-asc").dom, "tasks");
        let counts: Vec<u64> = by_blocks.iter().map(|n| blocks[n.as_str()]).collect();
        assert!(
            counts.windows(2).all(|w| w[0] <= w[1]),
            "{name}: {counts:?}"
        );
        assert_eq!(by_blocks.len(), rows.len());
    }

    let png = screenshot_dir().join(format!("{name}.png"));
    screenshot(&browser, page, &png, 2400);
    Some(loaded)
}

/// Every tile's area against its bytes: a first-level tile's share of its
/// view, a site's share of its owner's tile.
fn check_treemap(dom: &str, name: &str) {
    let mut checked = 0;
    for (view_at, _) in dom.match_indices("<svg class=\"treemap-view\"") {
        let view = &dom[view_at..view_at + dom[view_at..].find("</svg>").unwrap()];
        let svg = &tags(view, "svg")[0];
        let total: f64 = svg["data-total"].parse().unwrap();
        let canvas = svg["width"].parse::<f64>().unwrap() * svg["height"].parse::<f64>().unwrap();
        let tiles: Vec<Tag> = tags(view, "rect")
            .into_iter()
            .filter(|t| t.get("class").is_some_and(|c| c.starts_with("tile ")))
            .collect();
        let by_id: HashMap<&str, &Tag> = tiles.iter().map(|t| (t["id"].as_str(), t)).collect();
        let first_level: f64 = tiles
            .iter()
            .filter(|t| !t.contains_key("data-parent"))
            .map(|t| t["data-bytes"].parse::<f64>().unwrap())
            .sum();
        assert!(
            (first_level - total).abs() <= total * 1e-9,
            "{name}: the view's tiles add up to its total"
        );
        let area =
            |t: &Tag| t["width"].parse::<f64>().unwrap() * t["height"].parse::<f64>().unwrap();
        for t in &tiles {
            let bytes: f64 = t["data-bytes"].parse().unwrap();
            let (share_of_area, share_of_bytes) = match t.get("data-parent") {
                None => (area(t) / canvas, bytes / total),
                Some(p) => {
                    let parent = by_id[p.as_str()];
                    let pb: f64 = parent["data-bytes"].parse().unwrap();
                    (area(t) / area(parent), bytes / pb)
                }
            };
            assert!(
                (share_of_area - share_of_bytes).abs() <= share_of_bytes * 0.01,
                "{name}: tile {} ({}) has {share_of_area} of the area for {share_of_bytes} of the bytes",
                t["id"],
                t["data-name"]
            );
            checked += 1;
        }
    }
    assert!(
        checked > 0 || !dom.contains("class=\"treemap-view\""),
        "{name}"
    );
}

/// Each deadlock's waiters and resources are `cycle` nodes; its waits and
/// holds edges are `cycle` edges.
fn check_cycles(dom: &str, snap: &Snapshot, name: &str) {
    let nodes: HashMap<String, String> = tags(dom, "g")
        .into_iter()
        .filter_map(|t| Some((t.get("data-node")?.clone(), t["class"].clone())))
        .collect();
    let edges: Vec<Tag> = tags(dom, "path")
        .into_iter()
        .filter(|t| t.contains_key("data-from"))
        .collect();
    let edge_class = |from: &str, to: &str, kind: &str| -> Option<String> {
        edges
            .iter()
            .find(|e| e["data-from"] == from && e["data-to"] == to && e["class"].contains(kind))
            .map(|e| e["class"].clone())
    };
    for cycle in &snap.cycles {
        let n = cycle.links.len();
        for (i, link) in cycle.links.iter().enumerate() {
            let waiter = node_id(link.waiter.task);
            let resource = format!("resource-{}", link.resource);
            let next = node_id(cycle.links[(i + 1) % n].waiter.task);
            for node in [&waiter, &resource] {
                let class = nodes
                    .get(node)
                    .unwrap_or_else(|| panic!("{name}: no node {node}"));
                assert!(
                    class.split(' ').any(|c| c == "cycle"),
                    "{name}: {node} is {class}"
                );
            }
            let waits = edge_class(&waiter, &resource, "waits");
            assert_eq!(
                waits.as_deref(),
                Some("edge waits cycle"),
                "{name}: {waiter} -> {resource}"
            );
            let holds = edge_class(&resource, &next, "holds");
            assert_eq!(
                holds.as_deref(),
                Some("edge holds cycle"),
                "{name}: {resource} -> {next}"
            );
        }
    }
    if !snap.cycles.is_empty() {
        assert!(
            dom.contains("class=\"banner deadlock\""),
            "{name}: no banner"
        );
    }
    // Nothing off a cycle is red.
    let red = nodes.values().filter(|c| c.contains("cycle")).count();
    if snap.cycles.is_empty() {
        assert_eq!(red, 0, "{name}");
    }
}

fn node_id(task: turbowish_snapshot::schema::TaskRef) -> String {
    use turbowish_snapshot::schema::TaskRef;
    match task {
        TaskRef::Task(id) => format!("task-{id}"),
        TaskRef::TokioTask(id) => format!("task-tokio{id}"),
        TaskRef::Thread(n) => format!("task-thread{n}"),
    }
}
