//! The DRLTask controller, scenario by scenario, against the in-memory API server of drlaas-local, a
//! real anvil chain, a real local content store and the real trainer binary run by a fake kubelet.
//!
//! Every reconcile gets a fresh `Context` (a fresh chain client and metrics): each one is a restart
//! of the operator, so every scenario also checks that nothing depends on memory between steps.

use drlaas_crds::transactions::TxAction;
use std::path::PathBuf;
use std::sync::Arc;

use drlaas_chain::alloy::primitives::{Address, B256, U256, utils::parse_ether};
use drlaas_chain::devnet::{Devnet, ORACLE, dev_worker_profile};
use drlaas_chain::{EnvKind, Market, MarketParams, NewListing, NewTask, TaskKind, TaskStatus};
use drlaas_crds::task::DRLTask;
use drlaas_operator::controller::{Context, Error, task};
use drlaas_operator::server::Health;
use drlaas_store::{ContentStore, Store};
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use kube::runtime::controller::Action;
use serde_json::{Value, json};

mod support;
use drlaas_local::api_server::ApiServer;
use support::kubelet::{Kubelet, args};
use support::{assert_chart_rbac_allows, scratch_dir, settings_for};

const NS: &str = "team-a";
const BUDGET: &str = "1000000000000000000"; // 1 ETH
const PRICE: &str = "100000000000000000"; // 0.1 ETH

struct World {
    devnet: Devnet,
    market: Arc<Market>,
    api: ApiServer,
    kubelet: Kubelet,
    store: Store,
    store_dir: PathBuf,
    oracle: Address,
    requester: Address,
    workers: Vec<Address>,
}

/// A chain with the market, two registered workers (`lab-a`, `lab-b`) and their Worker objects
/// and key Secrets, a requester wallet Secret in `team-a`, and an empty store.
async fn world() -> World {
    let devnet = Devnet::spawn(8).expect("anvil starts (run tools/setup.sh)");
    let accounts = devnet.accounts();
    let (oracle, requester) = (accounts[ORACLE], accounts[2]);
    let market = devnet.deploy_market(MarketParams::default()).await.unwrap();
    let api = ApiServer::default();
    let key = |i: usize| ByteString(devnet.signers()[i].to_bytes().to_string().into_bytes());
    let secret = |namespace: &str, name: &str, i: usize| {
        let s = Secret {
            metadata: kube::api::ObjectMeta {
                name: Some(name.into()),
                namespace: Some(namespace.into()),
                ..Default::default()
            },
            data: Some([("privateKey".to_string(), key(i))].into()),
            ..Default::default()
        };
        serde_json::to_value(s).unwrap()
    };
    api.insert("secrets", secret(NS, "requester-wallet", 2));
    let workers = vec![accounts[3], accounts[4]];
    for (i, (name, address)) in [("lab-a", workers[0]), ("lab-b", workers[1])].into_iter().enumerate() {
        let profile = dev_worker_profile(&[EnvKind::Cartpole], PRICE.parse().unwrap());
        market
            .register_worker(address, &profile, parse_ether("2").unwrap())
            .await
            .unwrap();
        api.insert("secrets", secret("drlaas-system", &format!("{name}-key"), 3 + i));
        api.insert(
            "workers",
            json!({
                "apiVersion": "drlaas.io/v1alpha1", "kind": "Worker",
                "metadata": {"name": name},
                "spec": {
                    "address": address.to_string(),
                    "nodeSelector": {"drlaas.io/pool": name},
                    "capacity": {"gpus": 0, "cpuCores": 8, "memoryGib": 16, "concurrentTasks": 1},
                    // lab-a knows cartpole better: it is recruited first.
                    "expertise": {"cartpole": if name == "lab-a" { 0.9 } else { 0.5 }},
                    "pricePerTaskWei": PRICE,
                    "keySecretRef": {"name": format!("{name}-key")},
                },
                "status": {"registered": true, "reputation": 0.5, "activeTasks": 0, "completedTasks": 0, "failedTasks": 0},
            }),
        );
    }
    let store_dir = scratch_dir("store");
    let store = Store::open(store_dir.to_str().unwrap()).unwrap();
    let kubelet = Kubelet::new(api.clone(), &store_dir);
    World {
        devnet,
        market: Arc::new(market),
        api,
        kubelet,
        store,
        store_dir,
        oracle,
        requester,
        workers,
    }
}

