//! Consortium decisions (docs/architecture.md#consortium): several members, each with its own
//! operator and oracle key, agree on every assignment and every settlement by a quorum of votes on
//! chain. No member decides alone:
//!
//! - **Assignment.** For each attempt of a task one member *proposes*: the seat [`proposer`] picks
//!   from the task id, the attempt and the chain's clock (the turn passes to the next seat every
//!   turn, [`PROPOSAL_TURN_SECONDS`] by default, so a silent proposer, or one whose cluster has no
//!   worker for the task, only delays it). The proposer
//!   recruits among the Workers of its own cluster and votes `assign(worker, maxPrice)`. The others
//!   *second* a proposal they can check against the public part of the recruitment rule
//!   ([`check_proposal`]: the worker is registered, declares the task's kind, has the task's minimum
//!   reputation, and its price fits the proposal's maximum and the budget; the contract itself
//!   refuses a worker that failed the task or is not bonded for one more) and vote the same.
//! - **Settlement.** Every member evaluates the submitted model on its own (the same block-hash
//!   seed) and votes complete or fail; the vote that reaches the quorum carries the outcome out.
//!
//! A vote already counted is never sent again ([`Ballot`] in
//! [`ChainView::my_vote`](super::settlement::ChainView)): the member waits for the others.

use serde::{Deserialize, Serialize};

/// How long a proposer's turn lasts by default, in seconds of chain time.
pub const PROPOSAL_TURN_SECONDS: u64 = 120;

/// What an oracle voted on the current round of a task.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Ballot {
    /// For assigning a worker (the attempt not yet assigned).
    Assign,
    /// To pay the submitted result.
    Complete,
    /// To fail the attempt.
    Fail,
}

/// The seat that proposes the assignment of attempt `attempt` (1-based) of task `task_id` at chain
/// time `now`, among `seats` oracles taking turns of `turn_seconds`. Every member computes the same
/// seat from public data (the members agree on the turn length).
pub fn proposer(task_id: u64, attempt: u8, seats: u8, now: u64, turn_seconds: u64) -> u8 {
    let seats = u64::from(seats.max(1));
    let turn = now / turn_seconds.max(1);
    // Spread the tasks over the seats, then move on one seat per turn.
    ((task_id.wrapping_add(u64::from(attempt)).wrapping_add(turn)) % seats) as u8
}

/// An assignment another oracle proposed, as its vote on chain says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Proposal {
    /// The worker's account, as text (`0x…`).
    pub worker: String,
    /// The most the task may pay the worker, in wei.
    pub max_price: u128,
}

/// What the chain says about the proposed worker.
#[derive(Debug, Clone, PartialEq)]
pub struct ProposedWorker {
    /// Registered in the worker registry.
    pub registered: bool,
    /// Its price per task now, in wei.
    pub price: u128,
    /// Its reputation, 0 to 1.
    pub reputation: f64,
    /// Its declared level for the task's environment kind (0 = none).
    pub expertise: u8,
}

/// The public facts a seconder checks a proposal against.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskTerms {
    /// The task's budget, in wei.
    pub budget: u128,
    /// The task's minimum reputation, 0 to 1.
    pub min_reputation: f64,
}

/// Whether a member can second `proposal` for a task with `terms`: `Ok` or the rule it breaks.
pub fn check_proposal(proposal: &Proposal, worker: &ProposedWorker, terms: &TaskTerms) -> Result<(), String> {
    let who = &proposal.worker;
    if !worker.registered {
        return Err(format!("{who} is not a registered worker"));
    }
    if proposal.max_price > terms.budget {
        return Err(format!(
            "the proposal's maximum price {} wei is above the budget {} wei",
            proposal.max_price, terms.budget
        ));
    }
    if worker.price > proposal.max_price {
        return Err(format!(
            "{who} asks {} wei, above the proposal's maximum {} wei",
            worker.price, proposal.max_price
        ));
    }
    if worker.expertise == 0 {
        return Err(format!("{who} declares no expertise in the task's environment kind"));
    }
    if worker.reputation < terms.min_reputation {
        return Err(format!(
            "{who} has reputation {:.3}, below the task's minimum {:.3}",
            worker.reputation, terms.min_reputation
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn worker() -> ProposedWorker {
        ProposedWorker {
            registered: true,
            price: 10,
            reputation: 0.4,
            expertise: 200,
        }
    }

    fn proposal(max_price: u128) -> Proposal {
        Proposal {
            worker: "0xabc".into(),
            max_price,
        }
    }

    const TERMS: TaskTerms = TaskTerms {
        budget: 100,
        min_reputation: 0.3,
    };

    #[test]
    fn a_proposal_within_the_rule_is_seconded() {
        assert_eq!(check_proposal(&proposal(10), &worker(), &TERMS), Ok(()));
    }

    #[test]
    fn each_broken_rule_is_named() {
        let cases = [
            (
                proposal(10),
                ProposedWorker {
                    registered: false,
                    ..worker()
                },
                "not a registered worker",
            ),
            (proposal(101), worker(), "above the budget"),
            (proposal(9), worker(), "above the proposal's maximum"),
            (
                proposal(10),
                ProposedWorker {
                    expertise: 0,
                    ..worker()
                },
                "no expertise",
            ),
            (
                proposal(10),
                ProposedWorker {
                    reputation: 0.2,
                    ..worker()
                },
                "below the task's minimum",
            ),
        ];
        for (p, w, expected) in cases {
            let err = check_proposal(&p, &w, &TERMS).unwrap_err();
            assert!(err.contains(expected), "{err}");
        }
    }

    #[test]
    fn the_turn_passes_to_the_next_seat() {
        let first = proposer(7, 1, 3, 0, PROPOSAL_TURN_SECONDS);
        let next = proposer(7, 1, 3, PROPOSAL_TURN_SECONDS, PROPOSAL_TURN_SECONDS);
        assert_eq!(next, (first + 1) % 3);
        // A one-member consortium always proposes itself.
        assert_eq!(proposer(7, 1, 1, 12_345, PROPOSAL_TURN_SECONDS), 0);
    }

    proptest! {
        #[test]
        fn every_seat_gets_a_turn(task in 0u64..1_000_000, attempt in 1u8..5, seats in 1u8..32, now in 0u64..10_000_000) {
            let seat = proposer(task, attempt, seats, now, PROPOSAL_TURN_SECONDS);
            prop_assert!(seat < seats);
            let turns: std::collections::BTreeSet<u8> = (0..u64::from(seats))
                .map(|i| proposer(task, attempt, seats, now + i * PROPOSAL_TURN_SECONDS, PROPOSAL_TURN_SECONDS))
                .collect();
            prop_assert_eq!(turns.len(), usize::from(seats));
        }
    }
}
