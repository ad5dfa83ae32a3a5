//! The local mode's API server: an in-process Kubernetes API that serves the calls the operator
//! makes (get, list by label, watch, create, replace, JSON / merge / apply patches, delete, pod
//! logs) on a map of JSON objects, with the rules of a real API server that the controllers rely
//! on: `409` on a second create or a stale replace, `404` on a missing object, server-side apply
//! that creates a missing object, deletion that waits for finalizers, a generation that moves with
//! the spec, and watches that replay every change after the resourceVersion they start from.
//!
//! [`ApiServer::open`] keeps every change in a journal file (one JSON line each, appended before
//! the request is answered), so a local run killed at any point restarts with every object it had:
//! the operator's write-ahead records survive as they do in etcd. The controller tests use it
//! in memory ([`ApiServer::default`]), reading and changing objects between reconciles.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::io::{BufRead, Write};
use std::path::Path;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use futures::stream::{self, BoxStream, StreamExt};
use http::{Method, Request, Response, StatusCode};
use http_body_util::StreamBody;
use hyper::body::Frame;
use kube::client::Body;
use serde_json::{Value, json};
use tokio::sync::broadcast;

use super::admission::admit;

type Key = (String, String, String); // (resource, namespace, name)

/// A response body: whole, or a watch's endless stream of events.
pub type ApiBody = StreamBody<BoxStream<'static, Result<Frame<Bytes>, Infallible>>>;

