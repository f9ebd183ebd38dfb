//! `turbowish html` on the checked-in fixtures, loaded in headless
//! Chromium: the checks every page passes (`check_html`), then what each
//! fixture's story shows: the deadlock banner and red cycle, the retained
//! view of a walk, the growth view, and hostile names kept as text.

mod cli_support;

use cli_support::browser::{self, chromium, row_names};
use cli_support::{assert_one_line_error, check_html, fixture, fixtures, run, run_ok, text};

fn p(name: &str) -> String {
    fixture(name).to_str().unwrap().to_owned()
}

#[test]
fn every_fixture_renders_a_page_that_passes_in_chromium() {
    for (name, _) in fixtures::all() {
        let stem = name.trim_end_matches(".json");
        check_html(&fixture(name), &format!("fixture-{stem}"));
    }
}

#[test]
fn the_deadlock_is_named_in_a_banner_and_drawn_red() {
    let Some(dom) = check_html(&fixture("service.json"), "deadlock-banner") else {
        return;
    };
    let banner_at = dom.find("class=\"banner deadlock\"").unwrap();
    // The banner comes before every section, and names both tasks.
    assert!(banner_at < dom.find("<section").unwrap());
    let banner = &dom[banner_at..banner_at + dom[banner_at..].find("</div>").unwrap()];
    assert!(
        banner.contains("transfer-a") && banner.contains("transfer-b"),
        "{banner}"
    );
    assert!(dom.contains("<g class=\"node task cycle\""));
    assert!(dom.contains("class=\"edge waits cycle\""));
    assert!(dom.contains("class=\"edge holds cycle\""));
}

#[test]
fn a_walk_adds_retained_columns_and_the_retained_by_treemap() {
    let page = run_ok(&["html", &p("service-walk.json"), "-o", "-"]).stdout;
    let page = text(&page);
    assert!(page.contains("<th data-key=\"retained\""));
    assert!(page.contains("<th data-key=\"shared\""));
    assert!(page.contains("<button type=\"button\" data-mode=\"retained\""));
    assert!(page.contains("id=\"retained-view-0\""));
    // Without a walk: neither.
    let plain = text(&run_ok(&["html", &p("service.json"), "-o", "-"]).stdout);
    assert!(!plain.contains("data-key=\"retained\""));
    assert!(!plain.contains("data-mode=\"retained\""));
    check_html(&fixture("service-walk.json"), "walk");
}

#[test]
fn large_futures_are_flagged() {
    let page = text(&run_ok(&["html", &p("service.json"), "-o", "-"]).stdout);
    let row = page
        .lines()
        .find(|l| l.starts_with("<tr data-name=\"request-handler\""))
        .unwrap();
    assert!(row.contains("class=\"large\""), "{row}");
    let row = page
        .lines()
        .find(|l| l.starts_with("<tr data-name=\"cache-filler\""))
        .unwrap();
    assert!(!row.contains("class=\"large\""), "{row}");
}

#[test]
fn base_adds_growth_per_task_and_site_biggest_first() {
    let dir = tempfile::tempdir().unwrap();
    let page = dir.path().join("growth.html");
    run_ok(&[
        "html",
        &p("service-later.json"),
        "--base",
        &p("service.json"),
        "-o",
        page.to_str().unwrap(),
    ]);
    let html = std::fs::read_to_string(&page).unwrap();
    let d = turbowish_report::diff::diff(
        &turbowish_snapshot::Snapshot::load(&fixture("service.json")).unwrap(),
        &turbowish_snapshot::Snapshot::load(&fixture("service-later.json")).unwrap(),
        false,
    )
    .unwrap();
    let names = row_names(&html, "diff-tasks");
    let expected: Vec<String> = d.tasks.iter().map(|t| t.name.clone()).collect();
    assert_eq!(names, expected);
    assert!(!names.is_empty());
    let sites = &html[html.find("<table id=\"diff-sites\"").unwrap()..];
    assert_eq!(
        sites[..sites.find("</tbody>").unwrap()]
            .matches("<tr><td")
            .count(),
        d.sites.len().min(200)
    );
    if let Some(b) = chromium() {
        let loaded = browser::load(&b, &page, "");
        assert!(loaded.console.is_empty(), "{:?}", loaded.console);
        assert!(loaded.dom.contains("<body data-ready=\"1\">"));
        browser::screenshot(
            &b,
            &page,
            &browser::screenshot_dir().join("growth.png"),
            2400,
        );
    }
    // Snapshots of another program need --force, as with `diff`.
    let out = run(
        &[
            "html",
            &p("service.json"),
            "--base",
            &p("other-program.json"),
            "-o",
            "-",
        ],
        b"",
    );
    let e = assert_one_line_error(&out, "another program");
    assert!(e.contains("--base") && e.contains("--force"), "{e}");
    run_ok(&[
        "html",
        &p("service.json"),
        "--base",
        &p("other-program.json"),
        "--force",
        "-o",
        "-",
    ]);
}

