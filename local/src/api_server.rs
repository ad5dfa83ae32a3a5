//! The local mode's API server: an in-process Kubernetes API that serves the calls the operator
//! makes (get, list by label, watch, create, replace, JSON / merge / apply patches, delete, pod
//! logs) on a map of JSON objects, with the rules of a real API server that the controllers rely
//! on: `409` on a second create or a stale replace, `404` on a missing object, server-side apply
//! that creates a missing object, deletion that waits for finalizers, a generation that moves with
//! the spec (and once when a deletion starts waiting), and watches.
//!
//! Watches behave as a real API server's do. One without a resourceVersion (or with `"0"`) starts
//! with a synthetic `ADDED` for every object that matches it, then the changes that follow. One
//! from a resourceVersion replays every change after it, then the changes that follow; an object
//! that stops matching the label selector is `DELETED` from the watch, one that starts is `ADDED`.
//! A watch ends after its `timeoutSeconds`, and a watcher that falls more than the history behind
//! is ended too: the client resumes from the last resourceVersion it saw.
//!
//! What is bounded: the history that watches replay from keeps the last [`WATCH_HISTORY`] changes
//! (all resources together, as etcd's compaction window does; [`ApiServer::with_history`] sets
//! another bound). A watch from a resourceVersion older than the oldest one still replayable is
//! answered as a real API server answers it: `200` with one `ERROR` event holding a `410 Expired`
//! status (`too old resource version: X (Y)`, Y the oldest replayable), and the stream ends;
//! kube-runtime's watcher then lists again. The objects themselves are not bounded, and neither is
//! the record of requests ([`ApiServer::requests`]) that tests read; [`ApiServer::open`] and
//! [`ApiServer::read`] do not record requests.
//!
//! [`ApiServer::open`] keeps every change in a journal file (one JSON line each, appended before
//! the request is answered), so a local run killed at any point restarts with every object it had:
//! the operator's write-ahead records survive as they do in etcd. The journal is compacted to one
//! line per object when it is opened, and the history starts empty then: a watch from a
//! resourceVersion of the earlier run is answered `410`, as after an etcd compaction. The controller
//! tests use it in memory ([`ApiServer::default`]), reading and changing objects between
//! reconciles.

use std::collections::{BTreeMap, VecDeque};
use std::convert::Infallible;
use std::io::{BufRead, Write};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use futures::future;
use futures::stream::{self, BoxStream, StreamExt};
use http::{Method, Request, Response, StatusCode};
use http_body_util::StreamBody;
use hyper::body::Frame;
use kube::client::Body;
use serde_json::{Value, json};
use tokio::sync::broadcast;

use super::admission::admit;

/// How many changes the API server keeps for watches that resume from an older resourceVersion:
/// the last 10,000, whatever their resource (a real API server keeps what etcd has not compacted
/// yet, five minutes' worth by default). A watch that resumes from before them is told `410 Gone`.
pub const WATCH_HISTORY: usize = 10_000;

type Key = (String, String, String); // (resource, namespace, name)

/// A response body: whole, or a watch's endless stream of events.
pub type ApiBody = StreamBody<BoxStream<'static, Result<Frame<Bytes>, Infallible>>>;

/// One change of one object.
#[derive(Debug)]
struct Change {
    /// The resourceVersion it made.
    version: u64,
    /// `ADDED`, `MODIFIED` or `DELETED`.
    kind: &'static str,
    key: Key,
    /// The object after the change (as it was when deleted, for `DELETED`).
    object: Value,
    /// The object before a `MODIFIED` (a label-selected watch sends a `DELETED` of it when the
    /// object stops matching).
    previous: Option<Value>,
}

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
    /// The last changes, oldest first, for watches that start from an older resourceVersion.
    changes: VecDeque<Arc<Change>>,
    /// How many changes `changes` keeps.
    history: usize,
    /// The oldest resourceVersion a watch can start from: every change after it is in `changes`.
    oldest: u64,
}

