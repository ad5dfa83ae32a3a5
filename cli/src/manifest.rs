//! Reading `DRLTask` YAML written by people: one file may hold several documents (`---`). A
//! mistake is reported with the file, the document, the field's path and what was expected, before
//! anything is posted or escrowed: the checks a real API server runs (the CRD's schema and CEL rules,
//! through [`drlaas_local::admission`]) and then the operator's admission.

use std::path::{Path, PathBuf};

use drlaas_crds::task::DRLTask;
use serde_json::Value;

use drlaas_core::admission::validate_task;
use drlaas_local::admission::refusals;

/// Why a manifest was refused.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error("{path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{path}: not YAML: {message}")]
    Syntax { path: PathBuf, message: String },
    #[error("{path}, document {document}: {field}: {message}")]
    Field {
        path: PathBuf,
        /// 1-based, in file order.
        document: usize,
        /// e.g. `spec.training.environment.grid`.
        field: String,
        message: String,
    },
    #[error("{path}: no DRLTask in the file")]
    Empty { path: PathBuf },
}

/// Where the tasks of a file go, which decides what the API server will be shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Destination {
    /// Applied as written (`drlaas local run`, `kubectl apply`): the object itself must pass.
    Cluster,
    /// Posted on chain by `drlaas task submit`, paid from the command line's key: the object the
    /// chain watcher will create from it must pass, which is the task as a paid one.
    Chain,
}

/// The `DRLTask`s in the YAML file at `path`, each checked by admission.
pub fn load_tasks(path: &Path, destination: Destination) -> Result<Vec<DRLTask>, ManifestError> {
    let text = std::fs::read_to_string(path).map_err(|source| ManifestError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    parse_tasks(&text, destination).map_err(|e| e.at(path))
}

/// A manifest error before the file is known (see [`load_tasks`]).
#[derive(Debug)]
pub enum ParseError {
    Syntax(String),
    Field {
        document: usize,
        field: String,
        message: String,
    },
    Empty,
}

impl ParseError {
    fn at(self, path: &Path) -> ManifestError {
        let path = path.to_path_buf();
        match self {
            ParseError::Syntax(message) => ManifestError::Syntax { path, message },
            ParseError::Field {
                document,
                field,
                message,
            } => ManifestError::Field {
                path,
                document,
                field,
                message,
            },
            ParseError::Empty => ManifestError::Empty { path },
        }
    }
}

/// The `DRLTask`s in a YAML text, each checked by admission.
pub fn parse_tasks(text: &str, destination: Destination) -> Result<Vec<DRLTask>, ParseError> {
    let documents: Vec<Value> = serde_saphyr::from_multiple(text).map_err(|e| ParseError::Syntax(e.to_string()))?;
    let documents: Vec<Value> = documents.into_iter().filter(|d| !d.is_null()).collect();
    if documents.is_empty() {
        return Err(ParseError::Empty);
    }
    documents
        .into_iter()
        .enumerate()
        .map(|(i, document)| parse_task(i + 1, document, destination))
        .collect()
}

fn parse_task(document: usize, value: Value, destination: Destination) -> Result<DRLTask, ParseError> {
    let field = |field: &str, message: String| ParseError::Field {
        document,
        field: field.to_string(),
        message,
    };
    match value["apiVersion"].as_str() {
        Some("drlaas.io/v1alpha1") => {}
        other => {
            return Err(field(
                "apiVersion",
                format!("expected drlaas.io/v1alpha1, got {}", shown(other)),
            ));
        }
    }
    if value["kind"].as_str() != Some("DRLTask") {
        return Err(field(
            "kind",
            format!("expected DRLTask, got {}", shown(value["kind"].as_str())),
        ));
    }
    let Some(name) = value["metadata"]["name"]
        .as_str()
        .filter(|n| !n.is_empty())
        .map(str::to_owned)
    else {
        return Err(field("metadata.name", "a name is required".into()));
    };
    let mut value = value;
    // The API server's schema and CEL rules first, as a cluster would refuse the object; a type
    // error is said better by serde's path below, so those wait for it.
    let refused = match destination {
        Destination::Cluster => refusals("drltasks", &name, None, &mut value),
        Destination::Chain => {
            // Paid from the command line when the file names no payment: the budget is checked
            // where it is given (`--budget` or `spec.payment.amountWei`).
            let mut paid = value.clone();
            if paid["spec"].is_object() && paid["spec"].get("payment").is_none() {
                paid["spec"]["payment"] =
                    serde_json::json!({"amountWei": "1", "walletSecretRef": {"name": "command-line"}});
            }
            refusals("drltasks", &name, None, &mut paid)
        }
    };
    let task: DRLTask = serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        field(&path, e.into_inner().to_string())
    })?;
    if let Some(first) = refused.first() {
        let (path, message) = first.split_once(": ").unwrap_or(("spec", first));
        return Err(field(path, message.to_string()));
    }
    validate_task(&task.spec).map_err(|e| field(&e.field, e.message))?;
    Ok(task)
}

