//! [`BlockIndex`]: the live blocks a walk may read, sorted by address, so
//! that any address maps to its block.
//!
//! A conservative scan asks for every word it reads, so lookups are the
//! walk's inner loop. A plain binary search over a million starts is twenty
//! dependent steps (35 ns; about half of a conservative walk's time). The
//! index instead splits the sorted blocks into *regions* (runs of blocks
//! with no gap of [`REGION_GAP`] or more between them: a heap arena, the
//! area where large blocks are mapped) and cuts each region into equal
//! *buckets* of about four blocks each, each knowing the first block that starts
//! in it. A lookup finds its region (a handful, binary searched), its
//! bucket by a shift, and searches only the few blocks that start in that
//! bucket, plus the one before, which may reach into it.

use std::sync::OnceLock;

use turbowish_alloc::{CompactBlocks, Owner};

/// One live heap block: where it is, how big, and who allocated it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Block {
    /// Address of the first byte (the pointer the program got).
    pub start: usize,
    /// Size the program asked for, in bytes.
    pub size: usize,
    /// The task (or bucket) that allocated it.
    pub owner: Owner,
}

/// The live blocks of a walk, sorted by start address.
///
/// Built from the allocator's heap view by [`crate::walk`], or from any list
/// of blocks for tests and other allocators with [`BlockIndex::new`].
///
/// A walk of millions of blocks keeps it whole while it runs, so it holds
/// each block in the 8 bytes of the heap view's [`CompactBlocks`] (taken
/// over, not copied) and about one 4-byte bucket bound per four blocks; an index of the
/// heap view reads owners from the blocks' headers when asked.
#[derive(Debug, Clone)]
pub struct BlockIndex {
    blocks: CompactBlocks,
    /// Owners by block for an index made from a list; `None` for one of
    /// the heap view, whose blocks' headers say.
    owners: Option<Vec<Owner>>,
    regions: Vec<Region>,
    /// Every region's bucket bounds, one run per region: entry `k` of a
    /// region's run is the number of blocks (in all regions) that start
    /// before the region's `base + (k << shift)`.
    buckets: Vec<u32>,
    /// The first block's start and one past the last byte of the highest
    /// block: a quick filter for words that cannot be pointers into the
    /// heap.
    low: usize,
    high: usize,
    /// [`BlockIndex::blocks`], made on first use.
    listed: OnceLock<Vec<Block>>,
}

/// Why a list of blocks does not make a [`BlockIndex`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IndexError {
    /// Two blocks share bytes.
    Overlap {
        /// The lower block.
        first: Block,
        /// The block starting inside it.
        second: Block,
    },
    /// A block runs past the end of the address space.
    OutOfRange(Block),
    /// More blocks than an index holds (`u32::MAX`).
    TooMany(usize),
}

impl std::fmt::Display for IndexError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            IndexError::Overlap { first, second } => write!(
                f,
                "blocks overlap: {:#x}+{} and {:#x}+{}",
                first.start, first.size, second.start, second.size
            ),
            IndexError::OutOfRange(b) => {
                write!(
                    f,
                    "block {:#x}+{} runs past the address space",
                    b.start, b.size
                )
            }
            IndexError::TooMany(n) => {
                write!(f, "{n} blocks: an index holds at most {}", u32::MAX)
            }
        }
    }
}

impl std::error::Error for IndexError {}

impl BlockIndex {
    /// An index of `blocks` (in any order).
    ///
    /// # Safety
    ///
    /// The walker reads every byte of every block (word by word, as
    /// described in the [`crate::walk`] module docs), so each block must be
    /// allocated memory that stays allocated and readable for as long as
    /// the index is used: not freed, not unmapped.
    pub unsafe fn new(mut blocks: Vec<Block>) -> Result<BlockIndex, IndexError> {
        // By size too: a zero-sized block at a sized block's start (which
        // shares no byte with it) then sorts first whatever the input
        // order, and is accepted either way.
        blocks.sort_unstable_by_key(|b| (b.start, b.size));
        for block in &blocks {
            if block.start.checked_add(block.size).is_none() {
                return Err(IndexError::OutOfRange(*block));
            }
        }
        for pair in blocks.windows(2) {
            if pair[0].start + pair[0].size > pair[1].start {
                return Err(IndexError::Overlap {
                    first: pair[0],
                    second: pair[1],
                });
            }
        }
        if u32::try_from(blocks.len()).is_err() {
            return Err(IndexError::TooMany(blocks.len()));
        }
        let compact = CompactBlocks::from_sorted(blocks.iter().map(|b| (b.start, b.size)))
            .ok_or(IndexError::TooMany(blocks.len()))?;
        let owners = blocks.iter().map(|b| b.owner).collect();
        Ok(BlockIndex::build(compact, Some(owners)))
    }