impl State {
    fn new(history: usize) -> Self {
        State {
            objects: BTreeMap::new(),
            logs: BTreeMap::new(),
            requests: Vec::new(),
            record_requests: true,
            journal: None,
            version: 0,
            failing: Vec::new(),
            changes: VecDeque::new(),
            history,
            oldest: 0,
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
                version: change.version,
                kind: change.kind.to_string(),
                key: change.key.clone(),
                object: change.object.clone(),
            };
            let mut line = serde_json::to_vec(&entry).expect("an object serializes");
            line.push(b'\n');
            if let Err(e) = file.write_all(&line) {
                panic!("the local API server cannot write its journal: {e}");
            }
        }
    }

    /// Journals `change`, keeps it in the history (forgetting the oldest beyond the bound) and
    /// tells the watches.
    fn record(&mut self, change: Change, tx: &broadcast::Sender<Arc<Change>>) {
        self.journal(&change);
        let change = Arc::new(change);
        self.changes.push_back(change.clone());
        while self.changes.len() > self.history {
            if let Some(forgotten) = self.changes.pop_front() {
                self.oldest = forgotten.version;
            }
        }
        let _ = tx.send(change);
    }

    /// Records a change of `key` from `previous` (bumping the resourceVersion) and tells the
    /// watches.
    fn changed(&mut self, kind: &'static str, key: &Key, previous: Option<Value>, tx: &broadcast::Sender<Arc<Change>>) {
        let version = self.version + 1;
        let object = match self.objects.get_mut(key) {
            Some(object) => {
                object["metadata"]["resourceVersion"] = json!(version.to_string());
                object.clone()
            }
            None => return,
        };
        self.version = version;
        let change = Change {
            version,
            kind,
            key: key.clone(),
            object,
            previous,
        };
        self.record(change, tx);
    }

    /// Stores a new `object` under `key` as the API server creates one (uid, generation, creation
    /// time, namespace), telling the watches; returns it.
    fn created(&mut self, key: Key, mut object: Value, tx: &broadcast::Sender<Arc<Change>>) -> Value {
        let uid = format!("00000000-0000-4000-8000-{:012}", self.version + 1);
        let metadata = object["metadata"].as_object_mut().unwrap();
        metadata.insert("uid".into(), json!(uid));
        metadata.insert("generation".into(), json!(1));
        metadata.insert("creationTimestamp".into(), json!(now()));
        if !key.1.is_empty() {
            metadata.insert("namespace".into(), json!(key.1));
        }
        self.objects.insert(key.clone(), object);
        self.changed("ADDED", &key, None, tx);
        self.objects[&key].clone()
    }

    /// Removes `key`, telling the watches; returns the object with the resourceVersion of its
    /// deletion (as the API server's `DELETED` event carries it).
    fn removed(&mut self, key: &Key, tx: &broadcast::Sender<Arc<Change>>) -> Option<Value> {
        let mut object = self.objects.remove(key)?;
        self.version += 1;
        object["metadata"]["resourceVersion"] = json!(self.version.to_string());
        let change = Change {
            version: self.version,
            kind: "DELETED",
            key: key.clone(),
            object: object.clone(),
            previous: None,
        };
        self.record(change, tx);
        Some(object)
    }

    /// Stores `object` under `key` in place of `previous` after an update: removed if that released
    /// its last finalizer while being deleted, else `MODIFIED` (nothing at all when it is unchanged,
    /// as the API server does: no write and no event). Returns what the API server answers.
    fn updated(&mut self, key: &Key, object: Value, previous: Value, tx: &broadcast::Sender<Arc<Change>>) -> Value {
        let released = object["metadata"]["deletionTimestamp"].is_string()
            && object["metadata"]["finalizers"].as_array().is_none_or(|f| f.is_empty());
        let unchanged = object == previous;
        self.objects.insert(key.clone(), object);
        if released {
            self.removed(key, tx).unwrap()
        } else if unchanged {
            previous
        } else {
            self.changed("MODIFIED", key, Some(previous), tx);
            self.objects[key].clone()
        }
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
    watchers: broadcast::Sender<Arc<Change>>,
}

