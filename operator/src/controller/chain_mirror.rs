//! The chain mirror (docs/architecture.md#tasks-posted-on-chain): every `TaskPosted` event, once it has enough confirmations,
//! becomes a `DRLTask` in the operator's namespace, so a task posted straight on chain is recruited,
//! trained and settled like one applied with `kubectl`.
//!
//! Events come from an [`EventStream`] whose cursor is a ConfigMap ([`ConfigMapCursor`]); an event is
//! acknowledged only once [`admit`] has handled it, so a crash replays at most the event in hand, and
//! [`admit`] is idempotent (keyed by chain id + task id) so the replay is harmless.
//!
//! A task is not mirrored when its document is missing, too large or disagrees with its escrow: a
//! worker must never train towards a target the escrow does not pay for. Such a refusal is logged,
//! counted and recorded as a Kubernetes Event; the escrow stays on chain, where the requester can
//! cancel the task to get it back.

use std::sync::Arc;
use std::time::Duration;

use drlaas_chain::bindings::TMC;
use drlaas_chain::{ChainEvent, EventPosition, EventStream, MarketEvent, StreamConfig};
use drlaas_crds::task::{DRLTask, TaskKind};
use drlaas_store::{ContentStore, StoreError};
use futures::StreamExt;
use k8s_openapi::api::core::v1::ObjectReference;
use kube::api::{ListParams, ObjectMeta, PostParams};
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::{Api, ResourceExt};

use super::cursor::{CURSOR_CONFIGMAP, ConfigMapCursor};
use super::model_mirror::mirror_listing;
use super::{Context, Error, FIELD_MANAGER};
use drlaas_core::mirror::{
    ANNOTATION_REQUESTER, LABEL_CHAIN_ID, LABEL_CHAIN_TASK, LABEL_SPEC_CID, PostedTask, mirror_name, mirrored_task,
};

/// The watcher's name in metrics and as the reporting controller of its Events.
pub const CONTROLLER: &str = "chain-mirror";

/// Largest task document fetched: a spec is a few hundred bytes, and the document comes from
/// whoever posted the task, so its size must not be theirs to choose.
pub const MAX_DOCUMENT_BYTES: usize = 64 * 1024;

/// The reason of the Warning Event recorded when a chain task is not mirrored.
pub const REASON_REFUSED: &str = "ChainTaskRefused";

/// Fetches of one document that time out before the task is refused. An IPFS node waits for a
/// block nobody has until its timeout, so without a bound one task posted with a CID that exists
/// nowhere would hold back every task posted after it.
pub const MAX_DOCUMENT_TIMEOUTS: u32 = 5;

/// First and longest pause before the stream is reopened after an error.
const BACKOFF: (Duration, Duration) = (Duration::from_secs(1), Duration::from_secs(60));

/// What [`admit`] did with one event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Admission {
    /// A `DRLTask` of this name was created in the operator's namespace.
    Created(String),
    /// A `DRLTask` of this name already stands for the task (a replayed event, or a task the
    /// operator posted from Kubernetes, which is labelled once its post is confirmed).
    AlreadyMirrored(String),
    /// The `DRLTask` of this name, posted from Kubernetes, is this task with its receipt not yet
    /// recorded: it binds itself, and a mirror would be a second object for one escrow.
    OwnedByKubernetesTask(String),
    /// A model-market event: the listing's `DRLModel` of this name was brought up to date.
    ModelMirrored(String),
    /// The task was not mirrored; the reason says why and that the escrow stays on chain.
    Refused {
        /// The on-chain task id.
        task_id: u64,
        /// Why, for the log, the Event and the requester.
        reason: String,
    },
    /// Not a `TaskPosted` event: nothing to admit.
    Ignored,
}

