//! [`Market`]: deploy, wire, govern and drive the three contracts. Every user, worker and oracle action is one
//! method that takes the sending account explicitly (`from`); the wallet the client was given must hold
//! its key. Transactions are signed locally (see `tx.rs`), so the RPC endpoint needs no keys.

use alloy::{
    network::EthereumWallet,
    primitives::{
        Address, B256, Bytes, U256,
        aliases::{U40, U96},
        keccak256,
    },
    providers::{DynProvider, Provider},
    rpc::types::Filter,
    sol_types::{SolCall, SolEvent},
};
use serde::{Deserialize, Serialize};

use crate::{
    bindings::{
        MMC::{self, MMCInstance},
        TMC::{self, TMCInstance},
        UMC::{self, UMCInstance},
    },
    error::{ChainError, Result},
    tx::{Sender, TxConfig},
    types::{
        AssignProposal, BlockRef, ConsortiumInfo, Credits, EnvKind, ListedModel, ListingId, ListingInfo, NewListing,
        NewTask, TaskId, TaskInfo, Terms, TxOutcome, WorkerActivity, WorkerInfo, WorkerProfile,
    },
};

/// Where the three contracts live on one chain. Serializable, so a deployment can be saved and reused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Deployment {
    /// EIP-155 chain id.
    pub chain_id: u64,
    /// Worker registry.
    pub umc: Address,
    /// Task lifecycle.
    pub tmc: Address,
    /// Model market.
    pub mmc: Address,
    /// Block of the first deployment transaction: event scans start here.
    pub block: u64,
}

/// Parameters the consortium sets at deployment (and can change later through governance, see
/// [`Market::set_params`]). `min_stake` and `unstake_cooldown` are UMC's; `slash_bps`,
/// `verification_window`, `max_attempts` and `reputation_floor` are TMC's lifecycle terms, which a
/// task keeps from the moment it is posted; `governance_delay` is every contract's.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MarketParams {
    /// Stake a worker must keep bonded per task it holds at once.
    pub min_stake: U256,
    /// Seconds between an unstake request and the withdrawal.
    pub unstake_cooldown: u64,
    /// Fraction of stake slashed per failed task, in basis points (≤ 5000).
    pub slash_bps: u16,
    /// Seconds after a deadline during which oracles may still settle a submitted result.
    pub verification_window: u64,
    /// Assignments a task gets before a failure refunds it.
    pub max_attempts: u8,
    /// Lowest price (wei) at which a completed task raises the worker's reputation: cheaper tasks
    /// pay but earn no reputation, so reputation cannot be farmed with near-free tasks.
    #[serde(default = "default_reputation_floor")]
    pub reputation_floor: U256,
    /// Seconds between scheduling a governed change and executing it (≤ 30 days), in every contract.
    /// 0 (devnets, the local mode) lets the admin change things at once.
    #[serde(default)]
    pub governance_delay: u64,
}

fn default_reputation_floor() -> U256 {
    U256::from(10u64).pow(U256::from(16u64))
}

/// The longest governance delay the contracts accept (`MAX_GOVERNANCE_DELAY`, 30 days).
pub const MAX_GOVERNANCE_DELAY: u64 = 30 * 24 * 3600;

impl Default for MarketParams {
    /// 1 ETH minimum stake, 7-day unstake cooldown, 10 % slash, 1-day verification window, 3 attempts,
    /// 0.01 ETH reputation floor, no governance delay.
    fn default() -> Self {
        MarketParams {
            min_stake: U256::from(10u64).pow(U256::from(18u64)),
            unstake_cooldown: 7 * 24 * 3600,
            slash_bps: 1_000,
            verification_window: 24 * 3600,
            max_attempts: 3,
            reputation_floor: default_reputation_floor(),
            governance_delay: 0,
        }
    }
}

impl MarketParams {
    /// TMC's lifecycle terms of these parameters.
    fn tmc_terms(&self) -> Result<TMC::Terms> {
        Ok(TMC::Terms {
            verificationWindow: u40("verificationWindow", self.verification_window)?,
            maxAttempts: self.max_attempts,
            slashBps: self.slash_bps,
            reputationFloor: u96("reputationFloor", self.reputation_floor)?,
        })
    }

    fn delay(&self) -> Result<U40> {
        governance_delay(self.governance_delay)
    }
}

fn governance_delay(delay: u64) -> Result<U40> {
    if delay > MAX_GOVERNANCE_DELAY {
        return Err(ChainError::InvalidInput {
            field: "governanceDelay",
            message: format!("{delay} s is above the most the contracts accept ({MAX_GOVERNANCE_DELAY} s = 30 days)"),
        });
    }
    u40("governanceDelay", delay)
}

/// Checks an oracle set the way TMC does, before anything is sent: 1 to 32 distinct non-zero
/// accounts and a quorum that is a majority of them.
fn check_oracles(oracles: &[Address], quorum: u8) -> Result<()> {
    let invalid = |message: String| ChainError::InvalidInput {
        field: "oracles",
        message,
    };
    if oracles.is_empty() || oracles.len() > 32 {
        return Err(invalid(format!("1 to 32 oracles, got {}", oracles.len())));
    }
    if oracles.contains(&Address::ZERO) {
        return Err(invalid("the zero address is no oracle".into()));
    }
    for (i, a) in oracles.iter().enumerate() {
        if oracles[..i].contains(a) {
            return Err(invalid(format!("{a} is listed twice")));
        }
    }
    let n = oracles.len();
    if quorum == 0 || usize::from(quorum) > n || 2 * usize::from(quorum) <= n {
        return Err(ChainError::InvalidInput {
            field: "quorum",
            message: format!(
                "{quorum} of {n} oracles is not a majority: the quorum must be between {} and {n}",
                n / 2 + 1
            ),
        });
    }
    Ok(())
}

/// The smallest majority of `oracles` oracles: the default quorum.
pub fn majority(oracles: usize) -> u8 {
    u8::try_from(oracles / 2 + 1).unwrap_or(u8::MAX)
}

/// One of the three contracts, for calls that exist on each (withdraw, credits, governance).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Contract {
    /// Worker registry.
    Umc,
    /// Task lifecycle.
    Tmc,
    /// Model market.
    Mmc,
}

impl Contract {
    /// All three, in deployment order.
    pub const ALL: [Contract; 3] = [Contract::Umc, Contract::Tmc, Contract::Mmc];

