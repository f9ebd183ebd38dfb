//! The snapshot-at-scale workload in counting mode (see
//! `turbowish_bench::scale`).

#[global_allocator]
static ALLOC: turbowish::TurboWish = turbowish::TurboWish::system();

fn main() {
    turbowish_bench::scale::main();
}
