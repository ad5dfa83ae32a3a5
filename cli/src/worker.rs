//! `drlaas worker register|list|add-stake|unstake|withdraw-stake`: a worker joins the marketplace
//! (UMC) with its stake, price, expertise and hardware; anyone lists the workers with their
//! reputation and record. A worker bonds more stake at any time; taking stake out is two steps:
//! `unstake` starts the market's cooldown (the stake stays bonded, and slashable, meanwhile) and
//! `withdraw-stake` pays it out once the cooldown is over and no task is active.

use drlaas_chain::alloy::primitives::{Address, U256, utils::parse_ether};
use drlaas_chain::alloy::providers::Provider;
use drlaas_chain::alloy::rpc::types::Filter;
use drlaas_chain::alloy::sol_types::SolEvent;
use drlaas_chain::bindings::UMC;
use drlaas_chain::{EnvKind, Expertise, Hardware, TxOutcome, WorkerInfo, WorkerProfile};

use super::connect::{self, Connection};
use super::render::{Table, deadline, eth, utc};
use super::{CliError, KeyArgs, NetworkArgs, Output, print_json};
use drlaas_core::admission::parse_wei;

/// `drlaas worker`.
#[derive(Debug, clap::Args)]
pub struct WorkerArgs {
    #[command(flatten)]
    pub network: NetworkArgs,
    #[command(subcommand)]
    pub command: WorkerCommand,
}

/// What a worker does.
#[derive(Debug, clap::Subcommand)]
pub enum WorkerCommand {
    /// Register the signing account as a worker, bonding its stake.
    Register(RegisterArgs),
    /// The registered workers: reputation, stake, price, expertise, record.
    List {
        #[arg(short = 'o', long, value_enum, default_value_t)]
        output: Output,
    },
    /// Bond --amount more stake from the signing worker's balance.
    AddStake(StakeArgs),
    /// Request to take --amount of the signing worker's stake out, after the unstake cooldown.
    ///
    /// The stake stays bonded (and slashable) through the market's unstake cooldown; then
    /// `drlaas worker withdraw-stake` pays it. Prints when it becomes withdrawable. A new request
    /// replaces a pending one and restarts the cooldown.
    Unstake(StakeArgs),
    /// Pay out the stake requested with `drlaas worker unstake`.
    ///
    /// Only once the cooldown is over and the worker has no active task: otherwise it fails,
    /// saying how long is left or how many tasks hold the stake.
    WithdrawStake {
        #[command(flatten)]
        keys: KeyArgs,
    },
}

/// `drlaas worker add-stake|unstake`.
#[derive(Debug, clap::Args)]
pub struct StakeArgs {
    // The worker signs: --key-file, $DRLAAS_KEY or --account.
    #[command(flatten)]
    pub keys: KeyArgs,
    /// The amount, in ETH (e.g. 0.5).
    #[arg(long, value_name = "ETH")]
    pub amount: String,
}

/// `drlaas worker register`.
#[derive(Debug, clap::Args)]
pub struct RegisterArgs {
    #[command(flatten)]
    pub keys: KeyArgs,
    /// Stake to bond, in ETH (at least the market's minimum).
    #[arg(long, value_name = "ETH")]
    pub stake: String,
    /// Price per task, in wei.
    #[arg(long, value_name = "WEI")]
    pub price: String,
    /// Levels 1-255 per environment kind, e.g. cartpole=200,maze-cleaning=150.
    #[arg(long, value_name = "KIND=LEVEL,...")]
    pub expertise: String,
    /// CPU cores of the node pool.
    #[arg(long)]
    pub cpu_cores: u16,
    /// GPUs of the node pool.
    #[arg(long, default_value_t = 0)]
    pub gpus: u16,
    /// Memory of the node pool, in GiB.
    #[arg(long)]
    pub memory_gib: u32,
    /// CID of the worker's public profile.
    #[arg(long, value_name = "CID", default_value = "")]
    pub metadata_cid: String,
}

/// Runs `drlaas worker ...`.
pub async fn run(args: WorkerArgs) -> Result<(), CliError> {
    match args.command {
        WorkerCommand::Register(register) => self::register(&args.network, register).await,
        WorkerCommand::List { output } => list(&args.network, output).await,
        WorkerCommand::AddStake(stake) => add_stake(&args.network, stake).await,
        WorkerCommand::Unstake(stake) => unstake(&args.network, stake).await,
        WorkerCommand::WithdrawStake { keys } => withdraw_stake(&args.network, &keys).await,
    }
}

