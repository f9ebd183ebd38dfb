//! Sampled allocation sites: the allocator's live samples grouped by stack,
//! each distinct instruction pointer symbolised once, with per-owner
//! estimates.
//!
//! Symbolising takes `backtrace`'s global lock and reads debug info, so it
//! runs here, on the thread taking the snapshot, never in the allocator.

use std::collections::HashMap;
use std::ffi::c_void;

use turbowish_alloc::{Owner, Sample};

use turbowish_snapshot::schema::{
    self, is_library_function, CodeLocation, OwnerSite, Site, SourceLine,
};

/// The site tables of a snapshot.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct Sites {
    pub(crate) locations: Vec<CodeLocation>,
    pub(crate) sites: Vec<Site>,
    pub(crate) owner_sites: Vec<OwnerSite>,
    /// Each sample's site, by the sampled block's address: what the heap
    /// walk's per-site retained figures are grouped by.
    pub(crate) site_of: HashMap<usize, u32>,
}

/// Groups `samples` into sites.
///
/// Each distinct address is passed to `resolve` once. Stacks are cut to
/// what a reader needs (see [`Frames`]): they start at the innermost frame
/// that is not the standard library's or the allocator's, and end just
/// inside the task's poll entry, so stacks that differ only there are one
/// site. Estimates are sums of the samples' weights (blocks) and
/// weight × size (bytes), rounded once per site and per owner × site.
/// Sites come biggest first; locations in order of first use by them.
pub(crate) fn sites(
    samples: &[Sample],
    owner: impl Fn(Owner) -> schema::Owner,
    mut resolve: impl FnMut(usize) -> Vec<SourceLine>,
) -> Sites {
    let mut frames: HashMap<usize, Frames> = HashMap::new();
    for sample in samples {
        for &ip in &sample.frames {
            frames
                .entry(ip)
                .or_insert_with(|| Frames::new(ip, resolve(ip)));
        }
    }

    let mut by_stack: HashMap<Vec<usize>, Estimate> = HashMap::new();
    let mut by_owner: HashMap<(schema::Owner, Vec<usize>), Estimate> = HashMap::new();
    let mut sample_stacks = Vec::with_capacity(samples.len());
    for sample in samples {
        let stack = trim(&sample.frames, &frames);
        sample_stacks.push((sample.address, stack.clone()));
        by_owner
            .entry((owner(sample.owner), stack.clone()))
            .or_default()
            .add(sample);
        by_stack.entry(stack).or_default().add(sample);
    }

    let mut stacks: Vec<(Vec<usize>, Estimate)> = by_stack.into_iter().collect();
    stacks.sort_by(|a, b| b.1.bytes.total_cmp(&a.1.bytes).then_with(|| a.0.cmp(&b.0)));
    let mut out = Sites::default();
    let mut location_ids: HashMap<usize, u32> = HashMap::new();
    let mut site_ids: HashMap<Vec<usize>, u32> = HashMap::new();
    for (stack, estimate) in stacks {
        let id = out.sites.len() as u32;
        let stack_ids = stack
            .iter()
            .map(|&ip| {
                *location_ids.entry(ip).or_insert_with(|| {
                    let id = out.locations.len() as u32;
                    out.locations.push(CodeLocation {
                        id,
                        address: ip as u64,
                        lines: frames[&ip].lines.clone(),
                    });
                    id
                })
            })
            .collect();
        site_ids.insert(stack, id);
        out.sites.push(Site {
            id,
            stack: stack_ids,
            live_bytes: estimate.bytes.round() as u64,
            live_blocks: estimate.blocks.round() as u64,
            samples: estimate.samples,
        });
    }
    out.site_of = sample_stacks
        .into_iter()
        .map(|(address, stack)| (address, site_ids[&stack]))
        .collect();
    out.owner_sites = by_owner
        .into_iter()
        .map(|((owner, stack), e)| OwnerSite {
            owner,
            site: site_ids[&stack],
            live_bytes: e.bytes.round() as u64,
            live_blocks: e.blocks.round() as u64,
        })
        .collect();
    out.owner_sites.sort_by(|a, b| {
        b.live_bytes
            .cmp(&a.live_bytes)
            .then(a.owner.cmp(&b.owner))
            .then(a.site.cmp(&b.site))
    });
    out
}