/// A cartpole task paid from the requester's wallet: trains in a few seconds.
fn cartpole(name: &str, target: f64, max_attempts: u32) -> Value {
    json!({
        "apiVersion": "drlaas.io/v1alpha1", "kind": "DRLTask",
        "metadata": {"name": name, "namespace": NS},
        "spec": {
            "training": {
                "environment": {"kind": "cartpole"},
                "ppo": {"numEnvs": 4, "numSteps": 16},
                "totalEnvSteps": 640,
                "evalEpisodes": 3,
                "targetMeanReturn": target,
            },
            "resources": {"cpu": "1", "memory": "1Gi"},
            "payment": {"amountWei": BUDGET, "walletSecretRef": {"name": "requester-wallet"}},
            "maxAttempts": max_attempts,
        },
    })
}

impl World {
    /// A fresh operator (chain client, metrics), as after a restart.
    fn context(&self) -> Arc<Context> {
        self.context_with(Arc::default())
    }

    /// A fresh operator that reports to `health`.
    fn context_with(&self, health: Arc<Health>) -> Arc<Context> {
        let market = Market::connect(self.devnet.provider(), self.devnet.wallet(), *self.market.deployment());
        Arc::new(Context {
            client: self.api.client(),
            market: Arc::new(market),
            health,
            store: self.store.clone(),
            settings: settings_for(self.oracle, &self.store_dir.display().to_string()),
            caches: drlaas_operator::controller::Caches::none(),
            recruiter: std::sync::Arc::default(),
            consortium: std::sync::Arc::default(),
        })
    }

    fn task(&self, name: &str) -> Option<Value> {
        self.api.get("drltasks", NS, name)
    }

    /// One reconcile of task `name`, as the controller would run it.
    async fn reconcile(&self, name: &str) -> Result<Action, Error> {
        let object: DRLTask = serde_json::from_value(self.task(name).expect("the task exists")).unwrap();
        task::reconcile(Arc::new(object), self.context()).await
    }

    /// Reconciles `name` until `done` holds, running pods and mining a block between reconciles
    /// as a cluster and a live chain would.
    async fn drive(&self, name: &str, done: impl Fn(&World, Option<&Value>) -> bool) {
        for _ in 0..40 {
            let task = self.task(name);
            if done(self, task.as_ref()) {
                return;
            }
            if task.is_some() {
                let _ = self.reconcile(name).await;
            }
            self.kubelet.run_pending();
            self.devnet.mine(1).await.unwrap();
        }
        panic!(
            "task {name} did not get there: {:#}",
            self.task(name).unwrap_or_default()
        );
    }

    async fn chain_status(&self, id: u64) -> TaskStatus {
        self.market.task(id).await.unwrap().status
    }

    fn event_reasons(&self) -> Vec<String> {
        self.api
            .all("events")
            .iter()
            .map(|e| e["reason"].as_str().unwrap_or_default().to_string())
            .collect()
    }
}

fn phase(task: &Value) -> &str {
    task["status"]["phase"].as_str().unwrap_or_default()
}

fn settled(_: &World, task: Option<&Value>) -> bool {
    task.is_some_and(|t| phase(t) == "Settled")
}

