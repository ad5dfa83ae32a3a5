//! The trainer with an IPFS API served over `https://` (a TLS proxy with a private CA in front of a
//! js-ipfs node from `tools/`): with `SSL_CERT_FILE` naming the CA the model goes in and comes back
//! by CID through it; without, the run stops before training, saying the node's certificate is not
//! trusted.

use std::path::Path;
use std::process::{Command, Output};

use drlaas_crds::trainer_output::TrainResult;
use drlaas_http::CERTIFICATE_HINT;
use drlaas_http::testing::{TestCa, TlsProxy, trusting};
use drlaas_store::devnode::DevNode;
use serde_json::Value;

const SPEC: &str = r#"{"environment": {"kind": "cartpole"}, "ppo": {"numEnvs": 4, "numSteps": 16},
    "totalEnvSteps": 128, "evalEpisodes": 2}"#;

/// Runs `drlaas-trainer ARGS` with `SSL_CERT_FILE=ca_file` (none when `None`) and no proxy.
fn trainer(ca_file: Option<&Path>, args: &[&str]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_drlaas-trainer"));
    command.args(args).env_remove("DRLAAS_STORE");
    trusting(&mut command, ca_file);
    command.output().unwrap()
}

#[test]
fn the_trainer_stores_and_fetches_models_on_an_https_node_whose_ca_ssl_cert_file_names() {
    let node = DevNode::start().unwrap();
    let ca = TestCa::new();
    let proxy = TlsProxy::in_front_of(&ca, &node.api().parse().unwrap());
    let api = proxy.url();
    let ca_file = ca.ca_file();
    let dir = tempfile::tempdir().unwrap();
    let task = dir.path().join("task.json");
    std::fs::write(&task, SPEC).unwrap();
    let train = |ca_file: Option<&Path>, out: &str| {
        let out = dir.path().join(out);
        let args = [
            "train",
            "--task",
            task.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ];
        trainer(
            ca_file,
            &[&args[..], &["--store", &api, "--progress", "none", "--device", "cpu"]].concat(),
        )
    };

    let trained = train(Some(&ca_file), "trusted");
    assert!(trained.status.success(), "{}", String::from_utf8_lossy(&trained.stderr));
    let result: TrainResult =
        serde_json::from_str(String::from_utf8_lossy(&trained.stdout).lines().last().unwrap()).unwrap();
    let model_cid = result.model_cid.clone().expect("the model was stored");
    let inspected = trainer(Some(&ca_file), &["inspect", "--model", &model_cid, "--store", &api]);
    assert!(
        inspected.status.success(),
        "{}",
        String::from_utf8_lossy(&inspected.stderr)
    );
    let inspected: Value = serde_json::from_slice(&inspected.stdout).unwrap();
    assert_eq!(
        inspected["sha256"],
        result.model_sha256.as_str(),
        "the model came back by CID over https"
    );

    let handshakes = proxy.handshakes();
    let refused = train(None, "untrusted");
    let err = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(refused.status.code(), Some(1), "{err}");
    assert!(
        err.contains(&format!("--store {api}: IPFS API at {api} refused during version"))
            && err.contains("invalid peer certificate: UnknownIssuer")
            && err.contains(CERTIFICATE_HINT),
        "{err}"
    );
    assert!(
        !dir.path().join("untrusted/model.safetensors").exists(),
        "stopped before training"
    );
    assert_eq!(proxy.handshakes(), handshakes, "no handshake completed");
}
