//! The contracts' events, decoded, and [`EventStream`]: a cursor-backed, confirmation-aware reader that
//! delivers every event of a deployment in chain order.
//!
//! Delivery contract: [`EventStream::next`] returns the oldest event not yet acknowledged, and keeps
//! returning it until [`EventStream::ack`] is called; `ack` persists the cursor before it returns.
//! A consumer that acknowledges each event after handling it therefore sees every event, in order,
//! and none twice across restarts, except the one it was handling when it crashed (handle it
//! idempotently, e.g. keyed by chain id + task id, and that one is harmless too).

use std::{cmp::Ordering, collections::VecDeque, fmt, time::Duration};

use alloy::{
    primitives::{B256, IntoLogData},
    providers::{DynProvider, Provider},
    rpc::types::{Filter, Log},
    sol_types::SolEventInterface,
};
use serde::{Deserialize, Serialize};

use crate::{
    bindings::{MMC, TMC, UMC},
    cursor::{Cursor, CursorStore},
    error::{ChainError, Result},
    market::{Contract, Deployment},
    retry::RetryPolicy,
};

/// Where an event sits in the chain: block number, then log index within the block.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EventPosition {
    /// Block number.
    pub block: u64,
    /// Index of the log in its block.
    pub log_index: u64,
}

impl Ord for EventPosition {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.block, self.log_index).cmp(&(other.block, other.log_index))
    }
}

impl PartialOrd for EventPosition {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl fmt::Display for EventPosition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.block, self.log_index)
    }
}

/// An event of one of the three contracts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MarketEvent {
    /// A UMC event (workers, stake, reputation).
    Umc(UMC::UMCEvents),
    /// A TMC event (task lifecycle, payments).
    Tmc(TMC::TMCEvents),
    /// An MMC event (listings, purchases, ratings).
    Mmc(MMC::MMCEvents),
}

impl MarketEvent {
    /// The event's name (`TaskPosted`, ...).
    pub fn name(&self) -> &'static str {
        let data = match self {
            MarketEvent::Umc(e) => e.to_log_data(),
            MarketEvent::Tmc(e) => e.to_log_data(),
            MarketEvent::Mmc(e) => e.to_log_data(),
        };
        data.topics()
            .first()
            .and_then(|t| crate::abi::event_name(*t))
            .unwrap_or("Unknown")
    }
}

/// A decoded event with where it happened.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChainEvent {
    /// Block and log index.
    pub position: EventPosition,
    /// Hash of its block.
    pub block_hash: B256,
    /// Hash of the transaction that emitted it.
    pub tx_hash: B256,
    /// Which contract emitted it.
    pub contract: Contract,
    /// The decoded event.
    pub event: MarketEvent,
}

impl ChainEvent {
    /// Decode a log of one of `deployment`'s contracts; `None` for logs of other addresses.
    pub fn decode(deployment: &Deployment, log: &Log) -> Result<Option<ChainEvent>> {
        let (contract, event) = {
            let (topics, data) = (log.topics(), &log.data().data);
            let bad = |c: &str, e: alloy::sol_types::Error| {
                ChainError::Inconsistent(format!("undecodable {c} log at block {:?}: {e}", log.block_number))
            };
            match log.address() {
                a if a == deployment.umc => (
                    Contract::Umc,
                    MarketEvent::Umc(UMC::UMCEvents::decode_raw_log(topics, data).map_err(|e| bad("UMC", e))?),
                ),
                a if a == deployment.tmc => (
                    Contract::Tmc,
                    MarketEvent::Tmc(TMC::TMCEvents::decode_raw_log(topics, data).map_err(|e| bad("TMC", e))?),
                ),
                a if a == deployment.mmc => (
                    Contract::Mmc,
                    MarketEvent::Mmc(MMC::MMCEvents::decode_raw_log(topics, data).map_err(|e| bad("MMC", e))?),
                ),
                _ => return Ok(None),
            }
        };
        let missing =
            |what: &str| ChainError::Inconsistent(format!("log without {what} (pending logs are not supported)"));
        Ok(Some(ChainEvent {
            position: EventPosition {
                block: log.block_number.ok_or_else(|| missing("block number"))?,
                log_index: log.log_index.ok_or_else(|| missing("log index"))?,
            },
            block_hash: log.block_hash.ok_or_else(|| missing("block hash"))?,
            tx_hash: log.transaction_hash.ok_or_else(|| missing("transaction hash"))?,
            contract,
            event,
        }))
    }
}

