//! What the viewer knows of the program: every row of memory with its
//! history, the busy resources, and the process's totals, kept up to date
//! from the stream's updates; and the sorted, filtered view of the rows.

use std::collections::{HashMap, VecDeque};

use turbowish_snapshot::live::{Hello, LiveResource, RowUpdate, Totals, Update};
use turbowish_snapshot::schema::{Owner, TaskRef, TaskState};

/// Updates of live bytes each row keeps for its sparkline.
pub const HISTORY: usize = 120;

/// One row of the task table: a task, another tokio task, or a bucket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskRow {
    /// Whose row.
    pub owner: Owner,
    /// Its name.
    pub name: String,
    /// Where the task was spawned.
    pub location: Option<String>,
    /// Its state (TurboWish tasks only).
    pub state: Option<TaskState>,
    /// Live bytes now.
    pub live_bytes: u64,
    /// Live blocks now.
    pub live_blocks: u64,
    /// Bytes ever allocated.
    pub total_bytes: u64,
    /// Change of live bytes at the last update.
    pub growth: i64,
    /// Bytes allocated per second at the last update.
    pub alloc_rate: u64,
    /// Times polled.
    pub polls: u64,
    /// Time in polls, ns.
    pub busy_ns: u64,
    /// Live bytes at each update, oldest first (at most [`HISTORY`]).
    pub history: VecDeque<u64>,
}

impl TaskRow {
    fn new(owner: Owner, name: String, location: Option<String>) -> TaskRow {
        TaskRow {
            owner,
            name,
            location,
            state: None,
            live_bytes: 0,
            live_blocks: 0,
            total_bytes: 0,
            growth: 0,
            alloc_rate: 0,
            polls: 0,
            busy_ns: 0,
            history: VecDeque::new(),
        }
    }

    fn set(&mut self, u: &RowUpdate) {
        self.state = u.state;
        self.live_bytes = u.live_bytes;
        self.live_blocks = u.live_blocks;
        self.total_bytes = u.total_bytes;
        self.growth = u.growth;
        self.alloc_rate = u.alloc_rate;
        self.polls = u.polls;
        self.busy_ns = u.busy_ns;
    }

    fn record(&mut self) {
        if self.history.len() == HISTORY {
            self.history.pop_front();
        }
        self.history.push_back(self.live_bytes);
    }

    /// The id shown for the row: a TurboWish task's id (as `#id` in the
    /// resource pane); other tokio tasks carry their tokio id in their
    /// name, and buckets have none.
    pub fn id(&self) -> Option<u64> {
        match self.owner {
            Owner::Task(id) => Some(id),
            _ => None,
        }
    }
}

/// The program as the stream has told it so far.
#[derive(Debug, Clone)]
pub struct Model {
    /// The program's hello.
    pub hello: Hello,
    /// The last update's number (0 before the first).
    pub seq: u64,
    /// Time between the last two updates, ms.
    pub elapsed_ms: u64,
    /// The process's totals at the last update.
    pub totals: Totals,
    /// Every row, by owner.
    pub rows: HashMap<Owner, TaskRow>,
    /// The resources that have holders or waiters, by id.
    pub resources: Vec<LiveResource>,
}

impl Model {
    /// A program that has said hello and nothing more.
    pub fn new(hello: Hello) -> Model {
        Model {
            hello,
            seq: 0,
            elapsed_ms: 0,
            totals: Totals::default(),
            rows: HashMap::new(),
            resources: Vec::new(),
        }
    }

    /// Takes in an update: changed rows get their figures, the others had
    /// no growth and allocated nothing, rows gone are dropped, and every
    /// row's history gets its live bytes. A row changed without ever
    /// having been named is shown by its owner (`task #7`).
    pub fn apply(&mut self, update: Update) {
        self.seq = update.seq;
        self.elapsed_ms = update.elapsed_ms;
        self.totals = update.totals;
        for row in self.rows.values_mut() {
            row.growth = 0;
            row.alloc_rate = 0;
        }
        for u in &update.rows {
            let row = match &u.intro {
                Some(intro) => {
                    let history = self.rows.remove(&u.owner).map(|r| r.history);
                    let mut row = TaskRow::new(u.owner, intro.name.clone(), intro.location.clone());
                    row.history = history.unwrap_or_default();
                    self.rows.entry(u.owner).or_insert(row)
                }
                None => self
                    .rows
                    .entry(u.owner)
                    .or_insert_with(|| TaskRow::new(u.owner, owner_name(u.owner), None)),
            };
            row.set(u);
        }
        for owner in &update.gone {
            self.rows.remove(owner);
        }
        for row in self.rows.values_mut() {
            row.record();
        }
        self.resources = update.resources;
    }

