//! The chain watcher against a real anvil chain, a scratch content store holding real task documents,
//! and a small in-memory API server behind kube's tower-test mock: tasks posted on chain become
//! `DRLTask` objects once, Kubernetes tasks are never mirrored twice, a document that disagrees with
//! its escrow is refused with an Event, and the ConfigMap cursor lets a restarted watcher resume.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use drlaas_chain::alloy::primitives::{Address, utils::parse_ether};
use drlaas_chain::bindings::TMC;
use drlaas_chain::cursor::{Cursor, CursorStore, MemoryCursor};
use drlaas_chain::devnet::Devnet;
use drlaas_chain::{ChainEvent, EventPosition, EventStream, Market, MarketEvent, MarketParams, NewTask, StreamConfig};
use drlaas_operator::controller::chain_admission::{self, Admission};
use drlaas_operator::controller::cursor::{CURSOR_CONFIGMAP, CURSOR_KEY, ConfigMapCursor};
use drlaas_operator::controller::{Context, Settings};
use drlaas_store::{ContentStore, Store};
use http::{Request, Response, StatusCode};
use kube::client::Body;
use serde_json::{Value, json};

mod support;
use support::{scratch_store, settings};

/// The task document every scenario posts (a `DRLTaskSpec` without payment or chainTaskId).
const DOC: &str = r#"{"training": {"environment": {"kind": "maze-cleaning"}, "targetMeanReturn": 20.0}}"#;
/// The target `DOC` asks for, in thousandths, as the escrow must pay for it.
const DOC_TARGET_MILLI: i32 = 20_000;

// ------------------------------------------------------------------ a small API server

/// What the fake API server holds, and every request it answered (`METHOD path?query`).
#[derive(Debug, Default)]
struct Cluster {
    configmaps: BTreeMap<String, Value>,
    tasks: Vec<Value>,
    events: Vec<Value>,
    requests: Vec<String>,
}

impl Cluster {
    fn count(&self, method: &str, path_prefix: &str) -> usize {
        let prefix = format!("{method} {path_prefix}");
        self.requests.iter().filter(|r| r.starts_with(&prefix)).count()
    }
}

type Shared = Arc<Mutex<Cluster>>;

/// A client whose requests are served from `cluster`: ConfigMap get and apply, `DRLTask` list by
/// label (equality selectors) and create, and Event create; anything else is a 405, which fails the
/// caller and shows in `requests`.
fn fake_api(cluster: Shared) -> kube::Client {
    let (service, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    tokio::spawn(async move {
        while let Some((request, send)) = handle.next_request().await {
            let (status, body) = serve(&cluster, request).await;
            send.send_response(
                Response::builder()
                    .status(status)
                    .body(Body::from(serde_json::to_vec(&body).unwrap()))
                    .unwrap(),
            );
        }
    });
    kube::Client::new(service, "default")
}

fn status(code: StatusCode, reason: &str, message: String) -> (StatusCode, Value) {
    let body = json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                      "message": message, "reason": reason, "code": code.as_u16()});
    (code, body)
}

