//! The custom resources' schemas: the committed CRD YAML is what the types generate, and the CEL
//! rules reject bad objects with messages that say what to do (evaluated here with kube's CEL
//! engine, the rules the API server runs).

use drlaas_crds::task::DRLTask;
use drlaas_crds::worker::Worker;
use serde_json::json;

const GENERATED: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/generated/drlaas.io.yaml");
/// The Helm chart installs the same CRDs (helm applies `crds/` of a chart before its templates).
const CHART_COPY: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../charts/drlaas/crds/drlaas.io.yaml");

fn rendered() -> String {
    drlaas_crds::crds_yaml()
}

#[test]
fn committed_crds_are_up_to_date() {
    let now = rendered();
    for path in [GENERATED, CHART_COPY] {
        if std::env::var_os("DRLAAS_UPDATE_CRDS").is_some() {
            std::fs::write(path, &now).unwrap();
        }
        let committed = std::fs::read_to_string(path).unwrap_or_default();
        assert!(
            committed == now,
            "{path} is stale: run `DRLAAS_UPDATE_CRDS=1 cargo test -p drlaas-crds --features kube --test schema` and commit it"
        );
    }
}

fn task(spec: serde_json::Value) -> DRLTask {
    serde_json::from_value(json!({
        "apiVersion": "drlaas.io/v1alpha1",
        "kind": "DRLTask",
        "metadata": {"name": "maze", "namespace": "team-a"},
        "spec": spec,
    }))
    .unwrap()
}

/// A file of `deploy/examples/`, as JSON.
fn example(name: &str) -> serde_json::Value {
    let path = format!("{}/../deploy/examples/{name}", env!("CARGO_MANIFEST_DIR"));
    serde_saphyr::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

/// The spec of the example task (the examples are checked here too).
fn good_spec() -> serde_json::Value {
    example("drltask-maze.yaml")["spec"].clone()
}

/// The CEL verdict on a task object that need not deserialize (what the API server checks).
fn cel_on_raw_task(spec: serde_json::Value) -> String {
    use kube::CustomResourceExt;
    let crd = DRLTask::crd();
    let version = &crd.spec.versions[0];
    let schema = serde_json::to_value(version.schema.as_ref().unwrap().open_api_v3_schema.as_ref().unwrap()).unwrap();
    let object =
        json!({"apiVersion": "drlaas.io/v1alpha1", "kind": "DRLTask", "metadata": {"name": "t"}, "spec": spec});
    cel_errors(kube::core::cel::Validator::new().validate(&schema, &object, None))
}

fn cel_errors(result: Result<(), impl std::fmt::Display>) -> String {
    match result {
        Ok(()) => String::new(),
        Err(e) => e.to_string(),
    }
}

#[test]
fn a_good_task_passes_and_defaults_are_filled() {
    let t = task(good_spec());
    assert_eq!(cel_errors(t.validate_cel()), "");
    assert_eq!(t.spec.warm_start, "none");
    assert_eq!(t.spec.max_attempts, 3);
    let mut bare = good_spec();
    bare.as_object_mut().unwrap().remove("resources");
    assert_eq!(task(bare).spec.resources.cpu, "2");
}

#[test]
fn cel_rejects_bad_tasks_with_clear_messages() {
    let mut both = good_spec();
    both["chainTaskId"] = json!(7);
    let err = cel_errors(task(both).validate_cel());
    assert!(err.contains("exactly one of spec.payment"), "{err}");

    let mut neither = good_spec();
    neither.as_object_mut().unwrap().remove("payment");
    assert!(cel_errors(task(neither).validate_cel()).contains("exactly one of spec.payment"));

    let mut warm = good_spec();
    warm["warmStart"] = json!("latest");
    let err = cel_errors(task(warm).validate_cel());
    assert!(err.contains("warmStart must be none, auto or a model CID"), "{err}");

    // Rejected by serde as well, so checked on the raw object as the API server sees it.
    let mut cartpole_grid = good_spec();
    cartpole_grid["training"]["environment"] = json!({"kind": "cartpole", "grid": 8});
    let err = cel_on_raw_task(cartpole_grid);
    assert!(err.contains("cartpole takes only horizon"), "{err}");

    let mut by_cid = good_spec();
    by_cid["warmStart"] = json!("bafybeib4ks7u5sdpjo5cdng23hpz43jekwfys6qqbzznnch3e4tzgh2cma");
    assert_eq!(cel_errors(task(by_cid).validate_cel()), "");
}

#[test]
fn the_spec_cannot_change_once_created() {
    let old = task(good_spec());
    let mut changed = good_spec();
    changed["minReputation"] = json!(0.5);
    let err = cel_errors(task(changed).validate_cel_update(&old));
    assert!(err.contains("spec is immutable once created"), "{err}");
    assert_eq!(cel_errors(task(good_spec()).validate_cel_update(&old)), "");
}

/// The example worker with other `expertise`.
fn worker(expertise: serde_json::Value) -> Worker {
    let mut object = example("worker.yaml");
    object["spec"]["expertise"] = expertise;
    serde_json::from_value(object).unwrap()
}

#[test]
fn worker_expertise_names_known_kinds_with_levels_in_range() {
    let example: Worker = serde_json::from_value(example("worker.yaml")).unwrap();
    assert_eq!(cel_errors(example.validate_cel()), "");
    assert_eq!(
        cel_errors(worker(json!({"maze-cleaning": 0.9, "cartpole": 0.5})).validate_cel()),
        ""
    );
    for bad in [json!({"chess": 0.9}), json!({"maze-cleaning": 1.5})] {
        let err = cel_errors(worker(bad.clone()).validate_cel());
        assert!(err.contains("expertise keys must be environment kinds"), "{bad}: {err}");
    }
}

#[test]
fn kubectl_shows_phase_worker_return_and_age() {
    let yaml = rendered();
    for column in [
        "name: Phase",
        "name: Worker",
        "name: Return",
        "name: Age",
        "name: Reputation",
        "name: Sales",
        "name: Rating",
    ] {
        assert!(yaml.contains(column), "missing printer column {column}");
    }
    assert!(yaml.contains("- drlt") && yaml.contains("scope: Namespaced") && yaml.contains("scope: Cluster"));
    assert!(
        yaml.contains("- drlm") && yaml.contains("plural: drlmodels"),
        "kubectl get drlmodels shows the market"
    );
    // OpenAPI ranges and patterns the API server checks besides CEL.
    assert!(yaml.contains("pattern: ^0x[0-9a-fA-F]{40}$"));
    assert!(yaml.contains("maximum: 1.0") || yaml.contains("maximum: 1"));
}
