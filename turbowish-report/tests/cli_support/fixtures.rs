//! The fixture generator: realistic snapshots of a small bank service,
//! built as `Snapshot` values and checked in as `tests/fixtures/*.json`
//! (`cli_e2e` fails when they are stale; `TURBOWISH_UPDATE_FIXTURES=1`
//! rewrites them).
//!
//! `service.json`: eight tasks under six names (three `request-handler`s),
//! four buckets, eleven symbolised locations (one inlined, one without a
//! symbol, one whose function name holds a `;`), six sites, a two-task
//! deadlock over two mutexes, and a one-step chain through a semaphore.
//! `service-later.json`: the same process a minute later, the cache grown,
//! a fourth handler, the audit task done; its locations and sites are
//! renumbered, so a diff must match sites by stack. `no-samples.json`: the
//! same tasks with sampling off and no resources. `service-walk.json`:
//! `service` taken in heap-walk mode (a `walk` section: retained and shared
//! per task, retained sites, a named root, unattributed memory, a census and
//! guard locations).

use turbowish_snapshot::schema::*;

/// The sampling interval of the sampled fixtures.
pub(crate) const INTERVAL: u64 = 65_536;

const EXE: &str = "/srv/bank/target/release/bank-service";
const TAKEN_AT_MS: u64 = 1_764_028_800_000;

/// All fixtures, by file name.
pub(crate) fn all() -> Vec<(&'static str, Snapshot)> {
    vec![
        ("service.json", service()),
        ("service-later.json", service_later()),
        ("no-samples.json", no_samples()),
        ("service-walk.json", service_walk()),
    ]
}

/// A fixture as it is checked in: pretty JSON with a final newline.
pub(crate) fn to_json(snap: &Snapshot) -> String {
    let mut text = serde_json::to_string_pretty(snap).expect("a snapshot serialises");
    text.push('\n');
    text
}

