//! End-to-end runs of the `turbowish` binary on the checked-in fixtures:
//! the generic checks of `check_all_commands`, then the exact content of
//! each command's output.

mod cli_support;

use cli_support::{
    assert_one_line_error, check_all_commands, decode_pprof, fixture, fixtures, run, run_ok, text,
};
use turbowish_snapshot::format::human_bytes;
use turbowish_snapshot::Snapshot;

fn p(name: &str) -> String {
    fixture(name).to_str().unwrap().to_owned()
}

#[test]
fn fixtures_are_current() {
    let update = std::env::var_os("TURBOWISH_UPDATE_FIXTURES").is_some();
    for (name, snap) in fixtures::all() {
        let path = fixture(name);
        let expected = fixtures::to_json(&snap);
        if update {
            std::fs::write(&path, &expected).unwrap();
        }
        let found = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            found == expected,
            "{name} is stale: rerun with TURBOWISH_UPDATE_FIXTURES=1"
        );
        assert_eq!(Snapshot::load(&path).unwrap(), snap, "{name} round-trips");
    }
}

#[test]
fn every_command_holds_on_every_fixture() {
    for (name, _) in fixtures::all() {
        check_all_commands(&fixture(name));
    }
}

#[test]
fn report_groups_sorts_and_sums() {
    let out = text(&run_ok(&["report", &p("service.json")]).stdout);
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines[0].starts_with("TASK "), "{out}");
    // Biggest first: the cache, then main's bucket, then the three handlers.
    assert!(lines[1].starts_with("cache-filler "), "{out}");
    assert!(lines[1].contains("6.1 MiB"), "{}", lines[1]);
    assert!(lines[1].contains("src/cache.rs:101:9"));
    assert!(lines[2].starts_with("main (outside tasks) "), "{out}");
    let handlers = lines[3];
    assert!(handlers.starts_with("request-handler "), "{out}");
    // 3 tasks, 262144 + 393216 + 196608 bytes = 832.0 KiB, 122 blocks,
    // state `-` (idle and running), one location.
    let cols: Vec<&str> = handlers.split_whitespace().collect();
    assert_eq!(cols[1], "3");
    assert_eq!(&cols[2..4], ["832.0", "KiB"]);
    assert_eq!(cols[4], "122");
    assert!(
        handlers.contains("  -          src/server.rs:88:13"),
        "{handlers}"
    );
    // The unused overflow bucket is left out, the completed task is kept.
    assert!(!out.lines().any(|l| l.starts_with("overflow")));
    assert!(out.contains("startup"));
    // total = the snapshot's totals.
    let snap = Snapshot::load(&fixture("service.json")).unwrap();
    let total = lines.iter().find(|l| l.starts_with("total ")).unwrap();
    assert!(total.contains(&human_bytes(snap.totals.live_bytes)));
    assert!(total.contains(&snap.totals.live_blocks.to_string()));
    assert!(total.contains("10.0 MiB"), "process peak: {total}");
    // The summary paragraph.
    let summary = lines.last().unwrap();
    assert!(
        summary.starts_with("8.6 MiB live in 1825 blocks across 9 tasks (7 names)."),
        "{summary}"
    );
    assert!(
        summary.contains("1.3 MiB (14.7%) is outside TurboWish tasks"),
        "{summary}"
    );
    assert!(
        summary.contains("96.0 KiB (1.1%) is TurboWish's own"),
        "{summary}"
    );
    assert!(
        summary.contains("DEADLOCK: 1 cycle among tasks \"transfer-a\", \"transfer-b\""),
        "{summary}"
    );
}

#[test]
fn report_sort_and_top() {
    let out = text(&run_ok(&["report", &p("service.json"), "--sort", "name", "--top", "3"]).stdout);
    let names: Vec<&str> = out
        .lines()
        .skip(1)
        .map(|l| l.split("  ").next().unwrap())
        .collect();
    assert_eq!(
        names[..4],
        ["accept-loop", "audit-log", "cache-filler", "(7 more)"]
    );
    let out = text(
        &run_ok(&[
            "report",
            &p("service.json"),
            "--sort",
            "total",
            "--top",
            "1",
        ])
        .stdout,
    );
    assert!(
        out.lines().nth(1).unwrap().starts_with("request-handler "),
        "{out}"
    );
    let out = text(
        &run_ok(&[
            "report",
            &p("service.json"),
            "--sort",
            "blocks",
            "--top",
            "1",
        ])
        .stdout,
    );
    assert!(
        out.lines().nth(1).unwrap().starts_with("cache-filler "),
        "{out}"
    );
}

