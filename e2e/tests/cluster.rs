//! Cluster tests: `KUBECONFIG=... cargo test -p drlaas-e2e -- --ignored` (add
//! `DRLAAS_E2E_FAKE_KUBELET=1` on a cluster without nodes, e.g. a bare API server). They need
//! cluster-admin (the CRDs, a namespace, Workers) and no other drlaas operator in the cluster. The
//! tests of one run take turns; leftovers of an interrupted run are removed first.

use std::time::Duration;

use drlaas_chain::TaskStatus;
use drlaas_crds::task::{TaskOutcome, TaskPhase};
use drlaas_e2e::{Cluster, PRICE_WEI};
use k8s_openapi::api::events::v1::Event;
use kube::Api;
use kube::api::{DeleteParams, ListParams};

fn phase_is(phase: TaskPhase) -> impl Fn(Option<&drlaas_crds::task::DRLTask>) -> bool {
    move |t| t.and_then(|t| t.status.as_ref()).and_then(|s| s.phase) == Some(phase)
}

/// Waits until task `name` is settled and checks it was paid; its status.
async fn settled_paid(cluster: &Cluster, name: &str, timeout: Duration) -> drlaas_crds::task::DRLTaskStatus {
    let task = cluster
        .wait_for(name, timeout, phase_is(TaskPhase::Settled))
        .await
        .unwrap();
    let status = task.status.unwrap();
    assert_eq!(status.outcome, Some(TaskOutcome::Paid), "{name}: {:?}", status.message);
    status
}

/// Deletes task `name` and waits until its finalizer let it go.
async fn delete_and_wait(cluster: &Cluster, name: &str) {
    cluster.tasks().delete(name, &DeleteParams::default()).await.unwrap();
    cluster.wait_for(name, Duration::from_secs(60), |t| t.is_none()).await;
}

#[tokio::test]
#[ignore = "needs a cluster: KUBECONFIG (and DRLAAS_E2E_FAKE_KUBELET=1 without nodes)"]
async fn a_task_is_trained_verified_and_paid_on_the_cluster() {
    let cluster = Cluster::start(2, 4).await;
    cluster.apply_task("cartpole", 5.0).await;
    let task = cluster
        .wait_for("cartpole", Duration::from_secs(600), phase_is(TaskPhase::Settled))
        .await
        .unwrap();
    let status = task.status.unwrap();
    assert_eq!(status.outcome, Some(TaskOutcome::Paid), "{:?}", status.message);
    let id = status.chain_task_id.expect("posted on chain");
    assert_eq!(cluster.market.task(id).await.unwrap().status, TaskStatus::Completed);
    let worker = status.worker.expect("a worker trained it");
    assert_eq!(
        cluster.tmc_credits(cluster.account_of(&worker)).await,
        PRICE_WEI.parse::<drlaas_chain::alloy::primitives::U256>().unwrap(),
        "the worker is paid its price, once"
    );
    assert!(status.evaluation.is_some_and(|e| e.passed));
    let events = Api::<Event>::namespaced(cluster.client.clone(), &cluster.namespace)
        .list(&ListParams::default())
        .await
        .unwrap();
    let reasons: Vec<String> = events.items.iter().filter_map(|e| e.reason.clone()).collect();
    for reason in ["Posted", "WorkerAssigned", "ResultSubmitted", "Completed", "Settled"] {
        assert!(reasons.iter().any(|r| r == reason), "no {reason} Event in {reasons:?}");
    }
    cluster.stop().await;
}

