//! The task's phase model (docs/architecture.md#the-life-of-a-task): where a `DRLTask` is, derived
//! from what the chain records and how the current attempt's trainer pod runs, and the conditions
//! its status shows.
//!
//! ```text
//! chain status   trainer pod              phase       outcome
//! None           any                      Pending
//! Posted         any                      Funded                   (again after a reopened attempt)
//! Assigned       absent, pending, failed  Assigned
//! Assigned       running, succeeded       Training
//! Submitted      any                      Verifying
//! Completed      any                      Settled     Paid
//! Failed         any                      Settled     Refunded
//! Cancelled      any                      Settled     Cancelled
//! Expired        any                      Settled     Expired
//! ```
//!
//! The phase is a function of those facts, not a memory of events: nothing is carried from one
//! reconcile to the next, so an operator restarted at any point, or one whose status write was
//! lost, shows the same phase as one that never stopped. The chain's transitions are the
//! contract's to enforce; this model only names where they leave a task.

use super::next_step::PodState;
use super::settlement::ChainStatus;

/// How a settled task ended.
pub use drlaas_crds::task::TaskOutcome as Outcome;
/// Where a task is: the phase the `DRLTask` status shows.
pub use drlaas_crds::task::TaskPhase as Phase;

/// Every phase, in order.
pub const PHASES: [Phase; 6] = [
    Phase::Pending,
    Phase::Funded,
    Phase::Assigned,
    Phase::Training,
    Phase::Verifying,
    Phase::Settled,
];

/// The phase's name, as the status, the Events and the metrics spell it.
pub fn phase_name(phase: Phase) -> &'static str {
    match phase {
        Phase::Pending => "Pending",
        Phase::Funded => "Funded",
        Phase::Assigned => "Assigned",
        Phase::Training => "Training",
        Phase::Verifying => "Verifying",
        Phase::Settled => "Settled",
    }
}

/// Where a task is: its phase, and how it ended once settled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TaskState {
    pub phase: Phase,
    /// Set exactly when the phase is `Settled`.
    pub outcome: Option<Outcome>,
}

/// One status condition: its type, whether it holds, and the reason shown with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConditionState {
    pub type_: &'static str,
    pub status: bool,
    pub reason: &'static str,
}

/// The reason of a condition that does not hold yet (or any more).
pub const NOT_YET: &str = "NotYet";

impl TaskState {
    /// A task not bound to an on-chain task yet.
    pub const NEW: TaskState = TaskState {
        phase: Phase::Pending,
        outcome: None,
    };

    /// Where a task is whose chain status is `chain` and whose current attempt's trainer is
    /// `trainer`. What the chain records settles the question; the trainer only tells a worker
    /// that is training from one whose trainer has not started (or died before it could report).
    pub fn observed(chain: ChainStatus, trainer: &PodState) -> TaskState {
        let (phase, outcome) = match chain {
            ChainStatus::None => (Phase::Pending, None),
            ChainStatus::Posted => (Phase::Funded, None),
            ChainStatus::Assigned => match trainer {
                PodState::Running | PodState::Succeeded(_) => (Phase::Training, None),
                PodState::Absent | PodState::Pending | PodState::Failed(_) => (Phase::Assigned, None),
            },
            ChainStatus::Submitted => (Phase::Verifying, None),
            ChainStatus::Completed => (Phase::Settled, Some(Outcome::Paid)),
            ChainStatus::Failed => (Phase::Settled, Some(Outcome::Refunded)),
            ChainStatus::Cancelled => (Phase::Settled, Some(Outcome::Cancelled)),
            ChainStatus::Expired => (Phase::Settled, Some(Outcome::Expired)),
        };
        TaskState { phase, outcome }
    }

    /// Whether the task ended without the worker being paid for a result (a Warning, not a
    /// Normal Event).
    pub fn ended_unpaid(&self) -> bool {
        self.outcome.is_some_and(|o| o != Outcome::Paid)
    }

