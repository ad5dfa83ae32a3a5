//! The operator's speed: `cargo bench -p drlaas-operator --bench operator` prints
//! - admission to trainer pod: N DRLTasks applied at once to the whole operator (`drlaas operator`'s
//!   runtime, in process) running against the in-memory API server of the tests and a real anvil;
//!   the time from each task's creation to its trainer pod's, p50 and p99, and the process's peak
//!   memory. Every task is posted on chain from its requester's wallet and assigned there, so this
//!   is bound by the chain's transactions, the API round trips and recruitment;
//! - recruitment: time of one greedy assignment over T funded tasks and W workers (the pure core).
//!
//! Medians of `--runs N` runs (default 3); `--tasks N` tasks per admission run (default 50).

#[path = "support.rs"]
mod bench_support;
#[path = "../tests/support/mod.rs"]
mod support;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use bench_support::{arg, median};
use drlaas_chain::MarketParams;
use drlaas_chain::alloy::primitives::utils::parse_ether;
use drlaas_chain::devnet::{Devnet, ORACLE, dev_worker_profile};
use drlaas_chain::types::EnvKind;
use drlaas_core::recruitment::{Resources, TaskDemand, WorkerOffer, assign};
use drlaas_envs::descriptor::EnvDescriptor;
use drlaas_local::api_server::ApiServer;
use drlaas_operator::runtime::{self, OperatorConfig};
use k8s_openapi::ByteString;
use serde_json::json;

fn quantile(values: &[f64], p: f64) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    sorted[((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len()) - 1]
}

/// T tasks over four environment kinds and W workers with mixed pools, as a busy market has them.
fn market(tasks: usize, workers: usize) -> (Vec<TaskDemand>, Vec<WorkerOffer>) {
    let kinds = [
        r#"{"kind": "cartpole"}"#,
        r#"{"kind": "maze-cleaning", "grid": 8, "agents": 2}"#,
        r#"{"kind": "target-localization"}"#,
        r#"{"kind": "fleet-coordination"}"#,
    ];
    let envs: Vec<EnvDescriptor> = kinds.iter().map(|k| serde_json::from_str(k).unwrap()).collect();
    let demands = (0..tasks)
        .map(|i| TaskDemand {
            id: format!("ns/task-{i}"),
            environment: envs[i % envs.len()].clone(),
            budget_wei: 1_000_000 + (i as u128 * 7_919) % 1_000_000,
            admitted_seq: i as u64,
            resources: Resources {
                gpus: (i % 3 == 0) as u32,
                cpu_millis: 2_000,
                memory_mib: 4_096,
            },
            min_reputation: 0.0,
            excluded: Vec::new(),
        })
        .collect();
    let offers = (0..workers)
        .map(|w| WorkerOffer {
            id: format!("worker-{w}"),
            reputation: 0.3 + (w % 7) as f64 / 10.0,
            expertise: envs
                .iter()
                .enumerate()
                .filter(|(k, _)| (w + k) % 2 == 0)
                .map(|(_, e)| (e.kind_name().to_string(), 0.5 + (w % 5) as f64 / 10.0))
                .collect(),
            completed: (w * 3) as u32,
            failed: (w % 4) as u32,
            price_wei: 100_000 + (w as u128 * 104_729) % 900_000,
            free: Resources {
                gpus: (w % 4) as u32,
                cpu_millis: 32_000,
                memory_mib: 131_072,
            },
            free_slots: 8,
            node_cpu_cores: 32,
            models: vec![envs[w % envs.len()].clone()],
        })
        .collect();
    (demands, offers)
}

fn bench_recruitment(runs: usize) {
    println!("## recruitment: one greedy assignment (median of {runs} runs)");
    println!("| tasks | workers | ms | assigned |");
    println!("| ---: | ---: | ---: | ---: |");
    for (tasks, workers) in [(100, 10), (1_000, 100), (5_000, 500)] {
        let (demands, offers) = market(tasks, workers);
        let mut times = Vec::new();
        let mut assigned = 0;
        for _ in 0..runs {
            let start = Instant::now();
            let decisions = std::hint::black_box(assign(&demands, &offers));
            times.push(start.elapsed().as_secs_f64() * 1e3);
            assigned = decisions.iter().filter(|d| d.assigned.is_some()).count();
        }
        println!("| {tasks} | {workers} | {:.2} | {assigned} |", median(times));
    }
}

