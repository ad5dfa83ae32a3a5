//! Sending a contract call and waiting for its receipt.
//!
//! We poll `eth_getTransactionReceipt` with a short, growing interval instead of the provider's block
//! heartbeat: on an auto-mining dev chain the receipt exists as soon as the send returns, and the
//! heartbeat's fixed poll interval would cap throughput at a few transactions per second.

use std::time::{Duration, Instant};

use alloy::{
    contract::{CallBuilder, CallDecoder},
    eips::BlockId,
    network::{Ethereum, ReceiptResponse},
    primitives::U256,
    providers::{DynProvider, Provider},
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
    /// Retries of the reads around a transaction (receipt polling, revert reason lookup).
    pub retry: RetryPolicy,
}

impl Default for TxConfig {
    fn default() -> Self {
        TxConfig {
            receipt_timeout: Duration::from_secs(120),
            max_poll_interval: Duration::from_secs(1),
            retry: RetryPolicy::default(),
        }
    }
}

/// Send `call` and wait until it is mined. A revert, at estimation or on chain, becomes
/// [`ChainError::Reverted`] with the decoded custom error.
pub(crate) async fn transact<P, D>(
    config: &TxConfig,
    provider: &DynProvider,
    contract: &'static str,
    call: CallBuilder<P, D, Ethereum>,
) -> Result<TxOutcome>
where
    P: Provider<Ethereum>,
    D: CallDecoder,
{
    let pending = call.send().await.map_err(|e| ChainError::from_contract(contract, e))?;
    let hash = *pending.tx_hash();
    let started = Instant::now();
    let mut pause = Duration::from_millis(2);
    let receipt = loop {
        let receipt = config
            .retry
            .run("eth_getTransactionReceipt", || async {
                provider
                    .get_transaction_receipt(hash)
                    .await
                    .map_err(|e| ChainError::from_rpc(contract, e))
            })
            .await?;
        if let Some(r) = receipt {
            break r;
        }
        if started.elapsed() > config.receipt_timeout {
            return Err(ChainError::TxTimeout {
                hash,
                seconds: config.receipt_timeout.as_secs(),
            });
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(config.max_poll_interval);
    };
    let block = receipt.block_number().unwrap_or_default();
    if !receipt.status() {
        // Estimation passed but the mined transaction reverted (state changed in between): replay it
        // against the parent block to recover the reason.
        let replay = call.block(BlockId::number(block.saturating_sub(1))).call_raw().await;
        return Err(match replay {
            Err(e) => match ChainError::from_contract(contract, e) {
                r @ ChainError::Reverted(_) => r,
                _ => ChainError::TxFailed { hash, block },
            },
            Ok(_) => ChainError::TxFailed { hash, block },
        });
    }
    Ok(TxOutcome {
        hash,
        block,
        gas_used: receipt.gas_used(),
        fee: U256::from(receipt.gas_used()) * U256::from(receipt.effective_gas_price()),
    })
}
