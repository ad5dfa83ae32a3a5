//! `drlaas wallet show|withdraw` and `drlaas worker add-stake|unstake|withdraw-stake`, run as the
//! built binary against a real anvil chain: the contracts credit a requester (a refund, the rest
//! of a completed task's budget, a failed worker's slashed stake, a model sale) and a worker (its
//! pay); `wallet show` shows the credits to the wei and `wallet withdraw` moves them to the
//! balance, gas accounted from the receipts. A worker takes stake out through the cooldown.

use std::path::Path;

use drlaas_chain::alloy::primitives::{Address, B256, U256, keccak256, utils::parse_ether};
use drlaas_chain::alloy::providers::Provider;
use drlaas_chain::devnet::{ADMIN, Devnet, ORACLE, dev_worker_profile};
use drlaas_chain::{Credits, EnvKind, Market, MarketParams, NewListing, NewTask, TaskKind};
use serde_json::Value;

mod cli_run;
use cli_run::{Ran, drlaas_command, hashes};

/// A requester (the local mode's default).
const REQUESTER: usize = 5;
/// A registered worker.
const WORKER: usize = 6;
/// A model buyer.
const BUYER: usize = 7;
/// The unstake cooldown of the test market.
const COOLDOWN: u64 = 3_600;

/// Runs `drlaas ARGS` in `dir` with `key` (if any) as $DRLAAS_KEY.
fn drlaas(dir: &Path, key: Option<&str>, args: &[&str]) -> Ran {
    let mut command = drlaas_command();
    command
        .args(args)
        .current_dir(dir)
        .env("DRLAAS_DATA_DIR", dir.join("no-data-dir"));
    if let Some(key) = key {
        command.env("DRLAAS_KEY", key);
    }
    Ran::of(&mut command)
}

fn eth(text: &str) -> U256 {
    parse_ether(text).unwrap()
}

/// Wei paid for gas by each transaction, from its receipt.
async fn fees(market: &Market, txs: &[B256]) -> U256 {
    let mut total = U256::ZERO;
    for hash in txs {
        let receipt = market
            .provider()
            .get_transaction_receipt(*hash)
            .await
            .unwrap()
            .expect("the printed transaction was mined");
        assert!(receipt.status(), "{hash} succeeded");
        total += U256::from(receipt.gas_used) * U256::from(receipt.effective_gas_price);
    }
    total
}

/// Posts a 1 ETH task from the requester with a deadline two hours ahead.
async fn post(devnet: &Devnet, market: &Market, requester: Address) -> u64 {
    let task = NewTask {
        spec_cid: "bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy".into(),
        kind: TaskKind::Training,
        target_milli: 475_000,
        deadline: devnet.now().await.unwrap() + 7_200,
        budget: eth("1"),
    };
    market.post_task(requester, &task).await.unwrap().0
}

