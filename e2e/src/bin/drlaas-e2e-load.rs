//! The operator's load benchmark on a real API server: N DRLTasks applied at once, the real
//! `drlaas operator` binary running as the chart's ServiceAccount, and the API server's own floor
//! measured in the same run.
//!
//! Each run (`--runs`, default 3) starts a fresh test cluster slice ([`drlaas_e2e::Cluster`]: a
//! namespace, an anvil chain with the market, `--workers` registered workers with room for every
//! task, `--requesters` requester wallets), then:
//!
//! 1. renders the chart's RBAC (`helm template` of charts/drlaas with the release namespace and
//!    `watchNamespaces` set to the test namespace, `rbac.create`), applies its ServiceAccount, Roles
//!    and RoleBindings, and its ClusterRoles and ClusterRoleBindings renamed `NAME-NAMESPACE`;
//! 2. mints a token for the ServiceAccount (TokenRequest API), writes a kubeconfig with it (server
//!    and CA of the current `KUBECONFIG` context), and starts `drlaas operator` with it;
//! 3. once the operator leads, applies `--tasks` DRLTasks (`load-0000`, …) round robin over the
//!    requesters from 8 concurrent clients, and times each task's trainer pod through a watch: the
//!    time is when this tool's watch saw the pod (not its `creationTimestamp`, which has one-second
//!    resolution), from when the task's apply was answered;
//! 4. checks that every task got its pod within the time limit, has a chain task of its own, that
//!    the chain has exactly N tasks, all Assigned (Completed with `--settle`), none cancelled or
//!    refunded, and that no task got two trainer pods;
//! 5. scrapes the operator's `drlaas_kube_requests_total` and reads its peak RSS (VmHWM), stops it,
//!    and measures the floor: the bare API server creating N pods of the trainer pods' shape from 16
//!    concurrent admin clients in a namespace of their own;
//! 6. removes everything it created (namespaces, Workers, cluster-scoped RBAC).
//!
//! It prints each run's figures and the median of each over the runs, and exits 1 if a check
//! failed (each failure is printed), 2 if a run could not be measured. The operator's log of a run
//! with a failed check is kept in the system's temporary directory (`--log-dir` keeps every run's).
//!
//! A cluster test starting removes every `drlaas-e2e-` namespace it finds, so two on one API server
//! break each other: a run first waits (`--wait-for-others`) while another one seems to be running.
//!
//! # Running it
//!
//! The operator it starts is the `drlaas` binary beside this tool's own executable (it prints the
//! path): `target/release/drlaas` when the tool runs from `target/release`, `target/debug/drlaas`
//! from `target/debug`. `cargo run -p drlaas-e2e` does not build that binary, so build it with the
//! same profile first. Measure the release build:
//!
//! ```text
//! tools/helm.sh install
//! cargo build --release -p drlaas-operator --bin drlaas
//! KUBECONFIG=/path/to/kubeconfig cargo run --release -p drlaas-e2e --bin drlaas-e2e-load -- --tasks 100
//! ```
//!
//! (the debug build is the same without `--release`, and much slower). `KUBECONFIG` must be a
//! cluster-admin's: the tool installs the CRDs, namespaces and cluster-scoped RBAC. Without
//! `--settle` no pod runs (a cluster without nodes is fine: pods stay Pending), and
//! `DRLAAS_E2E_FAKE_KUBELET` must not be set. `--settle` waits until every task settles, so the
//! pods must run: `DRLAAS_E2E_FAKE_KUBELET=1` (the fake kubelet runs them as local processes, with
//! `cargo build -p drlaas-trainer` built), or real nodes with `DRLAAS_E2E_POD_STORE` and
//! `DRLAAS_E2E_TRAINER_IMAGE` set.

use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use drlaas_e2e::load::{self, LoadOptions, RunFigures};

/// Where pods would find the content store without `--settle`: never used, as no pod runs.
const UNUSED_POD_STORE: &str = "http://pod-store.invalid:5001";

