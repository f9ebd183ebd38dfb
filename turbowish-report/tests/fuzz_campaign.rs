//! The fuzz target over the loader and every renderer: a mutation
//! campaign on stable Rust (issue #22).
//!
//! Each case takes a snapshot from the corpus (`tests/fuzz_corpus/`: the
//! fixtures and snapshots the examples wrote, from real runs), mutates it
//! (structure-aware edits of the JSON tree: hostile strings in names,
//! extreme numbers, dangling ids, lists repeated thousands of times, keys
//! removed, types changed, deep nesting; then byte edits: flips, cuts,
//! repeats, invalid UTF-8) and runs one `turbowish` command on it, as a
//! child process under the limits that are part of the target:
//!
//! * 256 MiB of address space (`RLIMIT_AS`): an allocation past it aborts
//!   the run, which fails the case;
//! * 10 s of wall time: a run over it is killed and fails the case;
//! * exit status 0, 2 or 3 only (1 would be a failed write, 101 a panic; a
//!   signal, an abort), one `turbowish: ` line on standard error for 2;
//! * no raw control, bidi or noncharacter in standard output or error
//!   (line breaks and tabs aside).
//!
//! It is guided by outcomes, not by coverage: a case that gets past the
//! loader (status 0 or 3) with an outcome (the command, exit status and
//! the shape of its messages) not seen before joins the corpus in memory
//! and is mutated further, so the campaign spreads over the renderers'
//! paths. (A coverage-guided engine needs
//! nightly Rust, `cargo fuzz`, or an AFL++ toolchain that cannot be
//! installed from a package registry here.)
//!
//! A run is `TURBOWISH_FUZZ_CASES` cases (default 100, a few seconds: the
//! workspace's tests run it so), so what it covers does not depend on the
//! machine's speed; `TURBOWISH_FUZZ_SECONDS` (default 1800) is only a
//! safety cap, and a run that reaches it before its last case fails,
//! saying how far it got. `TURBOWISH_FUZZ_SEED`
//! picks the mutations (default fixed: runs are repeatable);
//! `TURBOWISH_FUZZ_SAVE=DIR` writes every case with a new outcome there,
//! to grow the corpus; `TURBOWISH_FUZZ_VERBOSE=1` lists the outcomes;
//! `TURBOWISH_FUZZ_BINARY=PATH` runs another build of `turbowish` (an
//! older one, to see what the campaign finds there).
//! Failing cases are written to
//! `target/fuzz-failures/` with their command.
//!
//! ```text
//! TURBOWISH_FUZZ_CASES=50000 TURBOWISH_FUZZ_SECONDS=36000 \
//!     cargo test -p turbowish-report --test fuzz_campaign -- --nocapture
//! ```

mod cli_support;

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use cli_support::{
    limit_child, limited_spawn_failed, raw_control, turbowish_binary, HOSTILE_MEMORY,
};

/// The longest a case may run.
const WALL_LIMIT: Duration = Duration::from_secs(10);
/// The largest mutated snapshot (repeating lists grows them).
const MAX_CASE_BYTES: usize = 8 << 20;
/// The most cases kept in the corpus in memory.
const MAX_CORPUS: usize = 400;

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// splitmix64: small, seedable, good enough to pick mutations.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }

    fn one_in(&mut self, n: usize) -> bool {
        self.below(n) == 0
    }
}

const HOSTILE_STRINGS: &[&str] = &[
    "\u{1b}[31mred\u{1b}[0m",
    "\u{1b}]0;title\u{7}",
    "\u{1b}[2J\u{1b}[H",
    "\u{0}",
    "\u{7}",
    "\u{8}\u{8}\u{8}",
    "\u{7f}",
    "\u{9b}31m",
    "\u{85}",
    "\u{202e}evil",
    "\u{2066}\u{2069}",
    "\u{200f}",
    "\n",
    "\r\nturbowish: fake line",
    "\t",
    ";",
    "a;b;c",
    "\"",
    "\\",
    "<script>alert(1)</script>",
    "]]><!--",
    "&amp;&#0;",
    "\u{fffe}",
    "\u{1ffff}",
    "\u{fdd0}",
    "日本語",
    "",
    " ",
    "0x55d41a2024d0",
    "task #1",
    "main (outside tasks)",
];

