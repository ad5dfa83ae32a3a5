//! An in-memory Kubernetes API server behind kube-rs's tower-test mock: it serves the calls the
//! controllers make (get, list by label, create, JSON / merge / apply patches, delete, pod logs) on
//! a map of JSON objects, with the API server's rules that matter here: `409` on a second create,
//! `404` on a missing object, deletion that waits for finalizers, and a generation that moves
//! with the spec.
//!
//! Scenarios drive reconciles one at a time and read or change the objects in between (playing
//! the kubelet, the requester, or a restart of the operator).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use http::{Method, Request, Response, StatusCode};
use kube::client::Body;
use serde_json::{Value, json};

type Key = (String, String, String); // (resource, namespace, name)

#[derive(Debug, Default)]
struct State {
    objects: BTreeMap<Key, Value>,
    logs: BTreeMap<(String, String), String>,
    requests: Vec<String>,
    version: u64,
    /// Requests (`METHOD path` prefixes) answered with a 500 instead of being served.
    failing: Vec<String>,
}

/// The fake API server: clone it freely, every clone sees the same objects.
#[derive(Debug, Clone, Default)]
pub struct FakeApi {
    state: Arc<Mutex<State>>,
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

fn status(code: StatusCode, reason: &str, message: String) -> Response<Body> {
    let body = json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "message": message,
                      "reason": reason, "code": code.as_u16()});
    Response::builder()
        .status(code)
        .body(Body::from(serde_json::to_vec(&body).unwrap()))
        .unwrap()
}

fn ok(body: &Value) -> Response<Body> {
    Response::builder()
        .body(Body::from(serde_json::to_vec(body).unwrap()))
        .unwrap()
}

