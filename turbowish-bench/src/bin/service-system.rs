//! The service on plain `System`: the baseline.

fn main() {
    turbowish_bench::main_with(turbowish_bench::Spawn::Tokio);
}