impl Admission {
    /// The outcome's label in metrics (`created`, `already_mirrored`, ...).
    pub fn outcome(&self) -> &'static str {
        match self {
            Admission::Created(_) => "created",
            Admission::AlreadyMirrored(_) => "already_mirrored",
            Admission::OwnedByKubernetesTask(_) => "owned_by_kubernetes_task",
            Admission::Refused { .. } => "refused",
            Admission::ModelMirrored(_) => "model_mirrored",
            Admission::Ignored => "ignored",
        }
    }
}

/// Mirrors tasks posted on chain until the process stops. Every error (chain, API server, content
/// store) is logged and counted, and the stream is reopened from the persisted cursor after a
/// backoff, so the watcher resumes exactly after the last event it handled.
pub async fn run(ctx: Arc<Context>) {
    let mut backoff = BACKOFF.0;
    let mut timeouts: Option<(EventPosition, u32)> = None;
    loop {
        let error = watch(&ctx, &mut backoff, &mut timeouts).await;
        ctx.health.metrics.reconcile_failed(CONTROLLER, error.kind());
        tracing::warn!(kind = error.kind(), %error, retry_in = ?backoff, "chain watcher failed; reopening the event stream");
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(BACKOFF.1);
    }
}

/// Reads, admits and acknowledges events until something fails; returns the failure.
async fn watch(ctx: &Context, backoff: &mut Duration, timeouts: &mut Option<(EventPosition, u32)>) -> Error {
    let config = StreamConfig {
        confirmations: ctx.settings.confirmations,
        ..StreamConfig::default()
    };
    let cursor = ConfigMapCursor::new(ctx.client.clone(), &ctx.settings.namespace);
    let opened = EventStream::open(ctx.market.provider().clone(), *ctx.market.deployment(), config, cursor).await;
    let mut stream = match opened {
        Ok(stream) => stream,
        Err(e) => return e.into(),
    };
    tracing::info!(cursor = ?stream.cursor(), "chain watcher started");
    loop {
        let event = loop {
            let next = stream.try_next().await;
            if let Some(head) = stream.head() {
                ctx.health
                    .metrics
                    .chain_head_block
                    .set(i64::try_from(head).unwrap_or(i64::MAX));
            }
            match next {
                Ok(Some(event)) => break event,
                Ok(None) => {
                    // Caught up: every event through the scanned block is handled, so the lag
                    // (head − acked) is the confirmations and nothing more on a quiet chain.
                    if let Some(through) = stream.cursor().scanned_through {
                        ctx.health
                            .metrics
                            .chain_acked_block
                            .set(i64::try_from(through).unwrap_or(i64::MAX));
                    }
                    tokio::time::sleep(config.poll_interval).await
                }
                Err(e) => return e.into(),
            }
        };
        let admission = match admit(ctx, &event).await {
            Ok(admission) => admission,
            Err(Error::Store(e)) if matches!(e, StoreError::Timeout { .. }) => {
                match give_up_after_timeouts(ctx, &event, timeouts).await {
                    Some(refused) => refused,
                    None => return Error::Store(e),
                }
            }
            Err(e) => return e,
        };
        if admission != Admission::Ignored {
            tracing::info!(position = %event.position, outcome = admission.outcome(), ?admission, "chain task handled");
        }
        // Acknowledged only now: a crash before this line replays the event, and admit is idempotent.
        // A new mirror or a refusal is persisted at once; the many events that change nothing here
        // (the operator's own posts, assignments, payments) move the stored cursor once per batch.
        let acked = match admission {
            Admission::Created(_) | Admission::Refused { .. } => stream.ack(&event).await,
            _ => stream.ack_deferred(&event).await,
        };
        if let Err(e) = acked {
            return e.into();
        }
        ctx.health
            .metrics
            .chain_acked_block
            .set(i64::try_from(event.position.block).unwrap_or(i64::MAX));
        *backoff = BACKOFF.0;
        *timeouts = None;
    }
}