impl FakeApi {
    /// A client whose requests this server answers (served on a background task).
    pub fn client(&self) -> kube::Client {
        let (service, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
        let api = self.clone();
        tokio::spawn(async move {
            while let Some((request, send)) = handle.next_request().await {
                let response = api.serve(request).await;
                send.send_response(response);
            }
        });
        kube::Client::new(service, "default")
    }

    /// Stores `object` as if created by a user (uid, generation and resourceVersion set).
    pub fn insert(&self, resource: &str, mut object: Value) {
        let mut state = self.state.lock().unwrap();
        state.version += 1;
        let metadata = object["metadata"].as_object_mut().expect("an object has metadata");
        let name = metadata["name"].as_str().unwrap().to_string();
        let namespace = metadata
            .get("namespace")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        metadata
            .entry("uid")
            .or_insert_with(|| json!(format!("00000000-0000-4000-8000-{:012}", state.version)));
        metadata.entry("generation").or_insert(json!(1));
        metadata
            .entry("creationTimestamp")
            .or_insert(json!("2026-11-25T00:00:00Z"));
        metadata.insert("resourceVersion".into(), json!(state.version.to_string()));
        state.objects.insert((resource.into(), namespace, name), object);
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
        state.version += 1;
        let version = state.version;
        let object = state
            .objects
            .get_mut(&(resource.into(), namespace.into(), name.into()))
            .unwrap_or_else(|| panic!("{resource} {namespace}/{name} exists"));
        change(object);
        object["metadata"]["resourceVersion"] = json!(version.to_string());
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
        self.state.lock().unwrap().requests.clone()
    }

    /// Requests served whose line starts with `prefix` (e.g. `POST /api/v1/namespaces/team-a/pods`).
    pub fn count(&self, prefix: &str) -> usize {
        self.requests().iter().filter(|r| r.starts_with(prefix)).count()
    }

    async fn serve(&self, request: Request<Body>) -> Response<Body> {
        let (parts, body) = request.into_parts();
        let bytes = body.collect_bytes().await.unwrap_or_default();
        let target = parse(&parts.uri);
        let mut state = self.state.lock().unwrap();
        let line = format!("{} {}", parts.method, parts.uri.path());
        if state.failing.iter().any(|p| line.starts_with(p.as_str())) {
            return status(
                StatusCode::INTERNAL_SERVER_ERROR,
                "InternalError",
                format!("injected failure of {line}"),
            );
        }
        state.requests.push(line);
        state.version += 1;
        let version = state.version;
        let key = (
            target.resource.clone(),
            target.namespace.clone(),
            target.name.clone().unwrap_or_default(),
        );
        let content_type = parts
            .headers
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        match (&parts.method, &target.name, target.subresource.as_deref()) {
            (&Method::GET, None, _) => {
                let items: Vec<Value> = state
                    .objects
                    .iter()
                    .filter(|((r, ns, _), v)| {
                        *r == target.resource
                            && (target.namespace.is_empty() || *ns == target.namespace)
                            && matches_labels(v, target.query.get("labelSelector"))
                    })
                    .map(|(_, v)| v.clone())
                    .collect();
                ok(
                    &json!({"apiVersion": "v1", "kind": "List", "metadata": {"resourceVersion": version.to_string()},
                           "items": items}),
                )
            }
            (&Method::GET, Some(name), Some("log")) => {
                let text = state
                    .logs
                    .get(&(target.namespace.clone(), name.clone()))
                    .cloned()
                    .unwrap_or_default();
                Response::builder().body(Body::from(text.into_bytes())).unwrap()
            }
            (&Method::GET, Some(name), _) => match state.objects.get(&key) {
                Some(object) => ok(object),
                None => status(
                    StatusCode::NOT_FOUND,
                    "NotFound",
                    format!("{} \"{name}\" not found", target.resource),
                ),
            },
            (&Method::POST, None, _) => {
                let mut object: Value = serde_json::from_slice(&bytes).unwrap();
                let name = object["metadata"]["name"].as_str().unwrap_or_default().to_string();
                let key = (target.resource.clone(), target.namespace.clone(), name.clone());
                if state.objects.contains_key(&key) {
                    return status(
                        StatusCode::CONFLICT,
                        "AlreadyExists",
                        format!("{} \"{name}\" already exists", target.resource),
                    );
                }
                let metadata = object["metadata"].as_object_mut().unwrap();
                metadata.insert("uid".into(), json!(format!("00000000-0000-4000-8000-{version:012}")));
                metadata.insert("resourceVersion".into(), json!(version.to_string()));
                metadata.insert("generation".into(), json!(1));
                metadata.insert("creationTimestamp".into(), json!("2026-11-25T00:00:00Z"));
                if !target.namespace.is_empty() {
                    metadata.insert("namespace".into(), json!(target.namespace));
                }
                state.objects.insert(key, object.clone());
                ok(&object)
            }
            (&Method::PATCH, Some(name), sub) => {
                let Some(object) = state.objects.get_mut(&key) else {
                    return status(
                        StatusCode::NOT_FOUND,
                        "NotFound",
                        format!("{} \"{name}\" not found", target.resource),
                    );
                };
                let patch: Value = serde_json::from_slice(&bytes).unwrap();
                let spec_before = object["spec"].clone();
                if content_type.starts_with("application/json-patch") {
                    let mut ops: json_patch::Patch = serde_json::from_value(patch).unwrap();
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
                } else if sub == Some("status") {
                    // Server-side apply of the whole status by its one manager: the applied status is it.
                    object["status"] = patch["status"].clone();
                } else {
                    json_patch::merge(object, &patch);
                }
                if object["spec"] != spec_before {
                    let generation = object["metadata"]["generation"].as_i64().unwrap_or(1);
                    object["metadata"]["generation"] = json!(generation + 1);
                }
                object["metadata"]["resourceVersion"] = json!(version.to_string());
                let answer = object.clone();
                let released = answer["metadata"]["deletionTimestamp"].is_string()
                    && answer["metadata"]["finalizers"].as_array().is_none_or(|f| f.is_empty());
                if released {
                    state.objects.remove(&key);
                }
                ok(&answer)
            }
            (&Method::DELETE, None, _) => {
                let doomed: Vec<Key> = state
                    .objects
                    .iter()
                    .filter(|((r, ns, _), v)| {
                        *r == target.resource
                            && *ns == target.namespace
                            && matches_labels(v, target.query.get("labelSelector"))
                    })
                    .map(|(k, _)| k.clone())
                    .collect();
                let items: Vec<Value> = doomed.iter().filter_map(|k| state.objects.remove(k)).collect();
                ok(&json!({"apiVersion": "v1", "kind": "List", "metadata": {}, "items": items}))
            }
            (&Method::DELETE, Some(name), _) => {
                let Some(object) = state.objects.get_mut(&key) else {
                    return status(
                        StatusCode::NOT_FOUND,
                        "NotFound",
                        format!("{} \"{name}\" not found", target.resource),
                    );
                };
                let held = object["metadata"]["finalizers"]
                    .as_array()
                    .is_some_and(|f| !f.is_empty());
                if held {
                    object["metadata"]["deletionTimestamp"] = json!("2026-11-25T01:00:00Z");
                    ok(&object.clone())
                } else {
                    let object = state.objects.remove(&key).unwrap();
                    ok(&object)
                }
            }
            _ => status(
                StatusCode::METHOD_NOT_ALLOWED,
                "MethodNotAllowed",
                format!("the fake API server does not serve {} {}", parts.method, parts.uri),
            ),
        }
    }
}
