//! Recruitment's similarity term with the models the chain says a worker has: the environments of
//! the tasks it completed and of the models it listed on the market. Two workers equal in every
//! other term (spec, price, reputation, record) differ only in those models; the one whose model is
//! close to the task's environment is recruited, although the other wins every tie (the lower name).
//!
//! Also: a pass waits for the Worker controller's first look at a Worker, so the similarity term
//! (and every other) is weighed for every Worker, not only those checked first.
//!
//! Against the in-memory API server, a real anvil chain and a real local content store. The Worker
//! statuses come from the Worker controller's own reconciles, as in a cluster.

use std::sync::Arc;

use drlaas_chain::alloy::primitives::{Address, B256, U256, utils::parse_ether};
use drlaas_chain::devnet::{Devnet, ORACLE, dev_worker_profile};
use drlaas_chain::{EnvKind, Market, MarketParams, NewListing, NewTask, TaskKind};
use drlaas_core::mirror::TaskDocument;
use drlaas_crds::task::{DRLTask, DRLTaskSpec};
use drlaas_crds::worker::Worker;
use drlaas_envs::descriptor::EnvDescriptor;
use drlaas_local::api_server::ApiServer;
use drlaas_operator::controller::{Caches, Context, task, worker};
use drlaas_store::{ContentStore, Store};
use k8s_openapi::ByteString;
use serde_json::{Value, json};

mod support;
use support::{scratch_dir, settings_for};

const NS: &str = "team-a";
const BUDGET: &str = "1000000000000000000"; // 1 ETH
const PRICE: &str = "100000000000000000"; // 0.1 ETH

/// A two-agent maze: what the worker's models were trained on.
const MAZE_2: &str = r#"{"kind": "maze-cleaning", "grid": 8, "agents": 2}"#;
/// A three-agent maze: what the new task asks for (similarity 8/9 to `MAZE_2`).
const MAZE_3: &str = r#"{"kind": "maze-cleaning", "grid": 8, "agents": 3}"#;
const CARTPOLE: &str = r#"{"kind": "cartpole"}"#;

struct World {
    devnet: Devnet,
    market: Arc<Market>,
    api: ApiServer,
    store: Store,
    store_dir: std::path::PathBuf,
    oracle: Address,
    requester: Address,
    /// lab-a, lab-b.
    workers: [Address; 2],
}

/// A chain with the market and two registered workers, `lab-a` and `lab-b`, identical on chain
/// and in their Worker objects; a requester wallet Secret in `team-a`; an empty store.
async fn world() -> World {
    let devnet = Devnet::spawn(8).expect("anvil starts (run tools/setup.sh)");
    let accounts = devnet.accounts();
    let market = devnet.deploy_market(MarketParams::default()).await.unwrap();
    let api = ApiServer::default();
    let secret = |name: &str, namespace: &str, i: usize| {
        json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name, "namespace": namespace},
               "data": {"privateKey": ByteString(devnet.signers()[i].to_bytes().to_string().into_bytes())}})
    };
    api.insert("secrets", secret("requester-wallet", NS, 2));
    let workers = [accounts[3], accounts[4]];
    for (i, name) in ["lab-a", "lab-b"].into_iter().enumerate() {
        let profile = dev_worker_profile(&[EnvKind::Cartpole, EnvKind::MazeCleaning], PRICE.parse().unwrap());
        market
            .register_worker(workers[i], &profile, parse_ether("2").unwrap())
            .await
            .unwrap();
        api.insert("secrets", secret(&format!("{name}-key"), "drlaas-system", 3 + i));
        api.insert(
            "workers",
            json!({
                "apiVersion": "drlaas.io/v1alpha1", "kind": "Worker",
                "metadata": {"name": name},
                "spec": {
                    "address": workers[i].to_string(),
                    "capacity": {"gpus": 0, "cpuCores": 8, "memoryGib": 16, "concurrentTasks": 2},
                    "expertise": {"cartpole": 0.8, "maze-cleaning": 0.8},
                    "pricePerTaskWei": PRICE,
                    "keySecretRef": {"name": format!("{name}-key")},
                },
            }),
        );
    }
    let store_dir = scratch_dir("store");
    let store = Store::open(store_dir.to_str().unwrap()).unwrap();
    World {
        oracle: accounts[ORACLE],
        requester: accounts[2],
        market: Arc::new(market),
        devnet,
        api,
        store,
        store_dir,
        workers,
    }
}

