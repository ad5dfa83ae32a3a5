//! The `DRLTask` resource (group `drlaas.io`, version `v1alpha1`, namespaced, short name `drlt`):
//! a requester's order for a trained policy, from admission to settlement (docs/architecture.md#the-life-of-a-task).
//!
//! The spec is immutable once created: it is what the escrow on chain pays for. To change a task,
//! delete it (which cancels or fails it on chain) and create another.

#[cfg(feature = "kube")]
use std::collections::BTreeMap;

#[cfg(feature = "kube")]
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use serde::{Deserialize, Serialize};

use crate::training::TrainingSpec;

/// What the requester buys.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub enum TaskKind {
    /// Train a policy that reaches the target.
    #[default]
    Training,
    /// Deliver an existing model of a similar environment (possibly fine-tuned) that reaches it.
    ModelSharing,
}

/// A task for a trained DRL policy.
// Every `printcolumn(...)` names a `type_`: the lint takes the repeats for duplicated attributes.
#[allow(clippy::duplicated_attributes)]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "kube", derive(kube::CustomResource))]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[cfg_attr(
    feature = "kube",
    kube(
        group = "drlaas.io",
        version = "v1alpha1",
        kind = "DRLTask",
        plural = "drltasks",
        shortname = "drlt",
        category = "drlaas",
        namespaced,
        status = "DRLTaskStatus",
        cel,
        printcolumn(name = "Phase", type_ = "string", json_path = ".status.phase"),
        printcolumn(name = "Env", type_ = "string", json_path = ".spec.training.environment.kind"),
        printcolumn(name = "Worker", type_ = "string", json_path = ".status.worker"),
        printcolumn(name = "Return", type_ = "number", json_path = ".status.progress.meanReturn"),
        printcolumn(name = "Target", type_ = "number", json_path = ".spec.training.targetMeanReturn"),
        printcolumn(name = "Model", type_ = "string", json_path = ".status.modelCid", priority = 1),
        printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp"),
        doc = "A requester's order for a trained deep-RL policy: what to train (`spec.training`), who pays (`spec.payment`) or which on-chain task it mirrors (`spec.chainTaskId`), and, in `status`, how far the operator got, from escrow to settlement. The spec cannot change once created."
    )
)]
// The spec's rules are on the spec rather than on the root, so that the API server's ratcheting
// skips them when an update leaves the spec alone (status and metadata updates).
#[cfg_attr(feature = "schema", schemars(
    transform = crate::schema::non_nullable,
    extend("x-kubernetes-validations" = [
        {
            "rule": "self == oldSelf",
            "message": "spec is immutable once created: the escrow pays for it; delete the task and create another",
            "reason": "FieldValueForbidden"
        },
        {
            "rule": "has(self.payment) != has(self.chainTaskId)",
            "message": "exactly one of spec.payment (post the task from a wallet) and spec.chainTaskId (a task already on chain) is required"
        },
        {
            "rule": "!has(self.payment) || has(self.training.targetMeanReturn)",
            "message": "required for a paid task: the escrow is paid out against it",
            "fieldPath": ".training.targetMeanReturn",
            "reason": "FieldValueRequired"
        }
    ])
))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DRLTaskSpec {
    /// `Training` (default) or `ModelSharing`.
    #[serde(default)]
    pub kind: TaskKind,
    /// What to train and how: the same type the trainer reads (environment, algorithm,
    /// hyperparameters, `totalEnvSteps`, `targetMeanReturn`, `evalEpisodes`, `seed`, ...).
    pub training: TrainingSpec,
    /// What the trainer pod gets.
    #[serde(default)]
    pub resources: TaskResources,
    /// Who pays, for a task posted from Kubernetes. Absent for a task mirrored from chain.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment: Option<Payment>,
    /// The on-chain task id, for a task mirrored from chain (set by the operator's chain watcher).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chain_task_id: Option<u64>,
    /// Initial weights: `none` (default), `auto` (buy the most similar model listed on chain) or a
    /// model CID.
    #[serde(default = "default_warm_start")]
    #[cfg_attr(feature = "schema", schemars(length(max = 128), extend("x-kubernetes-validations" = [{
        "rule": "self == 'none' || self == 'auto' || self.matches('^(Qm[1-9A-HJ-NP-Za-km-z]{44}|b[a-z2-7]{58,})$')",
        "message": "warmStart must be none, auto or a model CID (Qm… or b…)"
    }])))]
    pub warm_start: String,
    /// Lowest on-chain reputation a worker needs, in [0, 1]. Default 0.
    #[serde(default)]
    #[cfg_attr(feature = "schema", schemars(range(min = 0.0, max = 1.0)))]
    pub min_reputation: f64,
    /// Seconds from admission until the result must be on chain. Default 3600 (one hour).
    #[serde(default = "default_deadline_seconds")]
    #[cfg_attr(feature = "schema", schemars(range(min = 60, max = 31_536_000)))]
    pub deadline_seconds: u64,
    /// Attempts (workers) before the task fails and the escrow is refunded. Default 3.
    #[serde(default = "default_max_attempts")]
    #[cfg_attr(feature = "schema", schemars(range(min = 1, max = 10)))]
    pub max_attempts: u32,
}