/// `cartpole=200,maze-cleaning=150` as levels per kind.
pub fn parse_expertise(text: &str) -> Result<Expertise, String> {
    let mut levels = Vec::new();
    for item in text.split(',').map(str::trim).filter(|i| !i.is_empty()) {
        let (kind, level) = item
            .split_once('=')
            .ok_or_else(|| format!("{item:?}: expected KIND=LEVEL, e.g. cartpole=200"))?;
        let kind: EnvKind = kind.trim().parse()?;
        let level: u8 = level
            .trim()
            .parse()
            .ok()
            .filter(|l| *l > 0)
            .ok_or_else(|| format!("{item:?}: the level is a whole number from 1 to 255"))?;
        levels.push((kind, level));
    }
    if levels.is_empty() {
        return Err("at least one KIND=LEVEL, e.g. cartpole=200".into());
    }
    Ok(Expertise::from_levels(levels))
}

/// An amount of ETH (`1.5`) in wei.
pub fn parse_eth(flag: &str, text: &str) -> Result<U256, CliError> {
    parse_ether(text.trim()).map_err(|_| CliError::new(format!("{flag}: an amount of ETH such as 1.5, got {text:?}")))
}

/// Levels as written on the command line.
pub fn expertise_text(expertise: &Expertise) -> String {
    expertise
        .0
        .iter()
        .map(|(kind, level)| format!("{kind}={level}"))
        .collect::<Vec<_>>()
        .join(",")
}

async fn register(network: &NetworkArgs, args: RegisterArgs) -> Result<(), CliError> {
    let stake = parse_eth("--stake", &args.stake)?;
    let price = parse_wei(&args.price).map_err(|m| CliError::new(format!("--price: {m}")))?;
    let expertise = parse_expertise(&args.expertise).map_err(|m| CliError::new(format!("--expertise: {m}")))?;
    let conn = Connection::open(network, |n| connect::signer(&args.keys, n, None).map(Some)).await?;
    let worker = conn.account();
    if let Some(existing) = conn.market.worker(worker).await.map_err(|e| conn.chain_error(e))? {
        return Err(CliError::new(format!(
            "{worker} is already registered as a worker (stake {}, reputation {})",
            eth(existing.stake),
            existing.reputation
        )));
    }
    let balance = conn.market.balance(worker).await.map_err(|e| conn.chain_error(e))?;
    if balance <= stake {
        return Err(CliError::new(format!(
            "account {worker} holds {}, the stake is {} plus gas",
            eth(balance),
            eth(stake)
        )));
    }
    let profile = WorkerProfile {
        expertise,
        hardware: Hardware {
            gpus: args.gpus,
            cpu_cores: args.cpu_cores,
            memory_gib: args.memory_gib,
        },
        price_per_task: U256::from(price),
        metadata_cid: args.metadata_cid,
    };
    let outcome = conn
        .market
        .register_worker(worker, &profile, stake)
        .await
        .map_err(|e| connect::funds_error(&conn, worker, balance, stake, "the stake is", e))?;
    println!("registered worker {worker} with {} staked", eth(stake));
    println!("transaction {} (block {})", outcome.hash, outcome.block);
    Ok(())
}

/// A worker's stake and its pending unstake, as the chain holds them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StakeState {
    /// Bonded stake, the pending unstake included.
    pub staked: U256,
    /// Requested for withdrawal (zero when none is pending).
    pub unstaking: U256,
    /// Unix time from which the pending unstake can be withdrawn.
    pub withdrawable_at: Option<u64>,
}

impl StakeState {
    /// `2 ETH (1 ETH unstaking: withdrawable at 2025-03-01T12:00:00Z, in 1h)`, relative to the
    /// chain's clock `now`.
    pub fn describe(&self, now: u64) -> String {
        let mut text = eth(self.staked);
        if !self.unstaking.is_zero() {
            text.push_str(&format!(" ({} unstaking", eth(self.unstaking)));
            if let Some(at) = self.withdrawable_at {
                if at <= now {
                    text.push_str(&format!(": withdrawable since {}", utc(at)));
                } else {
                    text.push_str(&format!(": withdrawable at {}, {}", utc(at), deadline(at, now)));
                }
            }
            text.push(')');
        }
        text
    }
}

/// The stake of `address`, or `None` when it is not a registered worker.
pub async fn stake_state(conn: &Connection, address: Address) -> Result<Option<StakeState>, CliError> {
    let Some(w) = conn.market.worker(address).await.map_err(|e| conn.chain_error(e))? else {
        return Ok(None);
    };
    Ok(Some(state_of(&w)))
}

