//! The load benchmark of `drlaas-e2e-load` (see that binary for how to run it): N DRLTasks applied
//! at once against a real API server, the real `drlaas operator` binary running as the chart's
//! ServiceAccount, and the floor of the same API server creating N pods on its own.
//!
//! One [`run`] is one fresh [`Cluster`]: the chart's RBAC applied in its namespace, a token minted
//! for the operator's ServiceAccount, the operator started with a kubeconfig of that token, the
//! tasks applied from a few concurrent clients, trainer pods timed through a watch, the checks, the
//! operator's figures, then the floor, then everything removed again.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use drlaas_chart::{Helm, chart_dir, documents};
use drlaas_core::mirror::LABEL_SPEC_CID;
use drlaas_crds::task::{DRLTask, TaskOutcome, TaskPhase};
use drlaas_crds::worker::Worker;
use drlaas_operator::pods::{LABEL_ROLE, LABEL_TASK, PodSettings, trainer_pod};
use futures::StreamExt;
use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Namespace, Pod, ServiceAccount};
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding};
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::config::Kubeconfig;
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client, ResourceExt};
use serde_json::{Value, json};

use crate::{BUDGET_WEI, Cluster, OperatorMode, OperatorProcess, Setup, quantile, quick_cartpole};

/// Field manager of what the benchmark applies.
const MANAGER: &str = "drlaas-e2e-load";
/// Label on the cluster-scoped RBAC objects: the test namespace they belong to (so a later run
/// removes those of an interrupted one).
const LABEL_OWNER_NAMESPACE: &str = "e2e-load.drlaas.io/namespace";
/// Target mean return of the load's tasks (a quick cartpole reaches it).
const TARGET: f64 = 5.0;

/// What a load run does.
#[derive(Debug, Clone)]
pub struct LoadOptions {
    /// DRLTasks applied.
    pub tasks: usize,
    /// Requester wallets the tasks are spread over, round robin.
    pub requesters: usize,
    /// Registered workers; each has room for `ceil(tasks / workers)` trainers.
    pub workers: usize,
    /// Wait until every task is settled (pods run by the fake kubelet or real nodes).
    pub settle: bool,
    /// How long after the first apply every task must have its trainer pod.
    pub pod_timeout: Duration,
    /// How long after the first apply every task must be settled (with `settle`).
    pub settle_timeout: Duration,
    /// Concurrent clients applying the tasks.
    pub apply_clients: usize,
    /// Concurrent clients creating the floor's pods.
    pub floor_clients: usize,
    /// How long to wait for another cluster test on the same API server to finish.
    pub wait_for_others: Duration,
    /// Where to keep the operator's logs (without it, only those of a run with a failed check are
    /// kept, in the temporary directory).
    pub log_dir: Option<PathBuf>,
}

impl LoadOptions {
    /// The default time limit for trainer pods: 60 s + 0.1 s per task.
    pub fn default_pod_timeout(tasks: usize) -> Duration {
        Duration::from_secs(60) + Duration::from_millis(100 * tasks as u64)
    }

    /// Tasks each worker runs at once: room for every task.
    pub fn concurrent_tasks(&self) -> u32 {
        u32::try_from(self.tasks.div_ceil(self.workers.max(1))).unwrap_or(u32::MAX)
    }
}

/// The figures and check results of one run.
#[derive(Debug, Clone, Default)]
pub struct RunFigures {
    pub tasks: usize,
    /// First apply sent to last apply answered, seconds.
    pub apply_seconds: f64,
    /// One apply's round trip, seconds.
    pub apply_p50: f64,
    pub apply_p99: f64,
    /// Apply answered → the watch saw the task's trainer pod, seconds (tasks with a pod).
    pub pod_p50: f64,
    pub pod_p99: f64,
    /// Tasks whose trainer pod was seen.
    pub pods_created: usize,
    /// First apply sent → the last trainer pod seen, seconds (when every task got one).
    pub until_last_pod: Option<f64>,
    /// First apply sent → every task settled, seconds (with `--settle`).
    pub until_settled: Option<f64>,
    /// The operator's `drlaas_kube_requests_total` by verb, scraped at the end.
    pub requests: BTreeMap<String, f64>,
    /// The same scraped just before the first apply (start-up: caches, Lease).
    pub requests_before_load: BTreeMap<String, f64>,
    /// The operator's peak resident memory (VmHWM), MiB.
    pub peak_rss_mib: f64,
    /// The bare API server creating the same number of trainer-shaped pods, seconds.
    pub floor_seconds: f64,
    /// Lines of the operator's log that say a request was forbidden.
    pub forbidden_log_lines: usize,
    /// Reconciles the operator's log says failed, and the first such line.
    pub failed_reconciles: usize,
    pub first_failed_reconcile: Option<String>,
    /// Failed checks, each saying what failed.
    pub failures: Vec<String>,
}

impl RunFigures {
    /// All requests the operator sent, over the tasks.
    pub fn requests_per_task(&self) -> f64 {
        self.requests.values().sum::<f64>() / self.tasks.max(1) as f64
    }

    /// Requests sent after the first apply, over the tasks.
    pub fn load_requests_per_task(&self) -> f64 {
        (self.requests.values().sum::<f64>() - self.requests_before_load.values().sum::<f64>())
            / self.tasks.max(1) as f64
    }

    /// Pods created over tasks.
    pub fn pods_ratio(&self) -> f64 {
        self.pods_created as f64 / self.tasks.max(1) as f64
    }

    /// Time until the last trainer pod over the floor's time.
    pub fn floor_ratio(&self) -> Option<f64> {
        self.until_last_pod
            .filter(|_| self.floor_seconds > 0.0)
            .map(|t| t / self.floor_seconds)
    }

    /// Prints the figures, indented.
    pub fn print(&self) {
        let n = self.tasks;
        println!(
            "  applied {n} tasks in {:.2} s (one apply: p50 {:.3} s, p99 {:.3} s)",
            self.apply_seconds, self.apply_p50, self.apply_p99
        );
        println!(
            "  apply→trainer-pod: p50 {:.2} s, p99 {:.2} s (apply answered → pod seen by the watch)",
            self.pod_p50, self.pod_p99
        );
        match self.until_last_pod {
            Some(t) => println!("  first apply → last trainer pod: {t:.2} s"),
            None => println!("  first apply → last trainer pod: never (not every task got a pod)"),
        }
        println!(
            "  trainer pods created / tasks: {} / {n} = {:.2}",
            self.pods_created,
            self.pods_ratio()
        );
        if let Some(t) = self.until_settled {
            println!("  first apply → every task settled: {t:.1} s");
        }
        println!(
            "  API requests per task: {:.2} ({:.0} in all; {:.2} per task after the first apply)",
            self.requests_per_task(),
            self.requests.values().sum::<f64>(),
            self.load_requests_per_task()
        );
        for (verb, count) in &self.requests {
            let before = self.requests_before_load.get(verb).copied().unwrap_or(0.0);
            println!(
                "    {verb:<16} {count:>8.0}  ({:.2} per task; {before:.0} before the first apply)",
                count / n.max(1) as f64
            );
        }
        println!("  operator peak RSS (VmHWM): {:.1} MiB", self.peak_rss_mib);
        println!(
            "  floor: the bare API server created {n} pods in {:.2} s",
            self.floor_seconds
        );
        match self.floor_ratio() {
            Some(r) => println!("  last trainer pod / floor: {r:.2}×"),
            None => println!("  last trainer pod / floor: n/a"),
        }
        if self.forbidden_log_lines > 0 {
            println!(
                "  operator log: {} line(s) say a request was forbidden",
                self.forbidden_log_lines
            );
        }
        if self.failed_reconciles > 0 {
            println!(
                "  operator log: {} failed reconcile(s); the first: {}",
                self.failed_reconciles,
                self.first_failed_reconcile.as_deref().unwrap_or_default()
            );
        }
        if self.failures.is_empty() {
            println!("  checks: all passed");
        } else {
            for failure in &self.failures {
                println!("  CHECK FAILED: {failure}");
            }
        }
    }
}

