//! Settlement (docs/architecture.md#settlement): the transaction that ends an attempt or the task,
//! for the live path and for a deleted task alike.
//!
//! The core turns what the operator wants ([`Intent`]) into the transaction the chain can still
//! honour, judged against the chain state this reconcile observed at its start
//! ([`next_action`]): an intent that already landed becomes nothing, one past its window becomes
//! the one that still applies. The state may have moved on since it was read; the contract refuses
//! a transition from a stale state, so a race with another actor ends in a revert and a fresh
//! reconcile, never in a double payment.

use drlaas_crds::task::DRLTask;
use drlaas_crds::transactions::TxAction;
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;

use super::super::secrets::worker_wallet;
use super::super::{Context, Error};
use super::observe::{Observation, block_time};
use super::status::StatusWriter;
use super::{AFTER_TX, POLL, seconds_since, timed};
use drlaas_core::settlement::{Action as Transaction, ChainStatus, Intent, next_action};
use drlaas_core::verification::{self, Verdict};

/// A settlement the core decided on: what the operator wants, why, and the verdict of the
/// evaluation behind it, if one decided it.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Settlement {
    pub intent: Intent,
    pub reason: String,
    pub verdict: Option<Verdict>,
}

impl Settlement {
    /// The transaction that carries it out on a task observed as `seen`.
    fn transaction(&self, seen: &Observation) -> Transaction {
        next_action(self.intent, &seen.chain_view())
    }

    /// The Event of `transaction` once it landed for attempt `attempt`; `None` when nothing is sent.
    fn event(&self, transaction: Transaction, attempt: u8) -> Option<(EventType, &'static str, String)> {
        let reason = &self.reason;
        Some(match transaction {
            Transaction::Complete => (EventType::Normal, "Completed", format!("paid: {reason}")),
            Transaction::Fail { reopen } => {
                let next = if reopen {
                    "offered to another worker"
                } else {
                    "the requester is refunded"
                };
                (
                    EventType::Warning,
                    "AttemptFailed",
                    format!("attempt {attempt} failed ({reason}); {next}"),
                )
            }
            Transaction::Expire => (EventType::Warning, "Expired", format!("expired: {reason}")),
            Transaction::Nothing { .. } | Transaction::Wait | Transaction::AwaitQuorum { .. } => return None,
        })
    }
}

/// Settles the task observed as `seen` as `settlement` says: records the evaluation, sends the
/// transaction the chain can still honour, and says so in the status and an Event.
pub(super) async fn settle(
    task: &DRLTask,
    ctx: &Context,
    status: &mut StatusWriter<'_>,
    seen: &Observation,
    settlement: Settlement,
) -> Result<Action, Error> {
    let info = &seen.info;
    if let Some(verdict) = settlement.verdict {
        status.status.evaluation = Some(verification::evaluation(
            verdict,
            task.spec.training.eval_episodes,
            info.submitted_block,
        ));
        if let Some(submitted) = info.submitted_block {
            let waited = seen.head.timestamp.saturating_sub(block_time(ctx, submitted).await?);
            ctx.health.metrics.time_to_verify_seconds.observe(waited as f64);
        }
    }
    let transaction = settlement.transaction(seen);
    if transaction.ends_task()
        && let Some(created) = &task.metadata.creation_timestamp
    {
        ctx.health
            .metrics
            .time_to_settle_seconds
            .observe(seconds_since(created.0));
    }
    let oracle = ctx.settings.oracle;
    let (action, outcome) = match transaction {
        Transaction::Complete => (
            TxAction::Complete,
            timed(ctx, "complete", ctx.market.complete(oracle, info.id)).await?,
        ),
        // In a consortium only the member hosting the worker sees its trainer fail, and its vote alone
        // does not decide: the worker gives the attempt up itself, with its own key.
        Transaction::Fail { .. } if abandons(seen) => {
            let worker = seen.assigned_worker()?;
            let (as_worker, address) = worker_wallet(ctx, worker, info.worker).await?;
            (
                TxAction::Fail(u32::from(info.attempts)),
                timed(ctx, "abandon", as_worker.abandon(address, info.id)).await?,
            )
        }
        Transaction::Fail { reopen } => (
            TxAction::Fail(u32::from(info.attempts)),
            timed(ctx, "fail", ctx.market.fail(oracle, info.id, reopen)).await?,
        ),
        Transaction::Expire => (
            TxAction::Expire,
            timed(ctx, "expire", ctx.market.expire(oracle, info.id)).await?,
        ),
        // Landed already: the next reconcile shows how the chain settled it.
        Transaction::Nothing { .. } => return Ok(Action::requeue(AFTER_TX)),
        Transaction::AwaitQuorum { .. } => {
            status.status.message = Some(format!(
                "{}; this oracle's vote is in, waiting for the other oracles ({})",
                settlement.reason,
                seen.membership.quorum_text()
            ));
            return Ok(Action::requeue(POLL));
        }
        Transaction::Wait => {
            status.status.message = Some(format!(
                "{}; waiting until the chain accepts a settlement",
                settlement.reason
            ));
            return Ok(Action::requeue(POLL));
        }
    };
    status.tx(ctx, action, &outcome);
    if matches!(transaction, Transaction::Fail { .. }) {
        status.worker_failed();
        status.status.last_failure = Some(settlement.reason.clone());
    }
    let vote = matches!(transaction, Transaction::Complete | Transaction::Fail { .. }) && !abandons(seen);
    if vote && !seen.membership.is_single() {
        count_dissents(ctx, seen, transaction == Transaction::Complete);
        // One vote of several: the chain carries the outcome out once the quorum agrees.
        let what = if transaction == Transaction::Complete {
            "to pay"
        } else {
            "to fail the attempt"
        };
        status.event(
            EventType::Normal,
            "Voted",
            format!(
                "voted {what}: {} ({})",
                settlement.reason,
                seen.membership.quorum_text()
            ),
        );
    } else if let Some((type_, reason, note)) = settlement.event(transaction, info.attempts) {
        status.event(type_, reason, note);
    }
    Ok(Action::requeue(AFTER_TX))
}