/// A consortium of three oracles with quorum 2: this cluster's operator (seat 0, the only member
/// with Workers) proposes the worker and trains; the two other members, each with a cluster of its
/// own, second the proposal after checking it, evaluate the result themselves and vote. On this
/// cluster the task shows each step, its vote waits for the others, and it is paid once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "needs a cluster: KUBECONFIG (and DRLAAS_E2E_FAKE_KUBELET=1 without nodes)"]
async fn a_two_of_three_consortium_assigns_verifies_and_pays_a_task_on_the_cluster() {
    use drlaas_chain::alloy::primitives::U256;
    use drlaas_e2e::Setup;
    let cluster = Cluster::start_with(Setup {
        other_members: 2,
        quorum: 2,
        ..Setup::new(1, 1)
    })
    .await;
    let consortium = cluster.market.consortium().await.unwrap();
    assert_eq!((consortium.oracles.len(), consortium.quorum), (3, 2));
    cluster.apply_task("pole", 5.0).await;
    let status = settled_paid(&cluster, "pole", Duration::from_secs(600)).await;
    let id = status.chain_task_id.expect("posted on chain");
    assert_eq!(cluster.market.task(id).await.unwrap().status, TaskStatus::Completed);
    let worker = status.worker.expect("a worker trained it");
    assert_eq!(
        cluster.tmc_credits(cluster.account_of(&worker)).await,
        PRICE_WEI.parse::<U256>().unwrap(),
        "the worker is paid its price, once"
    );
    // Every vote is on chain: the assignment and the payment each had two oracles behind them.
    let votes = cluster.market.votes(id).await.unwrap();
    for ballot in [0u8, 1] {
        let voters: std::collections::BTreeSet<_> =
            votes.iter().filter(|v| v.ballot == ballot).map(|v| v.oracle).collect();
        assert_eq!(voters.len(), 2, "ballot {ballot}: {votes:?}");
        assert!(
            voters.contains(&consortium.oracles[0]),
            "this cluster's operator voted: {votes:?}"
        );
    }
    // This cluster's operator said what it did at each step.
    let events = Api::<Event>::namespaced(cluster.client.clone(), &cluster.namespace)
        .list(&ListParams::default())
        .await
        .unwrap();
    let reasons: Vec<String> = events.items.iter().filter_map(|e| e.reason.clone()).collect();
    assert!(
        reasons
            .iter()
            .any(|r| r == "AssignmentProposed" || r == "AssignmentSeconded"),
        "{reasons:?}"
    );
    for reason in ["Posted", "ResultSubmitted", "Settled"] {
        assert!(reasons.iter().any(|r| r == reason), "no {reason} Event in {reasons:?}");
    }
    cluster.stop().await;
}

#[tokio::test]
#[ignore = "needs a cluster: KUBECONFIG (and DRLAAS_E2E_FAKE_KUBELET=1 without nodes)"]
async fn deleting_a_task_that_waits_for_a_worker_cancels_it_on_chain() {
    let cluster = Cluster::start(0, 1).await;
    cluster.apply_task("nobody", 5.0).await;
    let task = cluster
        .wait_for("nobody", Duration::from_secs(60), phase_is(TaskPhase::Funded))
        .await
        .unwrap();
    let id = task.status.unwrap().chain_task_id.unwrap();
    delete_and_wait(&cluster, "nobody").await;
    assert_eq!(cluster.market.task(id).await.unwrap().status, TaskStatus::Cancelled);
    assert_eq!(
        cluster.tmc_credits(cluster.requester).await,
        drlaas_e2e::BUDGET_WEI
            .parse::<drlaas_chain::alloy::primitives::U256>()
            .unwrap(),
        "the whole budget is refunded"
    );
    cluster.stop().await;
}

#[tokio::test]
#[ignore = "needs a cluster: KUBECONFIG (and DRLAAS_E2E_FAKE_KUBELET=1 without nodes)"]
async fn a_gymnasium_task_waits_with_a_warning_where_trainer_pods_cannot_serve_it() {
    let cluster = Cluster::start(1, 1).await;
    let training = serde_json::json!({
        "environment": {"kind": "gymnasium", "id": "CartPole-v1", "kwargs": {"max_episode_steps": 200},
                        "observationShape": [4], "actions": 2},
        "totalEnvSteps": 640, "targetMeanReturn": 5.0,
    });
    cluster.apply_training("gym", training, 0).await;
    let task = cluster
        .wait_for("gym", Duration::from_secs(60), |t| {
            t.and_then(|t| t.status.as_ref())
                .and_then(|s| s.message.as_deref())
                .is_some_and(|m| m.contains("--environment-image"))
        })
        .await
        .unwrap();
    let status = task.status.unwrap();
    assert_eq!(status.phase, Some(TaskPhase::Pending), "{status:?}");
    assert_eq!(status.chain_task_id, None, "nothing posted");
    assert_eq!(cluster.market.task_count().await.unwrap(), 0, "no escrow moved");
    let events = Api::<Event>::namespaced(cluster.client.clone(), &cluster.namespace)
        .list(&ListParams::default())
        .await
        .unwrap();
    assert!(
        events
            .items
            .iter()
            .any(|e| e.reason.as_deref() == Some("EnvironmentUnavailable")),
        "no EnvironmentUnavailable Event"
    );
    delete_and_wait(&cluster, "gym").await;
    cluster.stop().await;
}