/// The median of `values` (the mean of the middle two for an even count); NaN when empty.
pub fn median(values: &[f64]) -> f64 {
    let mut sorted: Vec<f64> = values.iter().copied().filter(|v| !v.is_nan()).collect();
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted.sort_by(f64::total_cmp);
    let mid = sorted.len() / 2;
    if sorted.len() % 2 == 1 {
        sorted[mid]
    } else {
        (sorted[mid - 1] + sorted[mid]) / 2.0
    }
}

/// Prints the median of each figure over `runs`.
pub fn print_medians(runs: &[RunFigures]) {
    let of = |f: &dyn Fn(&RunFigures) -> f64| median(&runs.iter().map(f).collect::<Vec<_>>());
    println!("median of {} runs:", runs.len());
    println!(
        "  apply→trainer-pod: p50 {:.2} s, p99 {:.2} s",
        of(&|r| r.pod_p50),
        of(&|r| r.pod_p99)
    );
    println!(
        "  first apply → last trainer pod: {:.2} s",
        of(&|r| r.until_last_pod.unwrap_or(f64::NAN))
    );
    println!("  trainer pods created / tasks: {:.2}", of(&|r| r.pods_ratio()));
    if runs.iter().any(|r| r.until_settled.is_some()) {
        println!(
            "  first apply → every task settled: {:.1} s",
            of(&|r| r.until_settled.unwrap_or(f64::NAN))
        );
    }
    println!(
        "  API requests per task: {:.2} ({:.2} after the first apply)",
        of(&|r| r.requests_per_task()),
        of(&|r| r.load_requests_per_task())
    );
    let verbs: BTreeSet<&String> = runs.iter().flat_map(|r| r.requests.keys()).collect();
    for verb in verbs {
        let per_task = of(&|r| r.requests.get(verb).copied().unwrap_or(0.0) / r.tasks.max(1) as f64);
        println!("    {verb:<16} {per_task:.2} per task");
    }
    println!("  operator peak RSS: {:.1} MiB", of(&|r| r.peak_rss_mib));
    println!("  floor: {:.2} s", of(&|r| r.floor_seconds));
    println!(
        "  last trainer pod / floor: {:.2}×",
        of(&|r| r.floor_ratio().unwrap_or(f64::NAN))
    );
}

/// The `drlaas` binary `Cluster::spawn_operator` starts; `None` when it is not built.
pub fn operator_binary() -> Option<PathBuf> {
    crate::find_workspace_binary("drlaas")
}

/// The profile directory of this executable (`debug`, `release`).
pub fn own_profile() -> String {
    std::env::current_exe()
        .ok()
        .and_then(|exe| {
            exe.parent()
                .and_then(|d| d.file_name())
                .map(|n| n.to_string_lossy().into_owned())
        })
        .unwrap_or_else(|| "?".into())
}

/// A warning when the operator binary is older than a source file of the operator crate (a stale
/// build would measure old code).
pub fn stale_binary_warning(binary: &Path) -> Option<String> {
    let built = std::fs::metadata(binary).and_then(|m| m.modified()).ok()?;
    let sources = Path::new(env!("CARGO_MANIFEST_DIR")).join("../operator/src");
    let mut newest: Option<(std::time::SystemTime, PathBuf)> = None;
    let mut stack = vec![sources];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).ok()?.flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if let Ok(modified) = entry.metadata().and_then(|m| m.modified())
                && newest.as_ref().is_none_or(|(t, _)| modified > *t)
            {
                newest = Some((modified, path));
            }
        }
    }
    let (modified, path) = newest?;
    (modified > built).then(|| {
        format!(
            "{} is older than {} (rebuild it: it would measure old operator code)",
            binary.display(),
            path.display()
        )
    })
}

/// Checks that a cluster is configured: a kubeconfig (`KUBECONFIG`) this process can use.
pub async fn check_kubeconfig() -> Result<(), String> {
    match std::env::var_os("KUBECONFIG") {
        None => {
            return Err(
                "KUBECONFIG is not set: point it at the kubeconfig of the API server to load (cluster-admin), \
                 e.g. KUBECONFIG=/path/to/kubeconfig"
                    .into(),
            );
        }
        Some(paths) => {
            for path in std::env::split_paths(&paths).filter(|p| !p.as_os_str().is_empty()) {
                if !path.is_file() {
                    return Err(format!("KUBECONFIG names {}, which is not a file", path.display()));
                }
            }
        }
    }
    Kubeconfig::read().map_err(|e| format!("KUBECONFIG cannot be read: {e}"))?;
    let client = Client::try_default()
        .await
        .map_err(|e| format!("no client for the cluster of KUBECONFIG: {e}"))?;
    client
        .apiserver_version()
        .await
        .map_err(|e| format!("the API server of KUBECONFIG does not answer: {e}"))?;
    Ok(())
}

/// One load run against a fresh [`Cluster`]: `Err` when it could not be measured at all (set-up
/// failed), else the figures with the checks that failed. Everything it created is removed.
pub async fn run(options: &LoadOptions, label: &str) -> Result<RunFigures, String> {
    wait_for_other_tests(options.wait_for_others).await?;
    // Set-up failures panic in the test library: in a task of its own, one is this run's error.
    let cluster = tokio::spawn(Cluster::start_with(Setup {
        workers: options.workers,
        concurrent_tasks: options.concurrent_tasks(),
        requesters: options.requesters,
        operator: OperatorMode::Processes,
        environment_image: None,
        other_members: 0,
        quorum: 1,
    }))
    .await
    .map_err(|e| format!("the test cluster could not be set up: {}", panic_message(e)))?;
    println!("run {label}: namespace {}", cluster.namespace);
    let mut made = Made::default();
    let mut operator = None;
    let measured = measure(&cluster, options, label, &mut made, &mut operator).await;
    let mut error = String::new();
    let mut figures = match measured {
        Ok(figures) => Some(figures),
        Err(e) => {
            let mut why = String::new();
            if let Some(op) = operator.as_mut() {
                eprintln!("{}", log_tail(&cluster, op, 20));
                if let Ok(Some(status)) = op.child.try_wait() {
                    why.push_str(&format!("; the operator had exited ({status})"));
                }
            }
            let namespaces = Api::<Namespace>::all(cluster.client.clone());
            match namespaces.get_opt(&cluster.namespace).await {
                Ok(Some(ns)) if ns.metadata.deletion_timestamp.is_none() => {}
                Ok(_) => why.push_str(&format!(
                    "; the test namespace {} was deleted during the run (another cluster test starting on this \
                     API server removes every {}* namespace)",
                    cluster.namespace,
                    crate::PREFIX
                )),
                Err(_) => {}
            }
            error = format!("{e}{why}");
            None
        }
    };
    if let Some(op) = operator.take() {
        stop_operator(op).await;
    }
    let failed = figures.as_ref().is_none_or(|f| !f.failures.is_empty());
    if let Some(dir) = options
        .log_dir
        .clone()
        .or_else(|| failed.then(|| std::env::temp_dir().join(MANAGER)))
    {
        keep_logs(&cluster, &dir);
    }
    if let Some(figures) = figures.as_mut() {
        match floor(&cluster, options, &mut made).await {
            Ok(seconds) => figures.floor_seconds = seconds,
            Err(e) => figures.failures.push(format!("the floor could not be measured: {e}")),
        }
    }
    clean_up(cluster, made).await;
    figures.ok_or(error)
}

