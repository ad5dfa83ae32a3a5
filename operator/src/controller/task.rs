//! The DRLTask controller: drives each task from admission to settlement (DESIGN §3).
//!
//! Every reconcile reads the facts (the task's record on chain, the pods of its current attempt),
//! asks [`next_step`] what to do, does that one thing, and writes the status by server-side apply.
//! The chain is the source of truth for where a task is, so a restarted operator resumes from
//! whatever it finds: a transaction that landed before the crash shows on chain and is not sent
//! again, and settlement goes through [`settlement::next_action`], which re-reads the chain
//! before choosing a transaction.
//!
//! A finalizer keeps a task until it is settled or released on chain: deleting an unsettled task
//! cancels it (before assignment, with the requester's key) or fails the attempt without reopening
//! (refunding the requester), and removes its pods.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use drlaas_chain::alloy::primitives::{Address, U256, keccak256};
use drlaas_chain::{NewTask, TaskInfo, TaskKind as ChainTaskKind, TaskStatus};
use drlaas_crds::task::{DRLTask, DRLTaskSpec, DRLTaskStatus, Evaluation, Progress, TaskKind, TaskPhase};
use drlaas_crds::worker::Worker;
use drlaas_store::{Cid, ContentStore};
use futures::StreamExt;
use k8s_openapi::api::core::v1::{ConfigMap, Pod};
use k8s_openapi::jiff::Timestamp;
use kube::api::{DeleteParams, ListParams, LogParams, Patch, PatchParams, PostParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::events::{Event as KubeEvent, EventType, Recorder, Reporter};
use kube::runtime::finalizer::{Event as Finalizer, finalizer};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::watcher;
use kube::{Api, Resource, ResourceExt};
use serde_json::json;
use tokio::sync::Mutex;

use super::conditions::condition;
use super::model_market::buy_warm_start;
use super::secrets::{market_as, signer};
use super::{Context, Error, FIELD_MANAGER};
use crate::core::admission::{ChainRecord, paid_target_milli, parse_wei, task_demand, validate_task, worker_offer};
use crate::core::lifecycle::{Outcome, TaskState};
use crate::core::mirror::{ANNOTATION_REQUESTER, LABEL_CHAIN_ID, LABEL_CHAIN_TASK, LABEL_SPEC_CID};
use crate::core::next_step::{ChainTask, Observed, PodState, Step, next_step, phase};
use crate::core::recruitment::{Resources, assign};
use crate::core::reports::trained_model;
use crate::core::settlement::{Action as Settlement, ChainView, Intent, next_action};
use crate::core::verification::{self, Verdict, evaluation_seed};
use crate::pods::{
    LABEL_TASK, config_map_name, evaluator_pod, evaluator_pod_name, task_config_map, trainer_pod, trainer_pod_name,
};

/// The controller's name in metrics and Events.
pub const CONTROLLER: &str = "drltask";
/// Held on every task until it is settled or released on chain.
pub const FINALIZER: &str = "drlaas.io/settlement";
/// Set on a task posted from Kubernetes just before its post is sent: the block to search from
/// if the receipt is lost.
pub const ANNOTATION_POSTED_AFTER_BLOCK: &str = "drlaas.io/posted-after-block";

/// How often a task is looked at while it waits on something outside the cluster (the chain, a
/// free worker).
const POLL: Duration = Duration::from_secs(10);
/// How soon a task is looked at again after a transaction, to show its new phase.
const AFTER_TX: Duration = Duration::from_secs(1);

/// Recruitment reserves capacity across tasks: one recruitment at a time in this process (the
/// leader), so two tasks never take the same free slot.
static RECRUITING: Mutex<()> = Mutex::const_new(());

/// Brings one task one step closer to settlement.
pub async fn reconcile(task: Arc<DRLTask>, ctx: Arc<Context>) -> Result<Action, Error> {
    let _timer = ctx.health.metrics.reconcile(CONTROLLER);
    let namespace = task.namespace().unwrap_or_else(|| "default".into());
    let api: Api<DRLTask> = Api::namespaced(ctx.client.clone(), &namespace);
    finalizer(&api, FINALIZER, task, |event| async {
        match event {
            Finalizer::Apply(task) => apply(&task, &ctx).await,
            Finalizer::Cleanup(task) => cleanup(&task, &ctx).await,
        }
    })
    .await
    .map_err(|e| match e {
        kube::runtime::finalizer::Error::ApplyFailed(e) | kube::runtime::finalizer::Error::CleanupFailed(e) => e,
        kube::runtime::finalizer::Error::AddFinalizer(e) | kube::runtime::finalizer::Error::RemoveFinalizer(e) => {
            Error::Kube(e)
        }
        other => Error::Invalid {
            field: "metadata",
            message: other.to_string(),
        },
    })
}

/// Retry after a failure; the status already says what failed.
pub fn error_policy(task: Arc<DRLTask>, error: &Error, ctx: Arc<Context>) -> Action {
    ctx.health.metrics.reconcile_failed(CONTROLLER, error.kind());
    tracing::warn!(task = %task.name_any(), kind = error.kind(), %error, "reconcile failed");
    Action::requeue(Duration::from_secs(15))
}

/// Runs the DRLTask controller until shutdown: one kube-runtime controller for every namespace, or
/// one per namespace of `--watch-namespaces` (a controller watches through one API, and the tasks of
/// different namespaces never share a reconcile).
pub async fn run(ctx: Arc<Context>) {
    let apis = ctx.settings.scope.apis::<DRLTask>(&ctx.client);
    let pods = ctx.settings.scope.apis::<Pod>(&ctx.client);
    let controllers: Vec<Controller<DRLTask>> = apis
        .into_iter()
        .zip(pods)
        .map(|(tasks, pods)| controller(tasks, pods, &ctx))
        .collect();
    // Tasks per phase, counted from the controllers' caches: right after a restart too.
    let caches: Vec<Store<DRLTask>> = controllers.iter().map(Controller::store).collect();
    let counting = tokio::spawn(count_phases(caches, ctx.clone()));
    futures::future::join_all(controllers.into_iter().map(|controller| {
        controller
            .shutdown_on_signal()
            .run(reconcile, error_policy, ctx.clone())
            .for_each(|result| async move {
                if let Err(e) = result {
                    tracing::debug!(error = %e, "drltask controller event");
                }
            })
    }))
    .await;
    counting.abort();
}

/// The controller of the tasks `tasks` lists, owning the pods `pods` lists (in the same namespaces).
fn controller(tasks: Api<DRLTask>, pods: Api<Pod>, ctx: &Context) -> Controller<DRLTask> {
    let controller = Controller::new(tasks, watcher::Config::default());
    let waiting = controller.store();
    controller
        .owns(pods, watcher::Config::default().labels(LABEL_TASK))
        // A worker registering or freeing capacity may be what funded tasks wait for.
        .watches(
            Api::<Worker>::all(ctx.client.clone()),
            watcher::Config::default(),
            move |_| {
                waiting
                    .state()
                    .into_iter()
                    .filter(|t| {
                        let phase = t.status.as_ref().and_then(|s| s.phase);
                        matches!(phase, None | Some(TaskPhase::Pending | TaskPhase::Funded))
                    })
                    .map(|t| ObjectRef::from_obj(&*t))
                    .collect::<Vec<_>>()
            },
        )
}

/// Sets the tasks-per-phase gauges from `caches` every 15 s, until aborted.
async fn count_phases(caches: Vec<Store<DRLTask>>, ctx: Arc<Context>) {
    loop {
        tokio::time::sleep(Duration::from_secs(15)).await;
        let mut counts: BTreeMap<&'static str, i64> = BTreeMap::new();
        for task in caches.iter().flat_map(Store::state) {
            let phase = task.status.as_ref().and_then(|s| s.phase).unwrap_or(TaskPhase::Pending);
            *counts.entry(phase_reason(phase)).or_default() += 1;
        }
        for phase in ["Pending", "Funded", "Assigned", "Training", "Verifying", "Settled"] {
            let labels = crate::metrics::PhaseLabels { phase: phase.into() };
            ctx.health
                .metrics
                .tasks
                .get_or_create(&labels)
                .set(counts.get(phase).copied().unwrap_or_default());
        }
    }
}

/// What one reconcile found out and did, written back as the status.
struct Report<'a> {
    task: &'a DRLTask,
    ctx: &'a Context,
    status: DRLTaskStatus,
    events: Vec<(EventType, &'static str, String)>,
    /// Held from recruitment until the assignment is in the status, where the next recruitment
    /// counts it against the worker's capacity.
    recruiting: Option<tokio::sync::MutexGuard<'static, ()>>,
}

impl<'a> Report<'a> {
    fn new(task: &'a DRLTask, ctx: &'a Context) -> Self {
        let mut status = task.status.clone().unwrap_or_default();
        status.phase.get_or_insert(TaskPhase::Pending);
        Report {
            task,
            ctx,
            status,
            events: Vec::new(),
            recruiting: None,
        }
    }

    fn event(&mut self, type_: EventType, reason: &'static str, note: impl Into<String>) {
        let note = note.into();
        self.status.message = Some(note.clone());
        self.events.push((type_, reason, note));
    }

    fn tx(&mut self, action: String, outcome: &drlaas_chain::TxOutcome) {
        self.ctx
            .health
            .metrics
            .chain_tx_gas
            .get_or_create(&crate::metrics::ActionLabels {
                action: action.split('-').next().unwrap_or_default().to_string(),
            })
            .observe(outcome.gas_used as f64);
        self.status.transactions.insert(action, outcome.hash.to_string());
    }

    /// Writes the status (with conditions derived from the phase) and publishes the Events.
    async fn write(mut self) -> Result<(), Error> {
        let previous = self.task.status.clone().unwrap_or_default();
        let phase = self.status.phase.unwrap_or(TaskPhase::Pending);
        if previous.phase != Some(phase) {
            let note = self.status.message.clone().unwrap_or_default();
            let type_ = match self.status.outcome {
                Some(Outcome::Paid) | None => EventType::Normal,
                Some(_) => EventType::Warning,
            };
            self.events.insert(0, (type_, phase_reason(phase), note));
        }
        let state = TaskState {
            phase,
            outcome: self.status.outcome,
            worker: self.status.worker.clone(),
            attempts: self.status.attempts,
            failed_workers: self.status.failed_workers.clone(),
        };
        let now = Timestamp::now();
        let message = self.status.message.clone().unwrap_or_default();
        self.status.conditions = state
            .conditions()
            .iter()
            .map(|(type_, on)| {
                let reason = if *on { *type_ } else { "NotYet" };
                condition(
                    &previous.conditions,
                    type_,
                    *on,
                    reason,
                    message.clone(),
                    self.task.metadata.generation,
                    now,
                )
            })
            .collect();
        self.status.observed_generation = self.task.metadata.generation;
        if self.status != previous {
            let patch = json!({"apiVersion": "drlaas.io/v1alpha1", "kind": "DRLTask", "status": self.status});
            task_api(self.ctx, self.task)
                .patch_status(
                    &self.task.name_any(),
                    &PatchParams::apply(FIELD_MANAGER).force(),
                    &Patch::Apply(&patch),
                )
                .await?;
        }
        if !self.events.is_empty() {
            let recorder = Recorder::new(
                self.ctx.client.clone(),
                Reporter {
                    controller: FIELD_MANAGER.into(),
                    instance: None,
                },
            );
            let reference = self.task.object_ref(&());
            for (type_, reason, note) in self.events {
                let event = KubeEvent {
                    type_,
                    reason: reason.into(),
                    note: Some(truncate(note, 1024)),
                    action: "Reconcile".into(),
                    secondary: None,
                };
                if let Err(e) = recorder.publish(&event, &reference).await {
                    tracing::warn!(task = %self.task.name_any(), error = %e, "could not record an Event");
                }
            }
        }
        Ok(())
    }
}

/// Sends a transaction, timing it for `drlaas_chain_tx_duration_seconds`.
async fn timed<T>(
    ctx: &Context,
    action: &str,
    send: impl std::future::Future<Output = Result<T, drlaas_chain::ChainError>>,
) -> Result<T, Error> {
    let start = std::time::Instant::now();
    let result = send.await;
    ctx.health
        .metrics
        .chain_tx_seconds
        .get_or_create(&crate::metrics::ActionLabels { action: action.into() })
        .observe(start.elapsed().as_secs_f64());
    Ok(result?)
}

/// Seconds from `then` until now (0 if `then` is in the future: clocks differ).
fn seconds_since(then: Timestamp) -> f64 {
    Timestamp::now().duration_since(then).as_secs_f64().max(0.0)
}

fn phase_reason(phase: TaskPhase) -> &'static str {
    match phase {
        TaskPhase::Pending => "Pending",
        TaskPhase::Funded => "Funded",
        TaskPhase::Assigned => "Assigned",
        TaskPhase::Training => "Training",
        TaskPhase::Verifying => "Verifying",
        TaskPhase::Settled => "Settled",
    }
}

