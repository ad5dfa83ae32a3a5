//! A kubelet for the fake API server: it runs a pod with the operator's [`LocalPodRunner`] (the
//! real trainer binary as a local process) and writes the pod's phase, exit code and termination
//! message back, as a node would.

use std::path::Path;

use drlaas_local::local_pod::{LocalPodRunner, build_trainer};
use k8s_openapi::api::core::v1::Pod;
use serde_json::{Value, json};

use drlaas_local::api_server::ApiServer;

/// Plays the kubelet of every node.
#[derive(Debug, Clone)]
pub struct Kubelet {
    api: ApiServer,
    runner: LocalPodRunner,
}

impl Kubelet {
    /// A kubelet whose pods store models in the local store at `store`.
    pub fn new(api: ApiServer, store: &Path) -> Self {
        // The trainer of the current source, built for this test process.
        let trainer = build_trainer();
        let runner = LocalPodRunner::new(trainer, store.with_extension("pods"), store.display().to_string(), 1);
        Kubelet { api, runner }
    }

    /// Pods nobody has run yet.
    pub fn pending(&self) -> Vec<(String, String)> {
        self.api
            .all("pods")
            .iter()
            .filter(|p| p["status"]["phase"].is_null() || p["status"]["phase"] == "Pending")
            .map(|p| {
                (
                    p["metadata"]["namespace"].as_str().unwrap().to_string(),
                    p["metadata"]["name"].as_str().unwrap().to_string(),
                )
            })
            .collect()
    }

    /// Marks a pod running, without running it yet.
    pub fn start(&self, namespace: &str, name: &str) {
        self.api.update("pods", namespace, name, |pod| {
            pod["status"] = json!({"phase": "Running", "containerStatuses": [
                {"name": "trainer", "ready": true, "restartCount": 0, "image": "", "imageID": "",
                 "state": {"running": {"startedAt": "2026-11-25T00:00:01Z"}}}]});
        });
    }

    /// Runs every pending pod to completion; returns their names.
    pub fn run_pending(&self) -> Vec<String> {
        self.pending()
            .into_iter()
            .map(|(namespace, name)| {
                self.run(&namespace, &name);
                name
            })
            .collect()
    }

    /// Runs pod `name`'s command to completion and records how it ended.
    pub fn run(&self, namespace: &str, name: &str) {
        let pod = self.api.get("pods", namespace, name).expect("the pod exists");
        let task_json = pod["spec"]["volumes"]
            .as_array()
            .into_iter()
            .flatten()
            .find_map(|v| v["configMap"]["name"].as_str())
            .map(|config_map| {
                let map = self
                    .api
                    .get("configmaps", namespace, config_map)
                    .unwrap_or_else(|| panic!("ConfigMap {config_map} of pod {name} exists"));
                map["data"]["task.json"].as_str().unwrap().to_string()
            });
        self.start(namespace, name);
        let pod: Pod = serde_json::from_value(pod).unwrap();
        let finished = self.runner.run(&pod, task_json.as_deref()).expect("the trainer runs");
        self.api.set_log(namespace, name, finished.logs);
        self.finish(namespace, name, finished.exit_code, &finished.message);
    }

    /// Records that pod `name` exited with `code` and `message`.
    pub fn finish(&self, namespace: &str, name: &str, code: i32, message: &str) {
        let (phase, reason) = if code == 0 {
            ("Succeeded", "Completed")
        } else {
            ("Failed", "Error")
        };
        self.api.update("pods", namespace, name, |pod| {
            pod["status"] = json!({"phase": phase, "containerStatuses": [
                {"name": "trainer", "ready": false, "restartCount": 0, "image": "", "imageID": "",
                 "state": {"terminated": {"exitCode": code, "reason": reason, "message": message}}}]});
        });
    }

    /// The phase of pod `name`.
    pub fn phase(&self, namespace: &str, name: &str) -> Option<String> {
        self.api
            .get("pods", namespace, name)
            .and_then(|p| p["status"]["phase"].as_str().map(str::to_string))
    }
}

/// The args of a pod's container, for assertions.
pub fn args(pod: &Value) -> Vec<String> {
    pod["spec"]["containers"][0]["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap().to_string())
        .collect()
}
