//! [`Market`]: deploy, wire and drive the three contracts. Every user, worker and oracle action is one
//! method that takes the sending account explicitly (`from`); the wallet the client was given must hold
//! its key. Transactions are signed locally (see `tx.rs`), so the RPC endpoint needs no keys.

use alloy::{
    network::EthereumWallet,
    primitives::{
        Address, B256, U256,
        aliases::{U40, U96},
    },
    providers::{DynProvider, Provider},
    rpc::types::Filter,
    sol_types::SolEvent,
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
        BlockRef, Credits, EnvKind, ListedModel, ListingId, ListingInfo, NewListing, NewTask, TaskId, TaskInfo,
        TxOutcome, WorkerActivity, WorkerInfo, WorkerProfile,
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

/// Parameters the consortium sets at deployment (and can change later).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MarketParams {
    /// Stake a worker must keep bonded to be assigned tasks.
    pub min_stake: U256,
    /// Seconds between an unstake request and the withdrawal.
    pub unstake_cooldown: u64,
    /// Fraction of stake slashed per failed task, in basis points (≤ 5000).
    pub slash_bps: u16,
    /// Seconds after a deadline during which oracles may still settle a submitted result.
    pub verification_window: u64,
    /// Assignments a task gets before a failure refunds it.
    pub max_attempts: u8,
}

impl Default for MarketParams {
    /// 1 ETH minimum stake, 7-day unstake cooldown, 10 % slash, 1-day verification window, 3 attempts.
    fn default() -> Self {
        MarketParams {
            min_stake: U256::from(10u64).pow(U256::from(18u64)),
            unstake_cooldown: 7 * 24 * 3600,
            slash_bps: 1_000,
            verification_window: 24 * 3600,
            max_attempts: 3,
        }
    }
}

/// One of the three contracts, for calls that exist on each (withdraw, credits).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Contract {
    /// Worker registry.
    Umc,
    /// Task lifecycle.
    Tmc,
    /// Model market.
    Mmc,
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
    /// Deploy UMC, TMC and MMC from `admin` and allow TMC and MMC to move reputation in UMC.
    /// `admin` becomes the consortium admin of all three (it can add oracles with [`Market::set_oracle`]).
    /// `wallet` signs every transaction this client sends; it must hold `admin`'s key.
    pub async fn deploy(
        provider: DynProvider,
        wallet: EthereumWallet,
        admin: Address,
        params: MarketParams,
    ) -> Result<Market> {
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
        let umc = UMC::deploy_builder(
            provider.clone(),
            admin,
            u96("minStake", params.min_stake)?,
            u40("unstakeCooldown", params.unstake_cooldown)?,
            params.slash_bps,
        );
        let (first, receipt) = sender
            .transact_receipt("UMC", umc.from(admin).into_transaction_request())
            .await?;
        let umc = created("UMC", receipt)?;
        let tmc = TMC::deploy_builder(
            provider.clone(),
            admin,
            umc,
            u40("verificationWindow", params.verification_window)?,
            params.max_attempts,
        );
        let tmc = created(
            "TMC",
            sender
                .transact_receipt("TMC", tmc.from(admin).into_transaction_request())
                .await?
                .1,
        )?;
        let mmc = MMC::deploy_builder(provider.clone(), admin, umc);
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
        let market = Market::with_sender(sender, deployment);
        market.send("UMC", market.umc.setMarket(tmc, true).from(admin)).await?;
        market.send("UMC", market.umc.setMarket(mmc, true).from(admin)).await?;
        tracing::info!(%umc, %tmc, %mmc, chain_id, "deployed drlaas contracts");
        Ok(market)
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

    // ------------------------------------------------------------------ admin

    /// Allow or revoke an oracle on TMC (sent by the admin).
    pub async fn set_oracle(&self, admin: Address, oracle: Address, allowed: bool) -> Result<TxOutcome> {
        self.send("TMC", self.tmc.setOracle(oracle, allowed).from(admin)).await
    }

    /// Change UMC's staking parameters and TMC's lifecycle parameters (sent by the admin).
    pub async fn set_params(&self, admin: Address, p: MarketParams) -> Result<(TxOutcome, TxOutcome)> {
        let a = self.umc.setParameters(
            u96("minStake", p.min_stake)?,
            u40("unstakeCooldown", p.unstake_cooldown)?,
            p.slash_bps,
        );
        let a = self.send("UMC", a.from(admin)).await?;
        let b = self
            .tmc
            .setParameters(u40("verificationWindow", p.verification_window)?, p.max_attempts);
        Ok((a, self.send("TMC", b.from(admin)).await?))
    }

    /// Propose `new_admin` as the consortium admin of all three contracts (sent by the current admin).
    /// Nothing changes until `new_admin` calls [`Market::accept_admin`].
    pub async fn transfer_admin(&self, admin: Address, new_admin: Address) -> Result<[TxOutcome; 3]> {
        Ok([
            self.send("UMC", self.umc.transferAdmin(new_admin).from(admin)).await?,
            self.send("TMC", self.tmc.transferAdmin(new_admin).from(admin)).await?,
            self.send("MMC", self.mmc.transferAdmin(new_admin).from(admin)).await?,
        ])
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

    /// Assign `task` to `worker`.
    pub async fn assign(&self, oracle: Address, task: TaskId, worker: Address) -> Result<TxOutcome> {
        self.send("TMC", self.tmc.assign(U256::from(task), worker).from(oracle))
            .await
    }

    /// Accept the submitted result: pay the worker, raise its reputation.
    pub async fn complete(&self, oracle: Address, task: TaskId) -> Result<TxOutcome> {
        self.send("TMC", self.tmc.complete(U256::from(task)).from(oracle)).await
    }

    /// Fail the current attempt; with `reopen` the task may go to another worker.
    pub async fn fail(&self, oracle: Address, task: TaskId, reopen: bool) -> Result<TxOutcome> {
        self.send("TMC", self.tmc.fail(U256::from(task), reopen).from(oracle))
            .await
    }

    /// Expire a task past its deadline (anyone may).
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
        match from {
            Contract::Umc => self.send("UMC", self.umc.withdraw().from(account)).await,
            Contract::Tmc => self.send("TMC", self.tmc.withdraw().from(account)).await,
            Contract::Mmc => self.send("MMC", self.mmc.withdraw().from(account)).await,
        }
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
        Ok((w.registeredAt != 0).then(|| WorkerInfo::from_chain(worker, w)))
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

    /// TMC's current lifecycle limits: the verification window (seconds after a deadline during
    /// which a submitted result can still be settled) and the attempts a task gets.
    pub async fn task_limits(&self) -> Result<(u64, u8)> {
        let window = self
            .read_call("TMC", || async { self.tmc.verificationWindow().call().await })
            .await?;
        let attempts = self
            .read_call("TMC", || async { self.tmc.maxAttempts().call().await })
            .await?;
        Ok((window.to::<u64>(), attempts))
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

    /// Whether `oracle` may settle tasks.
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
}