#[test]
fn report_task_shows_sites_by_name_and_id() {
    let out = text(&run_ok(&["report", &p("service.json"), "--task", "request-handler"]).stdout);
    assert!(
        out.starts_with(
            "task \"request-handler\" (3 tasks: #2, #3, #4): 832.0 KiB live in 122 blocks"
        ),
        "{out}"
    );
    // The JSON site (6 samples) before the response buffer (1 sample).
    let json_site = out.find("384.0 KiB   85.7%").expect(&out);
    let buffer_site = out.find("64.0 KiB   14.3%").expect(&out);
    assert!(json_site < buffer_site);
    assert!(out.contains("serde_json::de::from_slice<bank_service::api::Request>"));
    assert!(out.contains("bank_service::server::handle_request::{{closure}}  src/server.rs:131"));
    // Inlined lines: the innermost first.
    let inner = out.find("RawVecInner<A>::try_allocate_in").unwrap();
    let outer = out.find("Vec<T>::with_capacity_in").unwrap();
    assert!(inner < outer);

    let by_id = text(&run_ok(&["report", &p("service.json"), "--task", "5"]).stdout);
    assert!(
        by_id.starts_with("task \"cache-filler\" (#5): 6.1 MiB live"),
        "{by_id}"
    );
    assert!(by_id.contains("5.0 MiB  100.0%"), "{by_id}");
    let audit = text(&run_ok(&["report", &p("service.json"), "--task", "audit-log"]).stdout);
    assert!(audit.contains("\n      0x55d41a2024d0\n"), "{audit}");

    let bucket = text(
        &run_ok(&[
            "report",
            &p("service.json"),
            "--task",
            "main (outside tasks)",
        ])
        .stdout,
    );
    assert!(
        bucket.starts_with("bucket \"main (outside tasks)\""),
        "{bucket}"
    );
    assert!(bucket.contains("bank_service::main  src/main.rs:22"));

    let top1 = text(
        &run_ok(&[
            "report",
            &p("service.json"),
            "--task",
            "request-handler",
            "--top",
            "1",
        ])
        .stdout,
    );
    assert!(top1.ends_with("(1 more sites)\n"), "{top1}");

    let json: serde_json::Value = serde_json::from_slice(
        &run_ok(&[
            "report",
            &p("service.json"),
            "--task",
            "request-handler",
            "--json",
        ])
        .stdout,
    )
    .unwrap();
    assert_eq!(json["task_ids"], serde_json::json!([2, 3, 4]));
    assert_eq!(json["sampled_live_bytes"], 7 * 65_536);
    assert_eq!(json["sites"][0]["live_bytes"], 6 * 65_536);

    let none = text(&run_ok(&["report", &p("no-samples.json"), "--task", "cache-filler"]).stdout);
    assert!(none.contains("sampling off (sample_interval 0)"), "{none}");

    let err = assert_one_line_error(
        &run(&["report", &p("service.json"), "--task", "nobody"], b""),
        "no such task",
    );
    assert!(
        err.starts_with(&format!(
            "turbowish: {}: no task named or numbered \"nobody\"",
            p("service.json")
        )),
        "{err}"
    );
}

#[test]
fn report_reads_stdin() {
    let bytes = std::fs::read(fixture("service.json")).unwrap();
    let out = run(&["report", "-"], &bytes);
    assert_eq!(out.status.code(), Some(0));
    assert!(text(&out.stdout).contains("cache-filler"));
    let out = run(&["report", "-"], b"{\"format_version\": 1");
    let err = assert_one_line_error(&out, "truncated stdin");
    assert!(err.starts_with("turbowish: -:1:"), "{err}");
}

