//! Shared by the `cli_*` tests: the fixture generator, a runner for the
//! built `turbowish` binary, a pprof decoder built from pprof's
//! `profile.proto`, and `check_all_commands`, the assertions that must hold
//! for any snapshot (fixtures here, the examples' snapshots in the root
//! package's `tests/examples_snapshots.rs`, which includes this module).

// Each test binary uses a different part of this module.
#![allow(dead_code)]

pub(crate) mod browser;
pub(crate) mod fixtures;

use std::collections::{BTreeMap, HashMap};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use turbowish_report::flame::FoldedStacks;
use turbowish_snapshot::format::human_bytes;
use turbowish_snapshot::Snapshot;

/// The directory of the checked-in fixtures (for this package's tests).
pub(crate) fn fixture_dir() -> PathBuf {
    // The format crate keeps the sample files of the format.
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../turbowish-snapshot/tests/fixtures")
}

/// Path of a checked-in fixture.
pub(crate) fn fixture(name: &str) -> PathBuf {
    fixture_dir().join(name)
}

/// The built `turbowish` binary. Cargo names it to this package's tests;
/// another package's tests (the root's `examples_snapshots`) find it in
/// their own target directory, where `cargo test --workspace --all-targets`
/// builds it.
pub(crate) fn turbowish_binary() -> PathBuf {
    if let Some(path) = option_env!("CARGO_BIN_EXE_turbowish") {
        return PathBuf::from(path);
    }
    let exe = std::env::current_exe().expect("the test binary's path");
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target/<profile>/deps");
    let path = profile_dir.join(format!("turbowish{}", std::env::consts::EXE_SUFFIX));
    assert!(
        path.exists(),
        "{} is missing: build it with `cargo test --workspace --all-targets` (or `cargo build -p turbowish-report --bin turbowish`)",
        path.display()
    );
    path
}

/// Runs `turbowish` with `args`, feeding `stdin`.
pub(crate) fn run(args: &[&str], stdin: &[u8]) -> Output {
    let mut child = Command::new(turbowish_binary())
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("turbowish runs");
    let mut input = child.stdin.take().expect("stdin is piped");
    // The command may exit before reading all of standard input.
    let _ = input.write_all(stdin);
    drop(input);
    child.wait_with_output().expect("turbowish finishes")
}

/// Runs `turbowish` with `args` and no input.
pub(crate) fn run_ok(args: &[&str]) -> Output {
    let out = run(args, b"");
    assert_eq!(
        out.status.code(),
        Some(0),
        "turbowish {args:?} failed: {}",
        text(&out.stderr)
    );
    out
}

/// Bytes as text (lossy).
pub(crate) fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Asserts the shape of a failed run: status 2 and exactly one stderr line
/// `turbowish: ...`, no panic.
pub(crate) fn assert_one_line_error(out: &Output, what: &str) -> String {
    let stderr = text(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(2),
        "{what}: expected exit 2, stderr: {stderr}"
    );
    assert_eq!(stderr.lines().count(), 1, "{what}: stderr: {stderr}");
    assert!(
        stderr.starts_with("turbowish: "),
        "{what}: stderr: {stderr}"
    );
    assert!(!stderr.contains("panicked"), "{what}: stderr: {stderr}");
    assert!(out.stdout.is_empty(), "{what}: stdout not empty");
    stderr
}

/// Live bytes per owner name, as the report groups them: tasks by name,
/// buckets by name.
pub(crate) fn live_by_owner(snap: &Snapshot) -> BTreeMap<String, u64> {
    let mut map = BTreeMap::new();
    for t in &snap.tasks {
        *map.entry(t.name.clone()).or_default() += t.memory.live_bytes;
    }
    for b in &snap.buckets {
        *map.entry(b.name.clone()).or_default() += b.memory.live_bytes;
    }
    map
}

