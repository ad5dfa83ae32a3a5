//! The pods the operator runs, built as plain data from a task, a worker and the operator's settings:
//! the trainer of an attempt (on the worker's node pool) and the evaluator of a submitted model.
//!
//! Both run the trainer image as an unprivileged user on a read-only root filesystem, with no
//! service-account token, no privilege escalation and no capabilities, with their resources as
//! requests and limits. Outputs go to an `emptyDir`, the result to the termination message
//! (docs/architecture.md#the-trainer-contract), models and checkpoints to the content store named in `DRLAAS_STORE`.

use std::collections::BTreeMap;

use drlaas_crds::task::DRLTask;
use drlaas_crds::worker::Worker;
use k8s_openapi::api::core::v1::{
    Capabilities, ConfigMap, ConfigMapVolumeSource, Container, EmptyDirVolumeSource, EnvVar, Pod, PodSecurityContext,
    PodSpec, ResourceRequirements, SeccompProfile, SecurityContext, Volume, VolumeMount,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::Resource;

pub use drlaas_crds::pod::{
    ANNOTATION_WORKER, ENV_MOUNT, ENV_SIDECAR, LABEL_ATTEMPT, LABEL_ROLE, LABEL_TASK, LABEL_WORKER, OUT_DIR,
    TASK_MOUNT, TRAINER_UID,
};
use drlaas_envs::EnvDescriptor;
use drlaas_envs::remote::{ENV_READY, ENV_SERVERS};

/// The operator's settings that go into every pod.
#[derive(Debug, Clone, PartialEq)]
pub struct PodSettings {
    /// Trainer image, unless the worker names its own.
    pub trainer_image: String,
    /// The content store the trainer writes to (an IPFS API URL in a cluster).
    pub store_address: String,
    /// The environment sidecar of pods whose task trains on a `gymnasium` or `pettingzoo`
    /// environment.
    pub environments: EnvironmentSidecars,
}

/// How the operator runs external environments: an environment server beside the trainer, as a
/// native sidecar container (an init container with `restartPolicy: Always`: it starts before the
/// trainer, and the pod completes when the trainer does), on an `emptyDir` they share.
#[derive(Debug, Clone, PartialEq)]
pub struct EnvironmentSidecars {
    /// The standard environment image (Python, gymnasium, pettingzoo, drlaas-envserver) for tasks
    /// that do not name their own (`environment.image`); `None`: such tasks cannot run here.
    pub image: Option<String>,
    /// CPU of the sidecar, its request and limit (on top of the task's own resources).
    pub cpu: String,
    /// Memory of the sidecar, its request and limit.
    pub memory: String,
    /// Server processes the sidecar runs, so that environments step in parallel (the trainer uses
    /// one per 16 environments, up to 4).
    pub servers: u32,
}

impl Default for EnvironmentSidecars {
    /// No standard image, one CPU, 1 GiB and 4 servers.
    fn default() -> Self {
        EnvironmentSidecars {
            image: None,
            cpu: "1".into(),
            memory: "1Gi".into(),
            servers: 4,
        }
    }
}

impl EnvironmentSidecars {
    /// The image of `environment`'s sidecar: its own, else the standard one; `None` for a built-in
    /// environment (no sidecar) or where there is no image to run it.
    pub fn image_for<'a>(&'a self, environment: &'a EnvDescriptor) -> Option<&'a str> {
        if !environment.is_external() {
            return None;
        }
        environment.image().or(self.image.as_deref())
    }
}

/// The ConfigMap holding a task's training spec as `task.json`.
pub fn task_config_map(task: &DRLTask) -> ConfigMap {
    let spec = serde_json::to_string_pretty(&task.spec.training).expect("a training spec serializes");
    ConfigMap {
        metadata: owned_metadata(task, config_map_name(task), "spec", None),
        data: Some(BTreeMap::from([("task.json".to_string(), spec)])),
        ..ConfigMap::default()
    }
}

/// The trainer pod of attempt `attempt` of `task` on `worker`'s pool. `warm_start` is a model CID to
/// start from, `resume` a checkpoint CID of an earlier attempt.
pub fn trainer_pod(
    task: &DRLTask,
    worker: &Worker,
    attempt: u32,
    warm_start: Option<&str>,
    resume: Option<&str>,
    settings: &PodSettings,
) -> Pod {
    let gpu = task.spec.resources.gpu > 0;
    let mut args: Vec<String> = vec![
        "train".into(),
        "--task".into(),
        format!("{TASK_MOUNT}/task.json"),
        "--out".into(),
        OUT_DIR.into(),
        "--termination-log".into(),
        "/dev/termination-log".into(),
        "--progress".into(),
        "json".into(),
        "--device".into(),
        (if gpu { "cuda" } else { "cpu" }).into(),
    ];
    for (flag, cid) in [("--warm-start", warm_start), ("--resume", resume)] {
        if let Some(cid) = cid {
            args.extend([flag.to_string(), cid.to_string()]);
        }
    }
    let worker_name = worker.metadata.name.clone().unwrap_or_default();
    let mut metadata = owned_metadata(task, trainer_pod_name(task, attempt), "trainer", Some(&worker_name));
    metadata
        .labels
        .get_or_insert_default()
        .insert(LABEL_ATTEMPT.into(), attempt.to_string());
    let image = worker
        .spec
        .image
        .clone()
        .unwrap_or_else(|| settings.trainer_image.clone());
    let mut spec = pod_spec(container(image.clone(), args, task, settings));
    spec.node_selector = (!worker.spec.node_selector.is_empty()).then(|| worker.spec.node_selector.clone());
    spec.tolerations = (!worker.spec.tolerations.is_empty()).then(|| worker.spec.tolerations.clone());
    spec.volumes.get_or_insert_default().push(Volume {
        name: "task".into(),
        config_map: Some(ConfigMapVolumeSource {
            name: config_map_name(task),
            ..ConfigMapVolumeSource::default()
        }),
        ..Volume::default()
    });
    if let Some(c) = spec.containers.first_mut() {
        c.volume_mounts.get_or_insert_default().push(VolumeMount {
            name: "task".into(),
            mount_path: TASK_MOUNT.into(),
            read_only: Some(true),
            ..VolumeMount::default()
        });
    }
    spec.active_deadline_seconds = Some(task.spec.deadline_seconds as i64);
    // The package fetch runs the worker's trainer image too.
    add_environment_sidecar(&mut spec, &task.spec.training.environment, &image, settings);
    Pod {
        metadata,
        spec: Some(spec),
        ..Pod::default()
    }
}

/// The evaluator pod of the model submitted in attempt `attempt`: `episodes` episodes on `seed`
/// (derived from a block hash after submission), on `worker`'s pool when given (preferably not the
/// one that trained it).
pub fn evaluator_pod(
    task: &DRLTask,
    attempt: u32,
    model_cid: &str,
    seed: u64,
    episodes: u32,
    worker: Option<&Worker>,
    settings: &PodSettings,
) -> Pod {
    let args: Vec<String> = vec![
        "evaluate".into(),
        "--model".into(),
        model_cid.into(),
        "--episodes".into(),
        episodes.to_string(),
        "--seed".into(),
        seed.to_string(),
        "--device".into(),
        "cpu".into(),
        "--termination-log".into(),
        "/dev/termination-log".into(),
    ];
    let worker_name = worker.and_then(|w| w.metadata.name.clone());
    let mut metadata = owned_metadata(
        task,
        evaluator_pod_name(task, attempt),
        "evaluator",
        worker_name.as_deref(),
    );
    metadata
        .labels
        .get_or_insert_default()
        .insert(LABEL_ATTEMPT.into(), attempt.to_string());
    // Evaluation runs on CPU: it must not compete with training for GPUs.
    let mut cpu_task = task.clone();
    cpu_task.spec.resources.gpu = 0;
    let mut spec = pod_spec(container(settings.trainer_image.clone(), args, &cpu_task, settings));
    if let Some(w) = worker {
        spec.node_selector = (!w.spec.node_selector.is_empty()).then(|| w.spec.node_selector.clone());
        spec.tolerations = (!w.spec.tolerations.is_empty()).then(|| w.spec.tolerations.clone());
    }
    // The task's environment, whatever the model says it was trained on: the verifier runs the
    // environment the requester pinned.
    add_environment_sidecar(
        &mut spec,
        &task.spec.training.environment,
        &settings.trainer_image,
        settings,
    );
    Pod {
        metadata,
        spec: Some(spec),
        ..Pod::default()
    }
}

/// The trainer pod of attempt `attempt`: one name per attempt, so an attempt never gets two.
pub fn trainer_pod_name(task: &DRLTask, attempt: u32) -> String {
    owned_name(&task_name(task), &format!("-train-{attempt}"))
}

/// The evaluator pod of attempt `attempt`'s result.
pub fn evaluator_pod_name(task: &DRLTask, attempt: u32) -> String {
    owned_name(&task_name(task), &format!("-verify-{attempt}"))
}

/// The ConfigMap holding the task's training spec.
pub fn config_map_name(task: &DRLTask) -> String {
    owned_name(&task_name(task), "-task")
}

/// The value of the [`LABEL_TASK`] label on everything `task` owns (select them with it).
pub fn task_label(task: &DRLTask) -> String {
    label_value(&task_name(task))
}

fn task_name(task: &DRLTask) -> String {
    task.metadata.name.clone().unwrap_or_default()
}

/// The Worker a pod of the operator runs for: its annotation, else its label.
pub fn pod_worker(pod: &Pod) -> Option<&str> {
    pod.metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(ANNOTATION_WORKER))
        .or_else(|| pod.metadata.labels.as_ref().and_then(|l| l.get(LABEL_WORKER)))
        .map(String::as_str)
}