/// One change: its resourceVersion, `ADDED` / `MODIFIED` / `DELETED`, which object, and the object.
type Change = Arc<(u64, &'static str, Key, Value)>;

#[derive(Debug)]
struct State {
    objects: BTreeMap<Key, Value>,
    logs: BTreeMap<(String, String), String>,
    /// Every request served, as `METHOD path?query` (no `?` without a query), when recorded.
    requests: Vec<String>,
    record_requests: bool,
    /// Where every change is appended, when the objects outlive the process.
    journal: Option<std::fs::File>,
    version: u64,
    /// Requests (`METHOD path` prefixes) answered with a 500 instead of being served.
    failing: Vec<String>,
    /// Every change, for watches that start from an older resourceVersion.
    changes: Vec<Change>,
}

impl Default for State {
    fn default() -> Self {
        State {
            objects: BTreeMap::new(),
            logs: BTreeMap::new(),
            requests: Vec::new(),
            record_requests: true,
            journal: None,
            version: 0,
            failing: Vec::new(),
            changes: Vec::new(),
        }
    }
}

/// One line of the journal.
#[derive(serde::Serialize, serde::Deserialize)]
struct Entry {
    version: u64,
    #[serde(rename = "type")]
    kind: String,
    key: Key,
    object: Value,
}

impl State {
    /// Appends `change` to the journal. A journal that cannot be written stops the process: an API
    /// server that acknowledged a write it did not keep would break every promise above it.
    fn journal(&mut self, change: &Change) {
        if let Some(file) = &mut self.journal {
            let entry = Entry {
                version: change.0,
                kind: change.1.to_string(),
                key: change.2.clone(),
                object: change.3.clone(),
            };
            let mut line = serde_json::to_vec(&entry).expect("an object serializes");
            line.push(b'\n');
            if let Err(e) = file.write_all(&line) {
                panic!("the local API server cannot write its journal: {e}");
            }
        }
    }

    /// Records a change of `key` (bumping the resourceVersion) and tells the watches.
    fn changed(&mut self, kind: &'static str, key: &Key, tx: &broadcast::Sender<Change>) {
        self.version += 1;
        let version = self.version;
        let object = match self.objects.get_mut(key) {
            Some(object) => {
                object["metadata"]["resourceVersion"] = json!(version.to_string());
                object.clone()
            }
            None => return,
        };
        let change: Change = Arc::new((version, kind, key.clone(), object));
        self.journal(&change);
        self.changes.push(change.clone());
        let _ = tx.send(change);
    }

    /// Stores a new `object` under `key` as the API server creates one (uid, generation, creation
    /// time, namespace), telling the watches; returns it.
    fn created(&mut self, key: Key, mut object: Value, tx: &broadcast::Sender<Change>) -> Value {
        let uid = format!("00000000-0000-4000-8000-{:012}", self.version + 1);
        let metadata = object["metadata"].as_object_mut().unwrap();
        metadata.insert("uid".into(), json!(uid));
        metadata.insert("generation".into(), json!(1));
        metadata.insert("creationTimestamp".into(), json!(now()));
        if !key.1.is_empty() {
            metadata.insert("namespace".into(), json!(key.1));
        }
        self.objects.insert(key.clone(), object);
        self.changed("ADDED", &key, tx);
        self.objects[&key].clone()
    }

    /// Removes `key`, telling the watches.
    fn removed(&mut self, key: &Key, tx: &broadcast::Sender<Change>) -> Option<Value> {
        let object = self.objects.remove(key)?;
        self.version += 1;
        let change: Change = Arc::new((self.version, "DELETED", key.clone(), object.clone()));
        self.journal(&change);
        self.changes.push(change.clone());
        let _ = tx.send(change);
        Some(object)
    }
}

/// The objects a journal holds and its last resourceVersion (a line cut short by a kill ends it).
fn replay(path: &Path) -> std::io::Result<(BTreeMap<Key, Value>, u64)> {
    let mut objects = BTreeMap::new();
    let mut version = 0;
    match std::fs::File::open(path) {
        Ok(file) => {
            for line in std::io::BufReader::new(file).lines() {
                let line = line?;
                let Ok(entry) = serde_json::from_str::<Entry>(&line) else {
                    break; // the last write of a killed process
                };
                version = version.max(entry.version);
                if entry.kind == "DELETED" {
                    objects.remove(&entry.key);
                } else {
                    objects.insert(entry.key, entry.object);
                }
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    Ok((objects, version))
}

/// The time as the API server writes it.
fn now() -> String {
    k8s_openapi::jiff::Timestamp::now()
        .round(k8s_openapi::jiff::Unit::Second)
        .unwrap_or_default()
        .to_string()
}

/// The API server: clone it freely, every clone sees the same objects.
#[derive(Debug, Clone)]
pub struct ApiServer {
    state: Arc<Mutex<State>>,
    watchers: broadcast::Sender<Change>,
}

impl Default for ApiServer {
    /// An empty API server whose objects live in memory only.
    fn default() -> Self {
        ApiServer {
            state: Arc::default(),
            watchers: broadcast::channel(65_536).0,
        }
    }
}

/// A request's path, taken apart.
struct Target {
    resource: String,
    namespace: String,
    name: Option<String>,
    subresource: Option<String>,
    query: BTreeMap<String, String>,
}

fn parse(uri: &http::Uri) -> Target {
    let segments: Vec<&str> = uri.path().trim_matches('/').split('/').collect();
    let rest = match segments.first() {
        Some(&"api") => &segments[2..],
        _ => &segments[3..],
    };
    let (namespace, rest) = match rest {
        ["namespaces", ns, rest @ ..] if !rest.is_empty() => (ns.to_string(), rest),
        _ => (String::new(), rest),
    };
    let query = uri
        .query()
        .unwrap_or_default()
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_string(), decode(v)))
        .collect();
    Target {
        resource: rest[0].to_string(),
        namespace,
        name: rest.get(1).map(|s| s.to_string()),
        subresource: rest.get(2).map(|s| s.to_string()),
        query,
    }
}

fn decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap();
            out.push(u8::from_str_radix(hex, 16).unwrap());
            i += 3;
        } else {
            out.push(if bytes[i] == b'+' { b' ' } else { bytes[i] });
            i += 1;
        }
    }
    String::from_utf8(out).unwrap()
}

fn matches_labels(object: &Value, selector: Option<&String>) -> bool {
    let Some(selector) = selector.filter(|s| !s.is_empty()) else {
        return true;
    };
    selector.split(',').all(|term| {
        let labels = &object["metadata"]["labels"];
        match term.split_once('=') {
            Some((k, v)) => labels[k].as_str() == Some(v),
            None => !labels[term].is_null(),
        }
    })
}