/// Waits while another cluster test seems to run on this API server (a `drlaas-e2e-` namespace
/// made in the last two minutes, or with a Lease renewed in the last minute): a cluster starting
/// removes every such namespace, so two tests at once break each other.
async fn wait_for_other_tests(limit: Duration) -> Result<(), String> {
    let client = Client::try_default().await.map_err(|e| format!("a client: {e}"))?;
    let start = Instant::now();
    let mut told = false;
    loop {
        let live = live_test_namespaces(&client).await;
        if live.is_empty() {
            return Ok(());
        }
        if start.elapsed() > limit {
            return Err(format!(
                "another cluster test still runs on this API server after {:.0} s (namespaces {live:?}); \
                 starting would delete its namespaces",
                limit.as_secs_f64()
            ));
        }
        if !told {
            println!(
                "another cluster test seems to run on this API server (namespaces {live:?}): waiting up to {:.0} s",
                limit.as_secs_f64()
            );
            told = true;
        }
        tokio::time::sleep(Duration::from_secs(5)).await;
    }
}

async fn live_test_namespaces(client: &Client) -> Vec<String> {
    let now = k8s_openapi::jiff::Timestamp::now();
    let recent = |t: k8s_openapi::jiff::Timestamp, seconds: i64| {
        now.duration_since(t) < k8s_openapi::jiff::SignedDuration::from_secs(seconds)
    };
    let namespaces = Api::<Namespace>::all(client.clone())
        .list(&ListParams::default())
        .await
        .map(|l| l.items)
        .unwrap_or_default();
    let mut live = Vec::new();
    for ns in namespaces {
        let name = ns.name_any();
        if !name.starts_with(crate::PREFIX) || ns.metadata.deletion_timestamp.is_some() {
            continue;
        }
        let young = ns
            .metadata
            .creation_timestamp
            .as_ref()
            .is_some_and(|t| recent(t.0, 120));
        let leases = Api::<Lease>::namespaced(client.clone(), &name)
            .list(&ListParams::default())
            .await
            .map(|l| l.items)
            .unwrap_or_default();
        let renewed = leases
            .iter()
            .filter_map(|l| l.spec.as_ref().and_then(|s| s.renew_time.as_ref()))
            .any(|t| recent(t.0, 60));
        if young || renewed {
            live.push(name);
        }
    }
    live
}

/// The message of a task's panic.
fn panic_message(error: tokio::task::JoinError) -> String {
    match error.try_into_panic() {
        Ok(payload) => payload
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_else(|| "a panic".into()),
        Err(error) => error.to_string(),
    }
}

/// What a run created besides the [`Cluster`]'s own objects.
#[derive(Debug, Default)]
struct Made {
    cluster_roles: Vec<String>,
    cluster_role_bindings: Vec<String>,
    floor_namespace: Option<String>,
    /// The operator's kubeconfig.
    scratch: Option<tempfile::TempDir>,
}

async fn measure(
    cluster: &Cluster,
    options: &LoadOptions,
    label: &str,
    made: &mut Made,
    operator: &mut Option<OperatorProcess>,
) -> Result<RunFigures, String> {
    let n = options.tasks;
    let namespace = cluster.namespace.clone();
    remove_stale_rbac(&cluster.client).await;

    // The operator as the chart's ServiceAccount.
    let service_account = apply_chart_rbac(&cluster.client, &namespace, made).await?;
    let token = mint_token(&cluster.client, &namespace, &service_account).await?;
    let scratch = tempfile::tempdir().map_err(|e| format!("a temporary directory: {e}"))?;
    let kubeconfig = scratch.path().join("operator.kubeconfig");
    write_kubeconfig(&kubeconfig, &namespace, &service_account, &token)?;
    made.scratch = Some(scratch);
    wait_until_allowed(&kubeconfig, &namespace).await?;

    // Trainer pods, as a watch sees them, from before the operator starts.
    let pods = PodLog::start(Api::namespaced(cluster.client.clone(), &namespace)).await?;

    let identity = format!("load-{label}");
    *operator = Some(cluster.spawn_operator(&identity, Some(&kubeconfig)));
    let op = operator.as_mut().expect("just started");
    wait_until_leading(cluster, op, &identity).await?;
    let requests_before_load = scrape_requests(&op.metrics).await?;

    // The tasks, from a few concurrent clients.
    let started = Instant::now();
    let applied = apply_tasks(cluster, options, started).await?;
    let apply_seconds = applied.iter().map(|a| a.answered).fold(0.0, f64::max);
    let round_trips: Vec<f64> = applied.iter().map(|a| a.answered - a.sent).collect();

    // Every trainer pod, or the time limit.
    let deadline = started + options.pod_timeout;
    pods.wait_for(n, deadline).await;
    let seen = pods.snapshot();
    let mut failures = Vec::new();
    let mut latencies = Vec::new();
    let mut last_pod: f64 = 0.0;
    for a in &applied {
        if let Some(record) = seen.get(&a.name) {
            let at = record.first_seen.duration_since(started).as_secs_f64();
            latencies.push(at - a.answered);
            last_pod = last_pod.max(at);
        }
    }
    let missing: Vec<&str> = applied
        .iter()
        .filter(|a| !seen.contains_key(&a.name))
        .map(|a| a.name.as_str())
        .collect();
    if !missing.is_empty() {
        failures.push(format!(
            "{} of {n} tasks got no trainer pod within {:.1} s of the first apply (first: {})",
            missing.len(),
            options.pod_timeout.as_secs_f64(),
            missing.iter().take(5).copied().collect::<Vec<_>>().join(", ")
        ));
    }

    let mut until_settled = None;
    if options.settle {
        match wait_settled(cluster, n, started + options.settle_timeout).await {
            Ok(()) => until_settled = Some(started.elapsed().as_secs_f64()),
            Err(e) => failures.push(e),
        }
    }
    failures.extend(check_tasks(cluster, n, options.settle).await);

    // Pods seen twice, counted after the checks: a late duplicate shows up too.
    let seen = pods.snapshot();
    let twice: Vec<String> = seen
        .iter()
        .filter(|(_, r)| r.pods.len() > 1)
        .map(|(task, r)| format!("{task} ({})", r.pods.iter().cloned().collect::<Vec<_>>().join(", ")))
        .collect();
    if !twice.is_empty() {
        failures.push(format!(
            "{} task(s) got more than one trainer pod: {}",
            twice.len(),
            twice.iter().take(5).cloned().collect::<Vec<_>>().join("; ")
        ));
    }
    let strays: Vec<&String> = seen.keys().filter(|t| !applied.iter().any(|a| &a.name == *t)).collect();
    if !strays.is_empty() {
        failures.push(format!("trainer pods of tasks never applied: {strays:?}"));
    }
    pods.stop();

    let requests = scrape_requests(&op.metrics).await?;
    let peak_rss_mib = op.peak_rss_mib();
    if let Ok(Some(status)) = op.child.try_wait() {
        failures.push(format!("the operator exited during the run ({status})"));
    }
    let log = strip_ansi(&operator_log(cluster, &identity));
    let forbidden_log_lines = log
        .lines()
        .filter(|l| l.contains("forbidden") || l.contains("Forbidden"))
        .count();
    let failed_reconciles: Vec<&str> = log.lines().filter(|l| l.contains("reconcile failed")).collect();
    let first_failed_reconcile = failed_reconciles
        .first()
        .map(|l| l.split_once(" WARN ").map_or(*l, |(_, rest)| rest.trim()))
        .map(|l| l.chars().take(300).collect());
    Ok(RunFigures {
        tasks: n,
        apply_seconds,
        apply_p50: quantile(&round_trips, 0.5),
        apply_p99: quantile(&round_trips, 0.99),
        pod_p50: quantile(&latencies, 0.5),
        pod_p99: quantile(&latencies, 0.99),
        pods_created: latencies.len(),
        until_last_pod: missing.is_empty().then_some(last_pod),
        until_settled,
        requests,
        requests_before_load,
        peak_rss_mib,
        floor_seconds: f64::NAN,
        forbidden_log_lines,
        failed_reconciles: failed_reconciles.len(),
        first_failed_reconcile,
        failures,
    })
}

