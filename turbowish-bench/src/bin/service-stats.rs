//! The service on stats_alloc: four global atomics per allocation, which
//! the two workers contend on.

#[global_allocator]
static ALLOC: &stats_alloc::StatsAlloc<std::alloc::System> = &stats_alloc::INSTRUMENTED_SYSTEM;

fn main() {
    turbowish_bench::main_with(turbowish_bench::Spawn::Tokio);
}
