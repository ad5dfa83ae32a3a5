//! The people's command line (`drlaas task|worker|model`), run as the built binary against a real
//! anvil chain with the market deployed, a local content store and the real trainer, found through
//! a data directory's `network.json` as after `drlaas local run`.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use drlaas_chain::alloy::primitives::{Address, B256, U256, keccak256, utils::parse_ether};
use drlaas_chain::alloy::providers::Provider;
use drlaas_chain::devnet::{Devnet, ORACLE};
use drlaas_chain::{EnvKind, Market, MarketParams, NewListing, TaskKind, TaskStatus};
use drlaas_core::mirror::{PostedTask, mirror_name, mirrored_task};
use drlaas_crds::task::TaskKind as SpecKind;
use drlaas_local::network::Network;
use drlaas_store::{ContentStore, Store};
use serde_json::Value;

mod cli_run;
use cli_run::{Ran, drlaas_command};

/// The local mode's default requester.
const REQUESTER: usize = 5;
/// A worker that registers from the command line.
const WORKER: usize = 6;

/// Runs `drlaas ARGS --data-dir DIR` with no key in the environment, and the trainer of the current
/// source for `task evaluate`.
fn drlaas(data_dir: &Path, args: &[&str]) -> Ran {
    let trainer = drlaas_local::local_pod::build_trainer();
    Ran::of(
        drlaas_command()
            .args(args)
            .arg("--data-dir")
            .arg(data_dir)
            .env("DRLAAS_TRAINER_BIN", trainer),
    )
}

/// A marketplace as `drlaas local run` leaves it: a dev chain with the market deployed and a data
/// directory whose network.json names it and a local store.
struct Marketplace {
    devnet: Devnet,
    market: Market,
    dir: tempfile::TempDir,
    store: Store,
}

impl Marketplace {
    async fn start() -> Marketplace {
        let devnet = Devnet::spawn(8).expect("anvil starts (run tools/setup.sh)");
        let market = devnet.deploy_market(MarketParams::default()).await.unwrap();
        let dir = tempfile::tempdir().unwrap();
        let store_dir = dir.path().join("store");
        let store = Store::open(store_dir.to_str().unwrap()).unwrap();
        Network {
            rpc_url: devnet.endpoint().to_string(),
            deployment: *market.deployment(),
            store: store_dir.display().to_string(),
            dev_chain: true,
        }
        .save(dir.path())
        .unwrap();
        Marketplace {
            devnet,
            market,
            dir,
            store,
        }
    }

    fn run(&self, args: &[&str]) -> Ran {
        drlaas(self.dir.path(), args)
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn write(&self, name: &str, text: &str) -> String {
        std::fs::write(self.path(name), text).unwrap();
        self.path(name).display().to_string()
    }

    fn account(&self, i: usize) -> Address {
        self.devnet.accounts()[i]
    }
}

const CARTPOLE_TASK: &str = r#"
apiVersion: drlaas.io/v1alpha1
kind: DRLTask
metadata:
  name: balance
spec:
  training:
    environment:
      kind: cartpole
    ppo:
      numEnvs: 4
      numSteps: 16
    totalEnvSteps: 640
    targetMeanReturn: 5.0
  resources:
    cpu: "1"
    memory: 1Gi
  deadlineSeconds: 7200
"#;

/// The value after `label` on the line that starts with it.
fn field<'a>(text: &'a str, label: &str) -> &'a str {
    text.lines()
        .find_map(|l| l.trim().strip_prefix(label))
        .unwrap_or_else(|| panic!("no {label:?} in:\n{text}"))
        .split_whitespace()
        .next()
        .unwrap()
}

