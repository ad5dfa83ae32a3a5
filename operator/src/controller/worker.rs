//! The Worker controller: mirrors each worker's on-chain record (registration, reputation, stake,
//! completed and failed tasks) and the trainer pods it runs into the Worker's status, so that
//! `kubectl get workers` shows the market as recruitment sees it.
//!
//! The chain changes without any cluster event, so every Worker is also re-read periodically
//! ([`RESYNC`]).
//!
//! It also keeps each worker's models current for recruitment's similarity term
//! ([`refresh_models`]): the environments of the tasks it completed (from their `TaskCompleted`
//! events, `TaskPosted` spec CIDs and task documents) and of the models it listed (from their
//! `ModelListed` events and the manifests in the models' headers). Both only grow, so each read
//! asks the chain only for the blocks after the last one, and what was read is kept in
//! [`Caches`](super::Caches).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use drlaas_chain::alloy::primitives::Address;
use drlaas_core::admission::WorkerHistory;
use drlaas_core::mirror::TaskDocument;
use drlaas_crds::worker::{Worker, WorkerStatus};
use drlaas_envs::descriptor::EnvDescriptor;
use drlaas_store::{ContentStore, Store, StoreError};
use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Patch, PatchParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::reflector::ObjectRef;
use kube::runtime::watcher;
use kube::{Api, ResourceExt};
use serde_json::json;

use super::cache::Source;
use super::chain_mirror::MAX_DOCUMENT_BYTES;
use super::conditions::condition;
use super::model_market::manifest_environment;
use super::{Context, Error, FIELD_MANAGER};
use crate::pods::{LABEL_ROLE, pod_worker};

/// The controller's name in metrics.
pub const CONTROLLER: &str = "worker";

/// How often a Worker is re-read from chain when nothing in the cluster changes.
pub const RESYNC: Duration = Duration::from_secs(30);

/// Reads of one model's environment (a task document, a model's header) that fail or time out
/// before it counts as unreadable.
pub const MAX_MODEL_READS: u32 = 3;
/// How long one read of the content store for a model's environment may take (an IPFS node waits
/// for a block nobody has until its own, much longer, timeout).
pub const MODEL_READ_TIMEOUT: Duration = Duration::from_secs(5);
/// Shortest time between two reads of one worker's models that a count or a listing asks for.
pub const MODELS_MIN_INTERVAL: Duration = Duration::from_secs(2);
/// Environments read from the content store at once.
const READS_AT_ONCE: usize = 8;

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
    if let Some(info) = &record {
        // Recruitment reads them from memory: kept current here, every other resync at the latest.
        let (needed, age) = ctx
            .caches
            .models_need_read(address, info.completed_tasks, MODELS_MIN_INTERVAL);
        if (needed || age.is_none_or(|age| age >= RESYNC / 2))
            && let Err(e) = refresh_models(&ctx, address).await
        {
            tracing::warn!(worker = %name, kind = e.kind(), error = %e, "the worker's models were not read");
        }
    }

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

