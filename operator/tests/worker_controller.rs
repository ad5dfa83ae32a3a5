//! The Worker controller against a mock API server (kube-rs's tower-test pattern) and a real anvil
//! chain: each scenario scripts the API calls a reconcile must make, in order, and checks what it
//! writes.

use std::sync::Arc;

use drlaas_chain::alloy::primitives::{Address, U256, utils::parse_ether};
use drlaas_chain::devnet::Devnet;
use drlaas_chain::{EnvKind, Expertise, Hardware, Market, MarketParams, WorkerProfile};
use drlaas_crds::worker::Worker;
use drlaas_operator::controller::{Context, worker};
use http::{Request, Response};
use kube::client::Body;
use serde_json::{Value, json};

mod support;
use support::{scratch_store as store, settings};

type ApiServer = tower_test::mock::Handle<Request<Body>, Response<Body>>;

/// A client whose every request goes to the returned handle.
fn mock_api() -> (kube::Client, ApiServer) {
    let (service, handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    (kube::Client::new(service, "default"), handle)
}

/// A fresh chain with the contracts deployed; returns it, the market and an unregistered account.
async fn chain() -> (Devnet, Arc<Market>, Vec<Address>) {
    let devnet = Devnet::spawn(4).expect("anvil starts (run tools/setup.sh)");
    let accounts = devnet.accounts();
    let market = devnet.deploy_market(MarketParams::default()).await.unwrap();
    (devnet, Arc::new(market), accounts)
}

/// The Worker controller's context: the mock API server's client and the chain.
fn context(client: kube::Client, market: Arc<Market>) -> Arc<Context> {
    Arc::new(Context {
        client,
        market,
        health: Arc::default(),
        store: store(),
        settings: settings(),
        caches: drlaas_operator::controller::Caches::none(),
        recruiter: std::sync::Arc::default(),
        consortium: std::sync::Arc::default(),
    })
}

fn worker_object(address: Address) -> Worker {
    serde_json::from_value(json!({
        "apiVersion": "drlaas.io/v1alpha1",
        "kind": "Worker",
        "metadata": {"name": "lab-a", "generation": 3, "uid": "00000000-0000-4000-8000-00000000000a"},
        "spec": {
            "address": address.to_string(),
            "capacity": {"gpus": 1, "cpuCores": 16, "memoryGib": 64},
            "expertise": {"maze-cleaning": 0.8},
            "pricePerTaskWei": "1000",
            "keySecretRef": {"name": "lab-a-key"},
        },
    }))
    .unwrap()
}

fn pod(name: &str, phase: &str) -> Value {
    json!({"metadata": {"name": name, "namespace": "team-a",
                        "labels": {"drlaas.io/task": name, "drlaas.io/role": "trainer", "drlaas.io/worker": "lab-a"},
                        "annotations": {"drlaas.io/worker": "lab-a"}},
           "status": {"phase": phase}})
}

fn respond(send: tower_test::mock::SendResponse<Response<Body>>, body: &Value) {
    send.send_response(
        Response::builder()
            .body(Body::from(serde_json::to_vec(body).unwrap()))
            .unwrap(),
    );
}

/// Serves the two calls of one Worker reconcile of `worker`: the pod list, then the status apply,
/// whose body is returned (the answer is the object with that status, as the API server gives).
async fn serve_reconcile(mut api: ApiServer, worker: Worker, pods: Vec<Value>) -> Value {
    // Without watch caches (`Caches::none`) the operator's pods are listed; with them, nothing is.
    let (request, send) = api.next_request().await.expect("the reconcile lists pods");
    assert_eq!(request.method(), http::Method::GET);
    let uri = request.uri().to_string();
    assert!(uri.starts_with("/api/v1/pods?"), "{uri}");
    assert!(uri.contains("labelSelector=drlaas.io%2Ftask"), "{uri}");
    let mut others = pod("other-train-1", "Running");
    others["metadata"]["labels"]["drlaas.io/worker"] = json!("lab-b");
    others["metadata"]["annotations"]["drlaas.io/worker"] = json!("lab-b");
    let mut items = pods;
    items.push(others);
    respond(
        send,
        &json!({"apiVersion": "v1", "kind": "PodList", "metadata": {}, "items": items}),
    );

    let (request, send) = api.next_request().await.expect("the reconcile applies the status");
    assert_eq!(request.method(), http::Method::PATCH);
    let uri = request.uri().to_string();
    assert!(
        uri.starts_with("/apis/drlaas.io/v1alpha1/workers/lab-a/status?"),
        "{uri}"
    );
    assert!(
        uri.contains("fieldManager=drlaas-operator") && uri.contains("force=true"),
        "server-side apply: {uri}"
    );
    let body: Value = serde_json::from_slice(&request.into_body().collect_bytes().await.unwrap()).unwrap();
    let mut updated = serde_json::to_value(&worker).unwrap();
    updated["status"] = body["status"].clone();
    respond(send, &updated);
    body
}

#[tokio::test]
async fn a_registered_worker_gets_its_chain_record_and_running_pods() {
    let (_devnet, market, accounts) = chain().await;
    let address = accounts[3];
    let profile = WorkerProfile {
        expertise: Expertise::from_levels([(EnvKind::MazeCleaning, 200)]),
        hardware: Hardware {
            gpus: 1,
            cpu_cores: 16,
            memory_gib: 64,
        },
        price_per_task: U256::from(1000),
        metadata_cid: "bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy".into(),
    };
    market
        .register_worker(address, &profile, parse_ether("2").unwrap())
        .await
        .unwrap();

    let (client, api) = mock_api();
    let object = worker_object(address);
    let server = tokio::spawn(serve_reconcile(
        api,
        object.clone(),
        vec![
            pod("t1-train-1", "Running"),
            pod("t2-train-1", "Pending"),
            pod("t3-train-1", "Succeeded"),
        ],
    ));
    let ctx = context(client, market);
    let action = worker::reconcile(Arc::new(object), ctx).await.unwrap();
    assert_eq!(action, kube::runtime::controller::Action::requeue(worker::RESYNC));

    let status = &server.await.unwrap()["status"];
    assert_eq!(status["registered"], true);
    assert_eq!(
        status["reputation"], 0.0,
        "a new worker starts at 0: reputation is earned"
    );
    assert_eq!(status["stakeWei"], "2000000000000000000");
    assert_eq!(
        status["activeTasks"], 2,
        "pending and running trainers count, finished ones do not"
    );
    let condition = &status["conditions"][0];
    assert_eq!(
        (condition["type"].as_str(), condition["status"].as_str()),
        (Some("Registered"), Some("True"))
    );
    assert_eq!(condition["observedGeneration"], 3);
}

#[tokio::test]
async fn an_unregistered_worker_is_told_how_to_register() {
    let (_devnet, market, accounts) = chain().await;
    let (client, api) = mock_api();
    let object = worker_object(accounts[2]);
    let server = tokio::spawn(serve_reconcile(api, object.clone(), Vec::new()));
    let ctx = context(client, market);
    worker::reconcile(Arc::new(object), ctx).await.unwrap();

    let status = &server.await.unwrap()["status"];
    assert_eq!(status["registered"], false);
    assert!(status.get("reputation").is_none());
    let condition = &status["conditions"][0];
    assert_eq!(
        (condition["status"].as_str(), condition["reason"].as_str()),
        (Some("False"), Some("NotRegistered"))
    );
    assert!(
        condition["message"]
            .as_str()
            .unwrap()
            .contains("register it with a stake")
    );
}

#[tokio::test]
async fn an_unreachable_chain_fails_the_reconcile_before_any_write() {
    let (devnet, market, accounts) = chain().await;
    drop(devnet); // anvil stops
    let (client, mut api) = mock_api();
    let ctx = context(client, market);
    let err = worker::reconcile(Arc::new(worker_object(accounts[3])), ctx)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), "chain", "{err}");
    // No request reached the API server: nothing half-written.
    assert!(futures::FutureExt::now_or_never(api.next_request()).is_none());
}
