//! Releasing a deleted task (the finalizer's cleanup): no escrow stays locked behind an object
//! that no longer exists, and never at the cost of a worker that did nothing wrong.
//!
//! - Past its deadline while still open: nobody can withdraw it any more, so it is expired through
//!   the same settlement as a live task, which refunds the requester.
//! - Posted or Assigned, from a Kubernetes wallet: the requester withdraws it (`TMC.withdrawTask`):
//!   before assignment the whole budget comes back; after, the worker is released with its stake
//!   and reputation untouched and keeps a fee of 10 % of its price for the compute it started.
//! - Submitted: the result is already public, so it is verified and settled as if the task had
//!   not been deleted (the worker is paid or failed on its merits); then the object goes.
//! - A task mirrored from chain, or one whose wallet Secret is gone: released without a
//!   transaction, with a Warning that says how the requester gets the escrow back (`drlaas task
//!   cancel`, or `expire` after the deadline: escrow is never stuck).
//!
//! Its pods are owned by the task, so the garbage collector removes them; they are also deleted
//! here, best effort, so a trainer stops at once. Nothing here can hold the finalizer forever: only
//! a chain or API server that cannot be reached does, until it can.

use drlaas_chain::TaskStatus;
use drlaas_crds::task::DRLTask;
use drlaas_crds::transactions::TxAction;
use k8s_openapi::api::core::v1::{ConfigMap, Pod};
use kube::ResourceExt;
use kube::api::{DeleteParams, ListParams};
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;

use super::super::secrets::requester_wallet;
use super::super::{Context, Error};
use super::observe::{self, Observation};
use super::settle::{Settlement, settle};
use super::status::StatusWriter;
use super::{ANNOTATION_POSTED_AFTER_BLOCK, advance, namespaced, timed};
use crate::pods::{LABEL_TASK, config_map_name, task_label};
use drlaas_core::mirror::LABEL_SPEC_CID;
use drlaas_core::settlement::{ChainStatus, Intent};

/// Releases the deleted `task` on chain, removes its pods and writes its last status.
pub(super) async fn cleanup(task: &DRLTask, ctx: &Context) -> Result<Action, Error> {
    let mut status = StatusWriter::new(task);
    match observe::bound_chain_task(task, ctx, status.status.chain_task_id) {
        Some(id) => {
            let seen = observe::observe(task, ctx, id).await?;
            if seen.chain_status() == ChainStatus::Submitted {
                // Verified and settled first; the finalizer stays until the chain says how it ended.
                status.status.chain_task_id = Some(id);
                let action = advance(task, ctx, &mut status, &seen).await;
                if let Err(e) = &action {
                    status.status.message = Some(e.to_string());
                }
                status.write(ctx).await?;
                return action;
            }
            release(task, ctx, &mut status, &seen).await?;
        }
        None => withdraw_unrecorded_posts(task, ctx, &mut status).await?,
    }
    let selector = format!("{LABEL_TASK}={}", task_label(task));
    let pods = namespaced::<Pod>(ctx, task)
        .delete_collection(&DeleteParams::default(), &ListParams::default().labels(&selector))
        .await;
    if let Err(e) = pods {
        // The garbage collector removes them with the task anyway: a failure here must not keep it.
        tracing::warn!(task = %task.name_any(), error = %e, "could not delete the task's pods; the garbage collector will");
    }
    let _ = namespaced::<ConfigMap>(ctx, task)
        .delete(&config_map_name(task), &DeleteParams::default())
        .await;
    // The object goes away with the finalizer; its last status and Events say how it was released.
    let uid = task.uid().unwrap_or_default();
    status.write(ctx).await?;
    ctx.caches.applied(&uid, None);
    Ok(Action::await_change())
}

/// Releases an open (Posted or Assigned) chain task whose object is deleted; a settled one needs
/// nothing.
async fn release(
    task: &DRLTask,
    ctx: &Context,
    status: &mut StatusWriter<'_>,
    seen: &Observation,
) -> Result<(), Error> {
    let (info, id) = (&seen.info, seen.info.id);
    if !matches!(info.status, TaskStatus::Posted | TaskStatus::Assigned) {
        return Ok(());
    }
    if seen.head.timestamp > info.deadline {
        let settlement = Settlement {
            intent: Intent::Expire,
            reason: format!("task {id} passed its deadline before it was deleted; the escrow is refunded"),
            verdict: None,
        };
        settle(task, ctx, status, seen, settlement).await?;
        return Ok(());
    }
    let Some(payment) = &task.spec.payment else {
        status.event(
            EventType::Warning,
            "Released",
            format!(
                "task {id} was posted on chain by its requester, who can withdraw it (`drlaas task cancel \
                 {id}`); this cluster no longer drives it"
            ),
        );
        return Ok(());
    };
    match requester_wallet(ctx, task, payment).await {
        Ok((wallet, requester)) => {
            let outcome = timed(ctx, "withdraw", wallet.withdraw_task(requester, id)).await?;
            status.tx(ctx, TxAction::Withdraw, &outcome);
            let note = if info.status == TaskStatus::Posted {
                format!("task {id} withdrawn on chain before assignment; the whole escrow is refunded")
            } else {
                format!(
                    "task {id} withdrawn on chain: {} keeps a withdrawal fee, the rest of the escrow is \
                     refunded; the worker's stake and reputation are untouched",
                    info.worker
                )
            };
            status.event(EventType::Normal, "Withdrawn", note);
        }
        Err(Error::Secret { message, .. }) => status.event(
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
    Ok(())
}

/// A task deleted after its post was sent but before the post was recorded (the operator died in
/// between) still has escrow on chain: its write-ahead record (the document's CID and the block
/// before the post) finds the post, and the requester's wallet withdraws it.
async fn withdraw_unrecorded_posts(task: &DRLTask, ctx: &Context, status: &mut StatusWriter<'_>) -> Result<(), Error> {
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
            status.event(
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
            status.tx(ctx, TxAction::WithdrawUnrecorded(id), &outcome);
            status.event(
                EventType::Normal,
                "Withdrawn",
                format!("task {id}, posted but not yet recorded when the task was deleted, is withdrawn; the escrow is refunded"),
            );
        }
    }
    Ok(())
}
