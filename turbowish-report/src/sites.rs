//! `turbowish report --task`: one task's (or same-named tasks', or a
//! bucket's) top allocation sites, and what the heap walk says it retains.

use std::collections::HashMap;
use std::fmt::{self, Write as _};

use serde::Serialize;
use turbowish_snapshot::format::{block_word, human_bytes, printable, share, MAX_NAME_WIDTH};
use turbowish_snapshot::schema::{Amount, Counters, Owner, Snapshot, WalkHolder};

use crate::labels::Names;

/// One task's (or same-named tasks', or a bucket's) top allocation sites,
/// as `turbowish report --task` prints them.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TaskSites {
    /// The name of the selected owner(s).
    pub name: String,
    /// Ids of the selected tasks (empty for a bucket).
    pub task_ids: Vec<u64>,
    /// Their summed counters (exact, unlike the site estimates).
    pub memory: Counters,
    /// The snapshot's sampling interval (0: no sites were recorded).
    pub sample_interval: u64,
    /// Sum of the estimates over all the owner's sites.
    pub sampled_live_bytes: u64,
    /// The sites shown, biggest estimate first.
    pub sites: Vec<SiteRow>,
    /// Sites beyond the ones shown.
    pub more_sites: usize,
    /// What the heap walk found for the selected task(s), when the snapshot
    /// has a walk.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub walk: Option<RetainedSummary>,
}

/// The heap walk's view of the selected task(s): what they retain, by site
/// and by type, the guards in their state, and what they allocated that
/// nothing reaches.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RetainedSummary {
    /// Whether the selection is a bucket, which is no root and so retains
    /// nothing: only `unattributed` applies.
    pub bucket: bool,
    /// Reachable only from the task(s) (per task, summed).
    pub retained: Amount,
    /// Reachable from them and from other roots.
    pub shared: Amount,
    /// Estimated bytes `Trace` impls reported without an address.
    pub unlocated_bytes: u64,
    /// Top retained sites, biggest first (estimates from sampled blocks).
    pub sites: Vec<SiteRow>,
    /// Retained sites beyond the ones shown.
    pub more_sites: usize,
    /// Types `Trace` named among the retained blocks, biggest first.
    pub census: Vec<CensusLine>,
    /// Held guards found in their state.
    pub guards: Vec<GuardLine>,
    /// Memory they allocated that the walk found reachable from no root.
    pub unattributed: Amount,
}

/// One type of a [`RetainedSummary`]'s census.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CensusLine {
    /// The type.
    pub type_name: String,
    /// Blocks.
    pub objects: u64,
    /// Bytes.
    pub bytes: u64,
    /// Unused capacity.
    pub slack: u64,
}

/// A guard of a [`RetainedSummary`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GuardLine {
    /// The resource's id.
    pub resource: u64,
    /// Its label (`Mutex "accounts[2]"`), or its name when the snapshot
    /// does not list it.
    pub resource_label: String,
    /// Path from the task's root to the guard.
    pub path: String,
}

/// One allocation site of a [`TaskSites`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SiteRow {
    /// The site id in the snapshot.
    pub site: u32,
    /// Estimated live bytes the selected owner(s) allocated here.
    pub live_bytes: u64,
    /// Estimated live blocks.
    pub live_blocks: u64,
    /// The stack, innermost frame first.
    pub frames: Vec<SiteFrame>,
}

/// One frame of a [`SiteRow`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SiteFrame {
    /// Function name (the address, `0x…`, when unsymbolised).
    pub function: String,
    /// Source file, where known.
    pub file: Option<String>,
    /// Line, where known.
    pub line: Option<u32>,
}

/// `--task` named no task or bucket of the snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoSuchTask {
    /// What was asked for.
    pub query: String,
}

impl fmt::Display for NoSuchTask {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "no task named or numbered \"{}\" (and no bucket of that name) in the snapshot",
            printable(&self.query)
        )
    }
}

impl std::error::Error for NoSuchTask {}

