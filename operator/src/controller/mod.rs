//! The controllers: thin edges that read the cluster and the chain, ask the pure [`core`](drlaas_core)
//! what to do, and write the answer back (status by server-side apply, conditions, requeues).
//!
//! One module per resource, as in kube-rs's controller-rs: [`task`] drives each `DRLTask` from
//! admission to settlement, [`worker`] mirrors each worker's chain record, and [`chain_mirror`]
//! mirrors tasks posted on chain into `DRLTask` objects.

pub mod cache;
pub mod chain_mirror;
pub mod chain_status;
pub mod conditions;
pub mod consortium;
pub mod cursor;
pub mod model_market;
pub mod model_mirror;
pub mod recruiter;
pub mod scope;
pub mod secrets;
pub mod task;
pub mod worker;

use std::sync::Arc;

use drlaas_chain::Market;
use drlaas_chain::alloy::primitives::Address;
use drlaas_store::Store;
use kube::{Resource, ResourceExt};

pub use self::cache::Caches;
pub use self::consortium::Consortium;
pub use self::recruiter::Recruiter;
pub use self::scope::WatchScope;
use crate::pods::PodSettings;
use crate::server::Health;

/// The field manager of everything the operator applies.
pub const FIELD_MANAGER: &str = "drlaas-operator";

/// The namespace of a namespaced object: `default` for one that names none, as the API server
/// defaults it.
pub fn namespace_of(object: &impl Resource) -> String {
    object.namespace().unwrap_or_else(|| "default".into())
}

/// What every reconcile gets.
#[derive(Clone)]
pub struct Context {
    /// The Kubernetes client.
    pub client: kube::Client,
    /// The marketplace contracts, read (and later written) by the oracle account.
    pub market: Arc<Market>,
    /// Metrics and readiness, served on `/metrics` and `/readyz`.
    pub health: Arc<Health>,
    /// The content store: task documents, submitted models.
    pub store: Store,
    /// The operator's configuration.
    pub settings: Arc<Settings>,
    /// Watch caches of tasks, their pods and Workers (or none: reads go to the API server).
    pub caches: Caches,
    /// Recruitment's record of the workers it promised and has not seen assigned yet.
    pub recruiter: Arc<Recruiter>,
    /// The oracle set and this operator's seat, as last read from TMC.
    pub consortium: Arc<Consortium>,
}

/// What the operator is configured with (flags of `drlaas operator`).
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// The operator's own account: an oracle on TMC, whose key the market's wallet holds.
    pub oracle: Address,
    /// The operator's namespace: worker key Secrets, the chain cursor and mirrored tasks live here.
    pub namespace: String,
    /// The namespaces whose DRLTasks and pods are listed and watched (`namespace` among them).
    pub scope: WatchScope,
    /// Image and store address of the pods the operator runs.
    pub pods: PodSettings,
    /// Blocks a `TaskPosted` event needs on top of it before it is mirrored.
    pub confirmations: u64,
    /// Seconds each consortium member's turn to propose a worker lasts.
    pub proposal_turn_seconds: u64,
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
    /// The content store failed.
    #[error("content store: {0}")]
    Store(#[from] drlaas_store::StoreError),
    /// A Secret the object references is missing or holds no usable key.
    #[error("secret {namespace}/{name}: {message}")]
    Secret {
        namespace: String,
        name: String,
        message: String,
    },
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
            Error::Store(_) => "store",
            Error::Secret { .. } => "secret",
            Error::Invalid { .. } => "invalid",
        }
    }
}
