//! Lookups shared by the renderers: owner names and symbolised stacks.
//! Snapshots are untrusted input, so a dangling id renders as a placeholder
//! instead of panicking.

use std::collections::HashMap;

use turbowish_snapshot::schema::{CodeLocation, Owner, Site, Snapshot, TaskRef};

/// Names of owners and frames of sites of one snapshot.
pub(crate) struct Names<'a> {
    tasks: HashMap<u64, &'a str>,
    buckets: HashMap<Owner, &'a str>,
    locations: ById<'a, CodeLocation>,
    sites: ById<'a, Site>,
}

/// Rows by their `u32` id: a vector when the ids are dense (a snapshot's
/// are `0..n`), so the look-up renderers do for every frame of every
/// stack is an index; a hash map for ids that are not.
enum ById<'a, T> {
    Dense(Vec<Option<&'a T>>),
    Sparse(HashMap<u32, &'a T>),
}

impl<'a, T> ById<'a, T> {
    fn new(rows: impl ExactSizeIterator<Item = (u32, &'a T)> + Clone) -> ById<'a, T> {
        let len = rows.len();
        let max = rows.clone().map(|(id, _)| id as usize).max().unwrap_or(0);
        if max <= 2 * len + 1024 {
            let mut dense = vec![None; max + 1];
            for (id, row) in rows {
                // The last of two rows with one id wins, as in a map.
                dense[id as usize] = Some(row);
            }
            ById::Dense(dense)
        } else {
            let mut sparse = HashMap::with_capacity(len);
            for (id, row) in rows {
                sparse.insert(id, row);
            }
            ById::Sparse(sparse)
        }
    }

    fn get(&self, id: u32) -> Option<&'a T> {
        match self {
            ById::Dense(rows) => rows.get(id as usize).copied().flatten(),
            ById::Sparse(rows) => rows.get(&id).copied(),
        }
    }
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
            locations: ById::new(snap.locations.iter().map(|l| (l.id, l))),
            sites: ById::new(snap.sites.iter().map(|s| (s.id, s))),
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
        self.sites.get(id)
    }

    pub(crate) fn location(&self, id: u32) -> Option<&'a CodeLocation> {
        self.locations.get(id)
    }

    /// The frames of a stack of location ids, innermost first; an inlined
    /// location contributes one frame per source line, innermost first.
    pub(crate) fn frames(&self, stack: &[u32]) -> Vec<Frame<'a>> {
        let mut frames = Vec::new();
        for &id in stack {
            match self.locations.get(id) {
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

/// A value per `u32` id (a location's, a site's), made once each: a vector
/// when the id is below a bound from the table's length (a snapshot's ids
/// are `0..n`), so the look-up renderers do for every frame of every stack
/// touches a small dense array, not a hash table; a hash map for the ids
/// beyond it.
pub(crate) struct PerId<V> {
    dense: Vec<Option<V>>,
    sparse: HashMap<u32, V>,
}

impl<V: Copy> PerId<V> {
    /// For the ids of a table of `len` rows.
    pub(crate) fn new(len: usize) -> PerId<V> {
        PerId {
            dense: vec![None; len.saturating_mul(2).saturating_add(1024)],
            sparse: HashMap::new(),
        }
    }

    /// The value of `id`, if made.
    pub(crate) fn get(&self, id: u32) -> Option<V> {
        match self.dense.get(id as usize) {
            Some(v) => *v,
            None => self.sparse.get(&id).copied(),
        }
    }

    /// The value of `id`, made by `make` the first time.
    pub(crate) fn get_or_insert_with(&mut self, id: u32, make: impl FnOnce() -> V) -> V {
        match self.dense.get_mut(id as usize) {
            Some(Some(v)) => *v,
            Some(slot) => *slot.insert(make()),
            None => *self.sparse.entry(id).or_insert_with(make),
        }
    }
}