/// Whether a failed attempt is given up by its worker (TMC's `abandon`) rather than voted on: in a
/// consortium, for an assigned task whose worker this member hosts.
fn abandons(seen: &Observation) -> bool {
    !seen.membership.is_single() && seen.chain_status() == ChainStatus::Assigned && seen.worker.is_some()
}

/// Counts, by oracle, the votes already on the result that go against this member's (`paying` or
/// failing): a dishonest or broken member shows in `drlaas_consortium_dissents`.
fn count_dissents(ctx: &Context, seen: &Observation, paying: bool) {
    let membership = &seen.membership;
    let votes = &seen.info.votes;
    if votes.epoch != membership.info.epoch {
        return;
    }
    let against = if paying { votes.fail } else { votes.complete };
    for (seat, oracle) in membership.info.oracles.iter().enumerate() {
        if against & (1u32 << seat) != 0 {
            ctx.health
                .metrics
                .oracle_dissents
                .get_or_create(&crate::metrics::OracleLabels {
                    oracle: oracle.to_string(),
                })
                .inc();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::observe::tests::observation;
    use super::*;
    use drlaas_chain::TaskStatus;
    use drlaas_core::next_step::PodState;

    fn settlement(intent: Intent) -> Settlement {
        Settlement {
            intent,
            reason: "the model returned 19 on seed 5, below the target 20".into(),
            verdict: None,
        }
    }

    #[test]
    fn the_transaction_follows_the_chain_state_observed() {
        let submitted = observation(TaskStatus::Submitted, PodState::Absent);
        let fail = settlement(Intent::FailAttempt { reopen: true });
        assert_eq!(fail.transaction(&submitted), Transaction::Fail { reopen: true });
        // The task allows fewer attempts than the contract: its last one is not reopened.
        let mut last = submitted.clone();
        last.max_attempts = 1;
        assert_eq!(fail.transaction(&last), Transaction::Fail { reopen: false });
        // Already paid when this reconcile read the chain: nothing is sent again.
        let paid = observation(TaskStatus::Completed, PodState::Absent);
        assert!(matches!(
            settlement(Intent::Complete).transaction(&paid),
            Transaction::Nothing { .. }
        ));
        // Past the deadline, an open task can only be expired.
        let mut late = observation(TaskStatus::Assigned, PodState::Running);
        late.head.timestamp = 1001;
        assert_eq!(fail.transaction(&late), Transaction::Expire);
        assert_eq!(
            settlement(Intent::Expire).transaction(&observation(TaskStatus::Posted, PodState::Absent)),
            Transaction::Wait
        );
    }

    #[test]
    fn each_transaction_says_what_it_did() {
        let fail = settlement(Intent::FailAttempt { reopen: true });
        let (type_, reason, note) = fail.event(Transaction::Fail { reopen: true }, 2).unwrap();
        assert_eq!((type_, reason), (EventType::Warning, "AttemptFailed"));
        assert_eq!(
            note,
            "attempt 2 failed (the model returned 19 on seed 5, below the target 20); offered to another worker"
        );
        let (_, _, last) = fail.event(Transaction::Fail { reopen: false }, 3).unwrap();
        assert!(last.ends_with("the requester is refunded"));
        let (type_, reason, _) = fail.event(Transaction::Complete, 1).unwrap();
        assert_eq!((type_, reason), (EventType::Normal, "Completed"));
        assert_eq!(fail.event(Transaction::Expire, 1).unwrap().1, "Expired");
        assert_eq!(fail.event(Transaction::Wait, 1), None);
    }
}
