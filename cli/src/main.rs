//! `drlaas`: the operator and its command line.
//!
//! - `drlaas crd` prints the CustomResourceDefinitions (`drlaas crd | kubectl apply -f -`);
//! - `drlaas operator` runs the controllers (see [`drlaas_operator::runtime`]);
//! - `drlaas local run TASK.yaml…` runs the whole marketplace on this machine (see [`drlaas_cli::local`]);
//! - `drlaas task|worker|model|wallet` are the requesters' and workers' commands (see [`drlaas_cli`]);
//! - `drlaas chain deploy|set-oracles|execute|show` are the consortium admin's (see [`drlaas_cli::chain`]).

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
    /// Requesters' tasks on chain: submit, list, status, fetch-model, evaluate.
    Task(drlaas_cli::task::TaskArgs),
    /// Workers on chain: register, list, add-stake, unstake, withdraw-stake.
    Worker(drlaas_cli::worker::WorkerArgs),
    /// Credits the marketplace owes an account (pay, refunds, slashed stake, sales): show, withdraw.
    Wallet(drlaas_cli::wallet::WalletArgs),
    /// The model market: list, buy.
    Model(drlaas_cli::model::ModelArgs),
    /// The content store: put (a requester's environment wheel, by CID).
    Store(drlaas_cli::store::StoreArgs),
    /// The consortium admin's commands: deploy the contracts, allow oracles, show a deployment.
    Chain(drlaas_cli::chain::ChainArgs),
    /// The whole marketplace on this machine: `drlaas local run TASK.yaml…`, `drlaas local stop`.
    Local(drlaas_cli::local::LocalArgs),
}

fn main() -> ExitCode {
    match Cli::parse().command {
        Command::Crd => {
            print!("{}", drlaas_crds::crds_yaml());
            ExitCode::SUCCESS
        }
        Command::Task(args) => drlaas_cli::run(drlaas_cli::task::run(args)),
        Command::Worker(args) => drlaas_cli::run(drlaas_cli::worker::run(args)),
        Command::Wallet(args) => drlaas_cli::run(drlaas_cli::wallet::run(args)),
        Command::Model(args) => drlaas_cli::run(drlaas_cli::model::run(args)),
        Command::Store(args) => drlaas_cli::run(drlaas_cli::store::run(args)),
        Command::Chain(args) => drlaas_cli::run(drlaas_cli::chain::run(args)),
        Command::Local(args) => drlaas_cli::local::main(args),
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
