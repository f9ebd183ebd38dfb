//! The size and cost of `turbowish html` on a big snapshot: 10,000 tasks
//! (each its own name, the worst case for the table and the treemap),
//! 100,000 live blocks over 2,000 sampled sites, a heap walk, 100 locks
//! with holders and waiters, and one deadlock.
//!
//! Prints the page's size, the time to make it (median of 5), and the
//! time headless Chromium takes to load it and run its script (`--dump-dom`,
//! median of 3), beside the same for an empty page (the browser's own start),
//! when `chromium` is on the PATH.
//!
//! Run: `cargo bench -p turbowish-report --bench html_page`

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use turbowish_report::html::{page, PageOptions};
use turbowish_snapshot::schema::*;

const TASKS: u64 = 10_000;
const BLOCKS_PER_TASK: u64 = 10;
const SITES: u32 = 2_000;
const LOCATIONS: u32 = 600;
const LOCKS: u64 = 100;

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` does not: then
    // one quick round proves the bench still runs.
    let quick = !std::env::args().any(|a| a == "--bench");
    let snap = big_snapshot();
    let rounds = if quick { 1 } else { 5 };
    let mut times = Vec::new();
    let mut html = String::new();
    for _ in 0..rounds {
        let start = Instant::now();
        html = page(&snap, &PageOptions::default()).expect("a page");
        times.push(start.elapsed());
    }
    println!(
        "html_page: {} tasks, {} live blocks, {} sites: page {:.2} MB, made in {:.0} ms (median of {rounds})",
        snap.tasks.len(),
        snap.totals.live_blocks,
        snap.sites.len(),
        html.len() as f64 / 1e6,
        median(&mut times).as_secs_f64() * 1e3
    );
    // Where the bytes are, section by section.
    let mut at: Vec<(usize, &str)> = html
        .match_indices("<section id=\"")
        .map(|(i, _)| (i, &html[i + 13..i + 13 + html[i + 13..].find('"').unwrap()]))
        .collect();
    at.push((html.len(), "end"));
    for w in at.windows(2) {
        println!(
            "html_page:   {}: {:.0} KB",
            w[0].1,
            (w[1].0 - w[0].0) as f64 / 1e3
        );
    }
    if quick {
        return;
    }
    let dir = std::env::temp_dir().join(format!("turbowish-html-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let big = dir.join("big.html");
    let empty = dir.join("empty.html");
    std::fs::write(&big, &html).unwrap();
    if let Ok(keep) = std::env::var("TURBOWISH_BENCH_KEEP") {
        std::fs::write(keep, &html).unwrap();
    }
    std::fs::write(&empty, "<!DOCTYPE html><title>empty</title><p>empty</p>").unwrap();
    match which("chromium") {
        Some(browser) => {
            let base = load_times(&browser, &empty, &dir);
            let full = load_times(&browser, &big, &dir);
            println!(
                "html_page: headless Chromium --dump-dom: {:.0} ms (an empty page: {:.0} ms; difference {:.0} ms), median of 3",
                full.as_secs_f64() * 1e3,
                base.as_secs_f64() * 1e3,
                full.saturating_sub(base).as_secs_f64() * 1e3
            );
        }
        None => println!("html_page: no chromium on PATH: load time not measured"),
    }
    let _ = std::fs::remove_dir_all(&dir);
}

fn load_times(browser: &Path, page: &Path, dir: &Path) -> Duration {
    let mut times = Vec::new();
    for i in 0..3 {
        let profile = dir.join(format!("profile-{i}"));
        let start = Instant::now();
        let out = Command::new(browser)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--disable-extensions",
            ])
            .arg(format!("--user-data-dir={}", profile.display()))
            .arg("--dump-dom")
            .arg(format!("file://{}", page.display()))
            .output()
            .expect("chromium runs");
        times.push(start.elapsed());
        let dom = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "chromium failed");
        assert!(
            page.ends_with("empty.html") || dom.contains("<body data-ready=\"1\">"),
            "the page's script did not finish"
        );
        let _ = std::fs::remove_dir_all(&profile);
    }
    median(&mut times)
}

fn median(times: &mut [Duration]) -> Duration {
    times.sort();
    times[times.len() / 2]
}

fn which(name: &str) -> Option<std::path::PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

fn big_snapshot() -> Snapshot {
    let locations: Vec<CodeLocation> = (0..LOCATIONS)
        .map(|id| CodeLocation {
            id,
            address: 0x5555_0000 + u64::from(id) * 64,
            lines: vec![SourceLine {
                function: format!("service::handlers::module_{}::function_{id}", id % 37),
                file: Some(format!("src/handlers/module_{}.rs", id % 37)),
                line: Some(10 + id),
            }],
        })
        .collect();
    let sites: Vec<Site> = (0..SITES)
        .map(|id| Site {
            id,
            stack: vec![
                id % LOCATIONS,
                (id * 7 + 1) % LOCATIONS,
                (id * 13 + 2) % LOCATIONS,
            ],
            live_bytes: 0,
            live_blocks: 0,
            samples: 1,
        })
        .collect();
    let mut tasks = Vec::new();
    let mut owner_sites = Vec::new();
    let mut walk_tasks = Vec::new();
    let mut totals = Counters::default();
    for id in 1..=TASKS {
        let bytes = 512 * BLOCKS_PER_TASK + (id % 97) * 4096;
        let memory = Counters {
            live_bytes: bytes,
            live_blocks: BLOCKS_PER_TASK,
            total_bytes: bytes * 3,
            total_blocks: BLOCKS_PER_TASK * 3,
            peak_live_bytes: bytes * 2,
        };
        totals.add(&memory);
        tasks.push(Task {
            id,
            name: format!("connection-{id:05}"),
            location: Some("src/server.rs:88:13".to_owned()),
            state: Some(TaskState::Idle),
            tokio_id: Some(id + 100),
            created_at_ms: Some(1_796_382_560_000),
            polls: id * 3,
            busy_ns: id * 1000,
            future_size: Some(if id % 50 == 0 { 4096 } else { 640 }),
            memory,
        });
        let mut retained_sites = Vec::new();
        for k in 0..3u64 {
            let site = ((id * 3 + k) % u64::from(SITES)) as u32;
            owner_sites.push(OwnerSite {
                owner: Owner::Task(id),
                site,
                live_bytes: bytes / 4,
                live_blocks: 3,
            });
            retained_sites.push(RetainedSite {
                site,
                bytes: bytes / 4,
                blocks: 3,
            });
        }
        walk_tasks.push(TaskWalk {
            id,
            name: format!("connection-{id:05}"),
            retained: Amount {
                bytes: bytes * 9 / 10,
                blocks: BLOCKS_PER_TASK - 1,
            },
            shared: Amount {
                bytes: bytes / 10,
                blocks: 1,
            },
            unlocated_bytes: 0,
            sites: retained_sites,
        });
    }
    let party = |task: u64, access: Access| Party {
        task: TaskRef::Task(task),
        task_name: format!("connection-{task:05}"),
        frames: vec!["handle".to_owned(), "lock_account".to_owned()],
        location: "src/bank.rs:48:27".to_owned(),
        since_ms: 1500,
        access,
        movable: false,
        parked_in: Vec::new(),
        provenance: Provenance::Recorded,
    };
    let mut resources: Vec<Resource> = (0..LOCKS)
        .map(|r| Resource {
            id: r + 1,
            kind: ResourceKind::Mutex,
            name: format!("accounts[{r}]"),
            location: "src/bank.rs:20:9".to_owned(),
            holders: vec![party(r * 4 + 1, Access::Exclusive)],
            extra_holders: 0,
            waiters: (2..5)
                .map(|w| party(r * 4 + w, Access::Exclusive))
                .collect(),
            permits: None,
            owners: Vec::new(),
        })
        .collect();
    // One deadlock: the holder of lock 1 waits for lock 2, whose holder
    // waits for lock 1.
    resources[0].waiters.push(party(5, Access::Exclusive));
    resources[1].waiters.push(party(1, Access::Exclusive));
    let link = |waiter: u64, resource: u64, holder: u64| Link {
        waiter: party(waiter, Access::Exclusive),
        resource,
        resource_label: format!("Mutex \"accounts[{}]\"", resource - 1),
        holders: vec![party(holder, Access::Exclusive)],
        extra_holders: 0,
        unlisted_holders: 0,
    };
    let cycles = vec![Cycle {
        links: vec![link(1, 2, 5), link(5, 1, 1)],
        text: "deadlock: task \"connection-00001\" holds Mutex \"accounts[0]\" and waits for Mutex \"accounts[1]\", held by task \"connection-00005\", which waits for Mutex \"accounts[0]\"".to_owned(),
    }];
    Snapshot {
        format_version: FORMAT_VERSION,
        process: ProcessInfo {
            pid: 4242,
            executable: "/srv/bank/target/release/bank-service".to_owned(),
            args: vec!["bank-service".to_owned()],
            start_time_ms: Some(1_796_382_000_000),
        },
        taken_at_ms: 1_796_382_560_000,
        sample_interval: 1,
        totals,
        records: RecordUsage {
            in_use: TASKS,
            capacity: 16_384,
        },
        tasks,
        buckets: Vec::new(),
        locations,
        sites,
        owner_sites,
        resources,
        chains: Vec::new(),
        cycles,
        walk: Some(Walk {
            tasks: walk_tasks,
            roots: Vec::new(),
            unattributed: Vec::new(),
            census: Vec::new(),
            guards: Vec::new(),
            stats: WalkStats::default(),
        }),
    }
}
