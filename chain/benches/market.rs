//! Gas per lifecycle step and settled tasks per second against a real anvil.
//!
//! `cargo bench -p drlaas-chain --bench market` prints:
//! - gas of every step of a training task (first task on a fresh deployment, where every storage slot
//!   and credit is new, and the median of later tasks), and the total from post to complete; and of a
//!   requester withdrawing a task, before and after assignment (once each, after those tasks);
//! - gas of a whole task, post → withdraw by the worker and by the requester, with a 1-of-1 and a
//!   2-of-3 consortium of oracles (every vote is a transaction; the sum of `gasUsed` of every receipt:
//!   post, the assign votes, submit, the complete votes, both withdrawals), first task and median of
//!   later ones, each consortium on a fresh anvil, and the ratio;
//! - tasks settled per second (post, assign, submit, complete: 4 transactions each, every receipt
//!   awaited; one oracle, 1 of 1), one lane and 8 concurrent lanes (own requester and worker each,
//!   the oracle shared), median of 5 runs, each on a fresh anvil; and one lane on the long-lived chain
//!   of the gas section, to show how anvil slows down as contract storage grows.
//!
//! Options (after `--`): `--runs N` (default 5), `--tasks N` per run (default 40), `--gas-only` (stop
//! after the gas figures).

use std::time::Instant;

use drlaas_chain::{
    Contract, Market, MarketParams, NewTask, TaskKind, TxOutcome,
    alloy::primitives::{Address, U256, keccak256, utils::parse_ether},
    devnet::Devnet,
    types::{EnvKind, Expertise, Hardware, WorkerProfile},
};
use futures::future::try_join_all;

