//! The service on TurboWish's allocator, tasks spawned with `tokio::spawn`.

#[global_allocator]
static ALLOC: turbowish::TurboWish = turbowish::TurboWish::system();

fn main() {
    turbowish_bench::main_with(turbowish_bench::Spawn::Tokio);
}