#[tokio::test]
#[ignore = "needs a cluster: KUBECONFIG (and DRLAAS_E2E_FAKE_KUBELET=1 without nodes)"]
async fn a_gymnasium_task_runs_its_environment_in_a_native_sidecar_and_is_paid() {
    use drlaas_e2e::Setup;
    use k8s_openapi::api::core::v1::Pod;
    let image = format!("drlaas/environment@sha256:{}", "5".repeat(64));
    let cluster = Cluster::start_with(Setup {
        environment_image: Some(image.clone()),
        ..Setup::new(1, 1)
    })
    .await;
    let training = serde_json::json!({
        "environment": {"kind": "gymnasium", "id": "CartPole-v1", "kwargs": {"max_episode_steps": 200},
                        "observationShape": [4], "actions": 2},
        "totalEnvSteps": 30000, "targetMeanReturn": 50.0,
    });
    cluster.apply_training("gym", training, 0).await;
    let status = settled_paid(&cluster, "gym", Duration::from_secs(600)).await;
    assert!(status.evaluation.is_some_and(|e| e.passed));
    // The API server holds the pods the operator built: each with the environment as a native
    // sidecar of the standard image, which the trainer and the evaluator talked to.
    let pods = Api::<Pod>::namespaced(cluster.client.clone(), &cluster.namespace)
        .list(&ListParams::default())
        .await
        .unwrap();
    let roles: Vec<String> = pods
        .items
        .iter()
        .filter_map(|p| p.metadata.labels.as_ref()?.get("drlaas.io/role").cloned())
        .collect();
    assert!(
        roles.contains(&"trainer".to_string()) && roles.contains(&"evaluator".to_string()),
        "{roles:?}"
    );
    for pod in &pods.items {
        let spec = pod.spec.as_ref().unwrap();
        let sidecar = &spec.init_containers.as_ref().expect("an environment sidecar")[0];
        assert_eq!(
            (
                sidecar.name.as_str(),
                sidecar.restart_policy.as_deref(),
                sidecar.image.as_deref()
            ),
            ("environment", Some("Always"), Some(image.as_str()))
        );
    }
    delete_and_wait(&cluster, "gym").await;
    cluster.stop().await;
}

/// The chain task each DRLTask of the namespace is bound to, by task name.
async fn chain_ids(cluster: &Cluster) -> std::collections::BTreeMap<String, u64> {
    cluster
        .tasks()
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter_map(|t| {
            let id = t.status.as_ref()?.chain_task_id?;
            Some((kube::ResourceExt::name_any(&t), id))
        })
        .collect()
}

#[tokio::test]
#[ignore = "needs a cluster: KUBECONFIG (and DRLAAS_E2E_FAKE_KUBELET=1 without nodes)"]
async fn a_task_posted_on_chain_with_a_ppo_section_is_mirrored_and_paid() {
    use drlaas_store::ContentStore;
    let cluster = Cluster::start(2, 4).await;
    // A requester who writes the document by hand, with an explicit null as people do.
    let document = r#"{"training": {"environment": {"kind": "cartpole"},
        "ppo": {"numEnvs": 4, "numSteps": 16, "targetKl": null},
        "totalEnvSteps": 640, "targetMeanReturn": 5.0},
        "resources": {"cpu": "1", "memory": "1Gi"}}"#;
    let store = drlaas_store::Store::open(&cluster.operator_args.store).unwrap();
    let stored = store.put_bytes(document.as_bytes().to_vec().into()).await.unwrap();
    let now = cluster.devnet.now().await.unwrap();
    let (id, _) = cluster
        .market
        .post_task(
            cluster.requester,
            &drlaas_chain::NewTask {
                spec_cid: stored.cid.to_string(),
                kind: drlaas_chain::TaskKind::Training,
                target_milli: 5_000,
                deadline: now + 3600,
                budget: drlaas_e2e::BUDGET_WEI.parse().unwrap(),
            },
        )
        .await
        .unwrap();
    let name = drlaas_core::mirror::mirror_name(cluster.market.deployment().chain_id, id);
    settled_paid(&cluster, &name, Duration::from_secs(300)).await;
    assert_eq!(cluster.market.task(id).await.unwrap().status, TaskStatus::Completed);
    cluster.stop().await;
}

#[tokio::test]
#[ignore = "needs a cluster: KUBECONFIG (and DRLAAS_E2E_FAKE_KUBELET=1 without nodes)"]
async fn a_task_with_a_253_character_name_is_trained_paid_and_deleted() {
    let cluster = Cluster::start(2, 4).await;
    let name = format!("{}x", "long-name.".repeat(25));
    assert_eq!(name.len(), 251);
    let name = format!("{name}yz");
    cluster.apply_task(&name, 5.0).await;
    settled_paid(&cluster, &name, Duration::from_secs(300)).await;
    delete_and_wait(&cluster, &name).await;
    cluster.stop().await;
}