const EXTREME_NUMBERS: &[&str] = &[
    "0",
    "1",
    "2",
    "3",
    "-1",
    "255",
    "65535",
    "4294967295",
    "4294967296",
    "9223372036854775807",
    "18446744073709551615",
    "18446744073709551616",
    "1e308",
    "-1e308",
    "0.5",
    "-0",
];

/// One step into a JSON tree.
#[derive(Clone)]
enum Step {
    Key(String),
    Index(usize),
}

fn paths(value: &Value, here: &mut Vec<Step>, out: &mut Vec<Vec<Step>>) {
    out.push(here.clone());
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                here.push(Step::Key(k.clone()));
                paths(v, here, out);
                here.pop();
            }
        }
        Value::Array(items) => {
            // Long lists: a sample of their entries is enough.
            let step = (items.len() / 64).max(1);
            for i in (0..items.len()).step_by(step) {
                here.push(Step::Index(i));
                paths(&items[i], here, out);
                here.pop();
            }
        }
        _ => {}
    }
}

fn at<'a>(value: &'a mut Value, path: &[Step]) -> &'a mut Value {
    let mut v = value;
    for step in path {
        v = match step {
            Step::Key(k) => &mut v[k.as_str()],
            Step::Index(i) => &mut v[*i],
        };
    }
    v
}

fn hostile_string(rng: &mut Rng, original: &str) -> String {
    let evil = *rng.pick(HOSTILE_STRINGS);
    match rng.below(5) {
        0 => evil.to_owned(),
        1 => format!("{original}{evil}"),
        2 => format!("{evil}{original}"),
        3 => evil.repeat(1 + rng.below(2000)),
        _ => {
            let cut = original
                .char_indices()
                .map(|(i, _)| i)
                .nth(rng.below(original.chars().count() + 1))
                .unwrap_or(original.len());
            format!("{}{evil}{}", &original[..cut], &original[cut..])
        }
    }
}

/// Numbers that keep a snapshot's types (most fields are `u64`, ids and
/// lines `u32`).
const VALID_NUMBERS: &[u64] = &[0, 1, 2, 3, 4, 5, 7, 8, 64, 4096, 65_536, 4_294_967_295];

/// One structure-aware edit of the tree: most keep the snapshot's types
/// (so the case gets past the loader to the renderers), one in five
/// breaks them.
fn mutate_tree(rng: &mut Rng, root: &mut Value, donor: &Value) {
    let mut all = Vec::new();
    paths(root, &mut Vec::new(), &mut all);
    let path = rng.pick(&all).clone();
    let node = at(root, &path);
    let keep_types = !rng.one_in(8);
    // Strings under these keys are enum variants: a hostile string there
    // is the wrong shape.
    let variant = matches!(
        path.last(),
        Some(Step::Key(k)) if ["kind", "state", "end", "handle", "access"].contains(&k.as_str())
    );
    match node {
        Value::String(_) if keep_types && variant => {}
        Value::String(s) if keep_types => *s = hostile_string(rng, s),
        Value::Number(_) if keep_types => {
            *node = match rng.below(8) {
                0 => Value::from(u64::MAX),
                1 => Value::from(rng.next() % 100_000),
                _ => Value::from(*rng.pick(VALID_NUMBERS)),
            }
        }
        Value::Array(items) if keep_types && !items.is_empty() => match rng.below(5) {
            0 | 1 => {
                // Repeat an entry: long lists, self-repeating stacks.
                let item = items[rng.below(items.len())].clone();
                let times = 1usize << rng.below(14);
                let at = rng.below(items.len() + 1);
                items.splice(at..at, std::iter::repeat_n(item, times));
            }
            2 => {
                items.remove(rng.below(items.len()));
            }
            3 => items.clear(),
            _ => {
                let a = rng.below(items.len());
                let b = rng.below(items.len());
                items.swap(a, b);
            }
        },
        Value::Object(map) if keep_types && !map.contains_key("kind") => {
            map.insert("unknown\u{1b}".to_owned(), Value::from(vec![1, 2, 3]));
        }
        Value::Object(_) if keep_types => {}
        Value::Null if keep_types => *node = Value::from(*rng.pick(VALID_NUMBERS)),
        Value::Object(map) if !map.is_empty() && rng.one_in(2) => {
            let keys: Vec<String> = map.keys().cloned().collect();
            let key = rng.pick(&keys).clone();
            map.remove(&key);
        }
        _ => {
            *node = match rng.below(9) {
                0 => Value::Null,
                1 => Value::Array(Vec::new()),
                2 => serde_json::json!({}),
                3 => Value::from(*rng.pick(HOSTILE_STRINGS)),
                4 => Value::Bool(true),
                5 => {
                    // Deep nesting.
                    let mut v = Value::from(1);
                    for _ in 0..rng.below(200) {
                        v = Value::Array(vec![v]);
                    }
                    v
                }
                6 | 7 => {
                    // A value from another snapshot at the same place.
                    let mut d = donor;
                    for step in &path {
                        d = match step {
                            Step::Key(k) => &d[k.as_str()],
                            Step::Index(i) => &d[*i],
                        };
                    }
                    d.clone()
                }
                _ => rng.pick(EXTREME_NUMBERS).parse().unwrap_or(Value::Null),
            };
        }
    }
}

