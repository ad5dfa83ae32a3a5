//! The chain watcher against a real anvil chain, a scratch content store holding real task documents,
//! and the in-memory API server of drlaas-local: tasks posted on chain become
//! `DRLTask` objects once, Kubernetes tasks are never mirrored twice, a document that disagrees with
//! its escrow is refused with an Event, and the ConfigMap cursor lets a restarted watcher resume.

use std::sync::Arc;
use std::time::Duration;

use drlaas_chain::alloy::primitives::{Address, utils::parse_ether};
use drlaas_chain::bindings::TMC;
use drlaas_chain::cursor::{Cursor, CursorStore, MemoryCursor};
use drlaas_chain::devnet::Devnet;
use drlaas_chain::{ChainEvent, EventPosition, EventStream, Market, MarketEvent, MarketParams, NewTask, StreamConfig};
use drlaas_operator::controller::chain_mirror::{self, Admission};
use drlaas_operator::controller::cursor::{CURSOR_CONFIGMAP, CURSOR_KEY, ConfigMapCursor};
use drlaas_operator::controller::{Context, Settings};
use drlaas_store::{ContentStore, Store};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::Api;
use serde_json::json;

mod support;
use drlaas_local::api_server::ApiServer;
use support::{scratch_store, settings};

/// The task document every scenario posts (a `DRLTaskSpec` without payment or chainTaskId).
const DOC: &str = r#"{"training": {"environment": {"kind": "maze-cleaning"}, "targetMeanReturn": 20.0}}"#;
/// The target `DOC` asks for, in thousandths, as the escrow must pay for it.
const DOC_TARGET_MILLI: i32 = 20_000;

// ------------------------------------------------------------------ chain and context

/// A fresh chain with the contracts deployed; returns it, the market and the requester's account.
async fn chain() -> (Devnet, Arc<Market>, Address) {
    let devnet = Devnet::spawn(4).expect("anvil starts (run tools/setup.sh)");
    let accounts = devnet.accounts();
    let market = devnet.deploy_market(MarketParams::default()).await.unwrap();
    (devnet, Arc::new(market), accounts[1])
}

