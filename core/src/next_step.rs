//! What a bound `DRLTask` needs next, decided from what the controller observed: the task's record
//! on chain and the pods of its current attempt ([`Observed`]). The same observation gives the phase
//! the status shows ([`Observed::state`]), so the step taken and the phase shown never disagree.
//!
//! The chain is the source of truth for where a task is; the pods say how the off-chain part of the
//! current attempt goes. Nothing else is remembered between reconciles, so a restarted operator
//! reads the same facts and takes the same step: a trainer is started once per attempt (its pod
//! name is fixed by the attempt), a result is submitted once (the chain moves to `Submitted`).
//! A settlement is judged by [`settlement::next_action`](super::settlement::next_action) against the
//! chain state read at the start of the reconcile ([`Observed::chain_view`]); the contract refuses
//! a transition from a stale state, so a race with another actor costs a revert and a fresh
//! reconcile, never a second payment.

use drlaas_crds::trainer_output::FailureReport;
use drlaas_envs::EnvDescriptor;

use super::consortium::Ballot;
use super::lifecycle::TaskState;
use super::reports::{evaluated_return, trained_model};
use super::settlement::{ChainStatus, ChainView, Intent};
use super::verification::{Verdict, seed_block, verdict};

/// A pod of the current attempt, as its status shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PodState {
    /// Not created (or deleted).
    Absent,
    /// Created, not running yet (scheduling, pulling the image).
    Pending,
    Running,
    /// Exited 0, with its termination message.
    Succeeded(String),
    /// Exited non-zero, was evicted or ran past its deadline; the termination message or reason.
    Failed(String),
}

/// What the chain records about the task.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChainTask {
    pub status: ChainStatus,
    /// Assignments so far: the current attempt's number.
    pub attempts: u8,
    /// Unix time by which the result must be on chain.
    pub deadline: u64,
    /// Seconds after the deadline during which a submitted result can still be settled.
    pub verification_window: u64,
    /// Block of the current result's submission.
    pub submitted_block: Option<u64>,
    /// This oracle's vote on the current round, when the chain counts one.
    pub my_vote: Option<Ballot>,
}

/// Everything the decision depends on.
#[derive(Debug, Clone, PartialEq)]
pub struct Observed<'a> {
    pub chain: ChainTask,
    /// Whether the assigned worker's pool is in this cluster. In a consortium the proposer's cluster
    /// trains; the other members only verify.
    pub worker_here: bool,
    /// The chain's time and height now.
    pub now: u64,
    pub head: u64,
    pub trainer: &'a PodState,
    pub evaluator: &'a PodState,
    /// The model CID on chain for the current result.
    pub submitted_cid: Option<&'a str>,
    /// The evaluation seed, once the seed block exists.
    pub seed: Option<u64>,
    /// The task's target mean return.
    pub target: Option<f64>,
    /// The task's environment: the one a submitted model must have been trained on.
    pub environment: &'a EnvDescriptor,
}

impl Observed<'_> {
    /// Where the task is: the phase and outcome its status shows.
    pub fn state(&self) -> TaskState {
        TaskState::observed(self.chain.status, self.trainer)
    }

    /// The chain state a settlement is judged against, for a task allowed `max_attempts` attempts
    /// (see [`attempt_limit`](super::settlement::attempt_limit)).
    pub fn chain_view(&self, max_attempts: u8) -> ChainView {
        ChainView {
            status: self.chain.status,
            attempts: self.chain.attempts,
            max_attempts,
            deadline: self.chain.deadline,
            verification_window: self.chain.verification_window,
            now: self.now,
            my_vote: self.chain.my_vote,
        }
    }
}

