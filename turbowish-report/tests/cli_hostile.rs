//! Snapshots made by a hostile or careless hand (issue #22): each shape
//! that used to take the CLI down or let input reach the terminal, run
//! through the real binary under a 256 MiB address-space limit. Each now
//! gets exit status 2 with one line naming the field and the limit, or
//! output with every control and bidi character escaped.

mod cli_support;

use std::path::{Path, PathBuf};
use std::process::Output;

use cli_support::fixtures::{service, to_json};
use cli_support::{assert_one_line_error, fixture, raw_control, run_limited, text, HOSTILE_MEMORY};
use turbowish_snapshot::schema::{Owner, Snapshot, SourceLine};

/// Runs `turbowish` on hostile input under [`HOSTILE_MEMORY`]: never a
/// signal (an abort on a failed allocation, a CPU-time kill), never a raw
/// control character on either stream.
fn run(args: &[&str]) -> Output {
    let (out, _) = run_limited(args, HOSTILE_MEMORY, 60);
    assert!(
        out.status.code().is_some(),
        "turbowish {args:?} was killed ({:?}); stderr: {}",
        out.status,
        text(&out.stderr)
    );
    assert_eq!(raw_control(&out.stdout), None, "stdout of {args:?}");
    assert_eq!(raw_control(&out.stderr), None, "stderr of {args:?}");
    out
}

fn write(dir: &Path, name: &str, json: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, json).unwrap();
    path
}

/// The fixture with location 0 made 200 inlined lines deep, and every
/// site's stack `depth` copies of it. (With 2,000 sites of depth 20, the
/// build before the limits aborted on `flamegraph` and `report --task`
/// under 256 MiB.)
fn self_repeating(sites: usize, depth: usize) -> Snapshot {
    let mut snap = service();
    snap.locations[0].lines = (0..200)
        .map(|i| SourceLine {
            function: format!("f{i}"),
            file: None,
            line: None,
        })
        .collect();
    let template = snap.sites[0].clone();
    let owner = snap.owner_sites[0];
    snap.sites = (0..sites as u32)
        .map(|id| {
            let mut site = template.clone();
            site.id = id;
            site.stack = vec![0; depth];
            site
        })
        .collect();
    // Half of them cache-filler's (for `report --task`), half each of
    // another owner's (so a flame graph draws every stack apart).
    snap.owner_sites = (0..sites as u32)
        .map(|site| {
            let mut os = owner;
            os.site = site;
            os.owner = if site % 2 == 0 {
                Owner::Task(5)
            } else {
                Owner::TokioTask(u64::from(site))
            };
            os
        })
        .collect();
    snap
}

/// The commands that expanded stacks: flame graphs, `report --task`,
/// `diff` (either side).
fn stack_commands<'a>(p: &'a str, good: &'a str, out: &'a str) -> Vec<Vec<&'a str>> {
    vec![
        vec!["flamegraph", p, "-o", out],
        vec!["flamegraph", p, "--folded", "-o", out],
        vec!["report", p, "--task", "cache-filler"],
        vec!["diff", good, p],
        vec!["diff", p, good],
        vec!["html", p, "-o", out],
    ]
}

#[test]
fn a_site_deeper_than_its_limit_once_inlined_lines_count_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        dir.path(),
        "deep.json",
        &serde_json::to_string(&self_repeating(3, 1000)).unwrap(),
    );
    let good = fixture("service.json");
    let out = dir.path().join("out");
    let (p, g, o) = (
        path.to_str().unwrap(),
        good.to_str().unwrap(),
        out.to_str().unwrap(),
    );
    for args in stack_commands(p, g, o) {
        let e = assert_one_line_error(&run(&args), &format!("{args:?}"));
        assert_eq!(
            e,
            format!("turbowish: {p}: refused: field `sites[0].stack`: 200000 frames once its locations' inlined lines are counted (limit 4096)\n"),
            "{args:?}"
        );
    }
    assert!(!out.exists());
}

#[test]
fn self_repeating_stacks_past_the_files_budget_are_refused() {
    // Each site is 4,000 frames, under the per-site limit; 2,000 of them
    // are 8 million frames from a file of a few hundred KB (the issue's
    // 668 KB file asked for over 4 GiB).
    let dir = tempfile::tempdir().unwrap();
    let json = serde_json::to_string(&self_repeating(2_000, 20)).unwrap();
    assert!(json.len() < 700_000, "{}", json.len());
    let path = write(dir.path(), "repeat.json", &json);
    let good = fixture("service.json");
    let out = dir.path().join("out");
    let (p, g, o) = (
        path.to_str().unwrap(),
        good.to_str().unwrap(),
        out.to_str().unwrap(),
    );
    let budget = turbowish_snapshot::limits::frame_budget(json.len());
    for args in stack_commands(p, g, o) {
        let e = assert_one_line_error(&run(&args), &format!("{args:?}"));
        assert_eq!(
            e,
            format!("turbowish: {p}: refused: field `sites`: its stacks expand to 8000000 frames, more than a file of this size may expand to (limit {budget}: 262144 + 1 per 2 bytes)\n"),
            "{args:?}"
        );
    }
}

