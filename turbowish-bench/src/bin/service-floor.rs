//! The service on `turbowish_bench::floor::HeaderCounter` (see that module), tasks
//! spawned with `tokio::spawn`.

#[global_allocator]
static ALLOC: turbowish_bench::floor::HeaderCounter = turbowish_bench::floor::HeaderCounter;

fn main() {
    turbowish_bench::main_with(turbowish_bench::Spawn::Tokio);
}