#[test]
fn chains_on_a_version_1_snapshot_says_ownership_is_missing() {
    let out = run(&["chains", &p("service-v1.json")], b"");
    assert_eq!(out.status.code(), Some(3));
    let path = p("service-v1.json");
    assert_eq!(
        text(&out.stderr),
        format!("turbowish: note: {path} is format version 1: it has no ownership, so every holder shown is as recorded\n")
    );
    let t = text(&out.stdout);
    assert!(t.contains("(exclusive, recorded)"), "{t}");
    assert!(!t.contains("may lock"), "{t}");
    // The JSON lists no lock owners either.
    let out = run(&["chains", &path, "--json"], b"");
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["may_lock"], serde_json::json!([]));
}

#[test]
fn chains_json_lists_who_may_lock() {
    let out = run(&["chains", &p("service.json"), "--json"], b"");
    assert_eq!(out.status.code(), Some(3));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let locks = json["may_lock"].as_array().unwrap();
    assert_eq!(locks.len(), 2, "{json}");
    assert_eq!(locks[0]["resource_label"], "Mutex \"accounts[1]\"");
    let names: Vec<&str> = locks[0]["owners"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["transfer-a", "transfer-b"]);
    assert_eq!(locks[0]["owners"][0]["path"], "future state +0x30");
}

#[test]
fn chains_prints_the_deadlock_with_frames_and_exits_3() {
    let out = run(&["chains", &p("service.json")], b"");
    assert_eq!(out.status.code(), Some(3));
    let t = text(&out.stdout);
    assert!(t.starts_with("1 deadlock, 2 wait chains\n"), "{t}");
    let deadlock = t.find("\ndeadlock: task \"transfer-a\"").expect(&t);
    let chain = t.find("\nchain 2: task \"audit-log\"").expect(&t);
    assert!(deadlock < chain);
    assert!(
        t.contains(concat!(
            "  1. task \"transfer-a\" (#6) waits 2.0s for Mutex \"accounts[2]\" (exclusive)\n",
            "       at src/bank.rs:52:27 in transfer › credit\n",
            "     Mutex \"accounts[2]\", created at src/bank.rs:20:9, is held by\n",
            "       task \"transfer-b\" (#7) since 2.0s (exclusive, recorded)\n",
            "         at src/bank.rs:48:27 in transfer › debit\n",
            "     may lock: task \"transfer-a\" (#6) at future state +0x38, task \"transfer-b\" (#7) at future state +0x30\n",
        )),
        "{t}"
    );
    // The chain into the deadlock is not spelled out twice.
    assert_eq!(t.matches("waits 2.0s for Mutex \"accounts[2]\"").count(), 1);
    assert!(t.contains(
        "which closes a cycle: deadlock\n  (its steps are those of the deadlock above)\n"
    ));
    assert!(
        t.contains(concat!(
            "  1. task \"audit-log\" (#8) waits 1.2s for Semaphore \"db-pool\" (1 permit)\n",
            "       at src/audit.rs:22:18 in flush\n",
            "     Semaphore \"db-pool\", created at src/db.rs:12:19, is held by\n",
            "       task \"request-handler\" (#3) since 0.3s (1 permit, recorded)\n",
            "         at src/db.rs:31:40 in handle_request › load_user\n",
            "         parked now in handle_request › run_query\n",
            "       and 4 holder(s) TurboWish counted but did not name\n",
        )),
        "{t}"
    );

    let out = run(&["chains", &p("no-samples.json")], b"");
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        text(&out.stdout),
        "0 deadlocks, 0 wait chains\nno task waits for a resource TurboWish tracks\n"
    );
}

