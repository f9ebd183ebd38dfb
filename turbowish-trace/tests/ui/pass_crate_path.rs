// A crate that reaches turbowish-trace under another name says where.
extern crate turbowish_trace as renamed;

#[derive(renamed::Trace)]
#[trace(crate = "renamed")]
struct Session<T> {
    user: String,
    items: Vec<T>,
}

fn main() {
    fn traceable<T: renamed::Trace>() {}
    traceable::<Session<u8>>();
}
