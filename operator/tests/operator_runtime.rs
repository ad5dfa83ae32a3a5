//! The whole operator process (`drlaas operator`'s [`runtime::run_with`]: settings checked against
//! the chain, the leader Lease, the DRLTask, Worker and chain-admission controllers with their
//! watches) against the in-memory API server, a real anvil chain, a local store and the real
//! trainer run by the test kubelet. Nothing is driven by hand: the test applies objects, posts on
//! chain, and waits.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use drlaas_chain::alloy::primitives::{Address, U256, utils::parse_ether};
use drlaas_chain::alloy::providers::Provider;
use drlaas_chain::devnet::{Devnet, ORACLE, dev_worker_profile};
use drlaas_chain::{EnvKind, Market, MarketParams, NewTask, TaskKind, TaskStatus};
use drlaas_local::workers::key_secret;
use drlaas_operator::runtime::{self, OperatorConfig};
use drlaas_store::{ContentStore, Store};
use serde_json::{Value, json};
use tokio::task::JoinHandle;

mod support;
use drlaas_local::api_server::ApiServer;
use support::kubelet::Kubelet;
use support::{assert_chart_rbac_allows, scratch_dir};

const PRICE: &str = "100000000000000000";

async fn wait_for(api: &ApiServer, namespace: &str, name: &str, what: &str, done: impl Fn(&Value) -> bool) -> Value {
    let start = Instant::now();
    loop {
        if let Some(task) = api.get("drltasks", namespace, name)
            && done(&task)
        {
            return task;
        }
        assert!(
            start.elapsed() < Duration::from_secs(180),
            "{namespace}/{name} is not {what}: {:#}",
            api.get("drltasks", namespace, name).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// A chain with the market and one registered worker (`lab-a`, which takes two tasks at once), the
/// cluster's objects for it (its Worker without status, its key Secret, a requester wallet in
/// `team-a`), and a local store.
struct World {
    devnet: Devnet,
    market: Market,
    api: ApiServer,
    store: Store,
    store_dir: PathBuf,
    requester: Address,
    worker: Address,
}

async fn world() -> World {
    let devnet = Devnet::spawn(6).expect("anvil starts (run tools/setup.sh)");
    let accounts = devnet.accounts();
    let (requester, worker) = (accounts[2], accounts[3]);
    let market = devnet.deploy_market(MarketParams::default()).await.unwrap();
    let profile = dev_worker_profile(&[EnvKind::Cartpole], PRICE.parse().unwrap());
    market
        .register_worker(worker, &profile, parse_ether("2").unwrap())
        .await
        .unwrap();

    let api = ApiServer::default();
    let keys = devnet.signers();
    api.insert("secrets", key_secret("team-a", "requester-wallet", &keys[2]));
    api.insert("secrets", key_secret("drlaas-system", "lab-a-key", &keys[3]));
    // No status: the Worker controller mirrors the registration from chain, then recruitment can use it.
    api.insert(
        "workers",
        json!({"apiVersion": "drlaas.io/v1alpha1", "kind": "Worker", "metadata": {"name": "lab-a"},
               "spec": {"address": worker.to_string(),
                        "capacity": {"gpus": 0, "cpuCores": 8, "memoryGib": 16, "concurrentTasks": 2},
                        "expertise": {"cartpole": 0.9}, "pricePerTaskWei": PRICE,
                        "keySecretRef": {"name": "lab-a-key"}}}),
    );

    let scratch = scratch_dir("runtime");
    std::fs::create_dir_all(&scratch).unwrap();
    let store_dir = scratch.join("store");
    let store = Store::open(store_dir.to_str().unwrap()).unwrap();
    World {
        devnet,
        market,
        api,
        store,
        store_dir,
        requester,
        worker,
    }
}

impl World {
    /// Starts `drlaas operator --watch-namespaces <watch_namespaces>` against this world, the test
    /// kubelet running its pods and a block mined every 300 ms; abort the handles to stop them.
    fn start(&self, watch_namespaces: &[&str]) -> Vec<JoinHandle<()>> {
        let args = OperatorConfig {
            trainer_image: "drlaas/trainer:test".into(),
            watch_namespaces: watch_namespaces.iter().map(|n| n.to_string()).collect(),
            confirmations: 1,
            listen: "127.0.0.1:0".parse().unwrap(),
            identity: Some("replica-a".into()),
            ..OperatorConfig::new(
                self.devnet.endpoint().to_string(),
                *self.market.deployment(),
                self.devnet.signers()[ORACLE].clone(),
                self.store_dir.display().to_string(),
            )
        };
        let client = self.api.client();
        let operator = tokio::spawn(async move {
            if let Err(e) = runtime::run_with(args, Some(client)).await {
                panic!("the operator stopped: {e}");
            }
        });

        // The cluster's nodes and the chain's block production.
        let kubelet = Kubelet::new(self.api.clone(), &self.store_dir);
        let nodes = tokio::spawn(async move {
            loop {
                let k = kubelet.clone();
                tokio::task::spawn_blocking(move || k.run_pending()).await.unwrap();
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        });
        let provider = self.devnet.provider();
        let blocks = tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_millis(300)).await;
                let _: Result<Value, _> = provider.raw_request("anvil_mine".into(), (1,)).await;
            }
        });
        vec![operator, nodes, blocks]
    }

    /// A requester applies a cartpole task paid from the `requester-wallet` of `namespace`.
    fn apply_task(&self, namespace: &str, name: &str) {
        self.api.insert(
            "drltasks",
            json!({"apiVersion": "drlaas.io/v1alpha1", "kind": "DRLTask",
                   "metadata": {"name": name, "namespace": namespace},
                   "spec": {"training": {"environment": {"kind": "cartpole"},
                                         "ppo": {"numEnvs": 4, "numSteps": 16},
                                         "totalEnvSteps": 640, "targetMeanReturn": 5.0},
                            "resources": {"cpu": "1", "memory": "1Gi"},
                            "payment": {"amountWei": "1000000000000000000",
                                        "walletSecretRef": {"name": "requester-wallet"}}}}),
        );
    }

    /// Another requester posts a cartpole task on chain, with its document in the store; returns its id.
    async fn post_on_chain(&self) -> u64 {
        let document = br#"{"training": {"environment": {"kind": "cartpole"}, "ppo": {"numEnvs": 4, "numSteps": 16},
                            "totalEnvSteps": 640, "targetMeanReturn": 5.0}}"#;
        let stored = self.store.put_bytes(document.to_vec().into()).await.unwrap();
        let poster = self.devnet.accounts()[4];
        let (id, _) = self
            .market
            .post_task(
                poster,
                &NewTask {
                    spec_cid: stored.cid.to_string(),
                    kind: TaskKind::Training,
                    target_milli: 5_000,
                    deadline: self.devnet.now().await.unwrap() + 3600,
                    budget: parse_ether("1").unwrap(),
                },
            )
            .await
            .unwrap();
        id
    }

    fn mirror_name(&self, chain_task: u64) -> String {
        format!("chain-{}-{chain_task}", self.market.deployment().chain_id)
    }
}

