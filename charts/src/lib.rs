//! Checks of the drlaas Helm chart and the `deploy/` manifests, used by this crate's tests.
//!
//! - [`Helm`] runs the pinned helm (`tools/helm.sh`, docs/architecture.md#toolchain) on `charts/drlaas`.
//! - [`documents`] splits rendered YAML into JSON objects.
//! - [`rbac::Permissions`] says whether the chart's RBAC allows a request (the operator's tests
//!   ask it about every request the operator made).
//! - [`check_object`] checks an object against the Kubernetes API types strictly: it is deserialized
//!   into its k8s-openapi type and serialized back, and every field the type dropped (a typo, a field
//!   at the wrong level) or changed is reported by its path. The k8s-openapi types ignore unknown
//!   fields, so deserializing alone would accept `readOnlyRootFileSystem` and let the API server drop
//!   it silently. drlaas's own resources are checked against the `drlaas-crds` types the same way.

pub mod rbac;

use std::path::{Path, PathBuf};
use std::process::Command;

use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, PersistentVolumeClaim, Secret, Service, ServiceAccount};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

/// The repository's root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("charts/ is in the repository")
        .to_path_buf()
}

/// The chart's directory.
pub fn chart_dir() -> PathBuf {
    repo_root().join("charts/drlaas")
}

/// The pinned helm binary.
#[derive(Debug, Clone)]
pub struct Helm {
    binary: PathBuf,
}

/// What a helm run printed.
#[derive(Debug)]
pub struct HelmOutput {
    pub success: bool,
    pub stdout: String,
    pub stderr: String,
}

impl Helm {
    /// helm from `$DRLAAS_HELM`, else the one `tools/helm.sh` installs (installing it if needed).
    pub fn pinned() -> Helm {
        if let Some(binary) = std::env::var_os("DRLAAS_HELM") {
            return Helm { binary: binary.into() };
        }
        let script = repo_root().join("tools/helm.sh");
        let out = Command::new(&script)
            .arg("path")
            .output()
            .unwrap_or_else(|e| panic!("{}: {e}", script.display()));
        assert!(
            out.status.success(),
            "tools/helm.sh could not install helm:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        Helm {
            binary: String::from_utf8_lossy(&out.stdout).trim().into(),
        }
    }

    /// Runs helm with `args` in the repository root.
    pub fn run<I, S>(&self, args: I) -> HelmOutput
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        let out = Command::new(&self.binary)
            .args(args)
            .current_dir(repo_root())
            .output()
            .unwrap_or_else(|e| panic!("{}: {e}", self.binary.display()));
        HelmOutput {
            success: out.status.success(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// `helm template` of the chart in namespace `drlaas-system` with the values files `values`
    /// (CRDs included): the rendered objects, or helm's error.
    pub fn template(&self, values: &[&Path]) -> Result<Vec<Value>, String> {
        let chart = chart_dir();
        let mut args: Vec<std::ffi::OsString> = vec![
            "template".into(),
            "drlaas".into(),
            chart.into(),
            "--namespace".into(),
            "drlaas-system".into(),
            "--include-crds".into(),
        ];
        for file in values {
            args.push("--values".into());
            args.push(file.into());
        }
        let out = self.run(args);
        if !out.success {
            return Err(out.stderr);
        }
        documents(&out.stdout)
    }
}

/// The objects of a multi-document YAML stream, as JSON (empty documents skipped).
pub fn documents(yaml: &str) -> Result<Vec<Value>, String> {
    let docs: Vec<Value> = serde_saphyr::from_multiple(yaml).map_err(|e| format!("not YAML: {e}"))?;
    Ok(docs.into_iter().filter(|d| !d.is_null()).collect())
}

/// A short name for an object in messages: `Kind namespace/name`.
pub fn describe(object: &Value) -> String {
    let kind = object["kind"].as_str().unwrap_or("?");
    let name = object["metadata"]["name"].as_str().unwrap_or("?");
    match object["metadata"]["namespace"].as_str() {
        Some(ns) => format!("{kind} {ns}/{name}"),
        None => format!("{kind} {name}"),
    }
}

/// Checks `object` against the Kubernetes API type of its `apiVersion` and `kind`; the error names
/// the object and every offending field.
pub fn check_object(object: &Value) -> Result<(), String> {
    let api_version = object["apiVersion"].as_str().unwrap_or_default();
    let kind = object["kind"].as_str().unwrap_or_default();
    let result = match (api_version, kind) {
        ("apps/v1", "Deployment") => round_trip::<Deployment>(object),
        ("apps/v1", "StatefulSet") => round_trip::<StatefulSet>(object),
        ("batch/v1", "Job") => round_trip::<Job>(object),
        ("v1", "ConfigMap") => round_trip::<ConfigMap>(object),
        ("v1", "Namespace") => round_trip::<Namespace>(object),
        ("v1", "PersistentVolumeClaim") => round_trip::<PersistentVolumeClaim>(object),
        ("v1", "Secret") => round_trip::<Secret>(object),
        ("v1", "Service") => round_trip::<Service>(object),
        ("v1", "ServiceAccount") => round_trip::<ServiceAccount>(object),
        ("networking.k8s.io/v1", "NetworkPolicy") => round_trip::<NetworkPolicy>(object),
        ("policy/v1", "PodDisruptionBudget") => round_trip::<PodDisruptionBudget>(object),
        ("rbac.authorization.k8s.io/v1", "ClusterRole") => round_trip::<ClusterRole>(object),
        ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding") => round_trip::<ClusterRoleBinding>(object),
        ("rbac.authorization.k8s.io/v1", "Role") => round_trip::<Role>(object),
        ("rbac.authorization.k8s.io/v1", "RoleBinding") => round_trip::<RoleBinding>(object),
        ("apiextensions.k8s.io/v1", "CustomResourceDefinition") => round_trip::<CustomResourceDefinition>(object),
        ("drlaas.io/v1alpha1", "DRLTask") => round_trip::<drlaas_crds::task::DRLTask>(object),
        ("drlaas.io/v1alpha1", "Worker") => round_trip::<drlaas_crds::worker::Worker>(object),
        ("drlaas.io/v1alpha1", "DRLModel") => round_trip::<drlaas_crds::model::DRLModel>(object),
        ("monitoring.coreos.com/v1", "ServiceMonitor") => round_trip::<service_monitor::ServiceMonitor>(object),
        _ => Err(format!(
            "no schema known for apiVersion {api_version:?} kind {kind:?}: add its type to drlaas_chart::check_object"
        )),
    };
    result.map_err(|e| format!("{}: {e}", describe(object)))
}

/// Deserializes `object` as `T`, serializes it back and reports what differs: a written field the
/// type does not have, or a value it reads differently. Fields the type adds (defaults) are fine.
fn round_trip<T: DeserializeOwned + Serialize>(object: &Value) -> Result<(), String> {
    let typed: T = serde_json::from_value(object.clone()).map_err(|e| e.to_string())?;
    let back = serde_json::to_value(&typed).map_err(|e| e.to_string())?;
    let mut problems = Vec::new();
    diff("", &without_nulls(object), &back, &mut problems);
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("; "))
    }
}

