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
    cluster
        .tasks()
        .delete("nobody", &DeleteParams::default())
        .await
        .unwrap();
    cluster
        .wait_for("nobody", Duration::from_secs(60), |t| t.is_none())
        .await;
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
