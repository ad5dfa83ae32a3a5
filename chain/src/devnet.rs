//! A throwaway dev chain: the pinned anvil from `tools/` on a free port, with funded accounts and a
//! wallet holding all their keys. Used by tests, benchmarks, the demo and the local mode.

use std::path::PathBuf;

use alloy::{
    network::EthereumWallet,
    node_bindings::{Anvil, AnvilInstance},
    primitives::{Address, B256, U256},
    providers::{DynProvider, Provider, ProviderBuilder},
    signers::local::PrivateKeySigner,
};

use crate::connect::deploy_marketplace;
use crate::error::{ChainError, Result};
use crate::market::{Market, MarketParams};
use crate::types::{EnvKind, Expertise, Hardware, WorkerProfile};

/// Account 0 of a devnet: it deploys the market and administers it.
pub const ADMIN: usize = 0;
/// Account 1 of a devnet: the market's oracle (the operator's account) in [`Devnet::deploy_market`].
pub const ORACLE: usize = 1;

/// A development worker's profile: level-200 expertise in `kinds`, an 8-core CPU machine, `price`
/// wei per task.
pub fn dev_worker_profile(kinds: &[EnvKind], price: U256) -> WorkerProfile {
    WorkerProfile {
        expertise: Expertise::from_levels(kinds.iter().map(|k| (*k, 200))),
        hardware: Hardware {
            gpus: 0,
            cpu_cores: 8,
            memory_gib: 16,
        },
        price_per_task: price,
        metadata_cid: "bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy".into(),
    }
}

/// Where to find anvil: `$DRLAAS_ANVIL`, else `tools/node_modules/.bin/anvil` of this checkout (installed by
/// `tools/setup.sh`), else `anvil` on `PATH`.
pub fn anvil_binary() -> PathBuf {
    if let Some(p) = std::env::var_os("DRLAAS_ANVIL") {
        return PathBuf::from(p);
    }
    let in_tools = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tools/node_modules/.bin/anvil");
    if in_tools.exists() {
        return in_tools;
    }
    PathBuf::from("anvil")
}

/// A plain provider for the JSON-RPC endpoint `url` (`http://` or `https://`, the server verified
/// against the system's roots or `SSL_CERT_FILE`, see [`drlaas_http`]): reads only. Transactions are
/// filled and signed by [`crate::Market`] itself with the wallet it is given.
pub fn http_provider(url: reqwest::Url) -> DynProvider {
    ProviderBuilder::new()
        .disable_recommended_fillers()
        .connect_reqwest(drlaas_http::client(), url)
        .erased()
}

/// A wallet that signs for every key in `signers`.
pub fn wallet(signers: impl IntoIterator<Item = PrivateKeySigner>) -> EthereumWallet {
    let mut wallet = EthereumWallet::default();
    for s in signers {
        wallet.register_signer(s);
    }
    wallet
}

/// A running anvil and a provider that can sign for all of its accounts.
#[derive(Debug)]
pub struct Devnet {
    anvil: AnvilInstance,
    provider: DynProvider,
    signers: Vec<PrivateKeySigner>,
}

impl Devnet {
    /// Spawn anvil with `accounts` funded accounts (10,000 ETH each) on a free port.
    pub fn spawn(accounts: u16) -> Result<Devnet> {
        let bin = anvil_binary();
        let anvil = Anvil::new()
            .path(&bin)
            .args(["--accounts", &accounts.to_string()])
            .try_spawn()
            .map_err(|e| {
                ChainError::Rpc(format!(
                    "could not start anvil ({}): {e}; run tools/setup.sh or set DRLAAS_ANVIL",
                    bin.display()
                ))
            })?;
        let signers: Vec<PrivateKeySigner> = anvil
            .keys()
            .iter()
            .map(|k| PrivateKeySigner::from_bytes(&B256::from_slice(&k.to_bytes())).expect("anvil keys are valid"))
            .collect();
        let provider = http_provider(anvil.endpoint_url());
        Ok(Devnet {
            anvil,
            provider,
            signers,
        })
    }

    /// The provider.
    pub fn provider(&self) -> DynProvider {
        self.provider.clone()
    }

    /// A wallet with every account's key.
    pub fn wallet(&self) -> EthereumWallet {
        wallet(self.signers.iter().cloned())
    }

    /// The funded accounts, in anvil's order.
    pub fn accounts(&self) -> Vec<Address> {
        self.signers.iter().map(|s| s.address()).collect()
    }

    /// The accounts' keys.
    pub fn signers(&self) -> &[PrivateKeySigner] {
        &self.signers
    }

    /// The market deployed with `params` by account [`ADMIN`], with account [`ORACLE`] its only
    /// oracle (1 of 1): the layout of every local marketplace (tests, the demo, the local mode).
    pub async fn deploy_market(&self, params: MarketParams) -> Result<Market> {
        self.deploy_consortium(params, &[ORACLE], 1).await
    }

    /// The market deployed with `params` by account [`ADMIN`], with the accounts numbered
    /// `oracle_accounts` as its oracles (by seat, in that order) and `quorum` of them needed to agree.
    pub async fn deploy_consortium(
        &self,
        params: MarketParams,
        oracle_accounts: &[usize],
        quorum: u8,
    ) -> Result<Market> {
        let accounts = self.accounts();
        let mut oracles = Vec::with_capacity(oracle_accounts.len());
        for &i in oracle_accounts {
            oracles.push(*accounts.get(i).ok_or_else(|| ChainError::InvalidInput {
                field: "oracle_accounts",
                message: format!("account {i} of a devnet with {} accounts", accounts.len()),
            })?);
        }
        Ok(deploy_marketplace(
            self.provider(),
            self.wallet(),
            accounts[ADMIN],
            params,
            &oracles,
            quorum,
        )
        .await?)
    }

    /// The HTTP endpoint.
    pub fn endpoint(&self) -> reqwest::Url {
        self.anvil.endpoint_url()
    }

    /// Advance the chain clock by `seconds` and mine a block (`evm_increaseTime` + `evm_mine`).
    pub async fn warp(&self, seconds: u64) -> Result<()> {
        let rpc = |e: alloy::transports::TransportError| ChainError::Rpc(e.to_string());
        let _: serde_json::Value = self
            .provider
            .raw_request("evm_increaseTime".into(), (seconds,))
            .await
            .map_err(rpc)?;
        self.mine(1).await
    }

    /// Mine `blocks` empty blocks.
    pub async fn mine(&self, blocks: u64) -> Result<()> {
        let rpc = |e: alloy::transports::TransportError| ChainError::Rpc(e.to_string());
        let _: serde_json::Value = self
            .provider
            .raw_request("anvil_mine".into(), (blocks,))
            .await
            .map_err(rpc)?;
        Ok(())
    }

    /// The latest block's timestamp.
    pub async fn now(&self) -> Result<u64> {
        let block = self
            .provider
            .get_block_by_number(alloy::eips::BlockNumberOrTag::Latest)
            .await
            .map_err(|e| ChainError::Rpc(e.to_string()))?
            .ok_or_else(|| ChainError::Inconsistent("no latest block".into()))?;
        Ok(block.header.timestamp)
    }
}