fn context(market: Arc<Market>, store: Store, api: &ApiServer) -> Context {
    Context {
        client: api.client(),
        market,
        health: Arc::default(),
        store,
        settings: settings(),
        caches: drlaas_operator::controller::Caches::none(),
        recruiter: std::sync::Arc::default(),
        consortium: std::sync::Arc::default(),
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
    let api = ApiServer::default();
    let ctx = context(market.clone(), store, &api);
    let chain_id = market.deployment().chain_id;
    let name = format!("chain-{chain_id}-{id}");

    assert_eq!(chain_mirror::admit(&ctx, &other).await.unwrap(), Admission::Ignored);
    assert!(api.requests().is_empty(), "an ignored event costs no API call");

    assert_eq!(
        chain_mirror::admit(&ctx, &event).await.unwrap(),
        Admission::Created(name.clone())
    );
    {
        let tasks = api.all("drltasks");
        assert_eq!(tasks.len(), 1);
        let task = &tasks[0];
        assert_eq!(task["metadata"]["name"], name.as_str());
        assert_eq!(task["metadata"]["namespace"], "drlaas-system");
        let labels = &task["metadata"]["labels"];
        assert_eq!(labels["drlaas.io/chain-id"], chain_id.to_string().as_str());
        assert_eq!(labels["drlaas.io/chain-task-id"], id.to_string().as_str());
        assert_eq!(labels["drlaas.io/spec-cid"], cid.as_str());
        assert_eq!(task["spec"]["chainTaskId"], id);
        assert_eq!(task["spec"]["training"]["targetMeanReturn"], 20.0);
        assert!(task["spec"].get("payment").is_none());
        let requests = api.requests_with_query();
        let create = requests.iter().find(|r| r.starts_with("POST ")).unwrap();
        assert!(create.contains("fieldManager=drlaas-operator"), "{create}");
    }

    // The same event again (a restart before its ack): found by its labels, not created twice.
    assert_eq!(
        chain_mirror::admit(&ctx, &event).await.unwrap(),
        Admission::AlreadyMirrored(name.clone())
    );
    assert_eq!(
        api.count("POST /apis/drlaas.io/v1alpha1/namespaces/"),
        1,
        "no second create"
    );

    // An object under the mirror's name that the label lookup misses (created by hand, or between
    // the lookup and the create): the create's 409 says it is there.
    api.update("drltasks", "drlaas-system", &name, |t| {
        t["metadata"]["labels"] = json!({})
    });
    assert_eq!(
        chain_mirror::admit(&ctx, &event).await.unwrap(),
        Admission::AlreadyMirrored(name)
    );
    assert_eq!(api.all("drltasks").len(), 1);

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
    let api = ApiServer::default();
    let ctx = context(market.clone(), store, &api);

    // Applied with kubectl, paid from a wallet, labelled with its document's CID before the post
    // was sent; the receipt is not recorded yet, so it has no chain-task-id label.
    let yaml_task = json!({
        "apiVersion": "drlaas.io/v1alpha1", "kind": "DRLTask",
        "metadata": {"name": "maze-team-a", "namespace": "team-a", "labels": {"drlaas.io/spec-cid": cid},
                     "annotations": {"drlaas.io/requester": requester.to_string()}},
        "spec": {"training": {"environment": {"kind": "maze-cleaning"}, "targetMeanReturn": 20.0},
                 "payment": {"amountWei": "1000000000000000000", "walletSecretRef": {"name": "wallet"}}},
    });
    api.insert("drltasks", yaml_task);
    assert_eq!(
        chain_mirror::admit(&ctx, &event).await.unwrap(),
        Admission::OwnedByKubernetesTask("maze-team-a".into())
    );

    // Once its post is confirmed the operator labels it with the chain ids: a replay finds it.
    api.update("drltasks", "team-a", "maze-team-a", |t| {
        t["metadata"]["labels"] = json!({
        "drlaas.io/spec-cid": cid,
        "drlaas.io/chain-id": market.deployment().chain_id.to_string(),
            "drlaas.io/chain-task-id": id.to_string(),
        })
    });
    assert_eq!(
        chain_mirror::admit(&ctx, &event).await.unwrap(),
        Admission::AlreadyMirrored("maze-team-a".into())
    );

    // A second post of the same document by the same wallet (a lost receipt's duplicate, which the
    // task cancels) is the task's too, not a task of its own.
    let again = post(&devnet, &market, requester, &cid, DOC_TARGET_MILLI).await;
    let (duplicate, _) = events_of(&market, again).await;
    assert_eq!(
        chain_mirror::admit(&ctx, &duplicate).await.unwrap(),
        Admission::OwnedByKubernetesTask("maze-team-a".into())
    );
    // The same document posted by someone else is theirs, and mirrored.
    let stranger = devnet.accounts()[3];
    let theirs = post(&devnet, &market, stranger, &cid, DOC_TARGET_MILLI).await;
    let (theirs, _) = events_of(&market, theirs).await;
    assert!(matches!(
        chain_mirror::admit(&ctx, &theirs).await.unwrap(),
        Admission::Created(_)
    ));

    assert_eq!(api.all("drltasks").len(), 2, "no mirror of the Kubernetes task's posts");
    assert_eq!(api.count("POST /apis/drlaas.io/"), 1);
}

#[tokio::test]
async fn a_document_that_disagrees_with_the_escrow_is_refused_with_an_event() {
    let (devnet, market, requester) = chain().await;
    let store = scratch_store();
    let cid = put(&store, DOC).await;
    // The escrow pays for 25.0; the document asks for 20.0.
    let id = post(&devnet, &market, requester, &cid, 25_000).await;
    let (event, _) = events_of(&market, id).await;
    let api = ApiServer::default();
    let ctx = context(market.clone(), store, &api);

    let Admission::Refused { task_id, reason } = chain_mirror::admit(&ctx, &event).await.unwrap() else {
        panic!("refused expected");
    };
    assert_eq!(task_id, id);
    assert!(reason.contains("spec.training.targetMeanReturn"), "{reason}");
    assert!(reason.contains("escrow stays on chain"), "{reason}");
    assert!(reason.contains("cancel"), "{reason}");

    assert!(api.all("drltasks").is_empty(), "no DRLTask for a refused task");
    let events = api.all("events");
    assert_eq!(events.len(), 1);
    let recorded = &events[0];
    assert_eq!(recorded["type"], "Warning");
    assert_eq!(recorded["reason"], chain_mirror::REASON_REFUSED);
    assert_eq!(recorded["regarding"]["kind"], "ConfigMap");
    assert_eq!(recorded["regarding"]["name"], CURSOR_CONFIGMAP);
    assert_eq!(recorded["metadata"]["namespace"], "drlaas-system");
    assert!(
        recorded["note"].as_str().unwrap().contains("targetMeanReturn"),
        "{recorded}"
    );
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
    let padding = " ".repeat(chain_mirror::MAX_DOCUMENT_BYTES);
    let oversized = put(&store, &format!("{DOC}{padding}")).await;
    let api = ApiServer::default();
    let ctx = context(market.clone(), store, &api);

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
        match chain_mirror::admit(&ctx, &event).await.unwrap() {
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
    match chain_mirror::admit(&ctx, &event).await.unwrap() {
        Admission::Refused { task_id, reason } => {
            assert_eq!(task_id, id);
            assert!(reason.contains("rejects its DRLTask"), "{reason}");
        }
        other => panic!("refused expected, got {other:?}"),
    }

    assert!(api.all("drltasks").is_empty());
    assert_eq!(api.all("events").len(), cases.len() + 1);
    let requests = api.requests_with_query();
    assert!(
        !requests.iter().any(|r| r.contains("chain-id%3D1")),
        "the bad CID never reached a selector: {requests:?}"
    );
}

#[tokio::test]
async fn the_configmap_cursor_round_trips_and_a_reopened_stream_resumes_after_the_last_ack() {
    let (devnet, market, requester) = chain().await;
    let api = ApiServer::default();
    let client = api.client();

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
        let requests = api.requests_with_query();
        let apply = requests.iter().find(|r| r.starts_with("PATCH ")).unwrap();
        assert!(
            apply.starts_with("PATCH /api/v1/namespaces/drlaas-system/configmaps/drlaas-chain-cursor?"),
            "{apply}"
        );
        assert!(
            apply.contains("fieldManager=drlaas-operator") && apply.contains("force=true"),
            "{apply}"
        );
        let map = api.get("configmaps", "drlaas-system", CURSOR_CONFIGMAP).unwrap();
        let text = map["data"][CURSOR_KEY].as_str().unwrap().to_string();
        assert_eq!(serde_json::from_str::<Cursor>(&text).unwrap(), saved);
    }
    Api::<ConfigMap>::namespaced(client.clone(), "drlaas-system")
        .delete(CURSOR_CONFIGMAP, &Default::default())
        .await
        .unwrap();

    // A watcher handles the first task and acknowledges it, then stops.
    let store = scratch_store();
    let cid = put(&store, DOC).await;
    let first = post(&devnet, &market, requester, &cid, DOC_TARGET_MILLI).await;
    let ctx = context(market.clone(), store, &api);
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
        let admission = chain_mirror::admit(&ctx, &event).await.unwrap();
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
    let api = ApiServer::default();
    let ctx = Arc::new(Context {
        settings: Arc::new(Settings {
            confirmations: 1,
            ..(*settings()).clone()
        }),
        ..context(market.clone(), store, &api)
    });
    let watcher = tokio::spawn(chain_mirror::run(ctx.clone()));

    let id = post(&devnet, &market, requester, &cid, DOC_TARGET_MILLI).await;
    // One confirmation: the task is mirrored only once a block is built on top of its own.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(api.all("drltasks").is_empty(), "not confirmed yet");
    devnet.mine(1).await.unwrap();

    let name = format!("chain-{}-{id}", market.deployment().chain_id);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    // The mirrored task's name and the persisted cursor, once the task is there.
    let mirrored = || {
        let task = api.all("drltasks").into_iter().next()?;
        let map = api.get("configmaps", "drlaas-system", CURSOR_CONFIGMAP)?;
        let cursor: Cursor = serde_json::from_str(map["data"][CURSOR_KEY].as_str()?).unwrap();
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
    let acked = cursor.last_acked.expect("an acknowledged event").block;
    // The head it read before handing out the event had the confirmation on top of the event's block.
    let head = ctx.health.metrics.chain_head_block.get();
    assert!(head > i64::try_from(acked).unwrap(), "head {head}, acked {acked}");
    watcher.abort();
    let metrics = ctx.health.metrics.encode();
    assert!(
        !metrics.contains(r#"drlaas_reconcile_errors_total{controller="chain-mirror""#),
        "the watcher never had to restart: {metrics}"
    );
}

#[tokio::test]
async fn the_model_market_is_mirrored_as_drlmodels() {
    use drlaas_chain::alloy::primitives::{B256, U256};
    use drlaas_chain::{EnvKind, NewListing};

    let (devnet, market, buyer) = chain().await;
    let owner = devnet.accounts()[2];
    let listing = NewListing {
        model_cid: "bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy".into(),
        env_kind: EnvKind::MazeCleaning,
        env_descriptor_hash: B256::ZERO,
        price: U256::from(1_000u64),
        parent: None,
        royalty_bps: 500,
    };
    let (id, _) = market.list_model(owner, &listing).await.unwrap();
    let api = ApiServer::default();
    let ctx = context(market.clone(), scratch_store(), &api);
    let mut stream = EventStream::open(
        market.provider().clone(),
        *market.deployment(),
        stream_config(),
        MemoryCursor::default(),
    )
    .await
    .unwrap();
    let mut drain = async || {
        let mut mirrored = Vec::new();
        while let Some(event) = stream.try_next().await.unwrap() {
            if let Admission::ModelMirrored(name) = chain_mirror::admit(&ctx, &event).await.unwrap() {
                mirrored.push(name);
            }
            stream.ack(&event).await.unwrap();
        }
        mirrored
    };
    let name = format!("listing-{}-{id}", market.deployment().chain_id);
    assert_eq!(drain().await, std::slice::from_ref(&name));
    let model = api.get("drlmodels", "", &name).expect("the listing's DRLModel");
    assert_eq!(model["spec"]["modelCid"], listing.model_cid);
    assert_eq!(model["spec"]["environmentKind"], "maze-cleaning");
    assert_eq!(model["spec"]["owner"], owner.to_string());
    assert_eq!(model["spec"]["royaltyBps"], 500);
    assert_eq!(model["status"]["active"], true);
    assert_eq!(model["status"]["priceWei"], "1000");

    market.purchase(buyer, id).await.unwrap();
    market.rate(buyer, id, 4).await.unwrap();
    market.delist(owner, id).await.unwrap();
    assert_eq!(
        drain().await.len(),
        3,
        "bought, rated, delisted: each refreshes the listing"
    );
    let status = &api.get("drlmodels", "", &name).unwrap()["status"];
    assert_eq!(
        (status["purchases"].as_u64(), status["rating"].as_f64()),
        (Some(1), Some(4.0))
    );
    assert_eq!(status["active"], false);
}