#[test]
fn a_stack_past_the_depth_limit_is_refused_while_parsing() {
    let dir = tempfile::tempdir().unwrap();
    let mut snap = service();
    snap.sites[2].stack = vec![1; 5_000];
    let path = write(dir.path(), "long.json", &to_json(&snap));
    let p = path.to_str().unwrap();
    let e = assert_one_line_error(&run(&["flamegraph", p, "--folded", "-o", "-"]), "long");
    assert_eq!(
        e,
        format!("turbowish: {p}: refused: field `sites[2].stack`: more than 1024 locations (limit 1024)\n")
    );
}

#[test]
fn millions_of_empty_arguments_are_refused_while_parsing() {
    // 10 million `"",`: 30 MB of file, 240 MB of `String`s (and twice
    // that while the list doubles) had it been read. Refused at the
    // 1,048,577th, within 256 MiB.
    let dir = tempfile::tempdir().unwrap();
    let mut snap = service();
    snap.process.args.clear();
    let json = to_json(&snap);
    let mut args = String::with_capacity(30_000_010);
    args.push_str("\"args\": [\"\"");
    for _ in 1..10_000_000 {
        args.push_str(",\"\"");
    }
    args.push(']');
    let json = json.replacen("\"args\": []", &args, 1);
    assert!(json.len() > 30_000_000);
    let path = write(dir.path(), "args.json", &json);
    let good = fixture("service.json");
    let out = dir.path().join("out");
    let (p, g, o) = (
        path.to_str().unwrap(),
        good.to_str().unwrap(),
        out.to_str().unwrap(),
    );
    for args in [
        vec!["report", p],
        vec!["chains", p, "--json"],
        vec!["flamegraph", p, "--folded", "-o", o],
        vec!["diff", g, p],
        vec!["export", "--format", "pprof", p, "-o", o],
    ] {
        let e = assert_one_line_error(&run(&args), &format!("{args:?}"));
        assert_eq!(
            e,
            format!("turbowish: {p}: refused: field `process.args`: more than 1048576 arguments (limit 1048576)\n"),
            "{args:?}"
        );
    }
}

