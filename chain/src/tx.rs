//! Sending a transaction safely: estimate (a revert is decoded here, before anything is signed), fill
//! nonce and fees, sign locally, then send the *same signed bytes* until the node has them. Retrying a
//! signed transaction is idempotent (same hash, same nonce), so a connection failure mid-send can be
//! retried without ever paying twice; retrying the unsigned call could post a task twice.
//!
//! Receipts are polled with a short, growing interval rather than the provider's block heartbeat: on an
//! auto-mining dev chain the receipt exists as soon as the send returns, and a fixed heartbeat would cap
//! throughput at a few transactions per second.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock};
use std::time::{Duration, Instant};

use alloy::{
    eips::BlockId,
    network::{EthereumWallet, NetworkTransactionBuilder, ReceiptResponse, TransactionBuilder},
    primitives::{Address, U256},
    providers::{DynProvider, Provider},
    rpc::types::{TransactionReceipt, TransactionRequest},
};

use crate::{
    error::{ChainError, Result},
    retry::RetryPolicy,
    types::TxOutcome,
};

/// How transactions are sent and awaited.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TxConfig {
    /// Give up waiting for a receipt after this long.
    pub receipt_timeout: Duration,
    /// Longest pause between receipt polls (the first polls are much quicker).
    pub max_poll_interval: Duration,
    /// Gas limit = estimate × (100 + this) / 100.
    pub gas_headroom_percent: u64,
    /// Retries of every RPC call around a transaction (reads, the send of the signed bytes, receipts).
    pub retry: RetryPolicy,
}

impl Default for TxConfig {
    fn default() -> Self {
        TxConfig {
            receipt_timeout: Duration::from_secs(120),
            max_poll_interval: Duration::from_secs(1),
            gas_headroom_percent: 10,
            retry: RetryPolicy::default(),
        }
    }
}

/// One lock per account this process sends from, held from reading the account's nonce until
/// the node has the signed transaction.
///
/// Every `Market` client of one account (the operator makes one per requester wallet and per
/// worker key, and reconciles many tasks at once) shares it, so two concurrent sends never sign
/// the same nonce (the second would be refused as "nonce too low", or replace the first). Once
/// the node holds a transaction its pending count includes it, so the next sender reads the next
/// nonce; the lock is not held while waiting for the receipt, so an account's transactions are
/// pipelined. Keyed by address alone: a process talking to two chains only serializes a little
/// more, and never reuses a nonce read from the other chain.
static SENDING: LazyLock<std::sync::Mutex<HashMap<Address, Arc<tokio::sync::Mutex<()>>>>> =
    LazyLock::new(Default::default);

fn sending_lock(account: Address) -> Arc<tokio::sync::Mutex<()>> {
    SENDING
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .entry(account)
        .or_default()
        .clone()
}

/// Everything needed to send: the node, the keys, the chain id and the policy.
#[derive(Clone, Debug)]
pub(crate) struct Sender {
    pub provider: DynProvider,
    pub wallet: EthereumWallet,
    pub chain_id: u64,
    pub config: TxConfig,
}

impl Sender {
    pub fn new(provider: DynProvider, wallet: EthereumWallet, chain_id: u64) -> Self {
        Sender {
            provider,
            wallet,
            chain_id,
            config: TxConfig::default(),
        }
    }

    /// Send `request` (its `from` must be a key of the wallet) and wait until it is mined.
    pub async fn transact(&self, contract: &'static str, request: TransactionRequest) -> Result<TxOutcome> {
        self.transact_receipt(contract, request)
            .await
            .map(|(outcome, _)| outcome)
    }