/// Renders the chart's RBAC for `namespace` (release namespace and the one watched namespace) and
/// applies it: the ServiceAccount, Roles and RoleBindings as they are, the cluster-scoped ones named
/// with the namespace as suffix. Returns the ServiceAccount's name.
async fn apply_chart_rbac(client: &Client, namespace: &str, made: &mut Made) -> Result<String, String> {
    let objects = render_rbac(namespace)?;
    let service_account = objects
        .iter()
        .find(|o| o["kind"] == "ServiceAccount")
        .and_then(|o| o["metadata"]["name"].as_str())
        .ok_or("the chart renders no ServiceAccount (serviceAccount.create)")?
        .to_string();
    for object in objects {
        let name = object["metadata"]["name"].as_str().unwrap_or_default().to_string();
        let object_namespace = object["metadata"]["namespace"]
            .as_str()
            .unwrap_or(namespace)
            .to_string();
        let result = match object["kind"].as_str().unwrap_or_default() {
            "ServiceAccount" => {
                apply(
                    Api::<ServiceAccount>::namespaced(client.clone(), &object_namespace),
                    &object,
                )
                .await
            }
            "Role" => apply(Api::<Role>::namespaced(client.clone(), &object_namespace), &object).await,
            "RoleBinding" => {
                apply(
                    Api::<RoleBinding>::namespaced(client.clone(), &object_namespace),
                    &object,
                )
                .await
            }
            "ClusterRole" => {
                made.cluster_roles.push(name.clone());
                apply(Api::<ClusterRole>::all(client.clone()), &object).await
            }
            "ClusterRoleBinding" => {
                made.cluster_role_bindings.push(name.clone());
                apply(Api::<ClusterRoleBinding>::all(client.clone()), &object).await
            }
            _ => Ok(()),
        };
        result.map_err(|e| format!("applying the chart's {} {name}: {e}", object["kind"]))?;
    }
    Ok(service_account)
}

/// The chart's ServiceAccount and RBAC objects for `namespace`, the cluster-scoped ones renamed
/// `NAME-NAMESPACE` (and the bindings' references to them) and labelled with the namespace.
pub fn render_rbac(namespace: &str) -> Result<Vec<Value>, String> {
    let dir = tempfile::tempdir().map_err(|e| format!("a temporary directory: {e}"))?;
    let values = dir.path().join("values.yaml");
    // JSON is YAML. The keys are those of charts/drlaas/values.yaml.
    let text = json!({
        "watchNamespaces": [namespace],
        "clusterWide": false,
        "rbac": {"create": true},
        "serviceAccount": {"create": true},
    });
    std::fs::write(&values, text.to_string()).map_err(|e| format!("{}: {e}", values.display()))?;
    let helm = Helm::pinned();
    let chart = chart_dir();
    let out = helm.run([
        "template".as_ref(),
        "drlaas".as_ref(),
        chart.as_os_str(),
        "--namespace".as_ref(),
        namespace.as_ref(),
        "--values".as_ref(),
        values.as_os_str(),
    ]);
    if !out.success {
        return Err(format!("helm template of the chart failed:\n{}", out.stderr));
    }
    let mut objects: Vec<Value> = documents(&out.stdout)?
        .into_iter()
        .filter(|o| {
            matches!(
                o["kind"].as_str(),
                Some("ServiceAccount" | "Role" | "RoleBinding" | "ClusterRole" | "ClusterRoleBinding")
            )
        })
        .collect();
    let cluster_roles: BTreeSet<String> = objects
        .iter()
        .filter(|o| o["kind"] == "ClusterRole")
        .filter_map(|o| o["metadata"]["name"].as_str().map(String::from))
        .collect();
    for object in &mut objects {
        let cluster_scoped = matches!(object["kind"].as_str(), Some("ClusterRole" | "ClusterRoleBinding"));
        if cluster_scoped {
            let name = object["metadata"]["name"].as_str().unwrap_or_default().to_string();
            object["metadata"]["name"] = json!(format!("{name}-{namespace}"));
            object["metadata"]["labels"][LABEL_OWNER_NAMESPACE] = json!(namespace);
        }
        // (Indexing a missing key of a mutable object would add it as null.)
        let Some(role_ref) = object.get_mut("roleRef") else {
            continue;
        };
        if role_ref["kind"] == "ClusterRole"
            && let Some(name) = role_ref["name"].as_str().map(String::from)
            && cluster_roles.contains(&name)
        {
            role_ref["name"] = json!(format!("{name}-{namespace}"));
        }
    }
    Ok(objects)
}

async fn apply<K>(api: Api<K>, object: &Value) -> Result<(), kube::Error>
where
    K: kube::Resource + Clone + k8s_openapi::serde::de::DeserializeOwned + std::fmt::Debug,
{
    let name = object["metadata"]["name"].as_str().unwrap_or_default();
    api.patch(name, &PatchParams::apply(MANAGER).force(), &Patch::Apply(object))
        .await
        .map(|_| ())
}

