//! Finding the marketplace and the key that signs: the network comes from the data directory's
//! `network.json` (written by `drlaas local run`), with flags overriding each field; the key from
//! `--key-file`, `$DRLAAS_KEY`, or on a dev chain `--account N` (an account of the chain's
//! well-known mnemonic, as the local mode numbers them).

use std::path::{Path, PathBuf};
use std::time::Duration;

use drlaas_chain::alloy::primitives::{Address, U256};
use drlaas_chain::alloy::signers::local::{MnemonicBuilder, PrivateKeySigner};
use drlaas_chain::{
    ChainError, Deployment, DeploymentFileError, Market, OpenError, REACH_TIMEOUT, ReachError, RetryPolicy, TxConfig,
    devnet, reach, read_deployment,
};
use drlaas_store::Store;

use super::CliError;
use drlaas_local::network::{self, NETWORK_FILE, Network};

/// The mnemonic of anvil's (and hardhat's) funded dev accounts: public knowledge, dev chains only.
pub const DEV_MNEMONIC: &str = "test test test test test test test test test test test junk";
/// Chain id of anvil and hardhat by default.
pub const DEV_CHAIN_ID: u64 = 31337;
/// The local mode's default requester account.
pub const DEFAULT_REQUESTER: u32 = 5;

/// Where the marketplace is.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct NetworkArgs {
    /// Data directory whose network.json names the marketplace (default: $DRLAAS_DATA_DIR, else
    /// $XDG_DATA_HOME/drlaas, else ~/.local/share/drlaas).
    #[arg(long, global = true, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// JSON-RPC endpoint of the chain (overrides network.json).
    #[arg(long, global = true, value_name = "URL")]
    pub rpc_url: Option<String>,
    /// The contracts: a JSON file with chainId, umc, tmc, mmc and block (overrides network.json).
    #[arg(long, global = true, value_name = "FILE")]
    pub deployment: Option<PathBuf>,
    /// Content store: an IPFS API URL or a local store directory (overrides network.json).
    #[arg(long, global = true, value_name = "ADDRESS")]
    pub store: Option<String>,
}

/// The content store that `--store` names, else the data directory's network.json, else `fallback`
/// (the store a first `drlaas local run` of that directory will use); with its address.
pub fn open_store(network: &NetworkArgs, fallback: Option<PathBuf>) -> Result<(Store, String), CliError> {
    let dir = drlaas_local::network::data_dir(network.data_dir.clone());
    let from_file = || {
        Network::load(&dir)
            .ok()
            .flatten()
            .map(|n| n.store)
            .filter(|s| !s.is_empty())
    };
    let address = network
        .store
        .clone()
        .or_else(from_file)
        .or_else(|| fallback.map(|f| f.display().to_string()))
        .ok_or_else(|| {
            CliError::new(format!(
                "no content store: no network.json in {} names one; pass --store (an IPFS API URL or a store directory)",
                dir.display()
            ))
        })?;
    let store =
        Store::open(&address).map_err(|e| CliError::new(format!("cannot open the content store at {address}: {e}")))?;
    Ok((store, address))
}

/// Who signs.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct KeyArgs {
    /// File holding the signing account's hex private key (else $DRLAAS_KEY).
    #[arg(long, value_name = "PATH", conflicts_with = "account")]
    pub key_file: Option<PathBuf>,
    /// On a dev chain, sign as account N of its well-known mnemonic (local mode: 2-4 the default
    /// workers, 5 the default requester).
    #[arg(long, value_name = "N")]
    pub account: Option<u32>,
}

/// The network with the flags applied over the data directory's file, and where it came from.
pub fn resolve(args: &NetworkArgs, data_dir: &Path, file: Option<Network>) -> Result<(Network, String), CliError> {
    let from_file = file.is_some();
    let deployment = match &args.deployment {
        Some(path) => Some(deployment_flag(path, "")?),
        None => file.as_ref().map(|n| n.deployment),
    };
    let rpc_url = args
        .rpc_url
        .clone()
        .or_else(|| file.as_ref().map(|n| n.rpc_url.clone()));
    let (Some(rpc_url), Some(deployment)) = (rpc_url, deployment) else {
        return Err(CliError::new(format!(
            "no marketplace found (no {} in {}): run `drlaas local run` first, or pass --rpc-url and --deployment",
            NETWORK_FILE,
            data_dir.display()
        )));
    };
    let store = args
        .store
        .clone()
        .or_else(|| file.as_ref().map(|n| n.store.clone()))
        .unwrap_or_default();
    let dev_chain = file.as_ref().is_some_and(|n| n.dev_chain) || deployment.chain_id == DEV_CHAIN_ID;
    let source = if from_file {
        data_dir.join(NETWORK_FILE).display().to_string()
    } else {
        "--deployment".to_string()
    };
    Ok((
        Network {
            rpc_url,
            deployment,
            store,
            dev_chain,
        },
        source,
    ))
}