fn truncate(mut text: String, max: usize) -> String {
    if text.len() > max {
        let mut end = max;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
    }
    text
}

fn task_api(ctx: &Context, task: &DRLTask) -> Api<DRLTask> {
    Api::namespaced(
        ctx.client.clone(),
        &task.namespace().unwrap_or_else(|| "default".into()),
    )
}

fn pod_api(ctx: &Context, task: &DRLTask) -> Api<Pod> {
    Api::namespaced(
        ctx.client.clone(),
        &task.namespace().unwrap_or_else(|| "default".into()),
    )
}

/// One step for a live task; what went wrong is also written to the status, so `kubectl describe`
/// shows why a task waits.
async fn apply(task: &DRLTask, ctx: &Context) -> Result<Action, Error> {
    let mut report = Report::new(task, ctx);
    let result = step(task, ctx, &mut report).await;
    if let Err(e) = &result {
        report.status.message = Some(e.to_string());
    }
    report.write().await?;
    result
}

async fn step(task: &DRLTask, ctx: &Context, report: &mut Report<'_>) -> Result<Action, Error> {
    if let Err(e) = validate_task(&task.spec) {
        if report.status.message.as_deref() != Some(e.to_string().as_str()) {
            report.event(EventType::Warning, "InvalidSpec", e.to_string());
        }
        return Ok(Action::await_change());
    }
    // A task this operator posted carries its chain id as a label too: its status may have been
    // lost (a failed write, a restore from backup) after the post landed.
    let labelled = task
        .labels()
        .get(LABEL_CHAIN_TASK)
        .and_then(|id| id.parse::<u64>().ok())
        .filter(|_| task.labels().get(LABEL_CHAIN_ID) == Some(&ctx.market.deployment().chain_id.to_string()));
    let chain_id = match report.status.chain_task_id.or(task.spec.chain_task_id).or(labelled) {
        Some(id) => id,
        None => return post(task, ctx, report).await,
    };
    report.status.chain_task_id = Some(chain_id);
    drive(task, ctx, report, chain_id).await
}