#[tokio::test]
async fn a_paid_task_is_posted_recruited_trained_verified_and_paid() {
    let w = world().await;
    w.api.insert("drltasks", cartpole("cartpole", 5.0, 3));

    // The finalizer first: from here on, deleting the task releases its escrow.
    assert_eq!(w.reconcile("cartpole").await.unwrap(), Action::await_change());
    assert_eq!(
        w.task("cartpole").unwrap()["metadata"]["finalizers"],
        json!(["drlaas.io/settlement"])
    );

    // Posted from the requester's wallet, the document stored under the CID the chain names.
    w.reconcile("cartpole").await.unwrap();
    let t = w.task("cartpole").unwrap();
    let id = t["status"]["chainTaskId"].as_u64().expect("posted");
    assert_eq!(t["metadata"]["labels"]["drlaas.io/chain-task-id"], id.to_string());
    let info = w.market.task(id).await.unwrap();
    assert_eq!(
        (info.requester, info.budget, info.target_milli),
        (w.requester, BUDGET.parse().unwrap(), 5_000)
    );
    let spec_cid = w.market.task_spec_cid(id).await.unwrap();
    assert_eq!(t["metadata"]["labels"]["drlaas.io/spec-cid"], spec_cid);
    let document: Value =
        serde_json::from_slice(&w.store.get_bytes(&spec_cid.parse().unwrap()).await.unwrap()).unwrap();
    assert!(
        document["spec"].get("payment").is_none(),
        "the document names no wallet: {document}"
    );
    assert_eq!(document["spec"]["training"]["targetMeanReturn"], 5.0);
    assert_eq!(
        document["origin"], t["metadata"]["uid"],
        "the document is the object's own: identical tasks post distinct documents"
    );

    // Funded, then lab-a (the better cartpole expert) is recruited and recorded on chain; the
    // status says Assigned at once, so the next recruitment pass counts lab-a's slot as taken.
    w.reconcile("cartpole").await.unwrap();
    let t = w.task("cartpole").unwrap();
    assert_eq!((phase(&t), t["status"]["worker"].as_str()), ("Assigned", Some("lab-a")));
    let info = w.market.task(id).await.unwrap();
    assert_eq!(
        (info.status, info.worker, info.attempts),
        (TaskStatus::Assigned, w.workers[0], 1)
    );

    // The trainer pod on lab-a's pool.
    w.reconcile("cartpole").await.unwrap();
    assert_eq!(phase(&w.task("cartpole").unwrap()), "Assigned");
    let pod = w.api.get("pods", NS, "cartpole-train-1").expect("the trainer pod");
    assert_eq!(pod["spec"]["nodeSelector"]["drlaas.io/pool"], "lab-a");
    assert_eq!(pod["metadata"]["ownerReferences"][0]["kind"], "DRLTask");
    assert!(args(&pod).join(" ").starts_with("train --task /etc/drlaas/task.json"));
    assert!(w.api.get("configmaps", NS, "cartpole-task").is_some());

    // Running: progress comes from the trainer's JSON progress lines.
    w.kubelet.start(NS, "cartpole-train-1");
    w.api.set_log(
        NS,
        "cartpole-train-1",
        r#"{"envSteps":320,"episodes":14,"meanReturn":18.5,"sps":1000.0}"#.into(),
    );
    w.reconcile("cartpole").await.unwrap();
    let t = w.task("cartpole").unwrap();
    assert_eq!(phase(&t), "Training");
    assert_eq!(
        t["status"]["progress"],
        json!({"envSteps": 320, "totalEnvSteps": 640, "meanReturn": 18.5, "sps": 1000.0, "etaSeconds": 1})
    );

    // The trainer stores its model; the result goes on chain under lab-a's own key.
    w.kubelet.run(NS, "cartpole-train-1");
    assert_eq!(w.kubelet.phase(NS, "cartpole-train-1").as_deref(), Some("Succeeded"));
    w.reconcile("cartpole").await.unwrap();
    let model_cid = w.task("cartpole").unwrap()["status"]["modelCid"]
        .as_str()
        .expect("the model CID")
        .to_string();
    assert_eq!(w.chain_status(id).await, TaskStatus::Submitted);
    assert!(w.store.has(&model_cid.parse().unwrap()).await.unwrap());

    // Verifying waits for the seed block, then evaluates on another worker's pool.
    w.reconcile("cartpole").await.unwrap();
    let t = w.task("cartpole").unwrap();
    assert_eq!(phase(&t), "Verifying");
    assert!(
        t["status"]["message"]
            .as_str()
            .unwrap()
            .contains("seeds the evaluation"),
        "{t:#}"
    );
    assert!(w.api.get("pods", NS, "cartpole-verify-1").is_none());
    w.devnet.mine(2).await.unwrap();
    w.reconcile("cartpole").await.unwrap();
    let eval = w.api.get("pods", NS, "cartpole-verify-1").expect("the evaluator pod");
    assert_eq!(eval["spec"]["nodeSelector"]["drlaas.io/pool"], "lab-b");
    let eval_args = args(&eval).join(" ");
    assert!(eval_args.contains(&format!("--model {model_cid}")) && eval_args.contains("--episodes 100"));

    // Passed: paid on chain, settled in the status.
    w.kubelet.run(NS, "cartpole-verify-1");
    let health = Arc::new(Health::default());
    let object: DRLTask = serde_json::from_value(w.task("cartpole").unwrap()).unwrap();
    task::reconcile(Arc::new(object), w.context_with(health.clone()))
        .await
        .unwrap();
    assert_eq!(w.chain_status(id).await, TaskStatus::Completed);
    let metrics = health.metrics.encode();
    for line in [
        "drlaas_chain_tx_duration_seconds_count{action=\"complete\"} 1",
        "drlaas_chain_tx_gas_count{action=\"complete\"} 1",
        "drlaas_time_to_verify_seconds_count 1",
        "drlaas_time_to_settle_seconds_count 1",
        "drlaas_reconciles_total{controller=\"drltask\"} 1",
    ] {
        assert!(metrics.contains(line), "{line} not in\n{metrics}");
    }
    w.reconcile("cartpole").await.unwrap();
    let t = w.task("cartpole").unwrap();
    assert_eq!((phase(&t), t["status"]["outcome"].as_str()), ("Settled", Some("Paid")));
    assert_eq!(t["status"]["evaluation"]["passed"], true);
    assert_eq!(t["status"]["evaluation"]["episodes"], 100);
    let txs = t["status"]["transactions"].as_object().unwrap();
    let mut actions: Vec<&str> = txs.keys().map(String::as_str).collect();
    actions.sort();
    let expected = [
        TxAction::Assign(1),
        TxAction::Complete,
        TxAction::Post,
        TxAction::Submit(1),
    ]
    .map(|a| a.to_string());
    assert_eq!(actions, expected);
    let settled = t["status"]["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == "Settled")
        .unwrap();
    assert_eq!(settled["status"], "True");
    assert_eq!(
        w.market.credits(w.workers[0]).await.unwrap().tmc,
        PRICE.parse::<U256>().unwrap()
    );
    assert_eq!(
        w.market.credits(w.requester).await.unwrap().tmc,
        BUDGET.parse::<U256>().unwrap() - PRICE.parse::<U256>().unwrap(),
        "what the worker did not charge goes back"
    );
    // One Event per reconcile: a phase change says itself only when nothing more specific was said
    // (Funded and Assigned come with Posted and WorkerAssigned).
    let reasons = w.event_reasons();
    for reason in [
        "Posted",
        "WorkerAssigned",
        "Training",
        "ResultSubmitted",
        "Verifying",
        "Completed",
        "Settled",
    ] {
        assert!(reasons.iter().any(|r| r == reason), "no {reason} Event in {reasons:?}");
    }
    // Every request of the controller is one the Helm chart's RBAC grants.
    assert_chart_rbac_allows(&w.api, "clusterWide: true\n");
}

#[tokio::test]
async fn a_model_below_target_fails_every_attempt_and_refunds_the_requester() {
    let w = world().await;
    w.api.insert("drltasks", cartpole("hard", 450.0, 2));
    w.drive("hard", settled).await;
    let t = w.task("hard").unwrap();
    assert_eq!(t["status"]["outcome"], "Refunded");
    assert_eq!(
        t["status"]["failedWorkers"],
        json!(["lab-a", "lab-b"]),
        "one attempt each"
    );
    assert_eq!(t["status"]["evaluation"]["passed"], false);
    let id = t["status"]["chainTaskId"].as_u64().unwrap();
    let info = w.market.task(id).await.unwrap();
    assert_eq!((info.status, info.attempts), (TaskStatus::Failed, 2));
    assert!(
        w.market.credits(w.workers[0]).await.unwrap().tmc.is_zero(),
        "nobody is paid"
    );
    assert!(w.event_reasons().iter().filter(|r| *r == "AttemptFailed").count() == 2);
}

#[tokio::test]
async fn a_crashed_trainer_hands_the_task_to_another_worker() {
    let w = world().await;
    w.api.insert("drltasks", cartpole("crash", 5.0, 3));
    w.drive("crash", |w, _| w.api.get("pods", NS, "crash-train-1").is_some())
        .await;
    // The node runs out of memory before the first trainer finishes.
    w.kubelet.finish(NS, "crash-train-1", 137, "");
    w.drive("crash", settled).await;
    let t = w.task("crash").unwrap();
    assert_eq!(t["status"]["outcome"], "Paid");
    assert_eq!(t["status"]["worker"], "lab-b");
    assert_eq!(t["status"]["failedWorkers"], json!(["lab-a"]));
    assert_eq!(
        w.api.get("pods", NS, "crash-train-2").unwrap()["spec"]["nodeSelector"]["drlaas.io/pool"],
        "lab-b"
    );
    assert_eq!(
        w.market.credits(w.workers[1]).await.unwrap().tmc,
        PRICE.parse::<U256>().unwrap()
    );
    // Every request of the controller is one the Helm chart's RBAC grants.
    assert_chart_rbac_allows(&w.api, "clusterWide: true\n");
}

#[tokio::test]
async fn status_writes_that_never_land_cost_no_second_post_assignment_or_payment() {
    let w = world().await;
    w.api.insert("drltasks", cartpole("flaky", 5.0, 3));
    // Every status write fails: each reconcile's transaction lands on chain but is never recorded,
    // the worst case of a crash right after sending. The next (fresh) operator must find it there.
    w.api
        .fail("PATCH /apis/drlaas.io/v1alpha1/namespaces/team-a/drltasks/flaky/status");
    for _ in 0..40 {
        let done = w.market.task_count().await.unwrap() == 1
            && w.market.task(1).await.unwrap().status == TaskStatus::Completed;
        if done {
            break;
        }
        let _ = w.reconcile("flaky").await;
        w.kubelet.run_pending();
        w.devnet.mine(1).await.unwrap();
    }
    assert!(
        w.task("flaky").unwrap()["status"].is_null(),
        "no status was ever written"
    );
    let info = w.market.task(1).await.unwrap();
    assert_eq!(
        (w.market.task_count().await.unwrap(), info.attempts),
        (1, 1),
        "one post, one assignment"
    );
    assert_eq!(
        w.market.credits(w.workers[0]).await.unwrap().tmc,
        PRICE.parse::<U256>().unwrap(),
        "paid once"
    );
    assert_eq!(
        w.api.count("POST /api/v1/namespaces/team-a/pods"),
        2,
        "one trainer, one evaluator"
    );
    w.api.heal();
    w.drive("flaky", settled).await;
    assert_eq!(w.task("flaky").unwrap()["status"]["outcome"], "Paid");
}

#[tokio::test]
async fn a_lost_post_receipt_is_recovered_from_the_chain_not_posted_again() {
    let w = world().await;
    w.api.insert("drltasks", cartpole("lost", 5.0, 3));
    w.reconcile("lost").await.unwrap(); // finalizer
    // The post lands, but neither the labels nor the status recording it are written.
    w.api
        .fail("PATCH /apis/drlaas.io/v1alpha1/namespaces/team-a/drltasks/lost/status");
    w.api
        .fail("PATCH /apis/drlaas.io/v1alpha1/namespaces/team-a/drltasks/lost");
    assert!(w.reconcile("lost").await.is_err());
    w.api.heal();
    // The write-ahead labels made it only when the patch succeeded: here none did, so the post
    // was never sent either.
    assert_eq!(
        w.market.task_count().await.unwrap(),
        0,
        "no post without its write-ahead record"
    );

    w.reconcile("lost").await.unwrap();
    assert_eq!(w.market.task_count().await.unwrap(), 1);
    // Forget the chain id, keep the write-ahead record: as if the operator died before recording.
    w.api.update("drltasks", NS, "lost", |t| {
        t["status"] = json!({});
        t["metadata"]["labels"]
            .as_object_mut()
            .unwrap()
            .remove("drlaas.io/chain-task-id");
    });
    let annotations = w.task("lost").unwrap()["metadata"]["annotations"].clone();
    assert_eq!(annotations["drlaas.io/requester"], w.requester.to_string());
    // And a retry whose receipt was lost too left a duplicate post of the same document.
    let spec_cid = w.market.task_spec_cid(1).await.unwrap();
    let duplicate = NewTask {
        spec_cid,
        kind: TaskKind::Training,
        target_milli: 5_000,
        deadline: w.devnet.now().await.unwrap() + 3600,
        budget: BUDGET.parse().unwrap(),
    };
    let (second, _) = w.market.post_task(w.requester, &duplicate).await.unwrap();
    w.reconcile("lost").await.unwrap();
    let t = w.task("lost").unwrap();
    assert_eq!(
        t["status"]["chainTaskId"], 1,
        "found on chain by requester and document"
    );
    assert_eq!(w.market.task_count().await.unwrap(), 2, "not posted again");
    assert_eq!(
        w.chain_status(second).await,
        TaskStatus::Cancelled,
        "the duplicate is cancelled: its escrow goes back"
    );
    assert_eq!(
        t["metadata"]["annotations"]["drlaas.io/posted-after-block"], annotations["drlaas.io/posted-after-block"],
        "the write-ahead record keeps its first block"
    );
}

#[tokio::test]
async fn deleting_a_task_cancels_or_fails_it_on_chain_and_removes_its_pods() {
    let w = world().await;
    // Before assignment: cancelled with the requester's key, the whole budget refunded.
    w.api
        .update("workers", "", "lab-a", |wk| wk["status"]["registered"] = json!(false));
    w.api
        .update("workers", "", "lab-b", |wk| wk["status"]["registered"] = json!(false));
    w.api.insert("drltasks", cartpole("early", 5.0, 3));
    w.drive("early", |_, t| t.is_some_and(|t| phase(t) == "Funded")).await;
    let t = w.task("early").unwrap();
    assert!(
        t["status"]["message"]
            .as_str()
            .unwrap()
            .starts_with("waiting for a worker"),
        "{t:#}"
    );
    let early = t["status"]["chainTaskId"].as_u64().unwrap();
    w.api.update("drltasks", NS, "early", |t| {
        t["metadata"]["deletionTimestamp"] = json!("2026-11-25T01:00:00Z")
    });
    w.reconcile("early").await.unwrap();
    assert!(w.task("early").is_none(), "the finalizer is released");
    assert_eq!(w.chain_status(early).await, TaskStatus::Cancelled);
    assert_eq!(
        w.market.credits(w.requester).await.unwrap().tmc,
        BUDGET.parse::<U256>().unwrap()
    );

    // During training: withdrawn with the requester's key; the worker keeps a fee of 10 % of its
    // price and its stake and record; the rest is refunded; the pods go.
    w.api
        .update("workers", "", "lab-a", |wk| wk["status"]["registered"] = json!(true));
    w.api.insert("drltasks", cartpole("late", 5.0, 3));
    w.drive("late", |w, _| w.api.get("pods", NS, "late-train-1").is_some())
        .await;
    let late = w.task("late").unwrap()["status"]["chainTaskId"].as_u64().unwrap();
    let assigned = w.market.task(late).await.unwrap();
    let worker_before = w.market.worker(assigned.worker).await.unwrap().unwrap();
    let requester_before = w.market.credits(w.requester).await.unwrap().tmc;
    w.api.update("drltasks", NS, "late", |t| {
        t["metadata"]["deletionTimestamp"] = json!("2026-11-25T01:00:00Z")
    });
    w.reconcile("late").await.unwrap();
    assert!(w.task("late").is_none());
    assert!(
        w.api.get("pods", NS, "late-train-1").is_none(),
        "the trainer is removed"
    );
    assert_eq!(w.chain_status(late).await, TaskStatus::Cancelled);
    assert!(w.event_reasons().iter().any(|r| r == "Withdrawn"));
    let worker_after = w.market.worker(assigned.worker).await.unwrap().unwrap();
    assert_eq!(worker_after.stake, worker_before.stake, "no slash");
    assert_eq!(worker_after.reputation, worker_before.reputation);
    assert_eq!(worker_after.failed_tasks, worker_before.failed_tasks);
    assert_eq!(worker_after.active_tasks + 1, worker_before.active_tasks, "released");
    let fee = assigned.price / U256::from(10);
    assert_eq!(w.market.credits(assigned.worker).await.unwrap().tmc, fee);
    assert_eq!(
        w.market.credits(w.requester).await.unwrap().tmc - requester_before,
        BUDGET.parse::<U256>().unwrap() - fee
    );
    // Every request of the controller is one the Helm chart's RBAC grants.
    assert_chart_rbac_allows(&w.api, "clusterWide: true\n");
}

#[tokio::test]
async fn a_task_posted_on_chain_is_driven_by_its_chain_id() {
    let w = world().await;
    let document = br#"{"training": {"environment": {"kind": "cartpole"}, "ppo": {"numEnvs": 4, "numSteps": 16},
                        "totalEnvSteps": 640, "targetMeanReturn": 5.0}}"#;
    let stored = w.store.put_bytes(document.to_vec().into()).await.unwrap();
    let deadline = w.devnet.now().await.unwrap() + 3600;
    let new = NewTask {
        spec_cid: stored.cid.to_string(),
        kind: TaskKind::Training,
        target_milli: 5_000,
        deadline,
        budget: BUDGET.parse().unwrap(),
    };
    let (id, _) = w.market.post_task(w.requester, &new).await.unwrap();
    let posted = drlaas_core::mirror::PostedTask {
        id,
        requester: w.requester.to_string(),
        kind: drlaas_crds::task::TaskKind::Training,
        target_milli: 5_000,
        deadline,
        budget_wei: 10u128.pow(18),
        spec_cid: stored.cid.to_string(),
    };
    let now = w.devnet.now().await.unwrap();
    let chain_id = w.market.deployment().chain_id;
    let mirrored =
        drlaas_core::mirror::mirrored_task(chain_id, &posted, std::str::from_utf8(document).unwrap(), now).unwrap();
    let name = mirrored.name.clone();
    let object = json!({
        "apiVersion": "drlaas.io/v1alpha1",
        "kind": "DRLTask",
        "metadata": {
            "name": name,
            "namespace": NS,
            "labels": mirrored.labels,
            "annotations": mirrored.annotations,
        },
        "spec": mirrored.spec,
    });
    w.api.insert("drltasks", object);
    w.drive(&name, settled).await;
    let t = w.task(&name).unwrap();
    assert_eq!(t["status"]["outcome"], "Paid");
    assert!(
        t["status"]["transactions"].get(TxAction::Post.to_string()).is_none(),
        "nothing posted: it was on chain"
    );
    assert_eq!(w.market.task_count().await.unwrap(), 1);
    // Every request of the controller is one the Helm chart's RBAC grants.
    assert_chart_rbac_allows(&w.api, "clusterWide: true\n");
}