async fn serve(cluster: &Shared, request: Request<Body>) -> (StatusCode, Value) {
    let method = request.method().clone();
    let path = request.uri().path().to_string();
    let query = request.uri().query().unwrap_or_default().to_string();
    cluster
        .lock()
        .unwrap()
        .requests
        .push(format!("{method} {path}?{query}"));
    let body = request.into_body().collect_bytes().await.unwrap();
    let body: Value = if body.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&body).unwrap()
    };
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let mut c = cluster.lock().unwrap();
    match (method.as_str(), segments.as_slice()) {
        ("GET", ["api", "v1", "namespaces", ns, "configmaps", name]) => match c.configmaps.get(&format!("{ns}/{name}"))
        {
            Some(map) => (StatusCode::OK, map.clone()),
            None => status(
                StatusCode::NOT_FOUND,
                "NotFound",
                format!("configmaps \"{name}\" not found"),
            ),
        },
        ("PATCH", ["api", "v1", "namespaces", ns, "configmaps", name]) => {
            let mut map = body;
            map["metadata"]["resourceVersion"] = json!(c.requests.len().to_string());
            c.configmaps.insert(format!("{ns}/{name}"), map.clone());
            (StatusCode::OK, map)
        }
        ("GET", ["apis", "drlaas.io", "v1alpha1", "drltasks"]) => {
            let selector = query_param(&query, "labelSelector").unwrap_or_default();
            let items: Vec<Value> = c.tasks.iter().filter(|t| selects(t, &selector)).cloned().collect();
            let list = json!({"apiVersion": "drlaas.io/v1alpha1", "kind": "DRLTaskList",
                              "metadata": {"resourceVersion": "1"}, "items": items});
            (StatusCode::OK, list)
        }
        ("POST", ["apis", "drlaas.io", "v1alpha1", "namespaces", ns, "drltasks"]) => {
            let name = body["metadata"]["name"].as_str().unwrap().to_string();
            let exists = c
                .tasks
                .iter()
                .any(|t| t["metadata"]["name"] == name.as_str() && t["metadata"]["namespace"] == *ns);
            if exists {
                return status(
                    StatusCode::CONFLICT,
                    "AlreadyExists",
                    format!("drltasks \"{name}\" already exists"),
                );
            }
            // The CRD schema's bound on spec.deadlineSeconds, as the real API server enforces it.
            if body["spec"]["deadlineSeconds"].as_u64().is_some_and(|s| s > 31_536_000) {
                return status(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "Invalid",
                    format!("DRLTask.drlaas.io \"{name}\" is invalid: spec.deadlineSeconds: Invalid value"),
                );
            }
            let mut task = body;
            task["metadata"]["namespace"] = json!(ns);
            task["metadata"]["uid"] = json!(format!("00000000-0000-4000-8000-{:012}", c.tasks.len()));
            c.tasks.push(task.clone());
            (StatusCode::CREATED, task)
        }
        ("POST", ["apis", "events.k8s.io", "v1", "namespaces", _, "events"]) => {
            c.events.push(body.clone());
            (StatusCode::CREATED, body)
        }
        _ => status(
            StatusCode::METHOD_NOT_ALLOWED,
            "MethodNotAllowed",
            format!("the fake API server does not serve {method} {path}"),
        ),
    }
}

/// The percent-decoded value of `key` in a URL query.
fn query_param(query: &str, key: &str) -> Option<String> {
    query.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=')?;
        (k == key).then(|| percent_decode(v))
    })
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                out.push(u8::from_str_radix(&text[i + 1..i + 3], 16).unwrap());
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).unwrap()
}

/// Whether `object`'s labels satisfy an equality selector `k=v,k2=v2`.
fn selects(object: &Value, selector: &str) -> bool {
    selector.split(',').filter(|s| !s.is_empty()).all(|term| {
        let (k, v) = term.split_once('=').expect("equality selectors only");
        object["metadata"]["labels"][k] == v
    })
}

// ------------------------------------------------------------------ chain and context

/// A fresh chain with the contracts deployed; returns it, the market and the requester's account.
async fn chain() -> (Devnet, Arc<Market>, Address) {
    let devnet = Devnet::spawn(4).expect("anvil starts (run tools/setup.sh)");
    let accounts = devnet.accounts();
    let market = Market::deploy(devnet.provider(), devnet.wallet(), accounts[0], MarketParams::default())
        .await
        .unwrap();
    (devnet, Arc::new(market), accounts[1])
}

fn context(market: Arc<Market>, store: Store, cluster: &Shared) -> Context {
    Context {
        client: fake_api(cluster.clone()),
        market,
        health: Arc::default(),
        store,
        settings: settings(),
    }
}

/// Posts a task for document `spec_cid` with `target_milli`, due in an hour; returns its id.
async fn post(devnet: &Devnet, market: &Market, requester: Address, spec_cid: &str, target_milli: i32) -> u64 {
    post_due(devnet, market, requester, spec_cid, target_milli, 3600).await
}

