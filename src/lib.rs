#![doc = include_str!("../README.md")]

pub use turbowish_alloc as alloc;
pub use turbowish_report as report;
pub use turbowish_trace as trace;

pub use turbowish_alloc::TurboWish;
