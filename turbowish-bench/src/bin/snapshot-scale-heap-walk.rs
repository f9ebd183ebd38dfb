//! The snapshot-at-scale workload in heap-walk mode (see
//! `turbowish_bench::scale`).

#[global_allocator]
static ALLOC: turbowish::TurboWish = turbowish::TurboWish::system().heap_walk();

fn main() {
    turbowish_bench::scale::main();
}