fn wei(v: &Value) -> U256 {
    v["wei"].as_str().unwrap().parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accounts_see_and_withdraw_their_credits_and_workers_their_stake() {
    let devnet = Devnet::spawn(8).expect("anvil starts (run tools/setup.sh)");
    let market = devnet
        .deploy_market(MarketParams {
            unstake_cooldown: COOLDOWN,
            ..MarketParams::default()
        })
        .await
        .unwrap();
    let accounts = devnet.accounts();
    let (oracle, requester, worker, buyer) = (accounts[ORACLE], accounts[REQUESTER], accounts[WORKER], accounts[BUYER]);
    let dir = tempfile::tempdir().unwrap();
    let deployment = dir.path().join("deployment.json");
    std::fs::write(&deployment, market.deployment().to_file_text()).unwrap();
    let rpc = devnet.endpoint().to_string();
    let network = ["--rpc-url", rpc.as_str(), "--deployment", deployment.to_str().unwrap()];
    let run = |key: Option<&str>, args: &[&str]| drlaas(dir.path(), key, &[args, &network[..]].concat());
    let requester_arg = REQUESTER.to_string();
    let worker_arg = WORKER.to_string();

    // The contracts credit the requester and the worker.
    let price = eth("0.1");
    market
        .register_worker(worker, &dev_worker_profile(&[EnvKind::Cartpole], price), eth("2"))
        .await
        .unwrap();
    // A cancelled task: its budget back.
    let cancelled = post(&devnet, &market, requester).await;
    market.cancel_task(requester, cancelled).await.unwrap();
    // A completed task: the worker's price to the worker, the rest to the requester.
    let completed = post(&devnet, &market, requester).await;
    market.assign(oracle, completed, worker, price).await.unwrap();
    market
        .submit_result(worker, completed, "bafy-model", keccak256(b"result"))
        .await
        .unwrap();
    market.complete(oracle, completed).await.unwrap();
    // A failed task: the budget back, and 10 % of the worker's stake slashed to the requester.
    let failed = post(&devnet, &market, requester).await;
    market.assign(oracle, failed, worker, price).await.unwrap();
    market.fail(oracle, failed, false).await.unwrap();
    // A model sale.
    let (listing, _) = market
        .list_model(
            requester,
            &NewListing {
                model_cid: "bafy-model".into(),
                env_kind: EnvKind::Cartpole,
                env_descriptor_hash: B256::repeat_byte(1),
                price: eth("0.3"),
                parent: None,
                royalty_bps: 0,
            },
        )
        .await
        .unwrap();
    market.purchase(buyer, listing).await.unwrap();
    let owed = Credits {
        tmc: eth("2.9"),
        umc: eth("0.2"),
        mmc: eth("0.3"),
    };
    assert_eq!(market.credits(requester).await.unwrap(), owed);
    assert_eq!(market.credits(worker).await.unwrap().tmc, price);

    // Errors name what to fix, before anything is sent.
    let err = drlaas(dir.path(), None, &["wallet", "show"]).failure("show without an account");
    assert!(err.contains("no account to show") && err.contains("ADDRESS"), "{err}");
    let err = run(None, &["wallet", "show", "0x12"]).failure("show of a bad address");
    assert!(err.contains("ADDRESS") && err.contains("40 hex digits"), "{err}");
    let err = drlaas(
        dir.path(),
        None,
        &[
            "wallet",
            "show",
            &requester.to_string(),
            "--rpc-url",
            "http://127.0.0.1:1",
            "--deployment",
            deployment.to_str().unwrap(),
        ],
    )
    .failure("show against a closed port");
    assert!(
        err.contains("cannot reach the chain at http://127.0.0.1:1 (--rpc-url)"),
        "{err}"
    );
    let err = run(None, &["wallet", "withdraw"]).failure("withdraw without a key");
    assert!(err.contains("no signing key") && err.contains("--key-file"), "{err}");
    let err = run(None, &["wallet", "withdraw", "--from", "xyz", "--account", "5"]).failure("withdraw --from xyz");
    assert!(err.contains("--from") && err.contains("tmc"), "{err}");
    assert_eq!(market.credits(requester).await.unwrap(), owed, "nothing moved");

    // `show` of an address: the balance and each credit to the wei.
    let shown = run(None, &["wallet", "show", &requester.to_string(), "-o", "json"]).success("show -o json");
    let json: Value = serde_json::from_str(&shown).unwrap();
    assert_eq!(json["address"], requester.to_string(), "checksummed");
    assert_eq!(wei(&json["balance"]), market.balance(requester).await.unwrap());
    let c = &json["credits"];
    assert_eq!(
        (wei(&c["tmc"]), wei(&c["umc"]), wei(&c["mmc"]), wei(&c["total"])),
        (owed.tmc, owed.umc, owed.mmc, eth("3.4"))
    );
    assert_eq!(c["total"]["eth"], "3.4");
    assert!(json.get("stake").is_none(), "the requester is no worker: {json}");

    // `show` of the signing account, for people.
    let text = run(None, &["wallet", "show", "--account", &requester_arg]).success("show --account");
    for line in [
        format!("account  {requester}"),
        "TMC     2.9 ETH  task pay and refunds".to_string(),
        "UMC     0.2 ETH  slashed stake owed to requesters".to_string(),
        "MMC     0.3 ETH  model sales and royalties".to_string(),
        "TOTAL   3.4 ETH".to_string(),
        "3.4 ETH to withdraw with `drlaas wallet withdraw`".to_string(),
    ] {
        assert!(text.contains(&line), "no {line:?} in:\n{text}");
    }

    // Withdrawing from one contract moves that credit only, to the wei.
    let before = market.balance(requester).await.unwrap();
    let out = run(
        None,
        &[
            "wallet",
            "withdraw",
            "--account",
            &requester_arg,
            "--from",
            "mmc",
            "-o",
            "json",
        ],
    )
    .success("withdraw --from mmc");
    let json: Value = serde_json::from_str(&out).unwrap();
    let withdrawals = json["withdrawals"].as_array().unwrap();
    assert_eq!(withdrawals.len(), 1, "{json}");
    assert_eq!(withdrawals[0]["contract"], "MMC");
    assert_eq!(wei(&withdrawals[0]["amount"]), owed.mmc);
    let tx: B256 = withdrawals[0]["transaction"].as_str().unwrap().parse().unwrap();
    let fee = fees(&market, &[tx]).await;
    assert_eq!(wei(&withdrawals[0]["fee"]), fee);
    let after = market.balance(requester).await.unwrap();
    assert_eq!(after, before + owed.mmc - fee);
    assert_eq!(wei(&json["balance"]), after);
    assert_eq!(
        market.credits(requester).await.unwrap(),
        Credits {
            mmc: U256::ZERO,
            ..owed
        }
    );

    // Withdrawing the rest: TMC and UMC, each with its transaction; the credits are all gone.
    let before = market.balance(requester).await.unwrap();
    let out = run(None, &["wallet", "withdraw", "--account", &requester_arg]).success("withdraw");
    assert!(out.contains("withdrew 2.9 ETH from TMC: transaction 0x"), "{out}");
    assert!(out.contains("withdrew 0.2 ETH from UMC: transaction 0x"), "{out}");
    let txs = hashes(&out);
    assert_eq!(txs.len(), 2, "{out}");
    let after = market.balance(requester).await.unwrap();
    assert_eq!(after, before + owed.tmc + owed.umc - fees(&market, &txs).await);
    assert_eq!(market.credits(requester).await.unwrap(), Credits::default());
    assert!(out.contains(&format!("balance of {requester}: ")), "{out}");

    // With nothing owed, it says so and succeeds without a transaction.
    let before = market.balance(requester).await.unwrap();
    let out = run(None, &["wallet", "withdraw", "--account", &requester_arg]).success("withdraw of nothing");
    assert!(out.contains("nothing to withdraw"), "{out}");
    let out = run(
        None,
        &["wallet", "withdraw", "--account", &requester_arg, "--from", "umc"],
    )
    .success("withdraw --from umc of nothing");
    assert!(out.contains("nothing to withdraw: UMC owes"), "{out}");
    assert_eq!(market.balance(requester).await.unwrap(), before);

    // The worker withdraws its pay with a key file.
    let worker_key = dir.path().join("worker.key");
    std::fs::write(&worker_key, devnet.signers()[WORKER].to_bytes().to_string()).unwrap();
    let worker_key = worker_key.to_str().unwrap();
    let before = market.balance(worker).await.unwrap();
    let out = run(None, &["wallet", "withdraw", "--key-file", worker_key]).success("worker withdraw");
    assert!(out.contains("withdrew 0.1 ETH from TMC"), "{out}");
    let fee = fees(&market, &hashes(&out)).await;
    assert_eq!(market.balance(worker).await.unwrap(), before + price - fee);

    // Stake: the worker (1.8 ETH after the slash) asks to take 0.5 ETH out.
    assert_eq!(market.worker(worker).await.unwrap().unwrap().stake, eth("1.8"));
    let err = run(None, &["worker", "unstake", "--account", &worker_arg, "--amount", "5"]).failure("unstake too much");
    assert!(err.contains("--amount 5 ETH is more than the stake"), "{err}");
    let err = run(
        None,
        &["worker", "unstake", "--account", &worker_arg, "--amount", "lots"],
    )
    .failure("unstake lots");
    assert!(err.contains("--amount: an amount of ETH"), "{err}");
    let err = run(
        None,
        &["worker", "unstake", "--account", &requester_arg, "--amount", "1"],
    )
    .failure("unstake by a non-worker");
    assert!(
        err.contains(&format!("{requester} is not a registered worker")),
        "{err}"
    );
    let err = run(None, &["worker", "withdraw-stake", "--account", &worker_arg]).failure("withdraw-stake unrequested");
    assert!(err.contains("has no pending unstake"), "{err}");

    let out = run(
        None,
        &["worker", "unstake", "--account", &worker_arg, "--amount", "0.5"],
    )
    .success("unstake");
    let w = market.worker(worker).await.unwrap().unwrap();
    assert_eq!((w.stake, w.unstake_amount), (eth("1.8"), eth("0.5")));
    let available_at = w.unstake_available_at;
    let at = drlaas_cli::render::utc(available_at);
    assert!(
        out.contains(&format!("withdrawable at {at} (1h after the request")),
        "{out}"
    );
    assert!(out.contains("drlaas worker withdraw-stake"), "{out}");
    let shown = run(None, &["wallet", "show", &worker.to_string()]).success("show of the worker");
    assert!(
        shown.contains(&format!(
            "stake    1.8 ETH (0.5 ETH unstaking: withdrawable at {at}, in "
        )),
        "{shown}"
    );
    let json: Value = serde_json::from_str(
        &run(None, &["wallet", "show", &worker.to_string(), "-o", "json"]).success("show -o json"),
    )
    .unwrap();
    assert_eq!(
        (
            wei(&json["stake"]["staked"]),
            wei(&json["stake"]["unstaking"]),
            json["stake"]["withdrawableAt"].as_u64()
        ),
        (eth("1.8"), eth("0.5"), Some(available_at))
    );

    // Before the cooldown is over, the chain refuses, and the error says until when.
    let err = run(None, &["worker", "withdraw-stake", "--account", &worker_arg]).failure("withdraw-stake early");
    assert!(
        err.contains(&format!(
            "the unstake cooldown is not over: 0.5 ETH of stake becomes withdrawable at {at} (in "
        )),
        "{err}"
    );
    assert_eq!(market.worker(worker).await.unwrap().unwrap().unstake_amount, eth("0.5"));

    // After it, an active task still holds the stake ...
    devnet.warp(COOLDOWN).await.unwrap();
    let active = post(&devnet, &market, requester).await;
    market.assign(oracle, active, worker, price).await.unwrap();
    let err = run(None, &["worker", "withdraw-stake", "--account", &worker_arg]).failure("withdraw-stake while active");
    assert!(err.contains(&format!("{worker} has 1 active task(s)")), "{err}");
    // ... until it is settled (failed: 10 % of 1.8 ETH slashed, the request stands).
    market.fail(oracle, active, false).await.unwrap();
    let before = market.balance(worker).await.unwrap();
    let out = run(
        Some(&devnet.signers()[WORKER].to_bytes().to_string()),
        &["worker", "withdraw-stake"],
    )
    .success("withdraw-stake");
    assert!(
        out.contains("withdrew 0.5 ETH of stake") && out.contains("1.12 ETH stays staked"),
        "{out}"
    );
    let fee = fees(&market, &hashes(&out)).await;
    assert_eq!(market.balance(worker).await.unwrap(), before + eth("0.5") - fee);
    let w = market.worker(worker).await.unwrap().unwrap();
    assert_eq!((w.stake, w.unstake_amount), (eth("1.12"), U256::ZERO));

    // Bonding more stake.
    let err = run(
        None,
        &["worker", "add-stake", "--account", &worker_arg, "--amount", "0"],
    )
    .failure("add-stake 0");
    assert!(err.contains("--amount: more than 0 ETH"), "{err}");
    let before = market.balance(worker).await.unwrap();
    let out = run(
        None,
        &["worker", "add-stake", "--account", &worker_arg, "--amount", "0.88"],
    )
    .success("add-stake");
    assert!(out.contains("added 0.88 ETH") && out.contains("2 ETH staked"), "{out}");
    let fee = fees(&market, &hashes(&out)).await;
    assert_eq!(market.balance(worker).await.unwrap(), before - eth("0.88") - fee);
    assert_eq!(market.worker(worker).await.unwrap().unwrap().stake, eth("2"));

    // The admin is untouched by all this (a sanity check that keys were not mixed up).
    assert_eq!(market.credits(accounts[ADMIN]).await.unwrap(), Credits::default());
}