fn default_warm_start() -> String {
    "none".into()
}
fn default_deadline_seconds() -> u64 {
    3600
}
fn default_max_attempts() -> u32 {
    3
}

/// Resources of the trainer pod.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct TaskResources {
    /// Whole GPUs (`nvidia.com/gpu`). Default 0.
    #[cfg_attr(feature = "schema", schemars(range(max = 8)))]
    pub gpu: u32,
    /// CPU request and limit, as a Kubernetes quantity: cores (`2`, `0.5`) or millicores (`500m`),
    /// more than 0 and at most 4294967 cores. Default `"2"`.
    #[cfg_attr(feature = "schema", schemars(
        regex(pattern = r"^([0-9]+m|[0-9]+(\.[0-9]+)?)$"),
        length(max = 16),
        extend("x-kubernetes-validations" = [{
            "rule": "!self.matches('^([0-9]+m|[0-9]+([.][0-9]+)?)$') || (self.endsWith('m') ? int(self.substring(0, self.size() - 1)) >= 1 && int(self.substring(0, self.size() - 1)) <= 4294967295 : double(self) * 1000.0 >= 0.5 && double(self) * 1000.0 < 4294967295.5)",
            "message": "more than 0 CPU (at least 1m) and at most 4294967 cores, such as 2, 0.5 or 500m"
        }])
    ))]
    pub cpu: String,
    /// Memory request and limit, as a Kubernetes quantity (`512Mi`, `4Gi`, `1G`, bytes), more than 0.
    /// Default `"4Gi"`.
    #[cfg_attr(feature = "schema", schemars(
        regex(pattern = r"^[0-9]+(\.[0-9]+)?([kMGT]|[KMGT]i)?$"),
        length(max = 16),
        extend("x-kubernetes-validations" = [{
            "rule": "self.matches('[1-9]')",
            "message": "more than 0 memory, such as 512Mi, 4Gi or 1G"
        }])
    ))]
    pub memory: String,
}

impl Default for TaskResources {
    fn default() -> Self {
        TaskResources {
            gpu: 0,
            cpu: "2".into(),
            memory: "4Gi".into(),
        }
    }
}

/// Escrow for a task posted from Kubernetes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Payment {
    /// The budget in wei, as a decimal string (wei amounts exceed 2^53).
    #[cfg_attr(
        feature = "schema",
        schemars(regex(pattern = r"^[1-9][0-9]{0,29}$"), length(max = 30))
    )]
    pub amount_wei: String,
    /// The requester's signing key: a Secret in the task's namespace.
    pub wallet_secret_ref: SecretKeyRef,
}

/// A key of a Secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SecretKeyRef {
    /// The Secret's name.
    #[cfg_attr(feature = "schema", schemars(length(min = 1, max = 253)))]
    pub name: String,
    /// The key holding the hex private key. Default `privateKey`.
    #[serde(default = "default_secret_key")]
    #[cfg_attr(feature = "schema", schemars(length(min = 1, max = 253)))]
    pub key: String,
}

