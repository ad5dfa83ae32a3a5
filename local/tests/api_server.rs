//! The in-memory API server, driven as the operator drives it: through a real `kube::Client`, kube's
//! `Api` and kube-runtime's watcher. Each test checks one rule of a real kube-apiserver.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::Duration;

use drlaas_local::api_server::{ApiServer, WATCH_HISTORY};
use futures::{Stream, StreamExt};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::Api;
use kube::api::{
    ApiResource, DeleteParams, DynamicObject, GroupVersionKind, ListParams, Patch, PatchParams, PostParams, WatchEvent,
    WatchParams,
};
use kube::runtime::watcher;
use serde_json::json;

/// A ConfigMap named `name` with `labels` and one data entry.
fn config_map(name: &str, labels: &[(&str, &str)], value: &str) -> ConfigMap {
    serde_json::from_value(json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": name,
            "labels": labels.iter().map(|(k, v)| (k.to_string(), json!(v))).collect::<serde_json::Map<_, _>>(),
        },
        "data": {"value": value},
    }))
    .unwrap()
}

fn config_maps(api: &ApiServer) -> Api<ConfigMap> {
    Api::namespaced(api.client(), "default")
}

/// A custom resource with a spec and a status, as the drlaas resources are.
fn widgets(api: &ApiServer) -> Api<DynamicObject> {
    let resource = ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk("example.com", "v1", "Widget"), "widgets");
    Api::namespaced_with(api.client(), "default", &resource)
}

fn widget(name: &str, size: i64) -> DynamicObject {
    serde_json::from_value(json!({
        "apiVersion": "example.com/v1",
        "kind": "Widget",
        "metadata": {"name": name},
        "spec": {"size": size},
    }))
    .unwrap()
}

fn version<K: kube::Resource>(object: &K) -> u64 {
    object.meta().resource_version.as_deref().unwrap().parse().unwrap()
}

fn names(objects: &[ConfigMap]) -> Vec<String> {
    objects.iter().map(|o| o.metadata.name.clone().unwrap()).collect()
}

/// The HTTP code of an API error.
fn code<T: std::fmt::Debug>(result: kube::Result<T>) -> u16 {
    match result {
        Err(kube::Error::Api(status)) => status.code,
        other => panic!("expected an API error, got {other:?}"),
    }
}

/// The next item of `stream`, or a panic after 10 seconds.
async fn next<S: Stream + Unpin>(stream: &mut S) -> Option<S::Item> {
    tokio::time::timeout(Duration::from_secs(10), stream.next())
        .await
        .expect("the stream answers within 10 s")
}

/// The next watch event, as (type, name, data value).
async fn event<S>(stream: &mut S) -> (String, String, String)
where
    S: Stream<Item = kube::Result<WatchEvent<ConfigMap>>> + Unpin,
{
    let (kind, object) = match next(stream).await.expect("an event").expect("a well-formed event") {
        WatchEvent::Added(o) => ("ADDED", o),
        WatchEvent::Modified(o) => ("MODIFIED", o),
        WatchEvent::Deleted(o) => ("DELETED", o),
        other => panic!("expected an object event, got {other:?}"),
    };
    let value = object
        .data
        .as_ref()
        .and_then(|d| d.get("value"))
        .cloned()
        .unwrap_or_default();
    (kind.to_string(), object.metadata.name.unwrap(), value)
}

fn ev(kind: &str, name: &str, value: &str) -> (String, String, String) {
    (kind.to_string(), name.to_string(), value.to_string())
}

/// Whether nothing more arrives on `stream` within half a second.
async fn quiet<S: Stream + Unpin>(stream: &mut S) -> bool {
    tokio::time::timeout(Duration::from_millis(500), stream.next())
        .await
        .is_err()
}

fn merge(value: serde_json::Value) -> Patch<serde_json::Value> {
    Patch::Merge(value)
}

