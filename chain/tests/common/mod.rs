//! Shared set-up of the chain tests: a fresh anvil per test and a deployed, wired market.
#![allow(dead_code)]

use drlaas_chain::{
    EnvKind, Expertise, Hardware, Market, MarketParams, NewTask, TaskKind, WorkerProfile,
    alloy::primitives::{Address, U256, utils::parse_ether},
    devnet::{ADMIN, Devnet, ORACLE},
};

/// Named accounts of a test market.
pub struct World {
    pub devnet: Devnet,
    pub market: Market,
    pub admin: Address,
    /// The first oracle (the only one in [`world`]).
    pub oracle: Address,
    /// Every oracle, by seat.
    pub oracles: Vec<Address>,
    pub requester: Address,
    pub workers: Vec<Address>,
    pub others: Vec<Address>,
}

pub fn eth(s: &str) -> U256 {
    parse_ether(s).unwrap()
}

pub fn profile(price: &str) -> WorkerProfile {
    WorkerProfile {
        expertise: Expertise::from_levels([(EnvKind::Cartpole, 200), (EnvKind::MazeCleaning, 120)]),
        hardware: Hardware {
            gpus: 1,
            cpu_cores: 16,
            memory_gib: 64,
        },
        price_per_task: eth(price),
        metadata_cid: "bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy".into(),
    }
}

/// anvil + deployed contracts; account 0 admin, 1 the only oracle, 2 requester, 3..6 workers
/// (registered with 2 ETH stake at prices 1, 2, 3 ETH), the rest unregistered.
pub async fn world() -> World {
    world_of(MarketParams::default(), &[ORACLE], 1).await
}

/// As [`world`], with `params` and the accounts `oracle_accounts` (by seat; 1 and 9 or above, so
/// they are neither the requester nor workers) as the oracles, `quorum` of them needed.
pub async fn world_of(params: MarketParams, oracle_accounts: &[usize], quorum: u8) -> World {
    let _ = tracing_subscriber::fmt()
        .with_env_filter("warn")
        .with_test_writer()
        .try_init();
    let devnet = Devnet::spawn(12).expect("anvil starts (run tools/setup.sh)");
    let accounts = devnet.accounts();
    let (admin, requester) = (accounts[ADMIN], accounts[2]);
    let oracles: Vec<Address> = oracle_accounts.iter().map(|&i| accounts[i]).collect();
    let market = devnet.deploy_consortium(params, oracle_accounts, quorum).await.unwrap();
    let workers = accounts[3..6].to_vec();
    for (i, w) in workers.iter().enumerate() {
        market
            .register_worker(*w, &profile(&(i + 1).to_string()), eth("2"))
            .await
            .unwrap();
    }
    World {
        market,
        admin,
        oracle: oracles[0],
        requester,
        workers,
        others: accounts[6..].iter().filter(|a| !oracles.contains(a)).copied().collect(),
        oracles,
        devnet,
    }
}

impl World {
    pub async fn new_task(&self, budget: &str) -> NewTask {
        NewTask {
            spec_cid: "bafkreibm6jg3ux5qumhcn2b3flc3tyu6dmlb4xa7u5bf44yegnrjhc4yeq".into(),
            kind: TaskKind::Training,
            target_milli: 475_000,
            deadline: self.devnet.now().await.unwrap() + 3600,
            budget: eth(budget),
        }
    }
}