/// How an [`EventStream`] reads the chain.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StreamConfig {
    /// Blocks that must be built on top of an event's block before it is delivered (0 = at once).
    pub confirmations: u64,
    /// Pause between polls when there is nothing new.
    pub poll_interval: Duration,
    /// Most blocks asked for in one `eth_getLogs` (providers cap the range).
    pub max_blocks_per_query: u64,
    /// Retries of failed RPC calls.
    pub retry: RetryPolicy,
}

impl Default for StreamConfig {
    /// 2 confirmations, 1 s polls, 2,000-block queries.
    fn default() -> Self {
        StreamConfig {
            confirmations: 2,
            poll_interval: Duration::from_secs(1),
            max_blocks_per_query: 2_000,
            retry: RetryPolicy::default(),
        }
    }
}

/// Reads a deployment's events in order, after N confirmations, resuming from a persisted cursor.
#[derive(Debug)]
pub struct EventStream<C> {
    provider: DynProvider,
    deployment: Deployment,
    config: StreamConfig,
    store: C,
    cursor: Cursor,
    pending: VecDeque<ChainEvent>,
    /// Every event up to this block is in `pending` or acknowledged.
    fetched_through: Option<u64>,
    /// The chain's latest block, as last read.
    head: Option<u64>,
}

impl<C: CursorStore> EventStream<C> {
    /// Open a stream over `deployment`'s events, resuming from `store` (or from the deployment block).
    pub async fn open(
        provider: DynProvider,
        deployment: Deployment,
        config: StreamConfig,
        mut store: C,
    ) -> Result<Self> {
        let cursor = match store.load().await? {
            Some(c) if c.chain_id != deployment.chain_id || c.tmc != deployment.tmc => {
                return Err(ChainError::Inconsistent(format!(
                    "the event cursor belongs to chain {} / TMC {}, not to this deployment (chain {} / TMC {}); \
                     remove it to start over",
                    c.chain_id, c.tmc, deployment.chain_id, deployment.tmc
                )));
            }
            Some(c) => c,
            None => Cursor {
                chain_id: deployment.chain_id,
                tmc: deployment.tmc,
                last_acked: None,
                scanned_through: None,
            },
        };
        let fetched_through = cursor.scanned_through;
        Ok(EventStream {
            provider,
            deployment,
            config,
            store,
            cursor,
            pending: VecDeque::new(),
            fetched_through,
            head: None,
        })
    }

    /// The cursor as last persisted.
    pub fn cursor(&self) -> &Cursor {
        &self.cursor
    }

    /// The chain's latest block number as the stream last read it (confirmations not subtracted), or
    /// `None` before its first read. It is read whenever no event is pending.
    pub fn head(&self) -> Option<u64> {
        self.head
    }

    /// The oldest unacknowledged event, waiting (polling) until one is confirmed.
    pub async fn next(&mut self) -> Result<ChainEvent> {
        loop {
            if let Some(ev) = self.try_next().await? {
                return Ok(ev);
            }
            tokio::time::sleep(self.config.poll_interval).await;
        }
    }

    /// The oldest unacknowledged event, if one is confirmed now (one round of RPC calls at most).
    pub async fn try_next(&mut self) -> Result<Option<ChainEvent>> {
        if self.pending.is_empty() {
            self.fetch().await?;
        }
        Ok(self.pending.front().cloned())
    }

