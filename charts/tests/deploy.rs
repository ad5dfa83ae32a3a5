//! The manifests of `deploy/` (the dev stack and the examples) are valid Kubernetes objects, and the
//! dev stack's kustomization names every one of its manifests.

use std::collections::BTreeSet;
use std::path::PathBuf;

use drlaas_chart::{check_object, documents, repo_root};

/// Files of deploy/ that are not Kubernetes objects.
const NOT_OBJECTS: [&str; 2] = [
    // The local mode's workers file (`drlaas local run --workers`).
    "examples/local-workers.yaml",
    // Kustomize's own file.
    "dev/kustomization.yaml",
];

fn yaml_files(dir: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(repo_root().join("deploy").join(dir))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    files
}

#[test]
fn every_manifest_in_deploy_is_a_valid_object() {
    let mut checked = 0;
    let mut problems = Vec::new();
    for file in yaml_files("dev").into_iter().chain(yaml_files("examples")) {
        let relative = file
            .strip_prefix(repo_root().join("deploy"))
            .unwrap()
            .to_string_lossy()
            .to_string();
        if NOT_OBJECTS.contains(&relative.as_str()) {
            continue;
        }
        let text = std::fs::read_to_string(&file).unwrap();
        let objects = documents(&text).unwrap_or_else(|e| panic!("deploy/{relative}: {e}"));
        assert!(!objects.is_empty(), "deploy/{relative} holds no object");
        for object in objects {
            checked += 1;
            if let Err(e) = check_object(&object) {
                problems.push(format!("deploy/{relative}: {e}"));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    assert!(checked >= 20, "only {checked} objects checked");
}

#[test]
fn the_dev_kustomization_names_every_dev_manifest() {
    let dir = repo_root().join("deploy/dev");
    let kustomization: serde_json::Value =
        serde_saphyr::from_str(&std::fs::read_to_string(dir.join("kustomization.yaml")).unwrap()).unwrap();
    let listed: BTreeSet<String> = kustomization["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.as_str().unwrap().to_string())
        .collect();
    let present: BTreeSet<String> = yaml_files("dev")
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().to_string())
        .filter(|name| name != "kustomization.yaml")
        .collect();
    assert_eq!(listed, present);
}