#[tokio::test]
async fn a_paid_task_without_a_target_is_refused_with_the_field_named() {
    let w = world().await;
    let mut t = cartpole("aimless", 5.0, 3);
    t["spec"]["training"]
        .as_object_mut()
        .unwrap()
        .remove("targetMeanReturn");
    w.api.insert("drltasks", t);
    w.reconcile("aimless").await.unwrap();
    assert_eq!(w.reconcile("aimless").await.unwrap(), Action::await_change());
    let t = w.task("aimless").unwrap();
    assert_eq!(phase(&t), "Pending");
    assert!(
        t["status"]["message"]
            .as_str()
            .unwrap()
            .starts_with("invalid spec.training.targetMeanReturn: required"),
        "{t:#}"
    );
    assert!(w.event_reasons().iter().any(|r| r == "InvalidSpec"));
    assert_eq!(w.market.task_count().await.unwrap(), 0, "no escrow moved");
}

#[tokio::test]
async fn a_target_random_actions_reach_is_posted_with_a_warning_that_says_both_numbers() {
    let w = world().await;
    // Random CartPole lasts about 22 steps: a target of 5 pays for a policy that ignores the pole.
    w.api.insert("drltasks", cartpole("low", 5.0, 3));
    w.api.insert("drltasks", cartpole("high", 150.0, 3));
    // The first reconcile adds the finalizer, the second posts.
    for _ in 0..2 {
        w.reconcile("low").await.unwrap();
        w.reconcile("high").await.unwrap();
    }
    let warnings: Vec<Value> = w
        .api
        .all("events")
        .into_iter()
        .filter(|e| e["reason"] == "TargetAtRandom")
        .collect();
    assert_eq!(warnings.len(), 1, "{warnings:#?}");
    assert_eq!(warnings[0]["type"], "Warning");
    assert_eq!(warnings[0]["regarding"]["name"], "low", "{warnings:#?}");
    let note = warnings[0]["note"].as_str().unwrap();
    assert!(
        note.starts_with(
            "spec.training.targetMeanReturn 5 is not above what random actions score on this environment ("
        ) && note.contains("the mean of 32 episodes"),
        "{note}"
    );
    // The requester's to decide: both are posted.
    assert_eq!(w.market.task_count().await.unwrap(), 2);
}