    /// The status conditions, in order (docs/architecture.md#resources). A condition that holds
    /// has its own type as its reason; one that does not has [`NOT_YET`].
    pub fn conditions(&self) -> [ConditionState; 5] {
        let live = |p: Phase| self.phase >= p && self.phase != Phase::Settled;
        let condition = |type_, status| ConditionState {
            type_,
            status,
            reason: if status { type_ } else { NOT_YET },
        };
        [
            condition(
                "EscrowFunded",
                self.phase >= Phase::Funded && self.outcome != Some(Outcome::Cancelled),
            ),
            // A paid task keeps its worker; any other settlement released it.
            condition(
                "WorkerAssigned",
                live(Phase::Assigned) || self.outcome == Some(Outcome::Paid),
            ),
            condition("Training", self.phase == Phase::Training),
            condition("Verifying", self.phase == Phase::Verifying),
            condition("Settled", self.phase == Phase::Settled),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::next_step::{ChainTask, Observed, Step, next_step};
    use crate::settlement::Intent;
    use proptest::prelude::*;

    fn shown(state: TaskState) -> Vec<(&'static str, bool)> {
        state.conditions().iter().map(|c| (c.type_, c.status)).collect()
    }

    #[test]
    fn the_happy_path_ends_paid_with_the_worker_still_shown() {
        let running = PodState::Running;
        let phases: Vec<_> = [
            (ChainStatus::None, &PodState::Absent),
            (ChainStatus::Posted, &PodState::Absent),
            (ChainStatus::Assigned, &PodState::Pending),
            (ChainStatus::Assigned, &running),
            (ChainStatus::Submitted, &running),
            (ChainStatus::Completed, &running),
        ]
        .into_iter()
        .map(|(chain, trainer)| TaskState::observed(chain, trainer).phase)
        .collect();
        assert_eq!(phases, PHASES);
        let paid = TaskState::observed(ChainStatus::Completed, &PodState::Absent);
        assert_eq!(paid.outcome, Some(Outcome::Paid));
        assert!(!paid.ended_unpaid());
        assert_eq!(
            shown(paid),
            [
                ("EscrowFunded", true),
                ("WorkerAssigned", true),
                ("Training", false),
                ("Verifying", false),
                ("Settled", true)
            ]
        );
        assert_eq!(paid.conditions()[2].reason, NOT_YET);
        assert_eq!(paid.conditions()[4].reason, "Settled");
    }

    #[test]
    fn a_trainer_that_died_leaves_the_task_assigned_and_a_withdrawal_unfunds_it() {
        let died = TaskState::observed(ChainStatus::Assigned, &PodState::Failed("OOMKilled".into()));
        assert_eq!(died.phase, Phase::Assigned);
        let cancelled = TaskState::observed(ChainStatus::Cancelled, &PodState::Absent);
        assert!(cancelled.ended_unpaid());
        assert_eq!(
            shown(cancelled)[..2],
            [("EscrowFunded", false), ("WorkerAssigned", false)]
        );
        assert!(
            TaskState::NEW
                .conditions()
                .iter()
                .all(|c| !c.status && c.reason == NOT_YET)
        );
    }

    /// The chain's transitions, as TMC allows them: a walk picks one of these at each step.
    fn successors(status: ChainStatus) -> &'static [ChainStatus] {
        use ChainStatus::*;
        match status {
            None => &[Posted],
            Posted => &[Assigned, Cancelled, Expired],
            // Fail and reopen, fail for good, expire past the deadline, withdrawn by the requester.
            Assigned => &[Submitted, Posted, Failed, Expired, Cancelled],
            Submitted => &[Completed, Posted, Failed, Expired],
            Completed | Failed | Cancelled | Expired => &[],
        }
    }

    /// A pod of one attempt only moves forward: absent, pending, running, then it ends.
    fn advance(pod: &PodState, ok: bool) -> PodState {
        match pod {
            PodState::Absent => PodState::Pending,
            PodState::Pending => PodState::Running,
            PodState::Running if ok => PodState::Succeeded(String::new()),
            PodState::Running => PodState::Failed("Error".into()),
            ended => ended.clone(),
        }
    }

    /// The steps the core may choose in each phase: the phase shown is the one the controller acts on.
    fn step_fits(step: &Step, phase: Phase) -> bool {
        use Phase::*;
        match step {
            Step::Done => phase == Settled,
            Step::Recruit => matches!(phase, Pending | Funded),
            Step::StartTrainer | Step::TrainedElsewhere | Step::WaitForTrainer { .. } | Step::Submit { .. } => {
                matches!(phase, Assigned | Training)
            }
            Step::WaitForSeedBlock { .. }
            | Step::Evaluate { .. }
            | Step::WaitForEvaluator
            | Step::RetryEvaluator { .. } => phase == Verifying,
            Step::Settle {
                intent: Intent::Complete,
                ..
            } => phase == Verifying,
            Step::Settle { .. } => matches!(phase, Funded | Assigned | Training | Verifying),
            Step::AwaitQuorum { .. } => matches!(phase, Assigned | Training | Verifying),
        }
    }

    proptest! {
        /// Along any history the contract allows, with the pods of each attempt moving as pods
        /// do: an outcome exists exactly when settled, settled is final, the phase goes back only
        /// when the chain reopens the task, only a verified result ends paid, the conditions agree
        /// with the phase, and the step the core takes is one for the phase the status shows.
        #[test]
        fn the_phase_follows_the_chain_and_the_pods(
            moves in prop::collection::vec((any::<u8>(), any::<bool>(), any::<bool>(), 0u64..1300), 0..24),
        ) {
            let (mut chain, mut trainer, mut evaluator) = (ChainStatus::None, PodState::Absent, PodState::Absent);
            let environment = crate::reports::tests::cartpole();
            let mut before = TaskState::observed(chain, &trainer);
            for (pick, pod_moves, ok, now) in moves {
                let next = successors(chain);
                if pod_moves || next.is_empty() {
                    trainer = advance(&trainer, ok);
                    if chain == ChainStatus::Submitted {
                        evaluator = advance(&evaluator, ok);
                    }
                } else {
                    let to = next[usize::from(pick) % next.len()];
                    if to == ChainStatus::Assigned {
                        trainer = PodState::Absent;
                        evaluator = PodState::Absent;
                    }
                    chain = to;
                }
                let state = TaskState::observed(chain, &trainer);
                prop_assert_eq!(state.outcome.is_some(), state.phase == Phase::Settled);
                prop_assert_eq!(state.phase == Phase::Settled, chain.is_final());
                if before.phase == Phase::Settled {
                    prop_assert_eq!(state, before, "settled tasks do not move");
                }
                if state.phase < before.phase {
                    prop_assert!(
                        chain == ChainStatus::Posted || matches!(trainer, PodState::Failed(_)),
                        "only a reopened attempt or a dead trainer goes back"
                    );
                }
                if state.outcome == Some(Outcome::Paid) && before.outcome.is_none() {
                    prop_assert_eq!(before.phase, Phase::Verifying, "only a verified result is paid");
                }
                let conditions = state.conditions();
                prop_assert_eq!(conditions[4].status, state.phase == Phase::Settled);
                prop_assert!(!(conditions[2].status && conditions[3].status));
                let observed = Observed {
                    chain: ChainTask {
                        status: chain,
                        attempts: 1,
                        deadline: 1000,
                        verification_window: 100,
                        submitted_block: Some(10),
                        my_vote: None,
                    },
                    worker_here: true,
                    now,
                    head: 20,
                    trainer: &trainer,
                    evaluator: &evaluator,
                    submitted_cid: Some("bafy"),
                    seed: Some(1),
                    target: Some(1.0),
                    environment: &environment,
                };
                prop_assert_eq!(observed.state(), state);
                let step = next_step(&observed);
                prop_assert!(step_fits(&step, state.phase), "{:?} in {:?}", step, state.phase);
                before = state;
            }
        }
    }
}