    /// `UMC`, `TMC` or `MMC`.
    pub fn name(self) -> &'static str {
        match self {
            Contract::Umc => "UMC",
            Contract::Tmc => "TMC",
            Contract::Mmc => "MMC",
        }
    }
}

impl std::fmt::Display for Contract {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// A governed call of one contract: what the admin schedules (`scheduleChange(data)`) and anyone
/// executes once its delay is over (`executeChange(data)`). Its id is `keccak256(data)`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Governed {
    /// The contract that is changed.
    pub contract: Contract,
    /// The call, ABI-encoded with its selector.
    pub data: Bytes,
}

impl Governed {
    fn new(contract: Contract, call: impl SolCall) -> Self {
        Governed {
            contract,
            data: call.abi_encode().into(),
        }
    }

    /// The change's id, as the contract keys it.
    pub fn id(&self) -> B256 {
        keccak256(&self.data)
    }

    /// TMC's `setOracles(oracles, quorum)` (checked as TMC checks it: 1 to 32 distinct oracles and a
    /// majority quorum).
    pub fn set_oracles(oracles: &[Address], quorum: u8) -> Result<Governed> {
        check_oracles(oracles, quorum)?;
        Ok(Governed::new(
            Contract::Tmc,
            TMC::setOraclesCall {
                oracles_: oracles.to_vec(),
                quorum_: quorum,
            },
        ))
    }

    /// TMC's `setTerms` with the lifecycle terms of `p` (for tasks posted from then on).
    pub fn set_terms(p: &MarketParams) -> Result<Governed> {
        Ok(Governed::new(
            Contract::Tmc,
            TMC::setTermsCall { terms_: p.tmc_terms()? },
        ))
    }

    /// UMC's `setParameters` with the staking parameters of `p`.
    pub fn set_staking(p: &MarketParams) -> Result<Governed> {
        Ok(Governed::new(
            Contract::Umc,
            UMC::setParametersCall {
                minStake_: u96("minStake", p.min_stake)?,
                unstakeCooldown_: u40("unstakeCooldown", p.unstake_cooldown)?,
            },
        ))
    }

    /// UMC's `setMarket(tmc)`: move the registry to another task market.
    pub fn set_market(tmc: Address) -> Governed {
        Governed::new(Contract::Umc, UMC::setMarketCall { market_: tmc })
    }

    /// `setGovernanceDelay(delay)` of `contract` (seconds, ≤ 30 days).
    pub fn set_governance_delay(contract: Contract, delay: u64) -> Result<Governed> {
        let delay = governance_delay(delay)?;
        Ok(match contract {
            Contract::Umc => Governed::new(contract, UMC::setGovernanceDelayCall { delay }),
            Contract::Tmc => Governed::new(contract, TMC::setGovernanceDelayCall { delay }),
            Contract::Mmc => Governed::new(contract, MMC::setGovernanceDelayCall { delay }),
        })
    }

    /// `transferAdmin(new_admin)` of `contract`.
    pub fn transfer_admin(contract: Contract, new_admin: Address) -> Governed {
        match contract {
            Contract::Umc => Governed::new(contract, UMC::transferAdminCall { newAdmin: new_admin }),
            Contract::Tmc => Governed::new(contract, TMC::transferAdminCall { newAdmin: new_admin }),
            Contract::Mmc => Governed::new(contract, MMC::transferAdminCall { newAdmin: new_admin }),
        }
    }
}

/// A governed change the admin scheduled.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Scheduled {
    /// The change's id (`keccak256` of its call data).
    pub id: B256,
    /// Unix time from which anyone can execute it ([`Market::execute`]).
    pub ready_at: u64,
    /// The `scheduleChange` transaction.
    pub outcome: TxOutcome,
    /// The contract it changes.
    pub contract: Contract,
    /// The scheduled call, to pass to [`Market::execute`].
    pub data: Bytes,
}

/// What a governed change did: took effect at once (every contract concerned has no governance
/// delay) or waits for its delay.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Change {
    /// Scheduled and executed at once: every `scheduleChange` and `executeChange` transaction, in order.
    Executed(Vec<TxOutcome>),
    /// Scheduled only: each call and when it can be executed. When some contract concerned has a
    /// delay, nothing is executed here, not even the calls of contracts without one (they are ready
    /// at once), so that a change spanning contracts takes effect together.
    Scheduled(Vec<Scheduled>),
}

/// A client of one drlaas deployment.
#[derive(Clone, Debug)]
pub struct Market {
    deployment: Deployment,
    umc: UMCInstance<DynProvider>,
    tmc: TMCInstance<DynProvider>,
    mmc: MMCInstance<DynProvider>,
    sender: Sender,
}

/// The same call on whichever of the three contracts `contract` names, as `c`: each inherits the
/// Consortium base (governance, credits), but has a binding type of its own.
macro_rules! on_contract {
    ($market:ident, $contract:expr, |$c:ident| $body:expr) => {
        match $contract {
            Contract::Umc => {
                let $c = &$market.umc;
                $body
            }
            Contract::Tmc => {
                let $c = &$market.tmc;
                $body
            }
            Contract::Mmc => {
                let $c = &$market.mmc;
                $body
            }
        }
    };
}

fn u96(field: &'static str, v: U256) -> Result<U96> {
    if v > U256::from(U96::MAX) {
        return Err(ChainError::InvalidInput {
            field,
            message: format!("{v} wei does not fit in 96 bits"),
        });
    }
    Ok(U96::from_limbs([v.as_limbs()[0], v.as_limbs()[1]]))
}

fn u40(field: &'static str, v: u64) -> Result<U40> {
    if v >= 1 << 40 {
        return Err(ChainError::InvalidInput {
            field,
            message: format!("{v} does not fit in 40 bits"),
        });
    }
    Ok(U40::from(v))
}

impl Market {
    /// Deploy UMC, TMC and MMC from `admin` with `params`, `oracles` as TMC's oracle set with
    /// `quorum` (a majority of them), and bind UMC to TMC (`bindMarket`). `admin` becomes the
    /// consortium admin of all three; later changes go through governance ([`Market::set_oracles`],
    /// [`Market::set_params`]), with `params.governance_delay`. `wallet` signs every transaction
    /// this client sends; it must hold `admin`'s key.
    pub async fn deploy(
        provider: DynProvider,
        wallet: EthereumWallet,
        admin: Address,
        params: MarketParams,
        oracles: &[Address],
        quorum: u8,
    ) -> Result<Market> {
        Ok(crate::connect::deploy_marketplace(provider, wallet, admin, params, oracles, quorum).await?)
    }

