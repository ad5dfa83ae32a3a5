//! The dev stack of `deploy/dev` and the chart's default values agree: the setup Job's commands,
//! run as written (with the in-cluster addresses pointed at a local anvil and store), deploy the
//! contracts where `charts/drlaas/values.yaml` says they are, allow the oracle whose key the dev
//! oracle Secret holds, and register every dev Worker with the key of its Secret.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use drlaas_chain::alloy::primitives::Address;
use drlaas_chain::alloy::signers::local::PrivateKeySigner;
use drlaas_chain::devnet::{self, Devnet};
use drlaas_chain::{Market, read_deployment};
use serde_json::Value;

const IN_CLUSTER_RPC: &str = "http://anvil.drlaas-dev.svc.cluster.local:8545";
const IN_CLUSTER_STORE: &str = "http://kubo.drlaas-dev.svc.cluster.local:5001";

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(path)
}

/// Every YAML document of a file.
fn objects(path: &str) -> Vec<Value> {
    let text = std::fs::read_to_string(repo(path)).unwrap();
    serde_saphyr::from_multiple::<Value>(&text)
        .unwrap()
        .into_iter()
        .filter(|v| !v.is_null())
        .collect()
}

/// The dev Secrets by namespace/name: their key name and the account of the key.
fn dev_keys() -> BTreeMap<String, (String, Address)> {
    objects("deploy/dev/dev-keys.yaml")
        .into_iter()
        .map(|secret| {
            let meta = &secret["metadata"];
            let (key, value) = secret["stringData"].as_object().unwrap().iter().next().unwrap();
            let signer: PrivateKeySigner = value.as_str().unwrap().parse().unwrap();
            (
                format!(
                    "{}/{}",
                    meta["namespace"].as_str().unwrap(),
                    meta["name"].as_str().unwrap()
                ),
                (key.clone(), signer.address()),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_setup_job_puts_the_market_where_the_chart_defaults_say() {
    let devnet = Devnet::spawn(6).expect("anvil starts (run tools/setup.sh)");
    let rpc = devnet.endpoint().to_string();
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let shared = dir.path().join("shared");
    std::fs::create_dir_all(&shared).unwrap();

    // The Job's containers in the order Kubernetes runs them.
    let job = &objects("deploy/dev/setup-job.yaml")[0];
    let pod = &job["spec"]["template"]["spec"];
    let steps: Vec<&Value> = pod["initContainers"]
        .as_array()
        .unwrap()
        .iter()
        .chain(pod["containers"].as_array().unwrap())
        .collect();
    assert_eq!(steps.len(), 3);
    for step in steps {
        let args: Vec<String> = step["args"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| {
                a.as_str()
                    .unwrap()
                    .replace(IN_CLUSTER_RPC, &rpc)
                    .replace(IN_CLUSTER_STORE, store.to_str().unwrap())
                    .replace("/shared", shared.to_str().unwrap())
            })
            .collect();
        let out = Command::new(env!("CARGO_BIN_EXE_drlaas"))
            .args(&args)
            .env("DRLAAS_DATA_DIR", &shared)
            .env_remove("DRLAAS_KEY")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "container {}: drlaas {args:?} failed:\n{}",
            step["name"],
            String::from_utf8_lossy(&out.stderr)
        );
    }

    // The contracts are where the chart's default values say.
    let deployment = read_deployment(&shared.join("deployment.json")).unwrap();
    let values = &objects("charts/drlaas/values.yaml")[0];
    let chain = &values["chain"];
    assert_eq!(chain["rpcUrl"], IN_CLUSTER_RPC);
    assert_eq!(chain["chainId"].as_u64(), Some(deployment.chain_id));
    assert!(chain["deploymentBlock"].as_u64().unwrap() <= deployment.block);
    let contracts = &chain["contracts"];
    for (name, address) in [
        ("umc", deployment.umc),
        ("tmc", deployment.tmc),
        ("mmc", deployment.mmc),
    ] {
        let expected: Address = contracts[name].as_str().unwrap().parse().unwrap();
        assert_eq!(address, expected, "chart default chain.contracts.{name}");
    }
    assert_eq!(values["store"]["apiUrl"], IN_CLUSTER_STORE);

    let market = Market::open(devnet.provider(), devnet::wallet([]), deployment)
        .await
        .unwrap();
    let keys = dev_keys();

    // The chart's default oracle Secret is the dev one, and its account is an oracle.
    let oracle_secret = format!("drlaas-system/{}", values["oracle"]["existingSecret"].as_str().unwrap());
    let (key_name, oracle) = &keys[&oracle_secret];
    assert_eq!(values["oracle"]["key"].as_str(), Some(key_name.as_str()));
    assert!(market.is_oracle(*oracle).await.unwrap(), "{oracle} is not an oracle");

    // Every dev Worker is registered on chain with the account of its key Secret.
    let workers = objects("deploy/dev/workers.yaml");
    assert_eq!(workers.len(), 2);
    for worker in workers {
        let spec = &worker["spec"];
        let address: Address = spec["address"].as_str().unwrap().parse().unwrap();
        let secret = format!("drlaas-system/{}", spec["keySecretRef"]["name"].as_str().unwrap());
        let (key_name, key_account) = &keys[&secret];
        assert_eq!(key_name, "privateKey");
        assert_eq!(
            *key_account, address,
            "{secret} holds the key of {}",
            worker["metadata"]["name"]
        );
        let info = market.worker(address).await.unwrap();
        assert!(info.is_some(), "{address} is not registered");
    }

    // The example requester's wallet is funded.
    let (_, requester) = &keys["team-a/requester-wallet"];
    assert!(market.balance(*requester).await.unwrap() > drlaas_chain::alloy::primitives::U256::ZERO);
}
