//! Acting: the step the core chose, taken. One function per [`Step`]; each sends at most one
//! transaction or creates the objects of one step, and says what it did in the status.

use std::time::Duration;

use drlaas_chain::TxOutcome;
use drlaas_chain::alloy::primitives::{Address, U256, keccak256};
use drlaas_crds::task::DRLTask;
use drlaas_crds::transactions::TxAction;
use drlaas_crds::worker::Worker;
use drlaas_store::{Cid, ContentStore};
use k8s_openapi::api::core::v1::Pod;
use kube::ResourceExt;
use kube::api::DeleteParams;
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;

use super::super::model_market::buy_warm_start;
use super::super::recruiter::Choice;
use super::super::secrets::worker_wallet;
use super::super::{Context, Error};
use super::observe::{self, Observation};
use super::settle::{Settlement, settle};
use super::status::StatusWriter;
use super::{AFTER_TX, POLL, create_owned, namespaced, seconds_since, timed};
use crate::pods::{evaluator_pod, evaluator_pod_name, task_config_map, trainer_pod, trainer_pod_name};
use drlaas_chain::EnvKind;
use drlaas_core::admission::parse_wei;
use drlaas_core::consortium::{self, Ballot, Proposal, ProposedWorker, TaskTerms};
use drlaas_core::lifecycle::TaskState;
use drlaas_core::model_choice::{WarmStartWanted, warm_start_wanted};
use drlaas_core::next_step::{PodState, Step};
use drlaas_core::reports::{finished_progress, trained_model};
use drlaas_core::settlement::{ChainStatus, Intent};
use drlaas_core::verification::{self, Verdict};

/// How long a funded task waits before it asks for a worker again.
const RECRUIT_AGAIN: Duration = Duration::from_secs(30);
/// When to ask again while recruitment waits for the Worker controller's first look at a Worker.
const CHECK_AGAIN: Duration = Duration::from_secs(1);
/// How often a task waiting for its seed block looks again: blocks come every few seconds.
const SEED_BLOCK_POLL: Duration = Duration::from_secs(2);

/// Takes `step` for the task observed as `seen`.
pub(super) async fn act(
    task: &DRLTask,
    ctx: &Context,
    status: &mut StatusWriter<'_>,
    seen: &Observation,
    step: Step,
) -> Result<Action, Error> {
    match step {
        Step::Done => Ok(done(status, seen)),
        Step::Recruit => recruit(task, ctx, status, seen).await,
        Step::StartTrainer => {
            let worker = seen.assigned_worker()?;
            start_trainer(task, ctx, status, worker, seen.attempt(), seen.info.budget).await
        }
        Step::TrainedElsewhere => Ok(trained_elsewhere(status, seen)),
        Step::AwaitQuorum { voted } => Ok(await_quorum(status, seen, voted)),
        Step::WaitForTrainer { running } => Ok(wait_for_trainer(task, ctx, status, seen, running).await),
        Step::Submit { model_cid, result } => submit(task, ctx, status, seen, model_cid, result).await,
        Step::WaitForSeedBlock { seed_block } => Ok(wait_for_seed_block(status, seen, seed_block)),
        Step::Evaluate { seed } => evaluate(task, ctx, status, seen, seed).await,
        Step::WaitForEvaluator => Ok(Action::requeue(POLL)),
        Step::RetryEvaluator { reason } => retry_evaluator(task, ctx, status, seen, reason).await,
        Step::Settle {
            intent,
            reason,
            verdict,
        } => {
            let settlement = Settlement {
                intent,
                reason,
                verdict,
            };
            settle(task, ctx, status, seen, settlement).await
        }
    }
}

/// Settled on chain: the status says how, and nothing more happens until the task changes.
fn done(status: &mut StatusWriter<'_>, seen: &Observation) -> Action {
    let note = match seen.chain_status() {
        ChainStatus::Completed => format!("settled: the worker {} was paid", seen.info.worker),
        ChainStatus::Failed => match &status.status.last_failure {
            Some(why) => format!("settled: every attempt failed, the requester was refunded; the last: {why}"),
            None => "settled: every attempt failed, the requester was refunded".into(),
        },
        ChainStatus::Expired => "settled: expired, the requester was refunded".into(),
        ChainStatus::Cancelled => {
            "settled: withdrawn by the requester, the escrow refunded (less the worker's fee if one was assigned)"
                .into()
        }
        other => format!("on chain: {other}"),
    };
    status.status.message = Some(note);
    Action::await_change()
}