/// Removes cluster-scoped RBAC objects of earlier runs whose namespace is gone.
async fn remove_stale_rbac(client: &Client) {
    let namespaces = Api::<Namespace>::all(client.clone());
    let selector = ListParams::default().labels(LABEL_OWNER_NAMESPACE);
    let gone = |labels: &BTreeMap<String, String>| {
        let namespaces = namespaces.clone();
        let owner = labels.get(LABEL_OWNER_NAMESPACE).cloned().unwrap_or_default();
        async move {
            match namespaces.get_opt(&owner).await {
                Ok(None) => true,
                Ok(Some(ns)) => ns.metadata.deletion_timestamp.is_some(),
                Err(_) => false,
            }
        }
    };
    let roles = Api::<ClusterRole>::all(client.clone());
    for role in roles.list(&selector).await.map(|l| l.items).unwrap_or_default() {
        if gone(role.labels()).await {
            let _ = roles.delete(&role.name_any(), &DeleteParams::default()).await;
        }
    }
    let bindings = Api::<ClusterRoleBinding>::all(client.clone());
    for binding in bindings.list(&selector).await.map(|l| l.items).unwrap_or_default() {
        if gone(binding.labels()).await {
            let _ = bindings.delete(&binding.name_any(), &DeleteParams::default()).await;
        }
    }
}

/// A token of `service_account` from the TokenRequest API (two hours).
async fn mint_token(client: &Client, namespace: &str, service_account: &str) -> Result<String, String> {
    let request = TokenRequest {
        spec: TokenRequestSpec {
            expiration_seconds: Some(7200),
            ..TokenRequestSpec::default()
        },
        ..TokenRequest::default()
    };
    let api = Api::<ServiceAccount>::namespaced(client.clone(), namespace);
    let issued = api
        .create_token_request(service_account, &PostParams::default(), &request)
        .await
        .map_err(|e| format!("TokenRequest for ServiceAccount {namespace}/{service_account}: {e}"))?;
    issued
        .status
        .map(|s| s.token)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| format!("TokenRequest for {namespace}/{service_account} returned no token"))
}

/// Writes a kubeconfig at `path` with the server and CA of the current context of `KUBECONFIG` and
/// the token of `service_account`.
pub fn write_kubeconfig(path: &Path, namespace: &str, service_account: &str, token: &str) -> Result<(), String> {
    let config = Kubeconfig::read().map_err(|e| format!("KUBECONFIG cannot be read: {e}"))?;
    let context_name = config
        .current_context
        .clone()
        .ok_or("KUBECONFIG has no current-context")?;
    let cluster_name = config
        .contexts
        .iter()
        .find(|c| c.name == context_name)
        .and_then(|c| c.context.as_ref())
        .map(|c| c.cluster.clone())
        .ok_or_else(|| format!("KUBECONFIG has no context {context_name}"))?;
    let cluster = config
        .clusters
        .iter()
        .find(|c| c.name == cluster_name)
        .ok_or_else(|| format!("KUBECONFIG has no cluster {cluster_name}"))?;
    let user = format!("{namespace}-{service_account}");
    let text = json!({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [serde_json::to_value(cluster).map_err(|e| e.to_string())?],
        "users": [{"name": user, "user": {"token": token}}],
        "contexts": [{"name": "operator", "context": {"cluster": cluster_name, "user": user, "namespace": namespace}}],
        "current-context": "operator",
    });
    std::fs::write(path, serde_json::to_string_pretty(&text).map_err(|e| e.to_string())?)
        .map_err(|e| format!("{}: {e}", path.display()))
}