/// The sampled snapshot with a deadlock.
pub(crate) fn service() -> Snapshot {
    let tasks = vec![
        task(
            1,
            "accept-loop",
            "src/server.rs:58:5",
            TaskState::Idle,
            1_536,
            counters(196_608, 12, 4_194_304, 9_000, 262_144),
        ),
        task(
            2,
            "request-handler",
            "src/server.rs:88:13",
            TaskState::Idle,
            4_352,
            counters(262_144, 40, 8_388_608, 30_000, 524_288),
        ),
        task(
            3,
            "request-handler",
            "src/server.rs:88:13",
            TaskState::Running,
            4_352,
            counters(393_216, 57, 9_437_184, 33_000, 655_360),
        ),
        task(
            4,
            "request-handler",
            "src/server.rs:88:13",
            TaskState::Idle,
            4_352,
            counters(196_608, 25, 7_340_032, 28_000, 458_752),
        ),
        task(
            5,
            "cache-filler",
            "src/cache.rs:101:9",
            TaskState::Idle,
            768,
            counters(6_400_000, 1_450, 12_582_912, 3_100, 6_400_000),
        ),
        task(
            6,
            "transfer-a",
            "src/bank.rs:40:5",
            TaskState::Idle,
            512,
            counters(4_096, 3, 8_192, 6, 8_192),
        ),
        task(
            7,
            "transfer-b",
            "src/bank.rs:41:5",
            TaskState::Idle,
            512,
            counters(4_096, 3, 8_192, 6, 8_192),
        ),
        task(
            8,
            "audit-log",
            "src/audit.rs:12:5",
            TaskState::Idle,
            640,
            counters(131_072, 9, 1_048_576, 400, 196_608),
        ),
        task(
            9,
            "startup",
            "src/main.rs:15:5",
            TaskState::Completed,
            256,
            counters(0, 0, 65_536, 20, 65_536),
        ),
    ];
    let buckets = vec![
        bucket(
            Owner::Main,
            "main (outside tasks)",
            counters(1_310_720, 210, 3_145_728, 900, 1_572_864),
        ),
        bucket(
            Owner::Internal,
            "internal (turbowish)",
            counters(98_304, 14, 131_072, 30, 98_304),
        ),
        bucket(
            Owner::TokioTask(17),
            "tokio task 17",
            counters(12_288, 2, 16_384, 4, 12_288),
        ),
        bucket(Owner::Overflow, "overflow", Counters::default()),
    ];
    let mut totals = Counters::default();
    for c in tasks
        .iter()
        .map(|t| &t.memory)
        .chain(buckets.iter().map(|b| &b.memory))
    {
        totals.live_bytes += c.live_bytes;
        totals.live_blocks += c.live_blocks;
        totals.total_bytes += c.total_bytes;
        totals.total_blocks += c.total_blocks;
    }
    totals.peak_live_bytes = 10_485_760;

    let locations = locations();
    // Stacks innermost first, as ids into `locations`.
    let sites = vec![
        site(0, &[0, 1, 2, 3], 80), // cache insert
        site(1, &[0, 5, 4, 3], 6),  // request JSON
        site(2, &[6, 4, 3], 1),     // response buffer
        site(3, &[6, 7, 3], 2),     // accept buffer
        site(4, &[0, 8], 16),       // main
        site(5, &[9, 10, 3], 2),    // audit entry, one unsymbolised frame
    ];
    let owner_sites = vec![
        owner_site(Owner::Task(5), 0, 80),
        owner_site(Owner::Task(2), 1, 2),
        owner_site(Owner::Task(3), 1, 3),
        owner_site(Owner::Task(4), 1, 1),
        owner_site(Owner::Task(3), 2, 1),
        owner_site(Owner::Task(1), 3, 2),
        owner_site(Owner::Main, 4, 16),
        owner_site(Owner::Task(8), 5, 2),
    ];

    let a_holds = party(
        6,
        "transfer-a",
        &["transfer", "debit"],
        "src/bank.rs:48:27",
        2_100,
        Access::Exclusive,
    );
    let a_waits = party(
        6,
        "transfer-a",
        &["transfer", "credit"],
        "src/bank.rs:52:27",
        2_000,
        Access::Exclusive,
    );
    let b_holds = party(
        7,
        "transfer-b",
        &["transfer", "debit"],
        "src/bank.rs:48:27",
        2_050,
        Access::Exclusive,
    );
    let b_waits = party(
        7,
        "transfer-b",
        &["transfer", "credit"],
        "src/bank.rs:52:27",
        2_000,
        Access::Exclusive,
    );
    let mut handler_holds = party(
        3,
        "request-handler",
        &["handle_request", "load_user"],
        "src/db.rs:31:40",
        350,
        Access::Permits(1),
    );
    // Took the permit in `load_user`, parked now in a query that waits on
    // the network: the future to look at.
    handler_holds.parked_in = vec!["handle_request".to_owned(), "run_query".to_owned()];
    let audit_waits = party(
        8,
        "audit-log",
        &["flush"],
        "src/audit.rs:22:18",
        1_200,
        Access::Permits(1),
    );
    // Both transfers own an `Arc` to both accounts: either may lock either.
    let transfers_own = |first: u64, second: u64| {
        vec![
            lock_owner(6, "transfer-a", first),
            lock_owner(7, "transfer-b", second),
        ]
    };
    let mut resources = vec![
        resource(
            1,
            ResourceKind::Mutex,
            "accounts[1]",
            "src/bank.rs:20:9",
            vec![a_holds.clone()],
            0,
            vec![b_waits.clone()],
            None,
        ),
        resource(
            2,
            ResourceKind::Mutex,
            "accounts[2]",
            "src/bank.rs:20:9",
            vec![b_holds.clone()],
            0,
            vec![a_waits.clone()],
            None,
        ),
        resource(
            3,
            ResourceKind::Semaphore,
            "db-pool",
            "src/db.rs:12:19",
            vec![handler_holds.clone()],
            4,
            vec![audit_waits.clone()],
            Some(0),
        ),
        resource(
            4,
            ResourceKind::Mutex,
            "config",
            "src/config.rs:9:17",
            vec![],
            0,
            vec![],
            None,
        ),
    ];
    resources[0].owners = transfers_own(0x30, 0x38);
    resources[1].owners = transfers_own(0x38, 0x30);
    let a_to_b = link(
        a_waits.clone(),
        2,
        "Mutex \"accounts[2]\"",
        vec![b_holds.clone()],
        0,
    );
    let b_to_a = link(
        b_waits.clone(),
        1,
        "Mutex \"accounts[1]\"",
        vec![a_holds.clone()],
        0,
    );
    let audit = link(
        audit_waits,
        3,
        "Semaphore \"db-pool\"",
        vec![handler_holds],
        4,
    );
    let chains = vec![
        Chain {
            links: vec![a_to_b.clone(), b_to_a.clone()],
            end: ChainEnd::Cycle,
            text: "task \"transfer-a\" (src/bank.rs:52 › transfer › credit) waits for Mutex \"accounts[2]\" (for 2.0s), held by task \"transfer-b\" (src/bank.rs:48 › transfer › debit) since 2.0s, which waits for Mutex \"accounts[1]\" (for 2.0s), held by task \"transfer-a\" (src/bank.rs:48 › transfer › debit) since 2.1s, which closes a cycle: deadlock".to_owned(),
        },
        Chain {
            links: vec![audit],
            end: ChainEnd::Untracked,
            text: "task \"audit-log\" (src/audit.rs:22 › flush) waits for Semaphore \"db-pool\" (for 1.2s), held by task \"request-handler\" (src/db.rs:31 › handle_request › load_user) since 0.3s and 4 other holder(s), which is waiting on something untracked (or running)".to_owned(),
        },
    ];
    let cycles = vec![Cycle {
        links: vec![a_to_b, b_to_a],
        text: "deadlock: task \"transfer-a\" (src/bank.rs:48 › transfer › debit) holds Mutex \"accounts[1]\" since 2.1s and waits for Mutex \"accounts[2]\" (at src/bank.rs:52 › transfer › credit), held by task \"transfer-b\" (src/bank.rs:52 › transfer › credit), which waits for Mutex \"accounts[1]\"".to_owned(),
    }];

    Snapshot {
        format_version: FORMAT_VERSION,
        process: ProcessInfo {
            pid: 4242,
            executable: EXE.to_owned(),
            args: vec![EXE.to_owned(), "--port".to_owned(), "8080".to_owned()],
            start_time_ms: Some(TAKEN_AT_MS - 3_600_000),
        },
        taken_at_ms: TAKEN_AT_MS,
        sample_interval: INTERVAL,
        totals,
        records: RecordUsage {
            in_use: 13,
            capacity: 4_096,
        },
        tasks,
        buckets,
        locations,
        sites,
        owner_sites,
        resources,
        chains,
        cycles,
        walk: None,
    }
}