/// The assigned worker's pool is another consortium member's: that member runs the trainer and
/// submits; this one verifies the result once it is on chain.
fn trained_elsewhere(status: &mut StatusWriter<'_>, seen: &Observation) -> Action {
    status.status.message = Some(format!(
        "attempt {}: worker {} trains on another consortium member's pool; this member verifies its result",
        seen.attempt(),
        seen.info.worker
    ));
    Action::requeue(POLL)
}

/// This oracle's vote is counted; the other oracles' votes decide.
fn await_quorum(status: &mut StatusWriter<'_>, seen: &Observation, voted: Ballot) -> Action {
    let what = match voted {
        Ballot::Assign => "to assign a worker",
        Ballot::Complete => "to pay the result",
        Ballot::Fail => "to fail the attempt",
    };
    status.status.message = Some(format!(
        "voted {what}; waiting for the other oracles ({})",
        seen.membership.quorum_text()
    ));
    Action::requeue(POLL)
}

/// Picks a worker for a funded task, records it on chain and starts its trainer.
///
/// Recruitment is greedy over every funded task (see [`Recruiter`](super::super::Recruiter)): the
/// decision for this task is the one the whole market gets, so a richer task waiting elsewhere is
/// served first, and one pass decides for every task waiting at that moment.
async fn recruit(
    task: &DRLTask,
    ctx: &Context,
    status: &mut StatusWriter<'_>,
    seen: &Observation,
) -> Result<Action, Error> {
    let info = &seen.info;
    let membership = &seen.membership;
    if !membership.is_single() {
        // A proposal that keeps the rule is seconded first, by the proposer too: several proposals
        // for one attempt would split the votes.
        let (refused, backing) = match second(task, ctx, status, seen).await? {
            Seconded::Voted(action) => return Ok(action),
            Seconded::Not { refused, backing } => (refused, backing),
        };
        let seats = u8::try_from(membership.info.oracles.len()).unwrap_or(u8::MAX);
        let turn = ctx.settings.proposal_turn_seconds;
        let attempt = info.attempts + 1;
        let proposer = consortium::proposer(info.id, attempt, seats, seen.head.timestamp, turn);
        if backing || membership.seat != Some(proposer) {
            status.status.message = Some(if backing {
                format!(
                    "backs a proposal for attempt {attempt}; waiting for the other oracles ({})",
                    membership.quorum_text()
                )
            } else if refused.is_empty() {
                format!("waiting for seat {proposer} to propose a worker for attempt {attempt}")
            } else {
                format!("refused the proposals for attempt {attempt}: {}", refused.join("; "))
            });
            // Look again within the next turn.
            return Ok(Action::requeue(Duration::from_secs(turn).min(POLL)));
        }
    }
    let budget = u128::try_from(info.budget).unwrap_or(u128::MAX);
    let (worker_name, qos) = match ctx.recruiter.choose(ctx, task, budget).await? {
        Choice::Assign { worker, qos } => (worker, qos),
        waiting => {
            status.status.message = Some(format!("waiting for a worker: {}", waiting.reason()));
            let again = if matches!(waiting, Choice::Unchecked(_)) {
                CHECK_AGAIN
            } else {
                RECRUIT_AGAIN
            };
            return Ok(Action::requeue(again));
        }
    };
    let (outcome, worker) = match assign(task, ctx, info.id, &worker_name).await {
        Ok(assigned) => assigned,
        Err(e) => {
            ctx.recruiter.release(task).await;
            return Err(e);
        }
    };
    let attempt = u32::from(info.attempts) + 1;
    status.tx(ctx, TxAction::Assign(attempt), &outcome);
    if !membership.is_single() {
        // A proposal: the other members second it (or not); the next reconcile sees which.
        status.event(
            EventType::Normal,
            "AssignmentProposed",
            format!(
                "attempt {attempt}: proposed {worker_name} (QoS {qos:.3}) to the consortium ({})",
                membership.quorum_text()
            ),
        );
        return Ok(Action::requeue(AFTER_TX));
    }
    status.status.worker = Some(worker_name.clone());
    status.status.attempts = attempt;
    // The chain says Assigned now: the status says so at once, so the next pass counts the worker.
    status.set_state(TaskState::observed(ChainStatus::Assigned, &PodState::Absent));
    status.event(
        EventType::Normal,
        "WorkerAssigned",
        format!("attempt {attempt}: {worker_name} recruited (QoS {qos:.3})"),
    );
    if let Some(created) = &task.metadata.creation_timestamp {
        ctx.health
            .metrics
            .time_to_assign_seconds
            .observe(seconds_since(created.0));
    }
    // Assigned on chain: the trainer starts in this reconcile.
    start_trainer(task, ctx, status, &worker, attempt, info.budget).await
}