impl Default for ApiServer {
    /// An empty API server whose objects live in memory only, keeping [`WATCH_HISTORY`] changes
    /// for watches.
    fn default() -> Self {
        ApiServer::with_history(WATCH_HISTORY)
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

/// Whether `object`'s labels match `selector` (terms `key`, `!key`, `key=value`, `key==value`
/// and `key!=value`, joined by commas; an absent or empty selector matches everything).
fn matches_labels(object: &Value, selector: Option<&String>) -> bool {
    let Some(selector) = selector.filter(|s| !s.is_empty()) else {
        return true;
    };
    let labels = &object["metadata"]["labels"];
    selector.split(',').map(str::trim).all(|term| {
        if let Some((k, v)) = term.split_once("!=") {
            labels[k.trim()].as_str() != Some(v.trim())
        } else if let Some((k, v)) = term.split_once('=') {
            labels[k.trim()].as_str() == Some(v.trim_start_matches('=').trim())
        } else if let Some(k) = term.strip_prefix('!') {
            labels[k.trim()].is_null()
        } else {
            !labels[term].is_null()
        }
    })
}

/// What a watch is of: one resource, in one namespace (every one when empty), with a label selector.
struct Scope {
    resource: String,
    namespace: String,
    selector: Option<String>,
}

impl Scope {
    fn of(target: &Target) -> Scope {
        Scope {
            resource: target.resource.clone(),
            namespace: target.namespace.clone(),
            selector: target.query.get("labelSelector").cloned(),
        }
    }

    fn holds(&self, key: &Key, object: &Value) -> bool {
        key.0 == self.resource
            && (self.namespace.is_empty() || key.1 == self.namespace)
            && matches_labels(object, self.selector.as_ref())
    }

    /// The event this watch gets for `change`, if any. As on a real API server, a `MODIFIED`
    /// object that stops matching the selector is `DELETED` from the watch (as it was, with the
    /// change's resourceVersion), and one that starts matching is `ADDED`.
    fn event(&self, change: &Change) -> Option<Value> {
        let now = self.holds(&change.key, &change.object);
        let before = change.previous.as_ref().map(|p| self.holds(&change.key, p));
        match (change.kind, before, now) {
            ("MODIFIED", Some(false), true) => Some(json!({"type": "ADDED", "object": change.object})),
            ("MODIFIED", Some(true), false) => {
                let mut gone = change.previous.clone().unwrap_or_default();
                gone["metadata"]["resourceVersion"] = json!(change.version.to_string());
                Some(json!({"type": "DELETED", "object": gone}))
            }
            (kind, _, true) => Some(json!({"type": kind, "object": change.object})),
            _ => None,
        }
    }
}

/// One line of a watch's stream.
fn event_line(event: &Value) -> Result<Frame<Bytes>, Infallible> {
    let mut line = serde_json::to_vec(event).unwrap();
    line.push(b'\n');
    Ok(Frame::data(Bytes::from(line)))
}

/// Answers a watch of `target`, with the state's lock held (so no change falls between the
/// replayed ones and the live ones).
fn watch(state: &State, target: &Target, tx: &broadcast::Sender<Arc<Change>>) -> Response<ApiBody> {
    if target.query.get("sendInitialEvents").is_some_and(|v| v == "true") {
        // Streaming lists are not served, as by an API server without the WatchList feature gate;
        // kube-runtime's watcher asks for them only when configured to.
        return status(
            StatusCode::UNPROCESSABLE_ENTITY,
            "Invalid",
            "sendInitialEvents: Forbidden: sendInitialEvents is forbidden for watch unless the WatchList feature \
             gate is enabled"
                .into(),
        );
    }
    let scope = Scope::of(target);
    let since = match target.query.get("resourceVersion").map(String::as_str) {
        None | Some("" | "0") => None,
        Some(version) => match version.parse::<u64>() {
            Ok(version) => Some(version),
            Err(_) => {
                return status(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "Invalid",
                    format!("resourceVersion: Invalid value: \"{version}\": not a resource version"),
                );
            }
        },
    };
    let (first, start): (Vec<Value>, u64) = match since {
        // From the current state: a synthetic ADDED of every object that matches.
        None => (
            state
                .objects
                .iter()
                .filter(|(key, object)| scope.holds(key, object))
                .map(|(_, object)| json!({"type": "ADDED", "object": object}))
                .collect(),
            state.version,
        ),
        Some(since) if since < state.oldest => {
            // What a real API server sends: 200, one ERROR event with 410 Gone, the end.
            let error = json!({"type": "ERROR", "object": {
                "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "reason": "Expired",
                "code": 410, "message": format!("too old resource version: {since} ({})", state.oldest)}});
            let line = event_line(&error);
            return Response::builder()
                .body(StreamBody::new(stream::once(async move { line }).boxed()))
                .unwrap();
        }
        Some(since) => (
            state
                .changes
                .iter()
                .filter(|c| c.version > since)
                .filter_map(|c| scope.event(c))
                .collect(),
            since,
        ),
    };
    // A watcher that falls about `history` changes behind (the channel's capacity, rounded up to a
    // power of two) loses some: its watch ends, as a real API server ends one that cannot keep up,
    // and it resumes from the last resourceVersion it saw (or is told 410 and lists again).
    let live = tokio_stream::wrappers::BroadcastStream::new(tx.subscribe())
        .take_while(|c| future::ready(c.is_ok()))
        .filter_map(move |c| {
            let event = c.ok().filter(|c| c.version > start).and_then(|c| scope.event(&c));
            future::ready(event)
        });
    let events = stream::iter(first).chain(live).map(|event| event_line(&event));
    let timeout = target
        .query
        .get("timeoutSeconds")
        .and_then(|t| t.parse::<u64>().ok())
        .filter(|t| *t > 0);
    let events = match timeout {
        // The API server ends a watch after its timeoutSeconds; the client starts another.
        Some(seconds) => events
            .take_until(tokio::time::sleep(Duration::from_secs(seconds)))
            .boxed(),
        None => events.boxed(),
    };
    Response::builder().body(StreamBody::new(events)).unwrap()
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

/// The answer to a write whose resourceVersion is not the stored one.
fn conflict(resource: &str, name: &str) -> Response<ApiBody> {
    status(
        StatusCode::CONFLICT,
        "Conflict",
        format!(
            "Operation cannot be fulfilled on {resource} \"{name}\": the object has been modified; please apply your \
             changes to the latest version and try again"
        ),
    )
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
    /// An empty API server whose objects live in memory only, keeping the last `history` changes
    /// for watches that resume from an older resourceVersion (a watch from before them is told
    /// `410 Gone`).
    pub fn with_history(history: usize) -> ApiServer {
        ApiServer {
            state: Arc::new(Mutex::new(State::new(history))),
            // A watcher about the history behind loses changes and has its watch ended.
            watchers: broadcast::channel(history.clamp(1, 1 << 20)).0,
        }
    }

    /// An API server whose objects are kept in the journal at `path`: the objects of an earlier
    /// run are read back (a line cut short by a kill is ignored), the journal is compacted to one
    /// line per object, and every change is appended from then on. The history for watches
    /// starts empty: a watch from a resourceVersion before the reopening is told `410 Gone`.
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
            state.oldest = version;
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
            state.oldest = version;
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
        let previous = state.objects.insert(key.clone(), object);
        let kind = if previous.is_some() { "MODIFIED" } else { "ADDED" };
        state.changed(kind, &key, previous, &self.watchers);
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
        let previous = object.clone();
        change(object);
        let released = object["metadata"]["deletionTimestamp"].is_string()
            && object["metadata"]["finalizers"].as_array().is_none_or(|f| f.is_empty());
        if released {
            state.removed(&key, &self.watchers);
        } else {
            state.changed("MODIFIED", &key, Some(previous), &self.watchers);
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
    /// fails at the worst moment), until [`ApiServer::heal`].
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
                watch(&state, &target, tx)
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
                    return conflict(&target.resource, name);
                }
                // What the API server keeps whatever the request says; the generation moves with the spec.
                for field in [
                    "uid",
                    "creationTimestamp",
                    "generation",
                    "namespace",
                    "deletionTimestamp",
                    "deletionGracePeriodSeconds",
                    "resourceVersion",
                ] {
                    let metadata = object["metadata"].as_object_mut();
                    match (metadata, current["metadata"].get(field)) {
                        (Some(metadata), Some(value)) => metadata.insert(field.into(), value.clone()),
                        (Some(metadata), None) => metadata.remove(field),
                        (None, _) => return bad_request(),
                    };
                }
                if object["spec"] != current["spec"] {
                    let generation = current["metadata"]["generation"].as_i64().unwrap_or(1);
                    object["metadata"]["generation"] = json!(generation + 1);
                }
                if let Err(message) = admit(&target.resource, name, Some(current), &mut object) {
                    return status(StatusCode::UNPROCESSABLE_ENTITY, "Invalid", message);
                }
                let previous = current.clone();
                ok(&state.updated(&key, object, previous, tx))
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
                    return conflict(&target.resource, name);
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
                ok(&state.updated(&key, patched, before, tx))
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
                let Some(current) = state.objects.get(&key) else {
                    return not_found(name);
                };
                let held = current["metadata"]["finalizers"]
                    .as_array()
                    .is_some_and(|f| !f.is_empty());
                if !held {
                    let object = state.removed(&key, tx).unwrap();
                    ok(&object)
                } else if current["metadata"]["deletionTimestamp"].is_string() {
                    // Being deleted already: nothing changes.
                    ok(current)
                } else {
                    // As the API server marks an object whose finalizers hold it: a deletion time, no
                    // grace period, and one more generation (the controllers of it have work to do).
                    let previous = current.clone();
                    let mut object = previous.clone();
                    object["metadata"]["deletionTimestamp"] = json!(now());
                    object["metadata"]["deletionGracePeriodSeconds"] = json!(0);
                    if let Some(generation) = object["metadata"]["generation"].as_i64() {
                        object["metadata"]["generation"] = json!(generation + 1);
                    }
                    state.objects.insert(key.clone(), object);
                    state.changed("MODIFIED", &key, Some(previous), tx);
                    ok(&state.objects[&key])
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