/// Longest label value the API server accepts.
const MAX_LABEL_VALUE: usize = 63;
/// Longest name of a pod or ConfigMap (a DNS subdomain).
const MAX_OBJECT_NAME: usize = 253;
/// Hex digits of the name's hash kept when a name or label is shortened (whole bytes: even).
const HASH_DIGITS: usize = 10;

/// A label value standing for the object name `name` (a DNS subdomain of up to 253 characters):
/// the name itself when it fits in 63 characters, else its first characters and a hash of the whole
/// name, so that two long names never share a value and every value is a valid label.
pub fn label_value(name: &str) -> String {
    shortened(name, "", MAX_LABEL_VALUE)
}

/// The name of an object derived from `base` with `suffix` (`-train-1`), within the 253 characters
/// of an object name: a task whose own name is that long still gets its pods.
fn owned_name(base: &str, suffix: &str) -> String {
    shortened(base, suffix, MAX_OBJECT_NAME)
}

/// `base` + `suffix` if it fits in `max` characters, else a prefix of `base`, `-`, a hash of `base`,
/// then `suffix`. The prefix ends on a letter or digit, as names and label values must.
fn shortened(base: &str, suffix: &str, max: usize) -> String {
    if base.len() + suffix.len() <= max {
        return format!("{base}{suffix}");
    }
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(base.as_bytes());
    let hash: String = digest[..HASH_DIGITS / 2].iter().map(|b| format!("{b:02x}")).collect();
    let keep = max.saturating_sub(suffix.len() + HASH_DIGITS + 1);
    let prefix = base
        .get(..keep.min(base.len()))
        .unwrap_or_default()
        .trim_end_matches(|c: char| !c.is_ascii_alphanumeric());
    if prefix.is_empty() {
        format!("{hash}{suffix}")
    } else {
        format!("{prefix}-{hash}{suffix}")
    }
}

