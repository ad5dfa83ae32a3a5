//! One suite of API scenarios for the in-memory API server of the local mode and a real
//! kube-apiserver: every behaviour of the real one that the operator relies on or was bitten by
//! (nulls in specs, the spec's immutability, label and name limits, every refusal of a bad task),
//! with the verdict each must give. `api_parity` runs it against both; where they differ, the real
//! one is right and the in-memory one gets fixed.

use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use kube::{Api, Client};
use serde_json::{Value, json};

use drlaas_crds::task::DRLTask;
use drlaas_crds::worker::Worker;
use drlaas_operator::pods::{EnvironmentSidecars, PodSettings, trainer_pod};
use k8s_openapi::api::core::v1::{ConfigMap, Pod};

/// What a scenario must get: accepted, or refused with a message naming `field`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expected {
    Accepted,
    Refused { field: &'static str },
}

/// What a scenario got.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    pub scenario: &'static str,
    /// `Ok` or the API server's message.
    pub result: Result<(), String>,
    pub expected: Expected,
}

impl Verdict {
    /// Whether the result is what was expected.
    pub fn holds(&self) -> bool {
        match (&self.expected, &self.result) {
            (Expected::Accepted, Ok(())) => true,
            (Expected::Refused { field }, Err(message)) => message.contains(field),
            _ => false,
        }
    }
}

fn task(name: &str, training: Value) -> Value {
    json!({
        "apiVersion": "drlaas.io/v1alpha1", "kind": "DRLTask",
        "metadata": {"name": name},
        "spec": {
            "training": training,
            "resources": {"cpu": "1", "memory": "1Gi"},
            "payment": {"amountWei": "1000", "walletSecretRef": {"name": "wallet"}},
        },
    })
}

fn cartpole() -> Value {
    json!({"environment": {"kind": "cartpole"}, "totalEnvSteps": 640, "targetMeanReturn": 5.0})
}

fn with(mut base: Value, pointer: &str, value: Value) -> Value {
    let (parent, key) = pointer.rsplit_once('/').expect("a JSON pointer");
    base.pointer_mut(parent).expect("the parent exists")[key] = value;
    base
}

fn message(e: kube::Error) -> String {
    match e {
        kube::Error::Api(status) => format!("{} {}", status.code, status.message),
        other => other.to_string(),
    }
}

/// The bad tasks the API server itself must refuse, each with the field its message names.
pub fn bad_tasks() -> Vec<(&'static str, Value, &'static str)> {
    let base = task("bad", cartpole());
    vec![
        (
            "totalEnvSteps 0",
            with(base.clone(), "/spec/training/totalEnvSteps", json!(0)),
            "totalEnvSteps",
        ),
        (
            "ppo.numEnvs 0",
            with(base.clone(), "/spec/training/ppo", json!({"numEnvs": 0})),
            "numEnvs",
        ),
        (
            "evalEpisodes 0",
            with(base.clone(), "/spec/training/evalEpisodes", json!(0)),
            "evalEpisodes",
        ),
        (
            "more agents than free cells",
            with(
                base.clone(),
                "/spec/training/environment",
                json!({"kind": "maze-cleaning", "grid": 4, "agents": 20}),
            ),
            "agents must fit the free cells",
        ),
        (
            "a gymnasium environment without its spaces",
            with(
                base.clone(),
                "/spec/training/environment",
                json!({"kind": "gymnasium", "id": "CartPole-v1"}),
            ),
            "gymnasium needs id, observationShape and actions",
        ),
        (
            "gymnasium parameters on a built-in kind",
            with(
                base.clone(),
                "/spec/training/environment",
                json!({"kind": "cartpole", "kwargs": {"max_episode_steps": 200}}),
            ),
            "are for kinds gymnasium and pettingzoo",
        ),
        (
            "a gymnasium observation without an axis (minItems)",
            with(
                base.clone(),
                "/spec/training/environment",
                json!({"kind": "gymnasium", "id": "CartPole-v1", "observationShape": [], "actions": 2}),
            ),
            "observationShape",
        ),
        (
            "a gymnasium observation of more than 262144 values",
            with(
                base.clone(),
                "/spec/training/environment",
                json!({"kind": "gymnasium", "id": "CartPole-v1", "observationShape": [1024, 512], "actions": 2}),
            ),
            "observationShape",
        ),
        (
            "a gymnasium environment with both discrete and continuous actions",
            with(
                base.clone(),
                "/spec/training/environment",
                json!({"kind": "gymnasium", "id": "Pendulum-v1", "observationShape": [3], "actions": 2, "continuousActions": 1}),
            ),
            "one of actions",
        ),
        (
            "a pettingzoo environment without its agents",
            with(
                base.clone(),
                "/spec/training/environment",
                json!({"kind": "pettingzoo", "factory": "envs:team", "observationShape": [3], "actions": 3}),
            ),
            "pettingzoo needs factory, agents",
        ),
        (
            "dqn on continuous actions",
            task(
                "bad",
                json!({"environment": {"kind": "gymnasium", "id": "Pendulum-v1", "observationShape": [3], "continuousActions": 1},
                       "algorithm": "dqn", "totalEnvSteps": 640, "targetMeanReturn": -400}),
            ),
            "dqn acts in discrete action spaces only",
        ),
        (
            "a paid task without a target",
            task(
                "bad",
                json!({"environment": {"kind": "cartpole"}, "totalEnvSteps": 640}),
            ),
            "targetMeanReturn",
        ),
        (
            "a seed from 2^63",
            with(
                base.clone(),
                "/spec/training/seed",
                json!(9_223_372_036_854_775_808_u64),
            ),
            "seed",
        ),
    ]
}