/// One edit of the bytes.
fn mutate_bytes(rng: &mut Rng, bytes: &mut Vec<u8>) {
    if bytes.is_empty() {
        bytes.extend_from_slice(b"{}");
    }
    let i = rng.below(bytes.len());
    match rng.below(7) {
        0 => bytes[i] = rng.next() as u8,
        1 => bytes[i] = *rng.pick(&[0u8, 7, 0x1b, b'\n', b'"', b'\\', b'{', b'[', 0x80, 0xff]),
        2 => {
            let end = (i + rng.below(64)).min(bytes.len());
            bytes.drain(i..end);
        }
        3 => {
            let end = (i + rng.below(256)).min(bytes.len());
            let chunk = bytes[i..end].to_vec();
            for _ in 0..1 + rng.below(8) {
                bytes.splice(i..i, chunk.iter().copied());
            }
        }
        4 => bytes.truncate(i),
        5 => {
            let token = rng.pick(EXTREME_NUMBERS);
            bytes.splice(i..i, token.bytes());
        }
        _ => {
            let s = serde_json::to_string(rng.pick(HOSTILE_STRINGS)).unwrap_or_default();
            bytes.splice(i..i, s.bytes());
        }
    }
}

/// A task name (or id) from the case, for `report --task`.
fn some_task(rng: &mut Rng, value: &Value) -> String {
    let names: Vec<String> = value["tasks"]
        .as_array()
        .map(|tasks| {
            tasks
                .iter()
                .filter_map(|t| t["name"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    if names.is_empty() || rng.one_in(4) {
        rng.below(10).to_string()
    } else {
        rng.pick(&names).clone()
    }
}

/// How a case ended, for guidance and the summary.
struct Outcome {
    code: Option<i32>,
    stdout: Vec<u8>,
    stderr: Vec<u8>,
    wall: Duration,
    timed_out: bool,
}

fn run_case(args: &[String]) -> Outcome {
    let binary =
        std::env::var_os("TURBOWISH_FUZZ_BINARY").map_or_else(turbowish_binary, PathBuf::from);
    let mut command = Command::new(binary);
    command
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    limit_child(&mut command, HOSTILE_MEMORY, 30);
    let start = Instant::now();
    let mut child = command
        .spawn()
        .unwrap_or_else(|e| limited_spawn_failed(&e, HOSTILE_MEMORY, 30));
    let mut out = child.stdout.take().expect("piped");
    let mut err = child.stderr.take().expect("piped");
    let out_reader = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = out.read_to_end(&mut buf);
        buf
    });
    let err_reader = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = err.read_to_end(&mut buf);
        buf
    });
    let mut timed_out = false;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if start.elapsed() > WALL_LIMIT {
            timed_out = true;
            let _ = child.kill();
            break child.wait().expect("wait");
        }
        std::thread::sleep(Duration::from_millis(2));
    };
    let wall = start.elapsed();
    Outcome {
        code: status.code(),
        stdout: out_reader.join().unwrap_or_default(),
        stderr: err_reader.join().unwrap_or_default(),
        wall,
        timed_out,
    }
}

