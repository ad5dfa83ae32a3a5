//! The contract of a trainer or evaluator pod, shared by the operator that builds the pod and every
//! executor that runs one (a kubelet, or the local mode's process runner): where the task is
//! mounted, where the output goes, and the labels that tie the pod to its task and worker.

/// Where the task spec is mounted in the trainer.
pub const TASK_MOUNT: &str = "/etc/drlaas";
/// The trainer's output directory (an emptyDir).
pub const OUT_DIR: &str = "/work/out";
/// Where a pod's environment volume is mounted, in the trainer and its environment sidecar: the
/// sidecar's sockets and ready file, and the requester's package.
pub const ENV_MOUNT: &str = "/drlaas-env";
/// The name of a pod's environment sidecar (a native sidecar: an init container that keeps running).
pub const ENV_SIDECAR: &str = "environment";
/// The user the trainer image runs as.
pub const TRAINER_UID: i64 = 10001;
/// Label keys on everything the operator creates for a task.
pub const LABEL_TASK: &str = "drlaas.io/task";
pub const LABEL_ROLE: &str = "drlaas.io/role";
pub const LABEL_ATTEMPT: &str = "drlaas.io/attempt";
pub const LABEL_WORKER: &str = "drlaas.io/worker";
/// The whole name of the worker a pod runs for (its [`LABEL_WORKER`] label is shortened past 63
/// characters).
pub const ANNOTATION_WORKER: &str = "drlaas.io/worker";
