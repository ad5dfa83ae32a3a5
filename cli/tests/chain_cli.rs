//! `drlaas chain deploy|set-oracles|execute|show`, run as the built binary against a real anvil
//! chain: the admin deploys the contracts with their oracle set, the deployment and the Helm values
//! it prints match the chain, and a new oracle set is scheduled, refused before its governance delay
//! is over and executed after it.

use std::collections::BTreeMap;
use std::path::Path;

use drlaas_chain::alloy::primitives::Address;
use drlaas_chain::devnet::{ADMIN, Devnet, ORACLE};
use drlaas_chain::{Contract, Deployment, Market, read_deployment};
use serde::Deserialize;

mod cli_run;
use cli_run::{Ran, drlaas_command};

/// An account that is neither the admin nor an oracle.
const OTHER: usize = 2;
/// Another such account.
const STRANGER: usize = 3;

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
    let (oracle, other, stranger) = (accounts[ORACLE], accounts[OTHER], accounts[STRANGER]);
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

    // A quorum that is no majority is refused before anything is sent.
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
            &oracle.to_string(),
            "--oracle",
            &other.to_string(),
            "--quorum",
            "1",
        ],
    )
    .failure("deploy with a minority quorum");
    assert!(err.contains("--quorum") && err.contains("not a majority"), "{err}");
    assert!(!out.exists());

    // The admin deploys with a key file and the operator's account as the oracle, with the default
    // governance delay (2 days).
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
    assert!(
        deployed.stderr.contains(&format!("oracle {oracle} (seat 0)"))
            && deployed.stderr.contains("governance delay 172800 s (2d)"),
        "{}",
        deployed.stderr
    );
    let deployment = read_deployment(&out).unwrap();
    let market = Market::open(devnet.provider(), devnet.wallet(), deployment)
        .await
        .expect("the written deployment is on chain");
    assert!(market.is_oracle(oracle).await.unwrap());
    assert!(!market.is_oracle(other).await.unwrap());
    assert_eq!(market.governance_delay(Contract::Umc).await.unwrap(), 2 * 24 * 3600);

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
    for line in [
        deployment.tmc.to_string(),
        format!("oracle (seat  0)    {oracle}"),
        "quorum              1 of 1 (oracle set epoch 1)".into(),
        "governance delay    172800 s (2d)".into(),
        "terms               verification window 86400 s (1d), 3 attempts, slash 1000 bps, reputation floor 0.01 ETH"
            .into(),
        format!("--oracle            {oracle} allowed"),
    ] {
        assert!(shown.stdout.contains(&line), "{line} in\n{}", shown.stdout);
    }
    let json = run(None, &["chain", "show", "--rpc-url", &rpc, "-o", "json"]).succeeded("show -o json");
    let json: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    let address = |v: &serde_json::Value| v.as_str().unwrap().parse::<Address>().unwrap();
    assert_eq!(address(&json["admin"]), accounts[ADMIN]);
    assert_eq!(address(&json["contracts"]["umc"]), deployment.umc);
    assert_eq!(address(&json["oracleSet"][0]), oracle);
    assert_eq!(
        (json["quorum"].as_u64(), json["governanceDelay"].as_u64()),
        (Some(1), Some(172_800))
    );
    let err = run(
        None,
        &["chain", "show", "--rpc-url", &rpc, "--oracle", &other.to_string()],
    )
    .failure("show with an oracle that is not allowed");
    assert!(err.contains("not allowed"), "{err}");

    // Only the admin changes the oracle set.
    let set = [
        "chain",
        "set-oracles",
        "--oracle",
        &oracle.to_string(),
        "--oracle",
        &other.to_string(),
        "--oracle",
        &stranger.to_string(),
        "--rpc-url",
        &rpc,
    ];
    let err = run(None, &[&set[..], &["--account", &OTHER.to_string()]].concat())
        .failure("set-oracles signed by another account");
    assert!(
        err.contains(&format!("--account {OTHER}: account {other} is not the admin")),
        "{err}"
    );
    let err = run(None, &[&set[..], &["--key-file", key_file, "--quorum", "1"]].concat())
        .failure("set-oracles with a minority quorum");
    assert!(err.contains("--quorum: 1 of 3 oracles is not a majority"), "{err}");

    // The admin schedules a 2-of-3 set (key file): nothing changes before the delay.
    let scheduled = run(None, &[&set[..], &["--key-file", key_file]].concat()).succeeded("set-oracles");
    let line = scheduled.stdout.trim();
    assert!(
        line.starts_with("scheduled, executable at ") && line.contains("(id 0x"),
        "{}",
        scheduled.stdout
    );
    assert!(
        scheduled.stderr.contains("drlaas chain execute --oracle"),
        "{}",
        scheduled.stderr
    );
    assert!(!market.is_oracle(other).await.unwrap());
    // Anyone may execute it, but not before the delay is over; nor a change never scheduled.
    let other_account = OTHER.to_string();
    let execute = [&["chain", "execute"][..], &set[2..], &["--account", &other_account]].concat();
    let err = run(None, &execute).failure("execute before the delay");
    assert!(err.contains("executable only at"), "{err}");
    let err = run(None, &[&execute[..], &["--quorum", "3"]].concat()).failure("execute of an unscheduled change");
    assert!(
        err.contains("no change to these oracles and quorum is scheduled"),
        "{err}"
    );
    devnet.warp(2 * 24 * 3600).await.unwrap();
    let executed = run(None, &execute).succeeded("execute");
    assert_eq!(executed.stdout.trim(), "executed");
    let consortium = market.consortium().await.unwrap();
    assert_eq!(
        (consortium.oracles, consortium.quorum),
        (vec![oracle, other, stranger], 2)
    );
    let err = run(None, &execute).failure("execute twice");
    assert!(err.contains("they are the oracle set already"), "{err}");

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

    // --force deploys anew over the file; with no --oracle the admin is the only oracle.
    let redeployed = run(
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
    assert!(
        redeployed.stderr.contains(&format!(
            "no --oracle: the admin {} is the only oracle",
            accounts[ADMIN]
        )),
        "{}",
        redeployed.stderr
    );
    let again = read_deployment(&out).unwrap();
    assert_ne!(again.tmc, deployment.tmc);
    let market = Market::open(devnet.provider(), devnet.wallet(), again).await.unwrap();
    assert!(market.is_oracle(accounts[ADMIN]).await.unwrap());
}