fn env(json: &str) -> EnvDescriptor {
    serde_json::from_str(json).unwrap()
}

/// A paid maze task, as a requester applies it.
fn maze_task(name: &str) -> Value {
    json!({
        "apiVersion": "drlaas.io/v1alpha1", "kind": "DRLTask",
        "metadata": {"name": name, "namespace": NS},
        "spec": {
            "training": {"environment": serde_json::from_str::<Value>(MAZE_3).unwrap(), "targetMeanReturn": 5.0},
            "resources": {"cpu": "1", "memory": "1Gi"},
            "payment": {"amountWei": BUDGET, "walletSecretRef": {"name": "requester-wallet"}},
        },
    })
}

impl World {
    /// A fresh operator with `caches`: reads from the API server, each worker's models as `caches`
    /// holds them.
    fn context(&self, caches: Caches) -> Arc<Context> {
        let market = Market::connect(self.devnet.provider(), self.devnet.wallet(), *self.market.deployment());
        Arc::new(Context {
            client: self.api.client(),
            market: Arc::new(market),
            health: Arc::default(),
            store: self.store.clone(),
            settings: settings_for(self.oracle, &self.store_dir.display().to_string()),
            caches,
            recruiter: Arc::default(),
            consortium: Arc::default(),
        })
    }

    /// One reconcile of each Worker by the Worker controller: statuses from chain.
    async fn reconcile_workers(&self, ctx: &Arc<Context>) {
        for name in ["lab-a", "lab-b"] {
            let object: Worker = serde_json::from_value(self.api.get("workers", "", name).unwrap()).unwrap();
            worker::reconcile(Arc::new(object), ctx.clone()).await.unwrap();
        }
    }

    /// A task of `environment` posted on chain outside Kubernetes (its document in the store),
    /// assigned to `worker`, submitted and completed: the worker trained a model of it.
    async fn complete_task(&self, worker: Address, environment: &str) -> u64 {
        let spec: DRLTaskSpec = serde_json::from_value(json!({
            "training": {"environment": serde_json::from_str::<Value>(environment).unwrap(), "targetMeanReturn": 5.0},
        }))
        .unwrap();
        let document = TaskDocument::new(&spec, None).to_bytes();
        let cid = self.store.put_bytes(document.into()).await.unwrap().cid.to_string();
        let task = NewTask {
            spec_cid: cid,
            kind: TaskKind::Training,
            target_milli: 5_000,
            deadline: self.devnet.now().await.unwrap() + 3_600,
            budget: BUDGET.parse().unwrap(),
        };
        let (id, _) = self.market.post_task(self.requester, &task).await.unwrap();
        let budget = BUDGET.parse().unwrap();
        self.market.assign(self.oracle, id, worker, budget).await.unwrap();
        let model = self.model(environment).await;
        self.market
            .submit_result(worker, id, &model, B256::repeat_byte(7))
            .await
            .unwrap();
        self.market.complete(self.oracle, id).await.unwrap();
        id
    }

    /// A drlaas model file trained on `environment` in the store: a safetensors header whose
    /// manifest names the environment (the header is all the operator reads). Returns its CID.
    async fn model(&self, environment: &str) -> String {
        let manifest = json!({"format": drlaas_crds::trainer_output::ModelManifest::FORMAT,
                              "environment": serde_json::from_str::<Value>(environment).unwrap()})
        .to_string();
        let header = json!({"__metadata__": {drlaas_crds::trainer_output::MANIFEST_KEY: manifest}}).to_string();
        let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
        bytes.extend_from_slice(header.as_bytes());
        self.store.put_bytes(bytes.into()).await.unwrap().cid.to_string()
    }

    /// `owner` lists a model trained on `environment`.
    async fn list_model(&self, owner: Address, kind: EnvKind, environment: &str) -> u64 {
        let listing = NewListing {
            model_cid: self.model(environment).await,
            env_kind: kind,
            env_descriptor_hash: B256::ZERO,
            price: U256::from(1000),
            parent: None,
            royalty_bps: 0,
        };
        self.market.list_model(owner, &listing).await.unwrap().0
    }

