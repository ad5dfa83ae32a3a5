//! A kubelet for the fake API server: it runs a pod's container command as a local process of the
//! real trainer binary, with the pod's mounts mapped to a scratch directory and its content store
//! pointed at the test's store, then writes the pod's phase, exit code and termination message
//! back, as a node would.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{Value, json};

use super::fake_api::FakeApi;

/// Plays the kubelet of every node.
#[derive(Debug, Clone)]
pub struct Kubelet {
    api: FakeApi,
    trainer: PathBuf,
    store: PathBuf,
    scratch: PathBuf,
}

/// The trainer binary of this workspace (built by `cargo build -p drlaas-trainer`; `tools/test.sh`
/// builds it with the trainer's tests before the operator's).
pub fn trainer_binary() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"));
    let binary = target.join("debug/drlaas-trainer");
    assert!(
        binary.exists(),
        "{} is missing: build it with `cargo build -p drlaas-trainer`",
        binary.display()
    );
    binary
}

impl Kubelet {
    /// A kubelet whose pods store models in the local store at `store`.
    pub fn new(api: FakeApi, store: &Path) -> Self {
        let scratch = store.with_extension("pods");
        std::fs::create_dir_all(&scratch).unwrap();
        Kubelet {
            api,
            trainer: trainer_binary(),
            store: store.to_path_buf(),
            scratch,
        }
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
        let dir = self.scratch.join(format!("{namespace}-{name}"));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let log = dir.join("termination-log");
        let container = &pod["spec"]["containers"][0];
        if let Some(config_map) = pod["spec"]["volumes"]
            .as_array()
            .into_iter()
            .flatten()
            .find_map(|v| v["configMap"]["name"].as_str())
        {
            let map = self
                .api
                .get("configmaps", namespace, config_map)
                .unwrap_or_else(|| panic!("ConfigMap {config_map} of pod {name} exists"));
            std::fs::write(dir.join("task.json"), map["data"]["task.json"].as_str().unwrap()).unwrap();
        }
        let args: Vec<String> = container["args"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| {
                let a = a.as_str().unwrap();
                match a {
                    "/etc/drlaas/task.json" => dir.join("task.json").display().to_string(),
                    "/work/out" => dir.join("out").display().to_string(),
                    "/dev/termination-log" => log.display().to_string(),
                    other => other.to_string(),
                }
            })
            .collect();
        self.start(namespace, name);
        let output = Command::new(&self.trainer)
            .args(&args)
            .args(["--threads", "1"])
            .env("DRLAAS_STORE", &self.store)
            .output()
            .expect("the trainer runs");
        let stderr = String::from_utf8_lossy(&output.stderr).to_string();
        self.api.set_log(namespace, name, stderr.clone());
        let mut message = std::fs::read_to_string(&log).unwrap_or_default();
        let code = output.status.code().unwrap_or(137);
        if message.is_empty() && code != 0 {
            // terminationMessagePolicy: FallbackToLogsOnError.
            message = stderr.lines().rev().take(10).collect::<Vec<_>>().join("\n");
        }
        self.finish(namespace, name, code, &message);
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