#[derive(Debug, Parser)]
#[command(
    about = "Apply N DRLTasks at once to a real API server, the real operator running as its ServiceAccount: \
             apply→trainer-pod latency, API requests per task, operator memory, and the API server's floor"
)]
struct Args {
    /// DRLTasks to apply.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u64).range(1..))]
    tasks: u64,
    /// Requester wallets the tasks are spread over, round robin.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..))]
    requesters: u64,
    /// Registered workers; each has room for ceil(tasks / workers) trainers.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u64).range(1..))]
    workers: u64,
    /// Runs, each on a fresh cluster slice; the median of each figure is printed.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u64).range(1..))]
    runs: u64,
    /// Wait until every task settles (needs DRLAAS_E2E_FAKE_KUBELET=1, or nodes).
    #[arg(long)]
    settle: bool,
    /// Seconds after the first apply by which every task must have its trainer pod
    /// [default: 60 + 0.1 per task].
    #[arg(long, value_name = "SECONDS")]
    pod_timeout: Option<f64>,
    /// Seconds after the first apply by which every task must be settled (with --settle).
    #[arg(long, value_name = "SECONDS", default_value_t = 1800.0)]
    settle_timeout: f64,
    /// Concurrent clients applying the tasks.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u64).range(1..))]
    apply_clients: u64,
    /// Concurrent admin clients creating the floor's pods.
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u64).range(1..))]
    floor_clients: u64,
    /// Seconds to wait for another cluster test running on the same API server to finish (a cluster
    /// test starting deletes every drlaas-e2e- namespace, so two at once break each other).
    #[arg(long, value_name = "SECONDS", default_value_t = 900.0)]
    wait_for_others: f64,
    /// Keep the operator's logs of every run in this directory (without it, only the logs of runs
    /// with a failed check are kept, in the system's temporary directory).
    #[arg(long, value_name = "DIR")]
    log_dir: Option<std::path::PathBuf>,
}

fn seconds(value: f64, flag: &str) -> Result<Duration, String> {
    Duration::try_from_secs_f64(value).map_err(|_| format!("{flag} {value}: not a number of seconds"))
}

