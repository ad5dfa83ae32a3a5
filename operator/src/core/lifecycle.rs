//! The task state machine (DESIGN §3): the phases a `DRLTask` goes through, the events that move
//! it, and the conditions its status shows.
//!
//! ```text
//! Pending ──Funded──▶ Funded ──Assigned──▶ Assigned ──TrainerRunning──▶ Training ──ResultSubmitted──▶ Verifying
//!                       ▲                     │                            │                            │
//!                       └─────────── AttemptFailed{reopened} ──────────────┴────────────────────────────┤
//!                                                                                                      ▼
//!                         Completed / AttemptFailed{!reopened} / Expired / Cancelled ──────────▶ Settled(outcome)
//! ```
//!
//! Every event is a fact that already happened (a transaction landed, a pod started), never a wish:
//! the controllers apply an event only after its effect is confirmed, so replaying the events after a
//! restart gives the same state. An event that makes no sense in a phase is an error, not ignored.

use serde::{Deserialize, Serialize};

use super::settlement::ChainStatus;

/// How a settled task ended.
pub use drlaas_crds::task::TaskOutcome as Outcome;
/// Where a task is: the phase the `DRLTask` status shows.
pub use drlaas_crds::task::TaskPhase as Phase;

/// Something that happened to a task.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Event {
    /// The task is on chain with its escrow.
    Funded,
    /// `TMC.assign` landed for `worker`.
    Assigned { worker: String },
    /// The worker's trainer is running.
    TrainerRunning,
    /// The worker's result is on chain.
    ResultSubmitted,
    /// `TMC.fail` landed for the current attempt; `reopened` says whether the task went back to
    /// `Posted` for another worker.
    AttemptFailed { reopened: bool },
    /// `TMC.complete` landed.
    Completed,
    /// `TMC.expire` landed.
    Expired,
    /// `TMC.cancel` landed.
    Cancelled,
}

/// A task's state: its phase and what the phase depends on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskState {
    pub phase: Phase,
    /// Set once settled.
    pub outcome: Option<Outcome>,
    /// The worker of the current attempt.
    pub worker: Option<String>,
    /// Attempts started (assignments).
    pub attempts: u32,
    /// Workers whose attempt failed: recruitment skips them for this task.
    pub failed_workers: Vec<String>,
}

impl Default for TaskState {
    fn default() -> Self {
        TaskState {
            phase: Phase::Pending,
            outcome: None,
            worker: None,
            attempts: 0,
            failed_workers: Vec::new(),
        }
    }
}

/// An event that cannot happen in the task's phase.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("event {event:?} cannot happen to a task in phase {phase:?}")]
pub struct InvalidTransition {
    pub phase: Phase,
    pub event: Event,
}

impl TaskState {
    /// The state after `event`.
    pub fn apply(&self, event: Event) -> Result<TaskState, InvalidTransition> {
        use Phase::*;
        let mut next = self.clone();
        let settle = |next: &mut TaskState, outcome| {
            next.phase = Settled;
            next.outcome = Some(outcome);
        };
        match (&self.phase, &event) {
            (Pending, Event::Funded) => next.phase = Funded,
            (Funded, Event::Assigned { worker }) => {
                next.phase = Assigned;
                next.worker = Some(worker.clone());
                next.attempts += 1;
            }
            (Assigned, Event::TrainerRunning) => next.phase = Training,
            // A trainer can submit before the operator saw it running (a fast run, a restart).
            (Assigned | Training, Event::ResultSubmitted) => next.phase = Verifying,
            (Assigned | Training | Verifying, Event::AttemptFailed { reopened }) => {
                next.failed_workers.extend(next.worker.take());
                if *reopened {
                    next.phase = Funded;
                } else {
                    settle(&mut next, Outcome::Refunded);
                }
            }
            (Verifying, Event::Completed) => settle(&mut next, Outcome::Paid),
            (Funded | Assigned | Training | Verifying, Event::Expired) => settle(&mut next, Outcome::Expired),
            (Pending | Funded, Event::Cancelled) => settle(&mut next, Outcome::Cancelled),
            _ => {
                return Err(InvalidTransition {
                    phase: self.phase,
                    event,
                });
            }
        }
        Ok(next)
    }

    /// The phase the chain's state implies, for a task whose local state was lost or is behind (a
    /// restart): the chain settles what it has recorded; what runs off chain (a trainer between
    /// assignment and submission) is `Assigned` until the executor reports it running.
    pub fn phase_for_chain(status: ChainStatus) -> (Phase, Option<Outcome>) {
        match status {
            ChainStatus::None => (Phase::Pending, None),
            ChainStatus::Posted => (Phase::Funded, None),
            ChainStatus::Assigned => (Phase::Assigned, None),
            ChainStatus::Submitted => (Phase::Verifying, None),
            ChainStatus::Completed => (Phase::Settled, Some(Outcome::Paid)),
            ChainStatus::Failed => (Phase::Settled, Some(Outcome::Refunded)),
            ChainStatus::Cancelled => (Phase::Settled, Some(Outcome::Cancelled)),
            ChainStatus::Expired => (Phase::Settled, Some(Outcome::Expired)),
        }
    }