#[tokio::test]
async fn objects_are_created_read_and_listed_by_label() {
    let server = ApiServer::default();
    let cms = config_maps(&server);
    let pp = PostParams::default();
    let created = cms.create(&pp, &config_map("a", &[("app", "x")], "1")).await.unwrap();
    cms.create(&pp, &config_map("b", &[("app", "y")], "2")).await.unwrap();
    cms.create(&pp, &config_map("c", &[], "3")).await.unwrap();
    let elsewhere: Api<ConfigMap> = Api::namespaced(server.client(), "other");
    elsewhere
        .create(&pp, &config_map("d", &[("app", "x")], "4"))
        .await
        .unwrap();

    // What the API server sets on a new object.
    assert!(created.metadata.uid.is_some());
    assert_eq!(created.metadata.namespace.as_deref(), Some("default"));
    assert_eq!(version(&created), 1);
    let read = cms.get("a").await.unwrap();
    assert_eq!(read.data.unwrap()["value"], "1");
    assert_eq!(read.metadata.uid, created.metadata.uid);

    let list = |selector: &str| {
        let cms = cms.clone();
        let params = ListParams::default().labels(selector);
        async move { names(&cms.list(&params).await.unwrap().items) }
    };
    assert_eq!(list("").await, ["a", "b", "c"]);
    assert_eq!(list("app=x").await, ["a"]);
    assert_eq!(list("app==y").await, ["b"]);
    assert_eq!(list("app").await, ["a", "b"]);
    assert_eq!(list("!app").await, ["c"]);
    assert_eq!(list("app!=x").await, ["b", "c"]);
    assert_eq!(list("app=x,other=z").await, Vec::<String>::new());
    let everywhere: Api<ConfigMap> = Api::all(server.client());
    let all = everywhere.list(&ListParams::default().labels("app=x")).await.unwrap();
    assert_eq!(names(&all.items), ["a", "d"]);
    // A list carries the resourceVersion of the last change, to watch from.
    assert_eq!(all.metadata.resource_version.as_deref(), Some("4"));
}

#[tokio::test]
async fn a_second_create_and_writes_from_a_stale_version_are_conflicts() {
    let server = ApiServer::default();
    let cms = config_maps(&server);
    let first = cms
        .create(&PostParams::default(), &config_map("a", &[], "1"))
        .await
        .unwrap();
    assert_eq!(
        code(cms.create(&PostParams::default(), &config_map("a", &[], "2")).await),
        409
    );

    // A replace from the version read: accepted, the resourceVersion moves.
    let mut fresh = first.clone();
    fresh.data = Some([("value".to_string(), "2".to_string())].into());
    let replaced = cms.replace("a", &PostParams::default(), &fresh).await.unwrap();
    assert!(version(&replaced) > version(&first));

    // The same replace again carries the old resourceVersion: refused, nothing changes.
    let mut stale = first.clone();
    stale.data = Some([("value".to_string(), "3".to_string())].into());
    assert_eq!(code(cms.replace("a", &PostParams::default(), &stale).await), 409);
    // A merge patch carrying a stale resourceVersion is a failed precondition as well.
    let patch =
        merge(json!({"metadata": {"resourceVersion": first.metadata.resource_version}, "data": {"value": "4"}}));
    assert_eq!(code(cms.patch("a", &PatchParams::default(), &patch).await), 409);
    let now = cms.get("a").await.unwrap();
    assert_eq!(now.data.as_ref().unwrap()["value"], "2");
    assert_eq!(version(&now), version(&replaced));

    // With the current resourceVersion the patch goes through.
    let patch =
        merge(json!({"metadata": {"resourceVersion": replaced.metadata.resource_version}, "data": {"value": "5"}}));
    let patched = cms.patch("a", &PatchParams::default(), &patch).await.unwrap();
    assert_eq!(patched.data.unwrap()["value"], "5");
}

#[tokio::test]
async fn a_missing_object_is_not_found() {
    let server = ApiServer::default();
    let cms = config_maps(&server);
    assert_eq!(code(cms.get("ghost").await), 404);
    assert_eq!(
        code(
            cms.replace("ghost", &PostParams::default(), &config_map("ghost", &[], "1"))
                .await
        ),
        404
    );
    assert_eq!(
        code(
            cms.patch("ghost", &PatchParams::default(), &merge(json!({"data": {}})))
                .await
        ),
        404
    );
    assert_eq!(code(cms.delete("ghost", &DeleteParams::default()).await), 404);
    assert!(cms.get_opt("ghost").await.unwrap().is_none());
}

