//! Load mode of the cluster tests: applies N tasks at once and prints how long each took from
//! apply to its trainer pod being created (p50, p99), and the operator's memory.
//!
//! `KUBECONFIG=... [DRLAAS_E2E_FAKE_KUBELET=1] cargo run -p drlaas-e2e --bin drlaas-e2e-load -- --tasks 100`
//!
//! The operator runs in this process, so the memory figure is the operator plus this small load
//! generator. Without `--settle` the pods are not run (the figure of interest is the operator's
//! admission and recruitment path); with it, the run waits until every task is settled.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use clap::Parser;
use drlaas_crds::task::TaskPhase;
use drlaas_e2e::{Cluster, memory_mib, quantile};
use drlaas_operator::pods::{LABEL_ROLE, LABEL_TASK};
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::api::ListParams;

#[derive(Debug, Parser)]
#[command(about = "Apply N DRLTasks at once and measure apply→trainer-pod latency and operator memory")]
struct Args {
    /// Tasks to apply.
    #[arg(long, default_value_t = 100)]
    tasks: usize,
    /// Workers to spread them over.
    #[arg(long, default_value_t = 4)]
    workers: usize,
    /// Wait until every task is settled (the fake kubelet or the nodes run the pods).
    #[arg(long)]
    settle: bool,
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    if !args.settle {
        assert!(
            !drlaas_e2e::fake_kubelet(),
            "without --settle the pods are not run: unset DRLAAS_E2E_FAKE_KUBELET"
        );
    }
    let per_worker = u32::try_from(args.tasks.div_ceil(args.workers.max(1))).unwrap_or(u32::MAX);
    let cluster = Cluster::start(args.workers, per_worker).await;
    let started = Instant::now();
    let mut applied = BTreeMap::new();
    for i in 0..args.tasks {
        let name = format!("load-{i}");
        applied.insert(name.clone(), Instant::now());
        cluster.apply_task(&name, 5.0).await;
    }
    let apply_seconds = started.elapsed().as_secs_f64();
    let pods: Api<Pod> = Api::namespaced(cluster.client.clone(), &cluster.namespace);
    let mut created: BTreeMap<String, f64> = BTreeMap::new();
    let deadline = Instant::now() + Duration::from_secs(60 + 3 * args.tasks as u64);
    while created.len() < args.tasks && Instant::now() < deadline {
        let listed = pods
            .list(&ListParams::default().labels(&format!("{LABEL_ROLE}=trainer")))
            .await
            .expect("the API server answers");
        for pod in listed.items {
            let task = pod.metadata.labels.as_ref().and_then(|l| l.get(LABEL_TASK)).cloned();
            if let Some(task) = task
                && let Some(at) = applied.get(&task)
            {
                created.entry(task).or_insert_with(|| at.elapsed().as_secs_f64());
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let latencies: Vec<f64> = created.values().copied().collect();
    println!("tasks applied: {} in {apply_seconds:.2} s", args.tasks);
    println!("trainer pods created: {}", latencies.len());
    println!(
        "apply→pod-created latency: p50 {:.2} s, p99 {:.2} s (polled every 100 ms)",
        quantile(&latencies, 0.5),
        quantile(&latencies, 0.99)
    );
    if args.settle {
        for name in applied.keys() {
            cluster
                .wait_for(name, Duration::from_secs(3600), |t| {
                    t.and_then(|t| t.status.as_ref()).and_then(|s| s.phase) == Some(TaskPhase::Settled)
                })
                .await;
        }
        println!("all settled after {:.1} s", started.elapsed().as_secs_f64());
    }
    let (peak, now) = memory_mib();
    println!("operator memory (in-process, with the load generator): peak {peak:.1} MiB, now {now:.1} MiB");
    cluster.stop().await;
}
