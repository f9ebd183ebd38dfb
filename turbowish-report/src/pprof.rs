//! `turbowish export --format pprof`: the snapshot's live-allocation
//! estimates as a gzipped pprof `profile.proto`, with the allocating task
//! as a `task` label on every sample and, when the snapshot has a heap
//! walk, the retaining task as a `retained_by` label.
//!
//! The messages below declare the subset of `perftools.profiles.Profile`
//! written here, with the field numbers and types of pprof's
//! `profile.proto`; prost derives the encoder, so no `protoc` is needed.
//!
//! What real clients need (checked with `go tool pprof` in
//! `tests/pprof_go.rs`):
//! - the allocator's own frames (`__rust_alloc`, `alloc::alloc`,
//!   `turbowish_alloc`, the standard library's `RawVec` growth, ...) are
//!   left out of every stack, innermost, so `-top` starts at the code that
//!   asked for memory;
//! - function names are written in full and `system_name` is left empty:
//!   pprof treats a function whose system name equals its name as not yet
//!   demangled, and its C++ heuristics then strip everything between `<`
//!   and `>`, which turns `<Map<I,F> as Iterator>::fold` into `::fold`;
//! - each location lists its inlined lines innermost first, as the
//!   snapshot does.

use std::collections::HashMap;
use std::io::Write as _;

use prost::Message;

use crate::labels::Names;
use turbowish_snapshot::schema::{is_library_function, Owner, OwnerSite, Snapshot, Walk};

/// Encodes the snapshot as a gzipped pprof heap profile.
///
/// Sample types are `inuse_objects`/`count` and `inuse_space`/`bytes`
/// (the default); the period is the sampling interval in bytes. One sample
/// per owner and site, its stack leaf first, its values the estimated live
/// blocks and bytes, labelled `task` = the owner's name. Without sampled
/// sites, each owner gets one sample of its exact live memory at a single
/// location named after it.
///
/// With a heap walk, each owner's sample at a site is split by who retains
/// it, labelled `retained_by` = the retaining task's name, or
/// [`NOT_RETAINED_BY_ONE_TASK`]. The walk gives bytes per retaining task
/// and site, the sites give bytes per allocating owner and site; within a
/// site the two are matched (a task's own allocations first, then in
/// order), which is exact when the site has one allocating owner.
///
/// ```
/// # let snap: turbowish_snapshot::Snapshot = serde_json::from_str(include_str!("../../turbowish-snapshot/tests/fixtures/service.json")).unwrap();
/// let gz = turbowish_report::pprof::pprof_gz(&snap);
/// assert_eq!(&gz[..2], &[0x1f, 0x8b]); // gzip magic
/// ```
pub fn pprof_gz(snap: &Snapshot) -> Vec<u8> {
    // The fastest level: a profile of millions of samples compresses in a
    // fraction of the time of the default, a few percent larger.
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    // Samples are encoded and compressed as they are made, never held: a
    // message's fields may come in any order, and a repeated field's
    // occurrences are concatenated, so the samples go first and the rest
    // of the profile (its tables complete only at the end) after them.
    // In batches: each write into the encoder costs a pass over its
    // output buffer, whatever the write's size.
    const BATCH: usize = 1 << 20;
    let mut buf = Vec::with_capacity(BATCH + 4096);
    let profile = build(snap, |sample| {
        prost::encoding::message::encode(2, sample, &mut buf);
        if buf.len() >= BATCH {
            // Writing into a Vec cannot fail.
            let _ = gz.write_all(&buf);
            buf.clear();
        }
    });
    let _ = gz.write_all(&buf);
    let _ = gz.write_all(&profile.encode_to_vec());
    gz.finish().unwrap_or_default()
}

/// The `retained_by` label of memory no single task retains: shared by
/// several roots, held by a named root, or reachable from none.
pub const NOT_RETAINED_BY_ONE_TASK: &str = "(not retained by one task)";

/// Whether the snapshot's stacks were symbolised without line tables (a
/// release build without debug info): no location names a source file.
/// Such stacks cannot show code inlined into its caller, often the user's
/// async block inside the task's poll.
///
/// ```
/// # let snap: turbowish_snapshot::Snapshot = serde_json::from_str(include_str!("../../turbowish-snapshot/tests/fixtures/service.json")).unwrap();
/// assert!(!turbowish_report::pprof::lacks_line_tables(&snap));
/// ```
pub fn lacks_line_tables(snap: &Snapshot) -> bool {
    !snap.locations.is_empty()
        && snap
            .locations
            .iter()
            .flat_map(|l| &l.lines)
            .all(|l| l.file.is_none())
}

