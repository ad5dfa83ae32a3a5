//! Runs a trainer or evaluator pod's command as a local process of the trainer binary: the pod's
//! mounts become a scratch directory, its content store the one given, and the outcome comes back
//! as a kubelet would report it (exit code, termination message, logs).
//!
//! This is how drlaas runs without nodes: the local mode, the fake kubelet of the cluster tests
//! (`DRLAAS_E2E_FAKE_KUBELET=1`) and the controller scenarios all execute the very pods the
//! operator builds, so what they test is the pod spec, not a copy of it.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use k8s_openapi::api::core::v1::Pod;

use crate::pods::{OUT_DIR, TASK_MOUNT};

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
/// (or one directory up, where test binaries run from).
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
        let termination_log = dir.join("termination-log");
        let container = pod
            .spec
            .as_ref()
            .and_then(|s| s.containers.first())
            .ok_or_else(|| std::io::Error::other(format!("pod {name} has no container")))?;
        let task_path = format!("{TASK_MOUNT}/task.json");
        let args: Vec<String> = container
            .args
            .iter()
            .flatten()
            .map(|a| map_path(a, &task_path, &task_file, &dir.join("out"), &termination_log))
            .collect();
        let child = Command::new(&self.trainer)
            .args(&args)
            .args(["--threads", &self.threads.to_string()])
            .env("DRLAAS_STORE", &self.store)
            .current_dir(&dir)
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
            termination_log,
            fallback,
        })
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

fn map_path(arg: &str, task_path: &str, task_file: &Path, out: &Path, log: &Path) -> String {
    if arg == task_path {
        task_file.display().to_string()
    } else if arg == OUT_DIR {
        out.display().to_string()
    } else if arg == "/dev/termination-log" {
        log.display().to_string()
    } else {
        arg.to_string()
    }
}