    /// Reconciles task `name` (each time as a fresh operator without caches) until it names its
    /// worker; returns the worker and the message of its `WorkerAssigned` Event (with the QoS).
    async fn recruited(&self, name: &str) -> (String, String) {
        for _ in 0..6 {
            let t = self.api.get("drltasks", NS, name).unwrap();
            if let Some(worker) = t["status"]["worker"].as_str() {
                let message = self
                    .api
                    .all("events")
                    .into_iter()
                    .filter(|e| e["reason"] == "WorkerAssigned" && e.to_string().contains(&format!("\"{name}\"")))
                    .map(|e| {
                        e["note"]
                            .as_str()
                            .or(e["message"].as_str())
                            .unwrap_or_default()
                            .to_string()
                    })
                    .next_back()
                    .unwrap_or_default();
                return (worker.to_string(), message);
            }
            let object: DRLTask = serde_json::from_value(t).unwrap();
            task::reconcile(Arc::new(object), self.context(Caches::none()))
                .await
                .unwrap();
        }
        panic!(
            "task {name} was not recruited: {:#}",
            self.api.get("drltasks", NS, name).unwrap()
        );
    }

    fn status(&self, worker: &str) -> Value {
        self.api.get("workers", "", worker).unwrap()["status"].clone()
    }
}

#[tokio::test]
async fn a_worker_that_completed_a_similar_task_wins_over_an_otherwise_equal_one() {
    let w = world().await;
    // Both completed one task: the same reputation and record, of different environments.
    w.complete_task(w.workers[0], CARTPOLE).await;
    let maze_task_id = w.complete_task(w.workers[1], MAZE_2).await;
    let ctx = w.context(Caches::none());
    w.reconcile_workers(&ctx).await;
    for name in ["lab-a", "lab-b"] {
        let status = w.status(name);
        assert_eq!(
            (&status["reputation"], &status["completedTasks"]),
            (&json!(0.1), &json!(1)),
            "{name}: {status}"
        );
    }
    // The Worker controller read each worker's models into the caches.
    assert_eq!(*ctx.caches.models_of(w.workers[0]), [env(CARTPOLE)]);
    assert_eq!(*ctx.caches.models_of(w.workers[1]), [env(MAZE_2)]);
    assert_eq!(
        ctx.caches
            .worker_models(w.workers[1])
            .history
            .completed
            .keys()
            .copied()
            .collect::<Vec<_>>(),
        [maze_task_id]
    );

    w.api.insert("drltasks", maze_task("maze"));
    let (worker, message) = w.recruited("maze").await;
    assert_eq!(worker, "lab-b", "{message}");
    // Equal but for S = 8/9: the QoS is lab-a's + 0.10 · 8/9.
    let qos: f64 = message
        .split("QoS ")
        .nth(1)
        .and_then(|q| q.get(..5))
        .and_then(|q| q.parse().ok())
        .unwrap_or_else(|| panic!("no QoS in {message:?}"));
    let without = 0.30 * 0.1 + 0.25 * 0.8 + 0.25 * 1.0 + 0.10 * (1.0 - 0.1);
    assert!(
        (qos - (without + 0.10 * 8.0 / 9.0)).abs() < 1e-3,
        "{qos} in {message:?}"
    );
}

