//! The operator's HTTP endpoints over a real socket.

use std::sync::Arc;

use drlaas_operator::server::{Health, serve};

#[tokio::test]
async fn health_readiness_and_metrics_are_served() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let health = Arc::new(Health::default());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(serve(listener, Arc::clone(&health), async {
        let _ = stopped.await;
    }));
    let http = drlaas_http::client();
    let get = |path: &str| http.get(format!("{base}{path}")).send();

    assert_eq!(get("/healthz").await.unwrap().status(), 200);
    assert_eq!(
        get("/readyz").await.unwrap().status(),
        503,
        "not ready before the controllers start"
    );
    health.set_ready(true);
    assert_eq!(get("/readyz").await.unwrap().status(), 200);

    drop(health.metrics.reconcile("worker"));
    let response = get("/metrics").await.unwrap();
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/openmetrics-text")
    );
    let text = response.text().await.unwrap();
    assert!(
        text.contains(r#"drlaas_reconciles_total{controller="worker"} 1"#),
        "{text}"
    );

    stop.send(()).unwrap();
    server.await.unwrap().unwrap();
}
