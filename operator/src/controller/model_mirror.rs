//! The model market in the cluster: every MMC listing mirrored as a cluster-scoped `DRLModel`
//! (`listing-<chain>-<id>`), refreshed from the chain whenever one of its events arrives (listed,
//! delisted, repriced, bought, rated), so `kubectl get drlmodels` shows the market as it is.
//!
//! A listing is also one of its owner's models for recruitment: a listing the owner's record in
//! the caches lacks marks that record for a read before the next recruitment pass.

use drlaas_chain::ListingInfo;
use drlaas_crds::model::{DRLModel, DRLModelSpec, DRLModelStatus};
use kube::Api;
use kube::api::{Patch, PatchParams};
use serde_json::json;

use super::{Context, Error, FIELD_MANAGER};

/// The name of the object mirroring listing `id` of chain `chain_id`.
pub fn model_name(chain_id: u64, id: u64) -> String {
    format!("listing-{chain_id}-{id}")
}

/// Reads listing `id` from chain and writes its `DRLModel` (spec and status, server-side apply).
/// Returns the object's name.
pub async fn mirror_listing(ctx: &Context, id: u64) -> Result<String, Error> {
    let chain_id = ctx.market.deployment().chain_id;
    let listing = ctx.market.listing(id).await?;
    ctx.caches.listing_seen(listing.owner, id);
    let name = model_name(chain_id, id);
    let (spec, status) = model_of(chain_id, &listing);
    let api = Api::<DRLModel>::all(ctx.client.clone());
    let params = PatchParams::apply(FIELD_MANAGER).force();
    let object = json!({"apiVersion": "drlaas.io/v1alpha1", "kind": "DRLModel",
                        "metadata": {"name": name, "labels": {"drlaas.io/chain-id": chain_id.to_string()}},
                        "spec": spec});
    api.patch(&name, &params, &Patch::Apply(&object)).await?;
    let status = json!({"apiVersion": "drlaas.io/v1alpha1", "kind": "DRLModel", "status": status});
    api.patch_status(&name, &params, &Patch::Apply(&status)).await?;
    Ok(name)
}

/// The spec and status of a listing's mirror.
pub fn model_of(chain_id: u64, listing: &ListingInfo) -> (DRLModelSpec, DRLModelStatus) {
    (
        DRLModelSpec {
            chain_id,
            listing_id: listing.id,
            model_cid: listing.model_cid.clone(),
            owner: listing.owner.to_string(),
            environment_kind: listing.env_kind.map(|k| k.as_str().to_string()).unwrap_or_default(),
            parent_listing_id: listing.parent,
            royalty_bps: listing.royalty_bps,
        },
        DRLModelStatus {
            active: listing.active,
            price_wei: listing.price.to_string(),
            purchases: listing.purchases,
            rating: listing.mean_rating(),
            ratings: listing.rating_count,
            listed_at: listing.listed_at,
        },
    )
}