/// The allocator's own functions and the standard library's allocation
/// machinery: the global allocator's entry points and shims,
/// `alloc::alloc`, TurboWish's allocator, the unwinder taking the sample,
/// libc's allocator, and `std`/`core`/`alloc`/`hashbrown` code such as
/// `RawVec` growth inlined at the call (the rule the capture cuts stacks
/// by, for snapshots written before it did). Left out of exported stacks,
/// innermost, unless nothing else is left.
fn is_allocator_frame(function: &str) -> bool {
    const C: &[&str] = &["malloc", "calloc", "realloc", "posix_memalign"];
    is_library_function(function) || C.contains(&function)
}

/// The standard library's sources (`/rustc/<hash>/library/...`, its
/// vendored crates under `/rust/deps/`) and TurboWish's allocator's: how
/// the short names of a `debug = "line-tables-only"` build
/// (`from_elem<u8>`) are told apart.
fn is_library_file(file: &str) -> bool {
    file.starts_with("/rustc/")
        || file.starts_with("/rust/deps/")
        || file.contains("/turbowish-alloc/src/")
        || file.contains("/turbowish-alloc-")
}

/// The profile, each of its samples passed to `sample` rather than kept.
fn build(snap: &Snapshot, mut sample: impl FnMut(&Sample)) -> Profile {
    let mut b = Builder {
        location_ids: vec![[0; 2]; snap.locations.len().saturating_mul(2) + 1024],
        ..Builder::default()
    };
    b.string(""); // string_table[0] must be "".
    let names = Names::new(snap);
    let task_key = b.string("task");
    let retained_key = b.string("retained_by");

    let mut profile = Profile {
        sample_type: vec![
            ValueType {
                r#type: b.string("inuse_objects"),
                unit: b.string("count"),
            },
            ValueType {
                r#type: b.string("inuse_space"),
                unit: b.string("bytes"),
            },
        ],
        period_type: Some(ValueType {
            r#type: b.string("space"),
            unit: b.string("bytes"),
        }),
        period: i64::try_from(snap.sample_interval).unwrap_or(i64::MAX),
        time_nanos: i64::try_from(u128::from(snap.taken_at_ms) * 1_000_000).unwrap_or(i64::MAX),
        ..Profile::default()
    };
    profile.default_sample_type = b.string("inuse_space");
    profile.comment = vec![b.string(&format!(
        "TurboWish snapshot of {} (pid {})",
        snap.process.executable, snap.process.pid
    ))];

    let label = |key, value| Label {
        key,
        str: value,
        ..Label::default()
    };

    if snap.owner_sites.is_empty() {
        let owners = snap
            .tasks
            .iter()
            .map(|t| (Owner::Task(t.id), t.memory))
            .chain(
                snap.buckets
                    .iter()
                    .map(|bucket| (bucket.owner, bucket.memory)),
            );
        for (owner, memory) in owners {
            if memory.live_bytes == 0 {
                continue;
            }
            let name = names.owner(owner);
            let location = b.synthetic_location(&name);
            let task = b.string(&name);
            sample(&Sample {
                location_id: vec![location],
                value: vec![to_i64(memory.live_blocks), to_i64(memory.live_bytes)],
                label: vec![label(task_key, task)],
            });
        }
    } else {
        let mut retained = snap
            .walk
            .as_ref()
            .map(|walk| Retainers::new(walk, &snap.owner_sites, &mut b));
        let mut owner_ids: HashMap<Owner, i64> = HashMap::new();
        let mut splits = Vec::new();
        // One sample, refilled for each row: no allocation per sample.
        let mut s = Sample::default();
        for (row, os) in snap.owner_sites.iter().enumerate() {
            let task = *owner_ids
                .entry(os.owner)
                .or_insert_with(|| b.string(&names.owner(os.owner)));
            b.stack(&names, os.site, &mut s.location_id);
            splits.clear();
            match &mut retained {
                None => splits.push((None, os.live_blocks, os.live_bytes)),
                Some(retained) => retained.split(row, os, &mut splits),
            }
            for &(by, blocks, bytes) in &splits {
                s.value.clear();
                s.value.extend([to_i64(blocks), to_i64(bytes)]);
                s.label.clear();
                s.label.push(label(task_key, task));
                if let Some(by) = by {
                    s.label.push(label(retained_key, by));
                }
                sample(&s);
            }
        }
    }

    // One mapping for the executable, marked as fully symbolised so that
    // pprof does not try to symbolise the addresses again.
    if let (Some(low), Some(high)) = (b.min_address, b.max_address) {
        profile.mapping.push(Mapping {
            id: 1,
            memory_start: low,
            memory_limit: high.saturating_add(1),
            file_offset: 0,
            filename: b.string(&snap.process.executable),
            build_id: 0,
            has_functions: true,
            has_filenames: true,
            has_line_numbers: true,
            has_inline_frames: true,
        });
        for location in &mut b.locations {
            if location.address != 0 {
                location.mapping_id = 1;
            }
        }
    }
    profile.location = std::mem::take(&mut b.locations);
    profile.function = std::mem::take(&mut b.functions);
    profile.string_table = std::mem::take(&mut b.strings);
    profile
}