/// The source lines at a return address, innermost (inlined) first, with
/// demangled names without their hash; empty when nothing is known.
///
/// Addresses inside the executable are looked up in its debug info.
/// Addresses in shared libraries (libc's thread start, a C library's
/// callback) get their symbol's name alone, from the dynamic loader's
/// tables: no user code lives there, and reading their debug info would
/// cost more than the rest of the snapshot where a distribution's detached
/// debug files are installed (Debian's `libc6-dbg` is zlib-compressed: a
/// counting-mode snapshot of 4,000,000 blocks spent about half its time
/// inflating it, for frames the stacks are then cut above).
pub(crate) fn resolve(ip: usize) -> Vec<SourceLine> {
    match shared_object_symbol(ip) {
        Some(symbol) => symbol.into_iter().collect(),
        None => resolve_in_executable(ip),
    }
}

/// [`resolve`] through the debug info (or symbol table) of the executable.
fn resolve_in_executable(ip: usize) -> Vec<SourceLine> {
    let mut lines = Vec::new();
    // `resolve` looks up the call instruction (the address minus one), so
    // the line is the call's, not the one after it.
    backtrace::resolve(ip as *mut c_void, |symbol| {
        let function = match symbol.name() {
            Some(name) => format!("{name:#}"),
            None => "<unknown>".to_owned(),
        };
        lines.push(SourceLine {
            function,
            file: symbol.filename().map(|f| f.display().to_string()),
            line: symbol.lineno(),
        });
    });
    lines
}

/// `None` when `ip` lies in the executable (or the loader knows nothing of
/// it); otherwise the name of the shared library's symbol that holds it, if
/// it has one, without a file or line.
fn shared_object_symbol(ip: usize) -> Option<Option<SourceLine>> {
    let call = ip.checked_sub(1)?;
    let object = loaded_object(call)?;
    if object.base == executable_base()? {
        return None;
    }
    Some(object.symbol.map(|function| SourceLine {
        function,
        file: None,
        line: None,
    }))
}

/// What the dynamic loader knows of an address.
struct LoadedObject {
    /// The load address of the object that holds it.
    base: usize,
    /// The demangled name of the nearest symbol at or below it, if the
    /// object exports one.
    symbol: Option<String>,
}

fn loaded_object(address: usize) -> Option<LoadedObject> {
    let mut info = std::mem::MaybeUninit::<libc::Dl_info>::zeroed();
    // SAFETY: `dladdr` only reads the loader's tables and writes `info`,
    // which is valid for writes; any address may be asked about.
    let found = unsafe { libc::dladdr(address as *const c_void, info.as_mut_ptr()) };
    if found == 0 {
        return None;
    }
    // SAFETY: `dladdr` filled `info` when it returned non-zero.
    let info = unsafe { info.assume_init() };
    let symbol = (!info.dli_sname.is_null()).then(|| {
        // SAFETY: a non-null `dli_sname` is a NUL-terminated string in the
        // object's string table, which stays mapped while the object is
        // loaded; it is copied out at once.
        let name = unsafe { std::ffi::CStr::from_ptr(info.dli_sname) };
        format!("{:#}", backtrace::SymbolName::new(name.to_bytes()))
    });
    Some(LoadedObject {
        base: info.dli_fbase as usize,
        symbol,
    })
}

/// The executable's load address: that of the object holding this code.
fn executable_base() -> Option<usize> {
    static BASE: std::sync::OnceLock<Option<usize>> = std::sync::OnceLock::new();
    *BASE.get_or_init(|| {
        loaded_object(executable_base as fn() -> Option<usize> as usize).map(|o| o.base)
    })
}

/// Sums behind one estimate.
#[derive(Debug, Default, Clone, Copy)]
struct Estimate {
    bytes: f64,
    blocks: f64,
    samples: u64,
}

impl Estimate {
    fn add(&mut self, sample: &Sample) {
        self.bytes += sample.weight * sample.size as f64;
        self.blocks += sample.weight;
        self.samples += 1;
    }
}

