//! The API scenarios of [`drlaas_e2e::parity`] against the local mode's in-memory API server (always)
//! and a real kube-apiserver (`KUBECONFIG=... cargo test -p drlaas-e2e --test api_parity -- --ignored`):
//! both must give every scenario its expected verdict, so they agree with each other.

use drlaas_e2e::parity::{self, Verdict};
use drlaas_local::api_server::ApiServer;
use k8s_openapi::api::core::v1::Namespace;
use kube::Api;
use kube::api::DeleteParams;

fn report(verdicts: &[Verdict]) -> String {
    verdicts
        .iter()
        .map(|v| {
            format!(
                "{} {}: expected {:?}, got {:?}",
                if v.holds() { "ok  " } else { "FAIL" },
                v.scenario,
                v.expected,
                v.result
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[tokio::test]
async fn the_in_memory_api_server_gives_every_scenario_its_verdict() {
    let api = ApiServer::default();
    let verdicts = parity::run(&api.client(), "parity").await;
    assert!(verdicts.len() >= 14, "{}", report(&verdicts));
    assert!(verdicts.iter().all(Verdict::holds), "\n{}", report(&verdicts));
}

#[tokio::test]
#[ignore = "needs a cluster: KUBECONFIG"]
async fn a_real_api_server_gives_every_scenario_its_verdict() {
    let client = kube::Client::try_default().await.expect("KUBECONFIG");
    drlaas_e2e::install_crds(&client).await;
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let name = format!("drlaas-parity-{}", std::process::id());
    drlaas_e2e::create_namespace(&client, &name).await.unwrap();
    let verdicts = parity::run(&client, &name).await;
    let _ = namespaces.delete(&name, &DeleteParams::default()).await;
    eprintln!("{}", report(&verdicts));
    assert!(verdicts.iter().all(Verdict::holds), "\n{}", report(&verdicts));
}