/// XML text as inferno writes names into the SVG.
pub(crate) fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Every command on the snapshot at `path`, checked for what must hold for
/// any snapshot: task names and byte figures in `report`, every chain and
/// cycle in `chains` with exit 3 exactly when there is a cycle, a DOT
/// graph, an SVG naming the owners, collapsed stacks summing to the
/// estimates, a pprof profile that decodes and sums to the estimates, and a
/// diff of the snapshot with itself showing no change.
pub(crate) fn check_all_commands(path: &Path) {
    let snap = Snapshot::load(path).expect("the snapshot loads");
    let p = path.to_str().expect("UTF-8 path");
    let dir = tempfile::tempdir().expect("temp dir");

    // report: every task name and used bucket, the total, the summary.
    let out = run_ok(&["report", p, "--top", "1000000"]);
    let report = text(&out.stdout);
    for t in &snap.tasks {
        assert!(report.contains(&t.name), "report lacks task {:?}", t.name);
    }
    for b in snap.buckets.iter().filter(|b| b.memory.total_blocks > 0) {
        assert!(report.contains(&b.name), "report lacks bucket {:?}", b.name);
    }
    let total_line = report
        .lines()
        .find(|l| l.starts_with("total "))
        .expect("a total line");
    assert!(
        total_line.contains(&human_bytes(snap.totals.live_bytes)),
        "{total_line}"
    );
    assert!(report.contains(&format!(
        "{} live in {} blocks",
        human_bytes(snap.totals.live_bytes),
        snap.totals.live_blocks
    )));
    assert_eq!(
        report.contains("DEADLOCK"),
        !snap.cycles.is_empty(),
        "{report}"
    );

    // report --json: exact figures.
    let out = run_ok(&["report", p, "--json", "--top", "1000000"]);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("report JSON");
    assert_eq!(json["totals"]["live_bytes"], snap.totals.live_bytes);
    assert_eq!(json["summary"]["tasks"], snap.tasks.len());
    let by_owner = live_by_owner(&snap);
    for row in json["rows"].as_array().expect("rows") {
        let name = row["name"].as_str().expect("row name");
        assert_eq!(row["memory"]["live_bytes"], by_owner[name], "row {name}");
    }

    // report --task for (up to 20) task names: exact counters, sites.
    let names: std::collections::BTreeSet<&String> = snap.tasks.iter().map(|t| &t.name).collect();
    for name in names.into_iter().take(20) {
        let out = run_ok(&["report", p, "--task", name, "--json"]);
        let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("task JSON");
        assert_eq!(json["memory"]["live_bytes"], by_owner[name.as_str()]);
        let text_out = text(&run_ok(&["report", p, "--task", name]).stdout);
        assert!(text_out.contains(&format!("task \"{name}\"")), "{text_out}");
        if snap.sample_interval == 0 {
            assert!(text_out.contains("sampling off"), "{text_out}");
        }
    }

    // chains: every chain and cycle, exit 3 exactly when deadlocked.
    let dot_path = dir.path().join("graph.dot");
    let out = run(&["chains", p, "--dot", dot_path.to_str().unwrap()], b"");
    let expected = if snap.cycles.is_empty() { 0 } else { 3 };
    assert_eq!(out.status.code(), Some(expected), "{}", text(&out.stderr));
    let chains = text(&out.stdout);
    for c in &snap.cycles {
        assert!(chains.contains(&c.text), "chains lacks cycle {}", c.text);
    }
    for c in &snap.chains {
        assert!(chains.contains(&c.text), "chains lacks chain {}", c.text);
    }
    let dot = std::fs::read_to_string(&dot_path).expect("DOT written");
    assert_mode_0600(&dot_path);
    assert!(dot.starts_with("digraph turbowish {") && dot.ends_with("}\n"));
    for r in snap
        .resources
        .iter()
        .filter(|r| !r.holders.is_empty() || !r.waiters.is_empty())
    {
        assert!(dot.contains(&format!("resource_{} [shape=box", r.id)));
    }
    assert_eq!(dot.contains("color=red"), !snap.cycles.is_empty());
    let out = run(&["chains", p, "--json"], b"");
    assert_eq!(out.status.code(), Some(expected));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("chains JSON");
    assert_eq!(json["cycles"].as_array().unwrap().len(), snap.cycles.len());
    assert_eq!(json["chains"].as_array().unwrap().len(), snap.chains.len());

    // flamegraph --folded: the counts sum to the estimates (or the counters).
    let folded_path = dir.path().join("stacks.folded");
    run_ok(&[
        "flamegraph",
        p,
        "-o",
        folded_path.to_str().unwrap(),
        "--folded",
    ]);
    let folded = std::fs::read_to_string(&folded_path).expect("folded written");
    assert_mode_0600(&folded_path);
    let mut sum = 0u64;
    let mut per_root: BTreeMap<String, u64> = BTreeMap::new();
    for line in folded.lines() {
        let (stack, count) = line.rsplit_once(' ').expect("`stack count`");
        let count: u64 = count.parse().expect("a byte count");
        sum += count;
        let root = stack.split(';').next().unwrap().to_owned();
        *per_root.entry(root).or_default() += count;
    }
    let expected_sum: u64 = if snap.owner_sites.is_empty() {
        by_owner.values().sum()
    } else {
        snap.owner_sites.iter().map(|os| os.live_bytes).sum()
    };
    assert_eq!(sum, expected_sum);
    if snap.owner_sites.is_empty() {
        for (name, &bytes) in by_owner.iter().filter(|(_, &b)| b > 0) {
            assert_eq!(per_root.get(name), Some(&bytes), "root {name}");
        }
    }

    // flamegraph SVG: valid enough, and naming every sizeable root.
    if sum > 0 {
        let svg_path = dir.path().join("flame.svg");
        run_ok(&["flamegraph", p, "-o", svg_path.to_str().unwrap()]);
        let svg = std::fs::read_to_string(&svg_path).expect("SVG written");
        assert_mode_0600(&svg_path);
        assert!(svg.starts_with("<?xml") || svg.starts_with("<svg"));
        assert!(svg.trim_end().ends_with("</svg>"));
        for (root, &bytes) in &per_root {
            // Frames narrower than inferno's minimum width are left out.
            if bytes * 100 >= sum {
                assert!(svg.contains(&xml_escape(root)), "SVG lacks {root}");
            }
        }
    }

    // export pprof: decodes, every sample labelled, sums to the estimates.
    let pb_path = dir.path().join("heap.pb.gz");
    run_ok(&[
        "export",
        "--format",
        "pprof",
        p,
        "-o",
        pb_path.to_str().unwrap(),
    ]);
    assert_mode_0600(&pb_path);
    let profile = decode_pprof(&std::fs::read(&pb_path).unwrap());
    assert_eq!(
        profile.sample_types,
        vec![
            ("inuse_objects".into(), "count".into()),
            ("inuse_space".into(), "bytes".into())
        ]
    );
    assert!(profile.samples.iter().all(|s| s.task.is_some()));
    let space: i64 = profile.samples.iter().map(|s| s.values[1]).sum();
    assert_eq!(space as u64, expected_sum);

    // diff with itself: nothing grew.
    let out = run_ok(&["diff", p, p, "--json"]);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("diff JSON");
    assert_eq!(json["total"]["live_bytes"], 0);
    assert_eq!(json["tasks"].as_array().unwrap().len(), 0);
    assert_eq!(json["sites"].as_array().unwrap().len(), 0);
}

