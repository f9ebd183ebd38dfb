//! Task registry and context, the `Trace` trait and its derive, instrumented
//! sync resources, and the heap walker of [TurboWish](https://docs.rs/turbowish).
//!
//! This crate sits on `turbowish-alloc`: it gives the allocator's task tags
//! names, spawn locations and frames, and turns lock and channel activity
//! into the held-resource graph. Its features arrive with the issues that
//! build on the allocator core; for now it re-exports the allocator's task
//! context so that executors can depend on this crate alone.

pub use turbowish_alloc::context;