/// `service` a minute later: the cache grew by 3.2 MiB (48 more samples at
/// its site), a fourth request handler appeared, the audit task completed
/// and freed its memory. Location and site ids are renumbered (reversed).
pub(crate) fn service_later() -> Snapshot {
    let mut snap = service();
    snap.taken_at_ms += 60_000;
    let cache = snap
        .tasks
        .iter_mut()
        .find(|t| t.name == "cache-filler")
        .unwrap();
    cache.memory.live_bytes += 48 * INTERVAL;
    cache.memory.live_blocks += 870;
    cache.memory.total_bytes += 48 * INTERVAL;
    cache.memory.total_blocks += 870;
    cache.memory.peak_live_bytes = cache.memory.live_bytes;
    let audit = snap
        .tasks
        .iter_mut()
        .find(|t| t.name == "audit-log")
        .unwrap();
    audit.state = Some(TaskState::Completed);
    audit.memory.live_bytes = 0;
    audit.memory.live_blocks = 0;
    snap.tasks.push(task(
        10,
        "request-handler",
        "src/server.rs:88:13",
        TaskState::Idle,
        4_352,
        counters(131_072, 20, 1_048_576, 4_000, 131_072),
    ));
    snap.totals.live_bytes += 48 * INTERVAL + 131_072 - 131_072;
    snap.totals.live_blocks = snap.totals.live_blocks + 870 + 20 - 9;
    snap.totals.total_bytes += 48 * INTERVAL + 1_048_576;
    snap.totals.total_blocks += 870 + 4_000;
    snap.totals.peak_live_bytes = 13_631_488;
    snap.records.in_use += 1;

    // Estimates: the cache site grows, the audit site is gone, the new
    // handler has one sample at the request site.
    for os in &mut snap.owner_sites {
        if os.site == 0 {
            *os = owner_site(os.owner, 0, 128);
        }
    }
    snap.owner_sites.retain(|os| os.site != 5);
    snap.owner_sites.push(owner_site(Owner::Task(10), 1, 1));
    snap.sites.retain(|s| s.id != 5);
    for s in &mut snap.sites {
        let samples: u64 = snap
            .owner_sites
            .iter()
            .filter(|os| os.site == s.id)
            .map(|os| os.live_bytes / INTERVAL)
            .sum();
        *s = site(s.id, &s.stack, samples);
    }

    // Another process would number its sites and locations differently.
    let n_loc = snap.locations.len() as u32;
    let n_site = snap.sites.len() as u32;
    for l in &mut snap.locations {
        l.id = n_loc - 1 - l.id;
    }
    snap.locations.reverse();
    for s in &mut snap.sites {
        s.id = n_site - 1 - s.id;
        for id in &mut s.stack {
            *id = n_loc - 1 - *id;
        }
    }
    snap.sites.reverse();
    for os in &mut snap.owner_sites {
        os.site = n_site - 1 - os.site;
    }
    snap
}

