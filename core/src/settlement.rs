//! Settlement decisions: which transaction, if any, settles a task now, judged from the task's
//! on-chain state (docs/architecture.md#settlement).
//!
//! The operator decides what it wants (pay the worker, fail the attempt, expire the task) and then
//! asks [`next_action`] what to send, given the chain state it read at the start of the reconcile.
//! That is what makes a restart at any point safe: an intent that already landed becomes
//! [`Action::Nothing`], so nothing is paid or refunded twice by the operator, and an intent the
//! chain can no longer honour (a deadline passed meanwhile) becomes the transaction that still can.
//! The state may have moved on since it was read (another actor, a second operator during a
//! leader hand-over): the contract checks every transition against its current state and refuses
//! a stale one, so such a race ends in a revert and a fresh reconcile, never a double payment.

use serde::{Deserialize, Serialize};

use crate::consortium::Ballot;

/// Where a task is in its life on chain (TMC's `Status`, in its order). The core owns this copy so
/// that it needs no chain client; the chain edge converts from the client's type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ChainStatus {
    /// No such task.
    None,
    /// Escrow funded, waiting for a worker.
    Posted,
    /// A worker is on it.
    Assigned,
    /// The worker submitted a result; oracles verify it.
    Submitted,
    /// Verified and paid.
    Completed,
    /// Failed and refunded.
    Failed,
    /// Cancelled or withdrawn by the requester.
    Cancelled,
    /// Deadline passed unsettled, refunded.
    Expired,
}

impl ChainStatus {
    /// Whether the task is settled (no escrow left).
    pub fn is_final(self) -> bool {
        matches!(self, Self::Completed | Self::Failed | Self::Cancelled | Self::Expired)
    }
}

impl std::fmt::Display for ChainStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(self, f)
    }
}

/// What the chain says about a task, as read at the start of the reconcile that decides.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChainView {
    pub status: ChainStatus,
    /// Attempts made so far (assignments).
    pub attempts: u8,
    /// TMC's limit on attempts.
    pub max_attempts: u8,
    /// Unix time of the task's deadline.
    pub deadline: u64,
    /// Seconds after the deadline during which a submitted result can still be settled.
    pub verification_window: u64,
    /// The chain's time now (latest block).
    pub now: u64,
    /// This oracle's vote on the task's current round, when the chain counts one: it is not sent
    /// again, the other oracles' votes decide.
    pub my_vote: Option<Ballot>,
}

impl ChainView {
    fn verification_open(&self) -> bool {
        self.now <= self.deadline + self.verification_window
    }

    fn expirable(&self) -> bool {
        match self.status {
            ChainStatus::Posted | ChainStatus::Assigned => self.now > self.deadline,
            ChainStatus::Submitted => self.now > self.deadline + self.verification_window,
            _ => false,
        }
    }
}

/// What the operator wants for a task.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Intent {
    /// The submitted model passed verification: pay the worker.
    Complete,
    /// The attempt failed (evaluation below target, trainer crashed or gave up): fail it, offering
    /// the task to another worker when `reopen` and attempts remain.
    FailAttempt { reopen: bool },
    /// Nobody can finish in time: refund the requester.
    Expire,
}

/// The transaction to send, or why none.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Action {
    /// `TMC.complete`.
    Complete,
    /// `TMC.fail(reopen)`; `reopen` is what the chain will actually do.
    Fail { reopen: bool },
    /// `TMC.expire`.
    Expire,
    /// Nothing to send: the chain already reflects the intent (a restart after the transaction
    /// landed), or is settled another way, which the status should then show.
    Nothing { settled_as: Option<ChainStatus> },
    /// Nothing can be sent yet (e.g. expiry before the deadline): try again later.
    Wait,
    /// This oracle's vote (`voted`) is counted; the task waits for the other oracles to reach the
    /// quorum (or for its window to close, when expiry applies).
    AwaitQuorum { voted: Ballot },
}

impl Action {
    /// Whether the transaction ends the task (nothing is left in escrow once it lands), as opposed
    /// to reopening it for another worker or sending nothing.
    pub fn ends_task(self) -> bool {
        matches!(self, Action::Complete | Action::Fail { reopen: false } | Action::Expire)
    }
}

/// The attempts a task gets: its own `maxAttempts`, within the contract's limit.
pub fn attempt_limit(contract: u8, task: u32) -> u8 {
    contract.min(u8::try_from(task).unwrap_or(u8::MAX))
}

