//! The pprof export read by a real client: `go tool pprof` (Debian's
//! `golang-go`, which `.ci/run` installs) on a profile exported from a
//! snapshot taken here, in heap-walk mode with every allocation sampled.
//!
//! On a machine without `go` these tests say so on stderr and check
//! nothing, unless `CI` or `TURBOWISH_REQUIRE_GO` is set, when a missing
//! `go` fails them.

#[path = "../turbowish-report/tests/cli_support/mod.rs"]
mod cli_support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use cli_support::{run_ok, text};
use turbowish_alloc::TurboWish;

#[global_allocator]
static A: TurboWish = TurboWish::system().heap_walk().sample_interval(1);

/// What the `cache-filler` task keeps: a big buffer and some strings.
struct Cache {
    _buffer: Box<[u8]>,
    _entries: Vec<String>,
}

/// Bytes of the cache's buffer: most of the program's live memory.
const BUFFER: usize = 1024 * 1024;

impl Default for Cache {
    /// A trait method: its name, `<pprof_go::Cache as
    /// core::default::Default>::default`, is one pprof's C++ heuristics
    /// cut to `::default` when the export lets them.
    #[inline(never)]
    fn default() -> Cache {
        Cache {
            _buffer: vec![7u8; BUFFER].into_boxed_slice(),
            _entries: (0..64).map(|i| format!("entry {i}")).collect(),
        }
    }
}

static READY: AtomicBool = AtomicBool::new(false);

/// A snapshot of a task holding its cache, with a heap walk.
fn snapshot(dir: &Path) -> PathBuf {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        turbowish_trace::spawn("cache-filler", async {
            let cache = Cache::default();
            READY.store(true, Ordering::SeqCst);
            std::future::pending::<()>().await;
            drop(cache);
        });
        let deadline = Instant::now() + Duration::from_secs(60);
        while !READY.load(Ordering::SeqCst) {
            assert!(Instant::now() < deadline, "the task did not start");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    });
    let path = turbowish_capture::snapshot_to_dir(dir).unwrap();
    runtime.shutdown_background();
    path
}

/// `go`, or `None` (after saying so) when there is none and none is
/// required.
fn go() -> Option<PathBuf> {
    let on_path = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .map(|dir| dir.join("go"))
        .chain([PathBuf::from("/usr/lib/go/bin/go")])
        .find(|path| path.is_file());
    if on_path.is_some() {
        return on_path;
    }
    let required =
        std::env::var_os("CI").is_some() || std::env::var_os("TURBOWISH_REQUIRE_GO").is_some();
    assert!(
        !required,
        "no go on PATH: install Debian's `golang-go` package (.ci/run does)"
    );
    eprintln!("note: no go on PATH: the profile is not checked with go tool pprof");
    None
}

/// `go tool pprof <flags> <profile>`'s standard output; it must succeed.
fn pprof(go: &Path, flags: &[&str], profile: &Path) -> String {
    let home = tempfile::tempdir().unwrap();
    let out = Command::new(go)
        .args(["tool", "pprof"])
        .args(flags)
        .arg(profile)
        // pprof may keep state under $HOME; none of it is wanted here.
        .env("HOME", home.path())
        .env("PPROF_TMPDIR", home.path())
        .output()
        .expect("go runs");
    assert!(
        out.status.success(),
        "go tool pprof {flags:?} failed:\n{}",
        text(&out.stderr)
    );
    text(&out.stdout)
}

/// The exported profile of a snapshot taken once for all the tests here
/// (one heap walk, one task), written into a temporary directory.
fn exported() -> (tempfile::TempDir, PathBuf) {
    static PROFILE: OnceLock<Vec<u8>> = OnceLock::new();
    let bytes = PROFILE.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let snap = snapshot(dir.path());
        let out = run_ok(&[
            "export",
            "--format",
            "pprof",
            snap.to_str().unwrap(),
            "-o",
            "-",
        ]);
        // A test build has line tables: no advice to build with them.
        assert!(
            !text(&out.stderr).contains("line-tables-only"),
            "{}",
            text(&out.stderr)
        );
        out.stdout
    });
    let dir = tempfile::tempdir().unwrap();
    let profile = dir.path().join("heap.pb.gz");
    std::fs::write(&profile, bytes).unwrap();
    (dir, profile)
}