/// Records `worker_name` as the worker of chain task `id` (the oracle's `assign`).
async fn assign(task: &DRLTask, ctx: &Context, id: u64, worker_name: &str) -> Result<(TxOutcome, Worker), Error> {
    let worker = observe::worker_named(ctx, worker_name)
        .await?
        .ok_or_else(|| Error::Invalid {
            field: "status.worker",
            message: format!("recruitment chose Worker {worker_name}, which is gone"),
        })?;
    let address: Address = worker.spec.address.parse().map_err(|e| Error::Invalid {
        field: "spec.address",
        message: format!("Worker {worker_name}: {e}"),
    })?;
    // The most the task pays: the price recruitment weighed. A worker that raises its price before
    // the assignment lands is refused on chain (`PriceAboveMax`) and recruited afresh.
    let max_price = parse_wei(&worker.spec.price_per_task_wei).map_err(|message| Error::Invalid {
        field: "spec.pricePerTaskWei",
        message: format!("Worker {worker_name}: {message}"),
    })?;
    tracing::debug!(task = %task.name_any(), worker = worker_name, "assigning");
    let assign = ctx
        .market
        .assign(ctx.settings.oracle, id, address, U256::from(max_price));
    let outcome = timed(ctx, "assign", assign).await?;
    Ok((outcome, worker))
}

/// What seconding the proposals on chain came to.
enum Seconded {
    /// This oracle voted for one; the action after the vote.
    Voted(Action),
    /// It voted for none: why each proposal it does not back was refused, and whether it already
    /// backs one that still keeps the rule.
    Not { refused: Vec<String>, backing: bool },
}