#[tokio::test]
async fn server_side_apply_creates_a_missing_object_and_updates_it() {
    let server = ApiServer::default();
    let cms = config_maps(&server);
    let params = PatchParams::apply("tests");
    let applied = cms
        .patch("a", &params, &Patch::Apply(config_map("a", &[("app", "x")], "1")))
        .await
        .unwrap();
    assert!(applied.metadata.uid.is_some());
    assert_eq!(cms.get("a").await.unwrap().data.unwrap()["value"], "1");
    let again = cms
        .patch("a", &params, &Patch::Apply(config_map("a", &[("app", "x")], "2")))
        .await
        .unwrap();
    assert_eq!(again.metadata.uid, applied.metadata.uid);
    assert_eq!(cms.get("a").await.unwrap().data.unwrap()["value"], "2");
}

#[tokio::test]
async fn a_deletion_waits_for_the_finalizers() {
    let server = ApiServer::default();
    let cms = config_maps(&server);
    let mut held = config_map("a", &[], "1");
    held.metadata.finalizers = Some(vec!["example.com/keep".into()]);
    cms.create(&PostParams::default(), &held).await.unwrap();
    let mut watch = cms.watch(&WatchParams::default(), "0").await.unwrap().boxed();
    assert_eq!(event(&mut watch).await, ev("ADDED", "a", "1"));

    cms.delete("a", &DeleteParams::default()).await.unwrap();
    let deleting = cms.get("a").await.unwrap();
    assert!(deleting.metadata.deletion_timestamp.is_some());
    assert_eq!(deleting.metadata.deletion_grace_period_seconds, Some(0));
    assert_eq!(event(&mut watch).await, ev("MODIFIED", "a", "1"));
    // Deleting it again changes nothing.
    cms.delete("a", &DeleteParams::default()).await.unwrap();
    assert_eq!(version(&cms.get("a").await.unwrap()), version(&deleting));
    assert!(quiet(&mut watch).await);

    // Releasing the last finalizer deletes it.
    cms.patch(
        "a",
        &PatchParams::default(),
        &merge(json!({"metadata": {"finalizers": null}})),
    )
    .await
    .unwrap();
    assert_eq!(code(cms.get("a").await), 404);
    assert_eq!(event(&mut watch).await, ev("DELETED", "a", "1"));
}

#[tokio::test]
async fn the_generation_moves_with_the_spec_only() {
    let server = ApiServer::default();
    let widgets = widgets(&server);
    let generation = |w: &DynamicObject| w.metadata.generation.unwrap();
    let created = widgets.create(&PostParams::default(), &widget("w", 1)).await.unwrap();
    assert_eq!(generation(&created), 1);

    // Metadata and status do not move it, though the resourceVersion moves.
    let labelled = widgets
        .patch(
            "w",
            &PatchParams::default(),
            &merge(json!({"metadata": {"labels": {"a": "b"}}})),
        )
        .await
        .unwrap();
    assert_eq!(generation(&labelled), 1);
    assert!(version(&labelled) > version(&created));
    let with_status = widgets
        .patch_status("w", &PatchParams::default(), &merge(json!({"status": {"ready": true}})))
        .await
        .unwrap();
    assert_eq!(generation(&with_status), 1);
    assert_eq!(with_status.data["status"]["ready"], true);

    // The spec does, by a patch or a replace.
    let patched = widgets
        .patch("w", &PatchParams::default(), &merge(json!({"spec": {"size": 2}})))
        .await
        .unwrap();
    assert_eq!(generation(&patched), 2);
    let mut annotated = patched.clone();
    annotated.metadata.annotations = Some([("note".to_string(), "x".to_string())].into());
    let annotated = widgets.replace("w", &PostParams::default(), &annotated).await.unwrap();
    assert_eq!(generation(&annotated), 2);
    let mut resized = annotated.clone();
    resized.data["spec"]["size"] = json!(3);
    let resized = widgets.replace("w", &PostParams::default(), &resized).await.unwrap();
    assert_eq!(generation(&resized), 3);

    // A patch that changes nothing is no write at all.
    let same = widgets
        .patch("w", &PatchParams::default(), &merge(json!({"spec": {"size": 3}})))
        .await
        .unwrap();
    assert_eq!(version(&same), version(&resized));
    assert_eq!(generation(&same), 3);

    // A deletion that waits for a finalizer moves it once: the controllers have work to do.
    let held = merge(json!({"metadata": {"finalizers": ["example.com/keep"]}}));
    assert_eq!(
        generation(&widgets.patch("w", &PatchParams::default(), &held).await.unwrap()),
        3
    );
    widgets.delete("w", &DeleteParams::default()).await.unwrap();
    assert_eq!(generation(&widgets.get("w").await.unwrap()), 4);
    widgets.delete("w", &DeleteParams::default()).await.unwrap();
    assert_eq!(generation(&widgets.get("w").await.unwrap()), 4);
}

