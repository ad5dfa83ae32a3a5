//! A task's two halves on chain: what a `DRLTask` posts ([`TaskDocument`], [`chain_terms`]) and, the
//! other way, how a posted task becomes a `DRLTask` ([`mirrored_task`]).
//!
//! Tasks posted on chain become `DRLTask` objects (docs/architecture.md#tasks-posted-on-chain): one object per on-chain task, named
//! after the chain and the task id so that seeing the same event twice (a restart, a re-org replay)
//! finds the object already there instead of creating a second one.
//!
//! The requester stores the task's description (a `DRLTask` spec without `payment` or
//! `chainTaskId`) under the `specCid` it posts; the chain holds the money, the kind, the target and
//! the deadline. The two must agree, or the task is not mirrored: a worker must never train towards
//! a target the escrow does not pay for.

use std::collections::BTreeMap;

use drlaas_crds::task::{DRLTaskSpec, TaskKind};
use serde::{Deserialize, Serialize};

use super::admission::{FieldError, paid_target_milli, validate_task};

/// Labels and annotations on mirrored tasks.
pub const LABEL_CHAIN_ID: &str = "drlaas.io/chain-id";
pub const LABEL_CHAIN_TASK: &str = "drlaas.io/chain-task-id";
/// The CID of the task's document: set on mirrored tasks, and on a task posted from Kubernetes
/// *before* its post is sent, so the chain watcher recognizes the post as one of ours.
pub const LABEL_SPEC_CID: &str = "drlaas.io/spec-cid";
pub const ANNOTATION_SPEC_CID: &str = "drlaas.io/spec-cid";
pub const ANNOTATION_REQUESTER: &str = "drlaas.io/requester";

/// What a requester stores under the `specCid` it posts, and what the chain watcher reads back.
///
/// A task posted from Kubernetes names its object (`origin`, the DRLTask's UID), so that its
/// document, and therefore its CID, is its own: two identical tasks of one requester post two
/// documents, and a post found on chain under a CID belongs to exactly one object. That is what
/// makes a lost receipt recoverable without ever binding one chain task to two objects.
///
/// A document without the envelope (a bare spec) is read too: that is what other tools post.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TaskDocument {
    /// The UID of the DRLTask that posted it; absent for a task posted outside Kubernetes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin: Option<String>,
    /// The task, without `payment` or `chainTaskId` (the chain holds the money and the id).
    pub spec: DRLTaskSpec,
}

impl TaskDocument {
    /// The document of `spec` posted by the object `origin`: `payment` and `chainTaskId` removed.
    pub fn new(spec: &DRLTaskSpec, origin: Option<&str>) -> Self {
        let mut spec = spec.clone();
        spec.payment = None;
        spec.chain_task_id = None;
        TaskDocument {
            origin: origin.map(str::to_owned),
            spec,
        }
    }

    /// The bytes stored in the content store.
    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec_pretty(self).expect("a task document serializes")
    }

    /// Reads a document: the envelope, or a bare spec. The error is the envelope's when the text
    /// looks like one (it has a top-level `spec`), else the bare spec's.
    pub fn parse(text: &str) -> Result<Self, serde_json::Error> {
        let value: serde_json::Value = serde_json::from_str(text)?;
        if value.get("spec").is_some() {
            serde_json::from_value(value)
        } else {
            Ok(TaskDocument {
                origin: None,
                spec: serde_json::from_value(value)?,
            })
        }
    }
}

/// What the chain records of a task besides its document and its escrow: the terms the escrow
/// is paid out against, which [`mirrored_task`] checks the document against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChainTerms {
    pub kind: TaskKind,
    /// The target mean return in thousandths (see [`paid_target_milli`]; 0 for a spec without
    /// payment, which is refused before it is posted).
    pub target_milli: i32,
    /// Unix time by which the result must be on chain.
    pub deadline: u64,
}

/// The terms a task with `spec` is posted with when the chain's clock reads `now`.
pub fn chain_terms(spec: &DRLTaskSpec, now: u64) -> ChainTerms {
    ChainTerms {
        kind: spec.kind,
        target_milli: paid_target_milli(spec).ok().flatten().unwrap_or_default(),
        deadline: now + spec.deadline_seconds,
    }
}