/// Waits until the ServiceAccount's kubeconfig may list pods in `namespace` and Workers (RBAC
/// takes a moment to reach the authorizer).
async fn wait_until_allowed(kubeconfig: &Path, namespace: &str) -> Result<(), String> {
    let config = Kubeconfig::read_from(kubeconfig).map_err(|e| format!("{}: {e}", kubeconfig.display()))?;
    let config = kube::Config::from_custom_kubeconfig(config, &Default::default())
        .await
        .map_err(|e| format!("{}: {e}", kubeconfig.display()))?;
    let client = Client::try_from(config).map_err(|e| format!("{}: {e}", kubeconfig.display()))?;
    let start = Instant::now();
    loop {
        let pods = Api::<Pod>::namespaced(client.clone(), namespace)
            .list(&ListParams::default().limit(1))
            .await;
        let workers = Api::<Worker>::all(client.clone())
            .list(&ListParams::default().limit(1))
            .await;
        match (pods, workers) {
            (Ok(_), Ok(_)) => return Ok(()),
            (Err(e), _) | (_, Err(e)) if start.elapsed() > Duration::from_secs(20) => {
                return Err(format!(
                    "the operator's ServiceAccount token still cannot list pods and Workers: {e}"
                ));
            }
            _ => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
}

/// Waits until the operator serves `/readyz` and holds the Lease.
async fn wait_until_leading(cluster: &Cluster, op: &mut OperatorProcess, identity: &str) -> Result<(), String> {
    let leases = Api::<Lease>::namespaced(cluster.client.clone(), &cluster.namespace);
    let lease = &cluster.operator_args.lease_name;
    let start = Instant::now();
    let ready_url = op.metrics.replace("/metrics", "/readyz");
    loop {
        if let Ok(Some(status)) = op.child.try_wait() {
            return Err(format!("the operator exited at start ({status})"));
        }
        let ready = http_get(&ready_url).await.is_ok_and(|(code, _)| code == 200);
        let holder = leases
            .get_opt(lease)
            .await
            .ok()
            .flatten()
            .and_then(|l| l.spec)
            .and_then(|s| s.holder_identity);
        if ready && holder.as_deref() == Some(identity) {
            // The controllers start right after the Lease is won.
            return Ok(());
        }
        if start.elapsed() > Duration::from_secs(90) {
            return Err(format!(
                "the operator did not become ready and lead within 90 s (ready: {ready}, Lease holder: {holder:?})"
            ));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// One applied task: seconds since the first apply was sent.
#[derive(Debug, Clone)]
struct Applied {
    name: String,
    sent: f64,
    answered: f64,
}

/// The name of load task `i`.
pub fn task_name(i: usize) -> String {
    format!("load-{i:04}")
}

/// The DRLTask the load applies as `name`, paid by requester wallet `wallet`.
fn load_task(name: &str, namespace: Option<&str>, wallet: &str) -> Result<DRLTask, String> {
    serde_json::from_value(json!({
        "apiVersion": "drlaas.io/v1alpha1", "kind": "DRLTask",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "training": quick_cartpole(TARGET),
            "resources": {"cpu": "1", "memory": "1Gi"},
            "payment": {"amountWei": BUDGET_WEI, "walletSecretRef": {"name": wallet}},
        },
    }))
    .map_err(|e| format!("the load task does not fit the DRLTask type: {e}"))
}

/// Applies the N tasks round robin over the requesters, from `apply_clients` clients at once.
async fn apply_tasks(cluster: &Cluster, options: &LoadOptions, started: Instant) -> Result<Vec<Applied>, String> {
    let clients = options.apply_clients.clamp(1, options.tasks.max(1));
    let mut handles = Vec::new();
    for c in 0..clients {
        let client = Client::try_default().await.map_err(|e| format!("a client: {e}"))?;
        let api: Api<DRLTask> = Api::namespaced(client, &cluster.namespace);
        let mine: Vec<(String, DRLTask)> = (c..options.tasks)
            .step_by(clients)
            .map(|i| {
                let name = task_name(i);
                let task = load_task(&name, None, &cluster.requester_wallet(i % options.requesters.max(1)))?;
                Ok((name, task))
            })
            .collect::<Result<_, String>>()?;
        handles.push(tokio::spawn(async move {
            let mut done = Vec::new();
            for (name, task) in mine {
                let sent = started.elapsed().as_secs_f64();
                api.patch(&name, &PatchParams::apply(MANAGER).force(), &Patch::Apply(&task))
                    .await
                    .map_err(|e| format!("applying {name}: {e}"))?;
                done.push(Applied {
                    name,
                    sent,
                    answered: started.elapsed().as_secs_f64(),
                });
            }
            Ok::<_, String>(done)
        }));
    }
    let mut applied = Vec::new();
    for handle in handles {
        applied.extend(handle.await.map_err(|e| format!("an applying client: {e}"))??);
    }
    applied.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(applied)
}

/// What the pod watch saw of one task's trainer pods.
#[derive(Debug, Clone)]
struct PodRecord {
    /// When the watch first saw one of them (this process's clock).
    first_seen: Instant,
    /// Every trainer pod of the task, by name and uid.
    pods: BTreeSet<String>,
}

/// The trainer pods of a namespace, as a watch (not a polled list) sees them.
struct PodLog {
    seen: Arc<Mutex<BTreeMap<String, PodRecord>>>,
    count: tokio::sync::watch::Receiver<usize>,
    task: tokio::task::JoinHandle<()>,
}

impl PodLog {
    /// Starts watching trainer pods of `pods`; returns once the watch has listed what is there.
    async fn start(pods: Api<Pod>) -> Result<PodLog, String> {
        let seen: Arc<Mutex<BTreeMap<String, PodRecord>>> = Arc::default();
        let (tx, count) = tokio::sync::watch::channel(0);
        let (ready_tx, ready) = tokio::sync::oneshot::channel();
        let config = watcher::Config::default().labels(&format!("{LABEL_ROLE}=trainer"));
        let log = seen.clone();
        let task = tokio::spawn(async move {
            let mut ready_tx = Some(ready_tx);
            let mut events = std::pin::pin!(watcher(pods, config).default_backoff());
            while let Some(event) = events.next().await {
                let pod = match event {
                    Ok(watcher::Event::InitDone) => {
                        if let Some(r) = ready_tx.take() {
                            let _ = r.send(());
                        }
                        continue;
                    }
                    Ok(watcher::Event::Apply(pod) | watcher::Event::InitApply(pod)) => pod,
                    Ok(_) => continue,
                    Err(e) => {
                        tracing::warn!(error = %e, "the trainer pod watch failed; it restarts");
                        continue;
                    }
                };
                let now = Instant::now();
                let Some(task) = pod.labels().get(LABEL_TASK).cloned() else {
                    continue;
                };
                let id = format!("{}/{}", pod.name_any(), pod.uid().unwrap_or_default());
                let mut seen = log.lock().expect("not poisoned");
                seen.entry(task)
                    .or_insert_with(|| PodRecord {
                        first_seen: now,
                        pods: BTreeSet::new(),
                    })
                    .pods
                    .insert(id);
                let _ = tx.send(seen.len());
            }
        });
        tokio::time::timeout(Duration::from_secs(30), ready)
            .await
            .map_err(|_| "the trainer pod watch did not start within 30 s".to_string())?
            .map_err(|_| "the trainer pod watch stopped".to_string())?;
        Ok(PodLog { seen, count, task })
    }

    /// Waits until `n` tasks have a trainer pod, or `deadline`.
    async fn wait_for(&self, n: usize, deadline: Instant) {
        let mut count = self.count.clone();
        let _ = tokio::time::timeout_at(deadline.into(), count.wait_for(|c| *c >= n)).await;
    }

    fn snapshot(&self) -> BTreeMap<String, PodRecord> {
        self.seen.lock().expect("not poisoned").clone()
    }

    fn stop(self) {
        self.task.abort();
    }
}

/// Waits until every task is settled.
async fn wait_settled(cluster: &Cluster, n: usize, deadline: Instant) -> Result<(), String> {
    loop {
        let tasks = cluster
            .tasks()
            .list(&ListParams::default())
            .await
            .map_err(|e| format!("listing the tasks: {e}"))?;
        let settled = tasks
            .items
            .iter()
            .filter(|t| t.status.as_ref().and_then(|s| s.phase) == Some(TaskPhase::Settled))
            .count();
        if settled >= n {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(format!("{settled} of {n} tasks settled in time"));
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// The checks on the tasks and the chain: each DRLTask has its own chain task, the chain has
/// exactly N, and none was cancelled or refunded (assigned, or paid with `settle`).
async fn check_tasks(cluster: &Cluster, n: usize, settle: bool) -> Vec<String> {
    let mut failures = Vec::new();
    // The status carries the chain id soon after the pod exists, if not before.
    let start = Instant::now();
    let tasks = loop {
        match cluster.tasks().list(&ListParams::default()).await {
            Ok(list) => {
                let complete = list
                    .items
                    .iter()
                    .all(|t| t.status.as_ref().and_then(|s| s.chain_task_id).is_some());
                if complete && list.items.len() >= n || start.elapsed() > Duration::from_secs(15) {
                    break list.items;
                }
            }
            Err(e) => {
                failures.push(format!("listing the tasks: {e}"));
                return failures;
            }
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    if tasks.len() != n {
        failures.push(format!("{} DRLTasks in the namespace, not {n}", tasks.len()));
    }
    let mut ids: BTreeMap<u64, Vec<String>> = BTreeMap::new();
    let mut without = Vec::new();
    let mut bad_outcome = Vec::new();
    for task in &tasks {
        let status = task.status.clone().unwrap_or_default();
        match status.chain_task_id {
            Some(id) => ids.entry(id).or_default().push(task.name_any()),
            None => without.push(task.name_any()),
        }
        match status.outcome {
            Some(o @ (TaskOutcome::Cancelled | TaskOutcome::Refunded | TaskOutcome::Expired)) => {
                bad_outcome.push(format!("{} {o:?}", task.name_any()))
            }
            Some(TaskOutcome::Paid) | None => {}
        }
    }
    if !without.is_empty() {
        failures.push(format!(
            "{} DRLTask(s) have no chain task id: {}",
            without.len(),
            without.iter().take(5).cloned().collect::<Vec<_>>().join(", ")
        ));
    }
    let shared: Vec<String> = ids
        .iter()
        .filter(|(_, names)| names.len() > 1)
        .map(|(id, names)| format!("chain task {id}: {}", names.join(", ")))
        .collect();
    if !shared.is_empty() {
        failures.push(format!("DRLTasks share a chain task: {}", shared.join("; ")));
    }
    if !bad_outcome.is_empty() {
        failures.push(format!("tasks cancelled or refunded: {}", bad_outcome.join(", ")));
    }
    match cluster.market.task_count().await {
        Ok(count) if count == n as u64 => {}
        Ok(count) => failures.push(format!(
            "the chain has {count} tasks, not {n}: not each posted exactly once{}",
            unbound_chain_tasks(cluster, &tasks, &ids, count).await
        )),
        Err(e) => failures.push(format!("reading the chain's task count: {e}")),
    }
    let want = if settle {
        drlaas_chain::TaskStatus::Completed
    } else {
        drlaas_chain::TaskStatus::Assigned
    };
    let market = cluster.market.clone();
    let statuses: Vec<(u64, Result<drlaas_chain::TaskStatus, String>)> = futures::stream::iter(ids.keys().copied())
        .map(|id| {
            let market = market.clone();
            async move { (id, market.task(id).await.map(|t| t.status).map_err(|e| e.to_string())) }
        })
        .buffer_unordered(16)
        .collect()
        .await;
    let mut wrong: Vec<String> = statuses
        .into_iter()
        .filter_map(|(id, status)| match status {
            Ok(s) if s == want => None,
            Ok(s) => Some(format!("{id} {s:?}")),
            Err(e) => Some(format!("{id}: {e}")),
        })
        .collect();
    wrong.sort();
    if !wrong.is_empty() {
        failures.push(format!(
            "{} chain task(s) not {want:?}: {}",
            wrong.len(),
            wrong.iter().take(10).cloned().collect::<Vec<_>>().join(", ")
        ));
    }
    failures
}

/// What became of the chain tasks no DRLTask stands for, and whose second post each was (by the
/// DRLTask whose document it posted).
async fn unbound_chain_tasks(
    cluster: &Cluster,
    tasks: &[DRLTask],
    ids: &BTreeMap<u64, Vec<String>>,
    count: u64,
) -> String {
    let by_cid: BTreeMap<String, String> = tasks
        .iter()
        .filter_map(|t| t.labels().get(LABEL_SPEC_CID).map(|cid| (cid.clone(), t.name_any())))
        .collect();
    let market = cluster.market.clone();
    let by_cid = &by_cid;
    let mut unbound: Vec<(u64, String, String)> = futures::stream::iter((1..=count).filter(|id| !ids.contains_key(id)))
        .map(|id| {
            let market = market.clone();
            async move {
                let status = match market.task(id).await {
                    Ok(t) => format!("{:?}", t.status),
                    Err(e) => format!("unreadable ({e})"),
                };
                let of = match market.task_spec_cid(id).await {
                    Ok(cid) => by_cid.get(&cid).cloned().unwrap_or_else(|| format!("document {cid}")),
                    Err(_) => "?".into(),
                };
                (id, status, of)
            }
        })
        .buffer_unordered(16)
        .collect()
        .await;
    if unbound.is_empty() {
        return String::new();
    }
    unbound.sort();
    let mut by_status: BTreeMap<&str, usize> = BTreeMap::new();
    for (_, status, _) in &unbound {
        *by_status.entry(status.as_str()).or_default() += 1;
    }
    let examples: Vec<String> = unbound
        .iter()
        .take(8)
        .map(|(id, status, of)| format!("{id} {status} (posted for {of})"))
        .collect();
    format!(
        "; {} chain task(s) belong to no DRLTask, by status {by_status:?}: {}",
        unbound.len(),
        examples.join(", ")
    )
}

/// The floor: the bare API server creating N pods shaped as the operator's trainer pods (same
/// labels, spec and volumes, no owner) in a namespace of their own, from `floor_clients` admin
/// clients at once. Returns the seconds from the first create sent to the last one answered.
async fn floor(cluster: &Cluster, options: &LoadOptions, made: &mut Made) -> Result<f64, String> {
    let namespace = format!("{}-floor", cluster.namespace);
    crate::create_namespace(&cluster.client, &namespace)
        .await
        .map_err(|e| format!("creating namespace {namespace}: {e}"))?;
    made.floor_namespace = Some(namespace.clone());
    // Pods are refused until the namespace's default ServiceAccount exists.
    let accounts = Api::<ServiceAccount>::namespaced(cluster.client.clone(), &namespace);
    let start = Instant::now();
    while !matches!(accounts.get_opt("default").await, Ok(Some(_))) {
        if start.elapsed() > Duration::from_secs(60) {
            return Err(format!("namespace {namespace} got no default ServiceAccount in 60 s"));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let worker = Api::<Worker>::all(cluster.client.clone())
        .get(&cluster.workers[0])
        .await
        .map_err(|e| format!("reading Worker {}: {e}", cluster.workers[0]))?;
    let args = &cluster.operator_args;
    let settings = PodSettings {
        trainer_image: args.trainer_image.clone(),
        store_address: args.pod_store.clone().unwrap_or_else(|| args.store.clone()),
        environments: Default::default(),
    };
    let pods: Vec<Pod> = (0..options.tasks)
        .map(|i| {
            let task = load_task(&task_name(i), Some(&namespace), &cluster.requester_wallet(0))?;
            Ok(trainer_pod(&task, &worker, 1, None, None, &settings))
        })
        .collect::<Result<_, String>>()?;
    let clients = options.floor_clients.clamp(1, options.tasks.max(1));
    let mut shares: Vec<Vec<Pod>> = vec![Vec::new(); clients];
    for (i, pod) in pods.into_iter().enumerate() {
        shares[i % clients].push(pod);
    }
    let mut apis = Vec::new();
    for _ in 0..clients {
        let client = Client::try_default().await.map_err(|e| format!("a client: {e}"))?;
        apis.push(Api::<Pod>::namespaced(client, &namespace));
    }
    let started = Instant::now();
    let handles: Vec<_> = apis
        .into_iter()
        .zip(shares)
        .map(|(api, share)| {
            tokio::spawn(async move {
                for pod in share {
                    api.create(&PostParams::default(), &pod)
                        .await
                        .map_err(|e| format!("creating pod {}: {e}", pod.name_any()))?;
                }
                Ok::<_, String>(started.elapsed().as_secs_f64())
            })
        })
        .collect();
    let mut last: f64 = 0.0;
    for handle in handles {
        last = last.max(handle.await.map_err(|e| format!("a floor client: {e}"))??);
    }
    Ok(last)
}

/// SIGTERM, then `kill -9` if it has not stopped after 30 s.
async fn stop_operator(mut op: OperatorProcess) {
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &op.child.id().to_string()])
        .status();
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(30) {
        if let Ok(Some(_)) = op.child.try_wait() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    op.kill();
}

/// Removes what the run created: the floor namespace, the cluster-scoped RBAC, the cluster (its
/// namespace, Workers); waits until the namespaces are gone, so the next run starts on a quiet API
/// server.
async fn clean_up(cluster: Cluster, made: Made) {
    let client = cluster.client.clone();
    let namespaces = Api::<Namespace>::all(client.clone());
    let mut gone = vec![cluster.namespace.clone()];
    if let Some(floor) = &made.floor_namespace {
        let _ = namespaces.delete(floor, &DeleteParams::default()).await;
        gone.push(floor.clone());
    }
    let roles = Api::<ClusterRole>::all(client.clone());
    for name in &made.cluster_roles {
        let _ = roles.delete(name, &DeleteParams::default()).await;
    }
    let bindings = Api::<ClusterRoleBinding>::all(client.clone());
    for name in &made.cluster_role_bindings {
        let _ = bindings.delete(name, &DeleteParams::default()).await;
    }
    cluster.stop().await;
    let start = Instant::now();
    for namespace in gone {
        while matches!(namespaces.get_opt(&namespace).await, Ok(Some(_))) {
            if start.elapsed() > Duration::from_secs(300) {
                eprintln!("namespace {namespace} is still being deleted after 300 s; left to the API server");
                break;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
}

/// Copies the operator's logs of this run to `dir` as `NAMESPACE-operator-IDENTITY.log`.
fn keep_logs(cluster: &Cluster, dir: &Path) {
    if let Err(e) = std::fs::create_dir_all(dir) {
        eprintln!("{}: {e}", dir.display());
        return;
    }
    for entry in std::fs::read_dir(cluster.scratch()).into_iter().flatten().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with("operator-") {
            let to = dir.join(format!("{}-{name}", cluster.namespace));
            match std::fs::copy(entry.path(), &to) {
                Ok(_) => println!("  operator log: {}", to.display()),
                Err(e) => eprintln!("{}: {e}", to.display()),
            }
        }
    }
}

/// `text` without ANSI colour sequences (the operator's log is coloured).
fn strip_ansi(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            // ESC [ ... letter
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

fn operator_log(cluster: &Cluster, identity: &str) -> String {
    std::fs::read_to_string(cluster.scratch().join(format!("operator-{identity}.log"))).unwrap_or_default()
}

/// The last `lines` lines of the operator's log, headed.
fn log_tail(cluster: &Cluster, op: &OperatorProcess, lines: usize) -> String {
    let logs: Vec<PathBuf> = std::fs::read_dir(cluster.scratch())
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    let Some(log) = logs.iter().find(|p| {
        p.file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with("operator-"))
    }) else {
        return format!("(no log of operator pid {})", op.child.id());
    };
    let text = strip_ansi(&std::fs::read_to_string(log).unwrap_or_default());
    let all: Vec<&str> = text.lines().collect();
    let tail = all[all.len().saturating_sub(lines)..].join("\n");
    format!("--- last {lines} lines of {} ---\n{tail}\n---", log.display())
}

/// The operator's `drlaas_kube_requests_total` by verb.
async fn scrape_requests(metrics_url: &str) -> Result<BTreeMap<String, f64>, String> {
    let (code, body) = http_get(metrics_url).await?;
    if code != 200 {
        return Err(format!("{metrics_url} answered {code}"));
    }
    Ok(parse_requests(&body))
}

/// `drlaas_kube_requests_total{verb="..."} N` lines of a metrics text, by verb.
pub fn parse_requests(text: &str) -> BTreeMap<String, f64> {
    let mut by_verb = BTreeMap::new();
    for line in text.lines() {
        let Some(rest) = line.strip_prefix("drlaas_kube_requests_total{") else {
            continue;
        };
        let Some((labels, value)) = rest.split_once('}') else {
            continue;
        };
        let verb = labels
            .split(',')
            .find_map(|l| l.trim().strip_prefix("verb="))
            .map(|v| v.trim_matches('"').to_string())
            .unwrap_or_default();
        if let Some(v) = value.split_whitespace().next().and_then(|v| v.parse::<f64>().ok()) {
            *by_verb.entry(verb).or_insert(0.0) += v;
        }
    }
    by_verb
}

/// A plain HTTP/1.0 GET of `http://HOST:PORT/PATH`: the status code and the body.
async fn http_get(url: &str) -> Result<(u16, String), String> {
    let url = url.to_string();
    tokio::task::spawn_blocking(move || {
        let rest = url.strip_prefix("http://").ok_or_else(|| format!("{url}: not http"))?;
        let (authority, path) = rest
            .split_once('/')
            .map_or((rest, "/".to_string()), |(a, p)| (a, format!("/{p}")));
        let addr: std::net::SocketAddr = authority.parse().map_err(|e| format!("{url}: {e}"))?;
        let mut stream =
            std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(2)).map_err(|e| format!("{url}: {e}"))?;
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .map_err(|e| e.to_string())?;
        write!(stream, "GET {path} HTTP/1.0\r\nHost: {authority}\r\n\r\n").map_err(|e| format!("{url}: {e}"))?;
        let mut response = String::new();
        stream
            .read_to_string(&mut response)
            .map_err(|e| format!("{url}: {e}"))?;
        let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
        let code = head
            .split_whitespace()
            .nth(1)
            .and_then(|c| c.parse().ok())
            .ok_or_else(|| format!("{url}: not an HTTP response"))?;
        Ok((code, body.to_string()))
    })
    .await
    .map_err(|e| e.to_string())?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_summed_by_verb() {
        let text = "# HELP drlaas_kube_requests Requests\n# TYPE drlaas_kube_requests counter\n\
                    drlaas_kube_requests_total{verb=\"list\"} 4\n\
                    drlaas_kube_requests_total{verb=\"patch\"} 210\n\
                    drlaas_kube_requests_total{verb=\"watch\"} 7\n# EOF\n";
        let by_verb = parse_requests(text);
        assert_eq!(by_verb["list"], 4.0);
        assert_eq!(by_verb["patch"], 210.0);
        assert_eq!(by_verb.values().sum::<f64>(), 221.0);
    }

    /// Needs helm (`tools/helm.sh install`), as the chart's tests do.
    #[test]
    fn the_charts_rbac_is_scoped_to_the_namespace_and_cluster_names_carry_it() {
        let objects = render_rbac("drlaas-e2e-x").unwrap();
        let kinds: BTreeSet<&str> = objects.iter().filter_map(|o| o["kind"].as_str()).collect();
        for kind in [
            "ServiceAccount",
            "Role",
            "RoleBinding",
            "ClusterRole",
            "ClusterRoleBinding",
        ] {
            assert!(kinds.contains(kind), "no {kind} in {kinds:?}");
        }
        let cluster_roles: BTreeSet<&str> = objects
            .iter()
            .filter(|o| o["kind"] == "ClusterRole")
            .filter_map(|o| o["metadata"]["name"].as_str())
            .collect();
        for object in &objects {
            let name = object["metadata"]["name"].as_str().unwrap();
            match object["kind"].as_str().unwrap() {
                "ClusterRole" | "ClusterRoleBinding" => {
                    assert!(name.ends_with("-drlaas-e2e-x"), "{name}");
                    assert_eq!(object["metadata"]["labels"][LABEL_OWNER_NAMESPACE], "drlaas-e2e-x");
                }
                _ => assert_eq!(object["metadata"]["namespace"], "drlaas-e2e-x", "{name}"),
            }
            match object.get("roleRef") {
                Some(role_ref) if role_ref["kind"] == "ClusterRole" => {
                    assert!(cluster_roles.contains(role_ref["name"].as_str().unwrap()), "{object}")
                }
                Some(_) => {}
                None => assert!(!object["kind"].as_str().unwrap().ends_with("Binding"), "{object}"),
            }
        }
    }

    #[test]
    fn colours_are_stripped() {
        assert_eq!(
            strip_ansi("\u{1b}[2m2026\u{1b}[0m \u{1b}[33m WARN\u{1b}[0m x"),
            "2026  WARN x"
        );
    }

    #[test]
    fn medians() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), 2.5);
        assert!(median(&[]).is_nan());
        assert_eq!(median(&[f64::NAN, 5.0]), 5.0);
    }

    #[test]
    fn pod_timeout_grows_with_tasks() {
        assert_eq!(LoadOptions::default_pod_timeout(100), Duration::from_secs(70));
        assert_eq!(LoadOptions::default_pod_timeout(1000), Duration::from_secs(160));
    }
}