/// One run: N tasks applied at once; seconds from each creation to its trainer pod.
async fn admission_run(tasks: usize) -> Vec<f64> {
    let devnet = Devnet::spawn(8).expect("anvil starts (run tools/setup.sh)");
    let accounts = devnet.accounts();
    let market = devnet.deploy_market(MarketParams::default()).await.unwrap();
    let api = ApiServer::default();
    let secret = |namespace: &str, name: &str, i: usize| {
        json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name, "namespace": namespace},
               "data": {"privateKey": ByteString(devnet.signers()[i].to_bytes().to_string().into_bytes())}})
    };
    api.insert("secrets", secret("team-a", "wallet", 2));
    for w in 0..4 {
        let address = accounts[3 + w];
        market
            .register_worker(
                address,
                &dev_worker_profile(&[EnvKind::Cartpole], 1_000u64.try_into().unwrap()),
                parse_ether("2").unwrap(),
            )
            .await
            .unwrap();
        api.insert("secrets", secret("drlaas-system", &format!("w{w}-key"), 3 + w));
        api.insert(
            "workers",
            json!({"apiVersion": "drlaas.io/v1alpha1", "kind": "Worker", "metadata": {"name": format!("w{w}")},
                   "spec": {"address": address.to_string(),
                            "capacity": {"gpus": 0, "cpuCores": 1024, "memoryGib": 4096, "concurrentTasks": tasks},
                            "expertise": {"cartpole": 0.8}, "pricePerTaskWei": "1000",
                            "keySecretRef": {"name": format!("w{w}-key")}}}),
        );
    }
    let scratch = support::scratch_dir("bench");
    std::fs::create_dir_all(&scratch).unwrap();
    let args = OperatorConfig {
        trainer_image: "drlaas/trainer:bench".into(),
        confirmations: 1,
        chain_admission: false,
        listen: "127.0.0.1:0".parse().unwrap(),
        identity: Some("bench".into()),
        ..OperatorConfig::new(
            devnet.endpoint().to_string(),
            *market.deployment(),
            devnet.signers()[ORACLE].clone(),
            scratch.join("store").display().to_string(),
        )
    };
    let operator = tokio::spawn(runtime::run_with(args, Some(api.client())));
    // Every Worker registered by its controller before the clock starts.
    while api.all("workers").iter().any(|w| w["status"]["registered"] != true) {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let mut applied = BTreeMap::new();
    for i in 0..tasks {
        let name = format!("t{i}");
        applied.insert(name.clone(), Instant::now());
        api.insert(
            "drltasks",
            json!({"apiVersion": "drlaas.io/v1alpha1", "kind": "DRLTask",
                   "metadata": {"name": name, "namespace": "team-a"},
                   "spec": {"training": {"environment": {"kind": "cartpole"}, "targetMeanReturn": 5.0},
                            "resources": {"cpu": "1", "memory": "1Gi"},
                            "payment": {"amountWei": "1000000", "walletSecretRef": {"name": "wallet"}}}}),
        );
    }
    let mut created: BTreeMap<String, f64> = BTreeMap::new();
    let deadline = Instant::now() + Duration::from_secs(300);
    while created.len() < tasks && Instant::now() < deadline {
        for pod in api.all("pods") {
            let task = pod["metadata"]["labels"]["drlaas.io/task"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            if let Some(at) = applied.get(&task) {
                created.entry(task).or_insert_with(|| at.elapsed().as_secs_f64());
            }
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    if operator.is_finished() {
        panic!("the operator stopped: {:?}", operator.await);
    }
    operator.abort();
    if created.len() < tasks {
        let stuck: Vec<String> = api
            .all("drltasks")
            .iter()
            .filter(|t| !created.contains_key(t["metadata"]["name"].as_str().unwrap_or_default()))
            .map(|t| format!("{}: {}", t["metadata"]["name"], t["status"]))
            .take(5)
            .collect();
        panic!(
            "{} of {tasks} tasks got no trainer pod in time: {stuck:#?}",
            tasks - created.len()
        );
    }
    created.into_values().collect()
}

fn peak_memory_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

fn main() {
    let runs = arg("--runs", 3);
    let tasks = arg("--tasks", 50);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (mut p50s, mut p99s, mut totals) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..runs {
        let latencies = runtime.block_on(admission_run(tasks));
        p50s.push(quantile(&latencies, 0.5));
        p99s.push(quantile(&latencies, 0.99));
        totals.push(latencies.iter().copied().fold(0.0, f64::max));
    }
    println!();
    println!("## admission to trainer pod: {tasks} tasks applied at once (median of {runs} runs)");
    println!("| p50 s | p99 s | last pod s | tasks/s | peak memory MiB |");
    println!("| ---: | ---: | ---: | ---: | ---: |");
    let last = median(totals);
    println!(
        "| {:.2} | {:.2} | {last:.2} | {:.1} | {:.0} |",
        median(p50s),
        median(p99s),
        tasks as f64 / last,
        peak_memory_mib()
    );
    println!();
    bench_recruitment(runs.max(3));
}