/// The deployment file `--deployment` names; `unreadable_hint` follows the error of a file that
/// cannot be read (what writes one).
pub fn deployment_flag(path: &Path, unreadable_hint: &str) -> Result<Deployment, CliError> {
    read_deployment(path).map_err(|e| match e {
        DeploymentFileError::Unreadable { .. } => CliError::new(format!("--deployment {e}{unreadable_hint}")),
        DeploymentFileError::Invalid { .. } => CliError::new(format!("--deployment {e}")),
    })
}

/// How the people's and the admin's commands send: a few quick retries, so that a dead node is
/// said soon.
pub fn tx_config() -> TxConfig {
    TxConfig {
        retry: RetryPolicy {
            attempts: 3,
            initial_delay: Duration::from_millis(200),
            max_delay: Duration::from_secs(1),
        },
        ..TxConfig::default()
    }
}

/// The signer `keys` name: `--key-file`, else `$DRLAAS_KEY`, else `--account N` (dev chains),
/// else `default_account` on a dev chain.
pub fn signer(keys: &KeyArgs, network: &Network, default_account: Option<u32>) -> Result<PrivateKeySigner, CliError> {
    signer_on(keys, network.deployment.chain_id, network.dev_chain, default_account)
}

/// [`signer`] on chain `chain_id` before any deployment is known (`dev_chain`: whether `--account N`
/// may name a well-known dev account there).
pub fn signer_on(
    keys: &KeyArgs,
    chain_id: u64,
    dev_chain: bool,
    default_account: Option<u32>,
) -> Result<PrivateKeySigner, CliError> {
    if let Some(path) = &keys.key_file {
        let text =
            std::fs::read_to_string(path).map_err(|e| CliError::new(format!("--key-file {}: {e}", path.display())))?;
        return parse_key(&text).map_err(|m| CliError::new(format!("--key-file {}: {m}", path.display())));
    }
    if let Some(text) = std::env::var_os("DRLAAS_KEY") {
        return parse_key(&text.to_string_lossy()).map_err(|m| CliError::new(format!("$DRLAAS_KEY: {m}")));
    }
    let account = match (keys.account, default_account) {
        (Some(n), _) => n,
        (None, Some(n)) if dev_chain => n,
        _ => {
            return Err(CliError::new(
                "no signing key: pass --key-file PATH or set DRLAAS_KEY (on a dev chain, --account N)",
            ));
        }
    };
    if !dev_chain {
        return Err(CliError::new(format!(
            "--account {account} names a dev chain's well-known account, but chain {chain_id} is not a dev chain: pass --key-file or set DRLAAS_KEY"
        )));
    }
    dev_account(account)
}

/// Account `index` of the dev chains' well-known mnemonic (BIP-44 path m/44'/60'/0'/0/index).
pub fn dev_account(index: u32) -> Result<PrivateKeySigner, CliError> {
    MnemonicBuilder::from_phrase(DEV_MNEMONIC)
        .index(index)
        .and_then(|b| b.build())
        .map_err(|e| CliError::new(format!("--account {index}: {e}")))
}

fn parse_key(text: &str) -> Result<PrivateKeySigner, String> {
    text.trim()
        .parse::<PrivateKeySigner>()
        .map_err(|_| "not a hex secp256k1 private key".to_string())
}

/// A client of the marketplace.
#[derive(Debug)]
pub struct Connection {
    pub network: Network,
    /// Where the network came from (for error messages).
    pub source: String,
    pub data_dir: PathBuf,
    pub market: Market,
    /// The account that signs, when a key was given.
    pub account: Option<Address>,
}

impl Connection {
    /// Connects to the marketplace `args` name, signing with `signer` (reads need none), and
    /// checks that the chain answers and holds the contracts.
    pub async fn open(
        args: &NetworkArgs,
        signer: impl FnOnce(&Network) -> Result<Option<PrivateKeySigner>, CliError>,
    ) -> Result<Connection, CliError> {
        let data_dir = network::data_dir(args.data_dir.clone());
        let file = Network::load(&data_dir).map_err(|e| CliError::new(format!("the marketplace file: {e}")))?;
        let (network, source) = resolve(args, &data_dir, file)?;
        let signer = signer(&network)?;
        // Name where the URL came from, so the flag or file to fix is plain.
        let origin = if args.rpc_url.is_some() {
            "--rpc-url".to_string()
        } else {
            format!("rpcUrl of {}", data_dir.join(NETWORK_FILE).display())
        };
        let url = &network.rpc_url;
        let (provider, _) = reach(url, REACH_TIMEOUT).await.map_err(|e| match e {
            ReachError::NotAUrl(_) => CliError::new(format!("{origin} {url:?}: {e}")),
            _ => CliError::new(format!("cannot reach the chain at {url} ({origin}): {e}")),
        })?;
        let account = signer.as_ref().map(|s| s.address());
        let market = Market::open(provider, devnet::wallet(signer), network.deployment)
            .await
            .map_err(|e| match e {
                OpenError::Chain(ChainError::Rpc(m)) => {
                    CliError::new(format!("cannot reach the chain at {url} ({origin}): {m}"))
                }
                e => CliError::new(format!(
                    "the marketplace in {source} does not match the chain at {url}: {e}"
                )),
            })?
            .with_tx_config(tx_config());
        Ok(Connection {
            network,
            source,
            data_dir,
            market,
            account,
        })
    }

