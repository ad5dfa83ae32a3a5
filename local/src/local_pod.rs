//! Runs a trainer or evaluator pod's command as a local process of the trainer binary: the pod's
//! mounts become a scratch directory, its content store the one given, and the outcome comes back
//! as a kubelet would report it (exit code, termination message, logs). Init containers run first,
//! in order: one of the trainer image as the trainer binary, to completion; the environment sidecar
//! (`restartPolicy: Always`) as `drlaas-envserver` of this machine's Python (`DRLAAS_ENV_PYTHON`),
//! whatever its image, kept running until the main container exits.
//!
//! This is how drlaas runs without nodes: the local mode, the fake kubelet of the cluster tests
//! (`DRLAAS_E2E_FAKE_KUBELET=1`) and the controller scenarios all execute the very pods the
//! operator builds, so what they test is the pod spec, not a copy of it.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use k8s_openapi::api::core::v1::Pod;

use drlaas_crds::pod::{ENV_MOUNT, OUT_DIR, TASK_MOUNT};
use drlaas_envs::descriptor::ENV_PYTHON;
use k8s_openapi::api::core::v1::Container;

/// Kubernetes keeps at most this much of a termination message.
const TERMINATION_MESSAGE_LIMIT: usize = 4096;

/// How a pod's container ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finished {
    pub exit_code: i32,
    /// The termination message: the termination log, or with `FallbackToLogsOnError` the end of
    /// the logs of a failed container.
    pub message: String,
    /// What the container wrote on stderr (the trainer's progress lines).
    pub logs: String,
}

/// Runs pods as processes of one trainer binary.
#[derive(Debug, Clone)]
pub struct LocalPodRunner {
    trainer: PathBuf,
    scratch: PathBuf,
    store: String,
    threads: u32,
}

/// The trainer binary: `DRLAAS_TRAINER_BIN`, else `drlaas-trainer` beside the running program
/// (or one directory up, where test binaries run from). Tests use [`build_trainer`] instead, so
/// that they never run a binary older than the source.
pub fn locate_trainer() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("DRLAAS_TRAINER_BIN") {
        return Some(PathBuf::from(path));
    }
    let exe = std::env::current_exe().ok()?;
    exe.ancestors()
        .skip(1)
        .take(2)
        .map(|dir| dir.join("drlaas-trainer"))
        .find(|p| p.is_file())
}

/// The trainer binary for tests: `drlaas-trainer`, built from the current source (see
/// [`build_workspace_binary`]).
pub fn build_trainer() -> PathBuf {
    build_workspace_binary("drlaas-trainer")
}

/// Builds binary `bin` of this workspace (`cargo build --workspace --bin BIN`) in the profile and
/// target directory of the running test or bench, and returns its path: a test that runs another
/// crate's binary runs what the source says, never a stale build left in `target/`.
///
/// `--workspace`, not `-p PACKAGE`: cargo then resolves the dependencies' features once for the
/// whole workspace, so every binary a test builds shares one build of each dependency. Per package,
/// each would get its own (a `-p` build per binary filled CI's disk).
///
/// Each binary is built once per process (a no-op when cargo finds it fresh, well under a second);
/// concurrent callers wait for that build. Without libtorch in the environment (neither
/// `LIBTORCH_USE_PYTORCH` nor `LIBTORCH`), cargo runs under `tools/torch-env.sh`, as the trainer
/// needs it. Panics if the build fails: the test cannot run without the binary.
pub fn build_workspace_binary(bin: &str) -> PathBuf {
    static BUILT: std::sync::Mutex<BTreeMap<String, PathBuf>> = std::sync::Mutex::new(BTreeMap::new());
    let mut built = BUILT.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(path) = built.get(bin) {
        return path.clone();
    }
    let path = cargo_build(bin).unwrap_or_else(|e| panic!("building {bin} for the test: {e}"));
    built.insert(bin.to_string(), path.clone());
    path
}