#[test]
fn chains_dot_draws_the_graph_with_the_cycle_in_red() {
    let out = run(&["chains", &p("service.json"), "--dot", "-"], b"");
    assert_eq!(out.status.code(), Some(3));
    let dot = text(&out.stdout);
    assert!(dot.starts_with("digraph turbowish {\n"));
    assert!(
        dot.contains(
            "resource_2 [shape=box, label=\"Mutex \\\"accounts[2]\\\"\\nsrc/bank.rs:20:9\"];"
        ),
        "{dot}"
    );
    assert!(
        dot.contains("task_6 [shape=ellipse, label=\"transfer-a\\n#6\"];"),
        "{dot}"
    );
    // The unused mutex is not drawn.
    assert!(!dot.contains("config"));
    for edge in [
        "resource_1 -> task_6 [label=\"holds\", style=bold, color=red, fontcolor=red, penwidth=2];",
        "resource_2 -> task_7 [label=\"holds\", style=bold, color=red, fontcolor=red, penwidth=2];",
        "task_6 -> resource_2 [label=\"waits\", style=\"dashed,bold\", color=red, fontcolor=red, penwidth=2];",
        "task_7 -> resource_1 [label=\"waits\", style=\"dashed,bold\", color=red, fontcolor=red, penwidth=2];",
        "resource_3 -> task_3 [label=\"holds\"];",
        "task_8 -> resource_3 [label=\"waits\", style=dashed];",
    ] {
        assert!(dot.contains(edge), "{edge} in {dot}");
    }
    assert!(dot.contains("+4 unnamed holder(s)\\n0 permit(s) free"));
    assert_eq!(dot.matches(", color=red").count(), 4);

    let err = assert_one_line_error(
        &run(&["chains", &p("service.json"), "--dot", "-", "--json"], b""),
        "dot and json on stdout",
    );
    assert!(err.contains("--dot - and --json"));
}

#[test]
fn flamegraph_folds_stacks_rooted_at_owners() {
    let out = run_ok(&["flamegraph", &p("service.json"), "-o", "-", "--folded"]);
    assert!(out.stderr.is_empty());
    let folded = text(&out.stdout);
    assert!(folded.contains(
        "cache-filler;tokio::runtime::task::core::Core<T,S>::poll;bank_service::cache::fill::{{closure}};bank_service::cache::Cache::insert;alloc::vec::Vec<T>::with_capacity_in;alloc::raw_vec::RawVecInner<A>::try_allocate_in 5242880\n"
    ), "{folded}");
    // Three handlers' samples at one site merge into one stack.
    assert!(folded.contains(
        "request-handler;tokio::runtime::task::core::Core<T,S>::poll;bank_service::server::handle_request::{{closure}};serde_json::de::from_slice<bank_service::api::Request>;alloc::vec::Vec<T>::with_capacity_in;alloc::raw_vec::RawVecInner<A>::try_allocate_in 393216\n"
    ));
    // `;` inside a name cannot split a frame; unsymbolised frames show the address.
    assert!(folded.contains(
        "audit-log;tokio::runtime::task::core::Core<T,S>::poll;0x55d41a2024d0;bank_service::audit::write_entry<[u8, 64]> 131072\n"
    ), "{folded}");
    assert_eq!(folded.lines().count(), 6);

    let out = run_ok(&["flamegraph", &p("no-samples.json"), "-o", "-", "--folded"]);
    assert!(text(&out.stderr).contains("no sampled allocation sites"));
    let folded = text(&out.stdout);
    assert!(folded.contains("cache-filler 6400000\n"));
    assert!(folded.contains("request-handler 851968\n"));
    assert!(folded.contains("main (outside tasks) 1310720\n"));
    assert!(!folded.contains("startup"), "no live bytes, no stack");

    let dir = tempfile::tempdir().unwrap();
    let svg = dir.path().join("flame.svg");
    run_ok(&[
        "flamegraph",
        &p("service.json"),
        "-o",
        svg.to_str().unwrap(),
        "--title",
        "bank heap",
    ]);
    let svg = std::fs::read_to_string(svg).unwrap();
    assert!(svg.contains("bank heap"));
    assert!(svg.contains("cache-filler (5,242,880 bytes"), "{svg}");
}

