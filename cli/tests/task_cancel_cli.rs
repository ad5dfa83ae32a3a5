//! `drlaas task cancel`, run as the built binary against a real anvil chain: a posted task is
//! cancelled for its whole budget; an assigned one is withdrawn from its worker, who is released
//! without slash or reputation loss and credited 10 % of its price, the requester the rest, to the
//! wei; someone else's task, a submitted, late or settled one is refused with the reason and what
//! to do, and nothing moves.

use std::path::{Path, PathBuf};

use drlaas_chain::alloy::primitives::{Address, B256, U256, utils::parse_ether};
use drlaas_chain::alloy::providers::Provider;
use drlaas_chain::devnet::{Devnet, ORACLE, dev_worker_profile};
use drlaas_chain::{EnvKind, Market, MarketParams, NewTask, TaskKind, TaskStatus};
use serde_json::Value;

mod cli_run;
use cli_run::{Ran, drlaas_command, hashes};

/// The local mode's default requester (`task cancel` signs as it on a dev chain by default).
const REQUESTER: usize = 5;
/// A registered worker.
const WORKER: usize = 6;
/// Someone else.
const OTHER: usize = 7;
/// A task's deadline, after it is posted.
const DEADLINE: u64 = 7_200;

fn eth(text: &str) -> U256 {
    parse_ether(text).unwrap()
}

fn wei(v: &Value) -> U256 {
    v["wei"].as_str().unwrap().parse().unwrap()
}

/// A dev chain with the market deployed and a worker (price 0.3 ETH) registered; `drlaas` finds it
/// through `--rpc-url` and `--deployment`.
struct Marketplace {
    devnet: Devnet,
    market: Market,
    dir: tempfile::TempDir,
    deployment: PathBuf,
}

impl Marketplace {
    async fn start() -> Marketplace {
        let devnet = Devnet::spawn(8).expect("anvil starts (run tools/setup.sh)");
        let market = devnet.deploy_market(MarketParams::default()).await.unwrap();
        let worker = devnet.accounts()[WORKER];
        market
            .register_worker(worker, &dev_worker_profile(&[EnvKind::Cartpole], eth("0.3")), eth("2"))
            .await
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let deployment = dir.path().join("deployment.json");
        std::fs::write(&deployment, market.deployment().to_file_text()).unwrap();
        Marketplace {
            devnet,
            market,
            dir,
            deployment,
        }
    }

    fn account(&self, i: usize) -> Address {
        self.devnet.accounts()[i]
    }

    /// Runs `drlaas ARGS` against the marketplace, with no key in the environment and an empty data
    /// directory.
    fn run(&self, args: &[&str]) -> Ran {
        let rpc = self.devnet.endpoint().to_string();
        let dir: &Path = self.dir.path();
        Ran::of(
            drlaas_command()
                .args(args)
                .args(["--rpc-url", &rpc, "--deployment"])
                .arg(&self.deployment)
                .env("DRLAAS_DATA_DIR", dir.join("no-data-dir")),
        )
    }

    /// A 1 ETH task of the requester.
    async fn post(&self) -> u64 {
        let task = NewTask {
            spec_cid: "bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy".into(),
            kind: TaskKind::Training,
            target_milli: 475_000,
            deadline: self.devnet.now().await.unwrap() + DEADLINE,
            budget: eth("1"),
        };
        self.market.post_task(self.account(REQUESTER), &task).await.unwrap().0
    }

    /// A 1 ETH task of the requester, assigned to the worker by the oracle.
    async fn assigned(&self) -> u64 {
        let id = self.post().await;
        self.market
            .assign(self.account(ORACLE), id, self.account(WORKER), eth("1"))
            .await
            .unwrap();
        id
    }

