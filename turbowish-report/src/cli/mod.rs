//! The analyses and renderers behind the `turbowish` CLI. Each command is a
//! library function from a loaded [`Snapshot`](crate::Snapshot) to text,
//! serialisable data or bytes; the binary only parses arguments, loads files
//! and writes what these return.

mod chains;
mod diff;
mod flame;
mod names;
mod pprof;
mod report;
mod write;

pub use chains::{chains_dot, chains_text};
pub use diff::{diff, DiffError, Growth, SiteGrowth, SnapshotDiff, SnapshotSide, TaskGrowth};
pub use flame::FoldedStacks;
pub use pprof::pprof_gz;
pub use report::{
    task_sites, CensusLine, GuardLine, MemoryReport, MemoryRow, NoSuchTask, RetainedSummary,
    RowWalk, SiteFrame, SiteRow, SortKey, Summary, TaskSites,
};
pub use write::write_atomic;