fn paid(task: &Value) -> bool {
    task["status"]["outcome"] == "Paid"
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_operator_settles_a_kubernetes_task_and_a_chain_task_on_its_own() {
    let w = world().await;
    let running = w.start(&[]);
    w.apply_task("team-a", "cartpole");
    let chain_task = w.post_on_chain().await;

    let applied = wait_for(&w.api, "team-a", "cartpole", "paid", paid).await;
    let mirrored = wait_for(&w.api, "drlaas-system", &w.mirror_name(chain_task), "paid", paid).await;

    let market = &w.market;
    let applied_id = applied["status"]["chainTaskId"].as_u64().unwrap();
    assert_ne!(applied_id, chain_task);
    for id in [applied_id, chain_task] {
        assert_eq!(market.task(id).await.unwrap().status, TaskStatus::Completed);
    }
    assert_eq!(
        market.task_count().await.unwrap(),
        2,
        "the applied task was posted once, the chain task not mirrored back"
    );
    assert_eq!(
        market.credits(w.worker).await.unwrap().tmc,
        U256::from(2u8) * PRICE.parse::<U256>().unwrap(),
        "paid for both, once each"
    );
    assert_eq!(
        market.credits(w.requester).await.unwrap().tmc,
        parse_ether("1").unwrap() - PRICE.parse::<U256>().unwrap(),
        "the applied task's requester gets back what the worker did not charge"
    );
    assert!(
        mirrored["status"]["transactions"]
            .get(drlaas_crds::transactions::TxAction::Post.to_string())
            .is_none()
    );
    let registered = w.api.get("workers", "", "lab-a").unwrap();
    assert_eq!(registered["status"]["registered"], true);
    let lease = w
        .api
        .get("leases", "drlaas-system", "drlaas-operator")
        .expect("the leader Lease");
    assert_eq!(lease["spec"]["holderIdentity"], "replica-a");
    let cursor = w
        .api
        .get("configmaps", "drlaas-system", "drlaas-chain-cursor")
        .expect("the chain cursor");
    assert!(cursor["data"]["cursor.json"].as_str().unwrap().contains("lastAcked"));
    // Every namespace: tasks and pods are listed and watched cluster-wide.
    let requests = w.api.requests();
    for cluster_wide in ["GET /apis/drlaas.io/v1alpha1/drltasks", "GET /api/v1/pods"] {
        assert!(requests.iter().any(|r| r == cluster_wide), "{cluster_wide} never asked");
    }
    // The Helm chart's cluster-wide mode allows every request the operator made.
    assert_chart_rbac_allows(&w.api, "clusterWide: true\n");

    for handle in running {
        handle.abort();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_watch_namespaces_the_operator_stays_in_them_and_its_own() {
    let w = world().await;
    let running = w.start(&["team-a"]);
    // A task in a namespace the operator does not watch: another operator's, or nobody's.
    w.api.insert(
        "secrets",
        key_secret("team-b", "requester-wallet", &w.devnet.signers()[2]),
    );
    w.apply_task("team-b", "elsewhere");
    w.apply_task("team-a", "cartpole");
    // Mirrored into the operator's own namespace, which is watched although not named.
    let chain_task = w.post_on_chain().await;

    wait_for(&w.api, "team-a", "cartpole", "paid", paid).await;
    wait_for(&w.api, "drlaas-system", &w.mirror_name(chain_task), "paid", paid).await;
    // The Worker controller still reads the cluster-scoped Workers, and counts trainers per namespace.
    let registered = w.api.get("workers", "", "lab-a").unwrap();
    assert_eq!(registered["status"]["registered"], true);

    let untouched = w.api.get("drltasks", "team-b", "elsewhere").unwrap();
    assert!(untouched["metadata"]["finalizers"].is_null(), "{untouched:#}");
    assert!(untouched["status"].is_null(), "{untouched:#}");
    assert_eq!(
        w.market.task_count().await.unwrap(),
        2,
        "team-b's task was never posted"
    );

    let requests = w.api.requests();
    let outside: Vec<&String> = requests
        .iter()
        .filter(|r| {
            let cluster_wide = r.ends_with(" /apis/drlaas.io/v1alpha1/drltasks") || r.ends_with(" /api/v1/pods");
            cluster_wide || r.contains("/namespaces/team-b/")
        })
        .collect();
    assert!(
        outside.is_empty(),
        "requests outside team-a and drlaas-system: {outside:#?}"
    );
    for namespace in ["team-a", "drlaas-system"] {
        for listed in [
            format!("GET /apis/drlaas.io/v1alpha1/namespaces/{namespace}/drltasks"),
            format!("GET /api/v1/namespaces/{namespace}/pods"),
        ] {
            assert!(requests.contains(&listed), "{listed} never asked");
        }
    }
    assert!(
        requests.iter().any(|r| r == "GET /apis/drlaas.io/v1alpha1/workers"),
        "Workers are cluster-scoped: listed and watched cluster-wide"
    );
    // The chart installed with the same namespace allows every request: its namespaced Roles suffice.
    assert_chart_rbac_allows(&w.api, "watchNamespaces: [team-a]\n");

    for handle in running {
        handle.abort();
    }
}