/// What a site shows of one return address, decided once per address so
/// that a location reads the same in every site that uses it.
///
/// What is left out, and why:
/// - the standard library and the allocator innermost (`__rust_alloc`,
///   `alloc::alloc`, `RawVec`, `Vec`/`String`/`Box`/`HashMap` growth,
///   `turbowish_alloc`, `backtrace`): a stack starts at the first frame of
///   other code, whose line is the call that asked for memory. A stack of
///   nothing but such frames keeps them: they are then all that names it;
/// - the task's poll entry (`<turbowish_trace::task::Traced<F> as
///   Future>::poll`, or tokio's `Core<T,S>::poll` for a task TurboWish did
///   not spawn) and every frame outer than it: the runtime's worker loop,
///   the thread's start. The owner (the task) roots the stack instead;
/// - in a stack through `turbowish_trace::spawn` (the task's own cell,
///   charged to the task; tokio's and the registry's spawn bookkeeping):
///   every frame outer than the one that called `spawn`, that is the
///   spawner's runtime and thread;
/// - `turbowish_trace::frame::Frame` poll wrappers: the user's async block
///   or fn they wrap follows them anyway;
/// - address 0, the unwinder's end-of-stack marker.
///
/// Without line tables, an address holding the task's poll entry and no
/// other code than the library's keeps the entry's own line: the user's
/// code inlined there is invisible, and the entry is the innermost frame
/// that is not library code (the CLI says to build with line tables).
#[derive(Debug)]
struct Frames {
    /// The lines shown, innermost (inlined) first.
    lines: Vec<SourceLine>,
    /// Whether the address is kept at all (an unknown address is).
    keep: bool,
    /// Whether every line shown is library or allocator code.
    library: bool,
    /// Whether the task's poll entry is here: outer frames are cut.
    entry: bool,
    /// Whether `turbowish_trace::spawn` is here: frames outer than its
    /// caller are cut.
    spawn: bool,
}

impl Frames {
    fn new(ip: usize, raw: Vec<SourceLine>) -> Frames {
        if ip == 0 {
            return Frames {
                lines: Vec::new(),
                keep: false,
                library: false,
                entry: false,
                spawn: false,
            };
        }
        if raw.is_empty() {
            return Frames {
                lines: raw,
                keep: true,
                library: false,
                entry: false,
                spawn: false,
            };
        }
        let entry_at = raw.iter().position(is_task_entry_line);
        let mut lines: Vec<SourceLine> = raw[..entry_at.unwrap_or(raw.len())]
            .iter()
            .filter(|l| !is_frame_wrapper_line(l))
            .cloned()
            .collect();
        if let Some(at) = entry_at {
            let user = lines.iter().any(|l| !is_library_line(l));
            if !user && raw.iter().all(|l| l.file.is_none()) {
                // No line tables (a release build without debug info): the
                // user's async block inlined into the task's poll entry
                // cannot be seen, so the entry, the innermost frame that is
                // not library code, stands for it.
                lines = vec![raw[at].clone()];
            }
        }
        let library = lines.iter().all(is_library_line);
        if !library {
            // Inlined library code at the call: the user line is the site.
            let user = lines.iter().position(|l| !is_library_line(l)).unwrap_or(0);
            lines.drain(..user);
        }
        Frames {
            keep: !lines.is_empty(),
            library: library && !lines.is_empty(),
            spawn: lines.iter().any(is_spawn_line),
            lines,
            entry: entry_at.is_some(),
        }
    }
}

/// The addresses of `raw` (innermost first) a site shows.
fn trim(raw: &[usize], frames: &HashMap<usize, Frames>) -> Vec<usize> {
    let mut stack = Vec::with_capacity(raw.len());
    let mut spawned = false;
    for ip in raw {
        let f = &frames[ip];
        if f.keep {
            stack.push(*ip);
            if spawned && !f.spawn {
                break;
            }
        }
        if f.entry {
            break;
        }
        spawned |= f.spawn;
    }
    let library = stack.iter().take_while(|ip| frames[ip].library).count();
    if library < stack.len() {
        stack.drain(..library);
    }
    stack
}

/// Whether a line is standard library or allocation machinery: by its
/// function's name ([`is_library`]), or, for the short names of a build
/// with `debug = "line-tables-only"` (whose inlined frames are named
/// `from_elem<u8>`, `sample<std::alloc::System>`, with no path), by its
/// file: the standard library's sources (`/rustc/<hash>/library/...`, its
/// vendored crates under `/rust/deps/`), TurboWish's allocator and the
/// unwinder.
fn is_library_line(line: &SourceLine) -> bool {
    is_library_function(&line.function) || line.file.as_deref().is_some_and(is_library_file)
}

