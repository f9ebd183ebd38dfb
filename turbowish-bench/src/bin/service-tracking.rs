//! The service on tracking-allocator with a tracker that does nothing:
//! the floor of a hook on every allocation and free.

use tracking_allocator::{AllocationGroupId, AllocationRegistry, AllocationTracker, Allocator};

#[global_allocator]
static ALLOC: Allocator<std::alloc::System> = Allocator::system();

struct Nothing;

impl AllocationTracker for Nothing {
    fn allocated(&self, _: usize, _: usize, _: usize, _: AllocationGroupId) {}
    fn deallocated(
        &self,
        _: usize,
        _: usize,
        _: usize,
        _: AllocationGroupId,
        _: AllocationGroupId,
    ) {
    }
}

fn main() {
    AllocationRegistry::set_global_tracker(Nothing).expect("no tracker set yet");
    AllocationRegistry::enable_tracking();
    turbowish_bench::main_with(turbowish_bench::Spawn::Tokio);
}