/// Posts a Kubernetes task on chain from its requester's wallet, exactly once.
///
/// Before sending, the task is labelled with its document's CID and annotated with the requester
/// and the current block: if the operator dies before it records the receipt, the next reconcile
/// finds the task it posted instead of posting (and paying) again, and the chain watcher never
/// mirrors it.
async fn post(task: &DRLTask, ctx: &Context, report: &mut Report<'_>) -> Result<Action, Error> {
    let payment = task.spec.payment.as_ref().ok_or(Error::Invalid {
        field: "spec.payment",
        message: "a task without spec.chainTaskId needs spec.payment".into(),
    })?;
    let budget = parse_wei(&payment.amount_wei).map_err(|message| Error::Invalid {
        field: "spec.payment.amountWei",
        message,
    })?;
    let namespace = task.namespace().unwrap_or_else(|| "default".into());
    let key = signer(&ctx.client, &namespace, &payment.wallet_secret_ref).await?;
    let (wallet, requester) = market_as(&ctx.market, key);

    let stored = ctx.store.put_bytes(task_document(&task.spec).into()).await?;
    ctx.store.pin(&stored.cid).await?;
    let spec_cid = stored.cid.to_string();

    let head = ctx.market.block(None).await?;
    let searched_from = task
        .annotations()
        .get(ANNOTATION_POSTED_AFTER_BLOCK)
        .and_then(|b| b.parse::<u64>().ok())
        .filter(|_| task.labels().get(LABEL_SPEC_CID) == Some(&spec_cid));
    // Posts of this document by this wallet that no other task stands for: ours, from an attempt
    // whose receipt was lost. The first is bound; any later one (a retry after a lost receipt)
    // is cancelled, so no escrow waits for a deadline behind a task nobody drives.
    let mut found = None;
    if let Some(from) = searched_from {
        for id in ctx.market.tasks_posted_by(requester, &spec_cid, from).await? {
            if chain_task_is_bound(ctx, id, task).await? {
                continue;
            }
            if found.is_none() {
                found = Some(id);
            } else if ctx.market.task(id).await?.status == TaskStatus::Posted {
                let outcome = timed(ctx, "cancel", wallet.cancel_task(requester, id)).await?;
                report.tx(format!("cancel-duplicate-{id}"), &outcome);
            }
        }
    }
    let (id, tx) = match found {
        Some(id) => (id, None),
        None => {
            // The write-ahead record: kept from the first attempt, so every search covers them all.
            let metadata = json!({"metadata": {
                "labels": {LABEL_SPEC_CID: spec_cid},
                "annotations": {
                    ANNOTATION_POSTED_AFTER_BLOCK: searched_from.unwrap_or(head.number).to_string(),
                    ANNOTATION_REQUESTER: requester.to_string(),
                },
            }});
            task_api(ctx, task)
                .patch(&task.name_any(), &PatchParams::default(), &Patch::Merge(&metadata))
                .await?;
            let new = chain_task(&task.spec, spec_cid.clone(), U256::from(budget), head.timestamp);
            let (id, outcome) = timed(ctx, "post", wallet.post_task(requester, &new)).await?;
            (id, Some(outcome))
        }
    };
    let labels = json!({"metadata": {"labels": {
        LABEL_CHAIN_ID: ctx.market.deployment().chain_id.to_string(),
        LABEL_CHAIN_TASK: id.to_string(),
    }}});
    task_api(ctx, task)
        .patch(&task.name_any(), &PatchParams::default(), &Patch::Merge(&labels))
        .await?;
    report.status.chain_task_id = Some(id);
    report.status.budget_wei = Some(budget.to_string());
    if let Some(outcome) = &tx {
        report.tx("post".into(), outcome);
    }
    report.event(
        EventType::Normal,
        "Posted",
        format!("posted on chain as task {id} with {budget} wei in escrow (document {spec_cid})"),
    );
    Ok(Action::requeue(AFTER_TX))
}

