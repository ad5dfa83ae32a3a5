//! The pure core: decisions from data, no I/O, deterministic for the same inputs.

pub mod lifecycle;
pub mod recruitment;
pub mod settlement;
pub mod similarity;