fn cargo_build(bin: &str) -> Result<PathBuf, String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .ok_or("drlaas-local is not in a workspace")?;
    // target/[TRIPLE/]PROFILE/{deps,examples}/EXE for tests, benches and examples; PROFILE/EXE for
    // binaries. The target directory is the one cargo tagged (CACHEDIR.TAG).
    let exe = std::env::current_exe().map_err(|e| format!("the running executable: {e}"))?;
    let dir = exe.parent().ok_or("the running executable has no directory")?;
    let profile_dir = match dir.file_name().and_then(|n| n.to_str()) {
        Some("deps" | "examples") => dir.parent().ok_or("no profile directory")?,
        _ => dir,
    };
    let profile = match profile_dir.file_name().and_then(|n| n.to_str()) {
        Some("debug") => "dev",
        Some(name) => name,
        None => return Err(format!("no cargo profile in {}", exe.display())),
    };
    let above = profile_dir.parent().ok_or("no target directory")?;
    let (target_dir, triple) = if above.join("CACHEDIR.TAG").is_file() {
        (above, None)
    } else {
        let triple = above.file_name().and_then(|n| n.to_str());
        (above.parent().ok_or("no target directory")?, triple)
    };

    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let torch = ["LIBTORCH_USE_PYTORCH", "LIBTORCH"]
        .iter()
        .any(|v| std::env::var_os(v).is_some());
    let mut command = if torch {
        Command::new(&cargo)
    } else {
        let mut c = Command::new("bash");
        c.args(["-c", r#"source tools/torch-env.sh >&2 && exec "$0" "$@""#])
            .arg(&cargo);
        c
    };
    command
        .current_dir(root)
        .args(["build", "--quiet", "--message-format=json-render-diagnostics"])
        .args(["--workspace", "--bin", bin, "--profile", profile, "--target-dir"])
        .arg(target_dir)
        .args(triple.map(|t| format!("--target={t}")))
        .stdin(Stdio::null())
        .stderr(Stdio::inherit());
    let out = command
        .output()
        .map_err(|e| format!("running {}: {e}", Path::new(&cargo).display()))?;
    if !out.status.success() {
        return Err(format!("cargo build --workspace --bin {bin} failed ({})", out.status));
    }
    // The executable cargo reports for the binary (its JSON messages, one per line).
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|m| m["reason"] == "compiler-artifact" && m["target"]["name"] == bin)
        .find_map(|m| m["executable"].as_str().map(PathBuf::from))
        .ok_or_else(|| format!("cargo built no executable named {bin}"))
}

impl LocalPodRunner {
    /// Pods run `trainer`, in directories under `scratch`, with their models in `store` (replacing
    /// the pod's `DRLAAS_STORE`), each with `threads` threads.
    pub fn new(trainer: PathBuf, scratch: PathBuf, store: String, threads: u32) -> Self {
        LocalPodRunner {
            trainer,
            scratch,
            store,
            threads,
        }
    }

    /// Runs `pod` to completion. `task_json` is the content of its task ConfigMap, for a trainer.
    pub fn run(&self, pod: &Pod, task_json: Option<&str>) -> std::io::Result<Finished> {
        self.start(pod, task_json)?.wait(|_| {})
    }

    /// The directory of pod `name` of `namespace`: its task file, output and termination log.
    /// Beside it, `NAME.log` keeps what the container wrote on stderr and `NAME.pid` its process.
    pub fn pod_dir(&self, namespace: &str, name: &str) -> PathBuf {
        self.scratch.join(namespace).join(name)
    }