fn default_secret_key() -> String {
    "privateKey".into()
}

/// Where a task is (the operator's state machine, `core::lifecycle`, moves it). Ordered: later
/// phases compare greater.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub enum TaskPhase {
    /// Accepted and validated, not yet bound to an on-chain task with escrow.
    Pending,
    /// Escrow funded on chain, waiting for a worker.
    Funded,
    /// A worker is recorded on chain; its trainer is being started.
    Assigned,
    /// The trainer runs.
    Training,
    /// A result is on chain; the model is being verified.
    Verifying,
    /// Paid, refunded, expired or cancelled on chain: nothing more happens.
    Settled,
}

/// How a settled task ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub enum TaskOutcome {
    /// The model passed verification and the worker was paid.
    Paid,
    /// Every attempt failed; the requester was refunded (and failed workers slashed).
    Refunded,
    /// The deadline passed; the requester was refunded.
    Expired,
    /// The requester cancelled before assignment.
    Cancelled,
}

#[cfg(feature = "kube")]
/// What the operator reports about a task.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct DRLTaskStatus {
    /// The phase.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<TaskPhase>,
    /// How it ended, once settled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<TaskOutcome>,
    /// The spec generation this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// `EscrowFunded`, `WorkerAssigned`, `Training`, `Verifying`, `Settled`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// The on-chain task id, once posted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chain_task_id: Option<u64>,
    /// The worker of the current (or last) attempt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub worker: Option<String>,
    /// Attempts started.
    #[serde(default)]
    pub attempts: u32,
    /// Workers whose attempt failed: the task is not offered to them again.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub failed_workers: Vec<String>,
    /// The escrow's budget in wei (decimal), once on chain: recruitment orders tasks by it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub budget_wei: Option<String>,
    /// Training progress from the trainer's progress lines.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub progress: Option<Progress>,
    /// CID of the submitted model.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model_cid: Option<String>,
    /// The model the trainer starts from, when `warmStart` is `auto` (or the task shares a model).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warm_start: Option<WarmStartChoice>,
    /// The operator's own evaluation of the model.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub evaluation: Option<Evaluation>,
    /// Transactions sent for the task, by action (`post`, `assign`, `complete`, ...), as hashes.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub transactions: BTreeMap<String, String>,
    /// A human-readable note on the last transition or on why the task waits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Why the last failed attempt failed (the trainer's or the environment's error, a return
    /// below the target, ...): kept after the task settles, when `message` says how it ended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_failure: Option<String>,
}

/// Training progress.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct Progress {
    /// Environment steps trained so far.
    pub env_steps: u64,
    /// Environment steps the run trains for at most (`spec.training.totalEnvSteps`).
    pub total_env_steps: u64,
    /// The trainer's latest mean team return, once it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mean_return: Option<f64>,
    /// Environment steps per second.
    pub sps: f64,
    /// Estimated seconds until `totalEnvSteps` is reached.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eta_seconds: Option<u64>,
}

/// What `warmStart: auto` found on the model market.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct WarmStartChoice {
    /// The model bought; absent when no listed model was similar enough.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model_cid: Option<String>,
    /// Its MMC listing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub listing_id: Option<u64>,
    /// Environment similarity (docs/architecture.md#recruitment) between the task and the model, in [0, 1].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub similarity: Option<f64>,
    /// Why this model, or why none.
    pub reason: String,
}

/// The verifier's evaluation.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct Evaluation {
    /// The model's mean team return over the evaluation's episodes (0 when there was none to
    /// evaluate).
    pub mean_return: f64,
    /// What uniformly random actions scored on the same environment, seed and episodes: the
    /// baseline the model is compared with (absent from an evaluator that does not measure it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub random_mean_return: Option<f64>,
    /// Episodes the evaluation ran.
    pub episodes: u32,
    /// The block whose hash seeded the evaluation (after the result was submitted).
    pub seed_block: u64,
    /// Whether the model passed verification (the submitted model, reaching the target).
    pub passed: bool,
}