/// What is wrong with an outcome, if anything.
fn verdict(o: &Outcome, binary_stdout: bool) -> Option<String> {
    let stderr = String::from_utf8_lossy(&o.stderr);
    if o.timed_out {
        return Some(format!("ran over {WALL_LIMIT:?}"));
    }
    match o.code {
        Some(0 | 3) => {}
        Some(2) => {
            if stderr.lines().count() != 1 || !stderr.starts_with("turbowish: ") {
                return Some(format!("exit 2 without one line: {stderr}"));
            }
        }
        Some(code) => return Some(format!("exit status {code}: {stderr}")),
        None => return Some(format!("killed by a signal (abort?): {stderr}")),
    }
    if stderr.contains("panicked at") {
        return Some(format!("panic: {stderr}"));
    }
    if stderr.lines().any(|l| !l.starts_with("turbowish: ")) {
        return Some(format!("stderr line not from turbowish: {stderr}"));
    }
    if let Some(c) = raw_control(&o.stderr) {
        return Some(format!("raw {c:?} on standard error"));
    }
    if !binary_stdout {
        if let Some(c) = raw_control(&o.stdout) {
            return Some(format!("raw {c:?} on standard output"));
        }
    }
    None
}

/// The shape of an outcome: status and message with figures and the
/// file's name taken out.
fn signature(command: usize, o: &Outcome, file: &str) -> String {
    let stderr = String::from_utf8_lossy(&o.stderr).replace(file, "F");
    let mut shape: String = stderr
        .chars()
        .map(|c| if c.is_ascii_digit() { '#' } else { c })
        .take(70)
        .collect();
    shape.retain(|c| c != '\n');
    format!("{command}:{:?}:{shape}", o.code)
}

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz_corpus")
}

