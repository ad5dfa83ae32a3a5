//! The local mode's kubelet: it takes each pending drlaas pod, runs its container as a local process
//! ([`LocalPodRunner`]), and writes the pod's status as a node's kubelet would: `Running`, then
//! `Succeeded` or `Failed` with the container's exit code and termination message. It talks to the
//! API server through a client, so the same kubelet serves the local mode's embedded API server and
//! the cluster tests' fake nodes (`DRLAAS_E2E_FAKE_KUBELET=1`).
//!
//! Like a node after a reboot, a kubelet that starts finds pods that an earlier run left `Running`
//! and runs them again (their leftover processes are stopped first). A pod deleted while it runs
//! has its process killed.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{ConfigMap, Pod};
use k8s_openapi::jiff::Timestamp;
use kube::api::{ListParams, Patch, PatchParams};
use kube::{Api, ResourceExt};
use serde_json::{Value, json};
use tokio::sync::Semaphore;

use super::workers::Behavior;
use crate::local_pod::LocalPodRunner;
use drlaas_crds::pod::{LABEL_ROLE, LABEL_WORKER};
use drlaas_crds::trainer_output::ProgressLine;
use drlaas_envs::EnvDescriptor;

/// Where a pod's logs go while it runs (`namespace`, `pod`, everything it wrote so far): the
/// embedded API server serves them on `pods/NAME/log`, where the operator reads training progress.
pub type LogSink = Arc<dyn Fn(&str, &str, &str) + Send + Sync>;

/// The pods a kubelet took, by (namespace, name), with their process ids once started.
type Taken = Arc<Mutex<HashMap<(String, String), Option<u32>>>>;

/// A kubelet for every node of the local machine.
pub struct Kubelet {
    client: kube::Client,
    /// Only this namespace's pods, or every namespace's.
    namespace: Option<String>,
    runner: LocalPodRunner,
    /// How many pods run at once.
    slots: usize,
    logs: Option<LogSink>,
    /// Workers (by name) whose trainers misbehave.
    behaviors: BTreeMap<String, Behavior>,
}

impl std::fmt::Debug for Kubelet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Kubelet")
            .field("namespace", &self.namespace)
            .field("slots", &self.slots)
            .field("behaviors", &self.behaviors)
            .finish_non_exhaustive()
    }
}

impl Kubelet {
    /// A kubelet of the pods of `namespace` (all namespaces when `None`), running up to `slots`
    /// of them at once with `runner`.
    pub fn new(client: kube::Client, namespace: Option<String>, runner: LocalPodRunner, slots: usize) -> Self {
        Kubelet {
            client,
            namespace,
            runner,
            slots: slots.max(1),
            logs: None,
            behaviors: BTreeMap::new(),
        }
    }

    /// Makes the trainers of these workers misbehave (see [`Behavior`]).
    pub fn with_behaviors(mut self, behaviors: BTreeMap<String, Behavior>) -> Self {
        self.behaviors = behaviors;
        self
    }

    /// Sends each running pod's logs to `sink` as they grow (at most every half second).
    pub fn with_logs(mut self, sink: LogSink) -> Self {
        self.logs = Some(sink);
        self
    }

    fn pods(&self) -> Api<Pod> {
        match &self.namespace {
            Some(ns) => Api::namespaced(self.client.clone(), ns),
            None => Api::all(self.client.clone()),
        }
    }