#[tokio::test]
async fn a_watch_replays_every_change_after_its_resource_version_then_follows() {
    let server = ApiServer::default();
    let cms = config_maps(&server);
    let pp = PostParams::default();
    let a = cms.create(&pp, &config_map("a", &[], "1")).await.unwrap();
    cms.patch("a", &PatchParams::default(), &merge(json!({"data": {"value": "2"}})))
        .await
        .unwrap();
    cms.create(&pp, &config_map("b", &[], "3")).await.unwrap();
    let deleted = cms.delete("a", &DeleteParams::default()).await.unwrap().left().unwrap();
    // Another namespace's changes are not this watch's.
    let elsewhere: Api<ConfigMap> = Api::namespaced(server.client(), "other");
    elsewhere.create(&pp, &config_map("z", &[], "9")).await.unwrap();

    let from = a.metadata.resource_version.clone().unwrap();
    let mut watch = cms.watch(&WatchParams::default(), &from).await.unwrap().boxed();
    assert_eq!(event(&mut watch).await, ev("MODIFIED", "a", "2"));
    assert_eq!(event(&mut watch).await, ev("ADDED", "b", "3"));
    assert_eq!(event(&mut watch).await, ev("DELETED", "a", "2"));
    cms.create(&pp, &config_map("c", &[], "4")).await.unwrap();
    assert_eq!(event(&mut watch).await, ev("ADDED", "c", "4"));
    assert!(quiet(&mut watch).await);

    // The DELETED object carries the resourceVersion of its deletion, so a watch resumed from it
    // starts after the deletion.
    assert_eq!(version(&deleted), 4);
    let mut resumed = cms.watch(&WatchParams::default(), "4").await.unwrap().boxed();
    assert_eq!(event(&mut resumed).await, ev("ADDED", "c", "4"));
}

#[tokio::test]
async fn a_watch_without_a_resource_version_starts_from_the_objects_there() {
    let server = ApiServer::default();
    let cms = config_maps(&server);
    let pp = PostParams::default();
    cms.create(&pp, &config_map("a", &[("app", "x")], "1")).await.unwrap();
    cms.patch("a", &PatchParams::default(), &merge(json!({"data": {"value": "2"}})))
        .await
        .unwrap();
    cms.create(&pp, &config_map("b", &[("app", "x")], "3")).await.unwrap();
    cms.delete("b", &DeleteParams::default()).await.unwrap();
    cms.create(&pp, &config_map("c", &[("app", "y")], "4")).await.unwrap();

    for from in ["0", ""] {
        let mut watch = cms
            .watch(&WatchParams::default().labels("app=x"), from)
            .await
            .unwrap()
            .boxed();
        // One ADDED per object there (as it is now), none of the history.
        assert_eq!(event(&mut watch).await, ev("ADDED", "a", "2"));
        assert!(quiet(&mut watch).await, "from {from:?}");
    }
    let mut watch = cms.watch(&WatchParams::default(), "0").await.unwrap().boxed();
    assert_eq!(event(&mut watch).await, ev("ADDED", "a", "2"));
    assert_eq!(event(&mut watch).await, ev("ADDED", "c", "4"));
    cms.create(&pp, &config_map("d", &[], "5")).await.unwrap();
    assert_eq!(event(&mut watch).await, ev("ADDED", "d", "5"));
}