    /// Wei paid for gas by `hash`, from its receipt, which must be `from`'s.
    async fn gas(&self, hash: B256, from: Address) -> U256 {
        let receipt = self
            .market
            .provider()
            .get_transaction_receipt(hash)
            .await
            .unwrap()
            .expect("the printed transaction was mined");
        assert!(
            receipt.status() && receipt.from == from,
            "{hash} is {from}'s and succeeded"
        );
        U256::from(receipt.gas_used) * U256::from(receipt.effective_gas_price)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_of_a_posted_task_refunds_the_whole_budget() {
    let m = Marketplace::start().await;
    let requester = m.account(REQUESTER);
    let id = m.post().await;
    let balance = m.market.balance(requester).await.unwrap();

    // The local mode's requester signs by default on a dev chain.
    let out = m.run(&["task", "cancel", &id.to_string()]).success("task cancel");
    assert!(
        out.contains(&format!(
            "cancelled task {id} before any worker took it: 1 ETH (the whole budget) refunded to {requester}"
        )),
        "{out}"
    );
    assert!(out.contains("`drlaas wallet withdraw`"), "{out}");
    let txs = hashes(&out);
    assert_eq!(txs.len(), 1, "{out}");

    let info = m.market.task(id).await.unwrap();
    assert_eq!(info.status, TaskStatus::Cancelled);
    assert_eq!(m.market.escrow(id).await.unwrap(), U256::ZERO);
    assert_eq!(m.market.credits(requester).await.unwrap().tmc, eth("1"), "all of it");
    assert_eq!(
        m.market.balance(requester).await.unwrap(),
        balance - m.gas(txs[0], requester).await,
        "the refund is a credit: only the gas left the balance"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_of_an_assigned_task_pays_the_worker_the_fee_and_refunds_the_rest() {
    let m = Marketplace::start().await;
    let (requester, worker) = (m.account(REQUESTER), m.account(WORKER));
    let before = m.market.worker(worker).await.unwrap().unwrap();
    let id = m.assigned().await;
    assert_eq!(m.market.worker(worker).await.unwrap().unwrap().active_tasks, 1);

    let json: Value = serde_json::from_str(
        &m.run(&["task", "cancel", &id.to_string(), "--account", "5", "-o", "json"])
            .success("task cancel -o json"),
    )
    .unwrap();
    assert_eq!(json["taskId"], id);
    assert_eq!(json["from"], "Assigned");
    assert_eq!(json["requester"], requester.to_string());
    assert_eq!(json["worker"], worker.to_string());
    // 10 % of the worker's 0.3 ETH price, and the 1 ETH budget less that.
    assert_eq!((wei(&json["fee"]), wei(&json["refund"])), (eth("0.03"), eth("0.97")));
    assert_eq!(json["refund"]["eth"], "0.97");
    let tx: B256 = json["transaction"].as_str().unwrap().parse().unwrap();
    assert_eq!(wei(&json["gas"]), m.gas(tx, requester).await);

    let info = m.market.task(id).await.unwrap();
    assert_eq!(info.status, TaskStatus::Cancelled);
    assert_eq!(m.market.escrow(id).await.unwrap(), U256::ZERO);
    assert_eq!(m.market.credits(worker).await.unwrap().tmc, eth("0.03"));
    assert_eq!(m.market.credits(requester).await.unwrap().tmc, eth("0.97"));
    assert_eq!(
        m.market.credits(requester).await.unwrap().umc,
        U256::ZERO,
        "nothing slashed"
    );
    let after = m.market.worker(worker).await.unwrap().unwrap();
    assert_eq!(
        (after.stake, after.reputation, after.active_tasks, after.failed_tasks),
        (
            before.stake,
            before.reputation,
            before.active_tasks,
            before.failed_tasks
        ),
        "released: no slash, no reputation change, no task left"
    );

    // For people: what was refunded, the fee and to whom, the transaction; another task.
    let second = m.assigned().await;
    let out = m.run(&["task", "cancel", &second.to_string()]).success("task cancel");
    assert!(
        out.contains(&format!(
            "withdrew task {second} from worker {worker}: 0.97 ETH refunded to {requester}, 0.03 ETH fee to the worker (10 % of its 0.3 ETH price"
        )),
        "{out}"
    );
    assert!(out.contains("no slash, no reputation change"), "{out}");
    assert!(out.contains("`drlaas wallet withdraw`"), "{out}");
    assert_eq!(hashes(&out).len(), 1, "{out}");
    assert_eq!(m.market.credits(worker).await.unwrap().tmc, eth("0.06"));
    assert_eq!(m.market.credits(requester).await.unwrap().tmc, eth("1.94"));

    // The worker takes its fees out as the command said.
    let balance = m.market.balance(worker).await.unwrap();
    let out = m
        .run(&["wallet", "withdraw", "--account", &WORKER.to_string()])
        .success("wallet withdraw");
    let txs = hashes(&out);
    assert_eq!(txs.len(), 1, "{out}");
    assert_eq!(
        m.market.balance(worker).await.unwrap(),
        balance + eth("0.06") - m.gas(txs[0], worker).await
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_is_refused_with_the_reason_and_nothing_moves() {
    let m = Marketplace::start().await;
    let (requester, worker, other) = (m.account(REQUESTER), m.account(WORKER), m.account(OTHER));
    let posted = m.post().await;
    let assigned = m.assigned().await;
    let submitted = m.assigned().await;
    m.market
        .submit_result(worker, submitted, "bafy-model", B256::repeat_byte(7))
        .await
        .unwrap();
    let cancelled = m.post().await;
    m.market.cancel_task(requester, cancelled).await.unwrap();
    let credits = m.market.credits(requester).await.unwrap();

    // Someone else's task, posted or assigned.
    for id in [posted, assigned] {
        let err = m
            .run(&["task", "cancel", &id.to_string(), "--account", &OTHER.to_string()])
            .failure("cancel of someone else's task");
        assert!(
            err.contains(&format!(
                "task {id} was posted by {requester}, not by {other}: only its requester can cancel it"
            )) && err.contains("--key-file"),
            "{err}"
        );
    }
    // A submitted result: verification settles it.
    let err = m
        .run(&["task", "cancel", &submitted.to_string()])
        .failure("cancel of a submitted task");
    assert!(
        err.contains(&format!(
            "task {submitted} cannot be cancelled: worker {worker} has submitted its result"
        )) && err.contains("verification settles the task")
            && err.contains(&format!("drlaas task status {submitted}")),
        "{err}"
    );
    // A settled task, and one that does not exist.
    let err = m
        .run(&["task", "cancel", &cancelled.to_string()])
        .failure("cancel of a cancelled task");
    assert!(
        err.contains(&format!(
            "task {cancelled} is already settled (Cancelled): there is nothing to cancel"
        )),
        "{err}"
    );
    let err = m.run(&["task", "cancel", "99"]).failure("cancel of no task");
    assert!(
        err.contains("there is no task 99 on chain (task ids are 1 to 4)"),
        "{err}"
    );
    // Past the deadline an assigned task only expires.
    m.devnet.warp(DEADLINE + 1).await.unwrap();
    let err = m
        .run(&["task", "cancel", &assigned.to_string()])
        .failure("cancel after the deadline");
    assert!(
        err.contains(&format!("task {assigned} is past its deadline")) && err.contains("expired"),
        "{err}"
    );

    for (id, status) in [
        (posted, TaskStatus::Posted),
        (assigned, TaskStatus::Assigned),
        (submitted, TaskStatus::Submitted),
    ] {
        assert_eq!(
            m.market.task(id).await.unwrap().status,
            status,
            "task {id} is as it was"
        );
        assert_eq!(m.market.escrow(id).await.unwrap(), eth("1"));
    }
    assert_eq!(
        m.market.credits(requester).await.unwrap(),
        credits,
        "nothing was credited"
    );
    assert_eq!(
        m.market.credits(worker).await.unwrap().tmc,
        U256::ZERO,
        "no fee was paid"
    );
    assert_eq!(m.market.worker(worker).await.unwrap().unwrap().active_tasks, 2);
}
