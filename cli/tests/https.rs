//! The `drlaas` binary against a chain served over `https://` (a TLS proxy with a private CA in
//! front of anvil): `chain deploy` and `chain show` work through it when `SSL_CERT_FILE` names the
//! CA, and without it the command fails saying the server's certificate is not trusted.

use std::path::Path;
use std::process::{Command, Output};

use drlaas_chain::devnet::Devnet;
use drlaas_chain::read_deployment;
use drlaas_http::CERTIFICATE_HINT;
use drlaas_http::testing::{TestCa, TlsProxy, trusting};

/// Runs `drlaas ARGS` in `dir` with `SSL_CERT_FILE=ca_file` (none when `None`) and no proxy.
fn drlaas(dir: &Path, ca_file: Option<&Path>, args: &[&str]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_drlaas"));
    command.args(args).current_dir(dir).env_remove("DRLAAS_KEY");
    trusting(&mut command, ca_file);
    tokio::task::block_in_place(|| command.output().expect("drlaas runs"))
}

fn said(out: &Output) -> String {
    format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drlaas_deploys_and_shows_a_market_on_an_https_chain_whose_ca_ssl_cert_file_names() {
    let devnet = Devnet::spawn(2).expect("anvil starts (run tools/setup.sh)");
    let ca = TestCa::new();
    let proxy = TlsProxy::in_front_of(&ca, &devnet.endpoint());
    let rpc = proxy.localhost_url();
    let dir = tempfile::tempdir().unwrap();
    let ca_file = ca.ca_file();

    let deploy = drlaas(
        dir.path(),
        Some(&ca_file),
        &[
            "chain",
            "deploy",
            "--rpc-url",
            &rpc,
            "--account",
            "0",
            "--out",
            "deployment.json",
        ],
    );
    assert!(deploy.status.success(), "{}", said(&deploy));
    assert!(
        String::from_utf8_lossy(&deploy.stdout).contains(&format!("rpcUrl: {rpc}")),
        "{}",
        said(&deploy)
    );
    let deployment = read_deployment(&dir.path().join("deployment.json")).unwrap();
    assert_eq!(deployment.chain_id, 31337);
    assert!(proxy.handshakes() >= 1);

    let show = drlaas(dir.path(), Some(&ca_file), &["chain", "show", "--rpc-url", &rpc]);
    assert!(show.status.success(), "{}", said(&show));
    assert!(
        String::from_utf8_lossy(&show.stdout).contains(&deployment.tmc.to_string()),
        "{}",
        said(&show)
    );

    let handshakes = proxy.handshakes();
    let refused = drlaas(dir.path(), None, &["chain", "show", "--rpc-url", &rpc]);
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success(), "{}", said(&refused));
    assert!(
        err.contains(&format!("--rpc-url {rpc}: cannot reach the chain"))
            && err.contains("invalid peer certificate: UnknownIssuer")
            && err.contains(CERTIFICATE_HINT),
        "{err}"
    );
    assert_eq!(proxy.handshakes(), handshakes, "no handshake completed");
}
