#![doc = include_str!("../README.md")]

pub mod chains;
pub mod diff;
pub mod flame;
mod labels;
pub mod pprof;
pub mod sites;