/// `service` taken in heap-walk mode: the cache filler retains its 6.1 MiB
/// cache (a `HashMap<u64, Vec<u8>>` with slack), the request handlers share
/// a config `Arc`, the audit task leaked an entry buffer (unattributed under
/// it), a named root `metrics` holds a registry, and transfer-b holds the
/// owned guard of `accounts[2]` that transfer-a acquired (a guard moved
/// between tasks; the resource graph already names transfer-b).
pub(crate) fn service_walk() -> Snapshot {
    let mut snap = service();
    let amount = |bytes, blocks| Amount { bytes, blocks };
    let task_walk = |id: u64, name: &str, retained, shared, sites: Vec<RetainedSite>| TaskWalk {
        id,
        name: name.to_owned(),
        retained,
        shared,
        unlocated_bytes: 0,
        sites,
    };
    let retained_site = |site, samples: u64| RetainedSite {
        site,
        bytes: samples * INTERVAL,
        blocks: samples * 16,
    };
    let task_holder = |id, name: &str| WalkHolder::Task {
        id,
        name: name.to_owned(),
    };
    snap.walk = Some(Walk {
        tasks: vec![
            task_walk(
                1,
                "accept-loop",
                amount(132_608, 10),
                amount(2_048, 1),
                vec![retained_site(3, 2)],
            ),
            task_walk(
                2,
                "request-handler",
                amount(128_000, 31),
                amount(2_048, 1),
                vec![retained_site(1, 1)],
            ),
            task_walk(
                3,
                "request-handler",
                amount(262_144, 48),
                amount(2_048, 1),
                vec![retained_site(1, 3), retained_site(2, 1)],
            ),
            task_walk(
                4,
                "request-handler",
                amount(65_536, 20),
                amount(2_048, 1),
                vec![retained_site(1, 1)],
            ),
            task_walk(
                5,
                "cache-filler",
                amount(6_291_456, 1_420),
                amount(0, 0),
                vec![retained_site(0, 78)],
            ),
            task_walk(6, "transfer-a", amount(512, 1), amount(0, 0), Vec::new()),
            task_walk(7, "transfer-b", amount(4_608, 4), amount(0, 0), Vec::new()),
            task_walk(8, "audit-log", amount(640, 1), amount(0, 0), Vec::new()),
            task_walk(9, "startup", amount(256, 1), amount(0, 0), Vec::new()),
        ],
        roots: vec![RootWalk {
            name: "metrics".to_owned(),
            retained: amount(98_304, 12),
            shared: amount(0, 0),
            unlocated_bytes: 2_048,
        }],
        unattributed: vec![
            UnattributedWalk {
                owner: Owner::Main,
                amount: amount(1_212_416, 198),
            },
            UnattributedWalk {
                owner: Owner::Task(8),
                amount: amount(131_072, 2),
            },
            UnattributedWalk {
                owner: Owner::Internal,
                amount: amount(98_304, 14),
            },
        ],
        census: vec![
            CensusRow {
                holder: task_holder(5, "cache-filler"),
                type_name: "alloc::vec::Vec<u8>".to_owned(),
                objects: 1_400,
                bytes: 5_734_400,
                slack: 1_433_600,
            },
            CensusRow {
                holder: task_holder(5, "cache-filler"),
                type_name: "std::collections::HashMap<u64, alloc::vec::Vec<u8>>".to_owned(),
                objects: 1,
                bytes: 557_056,
                slack: 163_840,
            },
            CensusRow {
                holder: task_holder(3, "request-handler"),
                type_name: "bytes::bytes_mut::BytesMut".to_owned(),
                objects: 16,
                bytes: 65_536,
                slack: 12_288,
            },
            CensusRow {
                holder: WalkHolder::Root {
                    name: "metrics".to_owned(),
                },
                type_name: "bank_service::metrics::Registry".to_owned(),
                objects: 1,
                bytes: 4_096,
                slack: 0,
            },
            CensusRow {
                holder: WalkHolder::Shared,
                type_name: "alloc::sync::Arc<bank_service::Config>".to_owned(),
                objects: 1,
                bytes: 2_048,
                slack: 0,
            },
        ],
        guards: vec![
            GuardWalk {
                resource: 1,
                resource_name: "accounts[1]".to_owned(),
                holder: task_holder(6, "transfer-a"),
                path: "transfer-a › (opaque state)".to_owned(),
            },
            GuardWalk {
                resource: 2,
                resource_name: "accounts[2]".to_owned(),
                holder: task_holder(7, "transfer-b"),
                path: "transfer-b › (opaque state)".to_owned(),
            },
            GuardWalk {
                resource: 3,
                resource_name: "db-pool".to_owned(),
                holder: task_holder(3, "request-handler"),
                path: "request-handler › (opaque state)".to_owned(),
            },
        ],
        stats: WalkStats {
            live_blocks: 1_870,
            blocks_scanned: 402,
            bytes_scanned: 1_310_720,
            blocks_traced: 1_433,
            edges: 3_911,
            duration_us: 2_350,
        },
    });
    snap
}

