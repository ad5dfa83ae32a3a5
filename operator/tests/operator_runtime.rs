//! The whole operator process (`drlaas operator`'s [`runtime::run_with`]: settings checked against
//! the chain, the leader Lease, the DRLTask, Worker and chain-admission controllers with their
//! watches) against the in-memory API server, a real anvil chain, a local store and the real
//! trainer run by the test kubelet. Nothing is driven by hand: the test applies objects, posts on
//! chain, and waits.

use std::path::Path;
use std::time::{Duration, Instant};

use drlaas_chain::alloy::primitives::{U256, utils::parse_ether};
use drlaas_chain::alloy::providers::Provider;
use drlaas_chain::devnet::{Devnet, ORACLE, dev_worker_profile};
use drlaas_chain::{EnvKind, MarketParams, NewTask, TaskKind, TaskStatus};
use drlaas_operator::local::run::key_secret;
use drlaas_operator::runtime::{self, OperatorArgs};
use drlaas_store::{ContentStore, Store};
use serde_json::{Value, json};

mod support;
use drlaas_operator::local::api_server::ApiServer;
use support::kubelet::Kubelet;
use support::scratch_dir;

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_operator_settles_a_kubernetes_task_and_a_chain_task_on_its_own() {
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
    let deployment = scratch.join("deployment.json");
    std::fs::write(&deployment, serde_json::to_string(market.deployment()).unwrap()).unwrap();
    let oracle_key = scratch.join("oracle.key");
    std::fs::write(&oracle_key, devnet.signers()[ORACLE].to_bytes().to_string()).unwrap();
    let args = OperatorArgs {
        rpc_url: devnet.endpoint().to_string(),
        deployment,
        oracle_key_file: oracle_key,
        store: store_dir.display().to_string(),
        pod_store: None,
        trainer_image: "drlaas/trainer:test".into(),
        namespace: "drlaas-system".into(),
        confirmations: 1,
        no_chain_admission: false,
        listen: "127.0.0.1:0".parse().unwrap(),
        lease_name: "drlaas-operator".into(),
        identity: Some("replica-a".into()),
        lease_seconds: 15,
    };
    let operator = tokio::spawn(runtime::run_with(args, Some(api.client())));

    // The cluster's nodes and the chain's block production.
    let kubelet = Kubelet::new(api.clone(), Path::new(&store_dir));
    let nodes = tokio::spawn(async move {
        loop {
            let k = kubelet.clone();
            tokio::task::spawn_blocking(move || k.run_pending()).await.unwrap();
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    });
    let provider = devnet.provider();
    let blocks = tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_millis(300)).await;
            let _: Result<Value, _> = provider.raw_request("anvil_mine".into(), (1,)).await;
        }
    });

    // A requester applies a task in the cluster...
    api.insert(
        "drltasks",
        json!({"apiVersion": "drlaas.io/v1alpha1", "kind": "DRLTask",
               "metadata": {"name": "cartpole", "namespace": "team-a"},
               "spec": {"training": {"environment": {"kind": "cartpole"}, "ppo": {"numEnvs": 4, "numSteps": 16},
                                     "totalEnvSteps": 640, "targetMeanReturn": 5.0},
                        "resources": {"cpu": "1", "memory": "1Gi"},
                        "payment": {"amountWei": "1000000000000000000",
                                    "walletSecretRef": {"name": "requester-wallet"}}}}),
    );
    // ...and another posts one on chain, with its document in the store.
    let document = br#"{"training": {"environment": {"kind": "cartpole"}, "ppo": {"numEnvs": 4, "numSteps": 16},
                        "totalEnvSteps": 640, "targetMeanReturn": 5.0}}"#;
    let stored = store.put_bytes(document.to_vec().into()).await.unwrap();
    let (chain_task, _) = market
        .post_task(
            accounts[4],
            &NewTask {
                spec_cid: stored.cid.to_string(),
                kind: TaskKind::Training,
                target_milli: 5_000,
                deadline: devnet.now().await.unwrap() + 3600,
                budget: parse_ether("1").unwrap(),
            },
        )
        .await
        .unwrap();

    let paid = |t: &Value| t["status"]["outcome"] == "Paid";
    let applied = wait_for(&api, "team-a", "cartpole", "paid", paid).await;
    let mirror = format!("chain-{}-{chain_task}", market.deployment().chain_id);
    let mirrored = wait_for(&api, "drlaas-system", &mirror, "paid", paid).await;

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
        market.credits(worker).await.unwrap().tmc,
        U256::from(2u8) * PRICE.parse::<U256>().unwrap(),
        "paid for both, once each"
    );
    assert_eq!(
        market.credits(requester).await.unwrap().tmc,
        parse_ether("1").unwrap() - PRICE.parse::<U256>().unwrap(),
        "the applied task's requester gets back what the worker did not charge"
    );
    assert!(mirrored["status"]["transactions"].get("post").is_none());
    let registered = api.get("workers", "", "lab-a").unwrap();
    assert_eq!(registered["status"]["registered"], true);
    let lease = api
        .get("leases", "drlaas-system", "drlaas-operator")
        .expect("the leader Lease");
    assert_eq!(lease["spec"]["holderIdentity"], "replica-a");
    let cursor = api
        .get("configmaps", "drlaas-system", "drlaas-chain-cursor")
        .expect("the chain cursor");
    assert!(cursor["data"]["cursor.json"].as_str().unwrap().contains("lastAcked"));

    operator.abort();
    nodes.abort();
    blocks.abort();
}