#[tokio::test]
async fn a_gymnasium_task_waits_with_a_warning_where_pods_cannot_serve_environments() {
    let w = world().await;
    let mut t = cartpole("gym", 150.0, 3);
    t["spec"]["training"]["environment"] =
        json!({"kind": "gymnasium", "id": "CartPole-v1", "observationShape": [4], "actions": 2});
    w.api.insert("drltasks", t);
    w.reconcile("gym").await.unwrap();
    assert_eq!(w.reconcile("gym").await.unwrap(), Action::await_change());
    let t = w.task("gym").unwrap();
    assert_eq!(phase(&t), "Pending");
    let message = t["status"]["message"].as_str().unwrap();
    assert!(
        message.starts_with(
            "spec.training.environment.kind: gymnasium and pettingzoo environments run in an environment sidecar"
        ) && message.contains("--environment-image"),
        "{t:#}"
    );
    assert!(w.event_reasons().iter().any(|r| r == "EnvironmentUnavailable"));
    assert_eq!(w.market.task_count().await.unwrap(), 0, "no escrow moved");
    assert!(w.api.all("pods").is_empty(), "no worker was given it");
}

#[tokio::test]
async fn a_task_nobody_takes_expires_at_its_deadline_and_refunds() {
    let w = world().await;
    w.api
        .update("workers", "", "lab-a", |wk| wk["status"]["registered"] = json!(false));
    w.api
        .update("workers", "", "lab-b", |wk| wk["status"]["registered"] = json!(false));
    let mut t = cartpole("orphan", 5.0, 3);
    t["spec"]["deadlineSeconds"] = json!(60);
    w.api.insert("drltasks", t);
    w.drive("orphan", |_, t| t.is_some_and(|t| phase(t) == "Funded")).await;
    w.devnet.warp(61).await.unwrap();
    w.drive("orphan", settled).await;
    let t = w.task("orphan").unwrap();
    assert_eq!(t["status"]["outcome"], "Expired");
    assert!(t["status"]["transactions"].get(TxAction::Expire.to_string()).is_some());
    assert_eq!(
        w.market.credits(w.requester).await.unwrap().tmc,
        BUDGET.parse::<U256>().unwrap()
    );
}

