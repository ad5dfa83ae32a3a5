//! The pure core: decisions from data, no I/O, deterministic for the same inputs.
//!
//! - [`admission`]: resources checked field by field and turned into the core's inputs;
//! - [`mirror`]: tasks posted on chain as `DRLTask` objects, checked against their documents;
//! - [`model_choice`]: which listed model a task warm-starts from;
//! - [`recruitment`] and [`similarity`]: which worker trains which task (DESIGN §6);
//! - [`policies`]: baseline recruitment policies (random, reputation only, cheapest first) to
//!   measure the greedy against;
//! - [`lifecycle`]: the task state machine;
//! - [`next_step`]: what a task needs next, from its chain record and its pods;
//! - [`reports`]: the trainer's and the evaluator's termination messages;
//! - [`verification`]: evaluation seeds and the verdict;
//! - [`settlement`]: the transaction that settles a task, judged from its state on chain.

pub mod admission;
pub mod lifecycle;
pub mod mirror;
pub mod model_choice;
pub mod next_step;
pub mod policies;
pub mod recruitment;
pub mod reports;
pub mod settlement;
pub mod similarity;
pub mod verification;