/// `value` without null fields (YAML's `key:` with nothing after it, which the types drop).
fn without_nulls(value: &Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k.clone(), without_nulls(v)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(without_nulls).collect()),
        other => other.clone(),
    }
}

fn diff(path: &str, written: &Value, typed: &Value, problems: &mut Vec<String>) {
    match (written, typed) {
        (Value::Object(w), Value::Object(t)) => {
            for (key, value) in w {
                let here = format!("{path}.{key}");
                match t.get(key) {
                    Some(tv) => diff(&here, value, tv, problems),
                    None => problems.push(format!("{} is not a field of the API type", &here[1..])),
                }
            }
        }
        (Value::Array(w), Value::Array(t)) if w.len() == t.len() => {
            for (i, (wv, tv)) in w.iter().zip(t).enumerate() {
                diff(&format!("{path}[{i}]"), wv, tv, problems);
            }
        }
        (w, t) if w == t => {}
        // 1 and 1.0 are the same number to the API server.
        (Value::Number(w), Value::Number(t)) if w.as_f64() == t.as_f64() => {}
        (w, t) => problems.push(format!(
            "{}: written {w}, the API type reads {t}",
            path.trim_start_matches('.')
        )),
    }
}

/// The Prometheus operator's ServiceMonitor (monitoring.coreos.com/v1): the fields the chart uses,
/// every other field refused.
mod service_monitor {
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
    use serde::{Deserialize, Serialize};

    #[derive(Debug, Serialize, Deserialize)]
    #[serde(rename_all = "camelCase", deny_unknown_fields)]
    pub struct ServiceMonitor {
        pub api_version: String,
        pub kind: String,
        pub metadata: ObjectMeta,
        pub spec: Spec,
    }

    #[derive(Debug, Serialize, Deserialize)]
    #[serde(rename_all = "camelCase", deny_unknown_fields)]
    pub struct Spec {
        pub selector: LabelSelector,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub namespace_selector: Option<NamespaceSelector>,
        pub endpoints: Vec<Endpoint>,
    }

    #[derive(Debug, Serialize, Deserialize)]
    #[serde(rename_all = "camelCase", deny_unknown_fields)]
    pub struct NamespaceSelector {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub any: Option<bool>,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        pub match_names: Vec<String>,
    }

    #[derive(Debug, Serialize, Deserialize)]
    #[serde(rename_all = "camelCase", deny_unknown_fields)]
    pub struct Endpoint {
        pub port: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub path: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub interval: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub scrape_timeout: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub honor_labels: Option<bool>,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn service(spec: Value) -> Value {
        json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "m", "namespace": "x"}, "spec": spec})
    }

    #[test]
    fn a_valid_object_passes() {
        check_object(&service(json!({"ports": [{"port": 80, "targetPort": "metrics"}]}))).unwrap();
    }

    #[test]
    fn a_misspelled_field_is_named_with_its_path() {
        let err = check_object(&service(json!({"ports": [{"port": 80, "targetPrt": 8080}]}))).unwrap_err();
        assert_eq!(
            err,
            "Service x/m: spec.ports[0].targetPrt is not a field of the API type"
        );
    }

    #[test]
    fn a_wrong_type_is_refused() {
        let err = check_object(&service(json!({"ports": [{"port": "eighty"}]}))).unwrap_err();
        assert!(err.starts_with("Service x/m: invalid type: string \"eighty\""), "{err}");
    }

    #[test]
    fn an_unknown_kind_is_refused_not_skipped() {
        let err = check_object(&json!({"apiVersion": "v1", "kind": "Pdo", "metadata": {"name": "p"}})).unwrap_err();
        assert!(err.contains("no schema known"), "{err}");
    }

    #[test]
    fn yaml_nulls_are_not_differences() {
        let object =
            documents("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\n  annotations:\ndata:\n  a: b\n")
                .unwrap()
                .remove(0);
        check_object(&object).unwrap();
    }
}