/// Metadata of an object the task owns: same namespace, labels, and the task as controller (so
/// deleting the task deletes them, and the controller is woken by their changes).
fn owned_metadata(task: &DRLTask, name: String, role: &str, worker: Option<&str>) -> ObjectMeta {
    let mut labels = BTreeMap::from([
        ("app.kubernetes.io/name".to_string(), "drlaas".to_string()),
        (
            "app.kubernetes.io/managed-by".to_string(),
            "drlaas-operator".to_string(),
        ),
        (LABEL_TASK.to_string(), task_label(task)),
        (LABEL_ROLE.to_string(), role.to_string()),
    ]);
    let annotations = worker.map(|worker| {
        labels.insert(LABEL_WORKER.into(), label_value(worker));
        BTreeMap::from([(ANNOTATION_WORKER.to_string(), worker.to_string())])
    });
    ObjectMeta {
        name: Some(name),
        namespace: task.metadata.namespace.clone(),
        labels: Some(labels),
        annotations,
        owner_references: task.controller_owner_ref(&()).map(|r| vec![r]),
        ..ObjectMeta::default()
    }
}

fn container(image: String, args: Vec<String>, task: &DRLTask, settings: &PodSettings) -> Container {
    let r = &task.spec.resources;
    let mut limits = BTreeMap::from([
        ("cpu".to_string(), Quantity(r.cpu.clone())),
        ("memory".to_string(), Quantity(r.memory.clone())),
    ]);
    if r.gpu > 0 {
        limits.insert("nvidia.com/gpu".into(), Quantity(r.gpu.to_string()));
    }
    Container {
        name: "trainer".into(),
        image: Some(image),
        args: Some(args),
        env: Some(vec![env_var("DRLAAS_STORE", settings.store_address.clone())]),
        resources: Some(fixed_resources(limits)),
        security_context: Some(locked_down()),
        termination_message_policy: Some("FallbackToLogsOnError".into()),
        volume_mounts: Some(vec![mount("work", "/work"), mount("tmp", "/tmp")]),
        ..Container::default()
    }
}