/// The document a task is posted with (stored under the `specCid` it posts): its spec without
/// `payment` or `chainTaskId`, which is what the chain watcher mirrors (see `core::mirror`).
pub fn task_document(spec: &DRLTaskSpec) -> Vec<u8> {
    let mut document = spec.clone();
    document.payment = None;
    document.chain_task_id = None;
    serde_json::to_vec_pretty(&document).expect("a task spec serializes")
}

/// What `TMC.postTask` gets for a paid task whose document is stored under `spec_cid`, posted when
/// the chain's clock reads `now`: the kind, the target (see [`paid_target_milli`]), the deadline
/// and `budget` wei of escrow.
pub fn chain_task(spec: &DRLTaskSpec, spec_cid: String, budget: U256, now: u64) -> NewTask {
    NewTask {
        spec_cid,
        kind: match spec.kind {
            TaskKind::Training => ChainTaskKind::Training,
            TaskKind::ModelSharing => ChainTaskKind::ModelSharing,
        },
        target_milli: paid_target_milli(spec).ok().flatten().unwrap_or_default(),
        deadline: now + spec.deadline_seconds,
        budget,
    }
}

/// Whether a DRLTask other than `this` already stands for chain task `id`.
async fn chain_task_is_bound(ctx: &Context, id: u64, this: &DRLTask) -> Result<bool, Error> {
    let selector = format!(
        "{LABEL_CHAIN_ID}={},{LABEL_CHAIN_TASK}={id}",
        ctx.market.deployment().chain_id
    );
    let bound: Vec<DRLTask> = ctx
        .settings
        .scope
        .list(&ctx.client, &ListParams::default().labels(&selector))
        .await?;
    Ok(bound.iter().any(|t| t.uid() != this.uid()))
}

/// The state of the pod `name` of `task`.
async fn pod_state(ctx: &Context, task: &DRLTask, name: &str) -> Result<(PodState, Option<Pod>), Error> {
    let Some(pod) = pod_api(ctx, task).get_opt(name).await? else {
        return Ok((PodState::Absent, None));
    };
    let status = pod.status.clone().unwrap_or_default();
    let terminated = status
        .container_statuses
        .as_ref()
        .and_then(|c| c.first())
        .and_then(|c| c.state.as_ref())
        .and_then(|s| s.terminated.clone());
    let message = terminated.as_ref().and_then(|t| t.message.clone()).unwrap_or_default();
    let state = match status.phase.as_deref() {
        Some("Running") => PodState::Running,
        Some("Succeeded") => PodState::Succeeded(message),
        Some("Failed") => {
            let reason = [
                terminated.as_ref().and_then(|t| t.reason.clone()),
                status.reason.clone(),
                (!message.is_empty()).then_some(message),
                terminated.as_ref().map(|t| format!("exit code {}", t.exit_code)),
            ]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join(": ");
            PodState::Failed(if reason.is_empty() { "failed".into() } else { reason })
        }
        _ => PodState::Pending,
    };
    Ok((state, Some(pod)))
}

/// The Worker object whose account is `address`.
async fn worker_by_address(ctx: &Context, address: Address) -> Result<Option<Worker>, Error> {
    let workers = Api::<Worker>::all(ctx.client.clone())
        .list(&ListParams::default())
        .await?;
    Ok(workers
        .items
        .into_iter()
        .find(|w| w.spec.address.parse::<Address>().ok() == Some(address)))
}