    /// The status conditions (type, true/false) of DESIGN §3, in order.
    pub fn conditions(&self) -> [(&'static str, bool); 5] {
        let at_least = |p: Phase| self.phase >= p && self.phase != Phase::Settled;
        [
            (
                "EscrowFunded",
                self.phase >= Phase::Funded && self.outcome != Some(Outcome::Cancelled),
            ),
            (
                "WorkerAssigned",
                at_least(Phase::Assigned) || self.outcome == Some(Outcome::Paid),
            ),
            ("Training", self.phase == Phase::Training),
            ("Verifying", self.phase == Phase::Verifying),
            ("Settled", self.phase == Phase::Settled),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn run(events: &[Event]) -> Result<TaskState, InvalidTransition> {
        events.iter().try_fold(TaskState::default(), |s, e| s.apply(e.clone()))
    }

    fn assigned(w: &str) -> Event {
        Event::Assigned { worker: w.into() }
    }

    #[test]
    fn the_happy_path_ends_paid() {
        let s = run(&[
            Event::Funded,
            assigned("w1"),
            Event::TrainerRunning,
            Event::ResultSubmitted,
            Event::Completed,
        ])
        .unwrap();
        assert_eq!(
            (s.phase, s.outcome, s.attempts),
            (Phase::Settled, Some(Outcome::Paid), 1)
        );
        assert_eq!(
            s.conditions(),
            [
                ("EscrowFunded", true),
                ("WorkerAssigned", true),
                ("Training", false),
                ("Verifying", false),
                ("Settled", true)
            ]
        );
    }

    #[test]
    fn a_failed_attempt_goes_to_another_worker_then_refunds() {
        let s = run(&[
            Event::Funded,
            assigned("w1"),
            Event::TrainerRunning,
            Event::AttemptFailed { reopened: true },
        ])
        .unwrap();
        assert_eq!((s.phase, s.worker.as_deref()), (Phase::Funded, None));
        assert_eq!(s.failed_workers, ["w1"]);
        let s = s.apply(assigned("w2")).unwrap().apply(Event::ResultSubmitted).unwrap();
        let s = s.apply(Event::AttemptFailed { reopened: false }).unwrap();
        assert_eq!(
            (s.phase, s.outcome, s.attempts),
            (Phase::Settled, Some(Outcome::Refunded), 2)
        );
        assert_eq!(s.failed_workers, ["w1", "w2"]);
    }

    #[test]
    fn impossible_events_are_errors() {
        let err = run(&[Event::Funded, Event::Completed]).unwrap_err();
        assert_eq!(err.phase, Phase::Funded);
        assert!(err.to_string().contains("cannot happen to a task in phase Funded"));
        assert!(
            run(&[Event::Funded, assigned("w"), Event::Cancelled]).is_err(),
            "no cancel after assignment"
        );
    }

    fn event() -> impl Strategy<Value = Event> {
        prop_oneof![
            Just(Event::Funded),
            (0u8..3).prop_map(|w| Event::Assigned {
                worker: format!("w{w}")
            }),
            Just(Event::TrainerRunning),
            Just(Event::ResultSubmitted),
            any::<bool>().prop_map(|reopened| Event::AttemptFailed { reopened }),
            Just(Event::Completed),
            Just(Event::Expired),
            Just(Event::Cancelled),
        ]
    }

    proptest! {
        /// Whatever happens: settled is final, an outcome exists exactly when settled, a worker is
        /// held only between assignment and the end of its attempt, and only a verified result pays.
        #[test]
        fn invariants_hold_along_any_sequence(events in prop::collection::vec(event(), 0..20)) {
            let mut state = TaskState::default();
            for e in events {
                let before = state.clone();
                match state.apply(e.clone()) {
                    Ok(next) => {
                        prop_assert!(before.phase != Phase::Settled, "settled tasks do not move");
                        if next.outcome == Some(Outcome::Paid) {
                            prop_assert_eq!(before.phase, Phase::Verifying);
                        }
                        state = next;
                    }
                    Err(err) => prop_assert_eq!(err.phase, before.phase),
                }
                prop_assert_eq!(state.outcome.is_some(), state.phase == Phase::Settled);
                if matches!(state.phase, Phase::Pending | Phase::Funded) {
                    prop_assert!(state.worker.is_none(), "a task waiting for a worker holds none");
                }
                if matches!(state.phase, Phase::Assigned | Phase::Training | Phase::Verifying) {
                    prop_assert!(state.worker.is_some());
                }
            }
        }
    }
}