fn state_of(w: &WorkerInfo) -> StakeState {
    // Fixed when it was requested, with the cooldown in force then.
    let withdrawable_at = (!w.unstake_amount.is_zero()).then_some(w.unstake_available_at);
    StakeState {
        staked: w.stake,
        unstaking: w.unstake_amount,
        withdrawable_at,
    }
}

/// UMC's unstake cooldown, in seconds.
async fn unstake_cooldown(conn: &Connection) -> Result<u64, CliError> {
    let umc = UMC::new(conn.network.deployment.umc, conn.market.provider());
    let cooldown = umc
        .unstakeCooldown()
        .call()
        .await
        .map_err(|e| CliError::new(format!("cannot read the unstake cooldown of UMC: {e}")))?;
    Ok(cooldown.to::<u64>())
}

/// UMC's minimum stake, in wei.
async fn min_stake(conn: &Connection) -> Result<U256, CliError> {
    let umc = UMC::new(conn.network.deployment.umc, conn.market.provider());
    let min = umc
        .minStake()
        .call()
        .await
        .map_err(|e| CliError::new(format!("cannot read the minimum stake of UMC: {e}")))?;
    Ok(U256::from(min))
}

/// The signing account's worker record; an error when it is not registered.
async fn registered_worker(conn: &Connection) -> Result<WorkerInfo, CliError> {
    let worker = conn.account();
    conn.market
        .worker(worker)
        .await
        .map_err(|e| conn.chain_error(e))?
        .ok_or_else(|| not_registered(worker))
}

fn not_registered(worker: Address) -> CliError {
    CliError::new(format!(
        "{worker} is not a registered worker (register with `drlaas worker register`, or sign with the worker's key: --key-file, $DRLAAS_KEY or --account)"
    ))
}

/// A positive `--amount` in wei.
fn parse_amount(text: &str) -> Result<U256, CliError> {
    let amount = parse_eth("--amount", text)?;
    if amount.is_zero() {
        return Err(CliError::new(format!("--amount: more than 0 ETH, got {text:?}")));
    }
    Ok(amount)
}

fn print_tx(outcome: &TxOutcome) {
    println!(
        "transaction {} (block {}, gas {})",
        outcome.hash,
        outcome.block,
        eth(outcome.fee)
    );
}

async fn add_stake(network: &NetworkArgs, args: StakeArgs) -> Result<(), CliError> {
    let amount = parse_amount(&args.amount)?;
    let conn = Connection::open(network, |n| connect::signer(&args.keys, n, None).map(Some)).await?;
    let w = registered_worker(&conn).await?;
    let balance = conn.market.balance(w.address).await.map_err(|e| conn.chain_error(e))?;
    if balance <= amount {
        return Err(CliError::new(format!(
            "account {} holds {}, the added stake is {} plus gas",
            w.address,
            eth(balance),
            eth(amount)
        )));
    }
    let outcome = conn
        .market
        .add_stake(w.address, amount)
        .await
        .map_err(|e| connect::funds_error(&conn, w.address, balance, amount, "the added stake is", e))?;
    let staked = registered_worker(&conn).await?.stake;
    println!(
        "added {} to the stake of {}: {} staked",
        eth(amount),
        w.address,
        eth(staked)
    );
    print_tx(&outcome);
    Ok(())
}

async fn unstake(network: &NetworkArgs, args: StakeArgs) -> Result<(), CliError> {
    let amount = parse_amount(&args.amount)?;
    let conn = Connection::open(network, |n| connect::signer(&args.keys, n, None).map(Some)).await?;
    let w = registered_worker(&conn).await?;
    if amount > w.stake {
        return Err(CliError::new(format!(
            "--amount {} is more than the stake of {} ({})",
            eth(amount),
            w.address,
            eth(w.stake)
        )));
    }
    let outcome = conn
        .market
        .request_unstake(w.address, amount)
        .await
        .map_err(|e| conn.chain_error(e))?;
    if !w.unstake_amount.is_zero() {
        println!(
            "replaced the pending request to unstake {}: the cooldown starts again",
            eth(w.unstake_amount)
        );
    }
    let after = registered_worker(&conn).await?;
    let state = state_of(&after);
    let cooldown = unstake_cooldown(&conn).await?;
    println!(
        "requested to unstake {} of the {} staked by {}",
        eth(amount),
        eth(after.stake),
        w.address
    );
    if let Some(at) = state.withdrawable_at {
        println!(
            "withdrawable at {} ({} after the request, the market's unstake cooldown): then run `drlaas worker withdraw-stake`",
            utc(at),
            super::render::duration(cooldown)
        );
    }
    println!("until then the stake stays bonded, and slashable if a task fails");
    let min = min_stake(&conn).await?;
    let left = after.stake.saturating_sub(amount);
    if left < min {
        println!(
            "{} stays staked once it is withdrawn, below the market's minimum of {}: the worker gets no new tasks",
            eth(left),
            eth(min)
        );
    }
    print_tx(&outcome);
    Ok(())
}