/// Asserts that a file the tool wrote is readable by its owner only.
pub(crate) fn assert_mode_0600(path: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "{}", path.display());
    }
}

/// A decoded pprof profile, as far as the tests look at it.
#[derive(Debug)]
pub(crate) struct Pprof {
    pub(crate) sample_types: Vec<(String, String)>,
    pub(crate) period_type: (String, String),
    pub(crate) period: i64,
    pub(crate) default_sample_type: String,
    pub(crate) samples: Vec<PprofSample>,
    pub(crate) string_table: Vec<String>,
    /// Location id -> (address, [(function name, file, line)]).
    pub(crate) locations: HashMap<u64, (u64, Vec<PprofLine>)>,
    pub(crate) mappings: usize,
}

/// `(function name, file, line)` of a location line.
pub(crate) type PprofLine = (String, String, i64);

/// One decoded sample.
#[derive(Debug)]
pub(crate) struct PprofSample {
    pub(crate) location_ids: Vec<u64>,
    pub(crate) values: Vec<i64>,
    /// The `task` label's string.
    pub(crate) task: Option<String>,
}

/// Decodes a gzipped profile with a decoder built at run time from pprof's
/// `profile.proto` (tests/proto), independent of the encoder's own
/// message definitions.
pub(crate) fn decode_pprof(gz: &[u8]) -> Pprof {
    use prost_reflect::{DynamicMessage, Value};

    let mut raw = Vec::new();
    flate2::read::GzDecoder::new(gz)
        .read_to_end(&mut raw)
        .expect("gzip");
    let pool = protox::Compiler::with_file_resolver(ProfileProto)
        .open_file("profile.proto")
        .expect("profile.proto compiles")
        .descriptor_pool();
    let desc = pool
        .get_message_by_name("perftools.profiles.Profile")
        .expect("Profile message");
    let msg = DynamicMessage::decode(desc, raw.as_slice()).expect("a valid Profile");

    let list = |m: &DynamicMessage, field: &str| -> Vec<Value> {
        match m.get_field_by_name(field).expect(field).into_owned() {
            Value::List(v) => v,
            other => panic!("{field}: {other:?}"),
        }
    };
    let int = |m: &DynamicMessage, field: &str| -> i64 {
        match m.get_field_by_name(field).expect(field).into_owned() {
            Value::I64(v) => v,
            Value::U64(v) => v as i64,
            other => panic!("{field}: {other:?}"),
        }
    };
    let strings: Vec<String> = list(&msg, "string_table")
        .into_iter()
        .map(|v| v.as_str().expect("string").to_owned())
        .collect();
    let s = |i: i64| strings[i as usize].clone();
    let as_msg = |v: &Value| v.as_message().expect("message").clone();
    let value_type = |m: &DynamicMessage| (s(int(m, "type")), s(int(m, "unit")));

    let sample_types = list(&msg, "sample_type")
        .iter()
        .map(|v| value_type(&as_msg(v)))
        .collect();
    let period_type = match msg.get_field_by_name("period_type").unwrap().into_owned() {
        Value::Message(m) => value_type(&m),
        other => panic!("period_type: {other:?}"),
    };
    let samples = list(&msg, "sample")
        .iter()
        .map(|v| {
            let m = as_msg(v);
            let location_ids = list(&m, "location_id")
                .iter()
                .map(|v| v.as_u64().unwrap())
                .collect();
            let values = list(&m, "value")
                .iter()
                .map(|v| v.as_i64().unwrap())
                .collect();
            let task = list(&m, "label").iter().find_map(|l| {
                let l = as_msg(l);
                (s(int(&l, "key")) == "task").then(|| s(int(&l, "str")))
            });
            PprofSample {
                location_ids,
                values,
                task,
            }
        })
        .collect();
    let functions: HashMap<u64, (String, String)> = list(&msg, "function")
        .iter()
        .map(|v| {
            let f = as_msg(v);
            (
                int(&f, "id") as u64,
                (s(int(&f, "name")), s(int(&f, "filename"))),
            )
        })
        .collect();
    let locations = list(&msg, "location")
        .iter()
        .map(|v| {
            let l = as_msg(v);
            let lines = list(&l, "line")
                .iter()
                .map(|v| {
                    let line = as_msg(v);
                    let (name, file) = functions[&(int(&line, "function_id") as u64)].clone();
                    (name, file, int(&line, "line"))
                })
                .collect();
            (int(&l, "id") as u64, (int(&l, "address") as u64, lines))
        })
        .collect();
    Pprof {
        sample_types,
        period_type,
        period: int(&msg, "period"),
        default_sample_type: s(int(&msg, "default_sample_type")),
        samples,
        locations,
        mappings: list(&msg, "mapping").len(),
        string_table: strings,
    }
}

