use turbowish_trace::Trace;

#[derive(Trace)]
#[trace(skip = "whole type")]
struct Session {
    user: String,
}

fn main() {}
