//! The Worker controller: mirrors each worker's on-chain record (registration, reputation, stake,
//! completed and failed tasks) and the trainer pods it runs into the Worker's status, so that
//! `kubectl get workers` shows the market as recruitment sees it.
//!
//! The chain changes without any cluster event, so every Worker is also re-read periodically
//! ([`RESYNC`]).

use std::sync::Arc;
use std::time::Duration;

use drlaas_chain::alloy::primitives::Address;
use drlaas_crds::worker::{Worker, WorkerStatus};
use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Patch, PatchParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::reflector::ObjectRef;
use kube::runtime::watcher;
use kube::{Api, ResourceExt};
use serde_json::json;

use super::conditions::condition;
use super::{Context, Error, FIELD_MANAGER};
use crate::pods::{LABEL_ROLE, pod_worker};

/// The controller's name in metrics.
pub const CONTROLLER: &str = "worker";

/// How often a Worker is re-read from chain when nothing in the cluster changes.
pub const RESYNC: Duration = Duration::from_secs(30);

/// Brings one Worker's status up to date.
pub async fn reconcile(worker: Arc<Worker>, ctx: Arc<Context>) -> Result<Action, Error> {
    let _timer = ctx.health.metrics.reconcile(CONTROLLER);
    let name = worker.name_any();
    let address: Address = worker.spec.address.parse().map_err(|e| Error::Invalid {
        field: "spec.address",
        message: format!("{:?} is not an account address: {e}", worker.spec.address),
    })?;
    let record = ctx.market.worker(address).await?;
    let active_tasks = active_trainers(&ctx, &name).await?;

    let previous = worker
        .status
        .as_ref()
        .map(|s| s.conditions.as_slice())
        .unwrap_or_default();
    let generation = worker.metadata.generation;
    let now = Timestamp::now();
    let registered = condition(
        previous,
        "Registered",
        record.is_some(),
        if record.is_some() {
            "Registered"
        } else {
            "NotRegistered"
        },
        match &record {
            Some(_) => format!("{address} is registered in UMC"),
            None => format!("{address} has no UMC registration: register it with a stake before it can be recruited"),
        },
        generation,
        now,
    );
    let status = match &record {
        Some(info) => WorkerStatus {
            registered: true,
            reputation: Some(info.reputation.as_f64()),
            stake_wei: Some(info.stake.to_string()),
            active_tasks,
            completed_tasks: info.completed_tasks,
            failed_tasks: info.failed_tasks,
            conditions: vec![registered],
        },
        None => WorkerStatus {
            active_tasks,
            conditions: vec![registered],
            ..WorkerStatus::default()
        },
    };
    // Each trainer pod that starts or ends wakes this reconcile: write only what changed.
    if worker.status.as_ref() != Some(&status) {
        let patch = json!({"apiVersion": "drlaas.io/v1alpha1", "kind": "Worker", "status": status});
        Api::<Worker>::all(ctx.client.clone())
            .patch_status(&name, &PatchParams::apply(FIELD_MANAGER).force(), &Patch::Apply(&patch))
            .await?;
    }
    Ok(Action::requeue(RESYNC))
}

/// Retry soon after a failure; the chain or the API server may be back by then.
pub fn error_policy(worker: Arc<Worker>, error: &Error, ctx: Arc<Context>) -> Action {
    ctx.health.metrics.reconcile_failed(CONTROLLER, error.kind());
    tracing::warn!(worker = %worker.name_any(), kind = error.kind(), %error, "reconcile failed");
    Action::requeue(Duration::from_secs(10))
}

/// Trainer pods of this worker that are pending or running (in the namespaces the operator watches:
/// its trainer pods live beside their tasks), from the watch cache.
async fn active_trainers(ctx: &Context, worker: &str) -> Result<u32, Error> {
    let pods = ctx.caches.pods(&ctx.client, &ctx.settings.scope).await?;
    let active = pods
        .iter()
        .filter(|p| p.labels().get(LABEL_ROLE).map(String::as_str) == Some("trainer") && pod_worker(p) == Some(worker))
        .filter(|p| {
            let phase = p.status.as_ref().and_then(|s| s.phase.as_deref());
            matches!(phase, None | Some("Pending") | Some("Running"))
        })
        .count();
    Ok(u32::try_from(active).unwrap_or(u32::MAX))
}

/// Runs the Worker controller until the stream ends (shutdown).
pub async fn run(ctx: Arc<Context>) {
    let workers = Api::<Worker>::all(ctx.client.clone());
    let trainers = watcher::Config::default().labels(&format!("{LABEL_ROLE}=trainer"));
    // A trainer pod starting or ending changes its worker's free capacity: one watch of trainer pods
    // in every namespace, or one per watched namespace.
    let mut controller = Controller::new(workers, watcher::Config::default());
    for pods in ctx.settings.scope.apis::<Pod>(&ctx.client) {
        controller = controller.watches(pods, trainers.clone(), worker_of);
    }
    // Trainer pods come and go in bursts (a recruitment pass starts many at once): a Worker's status
    // is written once per burst, not once per pod.
    controller
        .with_config(kube::runtime::controller::Config::default().debounce(Duration::from_secs(1)))
        .shutdown_on_signal()
        .run(reconcile, error_policy, ctx)
        .for_each(|result| async move {
            if let Err(e) = result {
                tracing::debug!(error = %e, "worker controller event");
            }
        })
        .await;
}

/// The Worker a trainer pod runs for.
fn worker_of(pod: Pod) -> Option<ObjectRef<Worker>> {
    pod_worker(&pod).map(ObjectRef::new)
}