/// Posts a task due in `seconds`; returns its id.
async fn post_due(
    devnet: &Devnet,
    market: &Market,
    requester: Address,
    spec_cid: &str,
    target_milli: i32,
    seconds: u64,
) -> u64 {
    let task = NewTask {
        spec_cid: spec_cid.into(),
        kind: drlaas_chain::TaskKind::Training,
        target_milli,
        deadline: devnet.now().await.unwrap() + seconds,
        budget: parse_ether("1").unwrap(),
    };
    market.post_task(requester, &task).await.unwrap().0
}

fn stream_config() -> StreamConfig {
    StreamConfig {
        confirmations: 0,
        poll_interval: Duration::from_millis(20),
        ..StreamConfig::default()
    }
}

fn posted_id(event: &ChainEvent) -> Option<u64> {
    match &event.event {
        MarketEvent::Tmc(TMC::TMCEvents::TaskPosted(p)) => Some(p.taskId.to::<u64>()),
        _ => None,
    }
}

/// The `TaskPosted` event of task `id`, and the first event of the deployment (not a `TaskPosted`).
async fn events_of(market: &Market, id: u64) -> (ChainEvent, ChainEvent) {
    let mut stream = EventStream::open(
        market.provider().clone(),
        *market.deployment(),
        stream_config(),
        MemoryCursor::default(),
    )
    .await
    .unwrap();
    let first = stream.next().await.unwrap();
    assert_eq!(posted_id(&first), None, "the deployment's own events come first");
    let mut event = first.clone();
    while posted_id(&event) != Some(id) {
        stream.ack(&event).await.unwrap();
        event = stream.next().await.unwrap();
    }
    (event, first)
}

async fn put(store: &Store, text: &str) -> String {
    store.put_bytes(text.to_string().into()).await.unwrap().cid.to_string()
}

// ------------------------------------------------------------------ scenarios

#[tokio::test]
async fn a_posted_task_becomes_one_drltask_with_its_labels() {
    let (devnet, market, requester) = chain().await;
    let store = scratch_store();
    let cid = put(&store, DOC).await;
    let id = post(&devnet, &market, requester, &cid, DOC_TARGET_MILLI).await;
    let (event, other) = events_of(&market, id).await;
    let cluster = Shared::default();
    let ctx = context(market.clone(), store, &cluster);
    let chain_id = market.deployment().chain_id;
    let name = format!("chain-{chain_id}-{id}");

    assert_eq!(chain_admission::admit(&ctx, &other).await.unwrap(), Admission::Ignored);
    assert!(
        cluster.lock().unwrap().requests.is_empty(),
        "an ignored event costs no API call"
    );

    assert_eq!(
        chain_admission::admit(&ctx, &event).await.unwrap(),
        Admission::Created(name.clone())
    );
    {
        let c = cluster.lock().unwrap();
        assert_eq!(c.tasks.len(), 1);
        let task = &c.tasks[0];
        assert_eq!(task["metadata"]["name"], name.as_str());
        assert_eq!(task["metadata"]["namespace"], "drlaas-system");
        let labels = &task["metadata"]["labels"];
        assert_eq!(labels["drlaas.io/chain-id"], chain_id.to_string().as_str());
        assert_eq!(labels["drlaas.io/chain-task-id"], id.to_string().as_str());
        assert_eq!(labels["drlaas.io/spec-cid"], cid.as_str());
        assert_eq!(task["spec"]["chainTaskId"], id);
        assert_eq!(task["spec"]["training"]["targetMeanReturn"], 20.0);
        assert!(task["spec"].get("payment").is_none());
        let create = c.requests.iter().find(|r| r.starts_with("POST ")).unwrap();
        assert!(create.contains("fieldManager=drlaas-operator"), "{create}");
    }

    // The same event again (a restart before its ack): found by its labels, not created twice.
    assert_eq!(
        chain_admission::admit(&ctx, &event).await.unwrap(),
        Admission::AlreadyMirrored(name.clone())
    );
    assert_eq!(
        cluster
            .lock()
            .unwrap()
            .count("POST", "/apis/drlaas.io/v1alpha1/namespaces/"),
        1,
        "no second create"
    );

    // An object under the mirror's name that the label lookup misses (created by hand, or between
    // the lookup and the create): the create's 409 says it is there.
    cluster.lock().unwrap().tasks[0]["metadata"]["labels"] = json!({});
    assert_eq!(
        chain_admission::admit(&ctx, &event).await.unwrap(),
        Admission::AlreadyMirrored(name)
    );
    assert_eq!(cluster.lock().unwrap().tasks.len(), 1);

    let metrics = ctx.health.metrics.encode();
    for outcome in ["created", "already_mirrored"] {
        let line = format!("drlaas_chain_tasks_total{{outcome=\"{outcome}\"}}");
        assert!(metrics.contains(&line), "{line} in {metrics}");
    }
}