#[test]
fn mutated_snapshots_never_crash_hang_or_reach_the_terminal_raw() {
    let cases = env_u64("TURBOWISH_FUZZ_CASES", 100);
    let seconds = env_u64("TURBOWISH_FUZZ_SECONDS", 1800);
    let seed = env_u64("TURBOWISH_FUZZ_SEED", 22);
    let save = std::env::var_os("TURBOWISH_FUZZ_SAVE").map(PathBuf::from);
    let mut rng = Rng(seed);

    let mut seeds: Vec<(String, Vec<u8>)> = std::fs::read_dir(corpus_dir())
        .expect("the corpus")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .map(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read(&p).unwrap())
        })
        .collect();
    seeds.sort();
    assert!(seeds.len() >= 4, "the corpus has its seeds");
    let trees: Vec<Value> = seeds
        .iter()
        .filter_map(|(_, b)| serde_json::from_slice(b).ok())
        .collect();
    let mut corpus: Vec<Vec<u8>> = seeds.iter().map(|(_, b)| b.clone()).collect();

    let dir = tempfile::tempdir().unwrap();
    let other = dir.path().join("other.json");
    let out_file = dir.path().join("out.bin");
    let failures_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/fuzz-failures");
    let mut failures: Vec<String> = Vec::new();
    let mut seen: BTreeMap<String, u64> = BTreeMap::new();
    let mut by_code: BTreeMap<String, u64> = BTreeMap::new();
    let mut slowest = Duration::ZERO;
    let start = Instant::now();
    let mut done = 0u64;

    while done < cases && start.elapsed() < Duration::from_secs(seconds) {
        let case = dir.path().join(format!("case-{done}.json"));
        // Mutate: a tree edit or several, then maybe a byte edit.
        let base = rng.pick(&corpus).clone();
        let mut tree: Option<Value> = serde_json::from_slice(&base).ok();
        let mut bytes = base;
        if let Some(tree) = tree.as_mut() {
            let donor = rng.pick(&trees);
            for _ in 0..1 + rng.below(4) {
                mutate_tree(&mut rng, tree, donor);
            }
            bytes = if rng.one_in(2) {
                serde_json::to_vec(tree).unwrap()
            } else {
                serde_json::to_vec_pretty(tree).unwrap()
            };
        }
        if tree.is_none() || rng.one_in(8) {
            for _ in 0..1 + rng.below(3) {
                mutate_bytes(&mut rng, &mut bytes);
            }
        }
        if bytes.len() > MAX_CASE_BYTES {
            continue;
        }
        std::fs::write(&case, &bytes).unwrap();
        std::fs::write(&other, &rng.pick(&seeds).1).unwrap();
        let p = case.to_str().unwrap().to_owned();
        let o = other.to_str().unwrap().to_owned();
        let x = out_file.to_str().unwrap().to_owned();
        let task = tree
            .as_ref()
            .map_or_else(|| "1".to_owned(), |t| some_task(&mut rng, t));
        let commands: Vec<Vec<String>> = vec![
            vec!["report".into(), p.clone()],
            vec!["report".into(), p.clone(), "--json".into()],
            vec!["report".into(), p.clone(), "--task".into(), task],
            vec!["chains".into(), p.clone()],
            vec!["chains".into(), p.clone(), "--json".into()],
            vec!["chains".into(), p.clone(), "--dot".into(), "-".into()],
            vec!["flamegraph".into(), p.clone(), "-o".into(), "-".into()],
            vec![
                "flamegraph".into(),
                p.clone(),
                "--folded".into(),
                "-o".into(),
                "-".into(),
            ],
            vec!["diff".into(), o.clone(), p.clone(), "--force".into()],
            vec![
                "diff".into(),
                p.clone(),
                o.clone(),
                "--json".into(),
                "--force".into(),
            ],
            vec![
                "export".into(),
                "--format".into(),
                "pprof".into(),
                p.clone(),
                "-o".into(),
                x.clone(),
            ],
            vec!["html".into(), p.clone(), "-o".into(), "-".into()],
        ];
        let which = rng.below(commands.len());
        let args = &commands[which];
        let outcome = run_case(args);
        done += 1;
        slowest = slowest.max(outcome.wall);
        *by_code.entry(format!("{:?}", outcome.code)).or_default() += 1;
        if let Some(problem) = verdict(&outcome, false) {
            std::fs::create_dir_all(&failures_dir).unwrap();
            let kept = failures_dir.join(format!("seed{seed}-case{done}.json"));
            std::fs::write(&kept, &bytes).unwrap();
            failures.push(format!(
                "case {done}: turbowish {} ({}): {problem}",
                args.join(" ").replace(&p, &kept.display().to_string()),
                kept.display()
            ));
            continue;
        }
        let sig = signature(which, &outcome, &p);
        let count = seen.entry(sig).or_default();
        *count += 1;
        if *count == 1 && matches!(outcome.code, Some(0 | 3)) {
            if corpus.len() < MAX_CORPUS && bytes.len() < (1 << 20) {
                corpus.push(bytes.clone());
            }
            if let Some(save) = &save {
                std::fs::create_dir_all(save).unwrap();
                std::fs::write(save.join(format!("found-{seed}-{done}.json")), &bytes).unwrap();
            }
        }
    }
    println!(
        "fuzz campaign: seed {seed}, {done} cases in {:.1} s, {} outcomes, exit statuses {by_code:?}, slowest case {:.2} s, {} failures",
        start.elapsed().as_secs_f64(),
        seen.len(),
        slowest.as_secs_f64(),
        failures.len()
    );
    if std::env::var_os("TURBOWISH_FUZZ_VERBOSE").is_some() {
        for (sig, n) in &seen {
            println!("{n:6}  {sig}");
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert_eq!(
        done, cases,
        "the safety cap of {seconds} s (TURBOWISH_FUZZ_SECONDS) ended the campaign after {done} of its {cases} cases: this machine is slower than the cap allows for, or a case is stuck; raise the cap or run fewer cases"
    );
}