    /// What the task of `owner` holds and waits for: (names held, names
    /// waited for), each `Kind "name"`.
    pub fn resources_of(&self, owner: Owner) -> (Vec<&LiveResource>, Vec<&LiveResource>) {
        let is = |t: TaskRef| match (t, owner) {
            (TaskRef::Task(a), Owner::Task(b)) | (TaskRef::TokioTask(a), Owner::TokioTask(b)) => {
                a == b
            }
            _ => false,
        };
        let holds = self
            .resources
            .iter()
            .filter(|r| r.holders.iter().any(|p| is(p.task)))
            .collect();
        let waits = self
            .resources
            .iter()
            .filter(|r| r.waiters.iter().any(|p| is(p.task)))
            .collect();
        (holds, waits)
    }
}

/// A row's name when the stream never gave one.
fn owner_name(owner: Owner) -> String {
    match owner {
        Owner::Task(id) => format!("task #{id}"),
        Owner::TokioTask(id) => format!("tokio task {id}"),
        Owner::Main => "main (outside tasks)".to_owned(),
        Owner::Internal => "internal (turbowish)".to_owned(),
        Owner::Overflow => "overflow".to_owned(),
    }
}

/// The column the task table is sorted by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortKey {
    /// Live bytes.
    Live,
    /// Live blocks.
    Blocks,
    /// Growth at the last update.
    Growth,
    /// Allocation rate.
    AllocRate,
    /// Polls.
    Polls,
    /// Busy time.
    Busy,
    /// Name.
    Name,
}

impl SortKey {
    /// Every key, in the order of the table's columns (`←`/`→` step
    /// through them).
    pub const ALL: [SortKey; 7] = [
        SortKey::Name,
        SortKey::Live,
        SortKey::Blocks,
        SortKey::Growth,
        SortKey::AllocRate,
        SortKey::Polls,
        SortKey::Busy,
    ];

    /// The key's name as the status line shows it.
    pub fn label(self) -> &'static str {
        match self {
            SortKey::Live => "live",
            SortKey::Blocks => "blocks",
            SortKey::Growth => "growth",
            SortKey::AllocRate => "alloc/s",
            SortKey::Polls => "polls",
            SortKey::Busy => "busy",
            SortKey::Name => "name",
        }
    }

    /// The next key to the right (`forward`) or left, wrapping.
    pub fn step(self, forward: bool) -> SortKey {
        let i = SortKey::ALL.iter().position(|&k| k == self).unwrap_or(0);
        let n = SortKey::ALL.len();
        SortKey::ALL[if forward {
            (i + 1) % n
        } else {
            (i + n - 1) % n
        }]
    }

    /// The direction a key starts in: names A to Z, figures biggest first.
    pub fn default_descending(self) -> bool {
        self != SortKey::Name
    }
}

