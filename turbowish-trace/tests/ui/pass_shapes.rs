use std::collections::HashMap;
use std::sync::Arc;

use turbowish_trace::Trace;

#[derive(Trace)]
struct Named<T, const N: usize> {
    items: Vec<T>,
    fixed: [u8; N],
    #[trace(skip = "borrowed from the pool, which traces it")]
    pool_slot: *const u8,
}

#[derive(Trace)]
struct Tuple<'a>(String, &'a str, Option<Box<u32>>);

#[derive(Trace)]
struct Unit;

#[derive(Trace)]
enum Message<K: Clone> {
    Quit,
    Move { x: i32, y: i32 },
    Write(String),
    Index(HashMap<K, Arc<str>>),
}

#[derive(Trace)]
enum Never {}

fn assert_trace<T: Trace>() {}

fn main() {
    assert_trace::<Named<String, 4>>();
    assert_trace::<Tuple<'static>>();
    assert_trace::<Unit>();
    assert_trace::<Message<u64>>();
    assert_trace::<Never>();
}
