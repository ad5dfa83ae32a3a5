//! The pure core: decisions from data, no I/O, deterministic for the same inputs.
//!
//! - [`admission`]: resources checked field by field and turned into the core's inputs;
//! - [`mirror`]: a task's document and terms on chain, and tasks posted on chain as `DRLTask`
//!   objects, checked against their documents;
//! - [`model_choice`]: where a task's initial weights come from, and which listed model it buys;
//! - [`recruitment`] and [`similarity`]: which worker trains which task (docs/architecture.md#recruitment);
//! - [`capacity`]: what the workers' pools already hold;
//! - [`policies`]: baseline recruitment policies (random, reputation only, cheapest first) to
//!   measure the greedy against;
//! - [`next_step`]: what a task needs next, from its chain record and its pods;
//! - [`lifecycle`]: the phase model: where that same observation says the task is, and the
//!   conditions its status shows;
//! - [`reports`]: the trainer's and the evaluator's termination messages;
//! - [`verification`]: evaluation seeds, the verdict and the evaluation the status shows;
//! - [`settlement`]: the transaction that settles a task, judged from its state on chain;
//! - [`consortium`]: who proposes an assignment, what a seconder checks, and the votes an oracle
//!   has cast.

pub mod admission;
pub mod capacity;
pub mod consortium;
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