#[tokio::test]
async fn a_task_deleted_past_its_deadline_is_expired_as_a_live_one_would_be() {
    let w = world().await;
    w.api
        .update("workers", "", "lab-a", |wk| wk["status"]["registered"] = json!(false));
    w.api
        .update("workers", "", "lab-b", |wk| wk["status"]["registered"] = json!(false));
    let mut t = cartpole("forgotten", 5.0, 3);
    t["spec"]["deadlineSeconds"] = json!(60);
    w.api.insert("drltasks", t);
    w.drive("forgotten", |_, t| t.is_some_and(|t| phase(t) == "Funded"))
        .await;
    let id = w.task("forgotten").unwrap()["status"]["chainTaskId"].as_u64().unwrap();
    w.devnet.warp(61).await.unwrap();
    w.api.update("drltasks", NS, "forgotten", |t| {
        t["metadata"]["deletionTimestamp"] = json!("2026-11-25T01:00:00Z")
    });
    // Nobody can withdraw it any more: the deletion settles it the way the live path does.
    let health = Arc::new(Health::default());
    let object: DRLTask = serde_json::from_value(w.task("forgotten").unwrap()).unwrap();
    task::reconcile(Arc::new(object), w.context_with(health.clone()))
        .await
        .unwrap();
    assert!(w.task("forgotten").is_none(), "the finalizer is released");
    assert_eq!(w.chain_status(id).await, TaskStatus::Expired);
    assert_eq!(
        w.market.credits(w.requester).await.unwrap().tmc,
        BUDGET.parse::<U256>().unwrap()
    );
    let metrics = health.metrics.encode();
    for line in [
        "drlaas_chain_tx_gas_count{action=\"expire\"} 1",
        "drlaas_time_to_settle_seconds_count 1",
    ] {
        assert!(metrics.contains(line), "{line} not in\n{metrics}");
    }
    assert!(w.event_reasons().iter().any(|r| r == "Expired"));
}