    /// Acknowledge `event`, which must be the one [`EventStream::next`] returned; the cursor is
    /// persisted before this returns, so the event is never delivered again.
    pub async fn ack(&mut self, event: &ChainEvent) -> Result<()> {
        self.acknowledge(event, true).await
    }

    /// As [`EventStream::ack`], but the cursor is persisted only once the events fetched so far are
    /// all acknowledged: after a restart, the events acknowledged since the last save are delivered
    /// again. For a consumer that handles events idempotently and sees many of them (the operator
    /// sees its own transactions' events), this saves a write per event.
    pub async fn ack_deferred(&mut self, event: &ChainEvent) -> Result<()> {
        self.acknowledge(event, false).await
    }

    async fn acknowledge(&mut self, event: &ChainEvent, persist: bool) -> Result<()> {
        match self.pending.front() {
            Some(head) if head.position == event.position => {}
            other => {
                return Err(ChainError::Inconsistent(format!(
                    "ack of event {} out of order: the next unacknowledged event is {}",
                    event.position,
                    other.map(|e| e.position.to_string()).unwrap_or_else(|| "none".into())
                )));
            }
        }
        self.pending.pop_front();
        let mut next = self.cursor;
        next.last_acked = Some(event.position);
        if self.pending.is_empty() {
            next.scanned_through = self.fetched_through;
        }
        if persist || self.pending.is_empty() {
            self.store.save(&next).await?;
        }
        self.cursor = next;
        Ok(())
    }

    /// Read confirmed block ranges into `pending` until one holds events or the confirmed head is
    /// reached (so catching up over a long, quiet history takes one call, not one poll per range).
    async fn fetch(&mut self) -> Result<()> {
        let head = self.config.retry.run("eth_blockNumber", || async {
            self.provider
                .get_block_number()
                .await
                .map_err(|e| ChainError::from_rpc("eth_blockNumber", e))
        });
        let head = head.await?;
        self.head = Some(head);
        let Some(safe) = head.checked_sub(self.config.confirmations) else {
            return Ok(());
        };
        while self.pending.is_empty() {
            let from = match (self.fetched_through, self.cursor.last_acked) {
                (Some(done), Some(acked)) => (done + 1).max(acked.block),
                (Some(done), None) => done + 1,
                (None, Some(acked)) => acked.block,
                (None, None) => self.deployment.block,
            };
            if from > safe {
                break;
            }
            let to = safe.min(from + self.config.max_blocks_per_query - 1);
            self.fetch_range(from, to).await?;
        }
        if self.pending.is_empty() && self.fetched_through != self.cursor.scanned_through {
            // Nothing to hand out: remember the quiet range so a restart does not rescan it.
            let mut next = self.cursor;
            next.scanned_through = self.fetched_through;
            self.store.save(&next).await?;
            self.cursor = next;
        }
        Ok(())
    }

    async fn fetch_range(&mut self, from: u64, to: u64) -> Result<()> {
        let filter = Filter::new()
            .address(vec![self.deployment.umc, self.deployment.tmc, self.deployment.mmc])
            .from_block(from)
            .to_block(to);
        let logs = self
            .config
            .retry
            .run("eth_getLogs", || async {
                self.provider
                    .get_logs(&filter)
                    .await
                    .map_err(|e| ChainError::from_rpc("eth_getLogs", e))
            })
            .await?;
        let mut events = Vec::with_capacity(logs.len());
        for log in logs.iter().filter(|l| !l.removed) {
            if let Some(ev) = ChainEvent::decode(&self.deployment, log)?
                && self.cursor.last_acked.is_none_or(|acked| ev.position > acked)
            {
                events.push(ev);
            }
        }
        events.sort_by_key(|e| e.position);
        tracing::debug!(from, to, events = events.len(), "fetched chain events");
        self.pending.extend(events);
        self.fetched_through = Some(to);
        Ok(())
    }
}