#[tokio::test]
#[ignore = "needs a cluster: KUBECONFIG (and DRLAAS_E2E_FAKE_KUBELET=1 without nodes)"]
async fn two_identical_tasks_of_one_requester_are_two_chain_tasks_both_paid() {
    let cluster = Cluster::start(2, 4).await;
    cluster.apply_task("twin-a", 5.0).await;
    cluster.apply_task("twin-b", 5.0).await;
    for name in ["twin-a", "twin-b"] {
        let status = settled_paid(&cluster, name, Duration::from_secs(300)).await;
        assert!(
            status
                .transactions
                .contains_key(&drlaas_crds::transactions::TxAction::Post.to_string()),
            "{name} posted its own task"
        );
    }
    let ids = chain_ids(&cluster).await;
    assert_eq!(ids.len(), 2);
    assert_ne!(ids["twin-a"], ids["twin-b"], "one chain task each");
    assert_eq!(cluster.market.task_count().await.unwrap(), 2, "nothing posted twice");
    let price: drlaas_chain::alloy::primitives::U256 = PRICE_WEI.parse().unwrap();
    let mut paid = drlaas_chain::alloy::primitives::U256::ZERO;
    for account in &cluster.worker_accounts {
        let info = cluster.market.worker(*account).await.unwrap().unwrap();
        assert_eq!(info.failed_tasks, 0, "no honest worker is failed");
        paid += cluster.tmc_credits(*account).await;
    }
    assert_eq!(
        paid,
        price * drlaas_chain::alloy::primitives::U256::from(2),
        "two prices paid"
    );
    cluster.stop().await;
}

#[tokio::test]
#[ignore = "needs a cluster: KUBECONFIG (and DRLAAS_E2E_FAKE_KUBELET=1 without nodes)"]
async fn deleting_an_assigned_task_leaves_the_worker_whole() {
    use drlaas_chain::alloy::primitives::U256;
    let cluster = Cluster::start(1, 1).await;
    let worker = cluster.worker_accounts[0];
    let before = cluster.market.worker(worker).await.unwrap().unwrap();
    // Long enough that it is still training when it is deleted.
    let training = serde_json::json!({
        "environment": {"kind": "cartpole"},
        "ppo": {"numEnvs": 4, "numSteps": 16},
        "totalEnvSteps": 50_000_000,
        "targetMeanReturn": 400.0,
    });
    cluster.apply_training("withdrawn", training, 0).await;
    let task = cluster
        .wait_for("withdrawn", Duration::from_secs(120), |t| {
            t.and_then(|t| t.status.as_ref())
                .and_then(|s| s.phase)
                .is_some_and(|p| p == TaskPhase::Assigned || p == TaskPhase::Training)
        })
        .await
        .unwrap();
    let id = task.status.unwrap().chain_task_id.unwrap();
    delete_and_wait(&cluster, "withdrawn").await;
    assert_eq!(cluster.market.task(id).await.unwrap().status, TaskStatus::Cancelled);
    let after = cluster.market.worker(worker).await.unwrap().unwrap();
    assert_eq!(after.stake, before.stake, "no stake slashed");
    assert_eq!(after.reputation, before.reputation, "no reputation lost");
    assert_eq!(after.failed_tasks, before.failed_tasks);
    assert_eq!(after.active_tasks, before.active_tasks, "the worker is free again");
    let price: U256 = PRICE_WEI.parse().unwrap();
    let fee = price / U256::from(10);
    assert_eq!(
        cluster.tmc_credits(worker).await,
        fee,
        "10 % of the price for the compute started"
    );
    let budget: U256 = drlaas_e2e::BUDGET_WEI.parse().unwrap();
    assert_eq!(
        cluster.tmc_credits(cluster.requester).await,
        budget - fee,
        "the rest refunded"
    );
    cluster.stop().await;
}