#[test]
fn diff_shows_growth_per_task_and_site_matched_by_stack() {
    let out = run_ok(&["diff", &p("service.json"), &p("service-later.json")]);
    let t = text(&out.stdout);
    assert!(out.stderr.is_empty());
    assert!(t.starts_with("OLD: /srv/bank/target/release/bank-service (pid 4242), NEW: /srv/bank/target/release/bank-service (pid 4242), taken 60.0s later\n"), "{t}");
    assert!(
        t.contains("live: 8.6 MiB -> 11.6 MiB (+3.0 MiB), blocks: 1825 -> 2706 (+881)"),
        "{t}"
    );
    let tasks: Vec<&str> = t
        .lines()
        .skip_while(|l| !l.starts_with("growth by task"))
        .skip(2)
        .take_while(|l| !l.is_empty())
        .collect();
    assert_eq!(tasks.len(), 3, "{t}");
    assert!(
        tasks[0].trim_start().starts_with("+3.0 MiB") && tasks[0].ends_with("1->1  cache-filler"),
        "{}",
        tasks[0]
    );
    assert!(
        tasks[1].contains("+128.0 KiB") && tasks[1].ends_with("3->4  request-handler"),
        "{}",
        tasks[1]
    );
    assert!(
        tasks[2].contains("-128.0 KiB") && tasks[2].ends_with("audit-log"),
        "{}",
        tasks[2]
    );
    // Sites match by stack although every id changed: the cache site grew
    // by 48 samples, the request site by 1, the audit site went away.
    let json: serde_json::Value = serde_json::from_slice(
        &run_ok(&[
            "diff",
            &p("service.json"),
            &p("service-later.json"),
            "--json",
        ])
        .stdout,
    )
    .unwrap();
    let sites = json["sites"].as_array().unwrap();
    assert_eq!(sites.len(), 3, "{sites:?}");
    assert_eq!(sites[0]["growth"]["live_bytes"], 48 * 65_536);
    assert_eq!(
        sites[0]["frames"][2],
        "bank_service::cache::Cache::insert src/cache.rs:57"
    );
    assert_eq!(sites[1]["growth"]["live_bytes"], 65_536);
    assert_eq!(sites[2]["growth"]["live_bytes"], -2 * 65_536);
    assert_eq!(sites[2]["growth"]["new_live_bytes"], 0);
    assert_eq!(json["new_is_older"], false);
}

#[test]
fn diff_refuses_other_executables_and_flags_reversed_time() {
    let dir = tempfile::tempdir().unwrap();
    let mut other = fixtures::service_later();
    other.process.executable = "/usr/bin/other".to_owned();
    let other_path = dir.path().join("other.json");
    std::fs::write(&other_path, fixtures::to_json(&other)).unwrap();
    let other_path = other_path.to_str().unwrap();

    let err = assert_one_line_error(
        &run(&["diff", &p("service.json"), other_path], b""),
        "different executables",
    );
    assert!(
        err.contains(
            "different executables (/srv/bank/target/release/bank-service and /usr/bin/other)"
        ),
        "{err}"
    );
    assert!(err.contains("--force"));
    let out = run_ok(&["diff", &p("service.json"), other_path, "--force"]);
    assert!(text(&out.stdout).contains("warning: the snapshots are of different executables"));

    let out = run_ok(&["diff", &p("service-later.json"), &p("service.json")]);
    assert!(
        text(&out.stderr).contains("warning: NEW"),
        "{}",
        text(&out.stderr)
    );
    assert!(text(&out.stdout).contains("taken 60.0s EARLIER"));
    assert!(text(&out.stdout).contains("-3.0 MiB"));

    let err = assert_one_line_error(&run(&["diff", "-", "-"], b""), "two stdins");
    assert!(err.contains("both be standard input"));

    let out = run_ok(&["diff", &p("service.json"), &p("no-samples.json")]);
    assert!(text(&out.stdout).contains("(no sites: a snapshot was taken with sampling off)"));

    // Sampling on, but nothing sampled live: not blamed on sampling.
    let mut empty = Snapshot::load(std::path::Path::new(&p("service.json"))).unwrap();
    empty.sites.clear();
    empty.owner_sites.clear();
    empty.locations.clear();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("no-live-samples.json");
    empty
        .to_writer(std::fs::File::create(&path).unwrap())
        .unwrap();
    let out = run_ok(&["diff", &p("service.json"), path.to_str().unwrap()]);
    assert!(
        text(&out.stdout).contains("(no sites: one of the snapshots has no live sampled block)"),
        "{}",
        text(&out.stdout)
    );
}

