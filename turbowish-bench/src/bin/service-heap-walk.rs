//! The service in heap-walk mode (every live block registered), tasks
//! spawned through `turbowish::trace::spawn`.

#[global_allocator]
static ALLOC: turbowish::TurboWish = turbowish::TurboWish::system().heap_walk();

fn main() {
    turbowish_bench::main_with(turbowish_bench::Spawn::Traced);
}
