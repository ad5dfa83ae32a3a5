//! The `DRLModel` resource (group `drlaas.io`, version `v1alpha1`, cluster-scoped, short name
//! `drlm`): a model listed on the model market (MMC), mirrored by the operator so that
//! `kubectl get drlmodels` shows the market (docs/architecture.md#resources). The chain is the record; the operator
//! writes these objects and nothing reads them back as truth.

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A listing on MMC, as listed (what never changes).
// Every `printcolumn(...)` names a `type_`: the lint takes the repeats for duplicated attributes.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "drlaas.io",
    version = "v1alpha1",
    kind = "DRLModel",
    plural = "drlmodels",
    shortname = "drlm",
    category = "drlaas",
    status = "DRLModelStatus",
    printcolumn(name = "Listing", type_ = "integer", json_path = ".spec.listingId"),
    printcolumn(name = "Env", type_ = "string", json_path = ".spec.environmentKind"),
    printcolumn(name = "Price", type_ = "string", json_path = ".status.priceWei"),
    printcolumn(name = "Rating", type_ = "number", json_path = ".status.rating"),
    printcolumn(name = "Sales", type_ = "integer", json_path = ".status.purchases"),
    printcolumn(name = "Active", type_ = "boolean", json_path = ".status.active"),
    printcolumn(name = "Model", type_ = "string", json_path = ".spec.modelCid", priority = 1),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp"),
    doc = "A model listed on the model market (MMC), mirrored from chain by the operator so that `kubectl get drlmodels` shows the market. The chain is the record: the spec is the listing as listed, the status what changes (price, sales, rating)."
)]
#[schemars(transform = crate::schema::non_nullable)]
#[serde(rename_all = "camelCase")]
pub struct DRLModelSpec {
    /// The chain the listing is on.
    pub chain_id: u64,
    /// The MMC listing id.
    pub listing_id: u64,
    /// CID of the model artifact.
    pub model_cid: String,
    /// The account that listed it (and is paid for it).
    pub owner: String,
    /// Environment kind it was trained on (empty if this version does not know it).
    pub environment_kind: String,
    /// The listing it was warm-started from, which earns a royalty on every sale.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_listing_id: Option<u64>,
    /// Royalty this listing asks of derived models, in basis points.
    pub royalty_bps: u16,
}

/// What changes on a listing.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DRLModelStatus {
    /// Whether it can be bought.
    pub active: bool,
    /// Wei per purchase, as a decimal string.
    pub price_wei: String,
    /// Times it was bought.
    pub purchases: u32,
    /// Mean star rating (1 to 5), once rated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rating: Option<f64>,
    /// Ratings given.
    pub ratings: u32,
    /// Unix time of listing.
    pub listed_at: u64,
}