async fn withdraw_stake(network: &NetworkArgs, keys: &KeyArgs) -> Result<(), CliError> {
    let conn = Connection::open(network, |n| connect::signer(keys, n, None).map(Some)).await?;
    let w = registered_worker(&conn).await?;
    if w.unstake_amount.is_zero() {
        return Err(no_unstake_request(w.address));
    }
    let outcome = match conn.market.withdraw_stake(w.address).await {
        Ok(outcome) => outcome,
        Err(e) => {
            let Some(revert) = e.decode_revert::<UMC::UMCErrors>() else {
                return Err(conn.chain_error(e));
            };
            let now = conn.chain_now().await?;
            return Err(stake_revert(w.address, w.unstake_amount, &revert, now).unwrap_or_else(|| conn.chain_error(e)));
        }
    };
    let paid = stake_withdrawn(&conn, &outcome).await.unwrap_or(w.unstake_amount);
    let left = registered_worker(&conn).await?.stake;
    println!(
        "withdrew {} of stake to {}: {} stays staked",
        eth(paid),
        w.address,
        eth(left)
    );
    print_tx(&outcome);
    Ok(())
}

fn no_unstake_request(worker: Address) -> CliError {
    CliError::new(format!(
        "{worker} has no pending unstake: request one with `drlaas worker unstake --amount ETH`, then wait out the cooldown"
    ))
}

/// UMC's reason for refusing `withdrawStake`, said plainly with the chain's clock `now`; `None`
/// for a revert the caller renders as any other chain error.
pub fn stake_revert(worker: Address, pending: U256, revert: &UMC::UMCErrors, now: u64) -> Option<CliError> {
    Some(match revert {
        UMC::UMCErrors::CooldownNotOver(c) => {
            let at = c.availableAt.saturating_to::<u64>();
            CliError::new(format!(
                "the unstake cooldown is not over: {} of stake becomes withdrawable at {} ({}, chain time); run `drlaas worker withdraw-stake` again then",
                eth(pending),
                utc(at),
                deadline(at, now)
            ))
        }
        UMC::UMCErrors::HasActiveTasks(h) => CliError::new(format!(
            "{worker} has {} active task(s): the stake can be withdrawn once they are settled",
            h.active
        )),
        UMC::UMCErrors::NoUnstakeRequest(_) => no_unstake_request(worker),
        UMC::UMCErrors::NotRegistered(_) => not_registered(worker),
        _ => return None,
    })
}

/// The amount the `StakeWithdrawn` event of `outcome` says was paid (less than requested when the
/// stake was slashed meanwhile).
async fn stake_withdrawn(conn: &Connection, outcome: &TxOutcome) -> Option<U256> {
    let receipt = conn
        .market
        .provider()
        .get_transaction_receipt(outcome.hash)
        .await
        .ok()??;
    receipt
        .inner
        .logs()
        .iter()
        .filter(|l| l.address() == conn.network.deployment.umc)
        .find_map(|l| UMC::StakeWithdrawn::decode_log(&l.inner).ok())
        .map(|e| e.amount)
}

/// Every account that ever registered, oldest first.
async fn registered(conn: &Connection) -> Result<Vec<Address>, CliError> {
    let filter = Filter::new()
        .address(conn.network.deployment.umc)
        .event_signature(UMC::WorkerRegistered::SIGNATURE_HASH)
        .from_block(conn.network.deployment.block);
    let logs = conn
        .market
        .provider()
        .get_logs(&filter)
        .await
        .map_err(|e| CliError::new(format!("cannot reach the chain at {}: {e}", conn.network.rpc_url)))?;
    let mut workers = Vec::new();
    for log in logs {
        if let Ok(event) = UMC::WorkerRegistered::decode_log(&log.inner)
            && !workers.contains(&event.worker)
        {
            workers.push(event.worker);
        }
    }
    Ok(workers)
}