/// One step for a task bound to chain task `id`.
async fn drive(task: &DRLTask, ctx: &Context, report: &mut Report<'_>, id: u64) -> Result<Action, Error> {
    let info = ctx.market.task(id).await?;
    let head = ctx.market.block(None).await?;
    let (verification_window, max_attempts) = ctx.market.task_limits().await?;
    report.status.budget_wei = Some(info.budget.to_string());
    report.status.attempts = u32::from(info.attempts);
    let attempt = u32::from(info.attempts);
    let worker = if info.worker == Address::ZERO {
        None
    } else {
        worker_by_address(ctx, info.worker).await?
    };
    if info.worker != Address::ZERO {
        report.status.worker = Some(
            worker
                .as_ref()
                .map_or_else(|| info.worker.to_string(), |w| w.name_any()),
        );
    }
    let (trainer, trainer_object) = match attempt {
        0 => (PodState::Absent, None),
        n => pod_state(ctx, task, &trainer_pod_name(task, n)).await?,
    };
    let (evaluator, _) = match attempt {
        0 => (PodState::Absent, None),
        n => pod_state(ctx, task, &evaluator_pod_name(task, n)).await?,
    };
    let submitted = match info.status {
        TaskStatus::Submitted => ctx.market.task_result(id).await?.map(|(cid, _)| cid),
        _ => None,
    };
    let seed_block = info.submitted_block.map(verification::seed_block);
    let seed = match seed_block {
        Some(b) if info.status == TaskStatus::Submitted && head.number >= b => {
            Some(evaluation_seed(&ctx.market.block(Some(b)).await?.hash.0, id))
        }
        _ => None,
    };
    let observed = Observed {
        chain: ChainTask {
            status: info.status,
            attempts: info.attempts,
            deadline: info.deadline,
            verification_window,
            submitted_block: info.submitted_block,
        },
        now: head.timestamp,
        head: head.number,
        trainer: &trainer,
        evaluator: &evaluator,
        submitted_cid: submitted.as_deref(),
        seed,
        target: task.spec.training.target_mean_return,
    };
    let (phase, outcome) = phase(info.status, &trainer);
    let first_seen_running = phase == TaskPhase::Training && report.status.phase != Some(TaskPhase::Training);
    if let (true, Some(created)) = (
        first_seen_running,
        trainer_object
            .as_ref()
            .and_then(|p| p.metadata.creation_timestamp.as_ref()),
    ) {
        ctx.health
            .metrics
            .pod_launch_delay_seconds
            .observe(seconds_since(created.0));
    }
    report.status.phase = Some(phase);
    report.status.outcome = outcome;
    if let Some(cid) = &submitted {
        report.status.model_cid = Some(cid.clone());
    }

    match next_step(&observed) {
        Step::Done => {
            report.status.message = Some(settled_message(&info));
            Ok(Action::await_change())
        }
        Step::Recruit => recruit(task, ctx, report, &info).await,
        Step::StartTrainer => {
            let worker = worker.ok_or_else(|| Error::Invalid {
                field: "status.worker",
                message: format!("chain task {id} is assigned to {}, which no Worker names", info.worker),
            })?;
            let warm_start = match warm_start_wanted(&task.spec) {
                WarmStartWanted::None => None,
                WarmStartWanted::Model(cid) => Some(cid.to_string()),
                WarmStartWanted::FromMarket => match &report.status.warm_start {
                    Some(chosen) => chosen.model_cid.clone(),
                    None => {
                        let budget = u128::try_from(info.budget).unwrap_or(u128::MAX);
                        let bought = buy_warm_start(ctx, task, budget).await?;
                        if let Some(outcome) = &bought.purchase {
                            report.tx("purchase".into(), outcome);
                        }
                        let type_ = if bought.choice.model_cid.is_some() {
                            EventType::Normal
                        } else {
                            EventType::Warning
                        };
                        report.event(type_, "WarmStart", bought.choice.reason.clone());
                        report.status.warm_start = Some(bought.choice.clone());
                        bought.choice.model_cid
                    }
                },
            };
            create_owned(ctx, task, task_config_map(task)).await?;
            let pod = trainer_pod(task, &worker, attempt, warm_start.as_deref(), None, &ctx.settings.pods);
            create_owned(ctx, task, pod).await?;
            report.status.message = Some(format!(
                "attempt {attempt}: trainer {} started on {}",
                trainer_pod_name(task, attempt),
                worker.name_any()
            ));
            Ok(Action::requeue(POLL))
        }
        Step::WaitForTrainer { running } => {
            if running {
                report_progress(task, ctx, report, attempt).await;
            }
            Ok(Action::requeue(POLL))
        }
        Step::Submit { model_cid, result } => {
            let worker = worker.ok_or_else(|| Error::Invalid {
                field: "status.worker",
                message: format!("chain task {id} is assigned to {}, which no Worker names", info.worker),
            })?;
            let key = signer(&ctx.client, &ctx.settings.namespace, &worker.spec.key_secret_ref).await?;
            if key.address() != info.worker {
                return Err(Error::Secret {
                    namespace: ctx.settings.namespace.clone(),
                    name: worker.spec.key_secret_ref.name.clone(),
                    message: format!("holds the key of {}, but the worker is {}", key.address(), info.worker),
                });
            }
            if let Ok((trained, _)) = trained_model(&result) {
                report.status.progress = Some(Progress {
                    env_steps: trained.env_steps,
                    total_env_steps: task.spec.training.total_env_steps,
                    mean_return: trained.mean_return,
                    sps: trained.sps,
                    eta_seconds: Some(0),
                });
            }
            let (as_worker, address) = market_as(&ctx.market, key);
            let submit = as_worker.submit_result(address, id, &model_cid, keccak256(result.as_bytes()));
            let outcome = timed(ctx, "submit", submit).await?;
            report.tx(format!("submit-{attempt}"), &outcome);
            report.status.model_cid = Some(model_cid.clone());
            report.event(
                EventType::Normal,
                "ResultSubmitted",
                format!(
                    "attempt {attempt}: model {model_cid} submitted on chain for {}",
                    worker.name_any()
                ),
            );
            Ok(Action::requeue(AFTER_TX))
        }
        Step::WaitForSeedBlock { seed_block } => {
            report.status.message = Some(format!(
                "waiting for block {seed_block}, whose hash seeds the evaluation (the chain is at {})",
                head.number
            ));
            Ok(Action::requeue(Duration::from_secs(2)))
        }
        Step::Evaluate { seed } => {
            let cid = submitted.clone().unwrap_or_default();
            let available = match cid.parse::<Cid>() {
                Ok(parsed) => ctx.store.has(&parsed).await? && ctx.store.pin(&parsed).await.is_ok(),
                Err(_) => false,
            };
            if !available {
                let reason = format!("the submitted model {cid} is not in the content store");
                return settle(
                    ctx,
                    report,
                    &info,
                    &observed,
                    Intent::FailAttempt { reopen: true },
                    reason,
                    Some(Verdict::WrongModel),
                    max_attempts,
                    task,
                )
                .await;
            }
            let episodes = verification::episodes(task.spec.training.eval_episodes);
            let verifier = verifier_pool(ctx, worker.as_ref()).await?;
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
            report.status.evaluation = None;
            report.status.message = Some(format!(
                "evaluating {cid} on {episodes} episodes with seed {seed} (from block {})",
                seed_block.unwrap_or_default()
            ));
            Ok(Action::requeue(POLL))
        }
        Step::WaitForEvaluator => Ok(Action::requeue(POLL)),
        Step::RetryEvaluator { reason } => {
            pod_api(ctx, task)
                .delete(&evaluator_pod_name(task, attempt), &DeleteParams::default())
                .await?;
            report.event(
                EventType::Warning,
                "EvaluatorRestarted",
                format!("the evaluator ended without a verdict ({reason}); starting it again"),
            );
            Ok(Action::requeue(AFTER_TX))
        }
        Step::Settle {
            intent,
            reason,
            verdict,
        } => {
            settle(
                ctx,
                report,
                &info,
                &observed,
                intent,
                reason,
                verdict,
                max_attempts,
                task,
            )
            .await
        }
    }
}