/// Serves `tests/proto/profile.proto` from the test binary itself, so the
/// decoder works for tests of any package that includes this module.
struct ProfileProto;

impl protox::file::FileResolver for ProfileProto {
    fn open_file(&self, name: &str) -> Result<protox::file::File, protox::Error> {
        match name {
            "profile.proto" => {
                protox::file::File::from_source(name, include_str!("../proto/profile.proto"))
            }
            _ => Err(protox::Error::file_not_found(name)),
        }
    }
}

/// The collapsed stacks of a snapshot, as the library folds them.
pub(crate) fn folded(snap: &Snapshot) -> FoldedStacks {
    FoldedStacks::new(snap)
}

/// `turbowish html` of the snapshot at `path`, written to a file mode 0600
/// and checked in Chromium (`browser::check_page`), with a screenshot
/// `target/turbowish-html/<name>.png`; then the page of the snapshot
/// against itself as `--base`, whose growth tables are empty. Returns the
/// page's DOM, or `None` without a browser.
pub(crate) fn check_html(path: &Path, name: &str) -> Option<String> {
    let snap = Snapshot::load(path).expect("the snapshot loads");
    let dir = tempfile::tempdir().unwrap();
    let page = dir.path().join(format!("{name}.html"));
    let p = path.to_str().unwrap();
    run_ok(&["html", p, "-o", page.to_str().unwrap()]);
    assert_mode_0600(&page);
    let html = std::fs::read_to_string(&page).unwrap();
    assert!(html.starts_with("<!DOCTYPE html>"), "{name}");
    assert!(
        !html.contains("id=\"diff\""),
        "{name}: no base, no growth view"
    );
    // Same page on standard output.
    let stdout = run_ok(&["html", p, "-o", "-"]).stdout;
    assert_eq!(text(&stdout), html, "{name}: -o - writes the same page");

    let same = dir.path().join(format!("{name}-self.html"));
    run_ok(&["html", p, "--base", p, "-o", same.to_str().unwrap()]);
    let self_diff = std::fs::read_to_string(&same).unwrap();
    assert!(self_diff.contains("<section id=\"diff\">"), "{name}");
    let body = |id: &str| -> usize {
        let Some(at) = self_diff.find(&format!("<table id=\"{id}\"")) else {
            return 0;
        };
        let table = &self_diff[at..];
        table[..table.find("</tbody>").unwrap()]
            .matches("<tr data-name=")
            .count()
    };
    assert_eq!(body("diff-tasks"), 0, "{name}: nothing grew");

    let loaded = browser::check_page(&page, &snap, name)?;
    Some(loaded.dom)
}