/// The top `top` allocation sites of the tasks named `query` (all of them),
/// else of the task whose id is `query`, else of the bucket named `query`.
///
/// ```
/// # let snap: turbowish_snapshot::Snapshot = serde_json::from_str(include_str!("../../turbowish-snapshot/tests/fixtures/service.json")).unwrap();
/// let sites = turbowish_report::sites::task_sites(&snap, "request-handler", 5).unwrap();
/// assert_eq!(sites.task_ids.len(), 3);
/// assert!(turbowish_report::sites::task_sites(&snap, "no such task", 5).is_err());
/// ```
pub fn task_sites(snap: &Snapshot, query: &str, top: usize) -> Result<TaskSites, NoSuchTask> {
    let mut owners: Vec<Owner> = Vec::new();
    let mut memory = Counters::default();
    let mut task_ids = Vec::new();
    let mut name = query.to_owned();
    let by_name: Vec<_> = snap.tasks.iter().filter(|t| t.name == query).collect();
    let by_id: Vec<_> = match query.parse::<u64>() {
        Ok(id) if by_name.is_empty() => snap.tasks.iter().filter(|t| t.id == id).collect(),
        _ => Vec::new(),
    };
    for task in by_name.iter().chain(&by_id) {
        owners.push(Owner::Task(task.id));
        task_ids.push(task.id);
        memory.add(&task.memory);
        name.clone_from(&task.name);
    }
    if owners.is_empty() {
        if let Some(bucket) = snap.buckets.iter().find(|b| b.name == query) {
            owners.push(bucket.owner);
            memory = bucket.memory;
        }
    }
    if owners.is_empty() {
        return Err(NoSuchTask {
            query: query.to_owned(),
        });
    }

    let names = Names::new(snap);
    let mut per_site: HashMap<u32, (u64, u64)> = HashMap::new();
    for os in snap
        .owner_sites
        .iter()
        .filter(|os| owners.contains(&os.owner))
    {
        let entry = per_site.entry(os.site).or_default();
        entry.0 = entry.0.saturating_add(os.live_bytes);
        entry.1 = entry.1.saturating_add(os.live_blocks);
    }
    let sampled_live_bytes = per_site
        .values()
        .fold(0u64, |sum, (bytes, _)| sum.saturating_add(*bytes));
    let mut sites: Vec<SiteRow> = per_site
        .into_iter()
        .map(|(site, (live_bytes, live_blocks))| site_row(&names, site, live_bytes, live_blocks))
        .collect();
    sites.sort_by(|a, b| b.live_bytes.cmp(&a.live_bytes).then(a.site.cmp(&b.site)));
    let more_sites = sites.len().saturating_sub(top);
    sites.truncate(top);
    Ok(TaskSites {
        name,
        task_ids: task_ids.clone(),
        memory,
        sample_interval: snap.sample_interval,
        sampled_live_bytes,
        sites,
        more_sites,
        walk: retained_summary(snap, &names, &task_ids, &owners, top),
    })
}