    /// Runs pods until the task is aborted.
    pub async fn run(self) {
        let slots = Arc::new(Semaphore::new(self.slots));
        let taken: Taken = Arc::default();
        let mut first = true;
        loop {
            let listed = self.pods().list(&ListParams::default().labels(LABEL_ROLE)).await;
            let pods = listed.map(|l| l.items).unwrap_or_default();
            self.kill_deleted(&pods, &taken);
            for pod in pods {
                let key = (pod.namespace().unwrap_or_default(), pod.name_any());
                let phase = pod.status.as_ref().and_then(|s| s.phase.clone());
                // Pending pods; and once, at start, those an earlier run left running.
                let runnable = match phase.as_deref() {
                    None | Some("Pending") => true,
                    Some("Running") => first,
                    _ => false,
                };
                if !runnable || pod.metadata.deletion_timestamp.is_some() || taken.lock().unwrap().contains_key(&key) {
                    continue;
                }
                taken.lock().unwrap().insert(key.clone(), None);
                let behavior = self.behavior_of(&pod);
                let task_json = self.task_json(&pod).await.map(|json| match behavior {
                    Behavior::Shirking => shirk(&json),
                    Behavior::OtherEnvironment => other_environment(&json),
                    _ => json,
                });
                let pods = Api::<Pod>::namespaced(self.client.clone(), &key.0);
                let (runner, slots, taken, logs) =
                    (self.runner.clone(), slots.clone(), taken.clone(), self.logs.clone());
                tokio::spawn(async move {
                    let _slot = slots.acquire_owned().await.expect("the semaphore stays open");
                    let name = key.1.clone();
                    write_status(&pods, &name, running()).await;
                    let started = {
                        let taken = taken.clone();
                        let key = key.clone();
                        tokio::task::spawn_blocking(move || {
                            let running = runner.start(&pod, task_json.as_deref())?;
                            let pid = running.pid();
                            taken.lock().unwrap().insert(key.clone(), Some(pid));

                            let mut text = String::new();
                            let mut sent = Instant::now();
                            let finished = running.wait(|line| {
                                // A crashing worker's trainer dies at its first progress report:
                                // mid-training, however fast the machine.
                                if behavior == Behavior::Crashing && ProgressLine::parse(line).is_some() {
                                    kill(pid);
                                }
                                text.push_str(line);
                                text.push('\n');
                                if let Some(sink) = &logs
                                    && sent.elapsed() >= Duration::from_millis(500)
                                {
                                    sink(&key.0, &key.1, &text);
                                    sent = Instant::now();
                                }
                            })?;
                            if let Some(sink) = &logs {
                                sink(&key.0, &key.1, &finished.logs);
                            }
                            Ok::<_, std::io::Error>(finished)
                        })
                        .await
                        .expect("the runner does not panic")
                    };
                    let status = match started {
                        Ok(f) => terminated(f.exit_code, &f.message),
                        Err(e) => terminated(127, &format!("could not run the trainer: {e}")),
                    };
                    write_status(&pods, &name, status).await;
                });
            }
            first = false;
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    }

    /// Kills the processes of taken pods that are gone or being deleted.
    fn kill_deleted(&self, pods: &[Pod], taken: &Taken) {
        let live: Vec<(String, String)> = pods
            .iter()
            .filter(|p| p.metadata.deletion_timestamp.is_none())
            .map(|p| (p.namespace().unwrap_or_default(), p.name_any()))
            .collect();
        let mut taken = taken.lock().unwrap();
        taken.retain(|key, pid| {
            if live.contains(key) {
                return true;
            }
            if let Some(pid) = pid {
                kill(*pid);
            }
            false
        });
    }

    /// How the worker of a trainer pod behaves (evaluators always run as asked).
    fn behavior_of(&self, pod: &Pod) -> Behavior {
        let labels = pod.labels();
        if labels.get(LABEL_ROLE).map(String::as_str) != Some("trainer") {
            return Behavior::Honest;
        }
        labels
            .get(LABEL_WORKER)
            .and_then(|w| self.behaviors.get(w))
            .copied()
            .unwrap_or_default()
    }

    async fn task_json(&self, pod: &Pod) -> Option<String> {
        let name = config_map_of(pod)?;
        let maps: Api<ConfigMap> = Api::namespaced(self.client.clone(), &pod.namespace().unwrap_or_default());
        maps.get_opt(&name)
            .await
            .ok()
            .flatten()?
            .data?
            .get("task.json")
            .cloned()
    }
}

/// A shirking worker's task: a twentieth of the steps, no early stop.
fn shirk(task_json: &str) -> String {
    let Ok(mut task) = serde_json::from_str::<Value>(task_json) else {
        return task_json.to_string();
    };
    let steps = task["totalEnvSteps"].as_u64().unwrap_or(1_000_000);
    task["totalEnvSteps"] = json!((steps / 20).max(1));
    if let Some(fields) = task.as_object_mut() {
        fields.remove("targetMeanReturn");
    }
    task.to_string()
}

/// A task on a variant of its environment: episodes one step longer (or, for a Gymnasium or
/// PettingZoo environment, cut at 100 steps). Another environment all the same, which verification refuses.
fn other_environment(task_json: &str) -> String {
    let Ok(mut task) = serde_json::from_str::<Value>(task_json) else {
        return task_json.to_string();
    };
    let Ok(mut environment) = serde_json::from_value::<EnvDescriptor>(task["environment"].clone()) else {
        return task_json.to_string();
    };
    match &mut environment {
        EnvDescriptor::Cartpole(p) => p.horizon += 1,
        EnvDescriptor::TargetLocalization(p) => p.horizon += 1,
        EnvDescriptor::MazeCleaning(p) => p.horizon += 1,
        EnvDescriptor::FleetCoordination(p) => p.horizon += 1,
        EnvDescriptor::Gymnasium(p) => {
            p.kwargs.insert("max_episode_steps".into(), json!(100));
        }
        // PettingZoo's convention for an episode's length.
        EnvDescriptor::PettingZoo(p) => {
            p.kwargs.insert("max_cycles".into(), json!(100));
        }
    }
    task["environment"] = serde_json::to_value(&environment).expect("a descriptor serializes");
    task.to_string()
}

fn kill(pid: u32) {
    // Gone already is fine: it may have exited since it was listed.
    let _ = std::process::Command::new("kill")
        .args(["-KILL", &pid.to_string()])
        .stderr(std::process::Stdio::null())
        .status();
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
        tracing::warn!(pod = name, error = %e, "the kubelet could not write a pod status");
    }
}
