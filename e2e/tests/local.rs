//! The local mode end to end: the `drlaas` binary (`drlaas local run`) with its own anvil, the
//! local content store and the real trainer, as a newcomer runs it. Each test checks the outcome
//! on chain: statuses, payments, refunds, stake and reputation, to the wei.
//!
//! Runs the `drlaas` and `drlaas-trainer` binaries of the current source (each test process builds
//! them once, a no-op when fresh) and needs the pinned anvil (tools/setup.sh).

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use drlaas_chain::alloy::primitives::{Address, U256, utils::parse_ether};
use drlaas_chain::alloy::providers::Provider;
use drlaas_chain::alloy::rpc::types::Filter;
use drlaas_chain::alloy::sol_types::SolEvent;
use drlaas_chain::bindings::TMC;
use drlaas_chain::devnet;
use drlaas_chain::{Market, TaskId, TaskStatus};
use drlaas_local::api_server::ApiServer;
use drlaas_local::network::Network;
use serde_json::Value;

/// The tests take turns: each trains on both cores.
static TURN: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

const REQUESTER: usize = 5;

use drlaas_e2e::workspace_binary as binary;

/// A data directory whose chain is stopped when the test ends, however it ends.
struct Local {
    dir: tempfile::TempDir,
}

impl Drop for Local {
    fn drop(&mut self) {
        let _ = self.command(&["local", "stop"]).output();
    }
}

