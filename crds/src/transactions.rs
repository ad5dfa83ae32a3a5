//! The keys of a `DRLTask`'s `status.transactions`: which action each transaction hash was sent
//! for. The operator writes them; the local mode's report, the tests and people read them (`kubectl
//! get drltask -o yaml`). Actions that happen once per task have a bare name (`post`, `complete`);
//! those that happen once per attempt carry the attempt (`assign-2`, `fail-2`); those about another
//! chain task carry its id (`cancel-duplicate-7`).

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

/// What a transaction of a task was sent for: the key of `status.transactions`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TxAction {
    /// The task was posted with its escrow: `post`.
    Post,
    /// A second post of the same document (a retry after a crash) was cancelled: `cancel-duplicate-ID`,
    /// with the duplicate's chain task id.
    CancelDuplicate(u64),
    /// Attempt N's worker was recorded on chain: `assign-N`.
    Assign(u32),
    /// Attempt N's model was submitted: `submit-N`.
    Submit(u32),
    /// The model passed verification and the worker was paid: `complete`.
    Complete,
    /// Attempt N failed; the worker was slashed, and the task reopened or refunded: `fail-N`.
    Fail(u32),
    /// The deadline passed and the requester was refunded: `expire`.
    Expire,
    /// The task was deleted and its requester's wallet withdrew it: `withdraw`.
    Withdraw,
    /// A post of a deleted task that was never recorded was withdrawn: `withdraw-ID`, with its chain
    /// task id.
    WithdrawUnrecorded(u64),
    /// A warm-start model was bought on the model market: `purchase`.
    Purchase,
}

impl TxAction {
    /// The action without its attempt or id: `fail` for `fail-2`, `cancel-duplicate` for
    /// `cancel-duplicate-7`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Post => "post",
            Self::CancelDuplicate(_) => "cancel-duplicate",
            Self::Assign(_) => "assign",
            Self::Submit(_) => "submit",
            Self::Complete => "complete",
            Self::Fail(_) => "fail",
            Self::Expire => "expire",
            Self::Withdraw | Self::WithdrawUnrecorded(_) => "withdraw",
            Self::Purchase => "purchase",
        }
    }

    /// Whether the transaction settled the task, or an attempt of it, on chain (paid, failed,
    /// refunded or withdrawn): its receipt says who got what.
    pub fn settles(self) -> bool {
        matches!(self, Self::Complete | Self::Fail(_) | Self::Expire | Self::Withdraw)
    }

    /// The transaction that settled the task for good, from its `status.transactions`: `complete`,
    /// `expire` or `withdraw` when there is one, else the last attempt's `fail-N` (earlier
    /// attempts' failures reopened the task). Keys this version does not know are skipped.
    pub fn final_settlement(transactions: &BTreeMap<String, String>) -> Option<(Self, &str)> {
        transactions
            .iter()
            .filter_map(|(key, hash)| Some((key.parse::<Self>().ok()?, hash.as_str())))
            .filter(|(action, _)| action.settles())
            .max_by_key(|(action, _)| match action {
                Self::Fail(attempt) => (0, *attempt),
                _ => (1, 0),
            })
    }
}

impl fmt::Display for TxAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::CancelDuplicate(id) | Self::WithdrawUnrecorded(id) => write!(f, "{}-{id}", self.name()),
            Self::Assign(attempt) | Self::Submit(attempt) | Self::Fail(attempt) => {
                write!(f, "{}-{attempt}", self.name())
            }
            _ => f.write_str(self.name()),
        }
    }
}

/// A `status.transactions` key this version does not know.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a transaction action")]
pub struct UnknownAction(pub String);

impl FromStr for TxAction {
    type Err = UnknownAction;

    fn from_str(key: &str) -> Result<Self, UnknownAction> {
        let unknown = || UnknownAction(key.to_string());
        let (name, number) = match key.rsplit_once('-') {
            Some((name, n)) if !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) => (name, Some(n)),
            _ => (key, None),
        };
        let attempt = || number.and_then(|n| n.parse::<u32>().ok()).ok_or_else(unknown);
        let id = || number.and_then(|n| n.parse::<u64>().ok()).ok_or_else(unknown);
        Ok(match (name, number) {
            ("post", None) => Self::Post,
            ("complete", None) => Self::Complete,
            ("expire", None) => Self::Expire,
            ("withdraw", None) => Self::Withdraw,
            ("purchase", None) => Self::Purchase,
            ("cancel-duplicate", Some(_)) => Self::CancelDuplicate(id()?),
            ("assign", Some(_)) => Self::Assign(attempt()?),
            ("submit", Some(_)) => Self::Submit(attempt()?),
            ("fail", Some(_)) => Self::Fail(attempt()?),
            ("withdraw", Some(_)) => Self::WithdrawUnrecorded(id()?),
            _ => return Err(unknown()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_action_reads_back_its_key() {
        let all = [
            (TxAction::Post, "post"),
            (TxAction::CancelDuplicate(7), "cancel-duplicate-7"),
            (TxAction::Assign(1), "assign-1"),
            (TxAction::Submit(2), "submit-2"),
            (TxAction::Complete, "complete"),
            (TxAction::Fail(3), "fail-3"),
            (TxAction::Expire, "expire"),
            (TxAction::Withdraw, "withdraw"),
            (TxAction::WithdrawUnrecorded(12), "withdraw-12"),
            (TxAction::Purchase, "purchase"),
        ];
        for (action, key) in all {
            assert_eq!(action.to_string(), key);
            assert_eq!(key.parse::<TxAction>(), Ok(action));
        }
        for bad in ["fail", "post-1", "assign-", "assign-x", "cancel", "withdrawn", ""] {
            assert_eq!(bad.parse::<TxAction>(), Err(UnknownAction(bad.into())), "{bad}");
        }
        assert_eq!(TxAction::Fail(2).name(), "fail");
    }

    #[test]
    fn the_final_settlement_is_the_last_failure_unless_the_task_ended_otherwise() {
        let txs = |keys: &[&str]| -> BTreeMap<String, String> {
            keys.iter().map(|k| (k.to_string(), format!("0x{k}"))).collect()
        };
        let refunded = txs(&[
            "post", "assign-1", "fail-1", "assign-2", "submit-2", "fail-2", "fail-10",
        ]);
        assert_eq!(
            TxAction::final_settlement(&refunded),
            Some((TxAction::Fail(10), "0xfail-10"))
        );
        let paid = txs(&["post", "assign-1", "fail-1", "assign-2", "complete"]);
        assert_eq!(
            TxAction::final_settlement(&paid),
            Some((TxAction::Complete, "0xcomplete"))
        );
        let expired = txs(&["post", "assign-1", "fail-1", "expire"]);
        assert_eq!(
            TxAction::final_settlement(&expired),
            Some((TxAction::Expire, "0xexpire"))
        );
        assert_eq!(
            TxAction::final_settlement(&txs(&["post", "assign-1", "later-action"])),
            None
        );
    }
}
