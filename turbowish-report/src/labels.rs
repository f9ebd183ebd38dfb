//! Lookups shared by the renderers: owner names and symbolised stacks.
//! Snapshots are untrusted input, so a dangling id renders as a placeholder
//! instead of panicking.

use std::collections::HashMap;

use turbowish_snapshot::schema::{CodeLocation, Owner, Site, Snapshot, TaskRef};

/// Names of owners and frames of sites of one snapshot.
pub(crate) struct Names<'a> {
    tasks: HashMap<u64, &'a str>,
    buckets: HashMap<Owner, &'a str>,
    locations: HashMap<u32, &'a CodeLocation>,
    sites: HashMap<u32, &'a Site>,
}

/// One source line of a symbolised stack.
pub(crate) struct Frame<'a> {
    pub(crate) function: &'a str,
    pub(crate) file: Option<&'a str>,
    pub(crate) line: Option<u32>,
    /// Set when the location has no symbol: the raw address.
    pub(crate) address: Option<u64>,
}

impl Frame<'_> {
    /// `function file:line`, the form used to match sites across snapshots.
    pub(crate) fn key(&self) -> String {
        match (self.address, self.file, self.line) {
            (Some(address), _, _) => format!("{address:#x}"),
            (None, Some(file), Some(line)) => format!("{} {file}:{line}", self.function),
            (None, Some(file), None) => format!("{} {file}", self.function),
            (None, None, _) => self.function.to_owned(),
        }
    }

    /// The function name alone (the address for unsymbolised frames).
    pub(crate) fn function_name(&self) -> String {
        match self.address {
            Some(address) => format!("{address:#x}"),
            None => self.function.to_owned(),
        }
    }
}

impl<'a> Names<'a> {
    pub(crate) fn new(snap: &'a Snapshot) -> Names<'a> {
        Names {
            tasks: snap.tasks.iter().map(|t| (t.id, t.name.as_str())).collect(),
            buckets: snap
                .buckets
                .iter()
                .map(|b| (b.owner, b.name.as_str()))
                .collect(),
            locations: snap.locations.iter().map(|l| (l.id, l)).collect(),
            sites: snap.sites.iter().map(|s| (s.id, s)).collect(),
        }
    }

    /// A task's name, or a bucket's.
    pub(crate) fn owner(&self, owner: Owner) -> String {
        match owner {
            Owner::Task(id) => match self.tasks.get(&id) {
                Some(name) => (*name).to_owned(),
                None => format!("task #{id}"),
            },
            other => match self.buckets.get(&other) {
                Some(name) => (*name).to_owned(),
                None => default_bucket_name(other),
            },
        }
    }

    pub(crate) fn site(&self, id: u32) -> Option<&'a Site> {
        self.sites.get(&id).copied()
    }

    pub(crate) fn location(&self, id: u32) -> Option<&'a CodeLocation> {
        self.locations.get(&id).copied()
    }

    /// The frames of a stack of location ids, innermost first; an inlined
    /// location contributes one frame per source line, innermost first.
    pub(crate) fn frames(&self, stack: &[u32]) -> Vec<Frame<'a>> {
        let mut frames = Vec::new();
        for &id in stack {
            match self.locations.get(&id) {
                Some(location) if !location.lines.is_empty() => {
                    frames.extend(location.lines.iter().map(|l| Frame {
                        function: &l.function,
                        file: l.file.as_deref(),
                        line: l.line,
                        address: None,
                    }))
                }
                Some(location) => frames.push(Frame {
                    function: "",
                    file: None,
                    line: None,
                    address: Some(location.address),
                }),
                None => frames.push(Frame {
                    function: "(missing location)",
                    file: None,
                    line: None,
                    address: None,
                }),
            }
        }
        frames
    }
}

fn default_bucket_name(owner: Owner) -> String {
    match owner {
        Owner::Task(id) => format!("task #{id}"),
        Owner::TokioTask(id) => format!("tokio task {id}"),
        Owner::Main => "main (outside tasks)".to_owned(),
        Owner::Internal => "internal (turbowish)".to_owned(),
        Owner::Overflow => "overflow".to_owned(),
    }
}

/// `#3`, `tokio #17`, `thread 2`.
pub(crate) fn task_ref(task: TaskRef) -> String {
    match task {
        TaskRef::Task(id) => format!("#{id}"),
        TaskRef::TokioTask(id) => format!("tokio #{id}"),
        TaskRef::Thread(n) => format!("thread {n}"),
    }
}
