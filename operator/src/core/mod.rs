//! The pure core: decisions from data, no I/O, deterministic for the same inputs.
//!
//! - [`admission`]: resources checked field by field and turned into the core's inputs;
//! - [`mirror`]: tasks posted on chain as `DRLTask` objects, checked against their documents;
//! - [`recruitment`] and [`similarity`]: which worker trains which task (DESIGN §6);
//! - [`lifecycle`]: the task state machine;
//! - [`verification`]: evaluation seeds and the verdict;
//! - [`settlement`]: the transaction that settles a task, judged from its state on chain.

pub mod admission;
pub mod lifecycle;
pub mod mirror;
pub mod recruitment;
pub mod settlement;
pub mod similarity;
pub mod verification;