/// The address-space limit hostile inputs run under: what the CLI may
/// take on them (see CLI.md, "Limits").
pub(crate) const HOSTILE_MEMORY: u64 = 256 << 20;

/// Runs `turbowish` with `args` (standard input empty) under an
/// address-space limit of `memory` bytes (`RLIMIT_AS`, so an allocation
/// past it fails and the run aborts instead of swapping) and a CPU-time
/// limit of `cpu_seconds` (`RLIMIT_CPU`: the kernel ends a runaway run).
/// Returns the output and the wall time.
pub(crate) fn run_limited(
    args: &[&str],
    memory: u64,
    cpu_seconds: u64,
) -> (Output, std::time::Duration) {
    let mut command = Command::new(turbowish_binary());
    command
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    limit_child(&mut command, memory, cpu_seconds);
    let start = std::time::Instant::now();
    let out = command
        .output()
        .unwrap_or_else(|e| limited_spawn_failed(&e, memory, cpu_seconds));
    (out, start.elapsed())
}

/// Makes `command`'s child run under an address-space limit of `memory`
/// bytes (`RLIMIT_AS`: an allocation past it fails, so the run aborts
/// instead of swapping), a CPU-time limit of `cpu_seconds` (`RLIMIT_CPU`:
/// the kernel ends a runaway run) and no core file.
///
/// A limit can be lowered by anyone but raised past its hard limit only
/// by a privileged process: where the environment's hard limit is below
/// the one asked for (a container, a `ulimit -H`), the child cannot
/// start; [`limited_spawn_failed`] then says why.
pub(crate) fn limit_child(command: &mut Command, memory: u64, cpu_seconds: u64) {
    use std::os::unix::process::CommandExt;
    fn set(resource: libc::__rlimit_resource_t, value: u64) -> std::io::Result<()> {
        let limit = libc::rlimit {
            rlim_cur: value as libc::rlim_t,
            rlim_max: value as libc::rlim_t,
        };
        // SAFETY: `limit` is a valid rlimit for the call's duration.
        if unsafe { libc::setrlimit(resource, &limit) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(())
    }
    // SAFETY: the closure runs in the child between fork and exec, where
    // only async-signal-safe functions may be called: `setrlimit` is a
    // plain system call, and the closure allocates nothing.
    unsafe {
        command.pre_exec(move || {
            set(libc::RLIMIT_AS, memory)?;
            set(libc::RLIMIT_CPU, cpu_seconds)?;
            // A core file of an aborted run would only fill the disk.
            set(libc::RLIMIT_CORE, 0)
        });
    }
}

/// Fails a test whose child, limited by [`limit_child`], could not start:
/// when a limit asked for is over this environment's hard limit (which
/// only a privileged process may raise), the message names the limit and
/// both figures, rather than a bare `Operation not permitted`.
pub(crate) fn limited_spawn_failed(e: &std::io::Error, memory: u64, cpu_seconds: u64) -> ! {
    for (resource, name, value, unit, shell) in [
        (
            libc::RLIMIT_AS,
            "RLIMIT_AS",
            memory,
            "bytes of address space",
            "ulimit -Hv, in KiB",
        ),
        (
            libc::RLIMIT_CPU,
            "RLIMIT_CPU",
            cpu_seconds,
            "seconds of CPU time",
            "ulimit -Ht",
        ),
    ] {
        if let Some(hard) = hard_limit(resource) {
            if hard < value {
                panic!(
                    "turbowish could not start ({e}): it is to run under {name} = {value} {unit}, and this environment's hard limit is lower, {hard}, which only a privileged process may raise; run the tests where the hard limit is at least {value} (`{shell}`)"
                );
            }
        }
    }
    panic!("turbowish could not start: {e}");
}

/// The hard limit of `resource` for this process; `None` when unlimited
/// (or unknown).
fn hard_limit(resource: libc::__rlimit_resource_t) -> Option<u64> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `limit` is a valid rlimit to write for the call's duration.
    if unsafe { libc::getrlimit(resource, &mut limit) } != 0
        || limit.rlim_max == libc::RLIM_INFINITY
    {
        return None;
    }
    Some(limit.rlim_max)
}

/// The first character of `bytes` (as text) a terminal would obey rather
/// than show: a control character other than a line break or tab, a bidi
/// control or a noncharacter; `None` when there is none.
pub(crate) fn raw_control(bytes: &[u8]) -> Option<char> {
    if let Some(&b) = bytes
        .iter()
        .find(|&&b| (b < 0x20 && b != b'\n' && b != b'\t') || b == 0x7f)
    {
        return Some(char::from(b));
    }
    text(bytes)
        .chars()
        .find(|&c| c != '\n' && c != '\t' && turbowish_snapshot::format::shown_escaped(c))
}