fn is_library_file(file: &str) -> bool {
    file.starts_with("/rustc/")
        || file.starts_with("/rust/deps/")
        || in_crate(file, "turbowish-alloc")
        || in_crate(file, "backtrace")
}

/// Whether `file` is a source of the crate `name`: in a workspace
/// (`.../turbowish-alloc/src/...`) or a registry (`.../turbowish-alloc-0.1.0/src/...`).
fn in_crate(file: &str, name: &str) -> bool {
    file.split('/').collect::<Vec<_>>().windows(2).any(|w| {
        w[1] == "src"
            && (w[0] == name
                || w[0]
                    .strip_prefix(name)
                    .and_then(|v| v.strip_prefix('-'))
                    .is_some_and(|v| v.starts_with(|c: char| c.is_ascii_digit())))
    })
}

/// Whether `line` is a function of `file` (a path in crate `krate`) whose
/// short name starts with `short`: how a line-tables-only build names
/// TurboWish's and tokio's frames.
fn short_name_in(line: &SourceLine, krate: &str, file: &str, short: &str) -> bool {
    line.function.starts_with(short)
        && line
            .file
            .as_deref()
            .is_some_and(|f| f.ends_with(file) && in_crate(f, krate))
}

/// [`is_task_entry`], or its short name in a line-tables-only build.
fn is_task_entry_line(line: &SourceLine) -> bool {
    is_task_entry(&line.function)
        || short_name_in(line, "turbowish-trace", "/src/task.rs", "poll<")
        || short_name_in(line, "tokio", "/src/runtime/task/core.rs", "poll<")
}

/// [`is_spawn`], or its short name in a line-tables-only build.
fn is_spawn_line(line: &SourceLine) -> bool {
    is_spawn(&line.function) || short_name_in(line, "turbowish-trace", "/src/task.rs", "spawn")
}

/// [`is_frame_wrapper`], or its short name in a line-tables-only build.
fn is_frame_wrapper_line(line: &SourceLine) -> bool {
    is_frame_wrapper(&line.function)
        || short_name_in(line, "turbowish-trace", "/src/frame.rs", "poll<")
}

/// A task's poll entry: TurboWish's task root, or tokio's task core for
/// tasks TurboWish did not spawn.
fn is_task_entry(function: &str) -> bool {
    (function.starts_with("<turbowish_trace::task::Traced<") && function.ends_with(">::poll"))
        || (function.starts_with("tokio::runtime::task::core::Core<")
            && function.contains(">::poll"))
}

/// `turbowish_trace::spawn`, `spawn_on` or `spawn_local`.
fn is_spawn(function: &str) -> bool {
    function.starts_with("turbowish_trace::task::spawn")
}

