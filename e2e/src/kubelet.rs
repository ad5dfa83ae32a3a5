//! The fake kubelet of `DRLAAS_E2E_FAKE_KUBELET=1`: on a cluster without nodes, it takes each
//! pending drlaas pod of the test's namespace, runs its command as a local process
//! ([`LocalPodRunner`]), and writes the pod's status as a kubelet would: `Running`, then
//! `Succeeded` or `Failed` with the container's exit code and termination message.

use std::collections::HashSet;
use std::time::Duration;

use drlaas_operator::local_pod::LocalPodRunner;
use drlaas_operator::pods::LABEL_ROLE;
use k8s_openapi::api::core::v1::{ConfigMap, Pod};
use k8s_openapi::jiff::Timestamp;
use kube::api::{ListParams, Patch, PatchParams};
use kube::{Api, ResourceExt};
use serde_json::{Value, json};

/// Plays the kubelet for the drlaas pods of `namespace` until aborted.
pub async fn run(client: kube::Client, namespace: String, runner: LocalPodRunner) {
    let pods: Api<Pod> = Api::namespaced(client.clone(), &namespace);
    let config_maps: Api<ConfigMap> = Api::namespaced(client, &namespace);
    let mut taken = HashSet::new();
    loop {
        let listed = pods.list(&ListParams::default().labels(LABEL_ROLE)).await;
        for pod in listed.map(|l| l.items).unwrap_or_default() {
            let phase = pod.status.as_ref().and_then(|s| s.phase.clone());
            let pending = matches!(phase.as_deref(), None | Some("Pending"));
            if !pending || pod.metadata.deletion_timestamp.is_some() || !taken.insert(pod.uid()) {
                continue;
            }
            let task_json = match config_map_of(&pod) {
                Some(name) => config_maps
                    .get_opt(&name)
                    .await
                    .ok()
                    .flatten()
                    .and_then(|c| c.data?.get("task.json").cloned()),
                None => None,
            };
            let (pods, runner) = (pods.clone(), runner.clone());
            tokio::spawn(async move {
                let name = pod.name_any();
                write_status(&pods, &name, running()).await;
                let finished = tokio::task::spawn_blocking(move || runner.run(&pod, task_json.as_deref()))
                    .await
                    .expect("the runner does not panic");
                let status = match finished {
                    Ok(f) => terminated(f.exit_code, &f.message),
                    Err(e) => terminated(127, &format!("could not start the trainer: {e}")),
                };
                write_status(&pods, &name, status).await;
            });
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

fn config_map_of(pod: &Pod) -> Option<String> {
    pod.spec
        .as_ref()?
        .volumes
        .as_ref()?
        .iter()
        .find_map(|v| v.config_map.as_ref().map(|c| c.name.clone()))
}

fn container_status(state: Value, ready: bool) -> Value {
    json!([{"name": "trainer", "ready": ready, "restartCount": 0, "image": "drlaas/trainer", "imageID": "",
            "started": ready, "state": state}])
}

fn running() -> Value {
    let now = Timestamp::now().to_string();
    json!({"phase": "Running", "startTime": now,
           "containerStatuses": container_status(json!({"running": {"startedAt": now}}), true)})
}

fn terminated(exit_code: i32, message: &str) -> Value {
    let now = Timestamp::now().to_string();
    let (phase, reason) = if exit_code == 0 {
        ("Succeeded", "Completed")
    } else {
        ("Failed", "Error")
    };
    json!({"phase": phase, "containerStatuses": container_status(json!({"terminated": {
        "exitCode": exit_code, "reason": reason, "message": message, "startedAt": now, "finishedAt": now}}), false)})
}

async fn write_status(pods: &Api<Pod>, name: &str, status: Value) {
    let patch = json!({ "status": status });
    if let Err(e) = pods
        .patch_status(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
    {
        tracing::warn!(pod = name, error = %e, "the fake kubelet could not write a pod status");
    }
}
