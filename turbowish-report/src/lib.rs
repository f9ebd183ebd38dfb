#![doc = include_str!("../README.md")]

pub mod chains;
pub mod diff;
pub mod flame;
pub mod html;
pub mod json;
mod labels;
pub mod pprof;
pub mod sites;
pub mod top;
