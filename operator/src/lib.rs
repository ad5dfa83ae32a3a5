//! The drlaas operator.
//!
//! [`core`] is the marketplace's logic as plain functions over plain data, with no I/O: environment
//! similarity, worker recruitment, the task state machine and the settlement decision. The controllers
//! (cluster) and the local mode (one machine) both drive it; only their edges differ. [`pods`] builds
//! the trainer and evaluator pods as plain data; [`runtime`] is the `drlaas operator` process.

pub mod config;
pub mod controller;
pub mod leader;
pub mod metrics;
pub mod pods;
pub mod runtime;
pub mod server;