fn to_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// The walk's retained figures per site, for the `retained_by` label.
struct Retainers {
    /// Site id -> who retains how much there, and how much of it is not
    /// yet given to an owner row.
    by_site: HashMap<u32, Vec<Retainer>>,
    /// Per owner row (in `owner_sites` order): the part its own task
    /// retains, as (index in its site's retainers, blocks, bytes).
    own: Vec<Option<(usize, u64, u64)>>,
    /// The label of what no single task retains.
    none: i64,
}

/// One task retaining memory at one site.
struct Retainer {
    /// Its name's string id.
    name: i64,
    task: u64,
    /// Blocks and bytes not yet given to an owner row.
    blocks: u64,
    bytes: u64,
}

impl Retainers {
    /// Shares each site's retained figures out over its owner rows: each
    /// row first gets what its own task retains there.
    fn new(walk: &Walk, owner_sites: &[OwnerSite], b: &mut Builder) -> Retainers {
        let mut by_site: HashMap<u32, Vec<Retainer>> = HashMap::new();
        for t in &walk.tasks {
            let name = b.string(&t.name);
            for s in &t.sites {
                by_site.entry(s.site).or_default().push(Retainer {
                    name,
                    task: t.id,
                    blocks: s.blocks,
                    bytes: s.bytes,
                });
            }
        }
        let own = owner_sites
            .iter()
            .map(|os| {
                let Owner::Task(id) = os.owner else {
                    return None;
                };
                let retainers = by_site.get_mut(&os.site)?;
                let i = retainers.iter().position(|r| r.task == id)?;
                let r = &mut retainers[i];
                let (blocks, bytes) = (r.blocks.min(os.live_blocks), r.bytes.min(os.live_bytes));
                r.blocks -= blocks;
                r.bytes -= bytes;
                Some((i, blocks, bytes))
            })
            .collect();
        Retainers {
            by_site,
            own,
            none: b.string(NOT_RETAINED_BY_ONE_TASK),
        }
    }

    /// Splits owner row `row` into `(label, blocks, bytes)` parts that add
    /// up to it: its own task's part, then other tasks' retained figures
    /// not yet given out, in order, then the rest as not retained by one
    /// task. Parts of one label are one.
    fn split(&mut self, row: usize, os: &OwnerSite, out: &mut Vec<(Option<i64>, u64, u64)>) {
        let (mut blocks, mut bytes) = (os.live_blocks, os.live_bytes);
        let give = |out: &mut Vec<(Option<i64>, u64, u64)>, name: i64, b: u64, n: u64| {
            if b == 0 && n == 0 {
                return;
            }
            match out.iter_mut().find(|part| part.0 == Some(name)) {
                Some(part) => {
                    part.1 += b;
                    part.2 += n;
                }
                None => out.push((Some(name), b, n)),
            }
        };
        if let Some(retainers) = self.by_site.get_mut(&os.site) {
            if let Some((i, b, n)) = self.own[row] {
                give(out, retainers[i].name, b, n);
                blocks -= b;
                bytes -= n;
            }
            for r in retainers.iter_mut() {
                if blocks == 0 && bytes == 0 {
                    break;
                }
                let (b, n) = (r.blocks.min(blocks), r.bytes.min(bytes));
                r.blocks -= b;
                r.bytes -= n;
                blocks -= b;
                bytes -= n;
                give(out, r.name, b, n);
            }
        }
        if bytes > 0 || blocks > 0 || out.is_empty() {
            out.push((Some(self.none), blocks, bytes));
        }
    }
}

/// A cached location that is all allocator, left out where innermost.
const NO_LOCATION: u32 = u32::MAX;