#[allow(clippy::too_many_arguments)] // the settlement of one observation: every part is used
async fn settle(
    ctx: &Context,
    report: &mut Report<'_>,
    info: &TaskInfo,
    observed: &Observed<'_>,
    intent: Intent,
    reason: String,
    verdict: Option<Verdict>,
    max_attempts: u8,
    task: &DRLTask,
) -> Result<Action, Error> {
    // The task's own limit on attempts, within the contract's.
    let limit = max_attempts.min(u8::try_from(task.spec.max_attempts).unwrap_or(u8::MAX));
    let view = ChainView {
        status: info.status,
        attempts: info.attempts,
        max_attempts: limit,
        deadline: info.deadline,
        verification_window: observed.chain.verification_window,
        now: observed.now,
    };
    if let Some(v) = verdict {
        let mean_return = match v {
            Verdict::Pass { mean_return } | Verdict::Fail { mean_return, .. } => mean_return,
            Verdict::WrongModel => f64::NAN,
        };
        report.status.evaluation = Some(Evaluation {
            mean_return: if mean_return.is_finite() { mean_return } else { 0.0 },
            episodes: verification::episodes(task.spec.training.eval_episodes),
            seed_block: info.submitted_block.map(verification::seed_block).unwrap_or_default(),
            passed: v.passed(),
        });
    }
    let attempt = info.attempts;
    let oracle = ctx.settings.oracle;
    let action = next_action(intent, &view);
    if verdict.is_some()
        && let Some(submitted) = info.submitted_block
    {
        let submitted_at = ctx.market.block(Some(submitted)).await?.timestamp;
        let waited = observed.now.saturating_sub(submitted_at) as f64;
        ctx.health.metrics.time_to_verify_seconds.observe(waited);
    }
    if matches!(
        action,
        Settlement::Complete | Settlement::Fail { reopen: false } | Settlement::Expire
    ) && let Some(created) = &task.metadata.creation_timestamp
    {
        ctx.health
            .metrics
            .time_to_settle_seconds
            .observe(seconds_since(created.0));
    }
    match action {
        Settlement::Complete => {
            let outcome = timed(ctx, "complete", ctx.market.complete(oracle, info.id)).await?;
            report.tx("complete".into(), &outcome);
            report.event(EventType::Normal, "Completed", format!("paid: {reason}"));
        }
        Settlement::Fail { reopen } => {
            let outcome = timed(ctx, "fail", ctx.market.fail(oracle, info.id, reopen)).await?;
            report.tx(format!("fail-{attempt}"), &outcome);
            if let Some(worker) = report.status.worker.clone()
                && !report.status.failed_workers.contains(&worker)
            {
                report.status.failed_workers.push(worker);
            }
            let next = if reopen {
                "offered to another worker"
            } else {
                "the requester is refunded"
            };
            report.event(
                EventType::Warning,
                "AttemptFailed",
                format!("attempt {attempt} failed ({reason}); {next}"),
            );
        }
        Settlement::Expire => {
            let outcome = timed(ctx, "expire", ctx.market.expire(oracle, info.id)).await?;
            report.tx("expire".into(), &outcome);
            report.event(EventType::Warning, "Expired", format!("expired: {reason}"));
        }
        Settlement::Nothing { .. } => return Ok(Action::requeue(AFTER_TX)),
        Settlement::Wait => {
            report.status.message = Some(format!("{reason}; waiting until the chain accepts a settlement"));
            return Ok(Action::requeue(POLL));
        }
    }
    Ok(Action::requeue(AFTER_TX))
}