/// In a consortium: vote for a proposal of this attempt's worker that keeps the public recruitment
/// rule ([`consortium::check_proposal`]), the most supported first. Proposals this oracle backs
/// already are only checked: one that no longer keeps the rule (its worker raised its price) is
/// why an oracle backs another.
async fn second(
    task: &DRLTask,
    ctx: &Context,
    status: &mut StatusWriter<'_>,
    seen: &Observation,
) -> Result<Seconded, Error> {
    let info = &seen.info;
    let attempt = info.attempts + 1;
    let terms = TaskTerms {
        budget: u128::try_from(info.budget).unwrap_or(u128::MAX),
        min_reputation: task.spec.min_reputation,
    };
    let kind = seen.environment.kind_name().parse::<EnvKind>().ok();
    let seat = seen.membership.seat.map(|s| 1u32 << s).unwrap_or(0);
    let (mut refused, mut backing) = (Vec::new(), false);
    for p in ctx.market.assign_proposals(info.id, attempt).await? {
        let record = ctx.market.worker(p.worker).await?;
        let proposed = ProposedWorker {
            registered: record.is_some(),
            price: record
                .as_ref()
                .map_or(0, |w| u128::try_from(w.profile.price_per_task).unwrap_or(u128::MAX)),
            reputation: record.as_ref().map_or(0.0, |w| w.reputation.as_f64()),
            expertise: match (&record, kind) {
                (Some(w), Some(kind)) => w.profile.expertise.level(kind),
                _ => 0,
            },
        };
        let proposal = Proposal {
            worker: p.worker.to_string(),
            max_price: u128::try_from(p.max_price).unwrap_or(u128::MAX),
        };
        let keeps_the_rule = consortium::check_proposal(&proposal, &proposed, &terms);
        if p.support & seat != 0 {
            backing |= keeps_the_rule.is_ok();
            continue;
        }
        match keeps_the_rule {
            Ok(()) => {
                let vote = ctx.market.assign(ctx.settings.oracle, info.id, p.worker, p.max_price);
                let outcome = timed(ctx, "assign", vote).await?;
                status.tx(ctx, TxAction::Assign(u32::from(attempt)), &outcome);
                status.event(
                    EventType::Normal,
                    "AssignmentSeconded",
                    format!(
                        "attempt {attempt}: seconded {} at most {} wei, proposed by {}",
                        p.worker, p.max_price, p.oracle
                    ),
                );
                return Ok(Seconded::Voted(Action::requeue(AFTER_TX)));
            }
            Err(why) => refused.push(format!("{} (by {}): {why}", p.worker, p.oracle)),
        }
    }
    if !refused.is_empty() {
        ctx.health.metrics.proposals_refused.inc();
    }
    Ok(Seconded::Not { refused, backing })
}

/// Starts attempt `attempt` on `worker`: the warm start chosen (bought once, within the task's
/// `budget`, for the market), the spec's ConfigMap and the trainer pod. Creating either again is
/// harmless.
async fn start_trainer(
    task: &DRLTask,
    ctx: &Context,
    status: &mut StatusWriter<'_>,
    worker: &Worker,
    attempt: u32,
    budget: U256,
) -> Result<Action, Error> {
    let warm_start = match warm_start_wanted(&task.spec) {
        WarmStartWanted::None => None,
        WarmStartWanted::Model(cid) => Some(cid.to_string()),
        WarmStartWanted::FromMarket => match &status.status.warm_start {
            Some(chosen) => chosen.model_cid.clone(),
            None => buy_model(task, ctx, status, budget).await?,
        },
    };
    create_owned(ctx, task, task_config_map(task)).await?;
    let pod = trainer_pod(task, worker, attempt, warm_start.as_deref(), None, &ctx.settings.pods);
    create_owned(ctx, task, pod).await?;
    status.status.message = Some(format!(
        "attempt {attempt}: trainer {} started on {}",
        trainer_pod_name(task, attempt),
        worker.name_any()
    ));
    Ok(Action::requeue(POLL))
}

/// Buys the most similar listed model within `budget` (once: the choice stays in the status); its CID.
async fn buy_model(
    task: &DRLTask,
    ctx: &Context,
    status: &mut StatusWriter<'_>,
    budget: U256,
) -> Result<Option<String>, Error> {
    let bought = buy_warm_start(ctx, task, u128::try_from(budget).unwrap_or(u128::MAX)).await?;
    if let Some(outcome) = &bought.purchase {
        status.tx(ctx, TxAction::Purchase, outcome);
    }
    let type_ = if bought.choice.model_cid.is_some() {
        EventType::Normal
    } else {
        EventType::Warning
    };
    status.event(type_, "WarmStart", bought.choice.reason.clone());
    status.status.warm_start = Some(bought.choice.clone());
    Ok(bought.choice.model_cid)
}

/// The trainer is on its way; once it runs, its progress is shown.
async fn wait_for_trainer(
    task: &DRLTask,
    ctx: &Context,
    status: &mut StatusWriter<'_>,
    seen: &Observation,
    running: bool,
) -> Action {
    if running && let Some(progress) = observe::trainer_progress(ctx, task, seen.attempt()).await {
        let labels = crate::metrics::TaskLabels {
            namespace: super::super::namespace_of(task),
            task: task.name_any(),
        };
        ctx.health.metrics.training_sps.get_or_create(&labels).set(progress.sps);
        if let Some(r) = progress.mean_return {
            ctx.health.metrics.training_mean_return.get_or_create(&labels).set(r);
        }
        status.status.progress = Some(progress);
    }
    Action::requeue(POLL)
}