    /// Starts `pod`'s container as a process, after stopping one that an earlier run of the same
    /// pod left behind (a kubelet restarted with its node).
    pub fn start(&self, pod: &Pod, task_json: Option<&str>) -> std::io::Result<RunningPod> {
        let name = pod.metadata.name.clone().unwrap_or_default();
        let namespace = pod.metadata.namespace.clone().unwrap_or_default();
        let dir = self.pod_dir(&namespace, &name);
        let pid_file = dir.with_extension("pid");
        stop_leftover(&pid_file, &self.trainer);
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir)?;
        let task_file = dir.join("task.json");
        if let Some(json) = task_json {
            std::fs::write(&task_file, json)?;
        }
        let paths = PodPaths {
            task: task_file,
            out: dir.join("out"),
            termination_log: dir.join("termination-log"),
            env: env_dir(),
        };
        let spec = pod
            .spec
            .as_ref()
            .ok_or_else(|| std::io::Error::other(format!("pod {name} has no spec")))?;
        let container = spec
            .containers
            .first()
            .ok_or_else(|| std::io::Error::other(format!("pod {name} has no container")))?;
        let mut sidecars = Vec::new();
        let init_containers = spec.init_containers.as_deref().unwrap_or_default();
        if !init_containers.is_empty() {
            std::fs::create_dir_all(&paths.env)?;
        }
        for init in init_containers {
            if init.restart_policy.as_deref() == Some("Always") {
                sidecars.push(Sidecar(self.start_sidecar(init, &paths, &dir)?));
            } else {
                self.run_init(init, &paths, &dir)?;
            }
        }
        let child = self
            .trainer_command(container, &paths, &dir)
            .args(["--threads", &self.threads.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()?;
        std::fs::write(&pid_file, child.id().to_string())?;
        let fallback = container.termination_message_policy.as_deref() == Some("FallbackToLogsOnError");
        Ok(RunningPod {
            child,
            log: dir.with_extension("log"),
            pid_file,
            termination_log: paths.termination_log,
            fallback,
            sidecars,
            env_dir: paths.env,
        })
    }

    /// The trainer binary with `container`'s arguments and variables, its paths mapped to the pod's
    /// directory and its content store this runner's.
    fn trainer_command(&self, container: &Container, paths: &PodPaths, dir: &Path) -> Command {
        let mut command = Command::new(&self.trainer);
        command
            .args(container.args.iter().flatten().map(|a| paths.map(a)))
            .envs(container_env(container, paths))
            .env("DRLAAS_STORE", &self.store)
            .current_dir(dir);
        command
    }

    /// Runs an init container of the trainer image to completion; a failure fails the pod, as a
    /// kubelet fails a pod that never restarts.
    fn run_init(&self, init: &Container, paths: &PodPaths, dir: &Path) -> std::io::Result<()> {
        let output = self.trainer_command(init, paths, dir).stdin(Stdio::null()).output()?;
        if output.status.success() {
            return Ok(());
        }
        Err(std::io::Error::other(format!(
            "init container {} failed ({}): {}",
            init.name,
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        )))
    }

    /// Starts the environment sidecar: `drlaas-envserver` of this machine's Python, its own process
    /// group (its servers fork), its output in `NAME.environment.log` beside the pod's directory.
    fn start_sidecar(&self, sidecar: &Container, paths: &PodPaths, dir: &Path) -> std::io::Result<Child> {
        use std::os::unix::process::CommandExt;
        let python = std::env::var_os(ENV_PYTHON).unwrap_or_else(|| "python3".into());
        let log = std::fs::File::create(dir.with_extension(format!("{}.log", sidecar.name)))?;
        Command::new(python)
            .args(["-m", "drlaas_envserver"])
            .args(sidecar.args.iter().flatten().map(|a| paths.map(a)))
            // The pod's HOME is its /tmp volume; a local process keeps its own.
            .envs(container_env(sidecar, paths).filter(|(k, _)| k != "HOME"))
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .process_group(0)
            .spawn()
    }
}

/// Where a pod's paths are on this machine.
struct PodPaths {
    task: PathBuf,
    out: PathBuf,
    termination_log: PathBuf,
    /// The environment volume: short, for the 108 bytes of a Unix socket's path.
    env: PathBuf,
}

impl PodPaths {
    fn map(&self, arg: &str) -> String {
        if arg == format!("{TASK_MOUNT}/task.json") {
            self.task.display().to_string()
        } else if arg == OUT_DIR {
            self.out.display().to_string()
        } else if arg == "/dev/termination-log" {
            self.termination_log.display().to_string()
        } else if arg.contains(ENV_MOUNT) {
            // Paths in the volume, alone or in a list of addresses (`unix:/drlaas-env/env-0.sock,…`).
            arg.replace(ENV_MOUNT, &self.env.display().to_string())
        } else {
            arg.to_string()
        }
    }
}

/// A container's variables with literal values, their paths mapped.
fn container_env<'a>(container: &'a Container, paths: &'a PodPaths) -> impl Iterator<Item = (String, String)> + 'a {
    container
        .env
        .iter()
        .flatten()
        .filter_map(|v| Some((v.name.clone(), paths.map(v.value.as_deref()?))))
}

/// A fresh folder for a pod's environment volume, in the system's temporary folder.
fn env_dir() -> PathBuf {
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    std::env::temp_dir().join(format!("drlaas-pod-env-{}-{n}", std::process::id()))
}

/// A running environment sidecar; its whole process group is killed when it is dropped.
#[derive(Debug)]
struct Sidecar(Child);

impl Drop for Sidecar {
    fn drop(&mut self) {
        let group = format!("-{}", self.0.id());
        let _ = Command::new("kill")
            .args(["-KILL", "--", &group])
            .stderr(Stdio::null())
            .status();
        let _ = self.0.wait();
    }
}

/// A pod's container running as a process.
#[derive(Debug)]
pub struct RunningPod {
    child: Child,
    log: PathBuf,
    pid_file: PathBuf,
    termination_log: PathBuf,
    fallback: bool,
    /// Environment sidecars, stopped when the container exits.
    sidecars: Vec<Sidecar>,
    env_dir: PathBuf,
}

impl RunningPod {
    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits for the container to exit, handing each line it writes on stderr to `on_line` as it
    /// comes (and keeping them in the pod's log file).
    pub fn wait(mut self, mut on_line: impl FnMut(&str)) -> std::io::Result<Finished> {
        let mut logs = String::new();
        let mut file = std::fs::File::create(&self.log)?;
        if let Some(stderr) = self.child.stderr.take() {
            for line in BufReader::new(stderr).lines() {
                let line = line?;
                writeln!(file, "{line}")?;
                on_line(&line);
                logs.push_str(&line);
                logs.push('\n');
            }
        }
        let status = self.child.wait()?;
        let _ = std::fs::remove_file(&self.pid_file);
        // The main container is done: its sidecars stop, as a kubelet stops native sidecars.
        self.sidecars.clear();
        let _ = std::fs::remove_dir_all(&self.env_dir);
        // A process killed by a signal reports what a container runtime does: 128 + the signal.
        let exit_code = status
            .code()
            .unwrap_or_else(|| 128 + std::os::unix::process::ExitStatusExt::signal(&status).unwrap_or(9));
        let mut message = std::fs::read_to_string(&self.termination_log).unwrap_or_default();
        if message.is_empty() && exit_code != 0 && self.fallback {
            let tail: Vec<&str> = logs.lines().rev().take(20).collect();
            message = tail.into_iter().rev().collect::<Vec<_>>().join("\n");
        }
        if message.len() > TERMINATION_MESSAGE_LIMIT {
            let mut end = message.len() - TERMINATION_MESSAGE_LIMIT;
            while !message.is_char_boundary(end) {
                end += 1;
            }
            message = message[end..].to_string();
        }
        Ok(Finished {
            exit_code,
            message,
            logs,
        })
    }
}

/// Kills the process recorded in `pid_file` if it is still a run of `trainer`.
fn stop_leftover(pid_file: &Path, trainer: &Path) {
    let Some(pid) = std::fs::read_to_string(pid_file)
        .ok()
        .and_then(|p| p.trim().parse::<u32>().ok())
    else {
        return;
    };
    let ours = std::fs::read(format!("/proc/{pid}/cmdline")).ok().and_then(|c| {
        c.split(|b| *b == 0)
            .next()
            .map(|exe| Path::new(std::ffi::OsStr::from_bytes(exe)) == trainer)
    });
    if ours == Some(true) {
        let _ = Command::new("kill").args(["-KILL", &pid.to_string()]).status();
        // It is not our child: wait for /proc to forget it.
        for _ in 0..100 {
            if !Path::new(&format!("/proc/{pid}")).exists() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }
    let _ = std::fs::remove_file(pid_file);
}