fn retained_summary(
    snap: &Snapshot,
    names: &Names<'_>,
    task_ids: &[u64],
    owners: &[Owner],
    top: usize,
) -> Option<RetainedSummary> {
    let walk = snap.walk.as_ref()?;
    let mut summary = RetainedSummary {
        bucket: task_ids.is_empty(),
        retained: Amount::default(),
        shared: Amount::default(),
        unlocated_bytes: 0,
        sites: Vec::new(),
        more_sites: 0,
        census: Vec::new(),
        guards: Vec::new(),
        unattributed: Amount::default(),
    };
    let mut per_site: HashMap<u32, (u64, u64)> = HashMap::new();
    for t in walk.tasks.iter().filter(|t| task_ids.contains(&t.id)) {
        summary.retained.add(&t.retained);
        summary.shared.add(&t.shared);
        summary.unlocated_bytes = summary.unlocated_bytes.saturating_add(t.unlocated_bytes);
        for rs in &t.sites {
            let e = per_site.entry(rs.site).or_default();
            e.0 = e.0.saturating_add(rs.bytes);
            e.1 = e.1.saturating_add(rs.blocks);
        }
    }
    let mut sites: Vec<SiteRow> = per_site
        .into_iter()
        .map(|(site, (bytes, blocks))| site_row(names, site, bytes, blocks))
        .collect();
    sites.sort_by(|a, b| b.live_bytes.cmp(&a.live_bytes).then(a.site.cmp(&b.site)));
    summary.more_sites = sites.len().saturating_sub(top);
    sites.truncate(top);
    summary.sites = sites;

    let mine = |h: &WalkHolder| matches!(h, WalkHolder::Task { id, .. } if task_ids.contains(id));
    let mut census: Vec<CensusLine> = Vec::new();
    for row in walk.census.iter().filter(|c| mine(&c.holder)) {
        match census.iter_mut().find(|c| c.type_name == row.type_name) {
            Some(c) => {
                c.objects = c.objects.saturating_add(row.objects);
                c.bytes = c.bytes.saturating_add(row.bytes);
                c.slack = c.slack.saturating_add(row.slack);
            }
            None => census.push(CensusLine {
                type_name: row.type_name.clone(),
                objects: row.objects,
                bytes: row.bytes,
                slack: row.slack,
            }),
        }
    }
    census.sort_by(|a, b| {
        b.bytes
            .cmp(&a.bytes)
            .then_with(|| a.type_name.cmp(&b.type_name))
    });
    summary.census = census;
    summary.guards = walk
        .guards
        .iter()
        .filter(|g| mine(&g.holder))
        .map(|g| GuardLine {
            resource: g.resource,
            resource_label: match snap.resources.iter().find(|r| r.id == g.resource) {
                Some(r) => format!("{} \"{}\"", r.kind.name(), r.name),
                None => format!("\"{}\"", g.resource_name),
            },
            path: g.path.clone(),
        })
        .collect();
    for u in walk
        .unattributed
        .iter()
        .filter(|u| owners.contains(&u.owner))
    {
        summary.unattributed.add(&u.amount);
    }
    Some(summary)
}

fn site_row(names: &Names<'_>, site: u32, live_bytes: u64, live_blocks: u64) -> SiteRow {
    let stack = names.site(site).map(|s| s.stack.as_slice()).unwrap_or(&[]);
    SiteRow {
        site,
        live_bytes,
        live_blocks,
        frames: names
            .frames(stack)
            .iter()
            .map(|fr| SiteFrame {
                function: fr.function_name(),
                file: fr.file.map(str::to_owned),
                line: fr.line,
            })
            .collect(),
    }
}

impl fmt::Display for TaskSites {
    /// A header with the exact counters, then the sites with their stacks.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let who = match self.task_ids.len() {
            0 => format!("bucket \"{}\"", printable(&self.name)),
            1 => format!("task \"{}\" (#{})", printable(&self.name), self.task_ids[0]),
            n => {
                let ids: Vec<String> = self.task_ids.iter().map(|id| format!("#{id}")).collect();
                format!(
                    "task \"{}\" ({n} tasks: {})",
                    printable(&self.name),
                    ids.join(", ")
                )
            }
        };
        writeln!(
            f,
            "{who}: {} live in {} blocks, {} allocated in {} blocks",
            human_bytes(self.memory.live_bytes),
            self.memory.live_blocks,
            human_bytes(self.memory.total_bytes),
            self.memory.total_blocks,
        )?;
        self.fmt_sites(f)?;
        match &self.walk {
            Some(walk) => walk.fmt(f),
            None => Ok(()),
        }
    }
}