#[test]
fn export_pprof_carries_stacks_and_task_labels() {
    let out = run_ok(&["export", "--format", "pprof", &p("service.json"), "-o", "-"]);
    let profile = decode_pprof(&out.stdout);
    assert_eq!(profile.string_table[0], "");
    assert_eq!(profile.period, 65_536);
    assert_eq!(
        profile.period_type,
        ("space".to_owned(), "bytes".to_owned())
    );
    assert_eq!(profile.default_sample_type, "inuse_space");
    assert_eq!(profile.samples.len(), 8);
    assert_eq!(profile.mappings, 1);
    let cache = profile
        .samples
        .iter()
        .find(|s| s.task.as_deref() == Some("cache-filler"))
        .unwrap();
    assert_eq!(cache.values, vec![80 * 16, 80 * 65_536]);
    // Leaf first, and the leaf is the code that asked for memory: the
    // standard library's allocation frames (`RawVecInner` inlined into
    // `Vec::with_capacity_in`) are left out, so pprof's -top starts there.
    let leaf = &profile.locations[&cache.location_ids[0]];
    assert_eq!(leaf.0, 0x55d4_1a20_1b40);
    assert_eq!(
        leaf.1,
        [(
            "bank_service::cache::Cache::insert".to_owned(),
            "src/cache.rs".to_owned(),
            57
        )]
    );
    assert_eq!(cache.location_ids.len(), 3);
    let root = &profile.locations[cache.location_ids.last().unwrap()];
    assert_eq!(root.1[0].0, "tokio::runtime::task::core::Core<T,S>::poll");
    let handlers: i64 = profile
        .samples
        .iter()
        .filter(|s| s.task.as_deref() == Some("request-handler"))
        .map(|s| s.values[1])
        .sum();
    assert_eq!(handlers, 7 * 65_536);
    assert!(profile
        .samples
        .iter()
        .any(|s| s.task.as_deref() == Some("main (outside tasks)")));

    let out = run_ok(&["export", &p("no-samples.json"), "-o", "-"]);
    assert!(text(&out.stderr).contains("no sampled allocation sites"));
    let profile = decode_pprof(&out.stdout);
    let cache = profile
        .samples
        .iter()
        .find(|s| s.task.as_deref() == Some("cache-filler"))
        .unwrap();
    assert_eq!(cache.values, vec![1_450, 6_400_000]);
    assert_eq!(
        profile.locations[&cache.location_ids[0]].1[0].0,
        "cache-filler"
    );
}

#[test]
fn export_without_line_tables_says_how_to_get_full_stacks() {
    // As symbolised in a release build without debug info: names only.
    let mut snap = Snapshot::load(&fixture("service.json")).unwrap();
    for line in snap.locations.iter_mut().flat_map(|l| &mut l.lines) {
        line.file = None;
        line.line = None;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("symbols-only.json");
    std::fs::write(&path, fixtures::to_json(&snap)).unwrap();
    let out = run_ok(&["export", path.to_str().unwrap(), "-o", "-"]);
    let stderr = text(&out.stderr);
    let first = stderr.lines().next().unwrap_or_default();
    assert!(
        first.contains("build with `debug = \"line-tables-only\"` for full stacks"),
        "{stderr}"
    );
    // With line tables, no such note.
    let out = run_ok(&["export", &p("service.json"), "-o", "-"]);
    assert_eq!(text(&out.stderr), "");
}

#[test]
fn output_files_replace_old_ones_with_mode_0600() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("heap.pb.gz");
    std::fs::write(&out, b"old").unwrap();
    run_ok(&["export", &p("service.json"), "-o", out.to_str().unwrap()]);
    cli_support::assert_mode_0600(&out);
    assert_eq!(&std::fs::read(&out).unwrap()[..2], &[0x1f, 0x8b]);
    // Only the output is left: no temporary file.
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);

    let missing_dir = dir.path().join("no/such/dir/out.svg");
    let o = run(
        &[
            "flamegraph",
            &p("service.json"),
            "-o",
            missing_dir.to_str().unwrap(),
        ],
        b"",
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o.stderr).starts_with("turbowish: "));
    assert!(text(&o.stderr).contains("cannot write"));
}

