//! The people's command line: what requesters and workers do on the marketplace, through its public
//! parts only (the chain and the content store), so the same commands work against the local mode
//! and a cluster's network.
//!
//! - `drlaas task submit|list|status|cancel|fetch-model|evaluate` (requesters, see [`task`]);
//! - `drlaas worker register|list|add-stake|unstake|withdraw-stake` (workers, see [`worker`]);
//! - `drlaas wallet show|withdraw` (anyone the marketplace pays: credits and withdrawals, see [`wallet`]);
//! - `drlaas model list|buy` (the model market, see [`model`]);
//! - `drlaas chain deploy|set-oracles|execute|show` (the consortium admin, see [`chain`]).
//!
//! The marketplace is found as [`connect`] says; tables and sparklines are drawn by [`render`].

use std::fmt;
use std::future::Future;
use std::process::ExitCode;

pub mod chain;
pub mod connect;
pub mod local;
pub mod manifest;
pub mod model;
pub mod render;
pub mod store;
pub mod task;
pub mod wallet;
pub mod worker;

pub use connect::{KeyArgs, NetworkArgs};

/// Why a command failed: one message for a person, printed after `error: `.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CliError(pub String);

impl CliError {
    pub fn new(message: impl Into<String>) -> Self {
        CliError(message.into())
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for CliError {}

/// How list and status commands print.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Output {
    /// Aligned columns for people.
    #[default]
    Table,
    /// JSON for programs.
    Json,
}

/// Runs one command to completion and turns its outcome into an exit code.
pub fn run(command: impl Future<Output = Result<(), CliError>>) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Prints `value` as pretty JSON.
pub(crate) fn print_json(value: &impl serde::Serialize) {
    println!("{}", serde_json::to_string_pretty(value).expect("a report serializes"));
}