    /// An index of the heap view's blocks, taken over.
    ///
    /// # Safety
    ///
    /// As for [`BlockIndex::new`], and the blocks must be those of a heap
    /// view whose frees stay paused while the index is used (their headers
    /// say who allocated them).
    pub(super) unsafe fn of_view(blocks: CompactBlocks) -> BlockIndex {
        BlockIndex::build(blocks, None)
    }

    fn build(blocks: CompactBlocks, owners: Option<Vec<Owner>>) -> BlockIndex {
        let (regions, buckets) = regions_of(&blocks);
        let low = regions.first().map_or(usize::MAX, |r| r.base);
        let high = regions.iter().map(|r| r.end).max().unwrap_or(0);
        BlockIndex {
            blocks,
            owners,
            regions,
            buckets,
            low,
            high,
            listed: OnceLock::new(),
        }
    }

    /// The blocks, sorted by start (made on the first call: 32 bytes a
    /// block; a walk itself reads [`BlockIndex::start`],
    /// [`BlockIndex::size`] and [`BlockIndex::owner`]).
    pub fn blocks(&self) -> &[Block] {
        self.listed.get_or_init(|| {
            (0..self.len())
                .map(|i| Block {
                    start: self.start(i),
                    size: self.size(i),
                    owner: self.owner(i),
                })
                .collect()
        })
    }

    /// Number of blocks.
    pub fn len(&self) -> usize {
        self.blocks.len()
    }

    /// Whether there are no blocks.
    pub fn is_empty(&self) -> bool {
        self.blocks.is_empty()
    }

    /// The start of block `i` (in address order).
    #[inline]
    pub fn start(&self, i: usize) -> usize {
        self.blocks.start(i)
    }

    /// The size of block `i`.
    #[inline]
    pub fn size(&self, i: usize) -> usize {
        self.blocks.size(i)
    }

    /// Who allocated block `i`.
    pub fn owner(&self, i: usize) -> Owner {
        match &self.owners {
            Some(owners) => owners[i],
            // SAFETY: an index without owners is one of the heap view
            // (`of_view`), whose frees stay paused while it is used.
            None => unsafe { turbowish_alloc::owner_of_block(self.start(i)) },
        }
    }

    /// Whether block `i` is TurboWish's own (`Owner::Internal`).
    #[inline]
    pub(crate) fn is_internal(&self, i: usize) -> bool {
        match &self.owners {
            Some(owners) => owners[i] == Owner::Internal,
            // SAFETY: as in `owner`.
            None => unsafe { turbowish_alloc::is_internal_block(self.start(i)) },
        }
    }

    /// The index of the block containing `addr` (its start or any byte
    /// inside; a zero-sized block contains nothing).
    #[inline(always)]
    pub fn index_of(&self, addr: usize) -> Option<usize> {
        // Most words a conservative scan reads are not heap addresses at
        // all: rejected here, inline, without a call.
        if addr < self.low || addr >= self.high {
            return None;
        }
        self.lookup(addr)
    }

    /// The block containing `addr`, which lies in `low..high`.
    fn lookup(&self, addr: usize) -> Option<usize> {
        // The last region starting at or below `addr` (there is one: the
        // first starts at `low`).
        let r = self.regions.partition_point(|r| r.base <= addr) - 1;
        let region = &self.regions[r];
        if addr >= region.end {
            return None;
        }
        let bucket = region.first + ((addr - region.base) >> region.shift);
        // The block containing `addr` is the last one starting at or below
        // it: one of those starting in this bucket, or else the last one
        // before the bucket (which may reach into it), if in this region.
        let before = self.buckets[bucket] as usize;
        let through = self.buckets[bucket + 1] as usize;
        // Packed blocks sort by their offset in the window; past the
        // window (inside a block reaching beyond it) every one is below.
        let offset = (addr - region.window).min(u32::MAX as usize) as u64;
        let key = (offset << 32) | u64::from(u32::MAX);
        let packed = self.blocks.packed();
        let i = before + packed[before..through].partition_point(|&p| p <= key);
        let i = i.checked_sub(1)?;
        if i < region.first_block as usize {
            return None;
        }
        let start = region.window + (packed[i] >> 32) as usize;
        (addr - start < self.size(i)).then_some(i)
    }

