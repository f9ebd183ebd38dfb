//! The service on `turbowish_bench::floor::Header` (see that module), tasks
//! spawned with `tokio::spawn`.

#[global_allocator]
static ALLOC: turbowish_bench::floor::Header = turbowish_bench::floor::Header;

fn main() {
    turbowish_bench::main_with(turbowish_bench::Spawn::Tokio);
}