/// Interns strings, functions and locations.
#[derive(Default)]
struct Builder {
    strings: Vec<String>,
    string_ids: HashMap<String, i64>,
    functions: Vec<Function>,
    function_ids: HashMap<(String, String), u64>,
    locations: Vec<Location>,
    /// Snapshot location id -> pprof location ids in full and with its
    /// leading allocator lines cut (0: not made yet, [`NO_LOCATION`]: all
    /// allocator): a vector, as snapshot ids are dense (`0..n`); ids far
    /// beyond the table's length go to `sparse_location_ids`.
    location_ids: Vec<[u32; 2]>,
    sparse_location_ids: HashMap<(u32, bool), u32>,
    synthetic_ids: HashMap<String, u64>,
    min_address: Option<u64>,
    max_address: Option<u64>,
}

impl Builder {
    fn string(&mut self, s: &str) -> i64 {
        if let Some(&id) = self.string_ids.get(s) {
            return id;
        }
        let id = self.strings.len() as i64;
        self.strings.push(s.to_owned());
        self.string_ids.insert(s.to_owned(), id);
        id
    }

    fn function(&mut self, name: &str, file: &str) -> u64 {
        let key = (name.to_owned(), file.to_owned());
        if let Some(&id) = self.function_ids.get(&key) {
            return id;
        }
        let id = self.functions.len() as u64 + 1;
        let function = Function {
            id,
            name: self.string(name),
            // Empty, not the name again: see the module's notes.
            system_name: 0,
            filename: self.string(file),
            start_line: 0,
        };
        self.functions.push(function);
        self.function_ids.insert(key, id);
        id
    }

    /// A site's pprof stack, leaf first, into `ids`: without the
    /// allocator's frames (all of them when nothing else is left).
    fn stack(&mut self, names: &Names<'_>, site: u32, ids: &mut Vec<u64>) {
        ids.clear();
        let stack = names.site(site).map(|s| s.stack.as_slice()).unwrap_or(&[]);
        for &id in stack {
            let trimmed = ids.is_empty();
            if let Some(pid) = self.location(names, id, trimmed) {
                ids.push(pid);
            }
        }
        if ids.is_empty() {
            ids.extend(
                stack
                    .iter()
                    .filter_map(|&id| self.location(names, id, false)),
            );
        }
    }

    /// The pprof location of a snapshot location (ids must be nonzero).
    /// `trimmed`: the location is innermost so far, so its leading
    /// allocator lines go (and the whole location when it has nothing
    /// else: `None`).
    fn location(&mut self, names: &Names<'_>, id: u32, trimmed: bool) -> Option<u64> {
        // Looked up before the snapshot's location is touched: that is a
        // cache miss per frame on a big snapshot.
        let slot = usize::from(trimmed);
        let dense = (id as usize) < self.location_ids.len();
        let cached = if dense {
            self.location_ids[id as usize][slot]
        } else {
            self.sparse_location_ids
                .get(&(id, trimmed))
                .copied()
                .unwrap_or(0)
        };
        match cached {
            0 => {}
            NO_LOCATION => return None,
            pid => return Some(u64::from(pid)),
        }
        let pid = self.new_location(names, id, trimmed);
        let value = pid.map_or(NO_LOCATION, |pid| u32::try_from(pid).unwrap_or(NO_LOCATION));
        if dense {
            self.location_ids[id as usize][slot] = value;
        } else {
            self.sparse_location_ids.insert((id, trimmed), value);
        }
        pid
    }

    /// [`location`](Self::location), made: `None` when `trimmed` and the
    /// location is all allocator.
    fn new_location(&mut self, names: &Names<'_>, id: u32, trimmed: bool) -> Option<u64> {
        let loc = names.location(id);
        let skip = match loc {
            Some(loc) if trimmed => loc
                .lines
                .iter()
                .take_while(|l| {
                    is_allocator_frame(&l.function)
                        || l.file.as_deref().is_some_and(is_library_file)
                })
                .count(),
            _ => 0,
        };
        if let Some(loc) = loc {
            if skip > 0 && skip == loc.lines.len() {
                return None;
            }
        }
        if trimmed && skip == 0 {
            // Nothing to cut: the location in full.
            return self.location(names, id, false);
        }
        let pid = self.locations.len() as u64 + 1;
        let mut location = Location {
            id: pid,
            ..Location::default()
        };
        if let Some(loc) = loc {
            location.address = loc.address;
            self.min_address = Some(self.min_address.map_or(loc.address, |m| m.min(loc.address)));
            self.max_address = Some(self.max_address.map_or(loc.address, |m| m.max(loc.address)));
            // Both the snapshot and pprof list inlined lines innermost first.
            for line in &loc.lines[skip..] {
                let function_id = self.function(&line.function, line.file.as_deref().unwrap_or(""));
                location.line.push(Line {
                    function_id,
                    line: i64::from(line.line.unwrap_or(0)),
                });
            }
        }
        self.locations.push(location);
        Some(pid)
    }

