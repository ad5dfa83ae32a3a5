//! Bounded retries with exponential backoff for RPC calls that are safe to repeat (reads, log queries,
//! receipt polling). Reverts are never retried: they are answers, not failures.

use std::{future::Future, time::Duration};

use crate::error::{ChainError, Result};

/// How often and how patiently to retry a transient RPC failure.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included (1 = no retry).
    pub attempts: u32,
    /// Delay before the first retry; doubled after each, up to `max_delay`.
    pub initial_delay: Duration,
    /// Longest delay between attempts.
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    /// 6 attempts over about 6 s: rides out a node restart or a load balancer hiccup, not an outage.
    fn default() -> Self {
        RetryPolicy {
            attempts: 6,
            initial_delay: Duration::from_millis(200),
            max_delay: Duration::from_secs(2),
        }
    }
}

impl RetryPolicy {
    /// No retries at all.
    pub const NONE: RetryPolicy = RetryPolicy {
        attempts: 1,
        initial_delay: Duration::ZERO,
        max_delay: Duration::ZERO,
    };

    /// Run `op` until it succeeds, fails with a non-transient error, or attempts run out.
    pub async fn run<T, F, Fut>(&self, what: &str, mut op: F) -> Result<T>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        let mut delay = self.initial_delay;
        let mut attempt = 1;
        loop {
            match op().await {
                Err(e) if e.is_transient() && attempt < self.attempts => {
                    tracing::warn!(%what, attempt, error = %e, retry_in = ?delay, "transient RPC failure, retrying");
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(self.max_delay);
                    attempt += 1;
                }
                Err(ChainError::Rpc(msg)) if attempt > 1 => {
                    return Err(ChainError::Rpc(format!(
                        "{what}: {msg} (gave up after {attempt} attempts)"
                    )));
                }
                other => return other,
            }
        }
    }
}