#[tokio::test]
#[ignore = "needs a cluster: KUBECONFIG (and DRLAAS_E2E_FAKE_KUBELET=1 without nodes)"]
async fn kill_9_of_the_operator_while_20_identical_tasks_arrive_posts_each_exactly_once() {
    use drlaas_e2e::{OperatorMode, Setup};
    let cluster = Cluster::start_with(Setup {
        workers: 2,
        concurrent_tasks: 20,
        requesters: 2,
        operator: OperatorMode::Processes,
        environment_image: None,
        other_members: 0,
        quorum: 1,
    })
    .await;
    let mut operator = Some(cluster.spawn_operator("replica-a", None));
    // Three kills at moments that differ from run to run, each followed by a restart within 3 s.
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos() as u64;
    let mut kills: Vec<u64> = (0..3).map(|i| (seed >> (i * 9)) % 6_000 + i * 2_000).collect();
    kills.sort_unstable();
    eprintln!("kill -9 after {kills:?} ms");
    let started = std::time::Instant::now();
    let applying = {
        let tasks = cluster.tasks();
        tokio::spawn(async move {
            for i in 0..20 {
                let requester = if i % 2 == 0 {
                    "requester-wallet"
                } else {
                    "requester-wallet-1"
                };
                let mut training = drlaas_e2e::quick_cartpole(5.0);
                training["seed"] = serde_json::json!(1);
                let task: drlaas_crds::task::DRLTask = serde_json::from_value(serde_json::json!({
                    "apiVersion": "drlaas.io/v1alpha1", "kind": "DRLTask",
                    "metadata": {"name": format!("same-{i:02}")},
                    "spec": {
                        "training": training,
                        "resources": {"cpu": "1", "memory": "1Gi"},
                        "payment": {"amountWei": drlaas_e2e::BUDGET_WEI, "walletSecretRef": {"name": requester}},
                    },
                }))
                .unwrap();
                tasks.create(&kube::api::PostParams::default(), &task).await.unwrap();
                tokio::time::sleep(Duration::from_millis(150)).await;
            }
        })
    };
    for at in kills {
        let wait = Duration::from_millis(at).saturating_sub(started.elapsed());
        tokio::time::sleep(wait).await;
        operator.take().unwrap().kill();
        tokio::time::sleep(Duration::from_millis(500 + at % 2_500)).await;
        operator = Some(cluster.spawn_operator("replica-a", None));
    }
    applying.await.unwrap();
    for i in 0..20 {
        settled_paid(&cluster, &format!("same-{i:02}"), Duration::from_secs(600)).await;
    }
    let ids = chain_ids(&cluster).await;
    let distinct: std::collections::BTreeSet<u64> = ids.values().copied().collect();
    assert_eq!(distinct.len(), 20, "every DRLTask on its own chain task: {ids:?}");
    assert_eq!(
        cluster.market.task_count().await.unwrap(),
        20,
        "every DRLTask posted exactly once"
    );
    for id in distinct {
        let info = cluster.market.task(id).await.unwrap();
        assert_eq!(info.status, TaskStatus::Completed, "task {id}");
        assert!(
            cluster.requesters.contains(&info.requester),
            "task {id} escrowed by a requester"
        );
    }
    drop(operator);
    cluster.stop().await;
}

#[tokio::test]
#[ignore = "needs a cluster: KUBECONFIG (and DRLAAS_E2E_FAKE_KUBELET=1 without nodes)"]
async fn sigterm_hands_the_lease_to_the_standby_replica_within_3_seconds() {
    use drlaas_e2e::{OperatorMode, Setup};
    use k8s_openapi::api::coordination::v1::Lease;
    let cluster = Cluster::start_with(Setup {
        operator: OperatorMode::Processes,
        environment_image: None,
        ..Setup::new(0, 1)
    })
    .await;
    let leases: Api<Lease> = Api::namespaced(cluster.client.clone(), &cluster.namespace);
    let lease_name = cluster.operator_args.lease_name.clone();
    let holder = |lease: Option<Lease>| lease.and_then(|l| l.spec?.holder_identity).unwrap_or_default();
    let first = cluster.spawn_operator("replica-a", None);
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while holder(leases.get_opt(&lease_name).await.unwrap()) != "replica-a" {
        assert!(std::time::Instant::now() < deadline, "replica-a never led");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let _second = cluster.spawn_operator("replica-b", None);
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        holder(leases.get_opt(&lease_name).await.unwrap()),
        "replica-a",
        "the standby follows while the leader lives"
    );
    let stopping = std::time::Instant::now();
    let exit = tokio::task::spawn_blocking(move || first.terminate()).await.unwrap();
    assert!(exit.success(), "a SIGTERM is a clean exit: {exit}");
    loop {
        let now = holder(leases.get_opt(&lease_name).await.unwrap());
        if now == "replica-b" {
            break;
        }
        assert!(
            stopping.elapsed() < Duration::from_secs(3),
            "no handover within 3 s of SIGTERM (holder {now:?})"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    eprintln!("handover after {:?}", stopping.elapsed());
    cluster.stop().await;
}