#[tokio::test]
async fn a_worker_that_lists_a_similar_model_wins_and_later_listings_and_tasks_are_read() {
    let w = world().await;
    w.list_model(w.workers[0], EnvKind::Cartpole, CARTPOLE).await;
    let listing = w.list_model(w.workers[1], EnvKind::MazeCleaning, MAZE_2).await;
    // A listing whose model is not drlaas's (no manifest) counts for nothing.
    let foreign = NewListing {
        model_cid: w
            .store
            .put_bytes(b"not a model".to_vec().into())
            .await
            .unwrap()
            .cid
            .to_string(),
        env_kind: EnvKind::MazeCleaning,
        env_descriptor_hash: B256::ZERO,
        price: U256::from(1000),
        parent: None,
        royalty_bps: 0,
    };
    w.market.list_model(w.workers[0], &foreign).await.unwrap();

    // Without the Worker controller's reads (its statuses written by an operator that has gone),
    // recruitment reads the models itself.
    w.reconcile_workers(&w.context(Caches::none())).await;
    w.api.insert("drltasks", maze_task("maze"));
    let (worker, message) = w.recruited("maze").await;
    assert_eq!(worker, "lab-b", "{message}");

    // One operator's caches across reconciles: what was read is kept, and only what is new is read.
    let caches = Caches::none();
    let ctx = w.context(caches.clone());
    w.reconcile_workers(&ctx).await;
    let read = caches.worker_models(w.workers[1]);
    assert_eq!(read.history.listed.get(&listing), Some(&Some(env(MAZE_2))));
    assert_eq!(*caches.models_of(w.workers[0]), [env(CARTPOLE)]);
    // The foreign model's header is read again at the next reads (the store may have failed), then
    // it is known to count for nothing and is not read any more.
    let foreign = drlaas_operator::controller::cache::Source::Listing(3);
    assert_eq!(caches.worker_models(w.workers[0]).unread[&foreign].1, 1);
    for _ in 1..worker::MAX_MODEL_READS {
        worker::refresh_models(&ctx, w.workers[0]).await.unwrap();
    }
    let lab_a = caches.worker_models(w.workers[0]);
    assert!(lab_a.unread.is_empty(), "{:?}", lab_a.unread);
    assert_eq!(lab_a.history.listed.get(&3), Some(&None));

    // lab-a lists a model identical to the next task's environment, and each worker completes
    // another task (their reputations stay equal). The watcher's mirror of the listing marks
    // lab-a's record, and the next read adds what is new.
    let closer = w.list_model(w.workers[0], EnvKind::MazeCleaning, MAZE_3).await;
    drlaas_operator::controller::model_mirror::mirror_listing(&ctx, closer)
        .await
        .unwrap();
    assert!(caches.worker_models(w.workers[0]).stale);
    let fleet = r#"{"kind": "fleet-coordination", "grid": 6, "agents": 2}"#;
    w.complete_task(w.workers[0], fleet).await;
    w.complete_task(w.workers[1], CARTPOLE).await;
    worker::refresh_models(&ctx, w.workers[0]).await.unwrap();
    let lab_a = caches.worker_models(w.workers[0]);
    assert!(!lab_a.stale);
    assert_eq!(*lab_a.models, [env(CARTPOLE), env(MAZE_3), env(fleet)]);
    assert_eq!(lab_a.history.completed.len(), 1);

    // Now lab-a's model is the closer one: a second maze task goes to lab-a.
    w.reconcile_workers(&ctx).await;
    w.api.insert("drltasks", maze_task("maze-2"));
    let (worker, message) = w.recruited("maze-2").await;
    assert_eq!(worker, "lab-a", "{message}");
}

/// At an operator's start the task controller can run before the Worker controller has looked at
/// every Worker. A pass then waits for the Workers without a status (briefly: see
/// `recruiter::FIRST_CHECK`) rather than give the task to whichever worker was checked first.
#[tokio::test]
async fn recruitment_waits_for_a_worker_the_worker_controller_has_not_checked_yet() {
    let w = world().await;
    // Only lab-b has a status; lab-a, which wins the tie of two equal workers, has none yet.
    let ctx = w.context(Caches::none());
    let lab_b: Worker = serde_json::from_value(w.api.get("workers", "", "lab-b").unwrap()).unwrap();
    worker::reconcile(Arc::new(lab_b), ctx.clone()).await.unwrap();
    w.api.insert("drltasks", maze_task("maze"));
    let mut message = String::new();
    for _ in 0..6 {
        let object: DRLTask = serde_json::from_value(w.api.get("drltasks", NS, "maze").unwrap()).unwrap();
        task::reconcile(Arc::new(object), ctx.clone()).await.unwrap();
        let t = w.api.get("drltasks", NS, "maze").unwrap();
        assert_eq!(t["status"]["worker"], Value::Null, "{t:#}");
        message = t["status"]["message"].as_str().unwrap_or_default().to_string();
        if message.contains("has not checked") {
            break;
        }
    }
    assert_eq!(
        message,
        "waiting for a worker: the Worker controller has not checked lab-a yet"
    );

    w.reconcile_workers(&ctx).await;
    let (worker, message) = w.recruited("maze").await;
    assert_eq!(worker, "lab-a", "{message}");
}
