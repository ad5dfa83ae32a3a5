//! drlaas resource types.
//!
//! Plain serde types shared by the operator and the trainer. By default they link neither kube nor
//! torch (docs/architecture.md#components): the trainer image reads a [`TrainingSpec`] from `task.json`, the operator reads
//! the same type as the `training` part of a `DRLTask` spec and validates it before any escrow moves.
//!
//! With the `kube` feature (the operator's), the custom resources themselves: [`task::DRLTask`],
//! [`worker::Worker`] and [`model::DRLModel`] (the model market's mirror), their schemas with CEL rules and printer columns, and [`crds`], the
//! CustomResourceDefinitions committed in `crds/generated/` and printed by `drlaas crd`.

pub mod hyperparameters;
#[cfg(feature = "kube")]
pub mod model;
pub mod pod;
#[cfg(feature = "schema")]
pub mod schema;
pub mod task;
pub mod trainer_output;
pub mod training;
pub mod transactions;
pub mod worker;

/// Every CRD as one YAML stream: what `crds/generated/drlaas.io.yaml` holds and `drlaas crd` prints.
#[cfg(feature = "kube")]
pub fn crds_yaml() -> String {
    crds()
        .iter()
        .map(|crd| serde_saphyr::to_string(crd).expect("a CRD serializes to YAML"))
        .collect::<Vec<_>>()
        .join("---\n")
}

/// The CustomResourceDefinitions of every drlaas resource.
#[cfg(feature = "kube")]
pub fn crds() -> Vec<k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition> {
    use kube::CustomResourceExt;
    vec![task::DRLTask::crd(), worker::Worker::crd(), model::DRLModel::crd()]
}

pub use hyperparameters::{Activation, DqnConfig, NetworkConfig, PpoConfig};
pub use training::{Algorithm, SpecError, TrainingSpec};