/// Counts a timed-out document fetch of `event`; after [`MAX_DOCUMENT_TIMEOUTS`] in a row the task is
/// refused (and the caller acknowledges it), otherwise `None` and the event is retried.
async fn give_up_after_timeouts(
    ctx: &Context,
    event: &ChainEvent,
    timeouts: &mut Option<(EventPosition, u32)>,
) -> Option<Admission> {
    let count = match timeouts {
        Some((position, n)) if *position == event.position => *n + 1,
        _ => 1,
    };
    *timeouts = Some((event.position, count));
    let MarketEvent::Tmc(TMC::TMCEvents::TaskPosted(posted)) = &event.event else {
        return None;
    };
    if count < MAX_DOCUMENT_TIMEOUTS {
        return None;
    }
    let why = format!(
        "its document {} could not be fetched from the content store ({count} attempts timed out)",
        posted.specCid
    );
    let refused = refuse(ctx, task_id(posted), why).await;
    ctx.health.metrics.chain_task(refused.outcome());
    Some(refused)
}

/// Handles one event: a `TaskPosted` becomes a `DRLTask` unless it already has one, belongs to a
/// Kubernetes task whose post is in flight, or is refused; a model-market event refreshes its
/// listing's `DRLModel`; every other event is ignored.
///
/// An `Err` is worth retrying (the API server, the chain or the content store failed); a verdict
/// about the task itself is an `Ok`, so the caller can acknowledge it and move on.
pub async fn admit(ctx: &Context, event: &ChainEvent) -> Result<Admission, Error> {
    if let Some(listing) = listing_changed(&event.event) {
        return Ok(Admission::ModelMirrored(mirror_listing(ctx, listing).await?));
    }
    let MarketEvent::Tmc(TMC::TMCEvents::TaskPosted(posted)) = &event.event else {
        return Ok(Admission::Ignored);
    };
    let _timer = ctx.health.metrics.reconcile(CONTROLLER);
    let admission = admit_posted(ctx, posted).await?;
    ctx.health.metrics.chain_task(admission.outcome());
    Ok(admission)
}

/// The listing an MMC event changed, if it is one.
fn listing_changed(event: &MarketEvent) -> Option<u64> {
    use drlaas_chain::bindings::MMC::MMCEvents;
    let MarketEvent::Mmc(event) = event else {
        return None;
    };
    let id = match event {
        MMCEvents::ModelListed(e) => e.listingId,
        MMCEvents::ModelDelisted(e) => e.listingId,
        MMCEvents::PriceChanged(e) => e.listingId,
        MMCEvents::ModelPurchased(e) => e.listingId,
        MMCEvents::ModelRated(e) => e.listingId,
        _ => return None,
    };
    u64::try_from(id).ok()
}

