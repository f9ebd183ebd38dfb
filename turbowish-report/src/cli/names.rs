//! Lookups shared by the renderers: owner names and symbolised stacks.
//! Snapshots are untrusted input, so a dangling id renders as a placeholder
//! instead of panicking.

use std::collections::HashMap;

use crate::schema::{CodeLocation, OwnerRef, Site, Snapshot, TaskRef};

/// Names of owners and frames of sites of one snapshot.
pub(crate) struct Names<'a> {
    tasks: HashMap<u64, &'a str>,
    buckets: HashMap<OwnerRef, &'a str>,
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
    pub(crate) fn owner(&self, owner: OwnerRef) -> String {
        match owner {
            OwnerRef::Task(id) => match self.tasks.get(&id) {
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

fn default_bucket_name(owner: OwnerRef) -> String {
    match owner {
        OwnerRef::Task(id) => format!("task #{id}"),
        OwnerRef::TokioTask(id) => format!("tokio task {id}"),
        OwnerRef::Main => "main (outside tasks)".to_owned(),
        OwnerRef::Internal => "internal (turbowish)".to_owned(),
        OwnerRef::Overflow => "overflow".to_owned(),
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

/// `+1.5 KiB`, `-512 B`, `0 B`.
pub(crate) fn signed_bytes(delta: i64) -> String {
    let magnitude = crate::human_bytes(delta.unsigned_abs());
    match delta.signum() {
        1 => format!("+{magnitude}"),
        -1 => format!("-{magnitude}"),
        _ => magnitude,
    }
}

/// `new - old`, saturated to `i64`.
pub(crate) fn delta(old: u64, new: u64) -> i64 {
    let d = i128::from(new) - i128::from(old);
    i64::try_from(d).unwrap_or(if d < 0 { i64::MIN } else { i64::MAX })
}

/// `part` as a percentage of `whole` (0 when `whole` is 0).
pub(crate) fn percent(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 * 100.0 / whole as f64
    }
}

/// A name from a snapshot as shown on a terminal: control characters
/// (an escape sequence in a task's name, a NUL, a line break) are shown
/// escaped (`\u{1b}`), not sent to the terminal.
pub(crate) fn printable(name: &str) -> std::borrow::Cow<'_, str> {
    if !name.chars().any(char::is_control) {
        return std::borrow::Cow::Borrowed(name);
    }
    name.chars()
        .map(|c| {
            if c.is_control() {
                c.escape_unicode().to_string()
            } else {
                c.to_string()
            }
        })
        .collect::<String>()
        .into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signed_sizes_and_saturating_deltas() {
        assert_eq!(signed_bytes(1536), "+1.5 KiB");
        assert_eq!(signed_bytes(-512), "-512 B");
        assert_eq!(signed_bytes(0), "0 B");
        assert_eq!(signed_bytes(i64::MIN), "-8.0 EiB");
        assert_eq!(delta(0, u64::MAX), i64::MAX);
        assert_eq!(delta(u64::MAX, 0), i64::MIN);
        assert_eq!(delta(10, 4), -6);
        assert_eq!(percent(1, 0), 0.0);
        assert_eq!(percent(1, 4), 25.0);
    }

    #[test]
    fn control_characters_are_shown_escaped() {
        assert_eq!(printable("cache-filler"), "cache-filler");
        assert_eq!(printable("a\u{1b}[31mb\n"), "a\\u{1b}[31mb\\u{a}");
    }
}
