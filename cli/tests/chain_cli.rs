//! `drlaas chain deploy|allow-oracle|show`, run as the built binary against a real anvil chain: the
//! admin deploys the contracts, the deployment and the Helm values it prints match the chain, and
//! oracles are allowed and revoked.

use std::collections::BTreeMap;
use std::path::Path;

use drlaas_chain::alloy::primitives::{Address, B256};
use drlaas_chain::devnet::{ADMIN, Devnet, ORACLE};
use drlaas_chain::{Deployment, Market, read_deployment};
use serde::Deserialize;

mod cli_run;
use cli_run::{Ran, drlaas_command};

/// An account that is neither the admin nor an oracle.
const OTHER: usize = 2;

/// Runs `drlaas ARGS` in `dir` with `key` (if any) as $DRLAAS_KEY.
fn drlaas(dir: &Path, key: Option<&str>, args: &[&str]) -> Ran {
    let mut command = drlaas_command();
    command.args(args).current_dir(dir);
    if let Some(key) = key {
        command.env("DRLAAS_KEY", key);
    }
    Ran::of(&mut command)
}

/// The Helm values `drlaas chain deploy` prints.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Values {
    chain: ChainValues,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ChainValues {
    rpc_url: String,
    chain_id: u64,
    deployment_block: u64,
    contracts: BTreeMap<String, String>,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_deploys_the_market_and_manages_its_oracles() {
    let devnet = Devnet::spawn(4).expect("anvil starts (run tools/setup.sh)");
    let rpc = devnet.endpoint().to_string();
    let accounts = devnet.accounts();
    let (oracle, other) = (accounts[ORACLE], accounts[OTHER]);
    let dir = tempfile::tempdir().unwrap();
    let admin_key = devnet.signers()[ADMIN].to_bytes().to_string();
    let key_file = dir.path().join("admin.key");
    std::fs::write(&key_file, format!("{admin_key}\n")).unwrap();
    let key_file = key_file.to_str().unwrap();
    let out = dir.path().join("deployment.json");
    let out_arg = out.to_str().unwrap();
    let run = |key: Option<&str>, args: &[&str]| drlaas(dir.path(), key, args);

    // An unreachable chain and a bad address are named by their flags, before anything is sent.
    let err = run(
        None,
        &["chain", "deploy", "--rpc-url", "http://127.0.0.1:1", "--account", "0"],
    )
    .failure("deploy to a closed port");
    assert!(err.contains("--rpc-url http://127.0.0.1:1"), "{err}");
    assert!(err.contains("cannot reach the chain"), "{err}");
    let err = run(
        None,
        &[
            "chain",
            "deploy",
            "--rpc-url",
            &rpc,
            "--key-file",
            key_file,
            "--oracle",
            "0x12",
        ],
    )
    .failure("deploy with a bad oracle address");
    assert!(err.contains("--oracle") && err.contains("40 hex digits"), "{err}");
    assert!(!out.exists());

    // The admin deploys with a key file and allows the operator's account.
    let deployed = run(
        None,
        &[
            "chain",
            "deploy",
            "--rpc-url",
            &rpc,
            "--key-file",
            key_file,
            "--oracle",
            &oracle.to_string(),
            "--out",
            out_arg,
        ],
    )
    .succeeded("chain deploy");
    assert!(deployed.stderr.contains("allowed oracle"), "{}", deployed.stderr);
    let deployment = read_deployment(&out).unwrap();
    let market = Market::open(devnet.provider(), devnet.wallet(), deployment)
        .await
        .expect("the written deployment is on chain");
    assert!(market.is_oracle(oracle).await.unwrap());
    assert!(!market.is_oracle(other).await.unwrap());

    // Stdout is exactly the chart's values: nothing else, and they name the deployment.
    let values: Values = serde_saphyr::from_str(&deployed.stdout)
        .unwrap_or_else(|e| panic!("the values are YAML: {e}\n{}", deployed.stdout));
    let c = values.chain;
    assert_eq!(
        (c.rpc_url.as_str(), c.chain_id, c.deployment_block),
        (rpc.as_str(), deployment.chain_id, deployment.block)
    );
    let contracts: BTreeMap<String, Address> = c
        .contracts
        .iter()
        .map(|(k, v)| (k.clone(), v.parse().unwrap()))
        .collect();
    assert_eq!(
        contracts,
        BTreeMap::from([
            ("umc".to_string(), deployment.umc),
            ("tmc".to_string(), deployment.tmc),
            ("mmc".to_string(), deployment.mmc),
        ])
    );

    // A second deployment to the same file is refused, and the file is left as it was.
    let before = std::fs::read_to_string(&out).unwrap();
    let err = run(
        None,
        &["chain", "deploy", "--rpc-url", &rpc, "--account", "0", "--out", out_arg],
    )
    .failure("a second deploy to the same --out");
    assert!(
        err.contains(&format!("--out {out_arg}: the file exists")) && err.contains("--force"),
        "{err}"
    );
    assert_eq!(std::fs::read_to_string(&out).unwrap(), before);

    // `show` verifies the deployment (the default --deployment is ./deployment.json) and checks oracles.
    let shown = run(
        None,
        &["chain", "show", "--rpc-url", &rpc, "--oracle", &oracle.to_string()],
    )
    .succeeded("show");
    assert!(
        shown.stdout.contains(&deployment.tmc.to_string()) && shown.stdout.contains("allowed"),
        "{}",
        shown.stdout
    );
    let json = run(None, &["chain", "show", "--rpc-url", &rpc, "-o", "json"]).succeeded("show -o json");
    let json: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    let address = |v: &serde_json::Value| v.as_str().unwrap().parse::<Address>().unwrap();
    assert_eq!(address(&json["admin"]), accounts[ADMIN]);
    assert_eq!(address(&json["contracts"]["umc"]), deployment.umc);
    let err = run(
        None,
        &["chain", "show", "--rpc-url", &rpc, "--oracle", &other.to_string()],
    )
    .failure("show with an oracle that is not allowed");
    assert!(err.contains("not allowed"), "{err}");

    // Only the admin allows or revokes oracles.
    let revoke = [
        "chain",
        "allow-oracle",
        &oracle.to_string(),
        "--rpc-url",
        &rpc,
        "--revoke",
    ];
    let err = run(None, &[&revoke[..], &["--account", &OTHER.to_string()]].concat())
        .failure("allow-oracle signed by another account");
    assert!(
        err.contains(&format!("--account {OTHER}: account {other} is not the admin")),
        "{err}"
    );
    assert!(market.is_oracle(oracle).await.unwrap());

    // The admin revokes it (key file) ...
    let revoked = run(None, &[&revoke[..], &["--key-file", key_file]].concat()).succeeded("allow-oracle --revoke");
    revoked
        .stdout
        .trim()
        .parse::<B256>()
        .unwrap_or_else(|_| panic!("a transaction hash: {}", revoked.stdout));
    assert!(!market.is_oracle(oracle).await.unwrap());
    // ... and allows it again ($DRLAAS_KEY), and another oracle too.
    for who in [oracle, other] {
        run(
            Some(&admin_key),
            &[
                "chain",
                "allow-oracle",
                &who.to_string(),
                "--rpc-url",
                &rpc,
                "--deployment",
                out_arg,
            ],
        )
        .succeeded("allow-oracle");
        assert!(market.is_oracle(who).await.unwrap());
    }

    // A deployment that does not match the chain is named.
    let wrong = dir.path().join("wrong.json");
    std::fs::write(
        &wrong,
        Deployment {
            tmc: Address::repeat_byte(7),
            ..deployment
        }
        .to_file_text(),
    )
    .unwrap();
    let err = run(
        None,
        &[
            "chain",
            "show",
            "--rpc-url",
            &rpc,
            "--deployment",
            wrong.to_str().unwrap(),
        ],
    )
    .failure("show of a wrong deployment");
    assert!(
        err.contains("--deployment") && err.contains("does not match the chain"),
        "{err}"
    );

    // --force deploys anew over the file.
    run(
        None,
        &[
            "chain",
            "deploy",
            "--rpc-url",
            &rpc,
            "--account",
            "0",
            "--out",
            out_arg,
            "--force",
        ],
    )
    .succeeded("deploy --force");
    let again = read_deployment(&out).unwrap();
    assert_ne!(again.tmc, deployment.tmc);
    Market::open(devnet.provider(), devnet.wallet(), again).await.unwrap();
}