async fn admit_posted(ctx: &Context, posted: &TMC::TaskPosted) -> Result<Admission, Error> {
    let chain_id = ctx.market.deployment().chain_id;
    let id = task_id(posted);
    // The tasks the operator sees (the namespaces it watches): its mirrors, and the tasks it posts.
    let scope = &ctx.settings.scope;

    // The same task seen before: a replayed event, or a Kubernetes task bound by its post receipt.
    // Most events are the operator's own posts: the watch cache answers those without a request.
    let (chain, task) = (chain_id.to_string(), id.to_string());
    let cached = ctx.caches.tasks(&ctx.client, scope).await?;
    let labelled = |t: &DRLTask, key: &str, value: &str| t.labels().get(key).map(String::as_str) == Some(value);
    if let Some(t) = cached
        .iter()
        .find(|t| labelled(t, LABEL_CHAIN_TASK, &task) && labelled(t, LABEL_CHAIN_ID, &chain))
    {
        return Ok(Admission::AlreadyMirrored(t.name_any()));
    }
    let selector = format!("{LABEL_CHAIN_TASK}={id},{LABEL_CHAIN_ID}={chain_id}");
    let bound: Vec<DRLTask> = scope
        .list(&ctx.client, &ListParams::default().labels(&selector))
        .await?;
    if let Some(task) = bound.first() {
        return Ok(Admission::AlreadyMirrored(task.name_any()));
    }

    // The CID comes from whoever posted the task: it goes into a label selector and a label only
    // once it is known to be a plain label value (no selector syntax smuggled in, no 422 on create).
    let spec_cid = posted.specCid.as_str();
    if !is_label_value(spec_cid) {
        let why = format!("its spec CID {spec_cid:?} is not a CID in a label-safe text form (base32 or base58)");
        return Ok(refuse(ctx, id, why).await);
    }
    let requester = posted.requester.to_string();
    let owns = |t: &DRLTask| t.spec.payment.is_some() && t.annotations().get(ANNOTATION_REQUESTER) == Some(&requester);
    if let Some(t) = cached.iter().find(|t| labelled(t, LABEL_SPEC_CID, spec_cid) && owns(t)) {
        return Ok(Admission::OwnedByKubernetesTask(t.name_any()));
    }
    // Not in the cache (it can be a moment behind the operator's own write-ahead record): ask the
    // API server before mirroring anything, so a task is never run twice.
    let selector = format!("{LABEL_SPEC_CID}={spec_cid}");
    let same_document: Vec<DRLTask> = scope
        .list(&ctx.client, &ListParams::default().labels(&selector))
        .await?;
    // A Kubernetes task posts its document from its requester's wallet and records both before
    // sending: every post of that document by that requester is the task's own (in flight, or a
    // duplicate left by a lost receipt, which the task cancels), never a task of its own.
    let posted_by_kubernetes = same_document.iter().find(|t| owns(t));
    if let Some(task) = posted_by_kubernetes {
        return Ok(Admission::OwnedByKubernetesTask(task.name_any()));
    }

    let document = match fetch_document(ctx, spec_cid).await? {
        Ok(document) => document,
        Err(why) => return Ok(refuse(ctx, id, why).await),
    };
    let kind = match posted.kind {
        0 => TaskKind::Training,
        1 => TaskKind::ModelSharing,
        other => return Ok(refuse(ctx, id, format!("its kind {other} is unknown")).await),
    };
    let Ok(budget_wei) = u128::try_from(posted.budget) else {
        return Ok(refuse(
            ctx,
            id,
            format!("its budget {} wei does not fit 128 bits", posted.budget),
        )
        .await);
    };
    let task = PostedTask {
        id,
        requester: posted.requester.to_string(),
        kind,
        target_milli: posted.targetMilli,
        deadline: posted.deadline.to::<u64>(),
        budget_wei,
        spec_cid: spec_cid.to_string(),
    };
    // The chain's clock, not ours: the deadline is enforced on chain.
    let now = ctx.market.block(None).await?.timestamp;
    let object = match mirrored_task(chain_id, &task, &document, now) {
        Ok(mirror) => DRLTask {
            metadata: ObjectMeta {
                name: Some(mirror.name),
                namespace: Some(ctx.settings.namespace.clone()),
                labels: Some(mirror.labels),
                annotations: Some(mirror.annotations),
                ..ObjectMeta::default()
            },
            spec: mirror.spec,
            status: None,
        },
        Err(e) => return Ok(refuse(ctx, id, e.to_string()).await),
    };
    let name = mirror_name(chain_id, id);
    let params = PostParams {
        field_manager: Some(FIELD_MANAGER.into()),
        ..PostParams::default()
    };
    match Api::<DRLTask>::namespaced(ctx.client.clone(), &ctx.settings.namespace)
        .create(&params, &object)
        .await
    {
        Ok(_) => Ok(Admission::Created(name)),
        // Created between the lookup and now (or by hand under the mirror's name): it is there.
        Err(kube::Error::Api(status)) if status.is_already_exists() => Ok(Admission::AlreadyMirrored(name)),
        // The CRD's schema or CEL rules reject what the requester posted (a deadline years away, say):
        // a verdict on the task, which retrying would only repeat while holding back later tasks.
        Err(kube::Error::Api(status)) if status.is_invalid() => {
            let why = format!("the API server rejects its DRLTask: {}", status.message);
            Ok(refuse(ctx, id, why).await)
        }
        Err(e) => Err(e.into()),
    }
}