const LANES: usize = 8;
/// Oracle accounts set aside on every devnet (accounts 1..=3; account 0 is the admin).
const ORACLE_ACCOUNTS: usize = 3;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn arg(name: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

struct Lane {
    requester: Address,
    worker: Address,
    /// The oracles that vote, as many as the quorum (the others' votes would come after the decision).
    voters: Vec<Address>,
}

struct Steps {
    post: TxOutcome,
    /// One per vote.
    assign: Vec<TxOutcome>,
    submit: TxOutcome,
    /// One per vote.
    complete: Vec<TxOutcome>,
}

fn gas(txs: &[TxOutcome]) -> u64 {
    txs.iter().map(|t| t.gas_used).sum()
}

fn spawn() -> Devnet {
    Devnet::spawn((1 + ORACLE_ACCOUNTS + 2 * LANES) as u16).expect("anvil (run tools/setup.sh)")
}

/// The market with `oracles` of the oracle accounts as its oracle set, `quorum` of them needed, and
/// the lanes' workers registered.
async fn setup(devnet: &Devnet, oracles: usize, quorum: u8) -> (Market, Vec<Lane>) {
    let a = devnet.accounts();
    let admin = a[0];
    let oracle_set = &a[1..=oracles];
    let market = Market::deploy(
        devnet.provider(),
        devnet.wallet(),
        admin,
        MarketParams::default(),
        oracle_set,
        quorum,
    )
    .await
    .unwrap();
    let mut lanes = Vec::new();
    for i in 0..LANES {
        let (requester, worker) = (a[1 + ORACLE_ACCOUNTS + 2 * i], a[2 + ORACLE_ACCOUNTS + 2 * i]);
        let profile = WorkerProfile {
            expertise: Expertise::from_levels([(EnvKind::Cartpole, 200)]),
            hardware: Hardware {
                gpus: 1,
                cpu_cores: 16,
                memory_gib: 64,
            },
            price_per_task: price(),
            metadata_cid: "bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy".into(),
        };
        market
            .register_worker(worker, &profile, parse_ether("2").unwrap())
            .await
            .unwrap();
        lanes.push(Lane {
            requester,
            worker,
            voters: oracle_set[..usize::from(quorum)].to_vec(),
        });
    }
    (market, lanes)
}

/// Every worker's price, below the budget: completing a task also credits the requester the rest.
fn price() -> U256 {
    parse_ether("0.9").unwrap()
}

/// Gas of whole tasks on a fresh deployment with a `quorum`-of-`oracles` consortium: every receipt of
/// post, the assign votes, submit, the complete votes and the withdrawals of the worker and the
/// requester. The first task, and the median of `later` more.
async fn whole_task_gas(oracles: usize, quorum: u8, later: usize) -> (u64, u64) {
    let devnet = spawn();
    let (market, lanes) = setup(&devnet, oracles, quorum).await;
    let lane = &lanes[0];
    let deadline = devnet.now().await.unwrap() + 30 * 24 * 3600;
    let mut totals = Vec::new();
    for _ in 0..=later {
        let s = one_task(&market, lane, deadline).await;
        let worker = market.withdraw(lane.worker, Contract::Tmc).await.unwrap();
        let requester = market.withdraw(lane.requester, Contract::Tmc).await.unwrap();
        totals.push(
            s.post.gas_used
                + gas(&s.assign)
                + s.submit.gas_used
                + gas(&s.complete)
                + worker.gas_used
                + requester.gas_used,
        );
    }
    let first = totals.remove(0);
    (first, median(totals.iter().map(|&g| g as f64).collect()) as u64)
}

fn new_task(deadline: u64) -> NewTask {
    NewTask {
        spec_cid: "bafkreibm6jg3ux5qumhcn2b3flc3tyu6dmlb4xa7u5bf44yegnrjhc4yeq".into(),
        kind: TaskKind::Training,
        target_milli: 475_000,
        deadline,
        budget: parse_ether("1").unwrap(),
    }
}

async fn one_task(market: &Market, lane: &Lane, deadline: u64) -> Steps {
    let (id, post) = market.post_task(lane.requester, &new_task(deadline)).await.unwrap();
    let mut assign = Vec::new();
    for &oracle in &lane.voters {
        assign.push(market.assign(oracle, id, lane.worker, price()).await.unwrap());
    }
    let cid = "bafkreih2rz6kcoz4i5z2ya3rdd7kuboqqbvqs3rc6oxhmn3mbfilkybzk4";
    let submit = market
        .submit_result(lane.worker, id, cid, keccak256(cid))
        .await
        .unwrap();
    let mut complete = Vec::new();
    for &oracle in &lane.voters {
        complete.push(market.complete(oracle, id).await.unwrap());
    }
    Steps {
        post,
        assign,
        submit,
        complete,
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let runs = arg("--runs", 5);
    let tasks = arg("--tasks", 40);
    let devnet = spawn();
    let (market, lanes) = setup(&devnet, 1, 1).await;
    let deadline = devnet.now().await.unwrap() + 30 * 24 * 3600;

    // ---- gas per step
    let first = one_task(&market, &lanes[0], deadline).await;
    let first_withdraw_worker = market.withdraw(lanes[0].worker, Contract::Tmc).await.unwrap();
    let first_withdraw_requester = market.withdraw(lanes[0].requester, Contract::Tmc).await.unwrap();
    let mut later: Vec<Steps> = Vec::new();
    for _ in 0..runs.max(3) {
        later.push(one_task(&market, &lanes[0], deadline).await);
    }
    let later_withdraw = market.withdraw(lanes[0].worker, Contract::Tmc).await.unwrap();
    let lane = &lanes[0];
    let (posted, _) = market.post_task(lane.requester, &new_task(deadline)).await.unwrap();
    let withdraw_posted = market.withdraw_task(lane.requester, posted).await.unwrap();
    let (assigned, _) = market.post_task(lane.requester, &new_task(deadline)).await.unwrap();
    market
        .assign(lane.voters[0], assigned, lane.worker, price())
        .await
        .unwrap();
    let withdraw_assigned = market.withdraw_task(lane.requester, assigned).await.unwrap();
    let med = |f: fn(&Steps) -> u64| median(later.iter().map(|s| f(s) as f64).collect()) as u64;
    let rows: [(&str, u64, u64); 4] = [
        ("postTask", first.post.gas_used, med(|s| s.post.gas_used)),
        ("assign", gas(&first.assign), med(|s| gas(&s.assign))),
        ("submitResult", first.submit.gas_used, med(|s| s.submit.gas_used)),
        ("complete", gas(&first.complete), med(|s| gas(&s.complete))),
    ];
    println!("gas per lifecycle step (training task, 1-of-1 oracle, worker price < budget: complete refunds the rest)");
    println!("  {:<26} {:>12} {:>14}", "step", "first task", "later (median)");
    for (name, a, b) in rows {
        println!("  {name:<26} {a:>12} {b:>14}");
    }
    let total_first: u64 = rows.iter().map(|r| r.1).sum();
    let total_later: u64 = rows.iter().map(|r| r.2).sum();
    println!(
        "  {:<26} {:>12} {:>14}   (target < 300000)",
        "total post..complete", total_first, total_later
    );
    println!(
        "  {:<26} {:>12} {:>14}",
        "withdraw (worker)", first_withdraw_worker.gas_used, later_withdraw.gas_used
    );
    println!(
        "  {:<26} {:>12}",
        "withdraw (requester)", first_withdraw_requester.gas_used
    );
    println!(
        "  {:<26} {:>12}   (Posted: the whole budget back)",
        "withdraw task (posted)", withdraw_posted.gas_used
    );
    println!(
        "  {:<26} {:>12}   (Assigned: worker released, 10 % fee)",
        "withdraw task (assigned)", withdraw_assigned.gas_used
    );

    // ---- a whole task with one oracle and with a 2-of-3 consortium, each on a fresh chain
    let later = runs.max(3);
    let (solo_first, solo_later) = whole_task_gas(1, 1, later).await;
    let (trio_first, trio_later) = whole_task_gas(3, 2, later).await;
    println!(
        "gas of a whole task, post -> withdraw (requester and worker): post, assign vote(s), submit, complete vote(s), 2 withdrawals"
    );
    println!("  {:<26} {:>12} {:>14}", "oracles", "first task", "later (median)");
    println!("  {:<26} {solo_first:>12} {solo_later:>14}", "1 of 1 (1 vote each)");
    println!("  {:<26} {trio_first:>12} {trio_later:>14}", "2 of 3 (2 votes each)");
    println!(
        "  {:<26} {:>12.3} {:>14.3}",
        "ratio 2-of-3 / 1-of-1",
        trio_first as f64 / solo_first as f64,
        trio_later as f64 / solo_later as f64
    );

    if std::env::args().any(|a| a == "--gas-only") {
        return;
    }

    // ---- throughput, each run on a fresh chain: anvil recomputes its state root over all storage every
    // block, so its per-block cost grows with the contracts' storage and a long-lived chain slows down.
    let mut one_lane = Vec::new();
    let mut many_lanes = Vec::new();
    for _ in 0..runs {
        let devnet = spawn();
        let (market, lanes) = setup(&devnet, 1, 1).await;
        let deadline = devnet.now().await.unwrap() + 30 * 24 * 3600;
        let started = Instant::now();
        for _ in 0..tasks {
            one_task(&market, &lanes[0], deadline).await;
        }
        one_lane.push(tasks as f64 / started.elapsed().as_secs_f64());
        check_books(&market, &lanes).await;

        let devnet = spawn();
        let (market, lanes) = setup(&devnet, 1, 1).await;
        let per_lane = tasks.div_ceil(LANES);
        let started = Instant::now();
        try_join_all(lanes.iter().map(|lane| {
            let market = market.clone();
            async move {
                for _ in 0..per_lane {
                    one_task(&market, lane, deadline).await;
                }
                Ok::<_, ()>(())
            }
        }))
        .await
        .unwrap();
        many_lanes.push((per_lane * LANES) as f64 / started.elapsed().as_secs_f64());
        check_books(&market, &lanes).await;
    }
    let show = |v: &[f64]| v.iter().map(|x| format!("{x:.1}")).collect::<Vec<_>>().join(" ");
    println!(
        "settled tasks per second, fresh anvil per run (4 tx each, every receipt awaited; median of {runs} runs of {tasks} tasks)"
    );
    println!(
        "  1 lane   {:>8.1} tasks/s   (runs: {})",
        median(one_lane.clone()),
        show(&one_lane)
    );
    println!(
        "  {LANES} lanes  {:>8.1} tasks/s   (runs: {})",
        median(many_lanes.clone()),
        show(&many_lanes)
    );

    // ---- one lane on the long-lived chain of the gas section, after filling it with 400 more tasks
    try_join_all(lanes.iter().map(|lane| {
        let market = market.clone();
        async move {
            for _ in 0..400 / LANES {
                one_task(&market, lane, deadline).await;
            }
            Ok::<_, ()>(())
        }
    }))
    .await
    .unwrap();
    let started = Instant::now();
    for _ in 0..tasks {
        one_task(&market, &lanes[0], deadline).await;
    }
    let settled = market.task_count().await.unwrap();
    println!(
        "  1 lane on a chain already holding {} tasks: {:.1} tasks/s",
        settled - tasks as u64,
        tasks as f64 / started.elapsed().as_secs_f64()
    );
    check_books(&market, &lanes).await;
}

/// TMC must hold exactly what it owes: nothing is stuck, nothing was paid twice.
async fn check_books(market: &Market, lanes: &[Lane]) {
    let escrow_left = market.balance(market.deployment().tmc).await.unwrap();
    let mut owed = U256::ZERO;
    for lane in lanes {
        owed += market.credits(lane.worker).await.unwrap().tmc + market.credits(lane.requester).await.unwrap().tmc;
    }
    assert_eq!(escrow_left, owed, "TMC holds exactly the credits it owes");
}