#[tokio::test]
async fn a_kubernetes_task_is_never_mirrored() {
    let (devnet, market, requester) = chain().await;
    let store = scratch_store();
    let cid = put(&store, DOC).await;
    let id = post(&devnet, &market, requester, &cid, DOC_TARGET_MILLI).await;
    let (event, _) = events_of(&market, id).await;
    let cluster = Shared::default();
    let ctx = context(market.clone(), store, &cluster);

    // Applied with kubectl, paid from a wallet, labelled with its document's CID before the post
    // was sent; the receipt is not recorded yet, so it has no chain-task-id label.
    let yaml_task = json!({
        "apiVersion": "drlaas.io/v1alpha1", "kind": "DRLTask",
        "metadata": {"name": "maze-team-a", "namespace": "team-a", "labels": {"drlaas.io/spec-cid": cid}},
        "spec": {"training": {"environment": {"kind": "maze-cleaning"}, "targetMeanReturn": 20.0},
                 "payment": {"amountWei": "1000000000000000000", "walletSecretRef": {"name": "wallet"}}},
    });
    cluster.lock().unwrap().tasks.push(yaml_task);
    assert_eq!(
        chain_admission::admit(&ctx, &event).await.unwrap(),
        Admission::OwnedByKubernetesTask("maze-team-a".into())
    );

    // Once its post is confirmed the operator labels it with the chain ids: a replay finds it.
    cluster.lock().unwrap().tasks[0]["metadata"]["labels"] = json!({
        "drlaas.io/spec-cid": cid,
        "drlaas.io/chain-id": market.deployment().chain_id.to_string(),
        "drlaas.io/chain-task-id": id.to_string(),
    });
    assert_eq!(
        chain_admission::admit(&ctx, &event).await.unwrap(),
        Admission::AlreadyMirrored("maze-team-a".into())
    );

    let c = cluster.lock().unwrap();
    assert_eq!(c.tasks.len(), 1, "no mirror next to the Kubernetes task");
    assert_eq!(c.count("POST", "/apis/drlaas.io/"), 0);
}

