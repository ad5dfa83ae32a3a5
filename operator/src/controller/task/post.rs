//! The write-ahead post: a task applied with `payment` goes on chain from its requester's wallet
//! exactly once (docs/architecture.md#the-life-of-a-task).
//!
//! Before the post is sent, the task is labelled with its document's CID and annotated with the
//! requester and the current block. If the operator dies before it records the receipt, the next
//! reconcile finds the post on chain by that record instead of posting (and paying) again, and the
//! chain watcher never mirrors it.

use drlaas_chain::alloy::primitives::U256;
use drlaas_chain::{NewTask, TaskStatus};
use drlaas_crds::task::{DRLTask, DRLTaskSpec};
use drlaas_crds::transactions::TxAction;
use drlaas_store::ContentStore;
use kube::ResourceExt;
use kube::api::{Patch, PatchParams};
use kube::runtime::events::EventType;
use serde_json::json;

use super::super::chain_status::chain_kind;
use super::super::secrets::requester_wallet;
use super::super::{Context, Error};
use super::observe::chain_task_is_bound;
use super::status::StatusWriter;
use super::{ANNOTATION_POSTED_AFTER_BLOCK, namespaced, timed};
use drlaas_core::admission::parse_wei;
use drlaas_core::mirror::{
    ANNOTATION_REQUESTER, LABEL_CHAIN_ID, LABEL_CHAIN_TASK, LABEL_SPEC_CID, TaskDocument, chain_terms,
};

/// Posts `task` on chain from its requester's wallet, exactly once; the chain task's id.
pub(super) async fn post(task: &DRLTask, ctx: &Context, status: &mut StatusWriter<'_>) -> Result<u64, Error> {
    let payment = task.spec.payment.as_ref().ok_or(Error::Invalid {
        field: "spec.payment",
        message: "a task without spec.chainTaskId needs spec.payment".into(),
    })?;
    let budget = parse_wei(&payment.amount_wei).map_err(|message| Error::Invalid {
        field: "spec.payment.amountWei",
        message,
    })?;
    let (wallet, requester) = requester_wallet(ctx, task, payment).await?;

    // The document names the object (its UID), so its CID is this task's own (see TaskDocument).
    let document = TaskDocument::new(&task.spec, task.metadata.uid.as_deref());
    let stored = ctx.store.put_bytes(document.to_bytes().into()).await?;
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
                status.tx(ctx, TxAction::CancelDuplicate(id), &outcome);
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
            namespaced::<DRLTask>(ctx, task)
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
    namespaced::<DRLTask>(ctx, task)
        .patch(&task.name_any(), &PatchParams::default(), &Patch::Merge(&labels))
        .await?;
    status.status.chain_task_id = Some(id);
    status.status.budget_wei = Some(budget.to_string());
    if let Some(outcome) = &tx {
        status.tx(ctx, TxAction::Post, outcome);
    }
    status.event(
        EventType::Normal,
        "Posted",
        format!("posted on chain as task {id} with {budget} wei in escrow (document {spec_cid})"),
    );
    Ok(id)
}

/// What `TMC.postTask` gets for a paid task whose document is stored under `spec_cid`, posted when
/// the chain's clock reads `now`: the terms the core derives from the spec
/// ([`chain_terms`]) and `budget` wei of escrow. The CLI posts with it too, so a task submitted from
/// the command line is mirrored back exactly as one applied to a cluster.
pub fn chain_task(spec: &DRLTaskSpec, spec_cid: String, budget: U256, now: u64) -> NewTask {
    let terms = chain_terms(spec, now);
    NewTask {
        spec_cid,
        kind: chain_kind(terms.kind),
        target_milli: terms.target_milli,
        deadline: terms.deadline,
        budget,
    }
}
