//! The local mode: the whole marketplace on one machine. The same operator runtime that runs in a
//! cluster runs here, against an embedded API server kept in a data directory, with a local
//! kubelet that runs pods as processes of the trainer binary, a dev chain and a local content
//! store. Only the executor and the defaults differ from a cluster.

pub mod consortium;
pub mod curves;
pub mod listings;
pub mod outcomes;
pub mod progress;
pub mod run;

use drlaas_local::{chain, network};

use std::path::PathBuf;
use std::process::ExitCode;

/// `drlaas local`: the marketplace on this machine.
#[derive(Debug, Clone, clap::Args)]
pub struct LocalArgs {
    #[command(subcommand)]
    pub command: LocalCommand,
}

/// What `drlaas local` does.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum LocalCommand {
    /// Run tasks through the whole marketplace (chain, recruitment, training, verification,
    /// settlement) and print their outcomes; resumes the data directory's unsettled tasks.
    Run(run::RunArgs),
    /// Stop the data directory's chain (its state is saved; the next run starts it again).
    Stop {
        /// The data directory.
        #[arg(long, env = "DRLAAS_DATA_DIR")]
        data_dir: Option<PathBuf>,
    },
}

/// Runs `drlaas local`; the operator's logs go to `drlaas.log` in the data directory.
pub fn main(args: LocalArgs) -> ExitCode {
    match args.command {
        LocalCommand::Stop { data_dir } => {
            let dir = network::data_dir(data_dir);
            if chain::stop(&dir) {
                eprintln!("stopped the local chain of {}", dir.display());
            } else {
                eprintln!("no local chain runs for {}", dir.display());
            }
            ExitCode::SUCCESS
        }
        LocalCommand::Run(args) => {
            let dir = network::data_dir(args.data_dir.clone());
            if let Err(e) = std::fs::create_dir_all(&dir) {
                eprintln!("error: --data-dir {}: {e}", dir.display());
                return ExitCode::FAILURE;
            }
            let log = match std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(dir.join("drlaas.log"))
            {
                Ok(file) => file,
                Err(e) => {
                    eprintln!("error: {}: {e}", dir.join("drlaas.log").display());
                    return ExitCode::FAILURE;
                }
            };
            tracing_subscriber::fmt()
                .with_env_filter(
                    tracing_subscriber::EnvFilter::try_from_default_env()
                        .unwrap_or_else(|_| "info,kube_runtime=warn".into()),
                )
                .with_ansi(false)
                .with_writer(std::sync::Mutex::new(log))
                .init();
            let runtime = tokio::runtime::Runtime::new().expect("a tokio runtime starts");
            let started = std::time::Instant::now();
            let owns_chain = args.rpc_url.is_none();
            match runtime.block_on(run::run(args)) {
                Ok(rows) => {
                    print!("{}", outcomes::table(&rows));
                    println!(
                        "\n{} settled in {:.0} s. Learning curves: {}; outcomes: {}; operator log: {}",
                        match rows.len() {
                            1 => "1 task".to_string(),
                            n => format!("{n} tasks"),
                        },
                        started.elapsed().as_secs_f64(),
                        dir.join("curves").join("*.svg").display(),
                        dir.join("report.json").display(),
                        dir.join("drlaas.log").display()
                    );
                    if owns_chain {
                        println!(
                            "The local chain keeps running for `drlaas task|worker|model` (stop it with `drlaas local stop --data-dir {}`).",
                            dir.display()
                        );
                    }
                    // The runtime's tasks (controllers, pods) are done with: do not wait for them.
                    runtime.shutdown_background();
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("error: {e}");
                    runtime.shutdown_background();
                    ExitCode::FAILURE
                }
            }
        }
    }
}