/// The task document under `spec_cid`: `Ok(Err(why))` when the requester's document is the
/// problem (missing, not a CID, too large, not text), `Err` when the store is.
async fn fetch_document(ctx: &Context, spec_cid: &str) -> Result<Result<String, String>, Error> {
    let refusal = |e: &StoreError| {
        matches!(
            e,
            StoreError::NotFound { .. }
                | StoreError::InvalidCid { .. }
                | StoreError::Unsupported { .. }
                | StoreError::Malformed { .. }
        )
    };
    let cid = match drlaas_store::cid::parse(spec_cid) {
        Ok(cid) => cid,
        Err(e) => return Ok(Err(format!("its spec CID is unusable: {e}"))),
    };
    // Streamed and cut off past the limit, so an oversized document is never held in memory.
    let mut chunks = ctx.store.get(&cid);
    let mut bytes = Vec::new();
    while let Some(chunk) = chunks.next().await {
        match chunk {
            Ok(chunk) => bytes.extend_from_slice(&chunk),
            Err(e) if refusal(&e) => return Ok(Err(format!("its document could not be read: {e}"))),
            Err(e) => return Err(e.into()),
        }
        if bytes.len() > MAX_DOCUMENT_BYTES {
            return Ok(Err(format!(
                "its document {spec_cid} is larger than {MAX_DOCUMENT_BYTES} bytes"
            )));
        }
    }
    Ok(String::from_utf8(bytes).map_err(|_| format!("its document {spec_cid} is not UTF-8 text")))
}

/// Records that task `task_id` is not mirrored: a warning, the Event admins see, and the verdict.
/// The Event is best effort: it explains the refusal, it is not the refusal, and an API server that
/// refuses it must not hold back every later task.
async fn refuse(ctx: &Context, task_id: u64, why: String) -> Admission {
    let reason = format!(
        "chain task {task_id} was not mirrored: {why}. Its escrow stays on chain: the requester can cancel the task to get it back"
    );
    tracing::warn!(task_id, %reason, "chain task refused");
    let regarding = ObjectReference {
        api_version: Some("v1".into()),
        kind: Some("ConfigMap".into()),
        name: Some(CURSOR_CONFIGMAP.into()),
        namespace: Some(ctx.settings.namespace.clone()),
        ..ObjectReference::default()
    };
    let event = Event {
        type_: EventType::Warning,
        reason: REASON_REFUSED.into(),
        note: Some(truncate(&reason, 1024)),
        action: "Mirror".into(),
        secondary: None,
    };
    let recorder = Recorder::new(ctx.client.clone(), Reporter::from(CONTROLLER));
    if let Err(e) = recorder.publish(&event, &regarding).await {
        tracing::warn!(task_id, error = %e, "could not record the refusal as an Event");
    }
    Admission::Refused { task_id, reason }
}

/// The task id as the operator counts them. TMC numbers tasks from 1, so a 64-bit overflow would
/// take longer than the chain will live; saturating keeps such an id from passing for a real one.
fn task_id(posted: &TMC::TaskPosted) -> u64 {
    posted.taskId.saturating_to::<u64>()
}

/// Whether `value` is a valid Kubernetes label value (at most 63 characters, alphanumeric at both
/// ends, `-`, `_` and `.` inside).
fn is_label_value(value: &str) -> bool {
    let inner = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.');
    value.len() <= 63
        && value.chars().all(inner)
        && value.chars().next().is_none_or(|c| c.is_ascii_alphanumeric())
        && value.chars().last().is_none_or(|c| c.is_ascii_alphanumeric())
}

/// `text` cut to at most `max` bytes on a character boundary (an Event's note is capped at 1 kB).
fn truncate(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_string();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].to_string()
}