fn shown(value: Option<&str>) -> String {
    value.map_or_else(|| "nothing".to_string(), |v| format!("{v:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "apiVersion: drlaas.io/v1alpha1
kind: DRLTask
metadata: {name: pole}
spec:
  training:
    environment: {kind: cartpole}
    targetMeanReturn: 150
  payment: {amountWei: \"1000\", walletSecretRef: {name: w}}
";

    fn field_error(text: &str) -> (String, String) {
        match parse_tasks(text, Destination::Cluster) {
            Err(ParseError::Field { field, message, .. }) => (field, message),
            other => panic!("expected a field error, got {other:?}"),
        }
    }

    #[test]
    fn several_documents_are_read_in_order() {
        let text = format!("{GOOD}---\n{}", GOOD.replace("name: pole", "name: pole-2"));
        let tasks = parse_tasks(&text, Destination::Cluster).unwrap();
        let names: Vec<_> = tasks.iter().map(|t| t.metadata.name.clone().unwrap()).collect();
        assert_eq!(names, ["pole", "pole-2"]);
    }

    #[test]
    fn an_unknown_environment_kind_names_the_field_and_the_known_kinds() {
        let (field, message) = field_error(&GOOD.replace("kind: cartpole", "kind: pong"));
        assert_eq!(field, "spec.training.environment.kind");
        assert!(
            message.contains("pong") && message.contains("maze-cleaning"),
            "{message}"
        );
    }

    #[test]
    fn a_wrong_type_names_the_path() {
        let (field, message) = field_error(&GOOD.replace("targetMeanReturn: 150", "targetMeanReturn: high"));
        assert_eq!(field, "spec.training.targetMeanReturn");
        assert!(message.contains("f64") || message.contains("float"), "{message}");
    }

    #[test]
    fn admission_rules_apply() {
        let (field, _) = field_error(&GOOD.replace("    targetMeanReturn: 150\n", ""));
        assert_eq!(field, "spec.training.targetMeanReturn");
        let (field, _) = field_error(&GOOD.replace("kind: DRLTask", "kind: Worker"));
        assert_eq!(field, "kind");
    }

    #[test]
    fn every_example_task_is_accepted() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/examples");
        let mut tasks = 0;
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            let text = std::fs::read_to_string(&path).unwrap();
            if text.contains("kind: DRLTask") {
                tasks += load_tasks(&path, Destination::Cluster)
                    .unwrap_or_else(|e| panic!("{e}"))
                    .len();
            }
        }
        assert!(
            tasks >= 6,
            "a task per environment kind, model sharing and the cluster example"
        );
    }

    #[test]
    fn the_crd_cel_rules_apply_as_on_a_cluster() {
        // Only a CEL rule of the CRD says that a task names exactly one of payment and chainTaskId.
        let both = GOOD.replace("  payment:", "  chainTaskId: 7\n  payment:");
        let (field, message) = field_error(&both);
        assert!(field.starts_with("spec"), "{field}");
        assert!(message.contains("exactly one of spec.payment"), "{message}");
        // And only a CEL rule bounds warmStart to none, auto or a CID.
        let warm = GOOD.replace("  payment:", "  warmStart: yesterday\n  payment:");
        let (_, message) = field_error(&warm);
        assert!(
            message.contains("warmStart must be none, auto or a model CID"),
            "{message}"
        );
    }

    #[test]
    fn a_task_to_post_on_chain_needs_no_payment_but_the_rules_of_a_paid_task() {
        let unpaid = GOOD.replace("  payment: {amountWei: \"1000\", walletSecretRef: {name: w}}\n", "");
        assert!(parse_tasks(&unpaid, Destination::Chain).is_ok());
        // As an object applied as written, it names neither payment nor chainTaskId.
        assert!(matches!(
            parse_tasks(&unpaid, Destination::Cluster),
            Err(ParseError::Field { .. })
        ));
        // Posted, it is a paid task: the target is still required.
        let no_target = unpaid.replace("    targetMeanReturn: 150\n", "");
        match parse_tasks(&no_target, Destination::Chain) {
            Err(ParseError::Field { field, .. }) => assert_eq!(field, "spec.training.targetMeanReturn"),
            other => panic!("expected a field error, got {other:?}"),
        }
    }

    #[test]
    fn broken_yaml_and_empty_files_are_refused() {
        assert!(matches!(
            parse_tasks("spec: [unclosed", Destination::Cluster),
            Err(ParseError::Syntax(_))
        ));
        assert!(matches!(
            parse_tasks("# nothing\n", Destination::Cluster),
            Err(ParseError::Empty)
        ));
    }
}
