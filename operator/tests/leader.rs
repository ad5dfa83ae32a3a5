//! Leader election against a mock API server: every path of one election round, with the writes the
//! API server sees.

use drlaas_operator::leader::{LeaderElector, Leadership};
use http::{Method, Request, Response, StatusCode};
use k8s_openapi::jiff::Timestamp;
use kube::client::Body;
use serde_json::{Value, json};

type ApiServer = tower_test::mock::Handle<Request<Body>, Response<Body>>;

const LEASE_PATH: &str = "/apis/coordination.k8s.io/v1/namespaces/drlaas/leases/drlaas-operator";

fn elector() -> (LeaderElector, ApiServer) {
    let (service, handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let client = kube::Client::new(service, "default");
    (
        LeaderElector::new(client, "drlaas", "drlaas-operator", "replica-a", 15),
        handle,
    )
}

fn now() -> Timestamp {
    "2026-11-24T10:00:10Z".parse().unwrap()
}

fn lease(holder: &str, renewed: &str, resource_version: &str) -> Value {
    json!({
        "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
        "metadata": {"name": "drlaas-operator", "namespace": "drlaas", "resourceVersion": resource_version},
        "spec": {"holderIdentity": holder, "leaseDurationSeconds": 15, "renewTime": renewed, "acquireTime": renewed, "leaseTransitions": 1},
    })
}

fn reply(send: tower_test::mock::SendResponse<Response<Body>>, code: StatusCode, body: &Value) {
    send.send_response(
        Response::builder()
            .status(code)
            .body(Body::from(serde_json::to_vec(body).unwrap()))
            .unwrap(),
    );
}

fn status(code: u16, reason: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Status", "status": "Failure", "message": reason, "reason": reason, "code": code})
}

/// Expects a request with `method` on the Lease (or the collection for a create); returns its body.
async fn expect(
    api: &mut ApiServer,
    method: Method,
    path: &str,
) -> (Value, tower_test::mock::SendResponse<Response<Body>>) {
    let (request, send) = api.next_request().await.expect("a request");
    assert_eq!(request.method(), method);
    assert!(request.uri().path() == path, "{} {}", request.method(), request.uri());
    let bytes = request.into_body().collect_bytes().await.unwrap();
    (
        if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap()
        },
        send,
    )
}

#[tokio::test]
async fn the_first_replica_creates_the_lease() {
    let (elector, mut api) = elector();
    let server = tokio::spawn(async move {
        let (_, send) = expect(&mut api, Method::GET, LEASE_PATH).await;
        reply(send, StatusCode::NOT_FOUND, &status(404, "NotFound"));
        let (body, send) = expect(
            &mut api,
            Method::POST,
            "/apis/coordination.k8s.io/v1/namespaces/drlaas/leases",
        )
        .await;
        reply(send, StatusCode::CREATED, &body);
        body
    });
    assert_eq!(elector.try_acquire_or_renew(now()).await.unwrap(), Leadership::Leader);
    let created = server.await.unwrap();
    assert_eq!(created["spec"]["holderIdentity"], "replica-a");
    assert_eq!(created["spec"]["leaseDurationSeconds"], 15);
}

#[tokio::test]
async fn a_live_lease_of_another_replica_is_followed_without_writing() {
    let (elector, mut api) = elector();
    let server = tokio::spawn(async move {
        let (_, send) = expect(&mut api, Method::GET, LEASE_PATH).await;
        reply(
            send,
            StatusCode::OK,
            &lease("replica-b", "2026-11-24T10:00:05.000000Z", "7"),
        );
        api
    });
    let result = elector.try_acquire_or_renew(now()).await.unwrap();
    assert_eq!(
        result,
        Leadership::Follower {
            holder: "replica-b".into()
        }
    );
    let mut api = server.await.unwrap();
    assert!(
        futures::FutureExt::now_or_never(api.next_request()).is_none(),
        "no write"
    );
}

#[tokio::test]
async fn an_expired_lease_is_taken_over_with_the_version_read() {
    let (elector, mut api) = elector();
    let server = tokio::spawn(async move {
        let (_, send) = expect(&mut api, Method::GET, LEASE_PATH).await;
        reply(
            send,
            StatusCode::OK,
            &lease("replica-b", "2026-11-24T09:59:00.000000Z", "7"),
        );
        let (body, send) = expect(&mut api, Method::PUT, LEASE_PATH).await;
        reply(send, StatusCode::OK, &body);
        body
    });
    assert_eq!(elector.try_acquire_or_renew(now()).await.unwrap(), Leadership::Leader);
    let written = server.await.unwrap();
    assert_eq!(
        written["metadata"]["resourceVersion"], "7",
        "optimistic concurrency on the version read"
    );
    assert_eq!(written["spec"]["holderIdentity"], "replica-a");
    assert_eq!(written["spec"]["leaseTransitions"], 2);
}

#[tokio::test]
async fn losing_the_race_for_an_expired_lease_means_following_the_winner() {
    let (elector, mut api) = elector();
    let server = tokio::spawn(async move {
        let (_, send) = expect(&mut api, Method::GET, LEASE_PATH).await;
        reply(
            send,
            StatusCode::OK,
            &lease("replica-b", "2026-11-24T09:59:00.000000Z", "7"),
        );
        let (_, send) = expect(&mut api, Method::PUT, LEASE_PATH).await;
        reply(send, StatusCode::CONFLICT, &status(409, "Conflict"));
        let (_, send) = expect(&mut api, Method::GET, LEASE_PATH).await;
        reply(
            send,
            StatusCode::OK,
            &lease("replica-c", "2026-11-24T10:00:09.000000Z", "8"),
        );
    });
    let result = elector.try_acquire_or_renew(now()).await.unwrap();
    assert_eq!(
        result,
        Leadership::Follower {
            holder: "replica-c".into()
        }
    );
    server.await.unwrap();
}