/// Runs every scenario in `namespace` (which must exist; the CRDs must be installed) and cleans up.
pub async fn run(client: &Client, namespace: &str) -> Vec<Verdict> {
    let tasks: Api<DRLTask> = Api::namespaced(client.clone(), namespace);
    let raw: Api<kube::api::DynamicObject> = Api::namespaced_with(
        client.clone(),
        namespace,
        &kube::api::ApiResource::erase::<DRLTask>(&()),
    );
    let maps: Api<ConfigMap> = Api::namespaced(client.clone(), namespace);
    let pods: Api<Pod> = Api::namespaced(client.clone(), namespace);
    let mut verdicts = Vec::new();
    let mut record = |scenario: &'static str, result: Result<(), String>, expected: Expected| {
        verdicts.push(Verdict {
            scenario,
            result,
            expected,
        });
    };
    let create = |value: Value| {
        let raw = raw.clone();
        async move {
            let object: kube::api::DynamicObject = serde_json::from_value(value).expect("a task object");
            raw.create(&PostParams::default(), &object)
                .await
                .map(|_| ())
                .map_err(message)
        }
    };

    // A task sent with an explicit null in a nullable-looking field: stored, and every later
    // write to it (finalizer, status) accepted.
    let nulled = with(
        task("nulls", cartpole()),
        "/spec/training/ppo",
        json!({"numEnvs": 4, "targetKl": null}),
    );
    record(
        "a task with ppo.targetKl: null",
        create(nulled).await,
        Expected::Accepted,
    );
    let stored = tasks.get("nulls").await.map_err(message);
    record(
        "no null is stored",
        stored.and_then(|t| {
            let text = serde_json::to_string(&serde_json::to_value(&t.spec).unwrap()).unwrap();
            if text.contains("null") {
                Err(format!("stored spec holds a null: {text}"))
            } else {
                Ok(())
            }
        }),
        Expected::Accepted,
    );
    let finalizer = json!({"metadata": {"finalizers": ["drlaas.io/settlement"]}});
    record(
        "a finalizer on that task",
        tasks
            .patch("nulls", &PatchParams::default(), &Patch::Merge(&finalizer))
            .await
            .map(|_| ())
            .map_err(message),
        Expected::Accepted,
    );
    let status = json!({"status": {"phase": "Pending", "message": "parity"}});
    record(
        "a status on that task",
        tasks
            .patch_status("nulls", &PatchParams::default(), &Patch::Merge(&status))
            .await
            .map(|_| ())
            .map_err(message),
        Expected::Accepted,
    );
    // A write-ahead record written onto an older version of the object is refused.
    let stale = json!({"metadata": {"resourceVersion": "1", "annotations": {"drlaas.io/parity": "stale"}}});
    record(
        "a merge patch with a stale resourceVersion",
        tasks
            .patch("nulls", &PatchParams::default(), &Patch::Merge(&stale))
            .await
            .map(|_| ())
            .map_err(message),
        Expected::Refused {
            field: "the object has been modified",
        },
    );
    let changed = json!({"spec": {"maxAttempts": 2}});
    record(
        "a change of the spec",
        tasks
            .patch("nulls", &PatchParams::default(), &Patch::Merge(&changed))
            .await
            .map(|_| ())
            .map_err(message),
        Expected::Refused { field: "immutable" },
    );
    let release = json!({"metadata": {"finalizers": null}});
    record(
        "the finalizer removed",
        tasks
            .patch("nulls", &PatchParams::default(), &Patch::Merge(&release))
            .await
            .map(|_| ())
            .map_err(message),
        Expected::Accepted,
    );

    // Names and labels.
    let longest = format!("{}a", "n".repeat(252));
    record(
        "a task named with 253 characters",
        create(task(&longest, cartpole())).await,
        Expected::Accepted,
    );
    record(
        "a task named with 254 characters",
        create(task(&format!("{longest}b"), cartpole())).await,
        Expected::Refused { field: "metadata.name" },
    );
    for (scenario, length, expected) in [
        ("a label value of 63 characters", 63, Expected::Accepted),
        (
            "a label value of 64 characters",
            64,
            Expected::Refused {
                field: "must be no more than 63 characters",
            },
        ),
    ] {
        let map: ConfigMap = serde_json::from_value(json!({
            "metadata": {"name": format!("label-{length}"), "labels": {"drlaas.io/task": "l".repeat(length)}},
        }))
        .unwrap();
        record(
            scenario,
            maps.create(&PostParams::default(), &map)
                .await
                .map(|_| ())
                .map_err(message),
            expected,
        );
    }

    // A continuous-action task, as deploy/examples/gymnasium-pendulum.yaml writes it.
    let pendulum = with(
        task("pendulum", cartpole()),
        "/spec/training/environment",
        json!({"kind": "gymnasium", "id": "Pendulum-v1", "observationShape": [3], "continuousActions": 1}),
    );
    record(
        "a gymnasium task with continuous actions",
        create(pendulum).await,
        Expected::Accepted,
    );
    let team = with(
        task("team", cartpole()),
        "/spec/training/environment",
        json!({"kind": "pettingzoo", "factory": "envs_for_tests:team_parallel_env", "kwargs": {"length": 8},
               "agents": 3, "observationShape": [3], "actions": 3}),
    );
    record("a pettingzoo task", create(team).await, Expected::Accepted);
    // A requester's wheel by CID, as drlaas store put prints it.
    let package = |name: &str, wheel: &str| {
        with(
            task(name, cartpole()),
            "/spec/training/environment",
            json!({"kind": "gymnasium", "id": "shelves_env:Shelves-v0", "observationShape": [3], "actions": 3,
                   "package": {"cid": "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku", "wheel": wheel}}),
        )
    };
    record(
        "a gymnasium task with its wheel by CID",
        create(package("shelves", "shelves_env-0.1.0-py3-none-any.whl")).await,
        Expected::Accepted,
    );
    record(
        "a wheel name with a path in it",
        create(package("evil", "../shelves_env-0.1.0-py3-none-any.whl")).await,
        Expected::Refused { field: "package.wheel" },
    );
    // `package` is a CEL reserved word: a rule about it must see the field on both servers.
    record(
        "a cartpole task with a package",
        create(with(
            task("cartpole-package", cartpole()),
            "/spec/training/environment",
            json!({"kind": "cartpole", "package": {"cid": "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku",
                   "wheel": "shelves_env-0.1.0-py3-none-any.whl"}}),
        ))
        .await,
        Expected::Refused {
            field: "package and image are for kinds gymnasium and pettingzoo",
        },
    );
    // The requester's own environment image, by digest.
    let image = |name: &str, image: &str, package: bool| {
        let mut environment = json!({"kind": "gymnasium", "id": "Shelves-v0", "observationShape": [3], "actions": 3,
                                     "image": image});
        if package {
            environment["package"] = json!({"cid": "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku", "wheel": "s-0.1-py3-none-any.whl"});
        }
        with(task(name, cartpole()), "/spec/training/environment", environment)
    };
    let digest = format!("registry.example:5000/team/shelves@sha256:{}", "d".repeat(64));
    record(
        "a gymnasium task with its own image by digest",
        create(image("own-image", &digest, false)).await,
        Expected::Accepted,
    );
    record(
        "an environment image by tag only",
        create(image("image-tag", "registry.example/team/shelves:latest", false)).await,
        Expected::Refused {
            field: "spec.training.environment.image",
        },
    );
    record(
        "an environment image and a package",
        create(image("image-and-package", &digest, true)).await,
        Expected::Refused { field: "not both" },
    );

    // The trainer pod of a task with a package, as the operator builds it: a fetching init
    // container, then the environment sidecar (an init container with restartPolicy Always, a
    // native sidecar).
    let gym: DRLTask =
        serde_json::from_value(package("sidecar", "shelves_env-0.1.0-py3-none-any.whl")).expect("a task");
    let worker: Worker = serde_json::from_value(json!({
        "metadata": {"name": "parity"},
        "spec": {"address": "0x70997970C51812dc3A010C7d01b50e0d17dc79C8",
                 "capacity": {"gpus": 0, "cpuCores": 4, "memoryGib": 8},
                 "pricePerTaskWei": "1", "keySecretRef": {"name": "parity-key"}},
    }))
    .expect("a worker");
    let settings = PodSettings {
        trainer_image: "drlaas/trainer:0.1.0".into(),
        store_address: "http://kubo:5001".into(),
        environments: EnvironmentSidecars {
            image: Some(format!("drlaas/environment@sha256:{}", "a".repeat(64))),
            ..EnvironmentSidecars::default()
        },
    };
    let mut pod = trainer_pod(&gym, &worker, 1, None, None, &settings);
    pod.metadata.namespace = None;
    record(
        "a trainer pod with an environment sidecar",
        pods.create(&PostParams::default(), &pod)
            .await
            .map(|_| ())
            .map_err(message),
        Expected::Accepted,
    );

    // A requester's keyword arguments, nested objects included, are stored as sent (the schema
    // keeps unknown fields under `kwargs` instead of pruning them).
    let environment = json!({"kind": "gymnasium", "id": "my_envs:Warehouse-v0",
        "kwargs": {"max_episode_steps": 200, "layout": {"aisles": [3, 4], "dock": "north"}},
        "observationShape": [6], "actions": 4});
    let gymnasium = with(
        task("gymnasium", cartpole()),
        "/spec/training/environment",
        environment.clone(),
    );
    record(
        "a gymnasium task with nested kwargs",
        create(gymnasium).await,
        Expected::Accepted,
    );
    let stored = raw.get("gymnasium").await.map_err(message);
    record(
        "its kwargs are stored as sent",
        stored.and_then(|t| {
            let got = &t.data["spec"]["training"]["environment"];
            if *got == environment {
                Ok(())
            } else {
                Err(format!("stored environment {got}"))
            }
        }),
        Expected::Accepted,
    );

    for (scenario, object, field) in bad_tasks() {
        record(scenario, create(object).await, Expected::Refused { field });
    }

    for name in ["nulls", "gymnasium", longest.as_str()] {
        let _ = tasks.delete(name, &DeleteParams::default()).await;
    }
    for length in [63, 64] {
        let _ = maps.delete(&format!("label-{length}"), &DeleteParams::default()).await;
    }
    verdicts
}
