//! `drlaas store put FILE`: a file into the content store, by CID. A requester stores the wheel of
//! their own environment this way and names it in the task (`environment.package`).

use std::path::PathBuf;

use drlaas_store::ContentStore;

use super::connect::open_store;
use super::{CliError, NetworkArgs};

/// `drlaas store`.
#[derive(Debug, clap::Args)]
pub struct StoreArgs {
    #[command(flatten)]
    pub network: NetworkArgs,
    #[command(subcommand)]
    pub command: StoreCommand,
}

/// What goes into the content store.
#[derive(Debug, clap::Subcommand)]
pub enum StoreCommand {
    /// Store FILE and print its CID. The store is `--store`, else the data directory's (the one
    /// `drlaas local run` uses, created if need be).
    Put {
        /// The file, e.g. an environment's wheel (`pip wheel --no-deps -w dist .`).
        file: PathBuf,
    },
}

/// Runs `drlaas store ...`.
pub async fn run(args: StoreArgs) -> Result<(), CliError> {
    match args.command {
        StoreCommand::Put { file } => {
            let local = drlaas_local::network::data_dir(args.network.data_dir.clone()).join("store");
            let (store, address) = open_store(&args.network, Some(local))?;
            let stored = store
                .put_file(&file)
                .await
                .map_err(|e| CliError::new(format!("storing {} in {address}: {e}", file.display())))?;
            println!("{}", stored.cid);
            Ok(())
        }
    }
}
