//! `drlaas worker register|list`: a worker joins the marketplace (UMC) with its stake, price,
//! expertise and hardware; anyone lists the workers with their reputation and record.

use drlaas_chain::alloy::primitives::{Address, U256, utils::parse_ether};
use drlaas_chain::alloy::providers::Provider;
use drlaas_chain::alloy::rpc::types::Filter;
use drlaas_chain::alloy::sol_types::SolEvent;
use drlaas_chain::bindings::UMC;
use drlaas_chain::{EnvKind, Expertise, Hardware, WorkerInfo, WorkerProfile};

use super::connect::{self, Connection};
use super::render::{Table, eth};
use super::{CliError, KeyArgs, NetworkArgs, Output, print_json};
use crate::core::admission::parse_wei;

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
