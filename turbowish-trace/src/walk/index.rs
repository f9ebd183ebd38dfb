//! [`BlockIndex`]: the live blocks a walk may read, sorted by address, so
//! that any address maps to its block in O(log n).

use turbowish_alloc::Owner;

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
#[derive(Debug, Clone)]
pub struct BlockIndex {
    starts: Vec<usize>,
    blocks: Vec<Block>,
    /// One past the last byte of the highest block: a quick filter for
    /// words that cannot be pointers into the heap.
    low: usize,
    high: usize,
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
        blocks.sort_unstable_by_key(|b| b.start);
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
        let low = blocks.first().map_or(usize::MAX, |b| b.start);
        let high = blocks.last().map_or(0, |b| b.start + b.size);
        Ok(BlockIndex {
            starts: blocks.iter().map(|b| b.start).collect(),
            blocks,
            low,
            high,
        })
    }

    /// The blocks, sorted by start.
    pub fn blocks(&self) -> &[Block] {
        &self.blocks
    }

    /// Number of blocks.
    pub fn len(&self) -> usize {
        self.blocks.len()
    }

    /// Whether there are no blocks.
    pub fn is_empty(&self) -> bool {
        self.blocks.is_empty()
    }

    /// The index of the block containing `addr` (its start or any byte
    /// inside; a zero-sized block contains nothing).
    #[inline]
    pub fn index_of(&self, addr: usize) -> Option<usize> {
        if addr < self.low || addr >= self.high {
            return None;
        }
        let after = self.starts.partition_point(|&s| s <= addr);
        let i = after.checked_sub(1)?;
        let block = &self.blocks[i];
        (addr - block.start < block.size).then_some(i)
    }

    /// The block containing `addr`.
    pub fn find(&self, addr: usize) -> Option<&Block> {
        self.index_of(addr).map(|i| &self.blocks[i])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block(start: usize, size: usize) -> Block {
        Block {
            start,
            size,
            owner: Owner::Untracked,
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
}