fn whole(bytes: Vec<u8>) -> ApiBody {
    StreamBody::new(stream::once(async move { Ok(Frame::data(Bytes::from(bytes))) }).boxed())
}

fn status(code: StatusCode, reason: &str, message: String) -> Response<ApiBody> {
    let body = json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "message": message,
                      "reason": reason, "code": code.as_u16()});
    Response::builder()
        .status(code)
        .body(whole(serde_json::to_vec(&body).unwrap()))
        .unwrap()
}

fn bad_request() -> Response<ApiBody> {
    status(
        StatusCode::BAD_REQUEST,
        "BadRequest",
        "the request body is not the JSON expected".into(),
    )
}

fn ok(body: &Value) -> Response<ApiBody> {
    Response::builder()
        .body(whole(serde_json::to_vec(body).unwrap()))
        .unwrap()
}

impl ApiServer {
    /// An API server whose objects are kept in the journal at `path`: the objects of an earlier
    /// run are read back (a line cut short by a kill is ignored), the journal is compacted to one
    /// line per object, and every change is appended from then on.
    pub fn open(path: &Path) -> std::io::Result<ApiServer> {
        let (objects, version) = replay(path)?;
        let compacted = path.with_extension("compacting");
        {
            let mut out = std::io::BufWriter::new(std::fs::File::create(&compacted)?);
            for (key, object) in &objects {
                let version = object["metadata"]["resourceVersion"]
                    .as_str()
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(version);
                let entry = Entry {
                    version,
                    kind: "ADDED".into(),
                    key: key.clone(),
                    object: object.clone(),
                };
                serde_json::to_writer(&mut out, &entry).map_err(std::io::Error::other)?;
                out.write_all(b"\n")?;
            }
            out.into_inner().map_err(|e| e.into_error())?.sync_all()?;
        }
        std::fs::rename(&compacted, path)?;
        let journal = std::fs::OpenOptions::new().append(true).open(path)?;
        let api = ApiServer::default();
        {
            let mut state = api.state.lock().unwrap();
            state.objects = objects;
            state.version = version;
            state.journal = Some(journal);
            state.record_requests = false;
        }
        Ok(api)
    }

    /// The objects of the journal at `path` as they were last written, in memory: a reader beside
    /// the run that owns the journal (nothing is written to it).
    pub fn read(path: &Path) -> std::io::Result<ApiServer> {
        let (objects, version) = replay(path)?;
        let api = ApiServer::default();
        {
            let mut state = api.state.lock().unwrap();
            state.objects = objects;
            state.version = version;
            state.record_requests = false;
        }
        Ok(api)
    }

    /// A client whose requests this server answers, in process.
    pub fn client(&self) -> kube::Client {
        let api = self.clone();
        let service = tower::service_fn(move |request: Request<Body>| {
            let api = api.clone();
            async move { Ok::<_, Infallible>(api.serve(request).await) }
        });
        kube::Client::new(service, "default")
    }

    /// Stores `object` as if created by a user (uid, generation and resourceVersion set).
    pub fn insert(&self, resource: &str, mut object: Value) {
        let mut state = self.state.lock().unwrap();
        let metadata = object["metadata"].as_object_mut().expect("an object has metadata");
        let name = metadata["name"].as_str().unwrap().to_string();
        let namespace = metadata
            .get("namespace")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let uid = format!("00000000-0000-4000-8000-{:012}", state.version + 1);
        metadata.entry("uid").or_insert_with(|| json!(uid));
        metadata.entry("generation").or_insert(json!(1));
        metadata.entry("creationTimestamp").or_insert(json!(now()));
        let key = (resource.to_string(), namespace, name);
        state.objects.insert(key.clone(), object);
        state.changed("ADDED", &key, &self.watchers);
    }

    /// The object, if it exists.
    pub fn get(&self, resource: &str, namespace: &str, name: &str) -> Option<Value> {
        let state = self.state.lock().unwrap();
        state
            .objects
            .get(&(resource.into(), namespace.into(), name.into()))
            .cloned()
    }

    /// Every object of `resource`, in name order.
    pub fn all(&self, resource: &str) -> Vec<Value> {
        let state = self.state.lock().unwrap();
        state
            .objects
            .iter()
            .filter(|((r, _, _), _)| r == resource)
            .map(|(_, v)| v.clone())
            .collect()
    }