fn main() -> ExitCode {
    let args = Args::parse();
    match preflight(&args) {
        Ok(()) => {}
        Err(message) => {
            eprintln!("drlaas-e2e-load: {message}");
            return ExitCode::from(2);
        }
    }
    let count = |v: u64| usize::try_from(v).unwrap_or(usize::MAX);
    let tasks = count(args.tasks);
    let pod_timeout = match args.pod_timeout {
        Some(s) => seconds(s, "--pod-timeout"),
        None => Ok(LoadOptions::default_pod_timeout(tasks)),
    };
    let limits = (
        pod_timeout,
        seconds(args.settle_timeout, "--settle-timeout"),
        seconds(args.wait_for_others, "--wait-for-others"),
    );
    let options = match limits {
        (Ok(pod_timeout), Ok(settle_timeout), Ok(wait_for_others)) => LoadOptions {
            tasks,
            requesters: count(args.requesters),
            workers: count(args.workers),
            settle: args.settle,
            pod_timeout,
            settle_timeout,
            apply_clients: count(args.apply_clients),
            floor_clients: count(args.floor_clients),
            wait_for_others,
            log_dir: args.log_dir.clone(),
        },
        (Err(e), _, _) | (_, Err(e), _) | (_, _, Err(e)) => {
            eprintln!("drlaas-e2e-load: {e}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("drlaas-e2e-load: no async runtime: {e}");
            return ExitCode::from(2);
        }
    };
    runtime.block_on(benchmark(options, count(args.runs)))
}

/// What must hold before a run: the fake kubelet as `--settle` needs it, a kubeconfig, the
/// operator binary. Without `--settle` and without the fake kubelet, the test cluster wants a pod
/// store address; this process then runs itself again with an unused one set.
fn preflight(args: &Args) -> Result<(), String> {
    let fake = drlaas_e2e::fake_kubelet();
    let pod_store = std::env::var_os("DRLAAS_E2E_POD_STORE").is_some();
    if !args.settle && fake {
        return Err(
            "DRLAAS_E2E_FAKE_KUBELET is set, but without --settle no pod is run: unset it (or add --settle to \
             run the tasks to the end)"
                .into(),
        );
    }
    if args.settle && !fake && !pod_store {
        return Err(
            "--settle waits until every task is paid, so the trainer pods must run: set DRLAAS_E2E_FAKE_KUBELET=1 \
             (local processes; cargo build -p drlaas-trainer), or, on a cluster with nodes, DRLAAS_E2E_POD_STORE \
             and DRLAAS_E2E_TRAINER_IMAGE"
                .into(),
        );
    }
    if args.settle && fake && drlaas_local::local_pod::locate_trainer().is_none_or(|p| !p.is_file()) {
        return Err(
            "--settle with the fake kubelet runs the trainer binary: cargo build -p drlaas-trainer (or set \
             DRLAAS_TRAINER_BIN)"
                .into(),
        );
    }
    if !args.settle && !pod_store {
        use std::os::unix::process::CommandExt;
        let exe = std::env::current_exe().map_err(|e| format!("this executable: {e}"))?;
        let error = std::process::Command::new(exe)
            .args(std::env::args_os().skip(1))
            .env("DRLAAS_E2E_POD_STORE", UNUSED_POD_STORE)
            .exec();
        return Err(format!("running itself again with DRLAAS_E2E_POD_STORE set: {error}"));
    }
    let profile = load::own_profile();
    let Some(binary) = load::operator_binary() else {
        let flag = if profile == "release" { " --release" } else { "" };
        return Err(format!(
            "the operator binary is not built beside this tool (target/{profile}/drlaas): \
             cargo build{flag} -p drlaas-operator --bin drlaas"
        ));
    };
    println!("operator binary: {} (this tool: {profile} build)", binary.display());
    if let Some(warning) = load::stale_binary_warning(&binary) {
        println!("warning: {warning}");
    }
    Ok(())
}

async fn benchmark(options: LoadOptions, runs: usize) -> ExitCode {
    if let Err(message) = load::check_kubeconfig().await {
        eprintln!("drlaas-e2e-load: {message}");
        return ExitCode::from(2);
    }
    println!(
        "{} tasks over {} requesters, {} workers of {} slots, {} run(s); trainer pods within {:.1} s{}",
        options.tasks,
        options.requesters,
        options.workers,
        options.concurrent_tasks(),
        runs,
        options.pod_timeout.as_secs_f64(),
        if options.settle {
            ", then every task settled"
        } else {
            ""
        }
    );
    let mut figures: Vec<RunFigures> = Vec::new();
    let mut unmeasured = Vec::new();
    for run in 1..=runs {
        let label = format!("{run}");
        match load::run(&options, &label).await {
            Ok(f) => {
                println!("run {run} of {runs}:");
                f.print();
                figures.push(f);
            }
            Err(e) => {
                println!("run {run} of {runs}: not measured: {e}");
                unmeasured.push(run);
            }
        }
    }
    if !figures.is_empty() {
        load::print_medians(&figures);
    }
    let failed: Vec<String> = figures
        .iter()
        .enumerate()
        .flat_map(|(i, f)| f.failures.iter().map(move |m| format!("run {}: {m}", i + 1)))
        .collect();
    if !unmeasured.is_empty() {
        eprintln!("drlaas-e2e-load: run(s) {unmeasured:?} could not be measured");
        return ExitCode::from(2);
    }
    if !failed.is_empty() {
        eprintln!("drlaas-e2e-load: {} check(s) failed:", failed.len());
        for f in &failed {
            eprintln!("  {f}");
        }
        return ExitCode::from(1);
    }
    ExitCode::SUCCESS
}
