//! `turbowish export --format pprof`: the snapshot's live-allocation
//! estimates as a gzipped pprof `profile.proto`, with the owning task as a
//! `task` label on every sample.
//!
//! The messages below declare the subset of `perftools.profiles.Profile`
//! written here, with the field numbers and types of pprof's
//! `profile.proto`; prost derives the encoder, so no `protoc` is needed.

use std::collections::HashMap;
use std::io::Write as _;

use prost::Message;

use crate::labels::Names;
use turbowish_snapshot::schema::{Owner, Snapshot};

/// Encodes the snapshot as a gzipped pprof heap profile.
///
/// Sample types are `inuse_objects`/`count` and `inuse_space`/`bytes`
/// (the default); the period is the sampling interval in bytes. One sample
/// per owner and site, its stack leaf first, its values the estimated live
/// blocks and bytes, labelled `task` = the owner's name. Without sampled
/// sites, each owner gets one sample of its exact live memory at a single
/// location named after it.
///
/// ```
/// # let snap: turbowish_snapshot::Snapshot = serde_json::from_str(include_str!("../../turbowish-snapshot/tests/fixtures/service.json")).unwrap();
/// let gz = turbowish_report::pprof::pprof_gz(&snap);
/// assert_eq!(&gz[..2], &[0x1f, 0x8b]); // gzip magic
/// ```
pub fn pprof_gz(snap: &Snapshot) -> Vec<u8> {
    let profile = build(snap).encode_to_vec();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    // Writing into a Vec cannot fail.
    let _ = gz.write_all(&profile);
    gz.finish().unwrap_or_default()
}

fn build(snap: &Snapshot) -> Profile {
    let mut b = Builder::default();
    b.string(""); // string_table[0] must be "".
    let names = Names::new(snap);
    let task_key = b.string("task");

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

    let mut sample = |b: &mut Builder, owner: String, location_id: Vec<u64>, blocks, bytes| {
        let label = Label {
            key: task_key,
            str: b.string(&owner),
            ..Label::default()
        };
        profile.sample.push(Sample {
            location_id,
            value: vec![to_i64(blocks), to_i64(bytes)],
            label: vec![label],
        });
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
            sample(
                &mut b,
                name,
                vec![location],
                memory.live_blocks,
                memory.live_bytes,
            );
        }
    } else {
        for os in &snap.owner_sites {
            let stack = names
                .site(os.site)
                .map(|s| s.stack.as_slice())
                .unwrap_or(&[]);
            let ids = stack.iter().map(|&id| b.location(&names, id)).collect();
            sample(
                &mut b,
                names.owner(os.owner),
                ids,
                os.live_blocks,
                os.live_bytes,
            );
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

/// Interns strings, functions and locations.
#[derive(Default)]
struct Builder {
    strings: Vec<String>,
    string_ids: HashMap<String, i64>,
    functions: Vec<Function>,
    function_ids: HashMap<(String, String), u64>,
    locations: Vec<Location>,
    /// Snapshot location id -> pprof location id.
    location_ids: HashMap<u32, u64>,
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
            system_name: self.string(name),
            filename: self.string(file),
            start_line: 0,
        };
        self.functions.push(function);
        self.function_ids.insert(key, id);
        id
    }

    /// The pprof location of a snapshot location (ids must be nonzero).
    fn location(&mut self, names: &Names<'_>, id: u32) -> u64 {
        if let Some(&pid) = self.location_ids.get(&id) {
            return pid;
        }
        let pid = self.locations.len() as u64 + 1;
        let mut location = Location {
            id: pid,
            ..Location::default()
        };
        if let Some(loc) = names.location(id) {
            location.address = loc.address;
            self.min_address = Some(self.min_address.map_or(loc.address, |m| m.min(loc.address)));
            self.max_address = Some(self.max_address.map_or(loc.address, |m| m.max(loc.address)));
            // Both the snapshot and pprof list inlined lines innermost first.
            for line in &loc.lines {
                let function_id = self.function(&line.function, line.file.as_deref().unwrap_or(""));
                location.line.push(Line {
                    function_id,
                    line: i64::from(line.line.unwrap_or(0)),
                });
            }
        }
        self.locations.push(location);
        self.location_ids.insert(id, pid);
        pid
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