/// `service` taken with sampling off and no resources in use.
pub(crate) fn no_samples() -> Snapshot {
    let mut snap = service();
    snap.sample_interval = 0;
    snap.locations.clear();
    snap.sites.clear();
    snap.owner_sites.clear();
    snap.resources.truncate(0);
    snap.chains.clear();
    snap.cycles.clear();
    snap
}

fn locations() -> Vec<CodeLocation> {
    const BASE: u64 = 0x55d4_1a20_0000;
    let tokio = "/home/dev/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/tokio-1.48.0/src/runtime/task/core.rs";
    let lines: Vec<Vec<LineSpec<'_>>> = vec![
        // 0: an inlined pair, innermost first.
        vec![
            ("alloc::raw_vec::RawVecInner<A>::try_allocate_in", Some("/rustc/library/alloc/src/raw_vec/mod.rs"), Some(476)),
            ("alloc::vec::Vec<T>::with_capacity_in", Some("/rustc/library/alloc/src/vec/mod.rs"), Some(802)),
        ],
        vec![("bank_service::cache::Cache::insert", Some("src/cache.rs"), Some(57))],
        vec![("bank_service::cache::fill::{{closure}}", Some("src/cache.rs"), Some(112))],
        vec![("tokio::runtime::task::core::Core<T,S>::poll", Some(tokio), Some(375))],
        vec![("bank_service::server::handle_request::{{closure}}", Some("src/server.rs"), Some(131))],
        vec![("serde_json::de::from_slice<bank_service::api::Request>", Some("/home/dev/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/serde_json-1.0.145/src/de.rs"), Some(2699))],
        vec![("bytes::bytes_mut::BytesMut::with_capacity", Some("/home/dev/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/bytes-1.10.1/src/bytes_mut.rs"), Some(150))],
        vec![("bank_service::server::accept_loop::{{closure}}", Some("src/server.rs"), Some(61))],
        vec![("bank_service::main", Some("src/main.rs"), Some(22))],
        vec![("bank_service::audit::write_entry<[u8; 64]>", Some("src/audit.rs"), Some(30))],
        vec![], // 10: no symbol
    ];
    lines
        .into_iter()
        .enumerate()
        .map(|(i, lines)| CodeLocation {
            id: i as u32,
            address: BASE + 0x1a30 + 0x110 * i as u64,
            lines: lines
                .into_iter()
                .map(|(function, file, line)| SourceLine {
                    function: function.to_owned(),
                    file: file.map(str::to_owned),
                    line,
                })
                .collect(),
        })
        .collect()
}