/// A `TaskPosted` task as the chain records it (plain data: the edge converts from the chain types).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PostedTask {
    pub id: u64,
    pub requester: String,
    pub kind: TaskKind,
    pub target_milli: i32,
    /// Unix time by which the result must be on chain.
    pub deadline: u64,
    pub budget_wei: u128,
    pub spec_cid: String,
}

/// The name of the object mirroring task `task_id` of chain `chain_id`.
pub fn mirror_name(chain_id: u64, task_id: u64) -> String {
    format!("chain-{chain_id}-{task_id}")
}

/// The `DRLTask` that mirrors a posted task, as plain data: the edge that creates it adds the
/// namespace and the rest of the object's metadata.
#[derive(Debug, Clone, PartialEq)]
pub struct MirroredTask {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    pub spec: DRLTaskSpec,
}

/// The `DRLTask` for `posted`, from the document stored under its spec CID, at unix time `now`.
pub fn mirrored_task(chain_id: u64, posted: &PostedTask, document: &str, now: u64) -> Result<MirroredTask, FieldError> {
    let invalid = |field: &str, message: String| FieldError {
        field: field.into(),
        message,
    };
    let mut spec = TaskDocument::parse(document)
        .map_err(|e| {
            invalid(
                "specCid",
                format!("the document at {} is not a task spec: {e}", posted.spec_cid),
            )
        })?
        .spec;
    if spec.payment.is_some() || spec.chain_task_id.is_some() {
        return Err(invalid(
            "specCid",
            "a posted task's document names neither payment nor chainTaskId".into(),
        ));
    }
    if spec.kind != posted.kind {
        return Err(invalid(
            "spec.kind",
            format!("the document says {:?}, the chain {:?}", spec.kind, posted.kind),
        ));
    }
    let document_target = spec.training.target_mean_return.map(|t| (t * 1000.0).round() as i64);
    if document_target != Some(i64::from(posted.target_milli)) {
        return Err(invalid(
            "spec.training.targetMeanReturn",
            format!(
                "the document asks for {:?}, the escrow pays for {}",
                spec.training.target_mean_return,
                f64::from(posted.target_milli) / 1000.0
            ),
        ));
    }
    let left = posted.deadline.saturating_sub(now);
    if left < 60 {
        return Err(invalid(
            "deadline",
            format!("the deadline is {left} s away: too close to train"),
        ));
    }
    spec.chain_task_id = Some(posted.id);
    spec.deadline_seconds = left;
    validate_task(&spec)?;

    Ok(MirroredTask {
        name: mirror_name(chain_id, posted.id),
        labels: BTreeMap::from([
            (LABEL_CHAIN_ID.to_string(), chain_id.to_string()),
            (LABEL_CHAIN_TASK.to_string(), posted.id.to_string()),
            (LABEL_SPEC_CID.to_string(), posted.spec_cid.clone()),
        ]),
        annotations: BTreeMap::from([
            (ANNOTATION_SPEC_CID.to_string(), posted.spec_cid.clone()),
            (ANNOTATION_REQUESTER.to_string(), posted.requester.clone()),
        ]),
        spec,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn posted() -> PostedTask {
        PostedTask {
            id: 42,
            requester: "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC".into(),
            kind: TaskKind::Training,
            target_milli: 20_000,
            deadline: 10_000,
            budget_wei: 5,
            spec_cid: "bafkreiee3cmhp4guaqppw27zdilpajepf7kxhzvpaxaz7fv63opyql3yqi".into(),
        }
    }

    const DOC: &str = r#"{"training": {"environment": {"kind": "maze-cleaning"}, "targetMeanReturn": 20.0}}"#;

    #[test]
    fn documents_of_identical_tasks_differ_by_their_object_and_read_back() {
        let spec: DRLTaskSpec = serde_json::from_str(DOC).unwrap();
        let a = TaskDocument::new(&spec, Some("uid-a")).to_bytes();
        let b = TaskDocument::new(&spec, Some("uid-b")).to_bytes();
        assert_ne!(a, b, "two objects, two documents, two CIDs");
        let read = TaskDocument::parse(std::str::from_utf8(&a).unwrap()).unwrap();
        assert_eq!((read.origin.as_deref(), read.spec), (Some("uid-a"), spec.clone()));
        assert_eq!(TaskDocument::parse(DOC).unwrap().spec, spec, "a bare spec is read too");
        let envelope = mirrored_task(1, &posted(), std::str::from_utf8(&a).unwrap(), 0).unwrap();
        assert_eq!(envelope.spec, mirrored_task(1, &posted(), DOC, 0).unwrap().spec);
        let err = TaskDocument::parse(r#"{"spec": {"training": {}}, "owner": "x"}"#).unwrap_err();
        assert!(err.to_string().contains("unknown field `owner`"), "{err}");
    }

    #[test]
    fn a_task_posted_with_its_terms_mirrors_back_to_its_spec() {
        let paid = r#"{"training": {"environment": {"kind": "maze-cleaning"}, "targetMeanReturn": 20.0},
                       "payment": {"amountWei": "5", "walletSecretRef": {"name": "w"}}, "deadlineSeconds": 3600}"#;
        let spec: DRLTaskSpec = serde_json::from_str(paid).unwrap();
        let terms = chain_terms(&spec, 1_000);
        assert_eq!(
            terms,
            ChainTerms {
                kind: TaskKind::Training,
                target_milli: 20_000,
                deadline: 4_600
            }
        );
        let document = TaskDocument::new(&spec, Some("uid")).to_bytes();
        let p = PostedTask {
            kind: terms.kind,
            target_milli: terms.target_milli,
            deadline: terms.deadline,
            ..posted()
        };
        let mirrored = mirrored_task(1, &p, std::str::from_utf8(&document).unwrap(), 1_000).unwrap();
        assert_eq!(mirrored.spec.training, spec.training);
        assert_eq!(mirrored.spec.deadline_seconds, spec.deadline_seconds);
    }

    #[test]
    fn a_posted_task_is_mirrored_once_under_a_stable_name() {
        let task = mirrored_task(31337, &posted(), DOC, 6_400).unwrap();
        assert_eq!(task.name, "chain-31337-42");
        assert_eq!(task.spec.chain_task_id, Some(42));
        assert_eq!(task.spec.deadline_seconds, 3_600);
        assert_eq!(task.annotations[ANNOTATION_SPEC_CID], posted().spec_cid);
        let again = mirrored_task(31337, &posted(), DOC, 6_400).unwrap();
        assert_eq!(again, task, "the same event, the same object");
    }

    #[test]
    fn a_document_that_disagrees_with_the_escrow_is_refused() {
        let mut p = posted();
        p.target_milli = 25_000;
        let err = mirrored_task(1, &p, DOC, 0).unwrap_err();
        assert_eq!(err.field, "spec.training.targetMeanReturn", "{err}");

        p = posted();
        p.kind = TaskKind::ModelSharing;
        assert_eq!(mirrored_task(1, &p, DOC, 0).unwrap_err().field, "spec.kind");

        let paid = r#"{"training": {"environment": {"kind": "maze-cleaning"}, "targetMeanReturn": 20.0},
                       "payment": {"amountWei": "1", "walletSecretRef": {"name": "w"}}}"#;
        assert!(
            mirrored_task(1, &posted(), paid, 0)
                .unwrap_err()
                .message
                .contains("neither payment")
        );

        let err = mirrored_task(1, &posted(), "not json", 0).unwrap_err();
        assert!(
            err.to_string().starts_with("invalid specCid: the document at bafkrei"),
            "{err}"
        );

        assert_eq!(mirrored_task(1, &posted(), DOC, 9_990).unwrap_err().field, "deadline");

        let bad_env =
            r#"{"training": {"environment": {"kind": "maze-cleaning", "grid": 99}, "targetMeanReturn": 20.0}}"#;
        assert_eq!(
            mirrored_task(1, &posted(), bad_env, 0).unwrap_err().field,
            "spec.training.environment.grid"
        );
    }
}
