//! The pods the operator creates: golden files (the whole object, reviewed in diffs) and the
//! properties that must hold whatever else changes (security context, scheduling, resources).

use drlaas_crds::task::DRLTask;
use drlaas_crds::worker::Worker;
use drlaas_operator::pods::{EnvironmentSidecars, PodSettings, evaluator_pod, task_config_map, trainer_pod};
use k8s_openapi::api::core::v1::Pod;
use serde_json::json;

/// A file of `deploy/examples/`, as JSON.
fn example(name: &str) -> serde_json::Value {
    let path = format!("{}/../deploy/examples/{name}", env!("CARGO_MANIFEST_DIR"));
    serde_saphyr::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

/// The example task with `gpu` GPUs, as the API server returns it (with a uid).
fn task(gpu: u32) -> DRLTask {
    let mut object = example("drltask-maze.yaml");
    object["metadata"]["uid"] = json!("5f1c2b9e-0000-4000-8000-000000000001");
    object["spec"]["resources"]["gpu"] = json!(gpu);
    serde_json::from_value(object).unwrap()
}

fn worker() -> Worker {
    serde_json::from_value(example("worker.yaml")).unwrap()
}

fn settings() -> PodSettings {
    PodSettings {
        trainer_image: "ghcr.io/drlaas/trainer:0.1.0".into(),
        store_address: "http://kubo.drlaas:5001".into(),
        environments: EnvironmentSidecars {
            image: Some("ghcr.io/drlaas/environment:0.1.0".into()),
            ..EnvironmentSidecars::default()
        },
    }
}

/// Compares `object` with `tests/golden/NAME.yaml` (rewritten when `DRLAAS_UPDATE_GOLDEN` is set).
fn golden(name: &str, object: &impl serde::Serialize) {
    let path = format!("{}/tests/golden/{name}.yaml", env!("CARGO_MANIFEST_DIR"));
    let yaml = serde_saphyr::to_string(object).unwrap();
    if std::env::var_os("DRLAAS_UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, &yaml).unwrap();
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == yaml,
        "{path} differs from what the operator builds (DRLAAS_UPDATE_GOLDEN=1 to accept):\n{yaml}"
    );
}

#[test]
fn golden_trainer_evaluator_and_config_map() {
    let t = task(1);
    golden(
        "trainer-pod",
        &trainer_pod(
            &t,
            &worker(),
            2,
            Some("bafybeib4ks7u5sdpjo5cdng23hpz43jekwfys6qqbzznnch3e4tzgh2cma"),
            None,
            &settings(),
        ),
    );
    golden(
        "evaluator-pod",
        &evaluator_pod(
            &t,
            1,
            "bafybeib4ks7u5sdpjo5cdng23hpz43jekwfys6qqbzznnch3e4tzgh2cma",
            42,
            100,
            None,
            &settings(),
        ),
    );
    golden("task-config-map", &task_config_map(&t));
}

fn check_hardened(pod: &Pod) {
    let spec = pod.spec.as_ref().unwrap();
    assert_eq!(spec.restart_policy.as_deref(), Some("Never"));
    assert_eq!(spec.automount_service_account_token, Some(false));
    assert_eq!(spec.security_context.as_ref().unwrap().run_as_non_root, Some(true));
    for c in &spec.containers {
        let sc = c.security_context.as_ref().unwrap();
        assert_eq!(sc.allow_privilege_escalation, Some(false), "{}", c.name);
        assert_eq!(sc.read_only_root_filesystem, Some(true));
        assert_eq!(sc.run_as_non_root, Some(true));
        assert_eq!(
            sc.capabilities.as_ref().unwrap().drop.as_deref(),
            Some(&["ALL".to_string()][..])
        );
        let resources = c.resources.as_ref().unwrap();
        assert_eq!(
            resources.requests, resources.limits,
            "guaranteed QoS: requests equal limits"
        );
        assert!(resources.limits.as_ref().unwrap().contains_key("memory"));
    }
    let owner = &pod.metadata.owner_references.as_ref().unwrap()[0];
    assert_eq!((owner.kind.as_str(), owner.controller), ("DRLTask", Some(true)));
}

#[test]
fn every_pod_is_hardened_and_owned_by_its_task() {
    for gpu in [0, 1] {
        let t = task(gpu);
        check_hardened(&trainer_pod(&t, &worker(), 1, None, None, &settings()));
        check_hardened(&evaluator_pod(
            &t,
            1,
            "QmaEgb37wEknQKWn1EnVZovh7FGBtcbFYPzvUX6uTCcTAe",
            1,
            10,
            Some(&worker()),
            &settings(),
        ));
    }
}

#[test]
fn trainers_land_on_the_workers_pool_with_a_gpu_only_when_asked() {
    let pod = trainer_pod(
        &task(1),
        &worker(),
        1,
        None,
        Some("QmaEgb37wEknQKWn1EnVZovh7FGBtcbFYPzvUX6uTCcTAe"),
        &settings(),
    );
    let spec = pod.spec.unwrap();
    assert_eq!(spec.node_selector.unwrap()["drlaas.io/pool"], "lab-a");
    assert_eq!(spec.tolerations.unwrap()[0].key.as_deref(), Some("drlaas.io/pool"));
    let c = &spec.containers[0];
    assert_eq!(
        c.resources.as_ref().unwrap().limits.as_ref().unwrap()["nvidia.com/gpu"].0,
        "1"
    );
    let args = c.args.as_ref().unwrap().join(" ");
    assert!(
        args.contains("--device cuda") && args.contains("--resume QmaEgb37"),
        "{args}"
    );
    assert_eq!(
        c.env.as_ref().unwrap()[0].value.as_deref(),
        Some("http://kubo.drlaas:5001")
    );

    let cpu = trainer_pod(&task(0), &worker(), 1, None, None, &settings());
    let c = &cpu.spec.as_ref().unwrap().containers[0];
    assert!(
        !c.resources
            .as_ref()
            .unwrap()
            .limits
            .as_ref()
            .unwrap()
            .contains_key("nvidia.com/gpu")
    );
    assert!(c.args.as_ref().unwrap().join(" ").contains("--device cpu"));
    // Evaluation never takes a GPU.
    let eval = evaluator_pod(
        &task(1),
        1,
        "QmaEgb37wEknQKWn1EnVZovh7FGBtcbFYPzvUX6uTCcTAe",
        1,
        10,
        None,
        &settings(),
    );
    assert!(
        !eval.spec.unwrap().containers[0]
            .resources
            .as_ref()
            .unwrap()
            .limits
            .as_ref()
            .unwrap()
            .contains_key("nvidia.com/gpu")
    );
}

/// A task on a Gymnasium environment, with `extra` fields in its environment.
fn gymnasium_task(extra: serde_json::Value) -> DRLTask {
    let mut t = serde_json::to_value(task(0)).unwrap();
    let mut environment = json!({"kind": "gymnasium", "id": "Shelves-v0", "observationShape": [3], "actions": 3});
    environment
        .as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    t["spec"]["training"]["environment"] = environment;
    serde_json::from_value(t).unwrap()
}

fn init_containers(pod: &Pod) -> Vec<k8s_openapi::api::core::v1::Container> {
    pod.spec.as_ref().unwrap().init_containers.clone().unwrap_or_default()
}

#[test]
fn golden_pods_of_a_task_whose_package_the_environment_sidecar_installs() {
    let t = gymnasium_task(json!({"package": {
        "cid": "bafybeib4ks7u5sdpjo5cdng23hpz43jekwfys6qqbzznnch3e4tzgh2cma", "wheel": "shelves_env-0.1.0-py3-none-any.whl"}}));
    let trainer = trainer_pod(&t, &worker(), 1, None, None, &settings());
    golden("trainer-pod-environment-sidecar", &trainer);
    check_hardened(&trainer);
    let init = init_containers(&trainer);
    assert_eq!(
        init.iter().map(|c| c.name.as_str()).collect::<Vec<_>>(),
        ["env-package", "environment"],
        "the wheel is fetched before the sidecar that installs it starts"
    );
    for c in &init {
        let sc = c.security_context.as_ref().unwrap();
        assert_eq!(
            (sc.read_only_root_filesystem, sc.run_as_non_root),
            (Some(true), Some(true))
        );
        assert_eq!(
            c.resources.as_ref().unwrap().requests,
            c.resources.as_ref().unwrap().limits
        );
    }
    assert_eq!(init[0].restart_policy, None, "the fetch runs to completion");
    assert_eq!(
        init[0].image.as_deref(),
        Some("ghcr.io/drlaas/trainer:0.1.0"),
        "the worker's image"
    );
    assert_eq!(init[1].restart_policy.as_deref(), Some("Always"), "a native sidecar");
    assert_eq!(init[1].image.as_deref(), Some("ghcr.io/drlaas/environment:0.1.0"));
    let evaluator = evaluator_pod(
        &t,
        1,
        "QmaEgb37wEknQKWn1EnVZovh7FGBtcbFYPzvUX6uTCcTAe",
        7,
        10,
        None,
        &settings(),
    );
    golden("evaluator-pod-environment-sidecar", &evaluator);
    assert_eq!(
        init_containers(&evaluator),
        init,
        "the verifier runs the same environment"
    );
}

#[test]
fn a_task_s_own_image_is_its_sidecar_and_built_in_environments_get_none() {
    let image = format!("reg.example/shelves@sha256:{}", "c".repeat(64));
    let t = gymnasium_task(json!({"image": image}));
    let mut no_standard = settings();
    no_standard.environments.image = None;
    for pod in [
        trainer_pod(&t, &worker(), 1, None, None, &no_standard),
        evaluator_pod(
            &t,
            1,
            "QmaEgb37wEknQKWn1EnVZovh7FGBtcbFYPzvUX6uTCcTAe",
            7,
            10,
            None,
            &settings(),
        ),
    ] {
        let init = init_containers(&pod);
        assert_eq!(init.len(), 1, "no package to fetch");
        assert_eq!(init[0].image.as_deref(), Some(image.as_str()));
        assert_eq!(init[0].command.as_deref(), Some(&["drlaas-envserver".to_string()][..]));
        let args = init[0].args.as_ref().unwrap().join(" ");
        assert!(
            args.contains("--listen unix:/drlaas-env/env-0.sock")
                && args.contains("--listen unix:/drlaas-env/env-3.sock"),
            "{args}"
        );
        let env = pod.spec.as_ref().unwrap().containers[0].env.clone().unwrap();
        let var = |name: &str| env.iter().find(|v| v.name == name).and_then(|v| v.value.clone());
        assert_eq!(var("DRLAAS_ENV_READY").as_deref(), Some("/drlaas-env/ready"));
        assert_eq!(var("DRLAAS_ENV_SERVERS").unwrap().split(',').count(), 4);
    }
    let built_in = trainer_pod(&task(0), &worker(), 1, None, None, &settings());
    assert!(init_containers(&built_in).is_empty());
    assert!(
        built_in.spec.unwrap().containers[0]
            .env
            .as_ref()
            .unwrap()
            .iter()
            .all(|v| !v.name.starts_with("DRLAAS_ENV")),
        "a built-in environment runs in the trainer"
    );
}