/// The transaction that carries out `intent` on a task whose chain state is `chain`.
pub fn next_action(intent: Intent, chain: &ChainView) -> Action {
    if chain.status.is_final() {
        return Action::Nothing {
            settled_as: Some(chain.status),
        };
    }
    if chain.status == ChainStatus::None {
        // Not on chain (yet): the post may not be visible at this node; nothing can be sent.
        return Action::Wait;
    }
    if let Some(voted) = chain.my_vote
        && matches!(intent, Intent::Complete | Intent::FailAttempt { .. })
        && matches!(voted, Ballot::Complete | Ballot::Fail)
        && !chain.expirable()
    {
        return Action::AwaitQuorum { voted };
    }
    match intent {
        Intent::Complete => match chain.status {
            ChainStatus::Submitted if chain.verification_open() => Action::Complete,
            // The window closed before the payment landed: only expiry remains.
            ChainStatus::Submitted => Action::Expire,
            // No result on chain to pay for (it was failed and reopened, or never submitted).
            _ if chain.expirable() => Action::Expire,
            _ => Action::Nothing { settled_as: None },
        },
        Intent::FailAttempt { reopen } => match chain.status {
            ChainStatus::Assigned if chain.now <= chain.deadline => Action::Fail {
                reopen: can_reopen(reopen, chain),
            },
            ChainStatus::Submitted if chain.verification_open() => Action::Fail {
                reopen: can_reopen(reopen, chain),
            },
            // Already failed and reopened: the attempt is over, the task waits for another worker.
            ChainStatus::Posted if !chain.expirable() => Action::Nothing { settled_as: None },
            _ if chain.expirable() => Action::Expire,
            _ => Action::Wait,
        },
        Intent::Expire if chain.expirable() => Action::Expire,
        Intent::Expire => Action::Wait,
    }
}

