//! What workers that sell their models do in a local run: once a task is paid, its worker lists
//! the model on the model market (MMC) at its `sellModelsWei` price, so that later `warmStart:
//! auto` and `ModelSharing` tasks can buy it. These are transactions, sent with the workers' keys.

use std::collections::BTreeMap;

use drlaas_chain::alloy::primitives::{Address, keccak256};
use drlaas_chain::{Market, NewListing};
use drlaas_crds::task::{DRLTask, DRLTaskStatus, TaskOutcome};
use drlaas_local::workers::WorkersConfig;

/// The workers that sell their paid models, by name: their account and their price in wei.
#[derive(Debug, Clone, Default)]
pub struct Sellers(BTreeMap<String, (Address, String)>);

impl Sellers {
    /// The workers of `workers` with a `sellModelsWei` price, at the accounts `addresses` names.
    pub fn of(workers: &WorkersConfig, addresses: &BTreeMap<String, Address>) -> Sellers {
        Sellers(
            workers
                .workers
                .iter()
                .filter_map(|w| Some((w.name.clone(), (addresses[&w.name], w.sell_models_wei.clone()?))))
                .collect(),
        )
    }
}

/// Lists the model of each paid task whose worker sells (once: a listing of the same CID by the
/// same owner counts); true when none is left to list.
pub async fn list_paid_models(market: &Market, tasks: &[DRLTask], sellers: &Sellers) -> bool {
    let mut done = true;
    for task in tasks {
        let Some(status) = &task.status else { continue };
        if status.outcome != Some(TaskOutcome::Paid) {
            continue;
        }
        let (Some(worker), Some(cid)) = (&status.worker, &status.model_cid) else {
            continue;
        };
        let Some((owner, price)) = sellers.0.get(worker) else {
            continue;
        };
        if let Err(e) = list_model(market, task, *owner, cid, price, status).await {
            tracing::warn!(task = ?task.metadata.name, error = %e, "could not list the model");
            done = false;
        }
    }
    done
}

/// Lists `cid` on the model market for `owner` at `price` wei, unless that owner already listed
/// it. The listing names the environment it was trained on and, when warm-started from a listing,
/// that parent (which then earns its royalty on sales).
async fn list_model(
    market: &Market,
    task: &DRLTask,
    owner: Address,
    cid: &str,
    price: &str,
    status: &DRLTaskStatus,
) -> Result<(), String> {
    let count = market.listing_count().await.map_err(|e| e.to_string())?;
    for id in (1..=count).rev() {
        let listing = market.listing(id).await.map_err(|e| e.to_string())?;
        if listing.owner == owner && listing.model_cid == cid {
            return Ok(());
        }
    }
    let environment = &task.spec.training.environment;
    let kind = environment.kind_name().parse().map_err(|e: String| e)?;
    let listing = NewListing {
        model_cid: cid.to_string(),
        env_kind: kind,
        env_descriptor_hash: keccak256(serde_json::to_vec(environment).map_err(|e| e.to_string())?),
        price: price.parse().map_err(|e| format!("sellModelsWei {price:?}: {e}"))?,
        parent: status.warm_start.as_ref().and_then(|w| w.listing_id),
        royalty_bps: 1_000,
    };
    market.list_model(owner, &listing).await.map_err(|e| e.to_string())?;
    Ok(())
}