async fn list(network: &NetworkArgs, output: Output) -> Result<(), CliError> {
    let conn = Connection::open(network, |_| Ok(None)).await?;
    let mut workers: Vec<WorkerInfo> = Vec::new();
    for address in registered(&conn).await? {
        if let Some(w) = conn.market.worker(address).await.map_err(|e| conn.chain_error(e))? {
            workers.push(w);
        }
    }
    if output == Output::Json {
        print_json(&workers);
        return Ok(());
    }
    if workers.is_empty() {
        println!("no workers registered");
        return Ok(());
    }
    let mut table = Table::new(&[
        "ADDRESS",
        "REPUTATION",
        "STAKE",
        "PRICE",
        "EXPERTISE",
        "HARDWARE",
        "ACTIVE",
        "DONE",
        "FAILED",
    ]);
    for w in &workers {
        let h = w.profile.hardware;
        table.row(vec![
            w.address.to_string(),
            w.reputation.to_string(),
            eth(w.stake),
            eth(w.profile.price_per_task),
            expertise_text(&w.profile.expertise),
            format!("{} CPU, {} GPU, {} GiB", h.cpu_cores, h.gpus, h.memory_gib),
            w.active_tasks.to_string(),
            w.completed_tasks.to_string(),
            w.failed_tasks.to_string(),
        ]);
    }
    print!("{}", table.render());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expertise_is_read_as_kind_equals_level() {
        let e = parse_expertise("cartpole=200, maze-cleaning=150").unwrap();
        assert_eq!(e.level(EnvKind::Cartpole), 200);
        assert_eq!(e.level(EnvKind::MazeCleaning), 150);
        assert_eq!(expertise_text(&e), "cartpole=200,maze-cleaning=150");
        assert!(
            parse_expertise("mujoco=3")
                .unwrap_err()
                .contains("expected one of cartpole, target-localization")
        );
        assert!(parse_expertise("cartpole=0").unwrap_err().contains("from 1 to 255"));
        assert!(parse_expertise("cartpole=256").unwrap_err().contains("from 1 to 255"));
        assert!(parse_expertise("cartpole").unwrap_err().contains("KIND=LEVEL"));
        assert!(parse_expertise("").is_err());
    }

    #[test]
    fn stake_reverts_are_said_plainly() {
        let worker: Address = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8".parse().unwrap();
        let one = U256::from(10u64).pow(U256::from(18u64));
        let cooldown = UMC::UMCErrors::CooldownNotOver(UMC::CooldownNotOver {
            availableAt: U256::from(7_200u64),
        });
        let err = stake_revert(worker, one, &cooldown, 3_600).unwrap();
        assert_eq!(
            err.0,
            "the unstake cooldown is not over: 1 ETH of stake becomes withdrawable at 1970-01-01T02:00:00Z (in 1h, chain time); run `drlaas worker withdraw-stake` again then"
        );
        let active = UMC::UMCErrors::HasActiveTasks(UMC::HasActiveTasks { worker, active: 2 });
        assert!(
            stake_revert(worker, one, &active, 0)
                .unwrap()
                .0
                .contains("has 2 active task(s)")
        );
        let none = UMC::UMCErrors::NoUnstakeRequest(UMC::NoUnstakeRequest { worker });
        assert!(
            stake_revert(worker, one, &none, 0)
                .unwrap()
                .0
                .contains("drlaas worker unstake --amount ETH")
        );
        let other = UMC::UMCErrors::NotMarket(UMC::NotMarket { caller: worker });
        assert!(stake_revert(worker, one, &other, 0).is_none());
    }

    #[test]
    fn a_stake_reads_with_its_pending_unstake() {
        let one = U256::from(10u64).pow(U256::from(18u64));
        let mut s = StakeState {
            staked: one * U256::from(2u8),
            unstaking: U256::ZERO,
            withdrawable_at: None,
        };
        assert_eq!(s.describe(0), "2 ETH");
        s.unstaking = one;
        s.withdrawable_at = Some(90);
        assert_eq!(
            s.describe(30),
            "2 ETH (1 ETH unstaking: withdrawable at 1970-01-01T00:01:30Z, in 1m)"
        );
        assert_eq!(
            s.describe(90),
            "2 ETH (1 ETH unstaking: withdrawable since 1970-01-01T00:01:30Z)"
        );
        assert!(parse_amount("0").unwrap_err().0.contains("--amount: more than 0 ETH"));
    }

    #[test]
    fn ether_amounts_parse_to_wei() {
        assert_eq!(
            parse_eth("--stake", "1.5").unwrap(),
            U256::from(1_500_000_000_000_000_000u64)
        );
        assert!(
            parse_eth("--stake", "lots")
                .unwrap_err()
                .0
                .starts_with("--stake: an amount of ETH")
        );
    }
}