#[tokio::test]
async fn a_label_selected_watch_sees_objects_enter_and_leave_the_selection() {
    let server = ApiServer::default();
    let cms = config_maps(&server);
    cms.create(&PostParams::default(), &config_map("a", &[("app", "x")], "1"))
        .await
        .unwrap();
    let mut watch = cms
        .watch(&WatchParams::default().labels("app=x"), "0")
        .await
        .unwrap()
        .boxed();
    assert_eq!(event(&mut watch).await, ev("ADDED", "a", "1"));
    let relabel =
        |app: &str, value: &str| merge(json!({"metadata": {"labels": {"app": app}}, "data": {"value": value}}));
    cms.patch("a", &PatchParams::default(), &relabel("y", "2"))
        .await
        .unwrap();
    // It leaves as it was, with the resourceVersion of the change.
    assert_eq!(event(&mut watch).await, ev("DELETED", "a", "1"));
    cms.patch("a", &PatchParams::default(), &relabel("y", "3"))
        .await
        .unwrap();
    cms.patch("a", &PatchParams::default(), &relabel("x", "4"))
        .await
        .unwrap();
    assert_eq!(event(&mut watch).await, ev("ADDED", "a", "4"));
    cms.patch("a", &PatchParams::default(), &relabel("x", "5"))
        .await
        .unwrap();
    assert_eq!(event(&mut watch).await, ev("MODIFIED", "a", "5"));
}

#[tokio::test]
async fn the_history_is_bounded_and_a_watch_from_before_it_is_gone() {
    assert_eq!(WATCH_HISTORY, 10_000);
    let server = ApiServer::with_history(3);
    let cms = config_maps(&server);
    for i in 1..=6 {
        cms.create(
            &PostParams::default(),
            &config_map(&format!("cm-{i}"), &[], &i.to_string()),
        )
        .await
        .unwrap();
    }
    // Changes 4, 5 and 6 are kept: a watch can start from 3 or later.
    let mut watch = cms.watch(&WatchParams::default(), "3").await.unwrap().boxed();
    for i in 4..=6 {
        assert_eq!(event(&mut watch).await, ev("ADDED", &format!("cm-{i}"), &i.to_string()));
    }
    // From 2, change 3 is missing: one ERROR event with 410 Expired, then the end.
    let mut gone = cms.watch(&WatchParams::default(), "2").await.unwrap().boxed();
    match next(&mut gone).await {
        Some(Ok(WatchEvent::Error(status))) => {
            assert_eq!(status.code, 410);
            assert_eq!(status.reason, "Expired");
            assert_eq!(status.message, "too old resource version: 2 (3)");
        }
        other => panic!("expected a 410 ERROR event, got {other:?}"),
    }
    assert!(next(&mut gone).await.is_none(), "the stream ends after the ERROR event");

    // On the wire: HTTP 200 and the very event a real API server sends.
    let request = http::Request::get("/api/v1/namespaces/default/configmaps?watch=true&resourceVersion=1")
        .body(Vec::new())
        .unwrap();
    let text = server.client().request_text(request).await.unwrap();
    let line: serde_json::Value = serde_json::from_str(text.trim()).unwrap();
    assert_eq!(
        line,
        json!({"type": "ERROR", "object": {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
               "reason": "Expired", "code": 410, "message": "too old resource version: 1 (3)"}})
    );
    // A resourceVersion that is no number is refused.
    assert_eq!(code(cms.watch(&WatchParams::default(), "abc").await.map(|_| ())), 422);
}

#[tokio::test]
async fn a_watcher_that_falls_behind_has_its_watch_ended() {
    let server = ApiServer::with_history(4);
    let cms = config_maps(&server);
    let mut watch = cms.watch(&WatchParams::default(), "0").await.unwrap().boxed();
    // Not read while 20 changes happen: more than the history.
    for i in 0..20 {
        cms.create(&PostParams::default(), &config_map(&format!("cm-{i}"), &[], "1"))
            .await
            .unwrap();
    }
    let mut seen = 0;
    while let Some(event) = next(&mut watch).await {
        event.unwrap();
        seen += 1;
    }
    assert!(seen < 20, "a watch that fell behind ended, after {seen} events");
    // Resuming from where it started is too old now.
    let mut resumed = cms.watch(&WatchParams::default(), "1").await.unwrap().boxed();
    assert!(matches!(next(&mut resumed).await, Some(Ok(WatchEvent::Error(s))) if s.code == 410));
}