    /// Changes an object in place (playing another actor: the kubelet, a user).
    pub fn update(&self, resource: &str, namespace: &str, name: &str, change: impl FnOnce(&mut Value)) {
        let mut state = self.state.lock().unwrap();
        let key = (resource.to_string(), namespace.to_string(), name.to_string());
        let object = state
            .objects
            .get_mut(&key)
            .unwrap_or_else(|| panic!("{resource} {namespace}/{name} exists"));
        change(object);
        let released = object["metadata"]["deletionTimestamp"].is_string()
            && object["metadata"]["finalizers"].as_array().is_none_or(|f| f.is_empty());
        if released {
            state.removed(&key, &self.watchers);
        } else {
            state.changed("MODIFIED", &key, &self.watchers);
        }
    }

    /// What `GET pods/NAME/log` answers for this pod.
    pub fn set_log(&self, namespace: &str, pod: &str, text: String) {
        self.state
            .lock()
            .unwrap()
            .logs
            .insert((namespace.into(), pod.into()), text);
    }

    /// Answer every request whose `METHOD path` starts with `prefix` with a 500 (an API server that
    /// fails at the worst moment), until [`FakeApi::heal`].
    pub fn fail(&self, prefix: &str) {
        self.state.lock().unwrap().failing.push(prefix.into());
    }

    /// Serve every request again.
    pub fn heal(&self) {
        self.state.lock().unwrap().failing.clear();
    }

    /// Every request served so far, as `METHOD path`.
    pub fn requests(&self) -> Vec<String> {
        let state = self.state.lock().unwrap();
        state
            .requests
            .iter()
            .map(|r| r.split_once('?').map_or(r.as_str(), |(line, _)| line).to_string())
            .collect()
    }

    /// Every request served so far, as `METHOD path?query` (to check parameters such as
    /// `fieldManager` or a label selector).
    pub fn requests_with_query(&self) -> Vec<String> {
        self.state.lock().unwrap().requests.clone()
    }

    /// Requests served whose line starts with `prefix` (e.g. `POST /api/v1/namespaces/team-a/pods`).
    pub fn count(&self, prefix: &str) -> usize {
        self.requests().iter().filter(|r| r.starts_with(prefix)).count()
    }