    /// [`Market::deploy`] without binding UMC to TMC.
    pub(crate) async fn deploy_unbound(
        provider: DynProvider,
        wallet: EthereumWallet,
        admin: Address,
        params: MarketParams,
        oracles: &[Address],
        quorum: u8,
    ) -> Result<Market> {
        check_oracles(oracles, quorum)?;
        let delay = params.delay()?;
        let terms = params.tmc_terms()?;
        let (min_stake, cooldown) = (
            u96("minStake", params.min_stake)?,
            u40("unstakeCooldown", params.unstake_cooldown)?,
        );
        let chain_id = provider
            .get_chain_id()
            .await
            .map_err(|e| ChainError::from_rpc("UMC", e))?;
        let sender = Sender::new(provider.clone(), wallet, chain_id);
        let created = |name: &'static str, receipt: alloy::rpc::types::TransactionReceipt| {
            receipt
                .contract_address
                .ok_or_else(|| ChainError::Inconsistent(format!("{name} deployment receipt has no contract address")))
        };
        let umc = UMC::deploy_builder(provider.clone(), admin, delay, min_stake, cooldown);
        let (first, receipt) = sender
            .transact_receipt("UMC", umc.from(admin).into_transaction_request())
            .await?;
        let umc = created("UMC", receipt)?;
        let tmc = TMC::deploy_builder(provider.clone(), admin, delay, umc, oracles.to_vec(), quorum, terms);
        let tmc = created(
            "TMC",
            sender
                .transact_receipt("TMC", tmc.from(admin).into_transaction_request())
                .await?
                .1,
        )?;
        let mmc = MMC::deploy_builder(provider.clone(), admin, delay);
        let mmc = created(
            "MMC",
            sender
                .transact_receipt("MMC", mmc.from(admin).into_transaction_request())
                .await?
                .1,
        )?;
        let deployment = Deployment {
            chain_id,
            umc,
            tmc,
            mmc,
            block: first.block,
        };
        tracing::info!(%umc, %tmc, %mmc, chain_id, oracles = oracles.len(), quorum, "deployed drlaas contracts");
        Ok(Market::with_sender(sender, deployment))
    }

    /// Bind UMC to this deployment's TMC (`bindMarket`, sent by the admin): possible once, right
    /// after deployment ([`Market::deploy`] does it); later moves go through governance
    /// ([`Governed::set_market`]).
    pub async fn bind_market(&self, admin: Address) -> Result<TxOutcome> {
        self.send("UMC", self.umc.bindMarket(self.deployment.tmc).from(admin))
            .await
    }

    /// A client of an existing deployment; `wallet` signs the transactions it sends.
    pub fn connect(provider: DynProvider, wallet: EthereumWallet, deployment: Deployment) -> Market {
        Market::with_sender(Sender::new(provider, wallet, deployment.chain_id), deployment)
    }

    fn with_sender(sender: Sender, deployment: Deployment) -> Market {
        let provider = sender.provider.clone();
        Market {
            umc: UMC::new(deployment.umc, provider.clone()),
            tmc: TMC::new(deployment.tmc, provider.clone()),
            mmc: MMC::new(deployment.mmc, provider),
            deployment,
            sender,
        }
    }

    /// Check that the provider is on the deployment's chain and the contracts have code there.
    pub async fn verify(&self) -> Result<()> {
        let chain_id = self
            .read("eth_chainId", || async { self.sender.provider.get_chain_id().await })
            .await?;
        if chain_id != self.deployment.chain_id {
            return Err(ChainError::Inconsistent(format!(
                "the RPC endpoint is chain {chain_id}, but the deployment is on chain {}",
                self.deployment.chain_id
            )));
        }
        for (name, addr) in [
            ("UMC", self.deployment.umc),
            ("TMC", self.deployment.tmc),
            ("MMC", self.deployment.mmc),
        ] {
            let code = self
                .read("eth_getCode", || async { self.sender.provider.get_code_at(addr).await })
                .await?;
            if code.is_empty() {
                return Err(ChainError::Inconsistent(format!(
                    "no {name} contract at {addr} on chain {chain_id}"
                )));
            }
        }
        Ok(())
    }

    /// Use `tx` for sending and awaiting transactions.
    pub fn with_tx_config(mut self, tx: TxConfig) -> Self {
        self.sender.config = tx;
        self
    }

    /// The deployment this client talks to.
    pub fn deployment(&self) -> &Deployment {
        &self.deployment
    }

    /// The underlying provider.
    pub fn provider(&self) -> &DynProvider {
        &self.sender.provider
    }

    // ------------------------------------------------------------------ governance

    /// Schedule the governed call `data` of `contract` (sent by the admin): anyone can execute it
    /// ([`Market::execute`]) from `ready_at`, the contract's governance delay from now.
    pub async fn schedule(&self, admin: Address, contract: Contract, data: Bytes) -> Result<Scheduled> {
        let name = contract.name();
        let outcome = on_contract!(self, contract, |c| self
            .send(name, c.scheduleChange(data.clone()).from(admin))
            .await?);
        let address = self.address(contract);
        let event = self
            .receipt_logs(outcome.hash)
            .await?
            .iter()
            .filter(|l| l.address() == address)
            .find_map(|l| TMC::ChangeScheduled::decode_log(&l.inner).ok())
            .ok_or_else(|| ChainError::Inconsistent(format!("no ChangeScheduled event in {}", outcome.hash)))?;
        Ok(Scheduled {
            id: event.id,
            ready_at: event.readyAt.saturating_to::<u64>(),
            outcome,
            contract,
            data,
        })
    }

    /// Execute the scheduled call `data` of `contract` once its delay is over (anyone may send it).
    /// A call that is not scheduled reverts `NotScheduled`, one still waiting `ChangeNotReady`; an
    /// executed call that fails reverts with its own error.
    pub async fn execute(&self, from: Address, contract: Contract, data: Bytes) -> Result<TxOutcome> {
        let name = contract.name();
        on_contract!(self, contract, |c| self
            .send(name, c.executeChange(data).from(from))
            .await)
    }

    /// Withdraw the scheduled change `id` of `contract` before it is executed (sent by the admin).
    pub async fn cancel_change(&self, admin: Address, contract: Contract, id: B256) -> Result<TxOutcome> {
        let name = contract.name();
        on_contract!(self, contract, |c| self
            .send(name, c.cancelChange(id).from(admin))
            .await)
    }

    /// When the change `id` of `contract` can be executed (unix time), or `None` when no change is
    /// scheduled under that id (never, cancelled, or already executed).
    pub async fn scheduled_at(&self, contract: Contract, id: B256) -> Result<Option<u64>> {
        let name = contract.name();
        let at = on_contract!(self, contract, |c| self
            .read_call(name, || async { c.scheduledChanges(id).call().await })
            .await?);
        Ok((!at.is_zero()).then(|| at.saturating_to::<u64>()))
    }

    /// `contract`'s governance delay in seconds.
    pub async fn governance_delay(&self, contract: Contract) -> Result<u64> {
        let name = contract.name();
        let delay = on_contract!(self, contract, |c| self
            .read_call(name, || async { c.governanceDelay().call().await })
            .await?);
        Ok(delay.to::<u64>())
    }

    /// Changes scheduled on `contract` and neither executed nor cancelled. While any is pending
    /// (on UMC or its market), workers may withdraw requested stake without waiting out the cooldown.
    pub async fn pending_changes(&self, contract: Contract) -> Result<u64> {
        let name = contract.name();
        let n = on_contract!(self, contract, |c| self
            .read_call(name, || async { c.pendingChanges().call().await })
            .await?);
        Ok(n.saturating_to::<u64>())
    }

    /// `contract`'s admin.
    pub async fn admin(&self, contract: Contract) -> Result<Address> {
        let name = contract.name();
        on_contract!(self, contract, |c| self
            .read_call(name, || async { c.admin().call().await })
            .await)
    }

    /// Schedule `calls` (sent by the admin) and, when none of their contracts has a governance
    /// delay, execute them at once (from the admin too); see [`Change`].
    pub async fn govern(&self, admin: Address, calls: Vec<Governed>) -> Result<Change> {
        let mut delayed = false;
        for contract in Contract::ALL {
            if calls.iter().any(|c| c.contract == contract) && self.governance_delay(contract).await? > 0 {
                delayed = true;
            }
        }
        let mut scheduled = Vec::with_capacity(calls.len());
        for call in calls {
            scheduled.push(self.schedule(admin, call.contract, call.data).await?);
        }
        if delayed {
            return Ok(Change::Scheduled(scheduled));
        }
        let mut sent = Vec::with_capacity(2 * scheduled.len());
        for s in scheduled {
            sent.push(s.outcome);
            sent.push(self.execute(admin, s.contract, s.data).await?);
        }
        Ok(Change::Executed(sent))
    }

    /// Replace TMC's oracle set and quorum (a majority of `oracles`) through governance: open votes
    /// of the old set stop counting once it takes effect.
    pub async fn set_oracles(&self, admin: Address, oracles: &[Address], quorum: u8) -> Result<Change> {
        self.govern(admin, vec![Governed::set_oracles(oracles, quorum)?]).await
    }

    /// Change UMC's staking parameters and TMC's lifecycle terms (for tasks posted from then on)
    /// through governance. `p.governance_delay` is not changed here ([`Market::set_governance_delay`]).
    pub async fn set_params(&self, admin: Address, p: MarketParams) -> Result<Change> {
        self.govern(admin, vec![Governed::set_staking(&p)?, Governed::set_terms(&p)?])
            .await
    }

    /// Change the governance delay of all three contracts (itself a governed change, under the
    /// delays in force).
    pub async fn set_governance_delay(&self, admin: Address, delay: u64) -> Result<Change> {
        let calls = Contract::ALL
            .into_iter()
            .map(|c| Governed::set_governance_delay(c, delay))
            .collect::<Result<Vec<_>>>()?;
        self.govern(admin, calls).await
    }

    /// Propose `new_admin` as the consortium admin of all three contracts, through governance.
    /// Nothing changes until the change is executed and `new_admin` calls [`Market::accept_admin`].
    pub async fn transfer_admin(&self, admin: Address, new_admin: Address) -> Result<Change> {
        let calls = Contract::ALL
            .into_iter()
            .map(|c| Governed::transfer_admin(c, new_admin))
            .collect();
        self.govern(admin, calls).await
    }

    /// Accept the admin role of all three contracts proposed by [`Market::transfer_admin`].
    pub async fn accept_admin(&self, new_admin: Address) -> Result<[TxOutcome; 3]> {
        Ok([
            self.send("UMC", self.umc.acceptAdmin().from(new_admin)).await?,
            self.send("TMC", self.tmc.acceptAdmin().from(new_admin)).await?,
            self.send("MMC", self.mmc.acceptAdmin().from(new_admin)).await?,
        ])
    }

    // ------------------------------------------------------------------ workers

    /// Register `worker` in UMC with `stake` wei bonded.
    pub async fn register_worker(&self, worker: Address, profile: &WorkerProfile, stake: U256) -> Result<TxOutcome> {
        let call = self.umc.registerWorker(
            profile.expertise.to_bytes32(),
            profile.hardware.into(),
            u96("pricePerTask", profile.price_per_task)?,
            profile.metadata_cid.clone(),
        );
        self.send("UMC", call.from(worker).value(stake)).await
    }

    /// Update `worker`'s profile.
    pub async fn update_worker(&self, worker: Address, profile: &WorkerProfile) -> Result<TxOutcome> {
        let call = self.umc.updateWorker(
            profile.expertise.to_bytes32(),
            profile.hardware.into(),
            u96("pricePerTask", profile.price_per_task)?,
            profile.metadata_cid.clone(),
        );
        self.send("UMC", call.from(worker)).await
    }

    /// Bond `amount` more wei.
    pub async fn add_stake(&self, worker: Address, amount: U256) -> Result<TxOutcome> {
        self.send("UMC", self.umc.addStake().from(worker).value(amount)).await
    }

    /// Start the cooldown to withdraw `amount` of stake.
    pub async fn request_unstake(&self, worker: Address, amount: U256) -> Result<TxOutcome> {
        self.send("UMC", self.umc.requestUnstake(u96("amount", amount)?).from(worker))
            .await
    }

    /// Withdraw the requested stake after the cooldown.
    pub async fn withdraw_stake(&self, worker: Address) -> Result<TxOutcome> {
        self.send("UMC", self.umc.withdrawStake().from(worker)).await
    }

    /// Submit the result of an assigned task: the model CID and keccak256 of the result JSON.
    pub async fn submit_result(
        &self,
        worker: Address,
        task: TaskId,
        model_cid: &str,
        result_hash: B256,
    ) -> Result<TxOutcome> {
        let call = self
            .tmc
            .submitResult(U256::from(task), model_cid.to_string(), result_hash);
        self.send("TMC", call.from(worker)).await
    }

    /// Give up `worker`'s assigned attempt at `task` before its deadline (TMC's `abandon`, sent by the
    /// worker): it fails as if the oracles had failed it (slash, reputation, never this task again)
    /// and the task reopens for another worker while attempts are left. No oracle vote is needed.
    pub async fn abandon(&self, worker: Address, task: TaskId) -> Result<TxOutcome> {
        self.send("TMC", self.tmc.abandon(U256::from(task)).from(worker)).await
    }

    // ------------------------------------------------------------------ requesters

    /// Post a task with its budget in escrow. Returns the new task id.
    pub async fn post_task(&self, requester: Address, task: &NewTask) -> Result<(TaskId, TxOutcome)> {
        if task.spec_cid.is_empty() {
            return Err(ChainError::InvalidInput {
                field: "specCid",
                message: "must not be empty".into(),
            });
        }
        let call = self
            .tmc
            .postTask(
                task.spec_cid.clone(),
                task.kind as u8,
                task.target_milli,
                u40("deadline", task.deadline)?,
            )
            .from(requester)
            .value(task.budget);
        let outcome = self.send("TMC", call).await?;
        let id = self.task_id_posted_in(outcome.hash).await?;
        Ok((id, outcome))
    }

    /// Cancel an unassigned task (escrow credited back).
    pub async fn cancel_task(&self, requester: Address, task: TaskId) -> Result<TxOutcome> {
        self.send("TMC", self.tmc.cancel(U256::from(task)).from(requester))
            .await
    }

    /// Withdraw a task its requester no longer wants (TMC's `withdrawTask(taskId)`); it ends Cancelled.
    /// A Posted task is cancelled as by [`Market::cancel_task`]: the whole budget is credited back
    /// (event `TaskCancelled`). An Assigned task, up to its deadline, is taken back from its worker,
    /// who is released with no slash and no reputation change and credited the withdrawal fee
    /// (`WITHDRAWAL_FEE_BPS`, 10 %, of its agreed price); the requester is credited the budget less
    /// the fee (event `TaskWithdrawn`). A Submitted task reverts `InvalidStatus` (verification
    /// settles it), an Assigned one past its deadline `DeadlinePassed` (see [`Market::expire`]).
    /// The credits are pulled with [`Market::withdraw`].
    pub async fn withdraw_task(&self, requester: Address, task: TaskId) -> Result<TxOutcome> {
        self.send("TMC", self.tmc.withdrawTask(U256::from(task)).from(requester))
            .await
    }

    // ------------------------------------------------------------------ oracles

    /// `oracle`'s vote to assign `task` to `worker` at its current price, at most `max_price` (the
    /// price the oracle saw when it chose the worker; ≤ the budget). The vote that brings `quorum`
    /// oracles to agree on the same worker and maximum assigns it (and fails `PriceAboveMax` when
    /// the worker raised its price above it meanwhile); earlier votes only count (`Voted` event). An
    /// oracle may back several proposals in a round (another worker, when the one it backed can no
    /// longer be assigned); backing the same one twice reverts `AlreadyVoted`.
    pub async fn assign(&self, oracle: Address, task: TaskId, worker: Address, max_price: U256) -> Result<TxOutcome> {
        self.send("TMC", self.tmc.assign(U256::from(task), worker, max_price).from(oracle))
            .await
    }

    /// `oracle`'s vote to accept the submitted result; the vote that reaches the quorum pays the worker
    /// its price, refunds the rest of the budget and raises the worker's reputation (when the price
    /// was at least the task's reputation floor).
    pub async fn complete(&self, oracle: Address, task: TaskId) -> Result<TxOutcome> {
        self.send("TMC", self.tmc.complete(U256::from(task)).from(oracle)).await
    }

    /// `oracle`'s vote to fail the current attempt; the vote that reaches the quorum fails it
    /// (slash, reputation down). The task goes to another worker only if no failing vote said
    /// `reopen = false` (and attempts and time are left), else the escrow is refunded.
    pub async fn fail(&self, oracle: Address, task: TaskId, reopen: bool) -> Result<TxOutcome> {
        self.send("TMC", self.tmc.fail(U256::from(task), reopen).from(oracle))
            .await
    }

    /// Expire a task past its deadline (anyone may); a worker that held it to the deadline without
    /// submitting is failed and slashed (`TaskFailed`), one whose result went unsettled is released.
    pub async fn expire(&self, from: Address, task: TaskId) -> Result<TxOutcome> {
        self.send("TMC", self.tmc.expire(U256::from(task)).from(from)).await
    }

    // ------------------------------------------------------------------ model market

    /// List a model. Returns the new listing id.
    pub async fn list_model(&self, owner: Address, listing: &NewListing) -> Result<(ListingId, TxOutcome)> {
        let call = self.mmc.list(
            listing.model_cid.clone(),
            listing.env_kind.index(),
            listing.env_descriptor_hash,
            u96("price", listing.price)?,
            listing.parent.unwrap_or(0),
            listing.royalty_bps,
        );
        let outcome = self.send("MMC", call.from(owner)).await?;
        let receipt = self.receipt_logs(outcome.hash).await?;
        let id = receipt
            .iter()
            .filter(|l| l.address() == self.deployment.mmc)
            .find_map(|l| MMC::ModelListed::decode_log(&l.inner).ok())
            .map(|e| e.listingId.to::<u64>())
            .ok_or_else(|| ChainError::Inconsistent(format!("no ModelListed event in {}", outcome.hash)))?;
        Ok((id, outcome))
    }

    /// Buy a listing at its current price.
    pub async fn purchase(&self, buyer: Address, listing: ListingId) -> Result<TxOutcome> {
        let price = self.listing(listing).await?.price;
        self.send("MMC", self.mmc.purchase(U256::from(listing)).from(buyer).value(price))
            .await
    }

    /// Rate a bought model 1 to 5 stars.
    pub async fn rate(&self, buyer: Address, listing: ListingId, stars: u8) -> Result<TxOutcome> {
        self.send("MMC", self.mmc.rate(U256::from(listing), stars).from(buyer))
            .await
    }

    /// Take a listing off the market.
    pub async fn delist(&self, owner: Address, listing: ListingId) -> Result<TxOutcome> {
        self.send("MMC", self.mmc.delist(U256::from(listing)).from(owner)).await
    }

    /// Change a listing's price.
    pub async fn set_price(&self, owner: Address, listing: ListingId, price: U256) -> Result<TxOutcome> {
        self.send(
            "MMC",
            self.mmc.setPrice(U256::from(listing), u96("price", price)?).from(owner),
        )
        .await
    }

    // ------------------------------------------------------------------ payments

    /// Withdraw `account`'s credits from one contract.
    pub async fn withdraw(&self, account: Address, from: Contract) -> Result<TxOutcome> {
        on_contract!(self, from, |c| self.send(from.name(), c.withdraw().from(account)).await)
    }

    /// Withdraw `account`'s credits from every contract that holds some. Returns the transactions sent.
    pub async fn withdraw_all(&self, account: Address) -> Result<Vec<TxOutcome>> {
        let credits = self.credits(account).await?;
        let mut sent = Vec::new();
        for (contract, amount) in [
            (Contract::Tmc, credits.tmc),
            (Contract::Umc, credits.umc),
            (Contract::Mmc, credits.mmc),
        ] {
            if !amount.is_zero() {
                sent.push(self.withdraw(account, contract).await?);
            }
        }
        Ok(sent)
    }

    // ------------------------------------------------------------------ reads

    /// Task `id` as TMC records it.
    pub async fn task(&self, id: TaskId) -> Result<TaskInfo> {
        let t = self
            .read_call("TMC", || async { self.tmc.getTask(U256::from(id)).call().await })
            .await?;
        if t.status == 0 {
            return Err(ChainError::Inconsistent(format!("task {id} does not exist on chain")));
        }
        Ok(TaskInfo::from_chain(id, t))
    }

    /// Number of tasks ever posted (ids are 1..=count).
    pub async fn task_count(&self) -> Result<u64> {
        Ok(self
            .read_call("TMC", || async { self.tmc.taskCount().call().await })
            .await?
            .to::<u64>())
    }

    /// The spec CID of task `id`, from its `TaskPosted` event (only TMC can emit it).
    pub async fn task_spec_cid(&self, id: TaskId) -> Result<String> {
        let ev = self.last_task_event::<TMC::TaskPosted>(id).await?;
        Ok(ev
            .ok_or_else(|| ChainError::Inconsistent(format!("no TaskPosted event for task {id}")))?
            .specCid)
    }

    /// The latest submitted result of task `id` (model CID, result hash), if any.
    pub async fn task_result(&self, id: TaskId) -> Result<Option<(String, B256)>> {
        let ev = self.last_task_event::<TMC::ResultSubmitted>(id).await?;
        Ok(ev.map(|e| (e.modelCid, e.resultHash)))
    }

    /// `worker` as UMC records it, or `None` when not registered.
    pub async fn worker(&self, worker: Address) -> Result<Option<WorkerInfo>> {
        let w = self
            .read_call("UMC", || async { self.umc.getWorker(worker).call().await })
            .await?;
        if w.registeredAt.is_zero() {
            return Ok(None);
        }
        let active = self
            .read_call("UMC", || async { self.umc.activeTasksOf(worker).call().await })
            .await?;
        Ok(Some(WorkerInfo::from_chain(worker, w, active)))
    }

    /// Listing `id` as MMC records it.
    pub async fn listing(&self, id: ListingId) -> Result<ListingInfo> {
        let l = self
            .read_call("MMC", || async { self.mmc.getListing(U256::from(id)).call().await })
            .await?;
        if l.owner == Address::ZERO {
            return Err(ChainError::Inconsistent(format!(
                "listing {id} does not exist on chain"
            )));
        }
        Ok(ListingInfo::from_chain(id, l))
    }

    /// Whether `buyer` has bought listing `id` (a repeated purchase reverts, so check first).
    pub async fn has_purchased(&self, id: ListingId, buyer: Address) -> Result<bool> {
        let state = self
            .read_call("MMC", || async {
                self.mmc.purchaseOf(U256::from(id), buyer).call().await
            })
            .await?;
        Ok(state != 0)
    }

    /// Number of listings ever made (ids are 1..=count).
    pub async fn listing_count(&self) -> Result<u64> {
        Ok(self
            .read_call("MMC", || async { self.mmc.listingCount().call().await })
            .await?
            .to::<u64>())
    }

    /// `account`'s withdrawable credits in each contract.
    pub async fn credits(&self, account: Address) -> Result<Credits> {
        Ok(Credits {
            tmc: self
                .read_call("TMC", || async { self.tmc.credits(account).call().await })
                .await?,
            umc: self
                .read_call("UMC", || async { self.umc.credits(account).call().await })
                .await?,
            mmc: self
                .read_call("MMC", || async { self.mmc.credits(account).call().await })
                .await?,
        })
    }

    /// Wei in escrow for task `id`.
    pub async fn escrow(&self, id: TaskId) -> Result<U256> {
        self.read_call("TMC", || async { self.tmc.escrowOf(U256::from(id)).call().await })
            .await
    }

    /// The ETH balance of `account`.
    pub async fn balance(&self, account: Address) -> Result<U256> {
        self.read("eth_getBalance", || async {
            self.sender.provider.get_balance(account).await
        })
        .await
    }

    /// Current block number.
    pub async fn block_number(&self) -> Result<u64> {
        self.read("eth_blockNumber", || async {
            self.sender.provider.get_block_number().await
        })
        .await
    }

    /// The lifecycle limits of the current terms (those of tasks posted now): the verification
    /// window (seconds after a deadline during which a submitted result can still be settled) and
    /// the attempts a task gets. A task keeps the terms it was posted under: see
    /// [`Market::task_terms`].
    pub async fn task_limits(&self) -> Result<(u64, u8)> {
        let t = self.terms().await?;
        Ok((t.verification_window, t.max_attempts))
    }

    /// The lifecycle terms tasks posted now are settled under.
    pub async fn terms(&self) -> Result<Terms> {
        let version = self
            .read_call("TMC", || async { self.tmc.termsVersion().call().await })
            .await?;
        let t = self
            .read_call("TMC", || async { self.tmc.termsAt(version).call().await })
            .await?;
        Ok(t.into())
    }

    /// The lifecycle terms task `id` is settled under (those in force when it was posted).
    pub async fn task_terms(&self, id: TaskId) -> Result<Terms> {
        let t = self
            .read_call("TMC", || async { self.tmc.termsOf(U256::from(id)).call().await })
            .await?;
        Ok(t.into())
    }

    /// The parameters in force: UMC's staking parameters, TMC's current terms and TMC's governance
    /// delay.
    pub async fn params(&self) -> Result<MarketParams> {
        let terms = self.terms().await?;
        let min_stake = self
            .read_call("UMC", || async { self.umc.minStake().call().await })
            .await?;
        let cooldown = self
            .read_call("UMC", || async { self.umc.unstakeCooldown().call().await })
            .await?;
        Ok(MarketParams {
            min_stake: U256::from(min_stake),
            unstake_cooldown: cooldown.to::<u64>(),
            slash_bps: terms.slash_bps,
            verification_window: terms.verification_window,
            max_attempts: terms.max_attempts,
            reputation_floor: terms.reputation_floor,
            governance_delay: self.governance_delay(Contract::Tmc).await?,
        })
    }

    /// TMC's oracle set: the oracles by seat, the quorum and the set's epoch.
    pub async fn consortium(&self) -> Result<ConsortiumInfo> {
        Ok(ConsortiumInfo {
            oracles: self
                .read_call("TMC", || async { self.tmc.oracles().call().await })
                .await?,
            quorum: self
                .read_call("TMC", || async { self.tmc.quorum().call().await })
                .await?,
            epoch: self
                .read_call("TMC", || async { self.tmc.oracleEpoch().call().await })
                .await?,
        })
    }

    /// `oracle`'s seat in TMC's oracle set (bit `seat` of [`crate::TaskVotes`]), or `None` when it is no oracle.
    pub async fn seat_of(&self, oracle: Address) -> Result<Option<u8>> {
        let oracles = self
            .read_call("TMC", || async { self.tmc.oracles().call().await })
            .await?;
        Ok(oracles
            .iter()
            .position(|a| *a == oracle)
            .and_then(|i| u8::try_from(i).ok()))
    }

    /// Seats that voted to assign `task`'s next attempt to `worker` at most `max_price` (under the
    /// current oracle set).
    pub async fn assign_support(&self, task: TaskId, worker: Address, max_price: U256) -> Result<u32> {
        self.read_call("TMC", || async {
            self.tmc.assignSupport(U256::from(task), worker, max_price).call().await
        })
        .await
    }

    /// Whether `worker` failed an attempt at `task` (it cannot be assigned it again).
    pub async fn failed_before(&self, task: TaskId, worker: Address) -> Result<bool> {
        self.read_call("TMC", || async {
            self.tmc.failedBefore(U256::from(task), worker).call().await
        })
        .await
    }

    /// Block `number`, or the latest block: its number, hash and timestamp.
    pub async fn block(&self, number: Option<u64>) -> Result<BlockRef> {
        let tag = number.map_or(
            alloy::eips::BlockNumberOrTag::Latest,
            alloy::eips::BlockNumberOrTag::Number,
        );
        let block = self
            .read("eth_getBlockByNumber", || async {
                self.sender.provider.get_block_by_number(tag).await
            })
            .await?
            .ok_or_else(|| ChainError::Inconsistent(format!("block {tag} does not exist yet")))?;
        Ok(BlockRef {
            number: block.header.number,
            hash: block.header.hash,
            timestamp: block.header.timestamp,
        })
    }

    /// Tasks `requester` posted with `spec_cid` in or after block `from_block`, oldest first: how
    /// a client that crashed between sending `postTask` and recording its receipt finds the task.
    pub async fn tasks_posted_by(&self, requester: Address, spec_cid: &str, from_block: u64) -> Result<Vec<TaskId>> {
        let filter = Filter::new()
            .address(self.deployment.tmc)
            .event_signature(TMC::TaskPosted::SIGNATURE_HASH)
            .topic2(requester.into_word())
            .from_block(from_block.max(self.deployment.block));
        let logs = self
            .read("eth_getLogs", || async { self.sender.provider.get_logs(&filter).await })
            .await?;
        Ok(logs
            .iter()
            .filter_map(|l| TMC::TaskPosted::decode_log(&l.inner).ok())
            .filter(|e| e.specCid == spec_cid)
            .map(|e| e.taskId.to::<u64>())
            .collect())
    }

    /// What `worker` did on the market in blocks `from_block..=to_block` (from the deployment block
    /// at the earliest): the tasks it completed and the models it listed, in chain order. One
    /// `eth_getLogs` over TMC and MMC, filtered on the worker (both events index it second).
    pub async fn worker_activity(&self, worker: Address, from_block: u64, to_block: u64) -> Result<WorkerActivity> {
        let from_block = from_block.max(self.deployment.block);
        let mut activity = WorkerActivity::default();
        if from_block > to_block {
            return Ok(activity);
        }
        let filter = Filter::new()
            .address(vec![self.deployment.tmc, self.deployment.mmc])
            .event_signature(vec![
                TMC::TaskCompleted::SIGNATURE_HASH,
                MMC::ModelListed::SIGNATURE_HASH,
            ])
            .topic2(worker.into_word())
            .from_block(from_block)
            .to_block(to_block);
        let logs = self
            .read("eth_getLogs", || async { self.sender.provider.get_logs(&filter).await })
            .await?;
        for log in &logs {
            let block = log
                .block_number
                .ok_or_else(|| ChainError::Inconsistent("a log without its block number".into()))?;
            if log.address() == self.deployment.tmc {
                if let Ok(e) = TMC::TaskCompleted::decode_log(&log.inner) {
                    activity.completed.push((e.taskId.to::<u64>(), block));
                }
            } else if log.address() == self.deployment.mmc
                && let Ok(e) = MMC::ModelListed::decode_log(&log.inner)
            {
                activity.listed.push(ListedModel {
                    id: e.listingId.to::<u64>(),
                    env_kind: EnvKind::from_index(e.envKind),
                    env_descriptor_hash: e.envDescriptorHash,
                    model_cid: e.data.modelCid.clone(),
                    block,
                });
            }
        }
        Ok(activity)
    }

    /// The spec CIDs of tasks `ids`, from their `TaskPosted` events (one `eth_getLogs` per 100 ids).
    /// A task without an event (an id never posted) is absent from the answer.
    pub async fn task_spec_cids(&self, ids: &[TaskId]) -> Result<std::collections::BTreeMap<TaskId, String>> {
        let mut cids = std::collections::BTreeMap::new();
        for chunk in ids.chunks(100) {
            let topics: Vec<B256> = chunk.iter().map(|id| B256::from(U256::from(*id))).collect();
            let filter = Filter::new()
                .address(self.deployment.tmc)
                .event_signature(TMC::TaskPosted::SIGNATURE_HASH)
                .topic1(topics)
                .from_block(self.deployment.block);
            let logs = self
                .read("eth_getLogs", || async { self.sender.provider.get_logs(&filter).await })
                .await?;
            for e in logs.iter().filter_map(|l| TMC::TaskPosted::decode_log(&l.inner).ok()) {
                cids.insert(e.taskId.to::<u64>(), e.data.specCid);
            }
        }
        Ok(cids)
    }

    /// The assignments proposed for attempt `attempt` (1-based: the task's `attempts + 1` while it
    /// is Posted) of `task` that still have votes under the current oracle set: each worker and
    /// maximum price some oracle voted for (from the `Voted` events), the oracle that proposed it
    /// first, and the seats that support it now (`assignSupport`). Most supported first, then in
    /// the order they were proposed. Votes of an earlier oracle set or attempt are left out.
    pub async fn assign_proposals(&self, task: TaskId, attempt: u8) -> Result<Vec<AssignProposal>> {
        let mut proposals: Vec<AssignProposal> = Vec::new();
        for e in self.votes(task).await? {
            // Ballot 0 is Assign.
            if e.ballot != 0 || e.attempt != attempt {
                continue;
            }
            if proposals
                .iter()
                .any(|p| p.worker == e.worker && p.max_price == e.maxPrice)
            {
                continue;
            }
            proposals.push(AssignProposal {
                worker: e.worker,
                max_price: e.maxPrice,
                oracle: e.oracle,
                support: 0,
            });
        }
        for p in &mut proposals {
            p.support = self.assign_support(task, p.worker, p.max_price).await?;
        }
        proposals.retain(|p| p.support != 0);
        // A stable sort: ties keep the order of proposal.
        proposals.sort_by_key(|p| std::cmp::Reverse(p.support.count_ones()));
        Ok(proposals)
    }

    /// Every vote cast on `task`, in chain order (TMC's `Voted` events; a quorum-1 vote emits none,
    /// its outcome's event stands for it). Ballot 0 is assign, 1 complete, 2 fail.
    pub async fn votes(&self, task: TaskId) -> Result<Vec<TMC::Voted>> {
        let filter = Filter::new()
            .address(self.deployment.tmc)
            .event_signature(TMC::Voted::SIGNATURE_HASH)
            .topic1(U256::from(task))
            .from_block(self.deployment.block);
        let logs = self
            .read("eth_getLogs", || async { self.sender.provider.get_logs(&filter).await })
            .await?;
        Ok(logs
            .iter()
            .filter_map(|l| TMC::Voted::decode_log(&l.inner).ok())
            .map(|e| e.data)
            .collect())
    }

    /// Whether `oracle` is one of TMC's oracles (its votes count).
    pub async fn is_oracle(&self, oracle: Address) -> Result<bool> {
        self.read_call("TMC", || async { self.tmc.isOracle(oracle).call().await })
            .await
    }

    // ------------------------------------------------------------------ internal

    async fn send<P, D>(&self, contract: &'static str, call: alloy::contract::CallBuilder<P, D>) -> Result<TxOutcome>
    where
        P: Provider,
        D: alloy::contract::CallDecoder,
    {
        let outcome = self.sender.transact(contract, call.into_transaction_request()).await;
        match &outcome {
            Ok(o) => {
                tracing::debug!(contract, hash = %o.hash, gas = o.gas_used, "transaction mined")
            }
            Err(e) => tracing::debug!(contract, error = %e, "transaction failed"),
        }
        outcome
    }

    async fn read<T, E, F, Fut>(&self, what: &'static str, f: F) -> Result<T>
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = std::result::Result<T, alloy::transports::RpcError<E>>>,
        alloy::transports::RpcError<E>: std::error::Error + 'static,
    {
        self.sender
            .config
            .retry
            .run(what, || async {
                f().await
                    .map_err(|e| ChainError::Rpc(format!("{what}: {}", drlaas_http::describe(&e))))
            })
            .await
    }

    async fn read_call<T, F, Fut>(&self, contract: &'static str, f: F) -> Result<T>
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = std::result::Result<T, alloy::contract::Error>>,
    {
        self.sender
            .config
            .retry
            .run(contract, || async {
                f().await.map_err(|e| ChainError::from_contract(contract, e))
            })
            .await
    }

    async fn receipt_logs(&self, hash: B256) -> Result<Vec<alloy::rpc::types::Log>> {
        let receipt = self
            .read("eth_getTransactionReceipt", || async {
                self.sender.provider.get_transaction_receipt(hash).await
            })
            .await?;
        let receipt = receipt.ok_or_else(|| ChainError::Inconsistent(format!("no receipt for {hash}")))?;
        Ok(receipt.inner.logs().to_vec())
    }

    async fn task_id_posted_in(&self, hash: B256) -> Result<TaskId> {
        self.receipt_logs(hash)
            .await?
            .iter()
            .filter(|l| l.address() == self.deployment.tmc)
            .find_map(|l| TMC::TaskPosted::decode_log(&l.inner).ok())
            .map(|e| e.taskId.to::<u64>())
            .ok_or_else(|| ChainError::Inconsistent(format!("no TaskPosted event in {hash}")))
    }

    async fn last_task_event<E: SolEvent>(&self, id: TaskId) -> Result<Option<E>> {
        let filter = Filter::new()
            .address(self.deployment.tmc)
            .event_signature(E::SIGNATURE_HASH)
            .topic1(U256::from(id))
            .from_block(self.deployment.block);
        let logs = self
            .read("eth_getLogs", || async { self.sender.provider.get_logs(&filter).await })
            .await?;
        Ok(logs
            .iter()
            .rev()
            .find_map(|l| E::decode_log(&l.inner).ok())
            .map(|l| l.data))
    }

    fn address(&self, contract: Contract) -> Address {
        match contract {
            Contract::Umc => self.deployment.umc,
            Contract::Tmc => self.deployment.tmc,
            Contract::Mmc => self.deployment.mmc,
        }
    }
}