#[test]
fn chains_json_streams_a_cycle_of_many_links() {
    // 100,000 cycle links: about 40 MB of file; a `Value` copy of it took
    // about 8 times that, past the 256 MiB limit.
    const LINKS: usize = 100_000;
    let dir = tempfile::tempdir().unwrap();
    let mut snap = service();
    let links = snap.cycles[0].links.clone();
    snap.cycles[0].links = links.iter().cycle().take(LINKS).cloned().collect();
    let json = serde_json::to_string(&snap).unwrap();
    assert!(json.len() > 30_000_000, "{}", json.len());
    let path = write(dir.path(), "cycle.json", &json);
    let p = path.to_str().unwrap();
    let out = run(&["chains", p, "--json"]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    assert!(out.stderr.is_empty(), "{}", text(&out.stderr));
    let value: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(value["cycles"][0]["links"].as_array().unwrap().len(), LINKS);
    assert_eq!(value["chains"].as_array().unwrap().len(), snap.chains.len());
}

#[test]
fn error_messages_show_controls_and_line_breaks_escaped() {
    let dir = tempfile::tempdir().unwrap();
    // A task state that is no state: serde quotes it in its message.
    let json = to_json(&service()).replacen(
        "\"state\": \"idle\"",
        "\"state\": \"\\u001b[2J\\u0007\\nturbowish: all fine\\u202e\"",
        1,
    );
    let path = write(dir.path(), "state.json", &json);
    let p = path.to_str().unwrap();
    // (Not `assert_one_line_error`: the message rightly lists the state
    // `panicked`, which that helper takes for a panic.)
    let out = run(&["report", p]);
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty());
    let e = text(&out.stderr);
    assert_eq!(e.lines().count(), 1, "{e}");
    assert!(
        e.starts_with(&format!(
            "turbowish: {p}: not a TurboWish snapshot: field `tasks[0].state`: unknown variant `\\u{{1b}}[2J\\u{{7}}\\u{{a}}turbowish: all fine\\u{{202e}}`, expected one of"
        )),
        "{e}"
    );

    // An executable's path in the refusal to compare two programs.
    let mut snap = service();
    snap.process.executable = "/bin/\u{1b}]0;pwned\u{7}\nturbowish: ok\u{202e}".to_owned();
    let path = write(dir.path(), "exe.json", &to_json(&snap));
    let p = path.to_str().unwrap();
    let good = fixture("service.json");
    let e = assert_one_line_error(&run(&["diff", good.to_str().unwrap(), p]), "exe");
    assert!(
        e.contains("and /bin/\\u{1b}]0;pwned\\u{7}\\u{a}turbowish: ok\\u{202e});"),
        "{e}"
    );
    // With --force the path is in the text output, escaped there too.
    let out = run(&["diff", good.to_str().unwrap(), p, "--force"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(text(&out.stdout)
        .contains("NEW: /bin/\\u{1b}]0;pwned\\u{7}\\u{a}turbowish: ok\\u{202e} (pid"));
}

/// The fixture with its first resource and first holder named with ESC,
/// BEL, NUL and U+202E.
fn evil_names() -> Snapshot {
    let mut snap = service();
    snap.resources[0].name = "acc\u{1b}[31m\u{7}\u{0}\u{202e}ounts".to_owned();
    snap.resources[0].location = "src/bank.rs\u{1b}[8m:20:9".to_owned();
    snap.resources[0].holders[0].task_name = "xfer\u{202e}\u{1b}]0;t\u{7}".to_owned();
    snap
}

#[test]
fn chains_dot_escapes_names_in_a_file_and_on_standard_output() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "evil.json", &to_json(&evil_names()));
    let p = path.to_str().unwrap();
    let out = run(&["chains", p, "--dot", "-"]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    let dot = text(&out.stdout);
    assert!(
        dot.contains("label=\"Mutex \\\"acc\\\\u{1b}[31m\\\\u{7}\\\\u{0}\\\\u{202e}ounts\\\"\\nsrc/bank.rs\\\\u{1b}[8m:20:9\""),
        "{dot}"
    );
    assert!(
        dot.contains("label=\"xfer\\\\u{202e}\\\\u{1b}]0;t\\\\u{7}\\n#"),
        "{dot}"
    );

    let file = dir.path().join("graph.dot");
    let out = run(&["chains", p, "--dot", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    let written = std::fs::read(&file).unwrap();
    assert_eq!(raw_control(&written), None);
    assert_eq!(text(&written), dot);
    // The text output beside it escapes the same text.
    assert!(text(&out.stdout).contains("created at src/bank.rs\\u{1b}[8m:20:9,"));
}

#[test]
fn folded_stacks_and_the_svg_escape_bidi_and_keep_semicolons_inside_a_frame() {
    let dir = tempfile::tempdir().unwrap();
    let mut snap = service();
    let cache = snap
        .tasks
        .iter_mut()
        .find(|t| t.name == "cache-filler")
        .unwrap();
    cache.name = "cache;fake-frame\u{202e}\u{2066}x\u{1b}".to_owned();
    let path = write(dir.path(), "bidi.json", &to_json(&snap));
    let p = path.to_str().unwrap();

    let out = run(&["flamegraph", p, "--folded", "-o", "-"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let folded = text(&out.stdout);
    let owner = "cache,fake-frame\\u{202e}\\u{2066}x\\u{1b}";
    let lines: Vec<&str> = folded.lines().filter(|l| l.starts_with(owner)).collect();
    assert_eq!(lines.len(), 1, "{folded}");
    // The owner is one frame: the line has the fixture's 6 frames.
    assert_eq!(lines[0].split(';').count(), 6, "{}", lines[0]);
    assert!(
        !folded.lines().any(|l| l.starts_with("fake-frame")),
        "{folded}"
    );

    let out = run(&["flamegraph", p, "-o", "-"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let svg = text(&out.stdout);
    assert!(svg.contains(owner), "the SVG names the escaped owner");
}

#[test]
fn empty_frames_spread_over_many_waiters_are_refused_while_parsing() {
    // 2,500 waiters of 4,096 empty frame names each, every list under its
    // own limit: 10 million names, 30 MB of file, 240 MB of `String`s had
    // they been read.
    let dir = tempfile::tempdir().unwrap();
    let mut snap = service();
    let mut waiter = snap.resources[0].holders[0].clone();
    waiter.frames = vec!["F".to_owned()];
    snap.resources[0].waiters = vec![waiter; 2_500];
    let frames = format!("[\"\"{}]", ",\"\"".repeat(4_095));
    let json = serde_json::to_string(&snap)
        .unwrap()
        .replace("\"frames\":[\"F\"]", &format!("\"frames\":{frames}"));
    assert!(json.len() > 30_000_000, "{}", json.len());
    let path = write(dir.path(), "frames.json", &json);
    let p = path.to_str().unwrap();
    let budget = turbowish_snapshot::limits::name_budget(json.len());
    for args in [vec!["report", p], vec!["chains", p, "--json"]] {
        let e = assert_one_line_error(&run(&args), &format!("{args:?}"));
        assert!(
            e.starts_with(&format!(
                "turbowish: {p}: refused: field `resources[0].waiters["
            )),
            "{e}"
        );
        assert!(
            e.ends_with(&format!("].frames`: more names in all holders' and waiters' frames than a file of this size may hold (limit {budget}: 1048576 + 1 per 16 bytes)\n")),
            "{e}"
        );
    }
}

#[test]
fn json_outputs_escape_controls_and_bidi_and_decode_to_the_names() {
    let dir = tempfile::tempdir().unwrap();
    let mut snap = evil_names();
    let evil = "cache\u{1b}[2J\u{9b}\u{7f}\u{202e}\u{2066}\u{fffe}";
    snap.tasks
        .iter_mut()
        .find(|t| t.name == "cache-filler")
        .unwrap()
        .name = evil.to_owned();
    let path = write(dir.path(), "evil.json", &to_json(&snap));
    let p = path.to_str().unwrap();
    let good = fixture("service.json");
    for (args, status) in [
        (vec!["report", p, "--json"], 0),
        (vec!["report", p, "--task", evil, "--json"], 0),
        (vec!["chains", p, "--json"], 3),
        (vec!["diff", good.to_str().unwrap(), p, "--json"], 0),
    ] {
        let out = run(&args);
        assert_eq!(out.status.code(), Some(status), "{}", text(&out.stderr));
        let json = text(&out.stdout);
        assert!(json.contains("\\u202e"), "{args:?}: {json}");
        let value: serde_json::Value = serde_json::from_str(&json).unwrap();
        let mut strings = Vec::new();
        collect_strings(&value, &mut strings);
        assert!(
            strings
                .iter()
                .any(|s| s.contains(evil) || s.contains("acc\u{1b}[31m\u{7}\u{0}\u{202e}ounts")),
            "{args:?}: the names decode as the snapshot has them"
        );
    }
}

fn collect_strings(value: &serde_json::Value, out: &mut Vec<String>) {
    match value {
        serde_json::Value::String(s) => out.push(s.clone()),
        serde_json::Value::Array(items) => items.iter().for_each(|v| collect_strings(v, out)),
        serde_json::Value::Object(map) => map.values().for_each(|v| collect_strings(v, out)),
        _ => {}
    }
}

#[test]
fn stacks_spelled_out_up_to_the_text_budget_stay_within_256_mib() {
    // Just inside the budgets: a 1.1 MB file (an argument of 1 MB) whose
    // 10 sites, each of another owner, are 64 copies of one location of
    // 64 lines of 2,000-byte names: 83 MB of names to spell out, where the
    // text budget is 90 MB. The SVG used to abort here under 256 MiB.
    let dir = tempfile::tempdir().unwrap();
    let mut snap = self_repeating(10, 64);
    snap.locations[0].lines = (0..64)
        .map(|i| SourceLine {
            function: format!("f{i}_{}", "x".repeat(2_000)),
            file: None,
            line: None,
        })
        .collect();
    for (i, os) in snap.owner_sites.iter_mut().enumerate() {
        os.owner = Owner::TokioTask(i as u64);
    }
    snap.process.args.push("p".repeat(1_000_000));
    let json = serde_json::to_string(&snap).unwrap();
    let path = write(dir.path(), "edge.json", &json);
    let good = fixture("service.json");
    let out = dir.path().join("out");
    let (p, g, o) = (
        path.to_str().unwrap(),
        good.to_str().unwrap(),
        out.to_str().unwrap(),
    );
    for args in [
        vec!["report", p],
        vec!["flamegraph", p, "-o", "-"],
        vec!["flamegraph", p, "--folded", "-o", "-"],
        vec!["diff", g, p, "--json"],
        vec!["diff", p, g],
        vec!["html", p, "-o", o],
        vec!["chains", p, "--json"],
    ] {
        let out = run(&args);
        assert!(
            matches!(out.status.code(), Some(0 | 3)),
            "{args:?}: {}",
            text(&out.stderr)
        );
    }
}

/// The service fixture plus 2,000 tokio tasks (buckets of their own
/// names), each with live bytes at the same 3 sites of 64 frames of long
/// generic names: a 0.95 MB file whose flame graph's stacks the loader
/// once counted as 83.4 MB of names, over its text budget (77.5 MB), and
/// so refused for every command.
fn many_tasks_at_deep_sites() -> Snapshot {
    use turbowish_snapshot::schema::{Bucket, CodeLocation, Counters, OwnerSite, Site};
    let mut snap = service();
    let first_location = snap.locations.len() as u32;
    for i in 0..192u32 {
        snap.locations.push(CodeLocation {
            id: first_location + i,
            address: 0x7f00_0000_0000 + u64::from(i) * 16,
            lines: vec![SourceLine {
                function: format!(
                    "bank_service::pipeline::stages::generic::Stage<alloc::sync::Arc<tokio::sync::Mutex<std::collections::HashMap<u64, alloc::vec::Vec<u8>>>>>::poll_step_{i}::{{{{closure}}}}"
                ),
                file: Some("src/pipeline/stages/generic_stage.rs".to_owned()),
                line: Some(100 + i),
            }],
        });
    }
    let first_site = snap.sites.len() as u32;
    for s in 0..3u32 {
        snap.sites.push(Site {
            id: first_site + s,
            stack: (0..64).map(|j| first_location + s * 64 + j).collect(),
            live_bytes: 2_000 << 16,
            live_blocks: 2_000 * 16,
            samples: 2_000,
        });
    }
    for t in 0..2_000u64 {
        let owner = Owner::TokioTask(1_000 + t);
        snap.buckets.push(Bucket {
            owner,
            name: format!("tokio task {}", 1_000 + t),
            memory: Counters {
                live_bytes: 3 << 16,
                live_blocks: 48,
                total_bytes: 3 << 16,
                total_blocks: 48,
                peak_live_bytes: 3 << 16,
            },
        });
        for s in 0..3 {
            snap.owner_sites.push(OwnerSite {
                owner,
                site: first_site + s,
                live_bytes: 1 << 16,
                live_blocks: 16,
            });
        }
    }
    snap
}

/// Every command but `flamegraph --folded` reads a snapshot of 2,000 tasks
/// at the same deep sites, whose flame graph spells out more names than
/// its file's budget (the loader once refused it for every command); the
/// folded text, which would spell them all out, is refused with one line
/// naming the field and the limit. Within 256 MiB each.
#[test]
fn many_tasks_at_shared_deep_sites_are_read_by_every_command_but_folded() {
    let dir = tempfile::tempdir().unwrap();
    let json = serde_json::to_string(&many_tasks_at_deep_sites()).unwrap();
    assert!((800_000..1_000_000).contains(&json.len()), "{}", json.len());
    let path = write(dir.path(), "many.json", &json);
    let p = path.to_str().unwrap();
    let svg = dir.path().join("heap.svg");
    let folded = dir.path().join("heap.folded");
    let page = dir.path().join("heap.html");
    let pprof = dir.path().join("heap.pb.gz");
    // The fixture's deadlock: `chains` says so with status 3.
    for (args, status) in [
        (vec!["report", p], 0),
        (vec!["report", p, "--task", "tokio task 1999"], 0),
        (vec!["chains", p], 3),
        (vec!["chains", p, "--json"], 3),
        (vec!["diff", p, p], 0),
        (
            vec![
                "export",
                "--format",
                "pprof",
                p,
                "-o",
                pprof.to_str().unwrap(),
            ],
            0,
        ),
        (vec!["flamegraph", p, "-o", svg.to_str().unwrap()], 0),
        (vec!["html", p, "-o", page.to_str().unwrap()], 0),
    ] {
        let out = run(&args);
        assert_eq!(
            out.status.code(),
            Some(status),
            "{args:?}: {}",
            text(&out.stderr)
        );
        assert!(
            !text(&out.stderr).contains("refused"),
            "{args:?}: {}",
            text(&out.stderr)
        );
    }
    // Every owner drawn, its number not taken for a count by inferno.
    let svg = std::fs::read_to_string(&svg).unwrap();
    assert!(
        svg.contains("<title>tokio task\u{a0}1999 ("),
        "no task 1999"
    );
    let out = run(&["flamegraph", p, "--folded", "-o", folded.to_str().unwrap()]);
    let err = assert_one_line_error(&out, "flamegraph --folded");
    assert!(err.contains("field `owner_sites`"), "{err}");
    assert!(!folded.exists());
}