impl TaskSites {
    fn fmt_sites(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.sample_interval == 0 {
            return writeln!(
                f,
                "no allocation sites: this snapshot was taken with sampling off (sample_interval 0); \
                 the counters above are exact, but no stacks were recorded"
            );
        }
        if self.sites.is_empty() {
            return writeln!(
                f,
                "no sampled allocation of it is live (sampling every {} on average)",
                human_bytes(self.sample_interval)
            );
        }
        writeln!(
            f,
            "top allocation sites by estimated live bytes ({} sampled in all, one sample per {} on average), innermost frame first:",
            human_bytes(self.sampled_live_bytes),
            human_bytes(self.sample_interval),
        )?;
        write_sites(f, &self.sites, self.sampled_live_bytes, self.more_sites)
    }
}

impl fmt::Display for RetainedSummary {
    /// Retained and shared totals, the top retained sites, the census and
    /// the guards.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.bucket {
            return writeln!(
                f,
                "heap walk: {} of it in {} {} is reachable from no task or root",
                human_bytes(self.unattributed.bytes),
                self.unattributed.blocks,
                block_word(self.unattributed.blocks),
            );
        }
        write!(
            f,
            "heap walk: retains {} in {} {} (freed if it ended now); shares {} in {} {} with other tasks or roots",
            human_bytes(self.retained.bytes),
            self.retained.blocks,
            block_word(self.retained.blocks),
            human_bytes(self.shared.bytes),
            self.shared.blocks,
            block_word(self.shared.blocks),
        )?;
        if self.unlocated_bytes > 0 {
            write!(
                f,
                "; about {} more unlocated",
                human_bytes(self.unlocated_bytes)
            )?;
        }
        if self.unattributed.blocks > 0 {
            write!(
                f,
                "; {} in {} {} it allocated is reachable from nothing (leaked?)",
                human_bytes(self.unattributed.bytes),
                self.unattributed.blocks,
                block_word(self.unattributed.blocks),
            )?;
        }
        writeln!(f)?;
        if !self.sites.is_empty() {
            writeln!(
                f,
                "top retained sites by estimated bytes, innermost frame first:"
            )?;
            write_sites(f, &self.sites, self.retained.bytes, self.more_sites)?;
        }
        if !self.census.is_empty() {
            let width = self
                .census
                .iter()
                .map(|c| c.type_name.chars().count())
                .max()
                .unwrap_or(0)
                .clamp(4, MAX_NAME_WIDTH);
            writeln!(f, "retained types (as `Trace` named them):")?;
            writeln!(
                f,
                "  {:<width$}  {:>8}  {:>10}  {:>10}",
                "TYPE", "OBJECTS", "BYTES", "SLACK"
            )?;
            for c in &self.census {
                writeln!(
                    f,
                    "  {:<width$}  {:>8}  {:>10}  {:>10}",
                    printable(&c.type_name),
                    c.objects,
                    human_bytes(c.bytes),
                    human_bytes(c.slack)
                )?;
            }
        }
        if !self.guards.is_empty() {
            writeln!(f, "guards held in its state:")?;
            for g in &self.guards {
                writeln!(
                    f,
                    "  {} (#{}) at {}",
                    printable(&g.resource_label),
                    g.resource,
                    printable(&g.path)
                )?;
            }
        }
        Ok(())
    }
}

/// Sites with their share of `total` and their stacks.
fn write_sites(
    f: &mut fmt::Formatter<'_>,
    sites: &[SiteRow],
    total: u64,
    more_sites: usize,
) -> fmt::Result {
    for site in sites {
        writeln!(
            f,
            "{:>10}  {:>6}  {:>6} blocks  site {}",
            human_bytes(site.live_bytes),
            share(site.live_bytes, total),
            site.live_blocks,
            site.site
        )?;
        for frame in &site.frames {
            let mut text = format!("      {}", printable(&frame.function));
            match (&frame.file, frame.line) {
                (Some(file), Some(line)) => {
                    let _ = write!(text, "  {}:{line}", printable(file));
                }
                (Some(file), None) => {
                    let _ = write!(text, "  {}", printable(file));
                }
                _ => {}
            }
            writeln!(f, "{text}")?;
        }
    }
    if more_sites > 0 {
        writeln!(f, "({more_sites} more sites)")?;
    }
    Ok(())
}