/// Submits the trainer's model on chain with the worker's own key: the worker answers for the
/// CID it claims, and the hash of the trainer's `result` goes with it.
async fn submit(
    task: &DRLTask,
    ctx: &Context,
    status: &mut StatusWriter<'_>,
    seen: &Observation,
    model_cid: String,
    result: String,
) -> Result<Action, Error> {
    let (worker, attempt) = (seen.assigned_worker()?, seen.attempt());
    let (as_worker, address) = worker_wallet(ctx, worker, seen.info.worker).await?;
    if let Ok((trained, _)) = trained_model(&result) {
        status.status.progress = Some(finished_progress(&trained, task.spec.training.total_env_steps));
    }
    let submit = as_worker.submit_result(address, seen.info.id, &model_cid, keccak256(result.as_bytes()));
    let outcome = timed(ctx, "submit", submit).await?;
    status.tx(ctx, TxAction::Submit(attempt), &outcome);
    status.status.model_cid = Some(model_cid.clone());
    status.event(
        EventType::Normal,
        "ResultSubmitted",
        format!(
            "attempt {attempt}: model {model_cid} submitted on chain for {}",
            worker.name_any()
        ),
    );
    Ok(Action::requeue(AFTER_TX))
}

/// The evaluation's seed comes from a block not mined yet.
fn wait_for_seed_block(status: &mut StatusWriter<'_>, seen: &Observation, seed_block: u64) -> Action {
    status.status.message = Some(format!(
        "waiting for block {seed_block}, whose hash seeds the evaluation (the chain is at {})",
        seen.head.number
    ));
    Action::requeue(SEED_BLOCK_POLL)
}

/// Starts the evaluator on `seed`, on another worker's pool, once the submitted model is in the
/// content store (pinned, so it stays there); a model that is not fails the attempt.
async fn evaluate(
    task: &DRLTask,
    ctx: &Context,
    status: &mut StatusWriter<'_>,
    seen: &Observation,
    seed: u64,
) -> Result<Action, Error> {
    let cid = seen.submitted_cid.clone().unwrap_or_default();
    let available = match cid.parse::<Cid>() {
        Ok(parsed) => ctx.store.has(&parsed).await? && ctx.store.pin(&parsed).await.is_ok(),
        Err(_) => false,
    };
    if !available {
        let settlement = Settlement {
            intent: Intent::FailAttempt { reopen: true },
            reason: format!("the submitted model {cid} is not in the content store"),
            verdict: Some(Verdict::WrongModel),
        };
        return settle(task, ctx, status, seen, settlement).await;
    }
    let episodes = verification::episodes(task.spec.training.eval_episodes);
    let verifier = observe::verifier_pool(ctx, seen.worker.as_ref()).await?;
    let attempt = seen.attempt();
    let pod = evaluator_pod(
        task,
        attempt,
        &cid,
        seed,
        episodes,
        verifier.as_ref(),
        &ctx.settings.pods,
    );
    create_owned(ctx, task, pod).await?;
    status.status.evaluation = None;
    status.status.message = Some(format!(
        "evaluating {cid} on {episodes} episodes with seed {seed} (from block {})",
        seen.seed_block().unwrap_or_default()
    ));
    Ok(Action::requeue(POLL))
}

/// The evaluator ended without a verdict (evicted, out of memory): it is deleted, and the next
/// reconcile starts it again.
async fn retry_evaluator(
    task: &DRLTask,
    ctx: &Context,
    status: &mut StatusWriter<'_>,
    seen: &Observation,
    reason: String,
) -> Result<Action, Error> {
    namespaced::<Pod>(ctx, task)
        .delete(&evaluator_pod_name(task, seen.attempt()), &DeleteParams::default())
        .await?;
    status.event(
        EventType::Warning,
        "EvaluatorRestarted",
        format!("the evaluator ended without a verdict ({reason}); starting it again"),
    );
    Ok(Action::requeue(AFTER_TX))
}