/// Requests equal to limits: the pod gets what the scheduler counted, no more.
fn fixed_resources(limits: BTreeMap<String, Quantity>) -> ResourceRequirements {
    ResourceRequirements {
        requests: Some(limits.clone()),
        limits: Some(limits),
        ..ResourceRequirements::default()
    }
}

/// Every container of the operator's pods: unprivileged, read-only root, no capabilities.
fn locked_down() -> SecurityContext {
    SecurityContext {
        allow_privilege_escalation: Some(false),
        read_only_root_filesystem: Some(true),
        run_as_non_root: Some(true),
        run_as_user: Some(TRAINER_UID),
        capabilities: Some(Capabilities {
            drop: Some(vec!["ALL".into()]),
            ..Capabilities::default()
        }),
        ..SecurityContext::default()
    }
}

fn mount(volume: &str, path: &str) -> VolumeMount {
    VolumeMount {
        name: volume.into(),
        mount_path: path.into(),
        ..VolumeMount::default()
    }
}

fn env_var(name: &str, value: String) -> EnvVar {
    EnvVar {
        name: name.into(),
        value: Some(value),
        ..EnvVar::default()
    }
}

/// Gives a pod whose task trains on an external environment its environment sidecar: servers
/// listening on Unix sockets in a shared `emptyDir` ([`ENV_MOUNT`]), named to the trainer in
/// `DRLAAS_ENV_SERVERS`, with a ready file it waits for. A task's package (a wheel by CID) is
/// fetched first by an init container of the trainer image (which checks it against its CID), and
/// the sidecar installs it before it listens. Nothing for a built-in environment, or where there is
/// no image to run (admission holds such tasks before they get here).
fn add_environment_sidecar(
    spec: &mut PodSpec,
    environment: &EnvDescriptor,
    trainer_image: &str,
    settings: &PodSettings,
) {
    let sidecars = &settings.environments;
    let Some(image) = sidecars.image_for(environment) else {
        return;
    };
    let sockets: Vec<String> = (0..sidecars.servers.max(1))
        .map(|i| format!("unix:{ENV_MOUNT}/env-{i}.sock"))
        .collect();
    let ready = format!("{ENV_MOUNT}/ready");
    let limits = BTreeMap::from([
        ("cpu".to_string(), Quantity(sidecars.cpu.clone())),
        ("memory".to_string(), Quantity(sidecars.memory.clone())),
    ]);
    let mut args: Vec<String> = sockets
        .iter()
        .flat_map(|s| ["--listen".to_string(), s.clone()])
        .collect();
    args.extend(["--ready-file".into(), ready.clone()]);
    let mut init = Vec::new();
    if let Some(package) = environment.package() {
        let dir = format!("{ENV_MOUNT}/package");
        init.push(Container {
            name: "env-package".into(),
            image: Some(trainer_image.to_string()),
            args: Some(vec![
                "fetch-package".into(),
                "--cid".into(),
                package.cid.clone(),
                "--wheel".into(),
                package.wheel.clone(),
                "--out".into(),
                dir.clone(),
            ]),
            env: Some(vec![env_var("DRLAAS_STORE", settings.store_address.clone())]),
            resources: Some(fixed_resources(limits.clone())),
            security_context: Some(locked_down()),
            termination_message_policy: Some("FallbackToLogsOnError".into()),
            volume_mounts: Some(vec![mount("env", ENV_MOUNT), mount("env-tmp", "/tmp")]),
            ..Container::default()
        });
        args.extend([
            "--package".into(),
            dir,
            "--package-target".into(),
            format!("{ENV_MOUNT}/site"),
        ]);
    }
    init.push(Container {
        name: ENV_SIDECAR.into(),
        image: Some(image.to_string()),
        command: Some(vec!["drlaas-envserver".into()]),
        args: Some(args),
        // A native sidecar: started before the trainer, stopped once it exits.
        restart_policy: Some("Always".into()),
        // pip and Python write nothing under a read-only root: HOME and caches go to /tmp.
        env: Some(vec![
            env_var("HOME", "/tmp".into()),
            env_var("PYTHONDONTWRITEBYTECODE", "1".into()),
        ]),
        resources: Some(fixed_resources(limits)),
        security_context: Some(locked_down()),
        termination_message_policy: Some("FallbackToLogsOnError".into()),
        volume_mounts: Some(vec![mount("env", ENV_MOUNT), mount("env-tmp", "/tmp")]),
        ..Container::default()
    });
    spec.init_containers = Some(init);
    let volumes = spec.volumes.get_or_insert_default();
    volumes.extend([scratch_volume("env"), scratch_volume("env-tmp")]);
    let trainer = &mut spec.containers[0];
    trainer
        .volume_mounts
        .get_or_insert_default()
        .push(mount("env", ENV_MOUNT));
    trainer
        .env
        .get_or_insert_default()
        .extend([env_var(ENV_SERVERS, sockets.join(",")), env_var(ENV_READY, ready)]);
}

