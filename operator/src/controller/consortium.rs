//! The consortium as this operator sees it (docs/architecture.md#consortium): TMC's oracles, the
//! quorum, and this operator's seat among them. Read from the chain and kept for
//! [`MEMBERSHIP_TTL`]: the set changes only through governance, which announces a change a delay
//! ahead, and a vote cast under a set that changed meanwhile is simply cast again.

use std::time::{Duration, Instant};

use drlaas_chain::alloy::primitives::Address;
use drlaas_chain::{ConsortiumInfo, Market, TaskVotes, VoteKind};
use drlaas_core::consortium::Ballot;
use tokio::sync::Mutex;

/// How long a read of the oracle set is used before it is read again.
pub const MEMBERSHIP_TTL: Duration = Duration::from_secs(30);

/// The oracle set and this operator's seat, as last read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Membership {
    /// TMC's oracles, quorum and oracle-set epoch.
    pub info: ConsortiumInfo,
    /// This operator's seat (`None`: its account is not an oracle, it cannot vote).
    pub seat: Option<u8>,
}

impl Membership {
    /// A one-member consortium: this operator decides alone, as before quorums existed.
    pub fn is_single(&self) -> bool {
        self.info.quorum <= 1
    }

    /// This operator's vote on the task's current round, if the chain counts one.
    pub fn my_vote(&self, votes: &TaskVotes) -> Option<Ballot> {
        let seat = self.seat?;
        votes.cast(seat, self.info.epoch).map(|kind| match kind {
            VoteKind::Assign => Ballot::Assign,
            VoteKind::Complete => Ballot::Complete,
            VoteKind::Fail => Ballot::Fail,
        })
    }

    /// `quorum 2 of 3`, for messages.
    pub fn quorum_text(&self) -> String {
        format!("quorum {} of {}", self.info.quorum, self.info.oracles.len())
    }
}

/// The cached [`Membership`] of one operator.
#[derive(Debug, Default)]
pub struct Consortium {
    cached: Mutex<Option<(Instant, Membership)>>,
}

impl Consortium {
    /// The membership of `oracle`, read from the chain when the cached one is older than
    /// [`MEMBERSHIP_TTL`].
    pub async fn membership(&self, market: &Market, oracle: Address) -> drlaas_chain::Result<Membership> {
        let mut cached = self.cached.lock().await;
        if let Some((read, membership)) = cached.as_ref()
            && read.elapsed() < MEMBERSHIP_TTL
        {
            return Ok(membership.clone());
        }
        let info = market.consortium().await?;
        let seat = info
            .oracles
            .iter()
            .position(|o| *o == oracle)
            .and_then(|i| u8::try_from(i).ok());
        let membership = Membership { info, seat };
        *cached = Some((Instant::now(), membership.clone()));
        Ok(membership)
    }
}