    async fn serve(&self, request: Request<Body>) -> Response<ApiBody> {
        let (parts, body) = request.into_parts();
        let bytes = body.collect_bytes().await.unwrap_or_default();
        let target = parse(&parts.uri);
        let tx = &self.watchers;
        let mut state = self.state.lock().unwrap();
        let line = format!("{} {}", parts.method, parts.uri.path());
        if state.failing.iter().any(|p| line.starts_with(p.as_str())) {
            return status(
                StatusCode::INTERNAL_SERVER_ERROR,
                "InternalError",
                format!("injected failure of {line}"),
            );
        }
        if state.record_requests {
            state.requests.push(match parts.uri.query() {
                Some(query) => format!("{line}?{query}"),
                None => line,
            });
        }
        let key = (
            target.resource.clone(),
            target.namespace.clone(),
            target.name.clone().unwrap_or_default(),
        );
        let not_found = |name: &str| {
            status(
                StatusCode::NOT_FOUND,
                "NotFound",
                format!("{} \"{name}\" not found", target.resource),
            )
        };
        let content_type = parts
            .headers
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        let selected = |key: &Key, object: &Value| {
            key.0 == target.resource
                && (target.namespace.is_empty() || key.1 == target.namespace)
                && matches_labels(object, target.query.get("labelSelector"))
        };
        match (&parts.method, &target.name, target.subresource.as_deref()) {
            (&Method::GET, None, _) if target.query.get("watch").is_some_and(|w| w == "true" || w == "1") => {
                let since: u64 = target
                    .query
                    .get("resourceVersion")
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0);
                let replay: Vec<Change> = state
                    .changes
                    .iter()
                    .filter(|c| c.0 > since && selected(&c.2, &c.3))
                    .cloned()
                    .collect();
                let live =
                    tokio_stream::wrappers::BroadcastStream::new(tx.subscribe()).filter_map(|c| async move { c.ok() });
                let (resource, namespace, selector) = (
                    target.resource.clone(),
                    target.namespace.clone(),
                    target.query.get("labelSelector").cloned(),
                );
                let events = stream::iter(replay)
                    .chain(live)
                    .filter(move |c| {
                        let keep = c.0 > since
                            && c.2.0 == resource
                            && (namespace.is_empty() || c.2.1 == namespace)
                            && matches_labels(&c.3, selector.as_ref());
                        async move { keep }
                    })
                    .map(|c| {
                        let mut line = serde_json::to_vec(&json!({"type": c.1, "object": c.3})).unwrap();
                        line.push(b'\n');
                        Ok(Frame::data(Bytes::from(line)))
                    });
                Response::builder().body(StreamBody::new(events.boxed())).unwrap()
            }
            (&Method::GET, None, _) => {
                let items: Vec<Value> = state
                    .objects
                    .iter()
                    .filter(|(k, v)| selected(k, v))
                    .map(|(_, v)| v.clone())
                    .collect();
                ok(&json!({"apiVersion": "v1", "kind": "List",
                           "metadata": {"resourceVersion": state.version.to_string()}, "items": items}))
            }
            (&Method::GET, Some(name), Some("log")) => {
                let text = state
                    .logs
                    .get(&(target.namespace.clone(), name.clone()))
                    .cloned()
                    .unwrap_or_default();
                Response::builder().body(whole(text.into_bytes())).unwrap()
            }
            (&Method::GET, Some(name), _) => match state.objects.get(&key) {
                Some(object) => ok(object),
                None => not_found(name),
            },
            (&Method::POST, None, _) => {
                let Ok(object) = serde_json::from_slice::<Value>(&bytes) else {
                    return bad_request();
                };
                let name = object["metadata"]["name"].as_str().unwrap_or_default().to_string();
                let key = (target.resource.clone(), target.namespace.clone(), name.clone());
                if state.objects.contains_key(&key) {
                    return status(
                        StatusCode::CONFLICT,
                        "AlreadyExists",
                        format!("{} \"{name}\" already exists", target.resource),
                    );
                }
                let mut object = object;
                if let Err(message) = admit(&target.resource, &name, None, &mut object) {
                    return status(StatusCode::UNPROCESSABLE_ENTITY, "Invalid", message);
                }
                ok(&state.created(key, object, tx))
            }
            (&Method::PUT, Some(name), _) => {
                let Ok(mut object) = serde_json::from_slice::<Value>(&bytes) else {
                    return bad_request();
                };
                let Some(current) = state.objects.get(&key) else {
                    return not_found(name);
                };
                let expected = object["metadata"]["resourceVersion"].as_str().unwrap_or_default();
                if !expected.is_empty() && current["metadata"]["resourceVersion"].as_str() != Some(expected) {
                    return status(
                        StatusCode::CONFLICT,
                        "Conflict",
                        "the object has been modified; please apply your changes to the latest version".into(),
                    );
                }
                for field in ["uid", "creationTimestamp", "generation", "namespace"] {
                    object["metadata"][field] = current["metadata"][field].clone();
                }
                if let Err(message) = admit(&target.resource, name, Some(current), &mut object) {
                    return status(StatusCode::UNPROCESSABLE_ENTITY, "Invalid", message);
                }
                state.objects.insert(key.clone(), object);
                state.changed("MODIFIED", &key, tx);
                ok(&state.objects[&key])
            }
            (&Method::PATCH, Some(_), None)
                if content_type.starts_with("application/apply-patch") && !state.objects.contains_key(&key) =>
            {
                // Server-side apply of an object that is not there creates it.
                let Ok(mut object) = serde_json::from_slice::<Value>(&bytes) else {
                    return bad_request();
                };
                if let Err(message) = admit(&target.resource, &key.2, None, &mut object) {
                    return status(StatusCode::UNPROCESSABLE_ENTITY, "Invalid", message);
                }
                ok(&state.created(key, object, tx))
            }
            (&Method::PATCH, Some(name), sub) => {
                let Some(stored) = state.objects.get(&key) else {
                    return not_found(name);
                };
                let Ok(patch) = serde_json::from_slice::<Value>(&bytes) else {
                    return bad_request();
                };
                // A resourceVersion in a patch is a precondition, as on the API server.
                let expected = patch["metadata"]["resourceVersion"].as_str().unwrap_or_default();
                if !content_type.starts_with("application/json-patch")
                    && !expected.is_empty()
                    && stored["metadata"]["resourceVersion"].as_str() != Some(expected)
                {
                    return status(
                        StatusCode::CONFLICT,
                        "Conflict",
                        format!(
                            "Operation cannot be fulfilled on {} \"{name}\": the object has been modified; please apply \
                             your changes to the latest version and try again",
                            target.resource
                        ),
                    );
                }
                let before = stored.clone();
                // Patched on a copy: a refused patch leaves the stored object as it was.
                let mut patched = stored.clone();
                let object = &mut patched;
                let spec_before = object["spec"].clone();
                if content_type.starts_with("application/json-patch") {
                    let Ok(mut ops) = serde_json::from_value::<json_patch::Patch>(patch) else {
                        return bad_request();
                    };
                    // As the API server does: testing that an absent field is null succeeds.
                    ops.0.retain(|op| match op {
                        json_patch::PatchOperation::Test(t) => {
                            !(t.value.is_null() && object.pointer(t.path.as_str()).is_none())
                        }
                        _ => true,
                    });
                    if let Err(e) = json_patch::patch(object, &ops) {
                        return status(StatusCode::UNPROCESSABLE_ENTITY, "Invalid", e.to_string());
                    }
                } else if sub == Some("status") && content_type.starts_with("application/apply-patch") {
                    // Server-side apply of the whole status by its one manager: the applied status is it.
                    object["status"] = patch["status"].clone();
                } else if sub == Some("status") {
                    json_patch::merge(&mut object["status"], &patch["status"]);
                } else {
                    json_patch::merge(object, &patch);
                }
                if object["spec"] != spec_before {
                    let generation = object["metadata"]["generation"].as_i64().unwrap_or(1);
                    object["metadata"]["generation"] = json!(generation + 1);
                }
                if let Err(message) = admit(&target.resource, name, Some(&before), object) {
                    return status(StatusCode::UNPROCESSABLE_ENTITY, "Invalid", message);
                }
                let released = object["metadata"]["deletionTimestamp"].is_string()
                    && object["metadata"]["finalizers"].as_array().is_none_or(|f| f.is_empty());
                let unchanged = *object == before;
                state.objects.insert(key.clone(), patched);
                if released {
                    let object = state.removed(&key, tx).unwrap();
                    ok(&object)
                } else if unchanged {
                    // As the API server does: a patch that changes nothing is no write and no event.
                    ok(&before)
                } else {
                    state.changed("MODIFIED", &key, tx);
                    ok(&state.objects[&key])
                }
            }
            (&Method::DELETE, None, _) => {
                let doomed: Vec<Key> = state
                    .objects
                    .iter()
                    .filter(|(k, v)| k.1 == target.namespace && selected(k, v))
                    .map(|(k, _)| k.clone())
                    .collect();
                let items: Vec<Value> = doomed.iter().filter_map(|k| state.removed(k, tx)).collect();
                ok(&json!({"apiVersion": "v1", "kind": "List", "metadata": {}, "items": items}))
            }
            (&Method::DELETE, Some(name), _) => {
                let Some(object) = state.objects.get_mut(&key) else {
                    return not_found(name);
                };
                let held = object["metadata"]["finalizers"]
                    .as_array()
                    .is_some_and(|f| !f.is_empty());
                if held {
                    object["metadata"]["deletionTimestamp"] = json!(now());
                    state.changed("MODIFIED", &key, tx);
                    ok(&state.objects[&key])
                } else {
                    let object = state.removed(&key, tx).unwrap();
                    ok(&object)
                }
            }
            _ => status(
                StatusCode::METHOD_NOT_ALLOWED,
                "MethodNotAllowed",
                format!("the local API server does not serve {} {}", parts.method, parts.uri),
            ),
        }
    }
}