    /// A location standing for an owner when there are no stacks.
    fn synthetic_location(&mut self, name: &str) -> u64 {
        if let Some(&id) = self.synthetic_ids.get(name) {
            return id;
        }
        let id = self.locations.len() as u64 + 1;
        let function_id = self.function(name, "");
        self.locations.push(Location {
            id,
            line: vec![Line {
                function_id,
                line: 0,
            }],
            ..Location::default()
        });
        self.synthetic_ids.insert(name.to_owned(), id);
        id
    }
}

#[derive(Clone, PartialEq, Message)]
struct Profile {
    #[prost(message, repeated, tag = "1")]
    sample_type: Vec<ValueType>,
    #[prost(message, repeated, tag = "2")]
    sample: Vec<Sample>,
    #[prost(message, repeated, tag = "3")]
    mapping: Vec<Mapping>,
    #[prost(message, repeated, tag = "4")]
    location: Vec<Location>,
    #[prost(message, repeated, tag = "5")]
    function: Vec<Function>,
    #[prost(string, repeated, tag = "6")]
    string_table: Vec<String>,
    #[prost(int64, tag = "9")]
    time_nanos: i64,
    #[prost(message, optional, tag = "11")]
    period_type: Option<ValueType>,
    #[prost(int64, tag = "12")]
    period: i64,
    #[prost(int64, repeated, tag = "13")]
    comment: Vec<i64>,
    #[prost(int64, tag = "14")]
    default_sample_type: i64,
}

#[derive(Clone, PartialEq, Message)]
struct ValueType {
    #[prost(int64, tag = "1")]
    r#type: i64,
    #[prost(int64, tag = "2")]
    unit: i64,
}

#[derive(Clone, PartialEq, Message)]
struct Sample {
    #[prost(uint64, repeated, tag = "1")]
    location_id: Vec<u64>,
    #[prost(int64, repeated, tag = "2")]
    value: Vec<i64>,
    #[prost(message, repeated, tag = "3")]
    label: Vec<Label>,
}

#[derive(Clone, PartialEq, Message)]
struct Label {
    #[prost(int64, tag = "1")]
    key: i64,
    #[prost(int64, tag = "2")]
    str: i64,
    #[prost(int64, tag = "3")]
    num: i64,
    #[prost(int64, tag = "4")]
    num_unit: i64,
}

#[derive(Clone, PartialEq, Message)]
struct Mapping {
    #[prost(uint64, tag = "1")]
    id: u64,
    #[prost(uint64, tag = "2")]
    memory_start: u64,
    #[prost(uint64, tag = "3")]
    memory_limit: u64,
    #[prost(uint64, tag = "4")]
    file_offset: u64,
    #[prost(int64, tag = "5")]
    filename: i64,
    #[prost(int64, tag = "6")]
    build_id: i64,
    #[prost(bool, tag = "7")]
    has_functions: bool,
    #[prost(bool, tag = "8")]
    has_filenames: bool,
    #[prost(bool, tag = "9")]
    has_line_numbers: bool,
    #[prost(bool, tag = "10")]
    has_inline_frames: bool,
}

#[derive(Clone, PartialEq, Message)]
struct Location {
    #[prost(uint64, tag = "1")]
    id: u64,
    #[prost(uint64, tag = "2")]
    mapping_id: u64,
    #[prost(uint64, tag = "3")]
    address: u64,
    #[prost(message, repeated, tag = "4")]
    line: Vec<Line>,
}

#[derive(Clone, PartialEq, Message)]
struct Line {
    #[prost(uint64, tag = "1")]
    function_id: u64,
    #[prost(int64, tag = "2")]
    line: i64,
}

#[derive(Clone, PartialEq, Message)]
struct Function {
    #[prost(uint64, tag = "1")]
    id: u64,
    #[prost(int64, tag = "2")]
    name: i64,
    #[prost(int64, tag = "3")]
    system_name: i64,
    #[prost(int64, tag = "4")]
    filename: i64,
    #[prost(int64, tag = "5")]
    start_line: i64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use turbowish_snapshot::schema::{CodeLocation, Site, SourceLine};

