//! Opening a marketplace, the one way every program does it (the operator, the local mode, the
//! people's and the admin's commands, the tests):
//!
//! - [`reach`] a chain's JSON-RPC endpoint: its URL parsed and its chain id read within a time
//!   limit, so that a wrong or dead endpoint is said as such;
//! - [`Market::open`] a deployment there, checked against the chain (its chain id, and code at
//!   each contract's address), and [`Market::open_as_oracle`] for an oracle, also checked against
//!   TMC's oracles;
//! - [`deploy_marketplace`]: deploy the three contracts with their oracle set and bind them.

use std::time::Duration;

use alloy::{
    network::EthereumWallet,
    primitives::Address,
    providers::{DynProvider, Provider},
    signers::local::PrivateKeySigner,
};

use crate::devnet;
use crate::error::ChainError;
use crate::market::{Deployment, Market, MarketParams};

/// How long the first contact with a chain may take, unless a caller says otherwise.
pub const REACH_TIMEOUT: Duration = Duration::from_secs(10);

/// Why a chain endpoint could not be used. The messages leave out the URL, so that each caller
/// names it with where it came from (a flag, a file).
#[derive(Debug, thiserror::Error)]
pub enum ReachError {
    /// The URL does not parse.
    #[error("not a URL: {0}")]
    NotAUrl(String),
    /// Nothing answered within the time limit.
    #[error("no answer within {} s", .0.as_secs())]
    NoAnswer(Duration),
    /// The endpoint refused or failed the first request.
    #[error("{0}")]
    Unreachable(String),
}

/// A reads-only provider for the endpoint at `url` (`http://` or `https://`); nothing is sent yet.
pub fn rpc_provider(url: &str) -> Result<DynProvider, ReachError> {
    let url = url.parse().map_err(|e| ReachError::NotAUrl(format!("{e}")))?;
    Ok(devnet::http_provider(url))
}

/// The endpoint at `url`, contacted once: its provider and the chain id it answered within
/// `timeout`.
pub async fn reach(url: &str, timeout: Duration) -> Result<(DynProvider, u64), ReachError> {
    let provider = rpc_provider(url)?;
    match tokio::time::timeout(timeout, provider.get_chain_id()).await {
        Err(_) => Err(ReachError::NoAnswer(timeout)),
        Ok(Err(e)) => Err(ReachError::Unreachable(drlaas_http::describe(&e))),
        Ok(Ok(chain_id)) => Ok((provider, chain_id)),
    }
}

/// Why a deployment could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// The deployment is not on this chain: another chain id, or no code at a contract's address.
    #[error("{0}")]
    Mismatch(String),
    /// The oracle's account is not in TMC's oracle set.
    #[error("{oracle} is not an oracle of TMC {tmc}")]
    NotOracle {
        /// The account.
        oracle: Address,
        /// The deployment's TMC.
        tmc: Address,
    },
    /// The chain could not be read.
    #[error(transparent)]
    Chain(ChainError),
}

impl From<ChainError> for OpenError {
    fn from(e: ChainError) -> Self {
        match e {
            ChainError::Inconsistent(m) => OpenError::Mismatch(m),
            other => OpenError::Chain(other),
        }
    }
}

impl Market {
    /// A client of `deployment` on the chain behind `provider`, signing with `wallet` (reads need
    /// no key), checked against the chain: the provider is on the deployment's chain and each
    /// contract has code there ([`Market::verify`]).
    pub async fn open(
        provider: DynProvider,
        wallet: EthereumWallet,
        deployment: Deployment,
    ) -> Result<Market, OpenError> {
        let market = Market::connect(provider, wallet, deployment);
        market.verify().await?;
        Ok(market)
    }

    /// [`Market::open`] for an oracle: it signs with `oracle`'s key, and is refused unless that
    /// account is in TMC's oracle set (it votes to assign and settle tasks).
    pub async fn open_as_oracle(
        provider: DynProvider,
        oracle: PrivateKeySigner,
        deployment: Deployment,
    ) -> Result<Market, OpenError> {
        let account = oracle.address();
        let market = Market::open(provider, devnet::wallet([oracle]), deployment).await?;
        if !market.is_oracle(account).await? {
            return Err(OpenError::NotOracle {
                oracle: account,
                tmc: deployment.tmc,
            });
        }
        Ok(market)
    }
}

/// Why a deployment failed, and how far it got.
#[derive(Debug, thiserror::Error)]
pub enum DeployError {
    /// The contracts could not be deployed (or the oracle set or parameters are invalid): nothing
    /// usable is on chain.
    #[error("could not deploy the contracts: {0}")]
    Contracts(ChainError),
    /// The contracts are deployed (in `market`), but UMC could not be bound to TMC
    /// (`bindMarket`), so no task can be assigned yet: retry with [`Market::bind_market`].
    #[error("the contracts are deployed, but UMC could not be bound to TMC: {source}")]
    Unbound {
        /// A client of the deployed contracts.
        market: Box<Market>,
        /// Why.
        source: ChainError,
    },
}

impl From<DeployError> for ChainError {
    fn from(e: DeployError) -> Self {
        match e {
            DeployError::Contracts(e) | DeployError::Unbound { source: e, .. } => e,
        }
    }
}

/// Deploys UMC, TMC and MMC with `params` from `admin` (the consortium admin of all three; `wallet`
/// must hold its key), with `oracles` as TMC's oracle set and `quorum` (a majority of them) the votes
/// that must agree, then binds UMC to TMC. Returns a client of the deployment.
pub async fn deploy_marketplace(
    provider: DynProvider,
    wallet: EthereumWallet,
    admin: Address,
    params: MarketParams,
    oracles: &[Address],
    quorum: u8,
) -> Result<Market, DeployError> {
    let market = Market::deploy_unbound(provider, wallet, admin, params, oracles, quorum)
        .await
        .map_err(DeployError::Contracts)?;
    match market.bind_market(admin).await {
        Ok(_) => Ok(market),
        Err(source) => Err(DeployError::Unbound {
            market: Box::new(market),
            source,
        }),
    }
}