fn scratch_volume(name: &str) -> Volume {
    Volume {
        name: name.into(),
        empty_dir: Some(EmptyDirVolumeSource::default()),
        ..Volume::default()
    }
}

fn pod_spec(container: Container) -> PodSpec {
    let scratch = scratch_volume;
    PodSpec {
        containers: vec![container],
        restart_policy: Some("Never".into()),
        automount_service_account_token: Some(false),
        enable_service_links: Some(false),
        security_context: Some(PodSecurityContext {
            run_as_non_root: Some(true),
            run_as_user: Some(TRAINER_UID),
            fs_group: Some(TRAINER_UID),
            seccomp_profile: Some(SeccompProfile {
                type_: "RuntimeDefault".into(),
                ..SeccompProfile::default()
            }),
            ..PodSecurityContext::default()
        }),
        volumes: Some(vec![scratch("work"), scratch("tmp")]),
        ..PodSpec::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What the API server accepts as a label value (at most 63 characters, alphanumerics at both
    /// ends, `-_.` inside).
    fn is_label_value(v: &str) -> bool {
        v.len() <= 63
            && (v.is_empty()
                || (v.starts_with(|c: char| c.is_ascii_alphanumeric())
                    && v.ends_with(|c: char| c.is_ascii_alphanumeric())
                    && v.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))))
    }

    fn task_named(name: &str) -> DRLTask {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "drlaas.io/v1alpha1", "kind": "DRLTask",
            "metadata": {"name": name, "namespace": "ns", "uid": "u-1"},
            "spec": {"training": {"environment": {"kind": "cartpole"}}, "chainTaskId": 1},
        }))
        .unwrap()
    }

    #[test]
    fn short_names_are_kept_as_they_are() {
        let task = task_named("cp-00");
        assert_eq!(task_label(&task), "cp-00");
        assert_eq!(trainer_pod_name(&task, 2), "cp-00-train-2");
        assert_eq!(config_map_name(&task), "cp-00-task");
    }

    #[test]
    fn names_up_to_253_characters_give_valid_distinct_labels_and_object_names() {
        let long_a = format!("{}a", "x.".repeat(126));
        let long_b = format!("{}b", "x.".repeat(126));
        assert_eq!(long_a.len(), 253);
        for name in [long_a.as_str(), &"a".repeat(64), &"b".repeat(200)] {
            let task = task_named(name);
            let label = task_label(&task);
            assert!(is_label_value(&label), "{label:?}");
            for object in [
                trainer_pod_name(&task, 10),
                evaluator_pod_name(&task, 10),
                config_map_name(&task),
            ] {
                assert!(object.len() <= 253, "{} characters", object.len());
                assert!(object.ends_with(|c: char| c.is_ascii_alphanumeric()));
            }
        }
        assert_ne!(label_value(&long_a), label_value(&long_b), "a hash of the whole name");
        assert_ne!(
            trainer_pod_name(&task_named(&long_a), 1),
            trainer_pod_name(&task_named(&long_b), 1)
        );
        assert_eq!(label_value(&"a".repeat(63)), "a".repeat(63), "63 characters fit");
    }
}