/// The next thing to do.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    /// Pick a worker and record it on chain.
    Recruit,
    /// Create the trainer pod (and its ConfigMap) of the current attempt.
    StartTrainer,
    /// The worker trains on another consortium member's pool: wait for its result.
    TrainedElsewhere,
    /// The trainer is on its way; `running` once it runs.
    WaitForTrainer { running: bool },
    /// Submit the trainer's model on chain with the worker's key; `result` is the trainer's result
    /// JSON, whose hash goes on chain with the CID.
    Submit { model_cid: String, result: String },
    /// The evaluation seed comes from a block that does not exist yet.
    WaitForSeedBlock { seed_block: u64 },
    /// Check the model is in the store and start the evaluator on the seed.
    Evaluate { seed: u64 },
    /// The evaluator is on its way.
    WaitForEvaluator,
    /// The evaluator died without a verdict (evicted, out of memory): start it again.
    RetryEvaluator { reason: String },
    /// Settle the attempt on chain; `verdict` when an evaluation decided it.
    Settle {
        intent: Intent,
        reason: String,
        verdict: Option<Verdict>,
    },
    /// This oracle voted (`voted`) on the current round; the other oracles' votes decide.
    AwaitQuorum { voted: Ballot },
    /// The chain has settled the task: nothing more to do.
    Done,
}

/// The next step for a task observed as `o`.
pub fn next_step(o: &Observed) -> Step {
    let c = &o.chain;
    let settle = |intent, reason: String| Step::Settle {
        intent,
        reason,
        verdict: None,
    };
    let fail_attempt = |reason: String| settle(Intent::FailAttempt { reopen: true }, reason);
    // This oracle's verdict on the attempt is in: the other oracles decide, unless the window closes.
    let settlement_open = match c.status {
        ChainStatus::Assigned => o.now <= c.deadline,
        ChainStatus::Submitted => o.now <= c.deadline + c.verification_window,
        _ => false,
    };
    if settlement_open && let Some(voted @ (Ballot::Complete | Ballot::Fail)) = c.my_vote {
        return Step::AwaitQuorum { voted };
    }
    match c.status {
        s if s.is_final() => Step::Done,
        // Not visible at this node yet (a lagging RPC endpoint): the recruiter waits for it.
        ChainStatus::None => Step::Recruit,
        ChainStatus::Posted if o.now > c.deadline => settle(
            Intent::Expire,
            "the deadline passed before a worker could be recruited".into(),
        ),
        // In a consortium an assignment vote does not end recruitment: the proposal it backed may no
        // longer be assignable (its worker raised its price), and another can be backed.
        ChainStatus::Posted => Step::Recruit,
        ChainStatus::Assigned if o.now > c.deadline => settle(
            Intent::FailAttempt { reopen: false },
            "the deadline passed before the worker submitted a result".into(),
        ),
        ChainStatus::Assigned if !o.worker_here => Step::TrainedElsewhere,
        ChainStatus::Assigned => match o.trainer {
            PodState::Absent => Step::StartTrainer,
            PodState::Pending => Step::WaitForTrainer { running: false },
            PodState::Running => Step::WaitForTrainer { running: true },
            PodState::Succeeded(message) => match trained_model(message) {
                Ok((_, model_cid)) => Step::Submit {
                    model_cid,
                    result: message.trim().to_string(),
                },
                Err(reason) => fail_attempt(reason),
            },
            PodState::Failed(reason) => fail_attempt(format!("the trainer failed: {reason}")),
        },
        ChainStatus::Submitted if o.now > c.deadline + c.verification_window => settle(
            Intent::Expire,
            "the verification window closed before the result was settled".into(),
        ),
        ChainStatus::Submitted => verify(o),
        _ => Step::Done,
    }
}