#[test]
fn a_task_named_like_a_script_is_shown_as_text() {
    let mut snap = fixtures::service();
    let evil = "<script>alert(1)</script>";
    snap.tasks[0].name = evil.to_owned();
    snap.resources[0].name = "<img src=x onerror=alert(2)>".to_owned();
    for r in &mut snap.resources {
        for party in r.holders.iter_mut().chain(r.waiters.iter_mut()) {
            party.task_name = format!("{evil}\u{202e}");
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("evil.json");
    std::fs::write(&path, fixtures::to_json(&snap)).unwrap();
    let page = text(&run_ok(&["html", path.to_str().unwrap(), "-o", "-"]).stdout);
    assert_eq!(page.matches("<script").count(), 1, "only the page's own");
    assert!(!page.contains("<img"));
    assert!(!page.contains('\u{202e}'));
    let Some(dom) = check_html(&path, "hostile-names") else {
        return;
    };
    // In the browser: the name is a row's text, and no second script ran.
    assert!(row_names(&dom, "tasks").contains(&evil.to_owned()));
    assert!(dom.contains("<td data-key=\"name\">&lt;script&gt;alert(1)&lt;/script&gt;</td>"));
    assert_eq!(dom.matches("<script").count(), 1);
    assert_eq!(dom.matches("<img").count(), 0);
}

#[test]
fn the_output_may_not_replace_either_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a.json");
    let b = dir.path().join("b.json");
    std::fs::copy(fixture("service.json"), &a).unwrap();
    std::fs::copy(fixture("service-later.json"), &b).unwrap();
    let (a, b) = (a.to_str().unwrap(), b.to_str().unwrap());
    for args in [
        vec!["html", a, "-o", a],
        vec!["html", b, "--base", a, "-o", a],
    ] {
        let e = assert_one_line_error(&run(&args, b""), "overwrite");
        assert!(e.contains("it is the snapshot being read"), "{e}");
    }
    assert_eq!(
        std::fs::read(a).unwrap(),
        std::fs::read(fixture("service.json")).unwrap()
    );
    let e = assert_one_line_error(
        &run(&["html", "-", "--base", "-", "-o", "x.html"], b""),
        "stdin twice",
    );
    assert!(e.contains("cannot both be standard input"), "{e}");
}

#[test]
fn zooming_and_switching_the_treemap_from_the_address() {
    let dir = tempfile::tempdir().unwrap();
    let page = dir.path().join("walk.html");
    run_ok(&[
        "html",
        &p("service-walk.json"),
        "-o",
        page.to_str().unwrap(),
    ]);
    let Some(b) = chromium() else {
        return;
    };
    let svgs = |dom: &str| -> Vec<(String, bool)> {
        browser::tags(dom, "svg")
            .into_iter()
            .filter(|t| t.get("class").is_some_and(|c| c == "treemap-view"))
            .map(|t| (t["id"].clone(), !t.contains_key("hidden")))
            .collect()
    };
    let shown =
        |dom: &str| -> Vec<String> { svgs(dom).into_iter().filter(|s| s.1).map(|s| s.0).collect() };
    // As loaded: the root view of each treemap (the retained one in its
    // hidden tab).
    let plain = browser::load(&b, &page, "");
    assert_eq!(shown(&plain.dom), ["allocated-view-0", "retained-view-0"]);
    assert!(plain
        .dom
        .contains("<div class=\"treemap-mode\" data-mode=\"retained\" hidden=\"\">"));
    // Zoomed into the first owner: its view alone, and the way back shown.
    let zoomed = browser::load(&b, &page, "#zoom=allocated-view-1");
    assert!(zoomed.console.is_empty(), "{:?}", zoomed.console);
    assert_eq!(shown(&zoomed.dom), ["allocated-view-1", "retained-view-0"]);
    assert!(zoomed
        .dom
        .contains("<button type=\"button\" class=\"zoom-out\" data-target=\"allocated-view-0\">"));
    // The retained-by tab.
    let retained = browser::load(&b, &page, "#mode=retained");
    assert!(retained
        .dom
        .contains("<div class=\"treemap-mode\" data-mode=\"allocated\" hidden=\"\">"));
    assert!(retained
        .dom
        .contains("data-mode=\"retained\" aria-pressed=\"true\""));
}

/// The browser checks can fail: a page that fetches an image and logs an
/// error is caught by both.
#[test]
fn the_browser_checks_see_requests_and_console_messages() {
    let Some(b) = chromium() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let page = dir.path().join("leaky.html");
    std::fs::write(
        &page,
        "<!DOCTYPE html><img src=\"http://example.invalid/pixel.png\"><script>console.error('boom')</script>",
    )
    .unwrap();
    let loaded = browser::load(&b, &page, "");
    assert_eq!(loaded.requests, ["http://example.invalid/pixel.png"]);
    assert_eq!(loaded.console.len(), 1, "{:?}", loaded.console);
    assert!(loaded.console[0].contains("boom"));
}
