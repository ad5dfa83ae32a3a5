//! `drlaas`: the operator and its command line.
//!
//! - `drlaas crd` prints the CustomResourceDefinitions (`drlaas crd | kubectl apply -f -`);
//! - `drlaas operator` runs the controllers (see [`drlaas_operator::runtime`]).

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use drlaas_operator::runtime::{self, OperatorArgs};

#[derive(Debug, Parser)]
#[command(
    name = "drlaas",
    version,
    about = "Crowdsourced deep reinforcement learning as a service"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Print the CustomResourceDefinitions (DRLTask, Worker) as YAML.
    Crd,
    /// Run the operator: the DRLTask, Worker and chain-admission controllers, while leading.
    Operator(Box<OperatorArgs>),
}

fn main() -> ExitCode {
    match Cli::parse().command {
        Command::Crd => {
            print!("{}", drlaas_crds::crds_yaml());
            ExitCode::SUCCESS
        }
        Command::Operator(args) => {
            tracing_subscriber::fmt()
                .with_env_filter(
                    tracing_subscriber::EnvFilter::try_from_default_env()
                        .unwrap_or_else(|_| "info,kube_runtime=warn".into()),
                )
                .init();
            let runtime = tokio::runtime::Runtime::new().expect("a tokio runtime starts");
            match runtime.block_on(runtime::run(*args)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("error: {e}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}
