use turbowish_trace::Trace;

#[derive(Trace)]
struct Session {
    user: String,
    #[trace(skip)]
    socket: i32,
}

fn main() {}