/// Whether TMC will reopen: asked for, attempts left and the deadline not passed.
fn can_reopen(wanted: bool, chain: &ChainView) -> bool {
    wanted && chain.attempts < chain.max_attempts && chain.now <= chain.deadline
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn view(status: ChainStatus, now: u64) -> ChainView {
        ChainView {
            status,
            attempts: 1,
            max_attempts: 3,
            deadline: 1000,
            verification_window: 100,
            now,
            my_vote: None,
        }
    }

    #[test]
    fn a_counted_vote_is_not_sent_again() {
        for voted in [Ballot::Complete, Ballot::Fail] {
            let mine = ChainView {
                my_vote: Some(voted),
                ..view(ChainStatus::Submitted, 900)
            };
            for intent in [Intent::Complete, Intent::FailAttempt { reopen: true }] {
                assert_eq!(next_action(intent, &mine), Action::AwaitQuorum { voted });
            }
            // Expiry is anyone's, and past the window it is what remains.
            assert_eq!(next_action(Intent::Expire, &mine), Action::Wait);
            let late = ChainView { now: 1101, ..mine };
            assert_eq!(next_action(Intent::Complete, &late), Action::Expire);
        }
        // An assignment vote says nothing about the result.
        let assigned = ChainView {
            my_vote: Some(Ballot::Assign),
            ..view(ChainStatus::Submitted, 900)
        };
        assert_eq!(next_action(Intent::Complete, &assigned), Action::Complete);
    }

    #[test]
    fn a_passed_result_is_paid_once() {
        assert_eq!(
            next_action(Intent::Complete, &view(ChainStatus::Submitted, 900)),
            Action::Complete
        );
        // After a restart the payment has landed: nothing more is sent.
        assert_eq!(
            next_action(Intent::Complete, &view(ChainStatus::Completed, 900)),
            Action::Nothing {
                settled_as: Some(ChainStatus::Completed)
            }
        );
        // Verified inside the window, but the window closed before the transaction: expire instead.
        assert_eq!(
            next_action(Intent::Complete, &view(ChainStatus::Submitted, 1101)),
            Action::Expire
        );
    }

    #[test]
    fn a_failed_attempt_reopens_only_while_attempts_and_time_remain() {
        assert_eq!(
            next_action(Intent::FailAttempt { reopen: true }, &view(ChainStatus::Submitted, 900)),
            Action::Fail { reopen: true }
        );
        let mut last = view(ChainStatus::Assigned, 900);
        last.attempts = 3;
        assert_eq!(
            next_action(Intent::FailAttempt { reopen: true }, &last),
            Action::Fail { reopen: false }
        );
        // Submitted, deadline passed but window open: failing is allowed, reopening is not.
        assert_eq!(
            next_action(
                Intent::FailAttempt { reopen: true },
                &view(ChainStatus::Submitted, 1050)
            ),
            Action::Fail { reopen: false }
        );
        // Assigned past the deadline: the worker is expired, never slashed.
        assert_eq!(
            next_action(Intent::FailAttempt { reopen: true }, &view(ChainStatus::Assigned, 1001)),
            Action::Expire
        );
        // A restart after the reopening landed.
        assert_eq!(
            next_action(Intent::FailAttempt { reopen: true }, &view(ChainStatus::Posted, 900)),
            Action::Nothing { settled_as: None }
        );
    }

    #[test]
    fn the_task_limits_its_attempts_within_the_contract() {
        assert_eq!(attempt_limit(3, 1), 1);
        assert_eq!(attempt_limit(3, 5), 3);
        assert_eq!(attempt_limit(3, 1_000), 3);
        assert!(Action::Fail { reopen: false }.ends_task());
        assert!(!Action::Fail { reopen: true }.ends_task());
        assert!(!Action::Nothing { settled_as: None }.ends_task());
    }

    #[test]
    fn expiry_waits_for_the_deadline() {
        assert_eq!(
            next_action(Intent::Expire, &view(ChainStatus::Posted, 1000)),
            Action::Wait
        );
        assert_eq!(
            next_action(Intent::Expire, &view(ChainStatus::Posted, 1001)),
            Action::Expire
        );
        assert_eq!(
            next_action(Intent::Expire, &view(ChainStatus::Submitted, 1100)),
            Action::Wait
        );
        assert_eq!(
            next_action(Intent::Expire, &view(ChainStatus::Submitted, 1101)),
            Action::Expire
        );
    }

    fn status() -> impl Strategy<Value = ChainStatus> {
        prop_oneof![
            Just(ChainStatus::None),
            Just(ChainStatus::Posted),
            Just(ChainStatus::Assigned),
            Just(ChainStatus::Submitted),
            Just(ChainStatus::Completed),
            Just(ChainStatus::Failed),
            Just(ChainStatus::Cancelled),
            Just(ChainStatus::Expired),
        ]
    }

    fn intent() -> impl Strategy<Value = Intent> {
        prop_oneof![
            Just(Intent::Complete),
            any::<bool>().prop_map(|reopen| Intent::FailAttempt { reopen }),
            Just(Intent::Expire)
        ]
    }

    proptest! {
        /// Every transaction chosen is one TMC accepts in that state (mirrors the contract's checks,
        /// `AlreadyVoted` included), and a settled task never gets another.
        #[test]
        fn only_transactions_the_contract_accepts_are_chosen(
            intent in intent(), status in status(), attempts in 0u8..5, now in 0u64..1300,
            my_vote in prop_oneof![Just(None), Just(Some(Ballot::Assign)), Just(Some(Ballot::Complete)), Just(Some(Ballot::Fail))],
        ) {
            let chain = ChainView { status, attempts, max_attempts: 3, deadline: 1000, verification_window: 100, now, my_vote };
            let voted = matches!(my_vote, Some(Ballot::Complete | Ballot::Fail));
            match next_action(intent, &chain) {
                Action::Complete => prop_assert!(status == ChainStatus::Submitted && now <= 1100 && !voted),
                Action::AwaitQuorum { voted: v } => prop_assert!(Some(v) == my_vote && !chain.expirable()),
                Action::Fail { reopen } => {
                    prop_assert!(!voted);
                    prop_assert!(
                        (status == ChainStatus::Assigned && now <= 1000)
                            || (status == ChainStatus::Submitted && now <= 1100)
                    );
                    prop_assert!(!reopen || (attempts < 3 && now <= 1000));
                }
                Action::Expire => prop_assert!(chain.expirable()),
                Action::Nothing { settled_as: Some(s) } => prop_assert!(s.is_final()),
                Action::Nothing { settled_as: None } | Action::Wait => prop_assert!(!status.is_final()),
            }
            if status.is_final() {
                prop_assert_eq!(next_action(intent, &chain), Action::Nothing { settled_as: Some(status) });
            }
        }
    }
}