fn settled_message(info: &TaskInfo) -> String {
    match info.status {
        TaskStatus::Completed => format!("settled: the worker {} was paid", info.worker),
        TaskStatus::Failed => "settled: every attempt failed, the requester was refunded".into(),
        TaskStatus::Expired => "settled: expired, the requester was refunded".into(),
        TaskStatus::Cancelled => "settled: cancelled, the requester was refunded".into(),
        other => format!("on chain: {other:?}"),
    }
}

/// Where a task's initial weights come from.
enum WarmStartWanted<'a> {
    None,
    /// A model the requester named.
    Model(&'a str),
    /// The most similar model on the market (`auto`, and any model-sharing task).
    FromMarket,
}

fn warm_start_wanted(spec: &DRLTaskSpec) -> WarmStartWanted<'_> {
    match spec.warm_start.as_str() {
        "auto" => WarmStartWanted::FromMarket,
        "none" if spec.kind == TaskKind::ModelSharing => WarmStartWanted::FromMarket,
        "none" => WarmStartWanted::None,
        cid => WarmStartWanted::Model(cid),
    }
}

/// The pool the evaluation runs on: a registered worker other than the one that trained, so the
/// trainer's own nodes never judge its model; any node when there is none.
async fn verifier_pool(ctx: &Context, trainer: Option<&Worker>) -> Result<Option<Worker>, Error> {
    let mut workers = Api::<Worker>::all(ctx.client.clone())
        .list(&ListParams::default())
        .await?
        .items;
    workers.sort_by_key(|w| w.name_any());
    Ok(workers.into_iter().find(|w| {
        Some(w.name_any()) != trainer.map(|t| t.name_any()) && w.status.as_ref().is_some_and(|s| s.registered)
    }))
}

/// Creates an object the task owns; one that exists already (a retry, a restart) is fine.
async fn create_owned<K>(ctx: &Context, task: &DRLTask, object: K) -> Result<(), Error>
where
    K: Resource<Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + serde::de::DeserializeOwned
        + serde::Serialize
        + std::fmt::Debug,
    K::DynamicType: Default,
{
    let api: Api<K> = Api::namespaced(
        ctx.client.clone(),
        &task.namespace().unwrap_or_else(|| "default".into()),
    );
    match api.create(&PostParams::default(), &object).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(status)) if status.code == 409 => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// Training progress from the trainer's latest JSON progress line (DESIGN §5).
async fn report_progress(task: &DRLTask, ctx: &Context, report: &mut Report<'_>, attempt: u32) {
    let params = LogParams {
        tail_lines: Some(5),
        ..LogParams::default()
    };
    let Ok(logs) = pod_api(ctx, task).logs(&trainer_pod_name(task, attempt), &params).await else {
        return;
    };
    let Some(line) = logs
        .lines()
        .rev()
        .find_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
    else {
        return;
    };
    let total = task.spec.training.total_env_steps;
    let steps = line["envSteps"].as_u64().unwrap_or_default();
    let sps = line["sps"].as_f64().unwrap_or_default();
    let mean_return = line["meanReturn"].as_f64();
    let labels = crate::metrics::TaskLabels {
        namespace: task.namespace().unwrap_or_default(),
        task: task.name_any(),
    };
    ctx.health.metrics.training_sps.get_or_create(&labels).set(sps);
    if let Some(r) = mean_return {
        ctx.health.metrics.training_mean_return.get_or_create(&labels).set(r);
    }
    report.status.progress = Some(Progress {
        env_steps: steps,
        total_env_steps: total,
        mean_return,
        sps,
        eta_seconds: (sps > 0.0).then(|| (total.saturating_sub(steps) as f64 / sps).ceil() as u64),
    });
}