    fn fixture(name: &str) -> Snapshot {
        let path = format!(
            "{}/../turbowish-snapshot/tests/fixtures/{name}",
            env!("CARGO_MANIFEST_DIR")
        );
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
    }

    /// The export, gunzipped.
    fn pprof(snap: &Snapshot) -> Vec<u8> {
        use std::io::Read as _;
        let mut raw = Vec::new();
        flate2::read::GzDecoder::new(&pprof_gz(snap)[..])
            .read_to_end(&mut raw)
            .unwrap();
        raw
    }

    fn line(function: &str) -> SourceLine {
        SourceLine {
            function: function.to_owned(),
            file: Some("src/app.rs".to_owned()),
            line: Some(7),
        }
    }

    /// The function names of a sample's stack, leaf first.
    fn stack(p: &Profile, sample: &Sample) -> Vec<String> {
        sample
            .location_id
            .iter()
            .flat_map(|&id| &p.location[id as usize - 1].line)
            .map(|l| {
                let f = &p.function[l.function_id as usize - 1];
                p.string_table[f.name as usize].clone()
            })
            .collect()
    }

    fn labels(p: &Profile, sample: &Sample) -> Vec<(String, String)> {
        sample
            .label
            .iter()
            .map(|l| {
                (
                    p.string_table[l.key as usize].clone(),
                    p.string_table[l.str as usize].clone(),
                )
            })
            .collect()
    }

    #[test]
    fn allocator_frames_go_and_names_stay_whole_with_no_system_name() {
        let mut snap = fixture("service.json");
        let base = snap.locations.len() as u32;
        let trait_method = "<app::Cache as core::default::Default>::default";
        snap.locations.extend([
            CodeLocation {
                id: base,
                address: 0x10,
                lines: vec![line("__rustc::__rust_alloc")],
            },
            // The allocator inlined into the user's function.
            CodeLocation {
                id: base + 1,
                address: 0x20,
                lines: vec![line("alloc::alloc::alloc"), line(trait_method)],
            },
        ]);
        let site = snap.sites.len() as u32;
        snap.sites.push(Site {
            id: site,
            stack: vec![base, base + 1, 3],
            live_bytes: 4096,
            live_blocks: 1,
            samples: 1,
        });
        snap.owner_sites.push(OwnerSite {
            owner: Owner::Task(5),
            site,
            live_bytes: 4096,
            live_blocks: 1,
        });
        let p = Profile::decode(&pprof(&snap)[..]).unwrap();
        let sample = p.sample.last().unwrap();
        let names = stack(&p, sample);
        assert_eq!(names[0], trait_method, "{names:?}");
        assert!(names.iter().all(|n| !is_allocator_frame(n)), "{names:?}");
        assert!(p.function.iter().all(|f| f.system_name == 0));
        assert_eq!(labels(&p, sample), [("task".into(), "cache-filler".into())]);
        // A stack of nothing but the allocator keeps it: it is all there is.
        assert!(p.sample.iter().all(|s| !s.location_id.is_empty()));
    }

    #[test]
    fn a_walk_adds_who_retains_each_part() {
        let snap = fixture("service-walk.json");
        let p = Profile::decode(&pprof(&snap)[..]).unwrap();
        // cache-filler's site 0: 5,111,808 of its 5,242,880 bytes retained
        // by itself, the rest by no one task.
        let of_site0: Vec<(Vec<(String, String)>, i64)> = p
            .sample
            .iter()
            .filter(|s| labels(&p, s)[0].1 == "cache-filler")
            .map(|s| (labels(&p, s), s.value[1]))
            .collect();
        let by = |who: &str| ("retained_by".to_owned(), who.to_owned());
        let task = ("task".to_owned(), "cache-filler".to_owned());
        assert_eq!(
            of_site0,
            [
                (vec![task.clone(), by("cache-filler")], 5_111_808),
                (vec![task, by(NOT_RETAINED_BY_ONE_TASK)], 131_072),
            ]
        );
        // Every owner row's parts add up to it.
        let total: i64 = p.sample.iter().map(|s| s.value[1]).sum();
        let rows: u64 = snap.owner_sites.iter().map(|os| os.live_bytes).sum();
        assert_eq!(total as u64, rows);
        // Without a walk, one label.
        let p = Profile::decode(&pprof(&fixture("service.json"))[..]).unwrap();
        assert!(p.sample.iter().all(|s| s.label.len() == 1));
    }
}
