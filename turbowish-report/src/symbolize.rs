//! Sampled allocation sites: the allocator's live samples grouped by stack,
//! each distinct instruction pointer symbolised once, with per-owner
//! estimates.
//!
//! Symbolising takes `backtrace`'s global lock and reads debug info, so it
//! runs here, on the thread taking the snapshot, never in the allocator.

use std::collections::HashMap;
use std::ffi::c_void;

use turbowish_alloc::{Owner, Sample};

use crate::schema::{CodeLocation, OwnerRef, OwnerSite, Site, SourceLine};

/// The site tables of a snapshot.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct Sites {
    pub(crate) locations: Vec<CodeLocation>,
    pub(crate) sites: Vec<Site>,
    pub(crate) owner_sites: Vec<OwnerSite>,
}

/// Groups `samples` into sites.
///
/// Each distinct address is passed to `resolve` once. Frames of the
/// allocation machinery at the top of a stack (the global allocator,
/// `__rust_alloc`, `alloc::alloc`, `RawVec`) are dropped so that a site
/// starts at the code that asked for memory, and stacks that differ only
/// there are one site. Estimates are sums of the samples' weights (blocks)
/// and weight × size (bytes), rounded once per site and per owner × site.
/// Sites come biggest first; locations in order of first use by them.
pub(crate) fn sites(
    samples: &[Sample],
    owner: impl Fn(Owner) -> OwnerRef,
    mut resolve: impl FnMut(usize) -> Vec<SourceLine>,
) -> Sites {
    let mut lines: HashMap<usize, Vec<SourceLine>> = HashMap::new();
    for sample in samples {
        for &ip in &sample.frames {
            lines.entry(ip).or_insert_with(|| resolve(ip));
        }
    }

    let mut by_stack: HashMap<&[usize], Estimate> = HashMap::new();
    let mut by_owner: HashMap<(OwnerRef, &[usize]), Estimate> = HashMap::new();
    for sample in samples {
        let skip = sample
            .frames
            .iter()
            .take_while(|ip| is_allocator(&lines[ip]))
            .count();
        // A stack of nothing but allocator frames keeps them: better an
        // allocator site than an empty one.
        let stack = if skip == sample.frames.len() {
            &sample.frames[..]
        } else {
            &sample.frames[skip..]
        };
        by_stack.entry(stack).or_default().add(sample);
        by_owner
            .entry((owner(sample.owner), stack))
            .or_default()
            .add(sample);
    }

    let mut stacks: Vec<(&[usize], Estimate)> = by_stack.into_iter().collect();
    stacks.sort_by(|a, b| b.1.bytes.total_cmp(&a.1.bytes).then_with(|| a.0.cmp(b.0)));
    let mut out = Sites::default();
    let mut location_ids: HashMap<usize, u32> = HashMap::new();
    let mut site_ids: HashMap<&[usize], u32> = HashMap::new();
    for (stack, estimate) in stacks {
        let id = out.sites.len() as u32;
        site_ids.insert(stack, id);
        let stack_ids = stack
            .iter()
            .map(|&ip| {
                *location_ids.entry(ip).or_insert_with(|| {
                    let id = out.locations.len() as u32;
                    out.locations.push(CodeLocation {
                        id,
                        address: ip as u64,
                        lines: lines[&ip].clone(),
                    });
                    id
                })
            })
            .collect();
        out.sites.push(Site {
            id,
            stack: stack_ids,
            live_bytes: estimate.bytes.round() as u64,
            live_blocks: estimate.blocks.round() as u64,
            samples: estimate.samples,
        });
    }
    out.owner_sites = by_owner
        .into_iter()
        .map(|((owner, stack), e)| OwnerSite {
            owner,
            site: site_ids[stack],
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
pub(crate) fn resolve(ip: usize) -> Vec<SourceLine> {
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

/// Whether an address lies wholly in allocation machinery: every source
/// line at it (inlined ones included) is. One user line makes it the site.
fn is_allocator(lines: &[SourceLine]) -> bool {
    !lines.is_empty() && lines.iter().all(|l| is_allocator_fn(&l.function))
}

fn is_allocator_fn(function: &str) -> bool {
    const PREFIXES: &[&str] = &[
        "turbowish_alloc::",
        "alloc::alloc::",
        "alloc::raw_vec::",
        "std::alloc::",
        "std::sys::alloc::",
        "core::alloc::",
        "__rust_",
        "__rustc::",
        "__rdl_",
        "__rg_",
    ];
    let name = function.trim_start_matches('<');
    PREFIXES.iter().any(|p| name.starts_with(p))
        || function.contains(" as core::alloc::global::GlobalAlloc>")
        || function.contains(" as core::alloc::Allocator>")
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

    fn to_ref(o: Owner) -> OwnerRef {
        crate::convert::owner(o, |_| None)
    }

    #[test]
    fn groups_by_stack_without_allocator_frames_and_resolves_each_address_once() {
        let samples = [
            // Two raw stacks that differ only in allocator frames: one site.
            sample(100, 2.0, Owner::Task(7), &[0x10, 0x11, 0xa0, 0xb0]),
            sample(100, 2.0, Owner::Task(7), &[0x10, 0x12, 0xa0, 0xb0]),
            sample(1000, 1.5, Owner::Untracked, &[0x10, 0xa0, 0xb0]),
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
                    owner: OwnerRef::Main,
                    site: 0,
                    live_bytes: 1500,
                    live_blocks: 2,
                },
                OwnerSite {
                    owner: OwnerRef::Task(7),
                    site: 0,
                    live_bytes: 400,
                    live_blocks: 4,
                },
                OwnerSite {
                    owner: OwnerRef::Task(7),
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

    #[test]
    fn no_samples_no_sites() {
        assert_eq!(sites(&[], to_ref, fake), Sites::default());
    }

    #[inline(never)]
    fn known_function() -> u64 {
        std::hint::black_box(42)
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
