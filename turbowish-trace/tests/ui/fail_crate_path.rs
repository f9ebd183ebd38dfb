// The `crate` path is the one the generated impl uses.
use turbowish_trace::Trace;

#[derive(Trace)]
#[trace(crate = "no_such_crate")]
struct Session {
    user: String,
}

fn main() {}