    /// The block containing `addr`.
    pub fn find(&self, addr: usize) -> Option<&Block> {
        self.index_of(addr).map(|i| &self.blocks()[i])
    }
}

/// A gap between blocks this large starts a new region: 256 MiB, far
/// above the spacing of blocks within an arena, far below the distance
/// between arenas (or between the heap and the mapped area).
const REGION_GAP: usize = 256 << 20;

/// Blocks per bucket, about: a lookup searches a few more blocks (a
/// partition point over about four), and the buckets of a walk of
/// 4,000,000 blocks take 1 byte a block instead of 4, which the walk's
/// peak of memory is made of (11 MB less there; no change in its time).
const BLOCKS_PER_BUCKET: usize = 4;

/// A run of blocks of one window of [`CompactBlocks`], cut into buckets of
/// `1 << shift` bytes from `base`.
#[derive(Debug, Clone)]
struct Region {
    /// Start of its first block.
    base: usize,
    /// One past the last byte of its last block.
    end: usize,
    shift: u32,
    /// Where its run starts in `BlockIndex::buckets`.
    first: usize,
    /// Its window's base.
    window: usize,
    /// Its first block.
    first_block: u32,
}

/// Regions and bucket bounds of `blocks` (see [`BlockIndex::buckets`]).
fn regions_of(blocks: &CompactBlocks) -> (Vec<Region>, Vec<u32>) {
    let mut regions = Vec::new();
    // About one bucket per `BLOCKS_PER_BUCKET` blocks, and one more per
    // region.
    let mut buckets = Vec::new();
    for (g, &(window, _)) in blocks.groups().iter().enumerate() {
        let span = blocks.group_span(g);
        let start = |i: usize| blocks.start_in(window, i);
        let end_of = |i: usize| start(i) + blocks.size(i);
        let mut first = span.start;
        while first < span.end {
            // The region's blocks: `first..last`.
            let mut end = end_of(first);
            let mut last = first + 1;
            while last < span.end && start(last) - end < REGION_GAP {
                end = end_of(last);
                last += 1;
            }
            let base = start(first);
            // About `BLOCKS_PER_BUCKET` blocks per bucket: the span over
            // the count (at least 8 bytes, the finest spacing of distinct
            // blocks) times that, rounded up to a power of two.
            let per_block = ((end - base) / (last - first))
                .max(8)
                .saturating_mul(BLOCKS_PER_BUCKET);
            let shift = (usize::BITS - (per_block - 1).leading_zeros()).min(usize::BITS - 1);
            let count = (((end - base).max(1) - 1) >> shift) + 1;
            regions.push(Region {
                base,
                end,
                shift,
                first: buckets.len(),
                window,
                first_block: first as u32,
            });
            buckets.reserve(count + 1);
            let mut next = first;
            for k in 0..=count {
                // (Saturating: near the top of the address space, or for a
                // region wider than half of it, the last bound would wrap.)
                let bound = k
                    .checked_mul(1 << shift)
                    .map_or(usize::MAX, |offset| base.saturating_add(offset));
                while next < last && start(next) < bound {
                    next += 1;
                }
                buckets.push(next as u32);
            }
            first = last;
        }
    }
    (regions, buckets)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block(start: usize, size: usize) -> Block {
        Block {
            start,
            size,
            owner: Owner::Main,
        }
    }

    /// Only `index_of`/`find` are exercised: nothing here reads memory.
    fn index(blocks: Vec<Block>) -> Result<BlockIndex, IndexError> {
        // SAFETY: these tests never walk the index, so the fake addresses
        // are never read.
        unsafe { BlockIndex::new(blocks) }
    }

    #[test]
    fn finds_starts_and_interior_addresses_only() {
        let index = index(vec![block(0x2000, 16), block(0x1000, 32), block(0x3000, 0)]).unwrap();
        assert_eq!(index.blocks()[0].start, 0x1000);
        assert_eq!(index.index_of(0x1000), Some(0));
        assert_eq!(index.index_of(0x101f), Some(0));
        // One past the end belongs to no block.
        assert_eq!(index.index_of(0x1020), None);
        assert_eq!(index.index_of(0x0fff), None);
        assert_eq!(index.find(0x2008).map(|b| b.size), Some(16));
        // A zero-sized block contains nothing.
        assert_eq!(index.index_of(0x3000), None);
        assert_eq!(index.index_of(usize::MAX), None);
    }

    #[test]
    fn rejects_overlaps_and_wrapping_blocks() {
        assert_eq!(
            index(vec![block(0x1000, 32), block(0x1010, 8)]).unwrap_err(),
            IndexError::Overlap {
                first: block(0x1000, 32),
                second: block(0x1010, 8)
            }
        );
        assert_eq!(
            index(vec![block(usize::MAX - 4, 8)]).unwrap_err(),
            IndexError::OutOfRange(block(usize::MAX - 4, 8))
        );
        assert!(index(Vec::new()).unwrap().is_empty());
    }

    /// The bucketed lookup agrees with a plain search over the sorted
    /// blocks, for dense runs, sparse ones, several regions, zero-sized
    /// blocks and addresses between, inside and around all of them.
    #[test]
    fn agrees_with_a_plain_search() {
        let mut next = super::super::test_rng(0x9e37_79b9_7f4a_7c15);
        for round in 0..200 {
            let mut blocks = Vec::new();
            let mut at: usize = 0x1000 + next(1 << 20);
            let count = 1 + next(if round % 10 == 0 { 5000 } else { 300 });
            for _ in 0..count {
                let size = match next(10) {
                    0 => 0,
                    1 => next(1 << 20),
                    _ => 8 + next(200),
                };
                blocks.push(block(at, size));
                at += size
                    + match next(50) {
                        0 => REGION_GAP + next(1 << 40),
                        1 => next(1 << 24),
                        _ => next(64),
                    };
            }
            let index = index(blocks.clone()).unwrap();
            let plain = |addr: usize| {
                let i = blocks.partition_point(|b| b.start <= addr).checked_sub(1)?;
                (addr - blocks[i].start < blocks[i].size).then_some(i)
            };
            let mut probes = vec![0, usize::MAX, at, at + 1];
            for b in &blocks {
                for addr in [b.start.wrapping_sub(1), b.start, b.start + b.size / 2] {
                    probes.push(addr);
                }
                probes.push(b.start + b.size.max(1) - 1);
                probes.push(b.start + b.size);
                probes.push(b.start + next(1 << 30));
            }
            for addr in probes {
                assert_eq!(
                    index.index_of(addr),
                    plain(addr),
                    "round {round} addr {addr:#x}"
                );
            }
        }
    }

    /// Blocks at the very top of the address space, and a region so wide
    /// that its last bucket bound does not fit in a `usize`.
    #[test]
    fn handles_the_ends_of_the_address_space() {
        let top = index(vec![block(0x1000, 16), block(usize::MAX - 0x180, 0x180)]).unwrap();
        assert_eq!(top.index_of(usize::MAX - 1), Some(1));
        assert_eq!(top.index_of(usize::MAX - 0x180), Some(1));
        assert_eq!(top.index_of(usize::MAX - 0x181), None);
        let huge = 0xf000_0000_0000_0000usize;
        let wide = index(vec![block(0x1000, huge), block(0x1000 + huge + 16, 64)]).unwrap();
        assert_eq!(wide.index_of(0x1000 + huge + 24), Some(1));
        assert_eq!(wide.index_of(0x1000 + huge + 8), None);
        assert_eq!(wide.index_of(0x2000), Some(0));
    }

    /// A zero-sized block at a sized block's start shares no byte with it:
    /// accepted in either input order, and lookups find the sized one.
    #[test]
    fn a_zero_sized_block_beside_another_is_accepted_in_any_order() {
        let a = block(0x1000, 32);
        let empty = block(0x1000, 0);
        for blocks in [vec![a, empty], vec![empty, a]] {
            let index = index(blocks).unwrap();
            assert_eq!(index.find(0x1000), Some(&a));
            assert_eq!(index.find(0x101f), Some(&a));
        }
    }
}