const USER_FUNCTION: &str = "<pprof_go::Cache as core::default::Default>::default";

#[test]
fn go_tool_pprof_top_starts_at_the_users_function_with_its_full_name() {
    let Some(go) = go() else { return };
    let (_dir, profile) = exported();
    let top = pprof(&go, &["-top", "-sample_index=inuse_space"], &profile);
    // The rows after the header `flat flat% sum% cum cum%`.
    let rows: Vec<&str> = top
        .lines()
        .skip_while(|l| !l.trim_start().starts_with("flat"))
        .skip(1)
        .collect();
    let first = rows.first().unwrap_or_else(|| panic!("no rows:\n{top}"));
    assert!(first.ends_with(USER_FUNCTION), "{top}");
    for row in &rows {
        // The function: after the five figures (it may hold spaces).
        let function = row.split_whitespace().skip(5).collect::<Vec<_>>().join(" ");
        for allocator in [
            "__rust_alloc",
            "__rustc::",
            "alloc::alloc::",
            "turbowish_alloc::",
            "<turbowish_alloc::",
            "malloc",
        ] {
            assert!(
                !function.starts_with(allocator),
                "{allocator} in -top:\n{top}"
            );
        }
        assert!(!function.starts_with("::"), "a collapsed name:\n{top}");
    }
}

#[test]
fn go_tool_pprof_traces_and_tags_show_the_task_and_who_retains_it() {
    let Some(go) = go() else { return };
    let (_dir, profile) = exported();
    let traces = pprof(&go, &["-traces", "-sample_index=inuse_space"], &profile);
    // The sample holding the buffer: its leaf is the user's function, its
    // labels the allocating and the retaining task.
    // A trace: its labels (`key:  value`), then its value and leaf on one
    // line, then the callers.
    let is_label = |l: &str| {
        l.trim_start()
            .split_once(":  ")
            .is_some_and(|(key, _)| key.chars().all(|c| c.is_alphanumeric() || c == '_'))
    };
    let trace = traces
        .split("-----------+")
        .find(|t| {
            t.lines()
                .skip(1)
                .find(|l| !is_label(l))
                .is_some_and(|leaf| leaf.ends_with(USER_FUNCTION))
        })
        .unwrap_or_else(|| panic!("no trace with {USER_FUNCTION} as its leaf:\n{traces}"));
    let label = |key: &str| {
        trace
            .lines()
            .find(|l| l.trim_start().starts_with(&format!("{key}:")))
            .map(|l| l.split_once(':').unwrap().1.trim().to_owned())
    };
    assert_eq!(label("task").as_deref(), Some("cache-filler"), "{trace}");
    assert_eq!(
        label("retained_by").as_deref(),
        Some("cache-filler"),
        "{trace}"
    );

    let tags = pprof(&go, &["-tags", "-sample_index=inuse_space"], &profile);
    for key in ["task", "retained_by"] {
        let section: String = tags
            .lines()
            .skip_while(|l| !l.trim_start().starts_with(&format!("{key}:")))
            .skip(1)
            .take_while(|l| !l.trim().is_empty())
            .collect::<Vec<_>>()
            .join("\n");
        // The task's row (`  1.0MB (96.34%): cache-filler`): at least
        // its buffer's megabyte.
        let row = section
            .lines()
            .find(|l| l.trim_end().ends_with(": cache-filler"))
            .unwrap_or_else(|| panic!("no {key}:cache-filler row:\n{tags}"));
        assert!(row.trim_start().starts_with("1.0MB ("), "{tags}");
    }
}