    /// The signing account (the commands that send transactions open with a key).
    pub fn account(&self) -> Address {
        self.account
            .expect("a command that signs opened the connection with a key")
    }

    /// The chain's clock (its latest block's timestamp): deadlines and cooldowns are enforced by it.
    pub async fn chain_now(&self) -> Result<u64, CliError> {
        Ok(self
            .market
            .block(None)
            .await
            .map_err(|e| self.chain_error(e))?
            .timestamp)
    }

    /// A chain error, said plainly: an unreachable node is named.
    pub fn chain_error(&self, e: ChainError) -> CliError {
        match e {
            ChainError::Rpc(m) => CliError::new(format!("cannot reach the chain at {}: {m}", self.network.rpc_url)),
            other => CliError::new(other.to_string()),
        }
    }

    /// The content store (the commands that read or write documents and models need one).
    pub fn store(&self) -> Result<Store, CliError> {
        if self.network.store.is_empty() {
            return Err(CliError::new(format!(
                "no content store: {} names none; pass --store (an IPFS API URL or a store directory)",
                self.source
            )));
        }
        Store::open(&self.network.store)
            .map_err(|e| CliError::new(format!("cannot open the content store at {}: {e}", self.network.store)))
    }
}

/// The error of a transaction from `account` that moves `amount` wei (`what`: "the task
/// escrows"), said plainly when the account cannot pay for it.
pub fn funds_error(
    conn: &Connection,
    account: Address,
    balance: U256,
    amount: U256,
    what: &str,
    e: ChainError,
) -> CliError {
    match &e {
        ChainError::Rejected(m) if m.to_lowercase().contains("insufficient funds") => CliError::new(format!(
            "account {account} holds {}, {what} {} plus gas",
            super::render::eth(balance),
            super::render::eth(amount)
        )),
        _ => conn.chain_error(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deployment(chain_id: u64) -> Deployment {
        Deployment {
            chain_id,
            umc: Address::repeat_byte(1),
            tmc: Address::repeat_byte(2),
            mmc: Address::repeat_byte(3),
            block: 1,
        }
    }

    #[test]
    fn flags_override_the_data_directorys_network() {
        let file = Network {
            rpc_url: "http://127.0.0.1:8545".into(),
            deployment: deployment(7),
            store: "/data/store".into(),
            dev_chain: true,
        };
        let dir = Path::new("/data");
        let (n, source) = resolve(&NetworkArgs::default(), dir, Some(file.clone())).unwrap();
        assert_eq!((n, source.as_str()), (file.clone(), "/data/network.json"));
        let flags = NetworkArgs {
            rpc_url: Some("http://node:8545".into()),
            store: Some("http://ipfs:5001".into()),
            ..NetworkArgs::default()
        };
        let (n, _) = resolve(&flags, dir, Some(file)).unwrap();
        assert_eq!(
            (n.rpc_url.as_str(), n.store.as_str()),
            ("http://node:8545", "http://ipfs:5001")
        );
    }

    #[test]
    fn without_a_network_the_error_says_what_to_do() {
        let err = resolve(&NetworkArgs::default(), Path::new("/nowhere"), None).unwrap_err();
        assert_eq!(
            err.to_string(),
            "no marketplace found (no network.json in /nowhere): run `drlaas local run` first, or pass --rpc-url and --deployment"
        );
        let only_url = NetworkArgs {
            rpc_url: Some("http://node:8545".into()),
            ..NetworkArgs::default()
        };
        assert!(resolve(&only_url, Path::new("/nowhere"), None).is_err());
    }

    #[test]
    fn dev_accounts_are_derived_from_the_well_known_mnemonic() {
        // anvil's first two accounts, as it prints them.
        assert_eq!(
            dev_account(0).unwrap().address().to_string(),
            "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"
        );
        assert_eq!(
            dev_account(1).unwrap().address().to_string(),
            "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"
        );
        let network = Network {
            rpc_url: String::new(),
            deployment: deployment(1),
            store: String::new(),
            dev_chain: false,
        };
        let keys = KeyArgs {
            account: Some(2),
            ..KeyArgs::default()
        };
        assert!(
            signer(&keys, &network, None)
                .unwrap_err()
                .to_string()
                .contains("is not a dev chain")
        );
    }
}