/// Reads what is new about the models of the worker at `address` and records it in the caches:
/// its `TaskCompleted` and `ModelListed` events after the last block read (up to the head less the
/// confirmations), the spec CIDs of the new tasks, then the environment of each new task (its
/// document) and listing (its model's manifest) from the content store, with a timeout each. One
/// that cannot be read now is tried again at the next refresh, [`MAX_MODEL_READS`] times in all;
/// one that is not drlaas's counts for nothing. Returns the worker's models.
pub async fn refresh_models(ctx: &Context, address: Address) -> Result<Arc<Vec<EnvDescriptor>>, Error> {
    let known = ctx.caches.worker_models(address);
    let head = ctx
        .market
        .block_number()
        .await?
        .saturating_sub(ctx.settings.confirmations);
    let from = known.through_block.map_or(0, |b| b + 1);
    let activity = ctx.market.worker_activity(address, from, head).await?;

    let mut history = WorkerHistory::default();
    let mut to_read = known.unread.clone();
    let new_tasks: Vec<u64> = activity
        .completed
        .iter()
        .map(|(id, _)| *id)
        .filter(|id| !known.knows(Source::Task(*id)))
        .collect();
    if !new_tasks.is_empty() {
        let cids = ctx.market.task_spec_cids(&new_tasks).await?;
        for id in new_tasks {
            match cids.get(&id) {
                Some(cid) => {
                    to_read.insert(Source::Task(id), (cid.clone(), 0));
                }
                None => {
                    history.completed.insert(id, None);
                }
            }
        }
    }
    for listed in activity.listed {
        if !known.knows(Source::Listing(listed.id)) {
            to_read.insert(Source::Listing(listed.id), (listed.model_cid, 0));
        }
    }

    let reads: Vec<_> = futures::stream::iter(to_read)
        .map(|(source, (cid, tries))| async move {
            let read = tokio::time::timeout(MODEL_READ_TIMEOUT, model_environment(&ctx.store, source, &cid))
                .await
                .unwrap_or_else(|_| Err(Unread::NotNow("the content store did not answer in time".into())));
            (source, cid, tries, read)
        })
        .buffer_unordered(READS_AT_ONCE)
        .collect()
        .await;
    let mut unread = BTreeMap::new();
    for (source, cid, tries, read) in reads {
        let environment = match read {
            Ok(environment) => Some(environment),
            Err(Unread::NotNow(reason)) if tries + 1 < MAX_MODEL_READS => {
                tracing::debug!(worker = %address, ?source, %reason, "a model's environment is read again later");
                unread.insert(source, (cid, tries + 1));
                continue;
            }
            Err(Unread::Never(reason) | Unread::NotNow(reason)) => {
                tracing::info!(worker = %address, ?source, %reason, "a model's environment cannot be read: it does not count");
                None
            }
        };
        match source {
            Source::Task(id) => history.completed.insert(id, environment),
            Source::Listing(id) => history.listed.insert(id, environment),
        };
    }
    Ok(ctx.caches.models_read(address, history, head, unread))
}

/// Why a model's environment was not read.
enum Unread {
    /// It may be readable later (the store failed or was slow).
    NotNow(String),
    /// It never will be (not a drlaas document, no such content).
    Never(String),
}

/// The environment of a completed task (its document under `cid`) or of a listed model (the
/// manifest in the header of the model under `cid`).
async fn model_environment(store: &Store, source: Source, cid: &str) -> Result<EnvDescriptor, Unread> {
    match source {
        // The header is small and a model's manifest either parses or not: any failure may be the
        // store's, so it is tried again.
        Source::Listing(_) => manifest_environment(store, cid).await.map_err(Unread::NotNow),
        Source::Task(_) => {
            let parsed = drlaas_store::cid::parse(cid).map_err(|e| Unread::Never(format!("{cid}: {e}")))?;
            let mut chunks = store.get(&parsed);
            let mut bytes = Vec::new();
            while let Some(chunk) = chunks.next().await {
                match chunk {
                    Ok(chunk) => bytes.extend_from_slice(&chunk),
                    Err(
                        e @ (StoreError::NotFound { .. }
                        | StoreError::InvalidCid { .. }
                        | StoreError::Unsupported { .. }
                        | StoreError::Malformed { .. }),
                    ) => return Err(Unread::Never(format!("{cid}: {e}"))),
                    Err(e) => return Err(Unread::NotNow(format!("{cid}: {e}"))),
                }
                if bytes.len() > MAX_DOCUMENT_BYTES {
                    return Err(Unread::Never(format!("{cid} is larger than a task document")));
                }
            }
            let text = std::str::from_utf8(&bytes).map_err(|_| Unread::Never(format!("{cid} is not UTF-8 text")))?;
            TaskDocument::parse(text)
                .map(|document| document.spec.training.environment)
                .map_err(|e| Unread::Never(format!("{cid} is not a task document: {e}")))
        }
    }
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