/// Trains a small cartpole model with the trainer into `store`: its CID, its bytes and the
/// trainer's progress lines.
fn train(store_dir: &str, work: &Path) -> (String, Vec<u8>, String) {
    let trainer = drlaas_local::local_pod::build_trainer();
    let task = work.join("train.json");
    std::fs::write(
        &task,
        r#"{"environment": {"kind": "cartpole"}, "ppo": {"numEnvs": 4, "numSteps": 16},
            "totalEnvSteps": 640, "targetMeanReturn": 5.0, "seed": 1}"#,
    )
    .unwrap();
    let out = work.join("trained");
    let run = Command::new(trainer)
        .args(["train", "--threads", "1", "--progress", "json", "--task"])
        .arg(&task)
        .arg("--out")
        .arg(&out)
        .args(["--store", store_dir])
        .output()
        .unwrap();
    let stderr = String::from_utf8(run.stderr).unwrap();
    assert!(run.status.success(), "the trainer failed: {stderr}");
    let result: drlaas_crds::trainer_output::TrainResult =
        serde_json::from_str(String::from_utf8(run.stdout).unwrap().lines().last().unwrap()).unwrap();
    let bytes = std::fs::read(out.join("model.safetensors")).unwrap();
    (result.model_cid.expect("the model was stored"), bytes, stderr)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_requester_and_a_worker_go_through_the_market_from_the_command_line() {
    let m = Marketplace::start().await;
    let (requester, worker) = (m.account(REQUESTER), m.account(WORKER));
    let chain_id = m.market.deployment().chain_id;

    // The requester submits a task and waits for it: on chain with its budget in escrow, from
    // account 5 by default.
    let file = m.write("task.yaml", CARTPOLE_TASK);
    let mut waiting = Command::new(env!("CARGO_BIN_EXE_drlaas"))
        .args(["task", "submit", &file, "--budget", "1.5", "--wait", "--data-dir"])
        .arg(m.dir.path())
        .env_remove("DRLAAS_KEY")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(waiting.stdout.take().unwrap()).lines();
    let mut out = String::new();
    while !out.contains("document") {
        let line = lines.next().expect("task submit prints the task").unwrap();
        out.push_str(&line);
        out.push('\n');
    }
    let id: u64 = field(&out, "posted task").parse().unwrap();
    let tx: B256 = field(&out, "transaction").parse().unwrap();
    let info = m.market.task(id).await.unwrap();
    assert_eq!(
        (info.status, info.requester, info.budget, info.kind, info.target_milli),
        (
            TaskStatus::Posted,
            requester,
            parse_ether("1.5").unwrap(),
            TaskKind::Training,
            5_000
        )
    );
    assert_eq!(m.market.escrow(id).await.unwrap(), parse_ether("1.5").unwrap());
    let receipt = m.devnet.provider().get_transaction_receipt(tx).await.unwrap().unwrap();
    assert!(
        receipt.status() && receipt.from == requester,
        "the escrow transaction is the requester's"
    );
    // The document it stored is one the operator's chain watcher mirrors.
    let spec_cid = m.market.task_spec_cid(id).await.unwrap();
    assert_eq!(field(&out, "document"), spec_cid);
    let document = m
        .store
        .get_bytes(&drlaas_store::cid::parse(&spec_cid).unwrap())
        .await
        .unwrap();
    let posted = PostedTask {
        id,
        requester: requester.to_string(),
        kind: SpecKind::Training,
        target_milli: info.target_milli,
        deadline: info.deadline,
        budget_wei: 1_500_000_000_000_000_000,
        spec_cid: spec_cid.clone(),
    };
    let now = m.devnet.now().await.unwrap();
    let mirrored = mirrored_task(chain_id, &posted, std::str::from_utf8(&document).unwrap(), now)
        .expect("the chain watcher accepts the submitted task");
    assert_eq!(mirrored.spec.training.total_env_steps, 640);

    let list = m.run(&["task", "list"]).success("task list");
    let row = list.lines().find(|l| l.starts_with(&format!("{id} "))).expect(&list);
    for cell in ["Training", "cartpole", "Posted", "1.5 ETH"] {
        assert!(row.contains(cell), "{cell} in {row:?}");
    }
    assert!(list.starts_with("ID  KIND"), "{list}");

    // A worker registers and lists itself.
    let register = [
        "worker",
        "register",
        "--account",
        "6",
        "--stake",
        "2",
        "--price",
        "1000",
        "--expertise",
        "cartpole=200,maze-cleaning=150",
        "--cpu-cores",
        "8",
        "--memory-gib",
        "16",
    ];
    m.run(&register).success("worker register");
    let registered = m.market.worker(worker).await.unwrap().expect("registered on chain");
    assert_eq!(registered.stake, parse_ether("2").unwrap());
    assert_eq!(registered.profile.expertise.level(EnvKind::MazeCleaning), 150);
    assert!(
        m.run(&register)
            .failure("a second registration")
            .contains("already registered"),
        "a worker registers once"
    );
    let workers = m.run(&["worker", "list"]).success("worker list");
    let row = workers
        .lines()
        .find(|l| l.starts_with(&worker.to_string()))
        .expect(&workers);
    for cell in [
        "0.0000",
        "2 ETH",
        "cartpole=200,maze-cleaning=150",
        "8 CPU, 0 GPU, 16 GiB",
    ] {
        assert!(row.contains(cell), "{cell} in {row:?}");
    }

    // The task is assigned to it and trained (the real trainer, into the marketplace's store); the
    // local mode keeps the trainer's progress in the data directory.
    m.market
        .assign(m.account(ORACLE), id, worker, registered.profile.price_per_task)
        .await
        .unwrap();
    let store_dir = m.path("store").display().to_string();
    let (model_cid, model, progress) = train(&store_dir, m.dir.path());
    let logs = m.path("pods/drlaas-system");
    std::fs::create_dir_all(&logs).unwrap();
    std::fs::write(
        logs.join(format!("{}-train-1.log", mirror_name(chain_id, id))),
        &progress,
    )
    .unwrap();
    let status = m.run(&["task", "status", &id.to_string()]).success("task status");
    assert_eq!(field(&status, "Status:"), "Assigned", "{status}");
    assert_eq!(field(&status, "Worker:"), worker.to_string());
    assert!(
        status
            .lines()
            .any(|l| l.starts_with("Escrow:") && l.ends_with(" 1.5 ETH")),
        "{status}"
    );
    assert!(
        status
            .lines()
            .any(|l| l.starts_with("Attempts:") && l.ends_with(" 1 of 3")),
        "{status}"
    );
    assert!(
        status
            .lines()
            .any(|l| l.starts_with("Price:") && l.ends_with(" 1000 wei")),
        "{status}"
    );
    assert!(
        status.contains("attempt 1: update 10/10 (100%), 640 env steps"),
        "{status}"
    );
    let curve = field(&status, "Return:");
    assert!(
        !curve.is_empty() && curve.chars().all(|c| ('▁'..='█').contains(&c)),
        "a sparkline of the mean return: {status}"
    );

    m.market
        .submit_result(worker, id, &model_cid, keccak256(b"result"))
        .await
        .unwrap();
    let json: Value = serde_json::from_str(
        &m.run(&["task", "status", &id.to_string(), "-o", "json"])
            .success("status json"),
    )
    .unwrap();
    assert_eq!(
        (json["status"].as_str(), json["modelCid"].as_str()),
        (Some("Submitted"), Some(model_cid.as_str()))
    );
    assert_eq!(json["environment"], "cartpole");
    assert!(json["progress"]["points"].as_array().unwrap().len() >= 2);

    // The requester fetches the model (verified against its CID) and evaluates it.
    let fetched = m.path("fetched.safetensors");
    let out = m
        .run(&[
            "task",
            "fetch-model",
            &id.to_string(),
            "--out",
            fetched.to_str().unwrap(),
        ])
        .success("fetch-model");
    assert!(out.contains(&format!("verified against {model_cid}")), "{out}");
    assert_eq!(std::fs::read(&fetched).unwrap(), model);
    let out = m
        .run(&["task", "evaluate", &model_cid, "--episodes", "4", "--seed", "3"])
        .success("evaluate");
    assert!(
        out.starts_with("mean return ") && out.contains("over 4 episodes of cartpole (seed 3)"),
        "{out}"
    );
    let json: Value = serde_json::from_str(
        &m.run(&[
            "task",
            "evaluate",
            &id.to_string(),
            "--episodes",
            "4",
            "--seed",
            "3",
            "-o",
            "json",
        ])
        .success("evaluate json"),
    )
    .unwrap();
    assert_eq!((json["episodes"].as_u64(), json["seed"].as_u64()), (Some(4), Some(3)));
    assert!(
        out.contains(&format!("{:.2}", json["meanReturn"].as_f64().unwrap())),
        "the same seed, the same return"
    );

    // The oracle accepts the result: the waiting submit sees the task completed and exits 0.
    m.market.complete(m.account(ORACLE), id).await.unwrap();
    let start = std::time::Instant::now();
    let exit = loop {
        if let Some(exit) = waiting.try_wait().unwrap() {
            break exit;
        }
        if start.elapsed() > std::time::Duration::from_secs(60) {
            waiting.kill().unwrap();
            panic!("task submit --wait did not end after the task completed");
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    };
    let waited: Vec<String> = lines.map(Result::unwrap).collect();
    assert!(exit.success(), "{waited:?}");
    assert_eq!(
        waited.first().map(String::as_str),
        Some(format!("task {id}: Posted (attempt 0)").as_str())
    );
    assert_eq!(
        waited.last().map(String::as_str),
        Some(format!("task {id} completed: model {model_cid}").as_str())
    );

    // The worker lists the model; the requester buys it.
    let price = parse_ether("0.25").unwrap();
    m.market
        .list_model(
            worker,
            &NewListing {
                model_cid: model_cid.clone(),
                env_kind: EnvKind::Cartpole,
                env_descriptor_hash: keccak256(br#"{"kind":"cartpole"}"#),
                price,
                parent: None,
                royalty_bps: 0,
            },
        )
        .await
        .unwrap();
    let models = m.run(&["model", "list"]).success("model list");
    let row = models.lines().find(|l| l.starts_with("1 ")).expect(&models);
    for cell in ["cartpole", "0.25 ETH", &worker.to_string(), "listed", &model_cid] {
        assert!(row.contains(cell), "{cell} in {row:?}");
    }
    let out = m.run(&["model", "buy", "1"]).success("model buy");
    assert!(
        out.contains(&format!("bought listing 1 for 0.25 ETH: model {model_cid}")),
        "{out}"
    );
    assert!(m.market.has_purchased(1, requester).await.unwrap());
    assert_eq!(m.market.credits(worker).await.unwrap().mmc, price);
    assert!(
        m.run(&["model", "buy", "1"])
            .failure("a second purchase")
            .contains("already bought listing 1")
    );

    // A model whose stored bytes were altered is refused, and nothing is written.
    for block in walk(&m.path("store/blocks")) {
        if std::fs::read(&block).unwrap() == model {
            let mut forged = model.clone();
            forged[100] ^= 1;
            std::fs::write(&block, forged).unwrap();
        }
    }
    let forged_out = m.path("forged.safetensors");
    let err = m
        .run(&["task", "fetch-model", &model_cid, "--out", forged_out.to_str().unwrap()])
        .failure("fetching a forged model");
    assert!(err.contains("integrity check failed"), "{err}");
    assert!(!forged_out.exists());
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        if entry.path().is_dir() {
            files.extend(walk(&entry.path()));
        } else {
            files.push(entry.path());
        }
    }
    files
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_mistake_is_named_before_anything_is_paid() {
    let m = Marketplace::start().await;
    let submit = |file: &str, extra: &[&str]| {
        let mut args = vec!["task", "submit", file];
        args.extend_from_slice(extra);
        m.run(&args).failure(file)
    };

    // A wrong field: the error names its path.
    let bad = m.write(
        "bad.yaml",
        &CARTPOLE_TASK.replace("totalEnvSteps: 640", "totalEnvSteps: lots"),
    );
    let err = submit(&bad, &["--budget", "1"]);
    assert!(err.contains("spec.training.totalEnvSteps"), "{err}");

    // An unknown environment kind: the error lists the known ones.
    let unknown = m.write("unknown.yaml", &CARTPOLE_TASK.replace("kind: cartpole", "kind: mujoco"));
    let err = submit(&unknown, &["--budget", "1"]);
    assert!(
        err.contains("mujoco")
            && ["cartpole", "target-localization", "maze-cleaning", "fleet-coordination"]
                .iter()
                .all(|k| err.contains(k)),
        "{err}"
    );

    // No budget, and no target for the escrow to pay against.
    let ok = m.write("ok.yaml", CARTPOLE_TASK);
    assert!(submit(&ok, &[]).contains("no budget: pass --budget ETH or set spec.payment.amountWei"));
    let aimless = m.write(
        "aimless.yaml",
        &CARTPOLE_TASK.replace("    targetMeanReturn: 5.0\n", ""),
    );
    assert!(submit(&aimless, &["--budget", "1"]).contains("spec.training.targetMeanReturn"));

    // An account that cannot pay the escrow.
    let poor = drlaas_chain::alloy::signers::local::PrivateKeySigner::random();
    let _: Value = m
        .devnet
        .provider()
        .raw_request(
            "anvil_setBalance".into(),
            (poor.address(), U256::from(10u64).pow(U256::from(17u64))),
        )
        .await
        .unwrap();
    let key = m.write("poor.key", &poor.to_bytes().to_string());
    let err = submit(&ok, &["--budget", "1", "--key-file", &key]);
    assert!(
        err.contains(&format!(
            "account {} holds 0.1 ETH, the task escrows 1 ETH plus gas",
            poor.address()
        )),
        "{err}"
    );

    // A chain that does not answer, and no marketplace at all.
    let err = submit(&ok, &["--budget", "1", "--rpc-url", "http://127.0.0.1:9"]);
    assert!(err.contains("cannot reach the chain at http://127.0.0.1:9"), "{err}");
    let nowhere = tempfile::tempdir().unwrap();
    let err = drlaas(nowhere.path(), &["task", "list"]).failure("no marketplace");
    assert!(
        err.contains("no marketplace found") && err.contains("drlaas local run"),
        "{err}"
    );

    assert_eq!(m.market.task_count().await.unwrap(), 0, "nothing was posted");
}
