//! A whole marketplace round on a fresh anvil: deploy, register three workers, run a training task to
//! payment, fail a bad attempt (slash, reassign), sell a derived model with a royalty, withdraw, and
//! print gas, balances and reputations.
//!
//! `cargo run -p drlaas-chain --example lifecycle` (needs `tools/setup.sh` once). Until the operator
//! lands, this program plays the oracle itself: the recruitment here is a plain "best reputation, then
//! lowest price" pick, not the QoS recruitment of the operator.

use drlaas_chain::{
    EnvKind, Expertise, Hardware, Market, MarketParams, NewListing, NewTask, TaskKind, TxOutcome, WorkerProfile,
    alloy::primitives::{Address, U256, keccak256, utils::format_ether, utils::parse_ether},
    devnet::Devnet,
};

fn eth(s: &str) -> U256 {
    parse_ether(s).unwrap()
}

fn ether(v: U256) -> f64 {
    format_ether(v).parse().unwrap_or(f64::NAN)
}

struct Log(Vec<(String, TxOutcome)>);

impl Log {
    fn add(&mut self, what: impl Into<String>, tx: TxOutcome) {
        let what = what.into();
        println!("  {what:<44} gas {:>7}  tx {}", tx.gas_used, tx.hash);
        self.0.push((what, tx));
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let devnet = Devnet::spawn(8)?;
    let a = devnet.accounts();
    let (admin, oracle, requester) = (a[0], a[1], a[2]);
    let workers = [
        ("gpu-lab", a[3], "1.5", 1u16, 32u16),
        ("cpu-farm", a[4], "0.8", 0, 16),
        ("rookie", a[5], "0.5", 0, 4),
    ];
    let names = |x: Address| {
        workers
            .iter()
            .find(|w| w.1 == x)
            .map(|w| w.0)
            .unwrap_or(if x == requester { "requester" } else { "?" })
    };
    let mut log = Log(Vec::new());

    println!("anvil at {}; deploying UMC, TMC, MMC", devnet.endpoint());
    // One oracle (a 1-of-1 consortium): this program plays it.
    let market = Market::deploy(
        devnet.provider(),
        devnet.wallet(),
        admin,
        MarketParams::default(),
        &[oracle],
        1,
    )
    .await?;
    let d = market.deployment();
    println!("  UMC {}  TMC {}  MMC {}", d.umc, d.tmc, d.mmc);
    for (name, addr, price, gpus, cores) in workers {
        let profile = WorkerProfile {
            expertise: Expertise::from_levels([(EnvKind::Cartpole, 200), (EnvKind::MazeCleaning, 150)]),
            hardware: Hardware {
                gpus,
                cpu_cores: cores,
                memory_gib: u32::from(cores) * 4,
            },
            price_per_task: eth(price),
            metadata_cid: format!("bafy-profile-{name}"),
        };
        log.add(
            format!("registerWorker {name} (stake 2 ETH, price {price})"),
            market.register_worker(addr, &profile, eth("2")).await?,
        );
    }
    let start: Vec<U256> = {
        let mut v = Vec::new();
        for x in [requester, a[3], a[4], a[5]] {
            v.push(market.balance(x).await?);
        }
        v
    };

    // Pick the best-reputation worker whose price fits, cheapest first on ties.
    let recruit = |exclude: Vec<Address>, budget: U256| {
        let market = market.clone();
        async move {
            let mut best: Option<(u32, U256, Address)> = None;
            for (_, addr, ..) in workers {
                let w = market.worker(addr).await?.expect("registered");
                if exclude.contains(&addr) || w.profile.price_per_task > budget {
                    continue;
                }
                let key = (w.reputation.0, w.profile.price_per_task, addr);
                if best.is_none_or(|b| key.0 > b.0 || (key.0 == b.0 && key.1 < b.1)) {
                    best = Some(key);
                }
            }
            let (_, price, addr) = best.expect("a feasible worker");
            Ok::<_, drlaas_chain::ChainError>((addr, price))
        }
    };

    println!("\ntask 1: train cartpole to mean return 475, budget 2 ETH");
    let deadline = devnet.now().await? + 3600;
    let spec = |name: &str| NewTask {
        spec_cid: format!("bafy-spec-{name}"),
        kind: TaskKind::Training,
        target_milli: 475_000,
        deadline,
        budget: eth("2"),
    };
    let (t1, tx) = market.post_task(requester, &spec("cartpole")).await?;
    log.add("postTask (2 ETH in escrow)", tx);
    let (w1, price) = recruit(vec![], eth("2")).await?;
    log.add(
        format!("assign -> {} (at its price; the rest is refunded)", names(w1)),
        market.assign(oracle, t1, w1, price).await?,
    );
    let result = br#"{"modelCid":"bafy-model-cartpole","meanReturn":497.3}"#;
    log.add(
        "submitResult",
        market
            .submit_result(w1, t1, "bafy-model-cartpole", keccak256(result))
            .await?,
    );
    log.add("complete (verified: 497.3 >= 475)", market.complete(oracle, t1).await?);

    println!("\ntask 2: maze-cleaning, budget 2 ETH; the first attempt fails verification");
    let (t2, tx) = market.post_task(requester, &spec("maze")).await?;
    log.add("postTask", tx);
    let bad = a[5];
    log.add(
        format!("assign -> {}", names(bad)),
        market.assign(oracle, t2, bad, eth("0.5")).await?,
    );
    log.add(
        "submitResult (a model that scores too low)",
        market
            .submit_result(bad, t2, "bafy-model-weak", keccak256(b"weak"))
            .await?,
    );
    log.add(
        "fail + reopen (10 % of stake to requester)",
        market.fail(oracle, t2, true).await?,
    );
    let (w2, price) = recruit(vec![bad], market.task(t2).await?.budget).await?;
    log.add(
        format!("assign -> {}", names(w2)),
        market.assign(oracle, t2, w2, price).await?,
    );
    log.add(
        "submitResult",
        market
            .submit_result(w2, t2, "bafy-model-maze", keccak256(b"good"))
            .await?,
    );
    log.add("complete", market.complete(oracle, t2).await?);

    println!("\nmodel market: the maze model, warm-started from the cartpole one, is sold with a 10 % royalty");
    let listing = |cid: &str, price: &str, parent, royalty_bps| NewListing {
        model_cid: cid.into(),
        env_kind: EnvKind::MazeCleaning,
        env_descriptor_hash: keccak256(cid),
        price: eth(price),
        parent,
        royalty_bps,
    };
    let (parent, tx) = market
        .list_model(w1, &listing("bafy-model-cartpole", "0.5", None, 1_000))
        .await?;
    log.add(format!("list parent model by {}", names(w1)), tx);
    let (child, tx) = market
        .list_model(w2, &listing("bafy-model-maze", "1", Some(parent), 0))
        .await?;
    log.add(format!("list derived model by {}", names(w2)), tx);
    log.add("purchase (1 ETH)", market.purchase(requester, child).await?);
    log.add("rate 5 stars", market.rate(requester, child, 5).await?);

    println!("\nwithdrawals (pull payments)");
    for x in [requester, a[3], a[4], a[5]] {
        for tx in market.withdraw_all(x).await? {
            log.add(format!("withdraw {}", names(x)), tx);
        }
    }

    println!(
        "\n{:<10} {:>14} {:>12} {:>10} {:>6} {:>6}",
        "account", "balance change", "stake", "reputation", "done", "failed"
    );
    for (i, x) in [requester, a[3], a[4], a[5]].into_iter().enumerate() {
        let now = market.balance(x).await?;
        let change = if now >= start[i] {
            format!("+{:.4}", ether(now - start[i]))
        } else {
            format!("-{:.4}", ether(start[i] - now))
        };
        match market.worker(x).await? {
            Some(w) => println!(
                "{:<10} {:>14} {:>12.4} {:>10} {:>6} {:>6}",
                names(x),
                change,
                ether(w.stake),
                w.reputation.to_string(),
                w.completed_tasks,
                w.failed_tasks
            ),
            None => println!("{:<10} {:>14}", names(x), change),
        }
    }
    let total: u64 = log.0.iter().map(|(_, t)| t.gas_used).sum();
    let task1: u64 = log
        .0
        .iter()
        .skip_while(|(w, _)| !w.starts_with("postTask (2 ETH"))
        .take(4)
        .map(|(_, t)| t.gas_used)
        .sum();
    println!(
        "\ngas: task 1 post..complete {task1}, all {} transactions {total}",
        log.0.len()
    );
    println!(
        "balance changes include gas fees; left in TMC {} ETH, in MMC {} ETH (everything owed was withdrawn)",
        ether(market.balance(d.tmc).await?),
        ether(market.balance(d.mmc).await?)
    );
    Ok(())
}
