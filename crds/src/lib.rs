//! drlaas resource types.
//!
//! Plain serde types shared by the operator and the trainer. They link neither kube nor torch (DESIGN §2):
//! the trainer image reads a [`TrainingSpec`] from `task.json`, the operator reads the same type as the
//! training part of a `DRLTask` spec and validates it before any escrow moves.

pub mod hyperparameters;
pub mod training;

pub use hyperparameters::{Activation, DqnConfig, NetworkConfig, PpoConfig};
pub use training::{Algorithm, SpecError, TrainingSpec};
