//! The controllers: thin edges that read the cluster and the chain, ask the pure [`core`](crate::core)
//! what to do, and write the answer back (status by server-side apply, conditions, requeues).
//!
//! One module per resource, as in kube-rs's controller-rs: [`worker`] so far.

pub mod conditions;
pub mod worker;

use std::sync::Arc;

use drlaas_chain::Market;

use crate::server::Health;

/// The field manager of everything the operator applies.
pub const FIELD_MANAGER: &str = "drlaas-operator";

/// What every reconcile gets.
#[derive(Clone)]
pub struct Context {
    /// The Kubernetes client.
    pub client: kube::Client,
    /// The marketplace contracts, read (and later written) by the oracle account.
    pub market: Arc<Market>,
    /// Metrics and readiness, served on `/metrics` and `/readyz`.
    pub health: Arc<Health>,
}

impl std::fmt::Debug for Context {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context")
            .field("market", &self.market.deployment())
            .finish_non_exhaustive()
    }
}

/// Why a reconcile failed; it is retried (see each controller's error policy).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The Kubernetes API refused or failed a call.
    #[error("Kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    /// The chain could not be read or written.
    #[error("chain: {0}")]
    Chain(#[from] drlaas_chain::ChainError),
    /// The object is not what the schema promised (it was created without the CRD's validation).
    #[error("invalid {field}: {message}")]
    Invalid { field: &'static str, message: String },
}

impl Error {
    /// A short label for metrics and Events.
    pub fn kind(&self) -> &'static str {
        match self {
            Error::Kube(_) => "kube",
            Error::Chain(_) => "chain",
            Error::Invalid { .. } => "invalid",
        }
    }
}