/// Picks a worker for a funded task and records it on chain.
///
/// Recruitment is greedy over every funded task (DESIGN §6): the decision for this task is the one
/// the whole market gets, so a richer task waiting elsewhere is served first.
async fn recruit(task: &DRLTask, ctx: &Context, report: &mut Report<'_>, info: &TaskInfo) -> Result<Action, Error> {
    report.recruiting = Some(RECRUITING.lock().await);
    let this = task_key(task);
    let tasks: Vec<DRLTask> = ctx.settings.scope.list(&ctx.client, &ListParams::default()).await?;
    let workers = Api::<Worker>::all(ctx.client.clone())
        .list(&ListParams::default())
        .await?
        .items;

    // What the assigned tasks hold on each worker.
    let mut in_use: BTreeMap<String, (Resources, u32)> = BTreeMap::new();
    for t in tasks.iter().filter(|t| task_key(t) != this) {
        let Some(status) = &t.status else { continue };
        let holding = matches!(status.phase, Some(TaskPhase::Assigned | TaskPhase::Training));
        if let (true, Some(worker), Ok(r)) = (holding, &status.worker, crate::core::admission::task_resources(&t.spec))
        {
            let entry = in_use.entry(worker.clone()).or_default();
            entry.0 = Resources {
                gpus: entry.0.gpus + r.gpus,
                cpu_millis: entry.0.cpu_millis + r.cpu_millis,
                memory_mib: entry.0.memory_mib + r.memory_mib,
            };
            entry.1 += 1;
        }
    }
    let offers: Vec<_> = workers
        .iter()
        .filter_map(|w| {
            let status = w.status.as_ref().filter(|s| s.registered)?;
            let record = ChainRecord {
                reputation: status.reputation.unwrap_or_default(),
                completed: status.completed_tasks,
                failed: status.failed_tasks,
            };
            let (used, running) = in_use.get(&w.name_any()).cloned().unwrap_or_default();
            worker_offer(w.name_any(), &w.spec, &record, used, running, Vec::new()).ok()
        })
        .collect();
    let mut demands = Vec::new();
    for t in &tasks {
        let funded = task_key(t) == this || t.status.as_ref().and_then(|s| s.phase) == Some(TaskPhase::Funded);
        if !funded || t.metadata.deletion_timestamp.is_some() {
            continue;
        }
        let status = t.status.clone().unwrap_or_default();
        let budget = if task_key(t) == this {
            u128::try_from(info.budget).unwrap_or(u128::MAX)
        } else {
            status
                .budget_wei
                .as_deref()
                .and_then(|b| parse_wei(b).ok())
                .unwrap_or_default()
        };
        let admitted = t
            .metadata
            .creation_timestamp
            .as_ref()
            .map_or(0, |ts| ts.0.as_second().max(0) as u64);
        if let Ok(d) = task_demand(task_key(t), &t.spec, budget, admitted, status.failed_workers.clone()) {
            demands.push(d);
        }
    }
    let decision = assign(&demands, &offers).into_iter().find(|d| d.task == this);
    let Some((worker_name, qos)) = decision.as_ref().and_then(|d| d.assigned.clone()) else {
        let why = decision
            .map(|d| d.summary())
            .unwrap_or_else(|| "no registered Worker yet".into());
        report.status.message = Some(format!("waiting for a worker: {why}"));
        return Ok(Action::requeue(Duration::from_secs(30)));
    };
    let worker = workers
        .iter()
        .find(|w| w.name_any() == worker_name)
        .expect("recruitment picks among the listed workers");
    let address: Address = worker.spec.address.parse().map_err(|e| Error::Invalid {
        field: "spec.address",
        message: format!("Worker {worker_name}: {e}"),
    })?;
    let outcome = timed(ctx, "assign", ctx.market.assign(ctx.settings.oracle, info.id, address)).await?;
    let attempt = info.attempts + 1;
    report.tx(format!("assign-{attempt}"), &outcome);
    report.status.worker = Some(worker_name.clone());
    report.status.attempts = u32::from(attempt);
    report.event(
        EventType::Normal,
        "WorkerAssigned",
        format!("attempt {attempt}: {worker_name} recruited (QoS {:.3})", qos.total),
    );
    if let Some(created) = &task.metadata.creation_timestamp {
        ctx.health
            .metrics
            .time_to_assign_seconds
            .observe(seconds_since(created.0));
    }
    Ok(Action::requeue(AFTER_TX))
}

fn task_key(task: &DRLTask) -> String {
    format!("{}/{}", task.namespace().unwrap_or_default(), task.name_any())
}

/// Releases a deleted task on chain and removes its pods, so no escrow stays locked behind an
/// object that no longer exists.
async fn cleanup(task: &DRLTask, ctx: &Context) -> Result<Action, Error> {
    let mut report = Report::new(task, ctx);
    let id = report.status.chain_task_id.or(task.spec.chain_task_id);
    if let Some(id) = id {
        let info = ctx.market.task(id).await?;
        let head = ctx.market.block(None).await?;
        let (verification_window, _) = ctx.market.task_limits().await?;
        match info.status {
            TaskStatus::Posted => match &task.spec.payment {
                Some(payment) => {
                    let namespace = task.namespace().unwrap_or_else(|| "default".into());
                    let key = signer(&ctx.client, &namespace, &payment.wallet_secret_ref).await?;
                    let (wallet, requester) = market_as(&ctx.market, key);
                    let outcome = timed(ctx, "cancel", wallet.cancel_task(requester, id)).await?;
                    report.tx("cancel".into(), &outcome);
                    report.event(
                        EventType::Normal,
                        "Cancelled",
                        format!("task {id} cancelled on chain; escrow refunded"),
                    );
                }
                None => report.event(
                    EventType::Warning,
                    "Released",
                    format!(
                        "task {id} was posted on chain by its requester, who can cancel it; it is no longer driven"
                    ),
                ),
            },
            TaskStatus::Assigned | TaskStatus::Submitted => {
                let view = ChainView {
                    status: info.status,
                    attempts: info.attempts,
                    max_attempts: info.attempts,
                    deadline: info.deadline,
                    verification_window,
                    now: head.timestamp,
                };
                match next_action(Intent::FailAttempt { reopen: false }, &view) {
                    Settlement::Fail { .. } => {
                        let outcome = timed(ctx, "fail", ctx.market.fail(ctx.settings.oracle, id, false)).await?;
                        report.tx(format!("fail-{}", info.attempts), &outcome);
                        report.event(
                            EventType::Warning,
                            "Withdrawn",
                            "the task was deleted: its attempt failed on chain and the requester was refunded",
                        );
                    }
                    Settlement::Expire => {
                        let outcome = ctx.market.expire(ctx.settings.oracle, id).await?;
                        report.tx("expire".into(), &outcome);
                    }
                    _ => {}
                }
            }
            _ => {}
        }
    }
    let selector = format!("{LABEL_TASK}={}", task.name_any());
    pod_api(ctx, task)
        .delete_collection(&DeleteParams::default(), &ListParams::default().labels(&selector))
        .await?;
    let _ = Api::<ConfigMap>::namespaced(ctx.client.clone(), &task.namespace().unwrap_or_default())
        .delete(&config_map_name(task), &DeleteParams::default())
        .await;
    // The object goes away with the finalizer; its last status and Events say how it was released.
    report.write().await?;
    Ok(Action::await_change())
}