impl Local {
    fn new() -> Local {
        Local {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(binary("drlaas"));
        command
            .args(args)
            .arg("--data-dir")
            .arg(self.path())
            .env("DRLAAS_TRAINER_BIN", binary("drlaas-trainer"))
            .stdin(Stdio::null());
        command
    }

    /// Writes `files` (name, YAML) into the data directory's parent and returns their paths.
    fn write(&self, name: &str, text: &str) -> String {
        let path = self.path().with_extension(name);
        std::fs::write(&path, text).unwrap();
        path.display().to_string()
    }

    /// `drlaas local run ARGS…`, which must succeed.
    fn run(&self, args: &[&str]) -> Output {
        self.run_with(args, &[])
    }

    /// `drlaas local run ARGS…` of tasks on external environments, which must succeed: with the
    /// environment servers' Python (tools/envserver-env.sh), the server tests' environments
    /// (`envs_for_tests`) on its path, and `env` besides.
    fn run_external(&self, args: &[&str], env: &[(&str, &Path)]) -> Output {
        let python = PathBuf::from(env_python());
        let tests = Path::new(env!("CARGO_MANIFEST_DIR")).join("../envserver/tests");
        let mut all = vec![("DRLAAS_ENV_PYTHON", python.as_path()), ("PYTHONPATH", tests.as_path())];
        all.extend_from_slice(env);
        let output = self.run_with(args, &all);
        // The environments ran in the pods' environment sidecars, as in a cluster: the kubelet
        // kept each sidecar's output beside its pod.
        let sidecar_logs = walk(&self.path().join("pods"))
            .into_iter()
            .filter(|p| p.to_string_lossy().ends_with(".environment.log"))
            .count();
        assert!(sidecar_logs > 0, "no pod ran an environment sidecar");
        output
    }

    fn run_with(&self, args: &[&str], env: &[(&str, &Path)]) -> Output {
        let mut all = vec!["local", "run"];
        all.extend_from_slice(args);
        let mut command = self.command(&all);
        command.envs(env.iter().copied());
        let output = command.output().unwrap();
        assert!(
            output.status.success(),
            "drlaas local run {args:?} failed:\n{}\n{}\n{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr),
            std::fs::read_to_string(self.path().join("drlaas.log")).unwrap_or_default()
        );
        output
    }

    fn network(&self) -> Network {
        Network::load(self.path())
            .unwrap()
            .expect("the run recorded its network")
    }

    /// The marketplace, read-only, and anvil's dev accounts.
    async fn market(&self) -> (Market, Vec<Address>) {
        let network = self.network();
        let provider = devnet::http_provider(network.rpc_url.parse().unwrap());
        let market = Market::connect(provider, devnet::wallet([]), network.deployment);
        let accounts = market.provider().get_accounts().await.unwrap();
        (market, accounts)
    }

    /// Chain task 1 completed: its worker paid its price, the rest of the requester's 0.5 budget
    /// refunded.
    async fn assert_paid_and_the_rest_refunded(&self) {
        let (market, accounts) = self.market().await;
        let chain_task = market.task(1).await.unwrap();
        assert_eq!(chain_task.status, TaskStatus::Completed);
        let requester = market.credits(accounts[REQUESTER]).await.unwrap();
        assert_eq!(
            requester.tmc,
            wei("0.5") - chain_task.price,
            "the rest of the budget is refunded"
        );
    }

    /// Chain task 1 failed: its escrow empty, the requester's whole 0.5 budget refunded.
    async fn assert_failed_and_all_refunded(&self) {
        let (market, accounts) = self.market().await;
        assert_eq!(market.task(1).await.unwrap().status, TaskStatus::Failed);
        assert_eq!(market.escrow(1).await.unwrap(), U256::ZERO);
        let requester = market.credits(accounts[REQUESTER]).await.unwrap();
        assert_eq!(requester.tmc, wei("0.5"), "the whole budget is refunded");
    }

    /// The task objects of the data directory's API server, by name.
    fn task(&self, name: &str) -> Value {
        let api = ApiServer::read(&self.path().join("api.jsonl")).unwrap();
        api.get("drltasks", "default", name)
            .unwrap_or_else(|| panic!("task {name} is in the data directory"))
    }
}

/// Every file under `dir`, at any depth.
fn walk(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .flatten()
        .flat_map(|e| {
            let path = e.path();
            if path.is_dir() { walk(&path) } else { vec![path] }
        })
        .collect()
}

fn task_yaml(name: &str, extra: &str) -> String {
    format!(
        "apiVersion: drlaas.io/v1alpha1
kind: DRLTask
metadata:
  name: {name}
spec:
  training:
    environment:
      kind: cartpole
    totalEnvSteps: 150000
    targetMeanReturn: 150
    seed: 1
  resources:
    cpu: \"1\"
    memory: 1Gi
  payment:
    amountWei: \"500000000000000000\"
    walletSecretRef:
      name: requester-wallet
{extra}"
    )
}

const HONEST: &str = "  - name: honest
    account: 2
    pricePerTaskWei: \"100000000000000000\"
    capacity: {cpuCores: 8, memoryGib: 16}
    expertise: {cartpole: 0.5}
";

/// A worker that cannot train cartpole: it hosts evaluations only.
const VERIFIER: &str = "  - name: verifier
    account: 3
    pricePerTaskWei: \"100000000000000000\"
    capacity: {cpuCores: 8, memoryGib: 16}
    expertise: {fleet-coordination: 0.5}
";

fn misbehaving(behavior: &str) -> String {
    format!(
        "  - name: {}
    account: 4
    pricePerTaskWei: \"10000000000000000\"
    capacity: {{cpuCores: 8, memoryGib: 16}}
    expertise: {{cartpole: 1.0}}
    behavior: {behavior}
",
        behavior.to_lowercase()
    )
}

async fn tasks_completed(market: &Market, task: TaskId) -> usize {
    let filter = Filter::new()
        .address(market.deployment().tmc)
        .event_signature(TMC::TaskCompleted::SIGNATURE_HASH)
        .topic1(U256::from(task))
        .from_block(0);
    market.provider().get_logs(&filter).await.unwrap().len()
}

fn wei(eth: &str) -> U256 {
    parse_ether(eth).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_model_is_trained_sold_and_fine_tuned_for_a_similar_task() {
    let _turn = TURN.lock().await;
    let local = Local::new();
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/examples");
    let first = local.run(&[examples.join("maze-cleaning.yaml").to_str().unwrap()]);
    let table = String::from_utf8_lossy(&first.stdout).to_string();
    assert!(
        table.contains("default/maze-cleaning") && table.contains("Paid"),
        "{table}"
    );
    let trained = local.task("maze-cleaning");
    let parent_cid = trained["status"]["modelCid"].as_str().unwrap().to_string();

    local.run(&[examples.join("model-sharing.yaml").to_str().unwrap()]);
    let shared = local.task("maze-three-agents");
    assert_eq!(shared["status"]["outcome"], "Paid", "{shared:#}");
    // The trainer started from the model of the similar maze, bought on the market.
    let warm = &shared["status"]["warmStart"];
    assert_eq!(warm["modelCid"].as_str(), Some(parent_cid.as_str()), "{shared:#}");
    assert!(warm["similarity"].as_f64().unwrap() >= 0.5, "{warm}");
    let (market, accounts) = local.market().await;
    let listing = warm["listingId"].as_u64().unwrap();
    assert!(market.has_purchased(listing, accounts[REQUESTER]).await.unwrap());
    // The trainer's result (its termination message) names the model it started from.
    let result: Value = serde_json::from_slice(
        &std::fs::read(
            local
                .path()
                .join("pods/default/maze-three-agents-train-1/termination-log"),
        )
        .unwrap(),
    )
    .unwrap();
    assert_eq!(result["parentModelCid"].as_str(), Some(parent_cid.as_str()), "{result}");

    // Money, to the wei: each task paid its worker's price and refunded the rest of its budget;
    // the seller of the parent model got its price (less nothing: no grandparent royalty).
    let budget = wei("0.5");
    let mut refunds = U256::ZERO;
    for id in [1, 2] {
        let task = market.task(id).await.unwrap();
        assert_eq!(task.status, TaskStatus::Completed);
        assert_eq!(tasks_completed(&market, id).await, 1);
        refunds += budget - task.price;
    }
    let credits = market.credits(accounts[REQUESTER]).await.unwrap();
    assert_eq!(credits.tmc, refunds);
    let sold = market.listing(listing).await.unwrap();
    let seller = market.credits(sold.owner).await.unwrap();
    assert_eq!(seller.mmc, sold.price);
    // The curves and the report are written: an SVG with the trained task's curve.
    let curve = std::fs::read_to_string(local.path().join("curves/default-maze-three-agents.svg")).unwrap();
    assert!(
        curve.starts_with("<?xml") && curve.trim_end().ends_with("</svg>"),
        "{curve}"
    );
    assert!(curve.contains(r#"<polyline class="curve""#), "no curve drawn: {curve}");
    let report: Value = serde_json::from_slice(&std::fs::read(local.path().join("report.json")).unwrap()).unwrap();
    assert_eq!(report.as_array().unwrap().len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dishonest_worker_fails_verification_is_slashed_and_the_requester_refunded() {
    let _turn = TURN.lock().await;
    let local = Local::new();
    let workers = local.write(
        "workers.yaml",
        &format!("workers:\n{}{VERIFIER}", misbehaving("shirking")),
    );
    let task = local.write("task.yaml", &task_yaml("cheated", "  maxAttempts: 1\n"));
    local.run(&["--workers", &workers, &task]);

    let status = &local.task("cheated")["status"];
    assert_eq!(status["outcome"], "Refunded", "{status:#}");
    assert_eq!(status["worker"], "shirking");
    let evaluation = &status["evaluation"];
    assert_eq!(evaluation["passed"], false);
    assert!(evaluation["meanReturn"].as_f64().unwrap() < 150.0);

    let (market, accounts) = local.market().await;
    let cheater = market.worker(accounts[4]).await.unwrap().unwrap();
    assert_eq!(cheater.failed_tasks, 1);
    // A newcomer starts at 0, and a failure leaves it there: nothing was earned.
    assert_eq!(cheater.reputation.as_f64(), 0.0, "{}", cheater.reputation);
    let stake = wei("2");
    let slashed = stake / U256::from(10); // MarketParams::default(): 10 %
    assert_eq!(U256::from(cheater.stake), stake - slashed);
    let requester = market.credits(accounts[REQUESTER]).await.unwrap();
    assert_eq!(requester.tmc, wei("0.5"), "the whole budget is refunded");
    assert_eq!(requester.umc, slashed, "the slashed stake goes to the requester");
    assert_eq!(market.escrow(1).await.unwrap(), U256::ZERO);
}

/// A consortium of three oracles with quorum 2, the third dishonest (it seconds every proposal and
/// votes to pay every result): the two honest members, each evaluating on its own, still fail the
/// shirking worker's model (requester refunded, stake slashed), and the honest worker's task is
/// paid exactly once. The dishonest votes stay on chain.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_two_of_three_consortium_fails_a_bad_model_despite_a_dishonest_oracle_and_pays_a_good_one_once() {
    let _turn = TURN.lock().await;
    let local = Local::new();
    let workers = local.write(
        "workers.yaml",
        &format!("workers:\n{HONEST}{}", misbehaving("shirking")),
    );
    let tasks = local.write(
        "tasks.yaml",
        &format!(
            "{}---\n{}",
            task_yaml("first", "  maxAttempts: 1\n"),
            task_yaml("second", "  maxAttempts: 1\n")
        ),
    );
    local.run(&[
        "--oracles",
        "3",
        "--quorum",
        "2",
        "--dishonest-oracles",
        "1",
        "--workers",
        &workers,
        &tasks,
    ]);

    let (market, accounts) = local.market().await;
    let consortium = market.consortium().await.unwrap();
    assert_eq!((consortium.oracles.len(), consortium.quorum), (3, 2));
    let dishonest = consortium.oracles[2];
    // One slot per worker: recruitment gave each worker one of the tasks.
    let of = |worker: &str| {
        ["first", "second"]
            .into_iter()
            .map(|name| local.task(name))
            .find(|t| t["status"]["worker"] == worker)
            .unwrap_or_else(|| panic!("no task went to {worker}"))
    };
    let (cheated, trained) = (of("shirking"), of("honest"));
    let id = |t: &Value| t["status"]["chainTaskId"].as_u64().unwrap();

    assert_eq!(cheated["status"]["outcome"], "Refunded", "{cheated:#}");
    assert_eq!(cheated["status"]["evaluation"]["passed"], false);
    let failed = market.task(id(&cheated)).await.unwrap();
    assert_eq!(failed.status, TaskStatus::Failed);
    assert_eq!(market.escrow(id(&cheated)).await.unwrap(), U256::ZERO);
    let cheater = market.worker(accounts[4]).await.unwrap().unwrap();
    assert_eq!(cheater.failed_tasks, 1);
    assert_eq!(
        U256::from(cheater.stake),
        wei("2") - wei("0.2"),
        "10 % of the stake is slashed"
    );

    assert_eq!(trained["status"]["outcome"], "Paid", "{trained:#}");
    let paid = market.task(id(&trained)).await.unwrap();
    assert_eq!(paid.status, TaskStatus::Completed);
    assert_eq!(tasks_completed(&market, id(&trained)).await, 1, "paid once");
    // The outcomes show the payment, whichever member's vote carried it out.
    let report: Value = serde_json::from_slice(&std::fs::read(local.path().join("report.json")).unwrap()).unwrap();
    let row = report
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["chainTaskId"] == id(&trained))
        .unwrap();
    assert_eq!(row["paidWei"], paid.price.to_string(), "{row}");
    // The requester got the whole budget of the failed task, the rest of the paid one's and the
    // cheater's slashed stake.
    let requester = market.credits(accounts[REQUESTER]).await.unwrap();
    assert_eq!(requester.tmc, wei("0.5") + wei("0.5") - paid.price);
    assert_eq!(requester.umc, wei("0.2"));

    // The dishonest oracle's vote to pay the cheated result is on chain, outvoted.
    let votes = market.votes(id(&cheated)).await.unwrap();
    let ballots =
        |oracle: Address| -> Vec<u8> { votes.iter().filter(|v| v.oracle == oracle).map(|v| v.ballot).collect() };
    // Ballots: 0 assign, 1 complete, 2 fail. The honest members voted to fail it (the second vote
    // carried it out).
    let fails = votes.iter().filter(|v| v.ballot == 2).count();
    assert_eq!(fails, 2, "both honest members voted to fail: {votes:?}");
    assert!(!ballots(consortium.oracles[0]).contains(&1) && !ballots(consortium.oracles[1]).contains(&1));
    // It votes as soon as the result is on chain; the honest members only after the seed block and
    // their evaluation.
    assert!(
        ballots(dishonest).contains(&1),
        "the dishonest oracle voted to pay: {votes:?}"
    );
    assert!(
        ballots(dishonest).iter().all(|&b| b != 2),
        "the dishonest oracle never votes to fail"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_model_trained_on_another_environment_fails_verification_however_well_it_plays_its_own() {
    let _turn = TURN.lock().await;
    let local = Local::new();
    let workers = local.write(
        "workers.yaml",
        &format!("workers:\n{}{VERIFIER}", misbehaving("otherEnvironment")),
    );
    let task = local.write("task.yaml", &task_yaml("swapped", "  maxAttempts: 1\n"));
    local.run(&["--workers", &workers, &task]);

    let status = &local.task("swapped")["status"];
    assert_eq!(status["outcome"], "Refunded", "{status:#}");
    assert_eq!(status["worker"], "otherenvironment");
    assert_eq!(status["evaluation"]["passed"], false, "{status:#}");
    let why = status["lastFailure"].as_str().unwrap_or_default();
    assert!(
        why.contains(r#"the model was trained on {"kind":"cartpole","horizon":501}, not on the task's environment {"kind":"cartpole","horizon":500}"#),
        "{status:#}"
    );
    let (market, accounts) = local.market().await;
    let cheater = market.worker(accounts[4]).await.unwrap().unwrap();
    assert_eq!(cheater.failed_tasks, 1);
    let requester = market.credits(accounts[REQUESTER]).await.unwrap();
    assert_eq!(requester.tmc, wei("0.5"), "the whole budget is refunded");
    assert_eq!(market.escrow(1).await.unwrap(), U256::ZERO);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crashed_trainer_s_task_is_retried_on_another_worker() {
    let _turn = TURN.lock().await;
    crashed_trainer_retried(&[]).await;
}

/// In a 2-of-3 consortium only member 0, which hosts the workers, sees the trainer crash; the worker
/// gives the attempt up with its own key (`abandon`), so the task is retried at once instead of
/// waiting for its deadline.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_a_consortium_a_crashed_trainer_s_attempt_is_abandoned_and_retried_on_another_worker() {
    let _turn = TURN.lock().await;
    let local = crashed_trainer_retried(&["--oracles", "3", "--quorum", "2"]).await;
    let (market, accounts) = local.market().await;
    let abandoned = Filter::new()
        .address(market.deployment().tmc)
        .event_signature(TMC::TaskAbandoned::SIGNATURE_HASH)
        .topic1(U256::from(1))
        .from_block(0);
    let logs = market.provider().get_logs(&abandoned).await.unwrap();
    assert_eq!(logs.len(), 1, "the crashing worker gave its attempt up: {logs:?}");
    let event = TMC::TaskAbandoned::decode_log(&logs[0].inner).unwrap();
    assert_eq!((event.worker, event.attempt), (accounts[4], 1));
}

/// A task whose first worker's trainer crashes, run with `args`: retried on the honest worker and
/// paid once; the data directory.
async fn crashed_trainer_retried(args: &[&str]) -> Local {
    let local = Local::new();
    let workers = local.write(
        "workers.yaml",
        &format!("workers:\n{}{HONEST}", misbehaving("crashing")),
    );
    let task = local.write("task.yaml", &task_yaml("retried", ""));
    local.run(&[args, &["--workers", &workers, &task]].concat());

    let status = &local.task("retried")["status"];
    assert_eq!(status["outcome"], "Paid", "{status:#}");
    assert_eq!(status["worker"], "honest");
    assert_eq!(status["attempts"], 2);
    assert_eq!(status["failedWorkers"][0], "crashing");
    let (market, accounts) = local.market().await;
    assert_eq!(market.worker(accounts[4]).await.unwrap().unwrap().failed_tasks, 1);
    assert_eq!(market.worker(accounts[2]).await.unwrap().unwrap().completed_tasks, 1);
    assert_eq!(market.credits(accounts[2]).await.unwrap().tmc, wei("0.1"));
    assert_eq!(tasks_completed(&market, 1).await, 1);
    local
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_mid_task_and_restarted_every_task_settles_exactly_once() {
    let _turn = TURN.lock().await;
    let local = Local::new();
    let second_honest = HONEST
        .replace("name: honest", "name: honest-b")
        .replace("account: 2", "account: 6");
    let workers = local.write("workers.yaml", &format!("workers:\n{HONEST}{second_honest}{VERIFIER}"));
    let first = local.write("a.yaml", &task_yaml("first", ""));
    let second = local.write("b.yaml", &task_yaml("second", "").replace("seed: 1", "seed: 2"));
    let mut run = local
        .command(&["local", "run", "--workers", &workers, &first, &second])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Kill it while a trainer runs (its log has progress), with no chance to clean up.
    let started = Instant::now();
    let logs = local.path().join("pods/default");
    loop {
        let training = std::fs::read_dir(&logs).into_iter().flatten().flatten().any(|e| {
            e.path().extension().is_some_and(|x| x == "log")
                && std::fs::read_to_string(e.path()).is_ok_and(|t| t.contains("meanReturn"))
        });
        if training {
            break;
        }
        assert!(run.try_wait().unwrap().is_none(), "the run ended before training");
        assert!(started.elapsed() < Duration::from_secs(120), "no trainer started");
        std::thread::sleep(Duration::from_millis(100));
    }
    run.kill().unwrap(); // SIGKILL
    run.wait().unwrap();

    local.run(&[]);

    let (market, accounts) = local.market().await;
    assert_eq!(market.task_count().await.unwrap(), 2, "no task was posted twice");
    let budget = wei("0.5");
    for id in [1, 2] {
        let task = market.task(id).await.unwrap();
        assert_eq!(task.status, TaskStatus::Completed);
        assert_eq!(tasks_completed(&market, id).await, 1, "task {id} was paid once");
    }
    for name in ["first", "second"] {
        assert_eq!(local.task(name)["status"]["outcome"], "Paid");
    }
    // To the wei: each worker earned the prices of the tasks it completed, the requester got the
    // rest of both budgets back, and TMC holds exactly what it owes. (Two workers can train
    // cartpole, so a model that fails verification is retrained by the other, not left waiting.)
    let mut earned = [U256::ZERO; 2];
    let mut refunds = U256::ZERO;
    for id in [1, 2] {
        let task = market.task(id).await.unwrap();
        let slot = usize::from(task.worker == accounts[6]);
        earned[slot] += task.price;
        refunds += budget - task.price;
    }
    let workers = [
        market.credits(accounts[2]).await.unwrap(),
        market.credits(accounts[6]).await.unwrap(),
    ];
    assert_eq!([workers[0].tmc, workers[1].tmc], earned);
    let requester = market.credits(accounts[REQUESTER]).await.unwrap();
    assert_eq!(requester.tmc, refunds);
    let held = market.balance(market.deployment().tmc).await.unwrap();
    assert_eq!(held, workers[0].tmc + workers[1].tmc + requester.tmc);
}

/// The Python with gymnasium that serves external environments (tools/test.sh sources
/// tools/envserver-env.sh).
fn env_python() -> String {
    std::env::var("DRLAAS_ENV_PYTHON").expect("DRLAAS_ENV_PYTHON: source tools/envserver-env.sh")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gymnasium_tasks_with_discrete_and_continuous_actions_are_trained_verified_and_paid() {
    let _turn = TURN.lock().await;
    let local = Local::new();
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/examples");
    let (cartpole, pendulum) = (
        examples.join("gymnasium-cartpole.yaml"),
        examples.join("gymnasium-pendulum.yaml"),
    );
    local.run_external(&[cartpole.to_str().unwrap(), pendulum.to_str().unwrap()], &[]);

    // (name, the least the verifier must have measured, the range random actions score in):
    // CartPole's random policy lasts about 22 steps; Pendulum's random torques score about -1200.
    let expected = [
        ("gymnasium-cartpole", 150.0, 5.0..50.0),
        ("gymnasium-pendulum", -400.0, -1600.0..-900.0),
    ];
    let (market, accounts) = local.market().await;
    let budget = wei("0.5");
    let mut refunds = U256::ZERO;
    for (name, target, random_range) in expected {
        let task = local.task(name);
        let status = &task["status"];
        assert_eq!(status["outcome"], "Paid", "{name}: {status:#}");
        // Recruited among the workers with gymnasium expertise (the default pool: lab-a and lab-b).
        let worker = status["worker"].as_str().unwrap();
        assert!(["lab-a", "lab-b"].contains(&worker), "{status:#}");
        // The verifier played the model on Gymnasium's environment, served again from the same id
        // (the pendulum with its Gaussian's mean and the observation statistics from the model).
        let evaluation = &status["evaluation"];
        assert_eq!(evaluation["passed"], true, "{status:#}");
        assert!(
            evaluation["meanReturn"].as_f64().unwrap() >= target,
            "{name}: {evaluation}"
        );
        // Random actions on the same seed and episodes, beside it.
        let random = evaluation["randomMeanReturn"].as_f64().unwrap();
        assert!(random_range.contains(&random), "{name}: {evaluation}");
        // The trainer stored the model it reports.
        let result: Value = serde_json::from_slice(
            &std::fs::read(
                local
                    .path()
                    .join(format!("pods/default/{name}-train-1/termination-log")),
            )
            .unwrap(),
        )
        .unwrap();
        assert!(result["modelCid"].is_string(), "{result}");

        let id = status["chainTaskId"].as_u64().unwrap();
        let chain_task = market.task(id).await.unwrap();
        assert_eq!(chain_task.status, TaskStatus::Completed, "{name}");
        assert_eq!(tasks_completed(&market, id).await, 1, "{name}");
        refunds += budget - chain_task.price;
        let paid = market.credits(chain_task.worker).await.unwrap();
        assert!(paid.tmc >= chain_task.price, "{name}: the worker is paid");
    }
    let requester = market.credits(accounts[REQUESTER]).await.unwrap();
    assert_eq!(requester.tmc, refunds, "the rest of each budget is refunded");
}

/// A requester's own environment, as a package: a `gymnasium.Env` class that registers itself under
/// an id when imported. Each step, the observation points at the shelf wanted (one-hot) and picking
/// it pays 1; ten steps an episode, so the best return is 10 and random picks score about 3.3.
const SHELVES_PYPROJECT: &str = "[build-system]
requires = [\"setuptools\"]
build-backend = \"setuptools.build_meta\"

[project]
name = \"shelves-env\"
version = \"0.1.0\"
";

const SHELVES_ENV: &str = "import gymnasium
import numpy as np
from gymnasium import spaces


class Shelves(gymnasium.Env):
    def __init__(self, shelves=3, length=10):
        self.shelves, self.length = shelves, length
        self.observation_space = spaces.Box(0.0, 1.0, shape=(shelves,), dtype=np.float32)
        self.action_space = spaces.Discrete(shelves)

    def _obs(self):
        obs = np.zeros(self.shelves, dtype=np.float32)
        obs[self.wanted] = 1.0
        return obs

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        self.wanted = int(self.np_random.integers(self.shelves))
        return self._obs(), {}

    def step(self, action):
        reward = float(action == self.wanted)
        self.t += 1
        self.wanted = int(self.np_random.integers(self.shelves))
        return self._obs(), reward, False, self.t >= self.length, {}


gymnasium.register(id=\"Shelves-v0\", entry_point=\"shelves_env:Shelves\")
";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_requesters_own_environment_shipped_as_a_wheel_by_cid_is_trained_verified_and_paid() {
    let _turn = TURN.lock().await;
    let local = Local::new();
    // The requester builds a wheel of their environment (no index, no download) ...
    let source = local.path().with_extension("shelves");
    std::fs::create_dir_all(source.join("shelves_env")).unwrap();
    std::fs::write(source.join("pyproject.toml"), SHELVES_PYPROJECT).unwrap();
    std::fs::write(source.join("shelves_env/__init__.py"), SHELVES_ENV).unwrap();
    let dist = source.join("dist");
    let built = Command::new(env_python())
        .args([
            "-m",
            "pip",
            "wheel",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            "-w",
        ])
        .arg(&dist)
        .arg(&source)
        .output()
        .unwrap();
    assert!(built.status.success(), "{}", String::from_utf8_lossy(&built.stderr));
    let wheel = std::fs::read_dir(&dist).unwrap().next().unwrap().unwrap().path();
    let wheel_name = wheel.file_name().unwrap().to_str().unwrap().to_string();
    // ... stores it (in the store `drlaas local run` of this data directory uses) ...
    let put = local
        .command(&["store", "put", wheel.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(put.status.success(), "{}", String::from_utf8_lossy(&put.stderr));
    let cid = String::from_utf8(put.stdout).unwrap().trim().to_string();
    // ... and names it in the task: `shelves_env:` makes Gymnasium import the package first.
    let environment = format!(
        "      kind: gymnasium
      id: shelves_env:Shelves-v0
      observationShape: [3]
      actions: 3
      package: {{cid: {cid}, wheel: {wheel_name}}}
"
    );
    let task = local.write(
        "task.yaml",
        &task_yaml("shelves", "")
            .replace("      kind: cartpole\n", &environment)
            .replace("totalEnvSteps: 150000", "totalEnvSteps: 40000")
            .replace("targetMeanReturn: 150", "targetMeanReturn: 8"),
    );
    let packages = local.path().with_extension("packages");
    local.run_external(&[&task], &[("DRLAAS_ENV_PACKAGES", &packages)]);

    let status = &local.task("shelves")["status"];
    assert_eq!(status["outcome"], "Paid", "{status:#}");
    let evaluation = &status["evaluation"];
    assert!(evaluation["meanReturn"].as_f64().unwrap() >= 8.0, "{evaluation}");
    let random = evaluation["randomMeanReturn"].as_f64().unwrap();
    assert!((2.0..5.0).contains(&random), "{evaluation}");
    // The trainer's and the evaluator's environment sidecars each installed it, fetched from the
    // store by its CID by the pod's init container; the trainers installed nothing themselves.
    let sidecar_logs: Vec<String> = walk(&local.path().join("pods"))
        .into_iter()
        .filter(|p| p.to_string_lossy().ends_with(".environment.log"))
        .map(|p| std::fs::read_to_string(p).unwrap())
        .collect();
    assert_eq!(
        sidecar_logs.iter().filter(|log| log.contains("installed ")).count(),
        2,
        "{sidecar_logs:#?}"
    );
    assert!(
        !packages.join(&cid).exists(),
        "a trainer with a sidecar installs nothing"
    );
    local.assert_paid_and_the_rest_refunded().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pettingzoo_task_trains_one_policy_for_every_agent_and_is_paid() {
    let _turn = TURN.lock().await;
    let local = Local::new();
    // The server tests' parallel environment: three agents rewarded with their own action (0, 1 or
    // 2) each step; "c" leaves after 4 steps, the others after 8. The team's best is 40 (every agent
    // always choosing 2); random actions score 20.
    let environment = "      kind: pettingzoo
      factory: envs_for_tests:team_parallel_env
      kwargs: {length: 8, c_steps: 4}
      agents: 3
      observationShape: [3]
      actions: 3
";
    let task = local.write(
        "task.yaml",
        &task_yaml("team", "")
            .replace("      kind: cartpole\n", environment)
            .replace("totalEnvSteps: 150000", "totalEnvSteps: 40000")
            .replace("targetMeanReturn: 150", "targetMeanReturn: 34"),
    );
    local.run_external(&[&task], &[]);

    let status = &local.task("team")["status"];
    assert_eq!(status["outcome"], "Paid", "{status:#}");
    // Recruited among the workers that run requesters' environments (lab-a and lab-b).
    assert!(
        ["lab-a", "lab-b"].contains(&status["worker"].as_str().unwrap()),
        "{status:#}"
    );
    // The verifier played the team through the server again: the team's return is the sum of the
    // agents' own rewards, beside random actions' on the same episodes.
    let evaluation = &status["evaluation"];
    assert!(evaluation["meanReturn"].as_f64().unwrap() >= 34.0, "{evaluation}");
    let random = evaluation["randomMeanReturn"].as_f64().unwrap();
    assert!((15.0..25.0).contains(&random), "{evaluation}");
    local.assert_paid_and_the_rest_refunded().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crashing_environment_server_fails_the_attempt_with_its_message_and_refunds() {
    let _turn = TURN.lock().await;
    let local = Local::new();
    // The server tests' environment that raises in its 40th step; `envs_for_tests:` makes Gymnasium
    // import the module that registers it, found on PYTHONPATH by the trainer's server.
    let task = local.write(
        "task.yaml",
        &task_yaml("exploding", "  maxAttempts: 1\n").replace(
            "      kind: cartpole\n",
            "      kind: gymnasium\n      id: envs_for_tests:drlaas-tests/Crashing-v0\n      observationShape: [3]\n      actions: 3\n",
        ),
    );
    local.run_external(&[&task], &[]);

    let status = &local.task("exploding")["status"];
    assert_eq!(status["outcome"], "Refunded", "{status:#}");
    // The status keeps why: the environment's own error, as the trainer reported it.
    for said in [&status["lastFailure"], &status["message"]] {
        let said = said.as_str().unwrap_or_default();
        assert!(
            said.contains("the trainer failed") && said.contains("the simulator exploded at step 40"),
            "the status names the environment's error: {status:#}"
        );
    }
    local.assert_failed_and_all_refunded().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_package_missing_from_the_store_fails_the_attempt_naming_it_and_refunds() {
    let _turn = TURN.lock().await;
    let local = Local::new();
    // A well-formed CID of bytes nobody stored: the pod's init container cannot fetch it.
    let environment = "      kind: gymnasium
      id: shelves_env:Shelves-v0
      observationShape: [3]
      actions: 3
      package: {cid: bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku, wheel: shelves_env-0.1.0-py3-none-any.whl}
";
    let task = local.write(
        "task.yaml",
        &task_yaml("unstored", "  maxAttempts: 1\n").replace("      kind: cartpole\n", environment),
    );
    // No sidecar starts: the fetch before it fails.
    let python = PathBuf::from(env_python());
    local.run_with(&[&task], &[("DRLAAS_ENV_PYTHON", python.as_path())]);

    let status = &local.task("unstored")["status"];
    assert_eq!(status["outcome"], "Refunded", "{status:#}");
    let failure = status["lastFailure"].as_str().unwrap_or_default();
    assert!(
        failure.contains("env-package") && failure.contains("environment.package"),
        "the status names the package: {status:#}"
    );
    local.assert_failed_and_all_refunded().await;
}

#[test]
fn a_bad_task_file_is_refused_before_anything_is_escrowed() {
    let local = Local::new();
    let bad = local.write(
        "bad.yaml",
        &task_yaml("bad", "").replace("targetMeanReturn: 150", "targetMeanReturn: high"),
    );
    let output = local.command(&["local", "run", &bad]).output().unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("spec.training.targetMeanReturn"), "{stderr}");
    assert!(!local.path().join("chain").exists(), "no chain was started");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twelve_identical_tasks_are_twelve_chain_tasks_all_paid_and_no_worker_is_failed() {
    let _turn = TURN.lock().await;
    let local = Local::new();
    let example =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/examples/cartpole.yaml"))
            .unwrap();
    let copies: Vec<String> = (0..12)
        .map(|i| example.replace("name: cartpole", &format!("name: cp-{i:02}")))
        .collect();
    let file = local.write("twelve.yaml", &copies.join("---\n"));
    local.run(&[&file]);

    let mut ids = std::collections::BTreeSet::new();
    for i in 0..12 {
        let task = local.task(&format!("cp-{i:02}"));
        assert_eq!(task["status"]["outcome"], "Paid", "{task:#}");
        assert!(
            task["status"]["transactions"][drlaas_crds::transactions::TxAction::Post.to_string()].is_string(),
            "cp-{i:02} posted its own task: {task:#}"
        );
        ids.insert(task["status"]["chainTaskId"].as_u64().unwrap());
    }
    assert_eq!(ids.len(), 12, "one chain task per DRLTask: {ids:?}");
    let (market, accounts) = local.market().await;
    assert_eq!(market.task_count().await.unwrap(), 12, "nothing posted twice");
    for account in accounts {
        if let Some(worker) = market.worker(account).await.unwrap() {
            assert_eq!(worker.failed_tasks, 0, "honest worker {account} was failed");
        }
    }
    let log = std::fs::read_to_string(local.path().join("drlaas.log")).unwrap_or_default();
    assert!(
        !log.contains("nonce too low"),
        "concurrent transactions clashed:\n{log}"
    );
}