/// `(function, file, line)` of one source line.
type LineSpec<'a> = (&'a str, Option<&'a str>, Option<u32>);

fn counters(
    live_bytes: u64,
    live_blocks: u64,
    total_bytes: u64,
    total_blocks: u64,
    peak: u64,
) -> Counters {
    Counters {
        live_bytes,
        live_blocks,
        total_bytes,
        total_blocks,
        peak_live_bytes: peak,
    }
}

fn task(
    id: u64,
    name: &str,
    location: &str,
    state: TaskState,
    future: u64,
    memory: Counters,
) -> Task {
    Task {
        id,
        name: name.to_owned(),
        location: Some(location.to_owned()),
        state: Some(state),
        tokio_id: Some(id + 100),
        created_at_ms: Some(TAKEN_AT_MS - 3_500_000 + id * 1_000),
        polls: 10 * id + 3,
        busy_ns: 250_000 * id,
        future_size: Some(future),
        memory,
    }
}

fn bucket(owner: Owner, name: &str, memory: Counters) -> Bucket {
    Bucket {
        owner,
        name: name.to_owned(),
        memory,
    }
}

/// A site whose estimate is `samples` samples of [`INTERVAL`] bytes, each
/// sampled block 4 KiB.
fn site(id: u32, stack: &[u32], samples: u64) -> Site {
    Site {
        id,
        stack: stack.to_vec(),
        live_bytes: samples * INTERVAL,
        live_blocks: samples * 16,
        samples,
    }
}

fn owner_site(owner: Owner, site: u32, samples: u64) -> OwnerSite {
    OwnerSite {
        owner,
        site,
        live_bytes: samples * INTERVAL,
        live_blocks: samples * 16,
    }
}

fn party(
    task: u64,
    name: &str,
    frames: &[&str],
    location: &str,
    since_ms: u64,
    access: Access,
) -> Party {
    Party {
        task: TaskRef::Task(task),
        task_name: name.to_owned(),
        frames: frames.iter().map(|f| (*f).to_owned()).collect(),
        location: location.to_owned(),
        since_ms,
        access,
        movable: false,
        parked_in: Vec::new(),
        provenance: Provenance::Recorded,
    }
}

/// A task owning a lock handle (an `Arc` to it) in its future's state.
fn lock_owner(task: u64, name: &str, offset: u64) -> HandleOwner {
    HandleOwner {
        task: Some(TaskRef::Task(task)),
        name: name.to_owned(),
        handle: HandleKind::Lock,
        path: format!("future state +{offset:#x}"),
    }
}

#[allow(clippy::too_many_arguments)]
fn resource(
    id: u64,
    kind: ResourceKind,
    name: &str,
    location: &str,
    holders: Vec<Party>,
    extra_holders: u64,
    waiters: Vec<Party>,
    permits: Option<u64>,
) -> Resource {
    Resource {
        id,
        kind,
        name: name.to_owned(),
        location: location.to_owned(),
        holders,
        extra_holders,
        waiters,
        permits,
        owners: Vec::new(),
    }
}

fn link(
    waiter: Party,
    resource: u64,
    label: &str,
    holders: Vec<Party>,
    extra_holders: u64,
) -> Link {
    Link {
        waiter,
        resource,
        resource_label: label.to_owned(),
        holders,
        extra_holders,
        unlisted_holders: 0,
    }
}
