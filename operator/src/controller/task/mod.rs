//! The DRLTask controller: drives each task from admission to settlement (docs/architecture.md#the-life-of-a-task).
//!
//! A reconcile is *observe, decide, act*, one step at a time:
//!
//! - `observe` reads the task's record on chain and the pods of its current attempt and turns
//!   them into the core's inputs ([`Observed`](drlaas_core::next_step::Observed));
//! - the core decides: [`next_step`] picks the one step to take, and the same observation gives the
//!   phase, the outcome and the conditions the status shows
//!   ([`TaskState`](drlaas_core::lifecycle::TaskState));
//! - `act` takes that step (one function per step), `settle` sends a settlement, `post` puts
//!   a new task on chain behind its write-ahead record, and `status` writes the status by
//!   server-side apply and records the Events.
//!
//! The chain is the source of truth for where a task is, so a restarted operator resumes from
//! whatever it finds: a transaction that landed before the crash shows on chain and is not sent
//! again. A settlement is judged by
//! [`settlement::next_action`](drlaas_core::settlement::next_action) against the chain state read
//! at the start of the reconcile; the contract refuses a transition from a stale state, so a race
//! with another actor ends in a revert and a fresh reconcile, never in a second payment.
//!
//! A finalizer keeps a task until it is settled or released on chain (`cleanup`): deleting an
//! unsettled task withdraws it with the requester's key (before assignment the whole escrow comes
//! back; after, the worker keeps a fee and loses neither stake nor reputation), and its pods go
//! with it.
//!
//! Reads of tasks, Workers and pods come from watch caches ([`super::cache`]), and recruitment
//! decides for every funded task in one pass ([`super::recruiter`]), so the work of one reconcile
//! does not grow with the number of tasks.

mod act;
mod cleanup;
mod observe;
mod post;
mod settle;
mod status;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use drlaas_crds::task::{DRLTask, TaskPhase};
use drlaas_crds::worker::Worker;
use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::jiff::Timestamp;
use kube::api::PostParams;
use kube::runtime::controller::{Action, Controller};
use kube::runtime::events::EventType;
use kube::runtime::finalizer::{Event as Finalizer, finalizer};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::watcher;
use kube::{Api, Resource, ResourceExt};

use self::observe::Observation;
use self::status::StatusWriter;
use super::{Context, Error, namespace_of};
use crate::pods::LABEL_TASK;
use drlaas_core::admission::{check_runnable, target_at_random, validate_task};
use drlaas_core::lifecycle::{PHASES, phase_name};
use drlaas_core::next_step::next_step;

pub use self::post::chain_task;

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
    let api: Api<DRLTask> = namespaced(&ctx, &task);
    finalizer(&api, FINALIZER, task, |event| async {
        match event {
            Finalizer::Apply(task) => apply(&task, &ctx).await,
            Finalizer::Cleanup(task) => cleanup::cleanup(&task, &ctx).await,
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
        let mut counts: BTreeMap<TaskPhase, i64> = BTreeMap::new();
        for task in caches.iter().flat_map(Store::state) {
            let phase = task.status.as_ref().and_then(|s| s.phase).unwrap_or(TaskPhase::Pending);
            *counts.entry(phase).or_default() += 1;
        }
        for phase in PHASES {
            let labels = crate::metrics::PhaseLabels {
                phase: phase_name(phase).into(),
            };
            ctx.health
                .metrics
                .tasks
                .get_or_create(&labels)
                .set(counts.get(&phase).copied().unwrap_or_default());
        }
    }
}

/// One step for a live task; what went wrong is also written to the status, so `kubectl describe`
/// shows why a task waits.
async fn apply(task: &DRLTask, ctx: &Context) -> Result<Action, Error> {
    let mut status = StatusWriter::new(task);
    let result = step(task, ctx, &mut status).await;
    if let Err(e) = &result {
        status.status.message = Some(e.to_string());
    }
    status.write(ctx).await?;
    result
}

async fn step(task: &DRLTask, ctx: &Context, status: &mut StatusWriter<'_>) -> Result<Action, Error> {
    if let Err(e) = validate_task(&task.spec) {
        if status.status.message.as_deref() != Some(e.to_string().as_str()) {
            status.event(EventType::Warning, "InvalidSpec", e.to_string());
        }
        return Ok(Action::await_change());
    }
    if let Err(e) = check_runnable(&task.spec, ctx.settings.pods.environments.image.is_some()) {
        if status.status.message.as_deref() != Some(e.to_string().as_str()) {
            status.event(EventType::Warning, "EnvironmentUnavailable", e.to_string());
        }
        return Ok(Action::await_change());
    }
    let id = match observe::bound_chain_task(task, ctx, status.status.chain_task_id) {
        Some(id) => id,
        // Posted, the task goes on in this reconcile: recruited and started without waiting for
        // another round (each round is a status write and a second of latency).
        None => {
            // The requester's to decide, so a warning rather than a refusal: said once, before the
            // escrow moves, with both numbers.
            if let Some(low) = target_at_random(&task.spec) {
                status.event(EventType::Warning, "TargetAtRandom", low.to_string());
            }
            post::post(task, ctx, status).await?
        }
    };
    status.status.chain_task_id = Some(id);
    let seen = observe::observe(task, ctx, id).await?;
    advance(task, ctx, status, &seen).await
}

/// Decides and takes the next step of a task observed as `seen`, and records what was observed.
async fn advance(
    task: &DRLTask,
    ctx: &Context,
    status: &mut StatusWriter<'_>,
    seen: &Observation,
) -> Result<Action, Error> {
    let shown = status.state().phase;
    status.observed(seen);
    if status.state().phase == TaskPhase::Training
        && shown != TaskPhase::Training
        && let Some(created) = seen.trainer_created
    {
        ctx.health
            .metrics
            .pod_launch_delay_seconds
            .observe(seconds_since(created));
    }
    act::act(task, ctx, status, seen, next_step(&seen.core())).await
}

/// The API of `K` in `task`'s namespace.
fn namespaced<K>(ctx: &Context, task: &DRLTask) -> Api<K>
where
    K: Resource<Scope = k8s_openapi::NamespaceResourceScope>,
    K::DynamicType: Default,
{
    Api::namespaced(ctx.client.clone(), &namespace_of(task))
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
    match namespaced::<K>(ctx, task).create(&PostParams::default(), &object).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(status)) if status.code == 409 => Ok(()),
        Err(e) => Err(e.into()),
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
