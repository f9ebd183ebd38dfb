use turbowish_trace::Trace;

#[derive(Trace)]
struct Session {
    #[trace(rename = "name")]
    user: String,
}

fn main() {}
