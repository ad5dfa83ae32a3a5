//! # drlaas-chain
//!
//! The on-chain marketplace of drlaas and the Rust client that talks to it.
//!
//! - **UMC** registers workers (stake, expertise, hardware, price) and keeps their reputation.
//! - **TMC** runs each task's lifecycle with its payment in escrow; its oracles (a consortium) vote on
//!   assignments and outcomes, and a majority quorum decides.
//! - **MMC** lists trained models and pays their owners (and their parents' owners) on purchase.
//!
//! The admin changes nothing at once: it schedules governed calls that anyone executes after the
//! contracts' governance delay ([`Market::govern`]).
//!
//! [`Market`] deploys, governs and drives the contracts (every user, worker and oracle action, each
//! oracle action a vote of the consortium's oracle set), decoding reverts into readable [`Revert`]s. [`EventStream`] delivers the contracts' events after N
//! confirmations, exactly once across restarts, from a persisted [`cursor`]. [`devnet`] spawns the
//! pinned anvil from `tools/` for tests, demos and the local mode.

mod abi;
pub mod bindings;
mod connect;
pub mod cursor;
mod deployment;
pub mod devnet;
mod error;
pub mod events;
mod market;
mod retry;
mod tx;
pub mod types;

pub use alloy;
pub use connect::{DeployError, OpenError, REACH_TIMEOUT, ReachError, deploy_marketplace, reach, rpc_provider};
pub use deployment::{DEPLOYMENT_FIELDS, DeploymentFileError, parse_deployment, read_deployment};
pub use error::{ChainError, Result, Revert};
pub use events::{ChainEvent, EventPosition, EventStream, MarketEvent, StreamConfig};
pub use market::{
    Change, Contract, Deployment, Governed, MAX_GOVERNANCE_DELAY, Market, MarketParams, Scheduled, majority,
};
pub use retry::RetryPolicy;
pub use tx::TxConfig;
pub use types::*;
