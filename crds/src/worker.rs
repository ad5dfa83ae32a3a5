//! The `Worker` resource (group `drlaas.io`, version `v1alpha1`, cluster-scoped): a node pool that a
//! worker contributes, the account it answers with on chain, and what it offers (docs/architecture.md#resources).

use std::collections::BTreeMap;

#[cfg(feature = "kube")]
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use serde::{Deserialize, Serialize};

use crate::task::SecretKeyRef;

/// A Kubernetes toleration of a worker's node taints: the typed one with the `kube` feature, plain
/// JSON without (the operator's pure core never looks into it).
#[cfg(feature = "kube")]
pub type Toleration = k8s_openapi::api::core::v1::Toleration;
#[cfg(not(feature = "kube"))]
pub type Toleration = serde_json::Value;

/// A worker's node pool and offer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "kube", derive(kube::CustomResource))]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[cfg_attr(feature = "kube", kube(
    group = "drlaas.io",
    version = "v1alpha1",
    kind = "Worker",
    plural = "workers",
    shortname = "drlw",
    category = "drlaas",
    status = "WorkerStatus",
    cel,
    printcolumn(name = "Address", type_ = "string", json_path = ".spec.address"),
    printcolumn(name = "GPUs", type_ = "integer", json_path = ".spec.capacity.gpus"),
    printcolumn(name = "Reputation", type_ = "number", json_path = ".status.reputation"),
    printcolumn(name = "Active", type_ = "integer", json_path = ".status.activeTasks"),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp"),
    validation = Rule::new("self.spec.address == oldSelf.spec.address").message("spec.address is bound on chain: create another Worker for another account"),
    doc = "A worker's contribution: a node pool that runs trainer pods for tasks, the account that answers for them on chain, and its offer (capacity, expertise, price). The operator mirrors the worker's on-chain record into `status`.",
))]
#[cfg_attr(feature = "schema", schemars(transform = crate::schema::non_nullable))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WorkerSpec {
    /// The worker's account on chain (registered in UMC with its stake).
    #[cfg_attr(
        feature = "schema",
        schemars(regex(pattern = r"^0x[0-9a-fA-F]{40}$"), length(max = 42))
    )]
    pub address: String,
    /// Labels that select the worker's nodes; trainer pods get this as their nodeSelector.
    #[serde(default)]
    pub node_selector: BTreeMap<String, String>,
    /// Tolerations for the taints of the worker's nodes; trainer pods get them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tolerations: Vec<Toleration>,
    /// What the pool has.
    pub capacity: WorkerCapacity,
    /// Declared expertise per environment kind, in [0, 1] (recruitment discounts it by the
    /// worker's record).
    #[serde(default)]
    #[cfg_attr(feature = "schema", schemars(extend("maxProperties" = 8, "x-kubernetes-validations" = [{
        "rule": "self.all(k, k in ['cartpole', 'target-localization', 'maze-cleaning', 'fleet-coordination', 'gymnasium', 'pettingzoo'] && self[k] >= 0.0 && self[k] <= 1.0)",
        "message": "expertise keys must be environment kinds (cartpole, target-localization, maze-cleaning, fleet-coordination, gymnasium, pettingzoo) with levels in [0, 1]"
    }])))]
    pub expertise: BTreeMap<String, f64>,
    /// Price per task in wei, as a decimal string.
    #[cfg_attr(
        feature = "schema",
        schemars(regex(pattern = r"^(0|[1-9][0-9]{0,29})$"), length(max = 30))
    )]
    pub price_per_task_wei: String,
    /// Trainer image for this pool (default: the operator's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "schema", schemars(length(max = 512)))]
    pub image: Option<String>,
    /// The worker's signing key, with which its results are submitted on chain: a Secret in the
    /// operator's namespace.
    pub key_secret_ref: SecretKeyRef,
}

/// Compute of a worker's pool.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WorkerCapacity {
    /// GPUs available to drlaas across the pool.
    #[serde(default)]
    pub gpus: u32,
    /// GPU model, e.g. `H100` (informational).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "schema", schemars(length(max = 64)))]
    pub gpu_model: Option<String>,
    /// CPU cores available to drlaas across the pool.
    #[cfg_attr(feature = "schema", schemars(range(min = 1)))]
    pub cpu_cores: u32,
    /// CPU cores of one node (a pod gets at most this).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_cpu_cores: Option<u32>,
    /// Memory available to drlaas across the pool, in GiB.
    #[cfg_attr(feature = "schema", schemars(range(min = 1)))]
    pub memory_gib: u32,
    /// Tasks the worker runs at once. Default 1.
    #[serde(default = "default_concurrent_tasks")]
    #[cfg_attr(feature = "schema", schemars(range(min = 1, max = 1000)))]
    pub concurrent_tasks: u32,
}

fn default_concurrent_tasks() -> u32 {
    1
}

#[cfg(feature = "kube")]
/// What the operator mirrors from chain and from the cluster.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct WorkerStatus {
    /// Whether the address is registered in UMC.
    #[serde(default)]
    pub registered: bool,
    /// On-chain reputation in [0, 1].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reputation: Option<f64>,
    /// Bonded stake in wei.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stake_wei: Option<String>,
    /// Tasks running on the pool now.
    #[serde(default)]
    pub active_tasks: u32,
    /// Tasks completed, from chain.
    #[serde(default)]
    pub completed_tasks: u32,
    /// Tasks failed, from chain.
    #[serde(default)]
    pub failed_tasks: u32,
    /// `Registered`, `Ready`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
}