#[tokio::test]
async fn a_watch_ends_after_its_timeout() {
    let server = ApiServer::default();
    let cms = config_maps(&server);
    let started = std::time::Instant::now();
    let mut watch = cms
        .watch(&WatchParams::default().timeout(1), "0")
        .await
        .unwrap()
        .boxed();
    assert!(next(&mut watch).await.is_none());
    assert!(started.elapsed() >= Duration::from_millis(900));
}

/// What a watcher has: the objects it was told of, by name, with their data value.
#[derive(Default)]
struct Seen {
    objects: std::collections::BTreeMap<String, String>,
    listing: Option<std::collections::BTreeMap<String, String>>,
}

impl Seen {
    fn apply(&mut self, event: watcher::Event<ConfigMap>) {
        let entry = |o: &ConfigMap| {
            let value = o
                .data
                .as_ref()
                .and_then(|d| d.get("value"))
                .cloned()
                .unwrap_or_default();
            (o.metadata.name.clone().unwrap(), value)
        };
        match event {
            watcher::Event::Apply(o) => {
                let (k, v) = entry(&o);
                self.objects.insert(k, v);
            }
            watcher::Event::Delete(o) => {
                self.objects.remove(&entry(&o).0);
            }
            watcher::Event::Init => self.listing = Some(Default::default()),
            watcher::Event::InitApply(o) => {
                let (k, v) = entry(&o);
                self.listing.as_mut().unwrap().insert(k, v);
            }
            watcher::Event::InitDone => self.objects = self.listing.take().unwrap(),
        }
    }

    fn names(&self) -> BTreeSet<&str> {
        self.objects.keys().map(String::as_str).collect()
    }
}

#[tokio::test]
async fn kube_runtimes_watcher_lists_again_when_its_resource_version_is_gone() {
    let server = ApiServer::with_history(4);
    let cms = config_maps(&server);
    let pp = PostParams::default();
    for name in ["a", "b"] {
        cms.create(&pp, &config_map(name, &[("app", "watched")], "1"))
            .await
            .unwrap();
    }
    // The operator's watches, with the server ending each after a second.
    let config = watcher::Config::default().labels("app=watched").timeout(1);
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let watched = cms.clone();
    let task = tokio::spawn(async move {
        let mut events = std::pin::pin!(kube::runtime::WatchStreamExt::default_backoff(watcher(watched, config)));
        while let Some(event) = events.next().await {
            if tx.send(event).is_err() {
                break;
            }
        }
    });
    let mut seen = Seen::default();
    let mut errors = Vec::new();
    // Reads events until `done` holds of the last one.
    let mut until =
        async |seen: &mut Seen, errors: &mut Vec<watcher::Error>, done: &dyn Fn(&Result<(), String>) -> bool| {
            loop {
                let event = tokio::time::timeout(Duration::from_secs(15), rx.recv())
                    .await
                    .expect("the watcher goes on")
                    .expect("the watcher runs");
                let outcome = match event {
                    Ok(event) => {
                        let init_done = matches!(event, watcher::Event::InitDone);
                        seen.apply(event);
                        if init_done { Ok(()) } else { Err(String::new()) }
                    }
                    Err(e) => {
                        let text = e.to_string();
                        errors.push(e);
                        Err(text)
                    }
                };
                if done(&outcome) {
                    return;
                }
            }
        };
    until(&mut seen, &mut errors, &|o| o.is_ok()).await;
    assert_eq!(seen.names(), BTreeSet::from(["a", "b"]));
    assert!(errors.is_empty(), "{errors:?}");

    // The watch is ended (its timeout) and cannot start again while the API server fails.
    server.fail("GET /api/v1/namespaces/default/configmaps");
    until(&mut seen, &mut errors, &|o| {
        o.as_ref().is_err_and(|e| e.starts_with("failed to start watching"))
    })
    .await;
    // Meanwhile more changes than the history keeps, and two the watcher must learn of.
    for i in 0..6 {
        cms.create(&pp, &config_map(&format!("other-{i}"), &[], "1"))
            .await
            .unwrap();
    }
    cms.create(&pp, &config_map("c", &[("app", "watched")], "1"))
        .await
        .unwrap();
    cms.delete("a", &DeleteParams::default()).await.unwrap();
    server.heal();

    // It resumes from the resourceVersion it had, is told 410, lists again and has every object.
    until(&mut seen, &mut errors, &|o| o.is_ok()).await;
    let expired = errors
        .iter()
        .filter(|e| matches!(e, watcher::Error::WatchError(status) if status.code == 410))
        .count();
    assert_eq!(expired, 1, "{errors:?}");
    assert_eq!(seen.names(), BTreeSet::from(["b", "c"]));
    // And it follows the changes from there.
    cms.create(&pp, &config_map("d", &[("app", "watched")], "1"))
        .await
        .unwrap();
    loop {
        let event = tokio::time::timeout(Duration::from_secs(15), rx.recv())
            .await
            .unwrap()
            .unwrap();
        if let Ok(event) = event {
            seen.apply(event);
        }
        if seen.names().contains("d") {
            break;
        }
    }
    assert_eq!(seen.names(), BTreeSet::from(["b", "c", "d"]));
    task.abort();
}

