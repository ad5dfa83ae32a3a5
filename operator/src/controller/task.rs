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
//! withdraws it with the requester's key (before assignment the whole escrow comes back; after, the
//! worker keeps a fee and loses neither stake nor reputation), and its pods go with it.
//!
//! Reads of tasks, Workers and pods come from watch caches ([`super::cache`]), and recruitment
//! decides for every funded task in one pass ([`super::recruiter`]), so the work of one reconcile
//! does not grow with the number of tasks.

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

use super::conditions::condition;
use super::model_market::buy_warm_start;
use super::recruiter::Choice;
use super::secrets::{market_as, requester_wallet, signer};
use super::{Context, Error, FIELD_MANAGER};
use crate::core::admission::{paid_target_milli, parse_wei, validate_task};
use crate::core::lifecycle::{Outcome, TaskState};
use crate::core::mirror::{ANNOTATION_REQUESTER, LABEL_CHAIN_ID, LABEL_CHAIN_TASK, LABEL_SPEC_CID, TaskDocument};
use crate::core::next_step::{ChainTask, Observed, PodState, Step, next_step, phase};
use crate::core::reports::trained_model;
use crate::core::settlement::{Action as Settlement, ChainView, Intent, next_action};
use crate::core::verification::{self, Verdict, evaluation_seed};
use crate::pods::{
    LABEL_TASK, config_map_name, evaluator_pod, evaluator_pod_name, task_config_map, task_label, trainer_pod,
    trainer_pod_name,
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
        // A worker registering or freeing capacity may be what funded tasks wait for. Only those:
        // a task still being posted is driven by its own events, and waking it from a cache that
        // lags its own writes would only repeat work the API server then refuses.
        .watches(
            Api::<Worker>::all(ctx.client.clone()),
            watcher::Config::default(),
            move |_| {
                waiting
                    .state()
                    .into_iter()
                    .filter(|t| t.status.as_ref().and_then(|s| s.phase) == Some(TaskPhase::Funded))
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
        // A phase change is an Event of its own only when the reconcile said nothing more specific
        // (`Posted`, `WorkerAssigned`, ...): every Event is a request to the API server.
        if previous.phase != Some(phase) && self.events.is_empty() {
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
        let uid = self.task.uid().unwrap_or_default();
        if self.status != previous && !self.ctx.caches.already_applied(&uid, &self.status) {
            let patch = json!({"apiVersion": "drlaas.io/v1alpha1", "kind": "DRLTask", "status": self.status});
            task_api(self.ctx, self.task)
                .patch_status(
                    &self.task.name_any(),
                    &PatchParams::apply(FIELD_MANAGER).force(),
                    &Patch::Apply(&patch),
                )
                .await?;
            self.ctx.caches.applied(&uid, Some(&self.status));
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
    let chain_id = match report
        .status
        .chain_task_id
        .or(task.spec.chain_task_id)
        .or_else(|| labelled_chain_task(task, ctx))
    {
        Some(id) => id,
        // Posted, the task goes on in this reconcile: recruited and started without waiting for
        // another round (each round is a status write and a second of latency).
        None => post(task, ctx, report).await?,
    };
    report.status.chain_task_id = Some(chain_id);
    drive(task, ctx, report, chain_id).await
}

/// The chain task a task this operator posted is labelled with: its status may have been lost (a
/// failed write, a restore from backup) after the post landed.
fn labelled_chain_task(task: &DRLTask, ctx: &Context) -> Option<u64> {
    task.labels()
        .get(LABEL_CHAIN_TASK)
        .and_then(|id| id.parse::<u64>().ok())
        .filter(|_| task.labels().get(LABEL_CHAIN_ID) == Some(&ctx.market.deployment().chain_id.to_string()))
}

/// Posts a Kubernetes task on chain from its requester's wallet, exactly once.
///
/// Before sending, the task is labelled with its document's CID and annotated with the requester
/// and the current block: if the operator dies before it records the receipt, the next reconcile
/// finds the task it posted instead of posting (and paying) again, and the chain watcher never
/// mirrors it.
async fn post(task: &DRLTask, ctx: &Context, report: &mut Report<'_>) -> Result<u64, Error> {
    let payment = task.spec.payment.as_ref().ok_or(Error::Invalid {
        field: "spec.payment",
        message: "a task without spec.chainTaskId needs spec.payment".into(),
    })?;
    let budget = parse_wei(&payment.amount_wei).map_err(|message| Error::Invalid {
        field: "spec.payment.amountWei",
        message,
    })?;
    let (wallet, requester) = requester_wallet(ctx, task, payment).await?;

    let stored = ctx.store.put_bytes(task_document(task).into()).await?;
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
            // Written only onto the version of the task this reconcile read: a reconcile that runs
            // on a cached copy older than an earlier post's record would post a second time, so a
            // stale copy gets a 409 here and the reconcile runs again on a current one.
            let metadata = json!({"metadata": {
                "resourceVersion": task.metadata.resource_version,
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
    Ok(id)
}

/// The document `task` is posted with (stored under the `specCid` it posts): its spec without
/// `payment` or `chainTaskId`, and its UID, which makes the document its own (see
/// [`TaskDocument`]).
pub fn task_document(task: &DRLTask) -> Vec<u8> {
    TaskDocument::new(&task.spec, task.metadata.uid.as_deref()).to_bytes()
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
    let chain = ctx.market.deployment().chain_id.to_string();
    let id = id.to_string();
    let tasks = ctx.caches.tasks(&ctx.client, &ctx.settings.scope).await?;
    Ok(tasks.iter().any(|t| {
        t.uid() != this.uid()
            && t.labels().get(LABEL_CHAIN_ID) == Some(&chain)
            && t.labels().get(LABEL_CHAIN_TASK) == Some(&id)
    }))
}

/// The state of the pod `name` of `task`.
async fn pod_state(ctx: &Context, task: &DRLTask, name: &str) -> Result<(PodState, Option<Arc<Pod>>), Error> {
    let namespace = task.namespace().unwrap_or_else(|| "default".into());
    let Some(pod) = ctx.caches.pod(&ctx.client, &namespace, name).await? else {
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
    let workers = ctx.caches.workers(&ctx.client).await?;
    Ok(workers
        .iter()
        .find(|w| w.spec.address.parse::<Address>().ok() == Some(address))
        .map(|w| Worker::clone(w)))
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
            start_trainer(task, ctx, report, &info, &worker, attempt).await
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
        TaskStatus::Cancelled => {
            "settled: withdrawn by the requester, the escrow refunded (less the worker's fee if one was assigned)"
                .into()
        }
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
    let mut workers = ctx.caches.workers(&ctx.client).await?;
    workers.sort_by_key(|w| w.name_any());
    Ok(workers
        .into_iter()
        .find(|w| {
            Some(w.name_any()) != trainer.map(|t| t.name_any()) && w.status.as_ref().is_some_and(|s| s.registered)
        })
        .map(|w| Worker::clone(&w)))
}

/// A task deleted after its post was sent but before the post was recorded (the operator died in
/// between) still has escrow on chain: its write-ahead record (the document's CID and the block
/// before the post) finds the post, and the requester's wallet withdraws it.
async fn withdraw_unrecorded_posts(task: &DRLTask, ctx: &Context, report: &mut Report<'_>) -> Result<(), Error> {
    let (Some(payment), Some(spec_cid), Some(from)) = (
        &task.spec.payment,
        task.labels().get(LABEL_SPEC_CID),
        task.annotations()
            .get(ANNOTATION_POSTED_AFTER_BLOCK)
            .and_then(|b| b.parse::<u64>().ok()),
    ) else {
        return Ok(());
    };
    let (wallet, requester) = match requester_wallet(ctx, task, payment).await {
        Ok(wallet) => wallet,
        Err(Error::Secret { message, .. }) => {
            report.event(
                EventType::Warning,
                "Released",
                format!(
                    "a post of document {spec_cid} may be on chain without a record, and the wallet Secret {message}: \
                     its requester can find it with `drlaas task list` and withdraw it with `drlaas task cancel`"
                ),
            );
            return Ok(());
        }
        Err(e) => return Err(e),
    };
    for id in ctx.market.tasks_posted_by(requester, spec_cid, from).await? {
        if ctx.market.task(id).await?.status == TaskStatus::Posted {
            let outcome = timed(ctx, "withdraw", wallet.withdraw_task(requester, id)).await?;
            report.tx(format!("withdraw-{id}"), &outcome);
            report.event(
                EventType::Normal,
                "Withdrawn",
                format!("task {id}, posted but not yet recorded when the task was deleted, is withdrawn; the escrow is refunded"),
            );
        }
    }
    Ok(())
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
/// Recruitment is greedy over every funded task (see [`Recruiter`](super::Recruiter)): the decision for this task is
/// the one the whole market gets, so a richer task waiting elsewhere is served first, and one pass
/// decides for every task waiting at that moment.
async fn recruit(task: &DRLTask, ctx: &Context, report: &mut Report<'_>, info: &TaskInfo) -> Result<Action, Error> {
    let budget = u128::try_from(info.budget).unwrap_or(u128::MAX);
    let (worker_name, qos) = match ctx.recruiter.choose(ctx, task, budget).await? {
        Choice::Assign { worker, qos } => (worker, qos),
        Choice::Wait(why) => {
            report.status.message = Some(format!("waiting for a worker: {why}"));
            return Ok(Action::requeue(Duration::from_secs(30)));
        }
    };
    let assigned = assign_worker(task, ctx, info, &worker_name).await;
    let (outcome, worker) = match assigned {
        Ok(assigned) => assigned,
        Err(e) => {
            ctx.recruiter.release(task).await;
            return Err(e);
        }
    };
    let attempt = info.attempts + 1;
    report.tx(format!("assign-{attempt}"), &outcome);
    report.status.worker = Some(worker_name.clone());
    report.status.attempts = u32::from(attempt);
    // The chain says Assigned now: the status says so at once, so the next pass counts the worker.
    report.status.phase = Some(TaskPhase::Assigned);
    report.event(
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
    start_trainer(task, ctx, report, info, &worker, u32::from(attempt)).await
}

/// Starts attempt `attempt` of `task` on `worker`: the warm start chosen (bought once, for
/// `warmStart: auto`), the spec's ConfigMap and the trainer pod. Creating either again is harmless.
async fn start_trainer(
    task: &DRLTask,
    ctx: &Context,
    report: &mut Report<'_>,
    info: &TaskInfo,
    worker: &Worker,
    attempt: u32,
) -> Result<Action, Error> {
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
    let pod = trainer_pod(task, worker, attempt, warm_start.as_deref(), None, &ctx.settings.pods);
    create_owned(ctx, task, pod).await?;
    report.status.message = Some(format!(
        "attempt {attempt}: trainer {} started on {}",
        trainer_pod_name(task, attempt),
        worker.name_any()
    ));
    Ok(Action::requeue(POLL))
}

/// Records `worker_name` as the worker of chain task `info` (the oracle's `assign`); the Worker.
async fn assign_worker(
    task: &DRLTask,
    ctx: &Context,
    info: &TaskInfo,
    worker_name: &str,
) -> Result<(drlaas_chain::TxOutcome, Worker), Error> {
    let workers = ctx.caches.workers(&ctx.client).await?;
    let worker = workers
        .iter()
        .find(|w| w.name_any() == worker_name)
        .ok_or_else(|| Error::Invalid {
            field: "status.worker",
            message: format!("recruitment chose Worker {worker_name}, which is gone"),
        })?;
    let address: Address = worker.spec.address.parse().map_err(|e| Error::Invalid {
        field: "spec.address",
        message: format!("Worker {worker_name}: {e}"),
    })?;
    tracing::debug!(task = %task.name_any(), worker = worker_name, "assigning");
    let outcome = timed(ctx, "assign", ctx.market.assign(ctx.settings.oracle, info.id, address)).await?;
    Ok((outcome, Worker::clone(worker)))
}

/// Releases a deleted task on chain, so no escrow stays locked behind an object that no longer
/// exists, and never at the cost of a worker that did nothing wrong:
///
/// - Posted or Assigned, from a Kubernetes wallet: the requester withdraws it (`TMC.withdrawTask`):
///   before assignment the whole budget comes back; after, the worker is released with its stake
///   and reputation untouched and keeps a fee of 10 % of its price for the compute it started.
/// - Submitted: the result is already public, so it is verified and settled as if the task had
///   not been deleted (the worker is paid or failed on its merits); then the object goes.
/// - A task mirrored from chain, or one whose wallet Secret is gone: released without a
///   transaction, with a Warning that says how the requester gets the escrow back (`drlaas task
///   cancel`, or `expire` after the deadline: escrow is never stuck).
///
/// Its pods are owned by the task, so the garbage collector removes them; they are also deleted
/// here, best effort, so a trainer stops at once. Nothing here can hold the finalizer forever: only
/// a chain or API server that cannot be reached does, until it can.
async fn cleanup(task: &DRLTask, ctx: &Context) -> Result<Action, Error> {
    let mut report = Report::new(task, ctx);
    let id = report
        .status
        .chain_task_id
        .or(task.spec.chain_task_id)
        .or_else(|| labelled_chain_task(task, ctx));
    if let Some(id) = id {
        let info = ctx.market.task(id).await?;
        let now = ctx.market.block(None).await?.timestamp;
        let open = matches!(info.status, TaskStatus::Posted | TaskStatus::Assigned);
        match (info.status, &task.spec.payment) {
            // Past its deadline nobody can withdraw it any more; expiring refunds the requester.
            _ if open && now > info.deadline => {
                let outcome = timed(ctx, "expire", ctx.market.expire(ctx.settings.oracle, id)).await?;
                report.tx("expire".into(), &outcome);
                report.event(
                    EventType::Warning,
                    "Expired",
                    format!("task {id} passed its deadline before it was deleted: expired, the escrow is refunded"),
                );
            }
            (TaskStatus::Submitted, _) => {
                // Verified and settled first; the finalizer stays until the chain says how it ended.
                report.status.chain_task_id = Some(id);
                let action = drive(task, ctx, &mut report, id).await;
                if let Err(e) = &action {
                    report.status.message = Some(e.to_string());
                }
                report.write().await?;
                return action;
            }
            (TaskStatus::Posted | TaskStatus::Assigned, Some(payment)) => {
                match requester_wallet(ctx, task, payment).await {
                    Ok((wallet, requester)) => {
                        let outcome = timed(ctx, "withdraw", wallet.withdraw_task(requester, id)).await?;
                        report.tx("withdraw".into(), &outcome);
                        let note = if info.status == TaskStatus::Posted {
                            format!("task {id} withdrawn on chain before assignment; the whole escrow is refunded")
                        } else {
                            format!(
                                "task {id} withdrawn on chain: {} keeps a withdrawal fee, the rest of the escrow is \
                                 refunded; the worker's stake and reputation are untouched",
                                info.worker
                            )
                        };
                        report.event(EventType::Normal, "Withdrawn", note);
                    }
                    Err(Error::Secret { message, .. }) => report.event(
                        EventType::Warning,
                        "Released",
                        format!(
                            "task {id} is released without a withdrawal: its wallet Secret {message}; the \
                             requester can withdraw it with `drlaas task cancel {id}`, and anyone can expire it \
                             after its deadline (the escrow is refunded either way)"
                        ),
                    ),
                    Err(e) => return Err(e),
                }
            }
            (TaskStatus::Posted | TaskStatus::Assigned, None) => report.event(
                EventType::Warning,
                "Released",
                format!(
                    "task {id} was posted on chain by its requester, who can withdraw it (`drlaas task cancel \
                     {id}`); this cluster no longer drives it"
                ),
            ),
            _ => {}
        }
    }
    if id.is_none() {
        withdraw_unrecorded_posts(task, ctx, &mut report).await?;
    }
    let selector = format!("{LABEL_TASK}={}", task_label(task));
    let pods = pod_api(ctx, task)
        .delete_collection(&DeleteParams::default(), &ListParams::default().labels(&selector))
        .await;
    if let Err(e) = pods {
        // The garbage collector removes them with the task anyway: a failure here must not keep it.
        tracing::warn!(task = %task.name_any(), error = %e, "could not delete the task's pods; the garbage collector will");
    }
    let _ = Api::<ConfigMap>::namespaced(ctx.client.clone(), &task.namespace().unwrap_or_default())
        .delete(&config_map_name(task), &DeleteParams::default())
        .await;
    // The object goes away with the finalizer; its last status and Events say how it was released.
    let uid = task.uid().unwrap_or_default();
    report.write().await?;
    ctx.caches.applied(&uid, None);
    Ok(Action::await_change())
}