fn verify(o: &Observed) -> Step {
    let Some(submitted) = o.submitted_cid else {
        // Submitted without a ResultSubmitted event at this node: wait for the node to catch up.
        return Step::WaitForEvaluator;
    };
    let seed_block = seed_block(o.chain.submitted_block.unwrap_or(o.head));
    let Some(seed) = o.seed.filter(|_| o.head >= seed_block) else {
        return Step::WaitForSeedBlock { seed_block };
    };
    let reported = match o.trainer {
        PodState::Succeeded(message) => trained_model(message).ok().map(|(_, cid)| cid),
        _ => None,
    };
    let judged = |verdict: Verdict, reason: String| Step::Settle {
        intent: if verdict.passed() {
            Intent::Complete
        } else {
            Intent::FailAttempt { reopen: true }
        },
        reason,
        verdict: Some(verdict),
    };
    match o.evaluator {
        PodState::Absent => Step::Evaluate { seed },
        PodState::Pending | PodState::Running => Step::WaitForEvaluator,
        PodState::Succeeded(message) => match evaluated_return(message, submitted, seed, o.environment) {
            Ok(measured) => {
                let v = verdict(submitted, reported.as_deref(), measured, o.target);
                let random = measured
                    .random_mean_return
                    .map(|r| format!(" (random actions: {r})"))
                    .unwrap_or_default();
                let reason = match v {
                    Verdict::Pass { mean_return, .. } => {
                        format!("the model returned {mean_return} on seed {seed}{random}")
                    }
                    Verdict::Fail {
                        mean_return, target, ..
                    } => {
                        format!("the model returned {mean_return} on seed {seed}{random}, below the target {target}")
                    }
                    Verdict::WrongModel => format!(
                        "the model on chain ({submitted}) is not the one the trainer reported ({})",
                        reported.as_deref().unwrap_or("none")
                    ),
                };
                judged(v, reason)
            }
            Err(reason) => judged(Verdict::WrongModel, reason),
        },
        // The trainer image reports a model it cannot load with a failure report: the worker's fault.
        PodState::Failed(message) if FailureReport::from_message(message).is_some() => judged(
            Verdict::WrongModel,
            format!("the evaluator could not use the model: {message}"),
        ),
        PodState::Failed(reason) => Step::RetryEvaluator { reason: reason.clone() },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lifecycle::Phase;
    use crate::reports::tests::{cartpole, evaluation, failure, result};

    static CARTPOLE: std::sync::LazyLock<EnvDescriptor> = std::sync::LazyLock::new(cartpole);

    fn trained() -> String {
        result(Some("bafy1")).termination_summary()
    }

    fn observed<'a>(status: ChainStatus, trainer: &'a PodState, evaluator: &'a PodState) -> Observed<'a> {
        Observed {
            chain: ChainTask {
                status,
                attempts: 1,
                deadline: 1000,
                verification_window: 100,
                submitted_block: Some(50),
                my_vote: None,
            },
            worker_here: true,
            now: 500,
            head: 60,
            trainer,
            evaluator,
            submitted_cid: Some("bafy1"),
            seed: Some(7),
            target: Some(20.0),
            environment: &CARTPOLE,
        }
    }

    #[test]
    fn a_consortium_member_waits_for_the_others_after_its_vote() {
        let absent = PodState::Absent;
        // The worker trains on another member's pool: this member waits for its result.
        let elsewhere = Observed {
            worker_here: false,
            ..observed(ChainStatus::Assigned, &absent, &absent)
        };
        assert_eq!(next_step(&elsewhere), Step::TrainedElsewhere);
        // Its vote on the result is counted: it neither evaluates nor votes again.
        for voted in [Ballot::Complete, Ballot::Fail] {
            let mut o = observed(ChainStatus::Submitted, &absent, &absent);
            o.chain.my_vote = Some(voted);
            assert_eq!(next_step(&o), Step::AwaitQuorum { voted });
            // Past the window the vote no longer matters: the task expires.
            o.now = 1101;
            assert!(matches!(
                next_step(&o),
                Step::Settle {
                    intent: Intent::Expire,
                    ..
                }
            ));
        }
        // Its assignment vote is in: recruitment goes on (it may back another proposal).
        let mut posted = observed(ChainStatus::Posted, &absent, &absent);
        posted.chain.my_vote = Some(Ballot::Assign);
        assert_eq!(next_step(&posted), Step::Recruit);
    }

    fn eval(mean: f64) -> PodState {
        PodState::Succeeded(evaluation("bafy1", 7, mean))
    }

    #[test]
    fn an_attempt_goes_from_trainer_to_submission() {
        fn o(trainer: &PodState) -> Step {
            next_step(&observed(ChainStatus::Assigned, trainer, &PodState::Absent))
        }
        assert_eq!(o(&PodState::Absent), Step::StartTrainer);
        assert_eq!(o(&PodState::Running), Step::WaitForTrainer { running: true });
        assert_eq!(
            o(&PodState::Succeeded(trained())),
            Step::Submit {
                model_cid: "bafy1".into(),
                result: trained()
            }
        );
        let Step::Settle { intent, reason, .. } = o(&PodState::Failed("OOMKilled".into())) else {
            panic!("a failed trainer fails the attempt");
        };
        assert_eq!(intent, Intent::FailAttempt { reopen: true });
        assert!(reason.contains("OOMKilled"));
        let running = PodState::Running;
        let pending = PodState::Pending;
        let none = PodState::Absent;
        assert_eq!(
            observed(ChainStatus::Assigned, &running, &none).state().phase,
            Phase::Training
        );
        assert_eq!(
            observed(ChainStatus::Assigned, &pending, &none).state().phase,
            Phase::Assigned
        );
    }

    #[test]
    fn verification_waits_for_the_seed_block_then_judges_the_evaluation() {
        let trainer = PodState::Succeeded(trained());
        let none = PodState::Absent;
        let mut o = observed(ChainStatus::Submitted, &trainer, &none);
        o.head = 51;
        assert_eq!(next_step(&o), Step::WaitForSeedBlock { seed_block: 52 });
        o.head = 52;
        assert_eq!(next_step(&o), Step::Evaluate { seed: 7 });

        let passed = eval(20.5);
        o.evaluator = &passed;
        assert!(matches!(
            next_step(&o),
            Step::Settle {
                intent: Intent::Complete,
                verdict: Some(Verdict::Pass { .. }),
                ..
            }
        ));
        let failed = eval(19.0);
        o.evaluator = &failed;
        assert!(matches!(
            next_step(&o),
            Step::Settle {
                intent: Intent::FailAttempt { reopen: true },
                verdict: Some(Verdict::Fail { .. }),
                ..
            }
        ));
        // The chain names a model the trainer did not report: swapped.
        o.submitted_cid = Some("bafy-other");
        let other = PodState::Succeeded(evaluation("bafy-other", 7, 99.0));
        o.evaluator = &other;
        assert!(matches!(
            next_step(&o),
            Step::Settle {
                verdict: Some(Verdict::WrongModel),
                ..
            }
        ));
        let refused = PodState::Failed(failure("not a drlaas model"));
        o.evaluator = &refused;
        assert!(matches!(
            next_step(&o),
            Step::Settle {
                verdict: Some(Verdict::WrongModel),
                ..
            }
        ));
        let evicted = PodState::Failed("Evicted".into());
        o.evaluator = &evicted;
        assert!(matches!(next_step(&o), Step::RetryEvaluator { .. }));
    }

    #[test]
    fn deadlines_settle_whatever_the_pods_do() {
        let running = PodState::Running;
        let none = PodState::Absent;
        let mut o = observed(ChainStatus::Posted, &running, &none);
        o.now = 1001;
        assert!(matches!(
            next_step(&o),
            Step::Settle {
                intent: Intent::Expire,
                ..
            }
        ));
        o.chain.status = ChainStatus::Assigned;
        assert!(matches!(
            next_step(&o),
            Step::Settle {
                intent: Intent::FailAttempt { reopen: false },
                ..
            }
        ));
        o.chain.status = ChainStatus::Submitted;
        assert_eq!(
            next_step(&o),
            Step::Evaluate { seed: 7 },
            "a result submitted in time is verified after the deadline"
        );
        o.now = 1101;
        assert!(matches!(
            next_step(&o),
            Step::Settle {
                intent: Intent::Expire,
                ..
            }
        ));
        o.chain.status = ChainStatus::Completed;
        assert_eq!(next_step(&o), Step::Done);
    }

    #[test]
    fn settlement_is_judged_against_the_chain_state_of_this_observation() {
        let none = PodState::Absent;
        let mut o = observed(ChainStatus::Submitted, &none, &none);
        o.now = 1050;
        let view = o.chain_view(3);
        assert_eq!(
            (view.status, view.attempts, view.max_attempts, view.now),
            (ChainStatus::Submitted, 1, 3, 1050)
        );
        assert_eq!((view.deadline, view.verification_window), (1000, 100));
    }
}
