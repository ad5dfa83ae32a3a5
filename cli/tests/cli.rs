//! The `drlaas` command line.

use std::process::Command;

#[test]
fn crd_prints_the_committed_definitions() {
    let out = Command::new(env!("CARGO_BIN_EXE_drlaas")).arg("crd").output().unwrap();
    assert!(out.status.success());
    let committed =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../crds/generated/drlaas.io.yaml")).unwrap();
    assert_eq!(String::from_utf8(out.stdout).unwrap(), committed);
}

/// `drlaas operator` checks its settings against the chain before it touches the cluster, and says
/// which one is wrong.
#[tokio::test]
async fn operator_refuses_a_bad_setting_and_names_it() {
    use drlaas_chain::devnet::Devnet;
    use drlaas_chain::{MarketParams, deploy_marketplace};

    let devnet = Devnet::spawn(3).expect("anvil starts (run tools/setup.sh)");
    let accounts = devnet.accounts();
    // Account 2 the only oracle: the operator must refuse account 1's key.
    let market = deploy_marketplace(
        devnet.provider(),
        devnet.wallet(),
        accounts[0],
        MarketParams::default(),
        &[accounts[2]],
        1,
    )
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let deployment = dir.path().join("deployment.json");
    std::fs::write(&deployment, market.deployment().to_file_text()).unwrap();
    let key = dir.path().join("oracle.key");
    let operator = |key_text: &str, deployment: &std::path::Path| {
        std::fs::write(&key, key_text).unwrap();
        let out = Command::new(env!("CARGO_BIN_EXE_drlaas"))
            .args(["operator", "--rpc-url", devnet.endpoint().as_str(), "--store"])
            .arg(dir.path().join("store"))
            .arg("--deployment")
            .arg(deployment)
            .arg("--oracle-key-file")
            .arg(&key)
            .env_remove("KUBECONFIG")
            .output()
            .unwrap();
        assert!(!out.status.success());
        String::from_utf8(out.stderr).unwrap()
    };
    let signer_hex = |i: usize| devnet.signers()[i].to_bytes().to_string();

    let err = operator("not a key", &deployment);
    assert!(
        err.contains("--oracle-key-file") && err.contains("not a hex secp256k1 private key"),
        "{err}"
    );

    let err = operator(&signer_hex(1), &dir.path().join("missing.json"));
    assert!(err.contains("--deployment") && err.contains("missing.json"), "{err}");

    let mut elsewhere = *market.deployment();
    elsewhere.tmc = accounts[2];
    let other = dir.path().join("elsewhere.json");
    std::fs::write(&other, elsewhere.to_file_text()).unwrap();
    let err = operator(&signer_hex(1), &other);
    assert!(err.contains("no TMC contract at"), "{err}");

    let err = operator(&signer_hex(1), &deployment);
    assert!(
        err.contains(&format!(
            "{} (the --oracle-key-file account) is not an oracle of TMC",
            accounts[1]
        )),
        "{err}"
    );
}
