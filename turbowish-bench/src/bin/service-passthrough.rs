//! The service on `turbowish_bench::floor::Passthrough` (see that module), tasks
//! spawned with `tokio::spawn`.

#[global_allocator]
static ALLOC: turbowish_bench::floor::Passthrough = turbowish_bench::floor::Passthrough;

fn main() {
    turbowish_bench::main_with(turbowish_bench::Spawn::Tokio);
}