#[tokio::test]
async fn warm_start_auto_buys_the_most_similar_listed_model_once() {
    let w = world().await;
    // A cartpole model from an earlier task, listed by lab-b.
    w.api.insert("drltasks", cartpole("first", 5.0, 3));
    w.drive("first", settled).await;
    let model = w.task("first").unwrap()["status"]["modelCid"]
        .as_str()
        .unwrap()
        .to_string();
    let price: U256 = "50000000000000000".parse().unwrap();
    let listing = NewListing {
        model_cid: model.clone(),
        env_kind: EnvKind::Cartpole,
        env_descriptor_hash: B256::ZERO,
        price,
        parent: None,
        royalty_bps: 0,
    };
    let (listing_id, _) = w.market.list_model(w.workers[1], &listing).await.unwrap();

    let mut second = cartpole("second", 5.0, 3);
    second["spec"]["warmStart"] = json!("auto");
    w.api.insert("drltasks", second);
    w.drive("second", |w, _| w.api.get("pods", NS, "second-train-1").is_some())
        .await;
    let pod = w.api.get("pods", NS, "second-train-1").unwrap();
    assert!(
        args(&pod).join(" ").contains(&format!("--warm-start {model}")),
        "{:?}",
        args(&pod)
    );
    let chosen = &w.task("second").unwrap()["status"]["warmStart"];
    assert_eq!(chosen["listingId"], listing_id);
    assert_eq!(chosen["similarity"], 1.0);
    assert!(w.market.has_purchased(listing_id, w.requester).await.unwrap());
    assert_eq!(
        w.market.credits(w.workers[1]).await.unwrap().mmc,
        price,
        "lab-b sold it once"
    );

    w.drive("second", settled).await;
    assert_eq!(w.task("second").unwrap()["status"]["outcome"], "Paid");
    assert!(w.event_reasons().iter().any(|r| r == "WarmStart"));
    assert_eq!(
        w.market.credits(w.workers[1]).await.unwrap().mmc,
        price,
        "and only once"
    );
    // Every request of the controller is one the Helm chart's RBAC grants.
    assert_chart_rbac_allows(&w.api, "clusterWide: true\n");
}