/// The rows whose name contains `filter` (ignoring case; all for an empty
/// filter), sorted by `key` (`descending` or not); ties in name order,
/// then by owner, so the order is the same at every update.
pub fn visible_rows<'a>(
    model: &'a Model,
    key: SortKey,
    descending: bool,
    filter: &str,
) -> Vec<&'a TaskRow> {
    let filter = filter.to_lowercase();
    let mut rows: Vec<&TaskRow> = model
        .rows
        .values()
        .filter(|r| filter.is_empty() || r.name.to_lowercase().contains(&filter))
        .collect();
    rows.sort_by(|a, b| {
        let by_key = match key {
            SortKey::Live => a.live_bytes.cmp(&b.live_bytes),
            SortKey::Blocks => a.live_blocks.cmp(&b.live_blocks),
            SortKey::Growth => a.growth.cmp(&b.growth),
            SortKey::AllocRate => a.alloc_rate.cmp(&b.alloc_rate),
            SortKey::Polls => a.polls.cmp(&b.polls),
            SortKey::Busy => a.busy_ns.cmp(&b.busy_ns),
            SortKey::Name => a.name.cmp(&b.name),
        };
        let by_key = if descending { by_key.reverse() } else { by_key };
        by_key
            .then_with(|| a.name.cmp(&b.name))
            .then_with(|| a.owner.cmp(&b.owner))
    });
    rows
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use turbowish_snapshot::live::{Intro, LiveParty};
    use turbowish_snapshot::schema::{Access, Provenance, ResourceKind};

    pub(crate) fn hello() -> Hello {
        Hello {
            version: turbowish_snapshot::live::LIVE_VERSION,
            pid: 4242,
            executable: "/srv/bank/bin/bank-service".to_owned(),
            snapshot_dir: "/var/tmp/tw".to_owned(),
            interval_ms: 1000,
        }
    }

    pub(crate) fn row(owner: Owner, name: Option<&str>, live: u64, growth: i64) -> RowUpdate {
        RowUpdate {
            owner,
            intro: name.map(|n| Intro {
                name: n.to_owned(),
                location: matches!(owner, Owner::Task(_)).then(|| format!("src/{n}.rs:10:5")),
            }),
            state: matches!(owner, Owner::Task(_)).then_some(TaskState::Idle),
            live_bytes: live,
            live_blocks: live / 1024,
            total_bytes: live * 2,
            growth,
            alloc_rate: growth.max(0) as u64 * 2,
            polls: live / 4096,
            busy_ns: live * 10,
        }
    }

    pub(crate) fn party(task: TaskRef, name: &str, since_ms: u64) -> LiveParty {
        LiveParty {
            task,
            task_name: name.to_owned(),
            since_ms,
            access: Access::Exclusive,
            provenance: Provenance::Recorded,
        }
    }

    /// A channel end held by `task`: owned by it (found at `path` in its
    /// state), or recorded when `path` is `None`.
    pub(crate) fn end(
        task: TaskRef,
        name: &str,
        since_ms: u64,
        access: Access,
        path: Option<&str>,
    ) -> LiveParty {
        LiveParty {
            access,
            provenance: path.map_or(Provenance::Recorded, |path| Provenance::Owns {
                path: path.to_owned(),
            }),
            ..party(task, name, since_ms)
        }
    }

    /// The bank service after two updates: the cache grows, a transfer
    /// holds the ledger's lock and two readers wait, and the cache owns
    /// the sender of the channel `audit`, whose receiver the records say
    /// the transfer holds (its creator: no task was found owning it).
    pub(crate) fn bank() -> Model {
        let mut m = Model::new(hello());
        m.apply(Update {
            seq: 1,
            rows: vec![
                row(Owner::Task(1), Some("session-cache"), 4 << 20, 4 << 20),
                row(Owner::Task(2), Some("transfer"), 64 << 10, 64 << 10),
                row(Owner::Task(3), Some("reader-1"), 2048, 2048),
                row(Owner::Task(4), Some("reader-2"), 1024, 1024),
                row(
                    Owner::Main,
                    Some("main (outside tasks)"),
                    20 << 10,
                    20 << 10,
                ),
            ],
            row_count: 5,
            ..Update::default()
        });
        m.apply(Update {
            seq: 2,
            elapsed_ms: 1000,
            totals: Totals {
                live_bytes: (6 << 20) + (64 << 10) + 3072 + (20 << 10),
                live_blocks: 6229,
                alloc_rate: 4 << 20,
            },
            row_count: 5,
            rows: vec![row(Owner::Task(1), None, 6 << 20, 2 << 20)],
            resources: vec![
                LiveResource {
                    id: 9,
                    kind: ResourceKind::Mutex,
                    name: "ledger".to_owned(),
                    holders: vec![party(TaskRef::Task(2), "transfer", 2500)],
                    extra_holders: 0,
                    waiters: vec![
                        party(TaskRef::Task(3), "reader-1", 2100),
                        party(TaskRef::Task(4), "reader-2", 300),
                    ],
                },
                LiveResource {
                    id: 12,
                    kind: ResourceKind::Channel,
                    name: "audit".to_owned(),
                    holders: vec![
                        end(
                            TaskRef::Task(1),
                            "session-cache",
                            5200,
                            Access::Send,
                            Some("future state +0x40"),
                        ),
                        end(TaskRef::Task(2), "transfer", 5200, Access::Receive, None),
                    ],
                    extra_holders: 0,
                    waiters: Vec::new(),
                },
            ],
            ..Update::default()
        });
        m
    }

    fn names(rows: &[&TaskRow]) -> Vec<String> {
        rows.iter().map(|r| r.name.clone()).collect()
    }

    #[test]
    fn updates_change_named_rows_and_age_the_others() {
        let m = bank();
        assert_eq!(m.seq, 2);
        let cache = &m.rows[&Owner::Task(1)];
        assert_eq!(cache.live_bytes, 6 << 20);
        assert_eq!(cache.growth, 2 << 20);
        assert_eq!(cache.history, [4 << 20, 6 << 20]);
        assert_eq!(cache.location.as_deref(), Some("src/session-cache.rs:10:5"));
        // Not in the second update: unchanged, no growth, no allocation.
        let transfer = &m.rows[&Owner::Task(2)];
        assert_eq!(transfer.live_bytes, 64 << 10);
        assert_eq!((transfer.growth, transfer.alloc_rate), (0, 0));
        assert_eq!(transfer.history, [64 << 10, 64 << 10]);
        let (holds, waits) = m.resources_of(Owner::Task(2));
        assert_eq!((holds.len(), waits.len()), (2, 0));
        let (holds, _) = m.resources_of(Owner::Task(1));
        assert_eq!(holds[0].name, "audit");
        let (holds, waits) = m.resources_of(Owner::Task(3));
        assert_eq!((holds.len(), waits[0].name.as_str()), (0, "ledger"));
    }

    #[test]
    fn gone_rows_leave_and_unnamed_rows_are_named_by_owner() {
        let mut m = bank();
        m.apply(Update {
            seq: 3,
            rows: vec![row(Owner::TokioTask(77), None, 10, 10)],
            gone: vec![Owner::Task(3), Owner::Task(99)],
            ..Update::default()
        });
        assert!(!m.rows.contains_key(&Owner::Task(3)));
        assert_eq!(m.rows[&Owner::TokioTask(77)].name, "tokio task 77");
        assert_eq!(m.rows[&Owner::TokioTask(77)].id(), None);
        assert_eq!(m.rows[&Owner::Task(4)].id(), Some(4));
        assert_eq!(m.rows[&Owner::Main].id(), None);
        assert!(m.resources.is_empty());
    }

    #[test]
    fn history_keeps_the_last_updates_only() {
        let mut m = Model::new(hello());
        for seq in 1..=(HISTORY as u64 + 5) {
            m.apply(Update {
                seq,
                rows: vec![row(Owner::Task(1), (seq == 1).then_some("grower"), seq, 1)],
                ..Update::default()
            });
        }
        let h = &m.rows[&Owner::Task(1)].history;
        assert_eq!(h.len(), HISTORY);
        assert_eq!(h.front(), Some(&6));
        assert_eq!(h.back(), Some(&(HISTORY as u64 + 5)));
    }

    #[test]
    fn rows_sort_by_each_key_with_ties_by_name() {
        let m = bank();
        let order = |key, descending| names(&visible_rows(&m, key, descending, ""));
        assert_eq!(
            order(SortKey::Live, true),
            [
                "session-cache",
                "transfer",
                "main (outside tasks)",
                "reader-1",
                "reader-2"
            ]
        );
        assert_eq!(
            order(SortKey::Live, false),
            [
                "reader-2",
                "reader-1",
                "main (outside tasks)",
                "transfer",
                "session-cache"
            ]
        );
        // Only the cache grew at the last update; the rest tie at 0, by name.
        assert_eq!(
            order(SortKey::Growth, true),
            [
                "session-cache",
                "main (outside tasks)",
                "reader-1",
                "reader-2",
                "transfer"
            ]
        );
        assert_eq!(
            order(SortKey::Name, false),
            [
                "main (outside tasks)",
                "reader-1",
                "reader-2",
                "session-cache",
                "transfer"
            ]
        );
        assert_eq!(
            order(SortKey::Busy, true)[0..2],
            ["session-cache", "transfer"]
        );
        assert_eq!(order(SortKey::Polls, true)[0], "session-cache");
        assert_eq!(order(SortKey::Blocks, false)[0], "reader-2");
        assert_eq!(order(SortKey::AllocRate, true)[0], "session-cache");
    }

    #[test]
    fn the_filter_matches_names_ignoring_case() {
        let m = bank();
        assert_eq!(
            names(&visible_rows(&m, SortKey::Live, true, "READER")),
            ["reader-1", "reader-2"]
        );
        assert_eq!(
            names(&visible_rows(&m, SortKey::Name, false, "a")),
            [
                "main (outside tasks)",
                "reader-1",
                "reader-2",
                "session-cache",
                "transfer"
            ]
        );
        assert!(visible_rows(&m, SortKey::Live, true, "nothing").is_empty());
    }

    #[test]
    fn sort_keys_step_through_the_columns_and_wrap() {
        assert_eq!(SortKey::Live.step(true), SortKey::Blocks);
        assert_eq!(SortKey::Busy.step(true), SortKey::Name);
        assert_eq!(SortKey::Name.step(false), SortKey::Busy);
        assert!(!SortKey::Name.default_descending());
        assert!(SortKey::Growth.default_descending());
    }
}