/// A fresh path for a journal under the target directory's scratch space.
fn scratch_journal(what: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("api-server-{what}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir.join("api.jsonl")
}

#[tokio::test]
async fn the_journal_survives_a_reopen_and_the_history_does_not() {
    let path = scratch_journal("reopen");
    let last = {
        let server = ApiServer::open(&path).unwrap();
        let cms = config_maps(&server);
        let pp = PostParams::default();
        cms.create(&pp, &config_map("a", &[], "1")).await.unwrap();
        cms.create(&pp, &config_map("b", &[], "2")).await.unwrap();
        cms.patch("a", &PatchParams::default(), &merge(json!({"data": {"value": "3"}})))
            .await
            .unwrap();
        cms.delete("b", &DeleteParams::default()).await.unwrap();
        cms.list(&ListParams::default())
            .await
            .unwrap()
            .metadata
            .resource_version
            .unwrap()
    };
    assert_eq!(last, "4");
    // A process killed in the middle of a write leaves half a line.
    use std::io::Write;
    let mut file = std::fs::OpenOptions::new().append(true).open(&path).unwrap();
    file.write_all(b"{\"version\": 5, \"ty").unwrap();
    drop(file);

    let server = ApiServer::open(&path).unwrap();
    let cms = config_maps(&server);
    let list = cms.list(&ListParams::default()).await.unwrap();
    assert_eq!(names(&list.items), ["a"]);
    assert_eq!(list.items[0].data.as_ref().unwrap()["value"], "3");
    assert_eq!(list.metadata.resource_version.as_deref(), Some("4"));
    // A reader beside it sees the same.
    assert_eq!(ApiServer::read(&path).unwrap().all("configmaps").len(), 1);

    // The history of the earlier run is gone: a watch from before the reopening is told 410.
    let mut old = cms.watch(&WatchParams::default(), "2").await.unwrap().boxed();
    match next(&mut old).await {
        Some(Ok(WatchEvent::Error(status))) => {
            assert_eq!(status.code, 410);
            assert_eq!(status.message, "too old resource version: 2 (4)");
        }
        other => panic!("expected a 410 ERROR event, got {other:?}"),
    }
    // From the reopening on, watches replay as before.
    let mut watch = cms.watch(&WatchParams::default(), "4").await.unwrap().boxed();
    let c = cms
        .create(&PostParams::default(), &config_map("c", &[], "5"))
        .await
        .unwrap();
    assert_eq!(version(&c), 5);
    assert_eq!(event(&mut watch).await, ev("ADDED", "c", "5"));
    drop(watch);
    drop(server);

    let reopened = ApiServer::open(&path).unwrap();
    let names: Vec<String> = reopened
        .all("configmaps")
        .iter()
        .map(|o| o["metadata"]["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(names, ["a", "c"]);
}

#[tokio::test]
async fn streaming_lists_are_refused_as_by_a_server_without_them() {
    let server = ApiServer::default();
    let cms = config_maps(&server);
    let config = watcher::Config::default().streaming_lists();
    let mut events = watcher(cms, config).boxed();
    match next(&mut events).await {
        Some(Err(watcher::Error::WatchStartFailed(kube::Error::Api(status)))) => assert_eq!(status.code, 422),
        other => panic!("expected a refused watch, got {other:?}"),
    }
}
