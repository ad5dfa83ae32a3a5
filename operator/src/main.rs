//! `drlaas`: the operator and its command line.
//!
//! So far: `drlaas crd` prints the CustomResourceDefinitions (`drlaas crd | kubectl apply -f -`).
//! The controllers (`drlaas operator`), the local mode and the requester/worker commands build on the
//! pure core in [`drlaas_operator::core`].

use clap::{Parser, Subcommand};

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
}

fn main() {
    match Cli::parse().command {
        Command::Crd => print!("{}", drlaas_crds::crds_yaml()),
    }
}