#[tokio::test]
async fn a_document_that_disagrees_with_the_escrow_is_refused_with_an_event() {
    let (devnet, market, requester) = chain().await;
    let store = scratch_store();
    let cid = put(&store, DOC).await;
    // The escrow pays for 25.0; the document asks for 20.0.
    let id = post(&devnet, &market, requester, &cid, 25_000).await;
    let (event, _) = events_of(&market, id).await;
    let cluster = Shared::default();
    let ctx = context(market.clone(), store, &cluster);

    let Admission::Refused { task_id, reason } = chain_admission::admit(&ctx, &event).await.unwrap() else {
        panic!("refused expected");
    };
    assert_eq!(task_id, id);
    assert!(reason.contains("spec.training.targetMeanReturn"), "{reason}");
    assert!(reason.contains("escrow stays on chain"), "{reason}");
    assert!(reason.contains("cancel"), "{reason}");

    let c = cluster.lock().unwrap();
    assert!(c.tasks.is_empty(), "no DRLTask for a refused task");
    assert_eq!(c.events.len(), 1);
    let recorded = &c.events[0];
    assert_eq!(recorded["type"], "Warning");
    assert_eq!(recorded["reason"], chain_admission::REASON_REFUSED);
    assert_eq!(recorded["regarding"]["kind"], "ConfigMap");
    assert_eq!(recorded["regarding"]["name"], CURSOR_CONFIGMAP);
    assert_eq!(recorded["metadata"]["namespace"], "drlaas-system");
    assert!(
        recorded["note"].as_str().unwrap().contains("targetMeanReturn"),
        "{recorded}"
    );
    drop(c);
    let metrics = ctx.health.metrics.encode();
    assert!(
        metrics.contains(r#"drlaas_chain_tasks_total{outcome="refused"} 1"#),
        "{metrics}"
    );
}

#[tokio::test]
async fn missing_oversized_unusable_and_rejected_documents_are_refused() {
    let (devnet, market, requester) = chain().await;
    let store = scratch_store();
    let never_stored = drlaas_store::cid_of(b"never stored", store.import_options())
        .unwrap()
        .to_string();
    let padding = " ".repeat(chain_admission::MAX_DOCUMENT_BYTES);
    let oversized = put(&store, &format!("{DOC}{padding}")).await;
    let cluster = Shared::default();
    let ctx = context(market.clone(), store, &cluster);

    let cases = [
        (never_stored.as_str(), "could not be read"),
        (oversized.as_str(), "larger than 65536 bytes"),
        // Not a CID, and not something to put in a label selector either.
        ("bafy,drlaas.io/chain-id=1", "label-safe"),
        ("not-a-cid", "spec CID is unusable"),
    ];
    for (spec_cid, expected) in cases {
        let id = post(&devnet, &market, requester, spec_cid, DOC_TARGET_MILLI).await;
        let (event, _) = events_of(&market, id).await;
        match chain_admission::admit(&ctx, &event).await.unwrap() {
            Admission::Refused { task_id, reason } => {
                assert_eq!(task_id, id);
                assert!(reason.contains(expected), "{spec_cid}: {reason}");
            }
            other => panic!("{spec_cid}: refused expected, got {other:?}"),
        }
    }

    // A good document, but a deadline two years away: the API server rejects the object (422), which
    // is the task's fault, not a reason to retry forever.
    let cid = put(&ctx.store, DOC).await;
    let id = post_due(&devnet, &market, requester, &cid, DOC_TARGET_MILLI, 2 * 365 * 86_400).await;
    let (event, _) = events_of(&market, id).await;
    match chain_admission::admit(&ctx, &event).await.unwrap() {
        Admission::Refused { task_id, reason } => {
            assert_eq!(task_id, id);
            assert!(reason.contains("rejects its DRLTask"), "{reason}");
        }
        other => panic!("refused expected, got {other:?}"),
    }

    let c = cluster.lock().unwrap();
    assert!(c.tasks.is_empty());
    assert_eq!(c.events.len(), cases.len() + 1);
    assert!(
        !c.requests.iter().any(|r| r.contains("chain-id%3D1")),
        "the bad CID never reached a selector: {:?}",
        c.requests
    );
}

#[tokio::test]
async fn the_configmap_cursor_round_trips_and_a_reopened_stream_resumes_after_the_last_ack() {
    let (devnet, market, requester) = chain().await;
    let cluster = Shared::default();
    let client = fake_api(cluster.clone());

    let mut cursor = ConfigMapCursor::new(client.clone(), "drlaas-system");
    assert_eq!(cursor.location(), "configmap drlaas-system/drlaas-chain-cursor");
    assert_eq!(cursor.load().await.unwrap(), None, "no ConfigMap: a first start");
    let saved = Cursor {
        chain_id: market.deployment().chain_id,
        tmc: market.deployment().tmc,
        last_acked: Some(EventPosition { block: 7, log_index: 2 }),
        scanned_through: Some(6),
    };
    cursor.save(&saved).await.unwrap();
    assert_eq!(cursor.load().await.unwrap(), Some(saved));
    {
        let c = cluster.lock().unwrap();
        let apply = c.requests.iter().find(|r| r.starts_with("PATCH ")).unwrap();
        assert!(
            apply.starts_with("PATCH /api/v1/namespaces/drlaas-system/configmaps/drlaas-chain-cursor?"),
            "{apply}"
        );
        assert!(
            apply.contains("fieldManager=drlaas-operator") && apply.contains("force=true"),
            "{apply}"
        );
        let text = c.configmaps["drlaas-system/drlaas-chain-cursor"]["data"][CURSOR_KEY]
            .as_str()
            .unwrap()
            .to_string();
        assert_eq!(serde_json::from_str::<Cursor>(&text).unwrap(), saved);
    }
    cluster.lock().unwrap().configmaps.clear();

    // A watcher handles the first task and acknowledges it, then stops.
    let store = scratch_store();
    let cid = put(&store, DOC).await;
    let first = post(&devnet, &market, requester, &cid, DOC_TARGET_MILLI).await;
    let ctx = context(market.clone(), store, &cluster);
    let mut stream = EventStream::open(
        market.provider().clone(),
        *market.deployment(),
        stream_config(),
        ConfigMapCursor::new(client.clone(), "drlaas-system"),
    )
    .await
    .unwrap();
    let acked = loop {
        let event = stream.next().await.unwrap();
        let admission = chain_admission::admit(&ctx, &event).await.unwrap();
        stream.ack(&event).await.unwrap();
        if posted_id(&event) == Some(first) {
            assert!(matches!(admission, Admission::Created(_)), "{admission:?}");
            break event;
        }
    };
    drop(stream);

    // A second task is posted while no watcher runs; a new one resumes from the ConfigMap.
    let second = post(&devnet, &market, requester, &cid, DOC_TARGET_MILLI).await;
    let mut resumed = EventStream::open(
        market.provider().clone(),
        *market.deployment(),
        stream_config(),
        ConfigMapCursor::new(client, "drlaas-system"),
    )
    .await
    .unwrap();
    assert_eq!(resumed.cursor().last_acked, Some(acked.position));
    let next = resumed.next().await.unwrap();
    assert!(
        next.position > acked.position,
        "the acknowledged event is not delivered again"
    );
    assert_eq!(posted_id(&next), Some(second));
}

#[tokio::test]
async fn the_watcher_mirrors_tasks_as_they_are_posted_and_persists_its_cursor() {
    let (devnet, market, requester) = chain().await;
    let store = scratch_store();
    let cid = put(&store, DOC).await;
    let cluster = Shared::default();
    let ctx = Arc::new(Context {
        settings: Arc::new(Settings {
            confirmations: 1,
            ..(*settings()).clone()
        }),
        ..context(market.clone(), store, &cluster)
    });
    let watcher = tokio::spawn(chain_admission::run(ctx.clone()));

    let id = post(&devnet, &market, requester, &cid, DOC_TARGET_MILLI).await;
    // One confirmation: the task is mirrored only once a block is built on top of its own.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(cluster.lock().unwrap().tasks.is_empty(), "not confirmed yet");
    devnet.mine(1).await.unwrap();

    let name = format!("chain-{}-{id}", market.deployment().chain_id);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    // The mirrored task's name and the persisted cursor, once the task is there.
    let mirrored = || {
        let c = cluster.lock().unwrap();
        let task = c.tasks.first()?;
        let text = c.configmaps.get("drlaas-system/drlaas-chain-cursor")?["data"][CURSOR_KEY].as_str()?;
        let cursor: Cursor = serde_json::from_str(text).unwrap();
        Some((task["metadata"]["name"].clone(), cursor))
    };
    let (mirrored_name, cursor) = loop {
        if let Some(found) = mirrored() {
            break found;
        }
        assert!(tokio::time::Instant::now() < deadline, "not mirrored in time");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(mirrored_name, name.as_str());
    assert!(cursor.last_acked.is_some(), "{cursor:?}");
    watcher.abort();
    let metrics = ctx.health.metrics.encode();
    assert!(
        !metrics.contains(r#"drlaas_reconcile_errors_total{controller="chain-admission""#),
        "the watcher never had to restart: {metrics}"
    );
}