#[test]
fn report_shows_retained_and_shared_only_with_a_walk() {
    let plain = text(&run_ok(&["report", &p("service.json")]).stdout);
    assert!(
        !plain.contains("RETAINED") && !plain.contains("heap walk"),
        "{plain}"
    );

    let out = text(&run_ok(&["report", &p("service-walk.json"), "--top", "100"]).stdout);
    let lines: Vec<&str> = out.lines().collect();
    let header: Vec<&str> = lines[0].split_whitespace().collect();
    assert_eq!(
        header,
        [
            "TASK",
            "TASKS",
            "LIVE",
            "BLOCKS",
            "RETAINED",
            "SHARED",
            "ALLOCATED",
            "ALLOCS",
            "PEAK",
            "FUTURE",
            "STATE",
            "LOCATION"
        ]
    );
    // The three handlers: 128000 + 262144 + 65536 retained, 3 × 2 KiB shared.
    let handlers: Vec<&str> = lines
        .iter()
        .find(|l| l.starts_with("request-handler "))
        .unwrap()
        .split_whitespace()
        .collect();
    assert_eq!(&handlers[5..9], ["445.0", "KiB", "6.0", "KiB"]);
    // Buckets are no roots.
    let main: Vec<&str> = lines
        .iter()
        .find(|l| l.starts_with("main (outside tasks) "))
        .unwrap()
        .split_whitespace()
        .collect();
    assert_eq!(&main[7..9], ["-", "-"]);
    let total = lines.iter().find(|l| l.starts_with("total ")).unwrap();
    assert!(total.contains("6.6 MiB     8.0 KiB"), "{total}");
    assert!(
        lines.last().unwrap().contains(
            "The heap walk found 1.4 MiB (16.0%) in 214 blocks reachable from no task or root"
        ),
        "{out}"
    );

    let json: serde_json::Value =
        serde_json::from_slice(&run_ok(&["report", &p("service-walk.json"), "--json"]).stdout)
            .unwrap();
    let row = json["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "request-handler")
        .unwrap();
    assert_eq!(row["walk"]["retained"]["bytes"], 455_680);
    assert_eq!(row["walk"]["shared"]["blocks"], 3);
    assert_eq!(json["summary"]["unattributed"]["bytes"], 1_441_792);
    let plain: serde_json::Value =
        serde_json::from_slice(&run_ok(&["report", &p("service.json"), "--json"]).stdout).unwrap();
    assert!(plain["rows"][0].get("walk").is_none());
    assert!(plain["summary"].get("unattributed").is_none());
}

#[test]
fn report_task_shows_what_it_retains() {
    let out = text(&run_ok(&["report", &p("service-walk.json"), "--task", "cache-filler"]).stdout);
    assert!(
        out.contains(
            "heap walk: retains 6.0 MiB in 1420 blocks (freed if it ended now); shares 0 B in 0 blocks"
        ),
        "{out}"
    );
    // 78 samples of 64 KiB at site 0, of 6291456 retained bytes.
    assert!(
        out.contains("   4.9 MiB   81.2%    1248 blocks  site 0"),
        "{out}"
    );
    let census = out
        .lines()
        .find(|l| l.trim_start().starts_with("alloc::vec::Vec<u8> "))
        .unwrap();
    let cells: Vec<&str> = census.split_whitespace().collect();
    assert_eq!(
        cells,
        ["alloc::vec::Vec<u8>", "1400", "5.5", "MiB", "1.4", "MiB"]
    );

    let json: serde_json::Value = serde_json::from_slice(
        &run_ok(&[
            "report",
            &p("service-walk.json"),
            "--task",
            "transfer-b",
            "--json",
        ])
        .stdout,
    )
    .unwrap();
    let guards = json["walk"]["guards"].as_array().unwrap();
    assert_eq!(guards.len(), 1);
    assert_eq!(guards[0]["resource"], 2);
    assert_eq!(guards[0]["resource_label"], "Mutex \"accounts[2]\"");
    assert_eq!(guards[0]["path"], "transfer-b › (opaque state)");

    // A task that leaked, and a bucket: what nothing reaches.
    let out = text(&run_ok(&["report", &p("service-walk.json"), "--task", "audit-log"]).stdout);
    assert!(
        out.contains("; 128.0 KiB in 2 blocks it allocated is reachable from nothing (leaked?)"),
        "{out}"
    );
    let out = text(
        &run_ok(&[
            "report",
            &p("service-walk.json"),
            "--task",
            "main (outside tasks)",
        ])
        .stdout,
    );
    assert!(
        out.ends_with("heap walk: 1.2 MiB of it in 198 blocks is reachable from no task or root\n"),
        "{out}"
    );
    // Without a walk, `--task` says nothing of one.
    let out = text(&run_ok(&["report", &p("service.json"), "--task", "cache-filler"]).stdout);
    assert!(!out.contains("heap walk"), "{out}");
}