    /// As [`Sender::transact`], also returning the receipt.
    pub async fn transact_receipt(
        &self,
        contract: &'static str,
        request: TransactionRequest,
    ) -> Result<(TxOutcome, TransactionReceipt)> {
        let from = request.from.ok_or_else(|| ChainError::InvalidInput {
            field: "from",
            message: "every transaction names its sender".into(),
        })?;
        let retry = &self.config.retry;
        let p = &self.provider;
        let gas = retry
            .run("eth_estimateGas", || async {
                p.estimate_gas(request.clone())
                    .await
                    .map_err(|e| ChainError::from_rpc(contract, e))
            })
            .await?;
        let fees = retry
            .run("eth_feeHistory", || async {
                p.estimate_eip1559_fees()
                    .await
                    .map_err(|e| ChainError::from_rpc(contract, e))
            })
            .await?;
        let account = sending_lock(from);
        let sending = account.lock().await;
        let nonce = retry
            .run("eth_getTransactionCount", || async {
                p.get_transaction_count(from)
                    .pending()
                    .await
                    .map_err(|e| ChainError::from_rpc(contract, e))
            })
            .await?;
        let signed = request
            .clone()
            .with_chain_id(self.chain_id)
            .with_nonce(nonce)
            .with_gas_limit(gas * (100 + self.config.gas_headroom_percent) / 100)
            .with_max_fee_per_gas(fees.max_fee_per_gas)
            .with_max_priority_fee_per_gas(fees.max_priority_fee_per_gas)
            .build(&self.wallet)
            .await
            .map_err(|e| ChainError::InvalidInput {
                field: "from",
                message: format!("cannot sign for {from}: {e}"),
            })?;
        let hash = *signed.tx_hash();

        // Resend the same bytes on transport failures. Once a send may have reached the node, an error
        // answer ("already known", "nonce too low") most likely means it did: go and look for the receipt.
        let mut attempt = 0;
        retry
            .run("eth_sendRawTransaction", || {
                attempt += 1;
                let signed = signed.clone();
                async move {
                    match p.send_tx_envelope(signed).await {
                        Ok(_) => Ok(()),
                        Err(e) if e.as_error_resp().is_some() && attempt > 1 => {
                            tracing::debug!(%hash, error = %e, "resend answered with an error; looking for the receipt");
                            Ok(())
                        }
                        Err(e) => Err(ChainError::from_rpc(contract, e)),
                    }
                }
            })
            .await?;
        drop(sending);

        let receipt = self.wait_for_receipt(contract, hash).await?;
        let block = receipt.block_number().unwrap_or_default();
        if !receipt.status() {
            // Estimation passed but the mined transaction reverted (state changed in between): replay it
            // against the parent block to recover the reason.
            let replay = p.call(request).block(BlockId::number(block.saturating_sub(1))).await;
            return Err(match replay {
                Err(e) => match ChainError::from_rpc(contract, e) {
                    r @ ChainError::Reverted(_) => r,
                    _ => ChainError::TxFailed { hash, block },
                },
                Ok(_) => ChainError::TxFailed { hash, block },
            });
        }
        let outcome = TxOutcome {
            hash,
            block,
            gas_used: receipt.gas_used(),
            fee: U256::from(receipt.gas_used()) * U256::from(receipt.effective_gas_price()),
        };
        Ok((outcome, receipt))
    }

    async fn wait_for_receipt(
        &self,
        contract: &'static str,
        hash: alloy::primitives::B256,
    ) -> Result<TransactionReceipt> {
        let started = Instant::now();
        // Start at 1 ms and grow by half each time: a dev chain answers within milliseconds, a real one
        // within a block time, and neither is overshot by more than half a pause.
        let mut pause = Duration::from_millis(1);
        loop {
            let receipt = self
                .config
                .retry
                .run("eth_getTransactionReceipt", || async {
                    self.provider
                        .get_transaction_receipt(hash)
                        .await
                        .map_err(|e| ChainError::from_rpc(contract, e))
                })
                .await?;
            if let Some(r) = receipt {
                return Ok(r);
            }
            if started.elapsed() > self.config.receipt_timeout {
                return Err(ChainError::TxTimeout {
                    hash,
                    seconds: self.config.receipt_timeout.as_secs(),
                });
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 3 / 2).min(self.config.max_poll_interval);
        }
    }
}