fn is_frame_wrapper(function: &str) -> bool {
    function.starts_with("<turbowish_trace::frame::Frame<") && function.ends_with(">::poll")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(function: &str) -> Vec<SourceLine> {
        vec![SourceLine {
            function: function.to_owned(),
            file: Some("src/x.rs".to_owned()),
            line: Some(1),
        }]
    }

    /// A fake symboliser: 0x1x are allocator frames, others user code.
    fn fake(ip: usize) -> Vec<SourceLine> {
        match ip {
            0x10 => line("<turbowish_alloc::TurboWish as core::alloc::global::GlobalAlloc>::alloc"),
            0x11 => line("__rustc::__rust_alloc"),
            0x12 => line("alloc::raw_vec::RawVec<T,A>::grow_one"),
            0x99 => Vec::new(),
            ip => line(&format!("app::f{ip:x}")),
        }
    }

    fn sample(size: usize, weight: f64, owner: Owner, frames: &[usize]) -> Sample {
        Sample {
            address: 0,
            size,
            weight,
            owner,
            frames: frames.to_vec(),
        }
    }

    fn to_ref(o: Owner) -> schema::Owner {
        crate::convert::owner(o, |_| None)
    }

    #[test]
    fn groups_by_stack_without_allocator_frames_and_resolves_each_address_once() {
        let samples = [
            // Two raw stacks that differ only in allocator frames: one site.
            sample(100, 2.0, Owner::Task(7), &[0x10, 0x11, 0xa0, 0xb0]),
            sample(100, 2.0, Owner::Task(7), &[0x10, 0x12, 0xa0, 0xb0]),
            sample(1000, 1.5, Owner::Main, &[0x10, 0xa0, 0xb0]),
            // Another site, smaller.
            sample(10, 3.0, Owner::Task(7), &[0x10, 0xc0, 0xb0]),
        ];
        let mut resolved = Vec::new();
        let out = sites(&samples, to_ref, |ip| {
            resolved.push(ip);
            fake(ip)
        });
        resolved.sort_unstable();
        assert_eq!(resolved, [0x10, 0x11, 0x12, 0xa0, 0xb0, 0xc0]);

        assert_eq!(out.sites.len(), 2);
        let big = &out.sites[0];
        // 2*100 + 2*100 + 1.5*1000 bytes; 2 + 2 + 1.5 blocks, rounded.
        assert_eq!(
            (big.id, big.live_bytes, big.live_blocks, big.samples),
            (0, 1900, 6, 3)
        );
        let small = &out.sites[1];
        assert_eq!(
            (small.id, small.live_bytes, small.live_blocks, small.samples),
            (1, 30, 3, 1)
        );

        let addresses = |site: &Site| -> Vec<u64> {
            site.stack
                .iter()
                .map(|&id| out.locations[id as usize].address)
                .collect()
        };
        assert_eq!(addresses(big), [0xa0, 0xb0]);
        assert_eq!(addresses(small), [0xc0, 0xb0]);
        // Only addresses some site uses, each once, ids = positions.
        assert_eq!(out.locations.len(), 3);
        for (i, l) in out.locations.iter().enumerate() {
            assert_eq!(l.id as usize, i);
        }
        assert_eq!(out.locations[0].lines, fake(0xa0));

        assert_eq!(
            out.owner_sites,
            [
                OwnerSite {
                    owner: schema::Owner::Main,
                    site: 0,
                    live_bytes: 1500,
                    live_blocks: 2,
                },
                OwnerSite {
                    owner: schema::Owner::Task(7),
                    site: 0,
                    live_bytes: 400,
                    live_blocks: 4,
                },
                OwnerSite {
                    owner: schema::Owner::Task(7),
                    site: 1,
                    live_bytes: 30,
                    live_blocks: 3,
                },
            ]
        );
    }

    #[test]
    fn unresolved_and_all_allocator_stacks_are_kept() {
        let samples = [
            sample(8, 1.0, Owner::Internal, &[0x10, 0x11]),
            sample(16, 1.0, Owner::Internal, &[0x99, 0xa0]),
        ];
        let out = sites(&samples, to_ref, fake);
        let stacks: Vec<Vec<u64>> = out
            .sites
            .iter()
            .map(|s| {
                s.stack
                    .iter()
                    .map(|&id| out.locations[id as usize].address)
                    .collect()
            })
            .collect();
        // An unknown frame is not known to be the allocator's: it stays.
        assert_eq!(stacks, [vec![0x99, 0xa0], vec![0x10, 0x11]]);
    }

    /// The lines of a fake address: `lines[0]` innermost (inlined into
    /// the others).
    fn inlined(functions: &[&str]) -> Vec<SourceLine> {
        functions.iter().flat_map(|f| line(f)).collect()
    }

    /// The functions a one-site snapshot shows, innermost first.
    fn shown(out: &Sites) -> Vec<String> {
        assert_eq!(out.sites.len(), 1);
        out.sites[0]
            .stack
            .iter()
            .flat_map(|&id| &out.locations[id as usize].lines)
            .map(|l| l.function.clone())
            .collect()
    }

    /// A `Box::new` in a TurboWish task of a debug build, frame by frame as
    /// the allocator records it (one function per address), down to the
    /// worker thread's start and the unwinder's 0.
    const DEBUG_BOX_IN_TASK: &[&str] = &[
        "__rustc::__rust_alloc",
        "alloc::alloc::alloc",
        "alloc::alloc::Global::alloc_impl",
        "<alloc::alloc::Global as core::alloc::Allocator>::allocate",
        "alloc::boxed::box_new_uninit",
        "alloc::boxed::Box<T>::new",
        "app::handle_request",
        "app::serve::{{closure}}::{{closure}}",
        "<turbowish_trace::frame::Frame<F> as core::future::future::Future>::poll",
        "app::serve::{{closure}}",
        "<turbowish_trace::task::Traced<F> as core::future::future::Future>::poll",
        "tokio::runtime::task::core::Core<T,S>::poll::{{closure}}",
        "tokio::loom::std::unsafe_cell::UnsafeCell<T>::with_mut",
        "tokio::runtime::task::core::Core<T,S>::poll",
        "tokio::runtime::task::harness::poll_future::{{closure}}",
        "std::panicking::catch_unwind::do_call",
        "tokio::runtime::scheduler::multi_thread::worker::run",
        "std::sys::backtrace::__rust_begin_short_backtrace",
        "<std::sys::thread::unix::Thread>::new::thread_start",
        "start_thread",
        "clone3",
    ];

    fn one_function_per_address(
        functions: &[&str],
    ) -> (Vec<usize>, HashMap<usize, Vec<SourceLine>>) {
        let ips: Vec<usize> = (1..=functions.len()).map(|i| 0x1000 * i).collect();
        let table = ips
            .iter()
            .zip(functions)
            .map(|(&ip, f)| (ip, line(f)))
            .collect();
        (ips, table)
    }

    #[test]
    fn a_debug_stack_starts_at_user_code_and_ends_inside_the_task() {
        let (mut ips, table) = one_function_per_address(DEBUG_BOX_IN_TASK);
        ips.push(0);
        let samples = [sample(512, 1.0, Owner::Task(1), &ips)];
        let out = sites(&samples, to_ref, |ip| {
            table.get(&ip).cloned().unwrap_or_default()
        });
        assert_eq!(
            shown(&out),
            [
                "app::handle_request",
                "app::serve::{{closure}}::{{closure}}",
                "app::serve::{{closure}}",
            ]
        );
        // Only the shown addresses become locations.
        assert_eq!(out.locations.len(), 3);
    }

    #[test]
    fn a_release_stack_keeps_the_user_lines_of_an_inlined_entry_address() {
        // Optimised: `Vec::push` and the user's futures are inlined into
        // `Traced::poll`; only the growth path is a call of its own.
        let samples = [sample(64, 1.0, Owner::Task(1), &[0x10, 0x20, 0x30, 0x40])];
        let out = sites(&samples, to_ref, |ip| match ip {
            0x10 => line("__rustc::__rust_realloc"),
            0x20 => inlined(&[
                "alloc::raw_vec::finish_grow",
                "alloc::raw_vec::RawVecInner<A>::grow_amortized",
                "alloc::raw_vec::RawVecInner<A>::grow_one",
            ]),
            0x30 => inlined(&[
                "alloc::vec::Vec<T,A>::push",
                "app::remember_session",
                "app::serve::{{closure}}",
                "<turbowish_trace::frame::Frame<F> as core::future::future::Future>::poll",
                "<turbowish_trace::task::Traced<F> as core::future::future::Future>::poll",
                "tokio::runtime::task::core::Core<T,S>::poll",
            ]),
            _ => line("tokio::runtime::scheduler::multi_thread::worker::run"),
        });
        assert_eq!(
            shown(&out),
            ["app::remember_session", "app::serve::{{closure}}"]
        );
        assert_eq!(out.locations.len(), 1);
        assert_eq!(out.locations[0].address, 0x30);
    }

    #[test]
    fn a_release_stack_without_line_tables_keeps_the_task_entry() {
        // Symbols only: the user's async block and `collect` are inlined
        // into `Traced::poll`, whose symbol alone names the address.
        let symbol = |f: &str| {
            vec![SourceLine {
                function: f.to_owned(),
                file: None,
                line: None,
            }]
        };
        let samples = [sample(
            64,
            1.0,
            Owner::Task(1),
            &[0x10, 0x20, 0x30, 0x40, 0x50],
        )];
        let out = sites(&samples, to_ref, |ip| {
            match ip {
            0x10 => symbol("__rustc::__rust_alloc"),
            0x20 => symbol("<core::iter::adapters::map::Map<I,F> as core::iter::traits::iterator::Iterator>::fold"),
            0x30 => symbol("<alloc::vec::Vec<T> as alloc::vec::spec_from_iter::SpecFromIter<T,I>>::from_iter"),
            0x40 => symbol("<turbowish_trace::task::Traced<F> as core::future::future::Future>::poll"),
            _ => symbol("tokio::runtime::scheduler::multi_thread::worker::run"),
        }
        });
        assert_eq!(
            shown(&out),
            ["<turbowish_trace::task::Traced<F> as core::future::future::Future>::poll"]
        );
        // With line tables the entry's address shows the user's lines
        // instead (a_release_stack_keeps_the_user_lines_...); a debug
        // build's entry address, with nothing inlined, shows nothing.
        let samples = [sample(64, 1.0, Owner::Task(1), &[0x10, 0x20, 0x40])];
        let out = sites(&samples, to_ref, |ip| match ip {
            0x10 => line("alloc::alloc::alloc"),
            0x20 => line("app::serve::{{closure}}"),
            _ => line("<turbowish_trace::task::Traced<F> as core::future::future::Future>::poll"),
        });
        assert_eq!(shown(&out), ["app::serve::{{closure}}"]);
    }

    #[test]
    fn a_line_tables_only_stack_is_cut_by_files_as_its_names_are_short() {
        // `debug = "line-tables-only"`: inlined frames are named by DWARF
        // alone, without a path (the quickstart's cache task, as captured).
        let at = |f: &str, file: &str| SourceLine {
            function: f.to_owned(),
            file: Some(file.to_owned()),
            line: Some(1),
        };
        let std = "/rustc/59807616e1fa2540724bfbac14d7976d7e4a3860/library/alloc/src/vec/mod.rs";
        let tokio = "/root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/tokio-1.54.1/src/runtime/task/core.rs";
        let samples = [sample(64, 1.0, Owner::Task(1), &[0x10, 0x20, 0x30])];
        let out = sites(&samples, to_ref, |ip| match ip {
            0x10 => vec![
                at(
                    "sample<std::alloc::System>",
                    "/src/turbowish/turbowish-alloc/src/lib.rs",
                ),
                at(
                    "alloc<std::alloc::System>",
                    "/home/u/.cargo/registry/src/x/turbowish-alloc-0.1.0/src/lib.rs",
                ),
                at("__rust_alloc", "/app/src/main.rs"),
            ],
            0x20 => vec![
                at("alloc", std),
                at("from_elem<u8>", std),
                at("{async_block#0}", "/app/src/main.rs"),
                at(
                    "poll<app::main::{async_block#0}>",
                    "/src/turbowish/turbowish-trace/src/task.rs",
                ),
            ],
            _ => vec![at(
                "poll<turbowish_trace::task::Traced<app::main::{async_block#0}>>",
                tokio,
            )],
        });
        assert_eq!(shown(&out), ["{async_block#0}"]);
        assert!(!is_library_file("/app/src/turbowish-alloc-helpers.rs"));
        assert!(!in_crate(
            "/app/turbowish-alloc-x/src/lib.rs",
            "turbowish-alloc"
        ));
    }

    #[test]
    fn the_task_cell_ends_at_the_caller_of_spawn() {
        let samples = [sample(
            88,
            1.0,
            Owner::Task(1),
            &[0x10, 0x20, 0x30, 0x40, 0x50, 0x60],
        )];
        let out = sites(&samples, to_ref, |ip| match ip {
            0x10 => line("alloc::boxed::Box<T>::pin"),
            0x20 => line("turbowish_trace::task::Traced<F>::new"),
            0x30 => line("turbowish_trace::task::spawn"),
            0x40 => line("app::main::{{closure}}"),
            0x50 => line("tokio::runtime::runtime::Runtime::block_on"),
            _ => line("app::main"),
        });
        assert_eq!(
            shown(&out),
            [
                "turbowish_trace::task::Traced<F>::new",
                "turbowish_trace::task::spawn",
                "app::main::{{closure}}",
            ]
        );
    }

    #[test]
    fn a_plain_tokio_task_ends_at_the_task_core() {
        let samples = [sample(
            8,
            1.0,
            Owner::TokioTask(3),
            &[0x10, 0x20, 0x30, 0x40],
        )];
        let out = sites(&samples, to_ref, |ip| match ip {
            0x10 => line("<hashbrown::raw::RawTable<T,A>>::reserve_rehash"),
            0x20 => line("std::collections::hash::map::HashMap<K,V,S>::insert"),
            0x30 => line("app::index::{{closure}}"),
            _ => line("tokio::runtime::task::core::Core<T,S>::poll::{{closure}}"),
        });
        assert_eq!(shown(&out), ["app::index::{{closure}}"]);
    }

    #[test]
    fn library_code_without_user_frames_is_kept_and_other_crates_name_sites() {
        // Only the allocator and std: all that names the site.
        let samples = [sample(8, 1.0, Owner::Main, &[0x10, 0x20])];
        let out = sites(&samples, to_ref, |ip| match ip {
            0x10 => line("alloc::alloc::alloc"),
            _ => line("std::thread::spawn"),
        });
        assert_eq!(shown(&out), ["alloc::alloc::alloc", "std::thread::spawn"]);
        // A library other than std's is the code that asked for memory.
        let samples = [sample(8, 1.0, Owner::Main, &[0x10, 0x20, 0x30])];
        let out = sites(&samples, to_ref, |ip| match ip {
            0x10 => line("alloc::alloc::alloc"),
            0x20 => line("tokio::sync::mpsc::list::Tx<T>::find_block"),
            _ => line("app::main"),
        });
        assert_eq!(
            shown(&out),
            ["tokio::sync::mpsc::list::Tx<T>::find_block", "app::main"]
        );
    }

    #[test]
    fn library_frames_are_told_from_user_frames() {
        for f in [
            "__rustc::__rust_alloc",
            "<turbowish_alloc::TurboWish as core::alloc::global::GlobalAlloc>::alloc",
            "<alloc::alloc::Global as core::alloc::Allocator>::allocate",
            "<u8 as alloc::vec::spec_from_elem::SpecFromElem>::from_elem",
            "<alloc::vec::Vec<T,A> as alloc::vec::spec_extend::SpecExtend<&T,core::slice::iter::Iter<T>>>::spec_extend",
            "alloc::string::String::push_str",
            "hashbrown::raw::RawTable<T,A>::reserve_rehash",
            "backtrace::backtrace::trace_unsynchronized",
        ] {
            assert!(is_library_function(f), "{f}");
        }
        for f in [
            "app::handle_request",
            "<app::Cache as core::clone::Clone>::clone",
            "<app::Cache>::remember",
            "tokio::sync::mpsc::list::Tx<T>::find_block",
            "turbowish_trace::task::spawn",
        ] {
            assert!(!is_library_function(f), "{f}");
        }
    }

    #[test]
    fn no_samples_no_sites() {
        assert_eq!(sites(&[], to_ref, fake), Sites::default());
    }

    #[inline(never)]
    fn known_function() -> u64 {
        std::hint::black_box(42)
    }

    #[test]
    fn a_shared_library_address_gets_its_symbol_name_alone() {
        // libc's `malloc` lives in a shared library, not the executable.
        let ip = libc::malloc as *const () as usize + 1;
        let lines = resolve(ip);
        assert_eq!(
            lines,
            vec![SourceLine {
                function: "malloc".to_owned(),
                file: None,
                line: None
            }]
        );
        // Code of the test binary itself goes through its debug info.
        assert_eq!(
            shared_object_symbol(known_function as fn() -> u64 as usize + 1),
            None
        );
    }

    #[test]
    fn resolves_a_real_address_to_a_demangled_name_without_hash() {
        // `resolve` looks up the byte before a return address: the
        // function's first byte.
        let ip = known_function as fn() -> u64 as usize + 1;
        let lines = resolve(ip);
        let names: Vec<&str> = lines.iter().map(|l| l.function.as_str()).collect();
        assert!(
            names
                .iter()
                .any(|n| n.ends_with("symbolize::tests::known_function")),
            "{names:?}"
        );
        for name in names {
            assert!(!name.contains("::h"), "hash left in {name}");
        }
        // Debug builds carry line tables; release builds (no debug info by
        // default) only the symbol.
        if cfg!(debug_assertions) {
            assert!(
                lines.iter().any(|l| l
                    .file
                    .as_deref()
                    .is_some_and(|f| f.ends_with("symbolize.rs"))),
                "{lines:?}"
            );
        }
    }
}
