//! `drlaas chain deploy|set-oracles|execute|show`: the consortium admin's commands. Before the chart
//! is installed on a cluster, the admin deploys the marketplace contracts (UMC, TMC, MMC) on the
//! consortium's chain with the oracle set (the operators' accounts) that votes on TMC:
//!
//! ```text
//! drlaas chain deploy --rpc-url http://node:8545 --key-file admin.key \
//!     --oracle 0xOPERATOR1 --oracle 0xOPERATOR2 --oracle 0xOPERATOR3 > chain-values.yaml
//! helm install drlaas charts/drlaas -f chain-values.yaml
//! ```
//!
//! `deploy` writes the deployment (chainId, umc, tmc, mmc, block) as JSON to `--out` and prints the
//! chart's `chain:` values on stdout; every progress line goes to stderr. Later changes are governed:
//! `set-oracles` schedules a new oracle set, which takes effect after the contracts' governance delay
//! when anyone runs `execute` with the same arguments (at once when the delay is 0); `show` checks a
//! deployment against the chain and prints its oracles, quorum, delay and terms.

use std::io::Write;
use std::path::{Path, PathBuf};

use drlaas_chain::alloy::primitives::{Address, U256, aliases::U96};
use drlaas_chain::alloy::providers::{DynProvider, Provider};
use drlaas_chain::alloy::signers::local::PrivateKeySigner;
use drlaas_chain::{
    ChainError, Change, Contract, DeployError, Deployment, Governed, MAX_GOVERNANCE_DELAY, Market, MarketParams,
    OpenError, REACH_TIMEOUT, ReachError, deploy_marketplace, devnet, majority,
};

use super::connect::{self, DEV_CHAIN_ID, KeyArgs, deployment_flag, tx_config};
use super::render::{duration, eth, utc};
use super::worker::parse_eth;
use super::{CliError, Output, print_json};
/// The largest duration the contracts store (40-bit seconds).
const MAX_SECONDS: u64 = (1 << 40) - 1;
/// The largest slash the worker registry accepts, in basis points (UMC.MAX_SLASH_BPS).
const MAX_SLASH_BPS: i64 = 5_000;

/// `drlaas chain`.
#[derive(Debug, clap::Args)]
pub struct ChainArgs {
    #[command(subcommand)]
    pub command: ChainCommand,
}

/// What the consortium admin does on chain.
#[derive(Debug, clap::Subcommand)]
pub enum ChainCommand {
    /// Deploy UMC, TMC and MMC with the admin key and the --oracle accounts as TMC's oracle set
    /// (--quorum of them must agree), write the deployment JSON to --out and print the Helm values
    /// for the chart on stdout (`drlaas chain deploy ... > chain-values.yaml`).
    Deploy(DeployArgs),
    /// Replace TMC's oracle set with the --oracle accounts and --quorum, signed with the admin key.
    /// The change is governed: it is scheduled and takes effect after the governance delay, when
    /// anyone runs `drlaas chain execute` with the same arguments (at once when the delay is 0).
    /// Prints "executed" or "scheduled, executable at TIME (id ...)".
    SetOracles(OraclesArgs),
    /// Execute the oracle-set change `drlaas chain set-oracles` scheduled with the same --oracle and
    /// --quorum, once its governance delay is over (any funded account may send it).
    Execute(OraclesArgs),
    /// Verify a deployment against the chain and print it: chain id, contracts, admin, oracle set
    /// and quorum, governance delay, terms, and whether each --oracle is an oracle (exits with an
    /// error when the deployment does not match the chain or an --oracle is not an oracle).
    Show(ShowArgs),
}

/// The chain's endpoint.
#[derive(Debug, Clone, clap::Args)]
pub struct RpcArgs {
    /// JSON-RPC endpoint of the chain, e.g. http://node:8545.
    #[arg(long, value_name = "URL")]
    pub rpc_url: String,
}

/// The market's parameters, with the local mode's defaults.
#[derive(Debug, Clone, clap::Args)]
pub struct ParamArgs {
    /// Stake a worker must keep bonded to be assigned tasks, in ETH.
    #[arg(long, value_name = "ETH", default_value = "1")]
    pub min_stake: String,
    /// Seconds between a worker's unstake request and its withdrawal (604800 = 7 days).
    #[arg(long, value_name = "SECONDS", default_value_t = 7 * 24 * 3600,
          value_parser = clap::value_parser!(u64).range(..=MAX_SECONDS))]
    pub unstake_cooldown: u64,
    /// Fraction of a worker's stake slashed per failed task, in basis points (at most 5000 = 50 %).
    #[arg(long, value_name = "BPS", default_value_t = 1_000,
          value_parser = clap::value_parser!(u16).range(..=MAX_SLASH_BPS))]
    pub slash_bps: u16,
    /// Seconds after a task's deadline during which oracles may still settle a submitted result
    /// (86400 = 1 day).
    #[arg(long, value_name = "SECONDS", default_value_t = 24 * 3600,
          value_parser = clap::value_parser!(u64).range(..=MAX_SECONDS))]
    pub verification_window: u64,
    /// Assignments a task gets before a failure refunds it (at least 1).
    #[arg(long, value_name = "N", default_value_t = 3, value_parser = clap::value_parser!(u8).range(1..))]
    pub max_attempts: u8,
    /// Lowest price of a task, in ETH, at which completing it raises the worker's reputation
    /// (cheaper tasks pay but earn no reputation).
    #[arg(long, value_name = "ETH", default_value = "0.01")]
    pub reputation_floor: String,
}

impl ParamArgs {
    /// The parameters the flags name.
    pub fn params(&self) -> Result<MarketParams, CliError> {
        let min_stake = parse_eth("--min-stake", &self.min_stake)?;
        if min_stake > U256::from(U96::MAX) {
            return Err(CliError::new(format!(
                "--min-stake: at most {} (96 bits of wei), got {}",
                eth(U256::from(U96::MAX)),
                self.min_stake
            )));
        }
        let reputation_floor = parse_eth("--reputation-floor", &self.reputation_floor)?;
        if reputation_floor > U256::from(U96::MAX) {
            return Err(CliError::new(format!(
                "--reputation-floor: at most {} (96 bits of wei), got {}",
                eth(U256::from(U96::MAX)),
                self.reputation_floor
            )));
        }
        Ok(MarketParams {
            min_stake,
            unstake_cooldown: self.unstake_cooldown,
            slash_bps: self.slash_bps,
            verification_window: self.verification_window,
            max_attempts: self.max_attempts,
            reputation_floor,
            governance_delay: 0,
        })
    }
}

/// `drlaas chain deploy`.
#[derive(Debug, clap::Args)]
pub struct DeployArgs {
    #[command(flatten)]
    pub rpc: RpcArgs,
    // The admin key (--key-file, $DRLAAS_KEY or --account): the signing account deploys the
    // contracts, pays their gas and becomes the consortium admin of all three.
    #[command(flatten)]
    pub keys: KeyArgs,
    /// An oracle of TMC (an operator's account), by seat; repeat for several. Default: the admin
    /// account alone (1 of 1), to be replaced with `drlaas chain set-oracles`.
    #[arg(long = "oracle", value_name = "ADDRESS", value_parser = parse_address)]
    pub oracles: Vec<Address>,
    /// Oracle votes that must agree to assign, complete or fail a task: a majority of the oracles
    /// (default: the smallest majority, e.g. 2 of 3).
    #[arg(long, value_name = "N")]
    pub quorum: Option<u8>,
    /// Seconds between the admin scheduling a change (oracles, parameters, admin) and anyone
    /// executing it, in every contract (default 172800 = 2 days, at most 2592000 = 30 days): the
    /// time users have to leave before a change they disagree with. 0 lets the admin change things
    /// at once (a devnet).
    #[arg(long, value_name = "SECONDS", default_value_t = 2 * 24 * 3600,
          value_parser = clap::value_parser!(u64).range(..=MAX_GOVERNANCE_DELAY))]
    pub governance_delay: u64,
    #[command(flatten)]
    pub params: ParamArgs,
    /// Where to write the deployment JSON (chainId, umc, tmc, mmc, block).
    #[arg(long, value_name = "FILE", default_value = "deployment.json")]
    pub out: PathBuf,
    /// Overwrite --out if it exists.
    #[arg(long)]
    pub force: bool,
    /// The rpcUrl written in the Helm values, when the operator reaches the chain at another
    /// address than this command does (default: --rpc-url).
    #[arg(long, value_name = "URL")]
    pub values_rpc_url: Option<String>,
}

/// `drlaas chain set-oracles` and `drlaas chain execute`.
#[derive(Debug, clap::Args)]
pub struct OraclesArgs {
    /// An oracle of the new set (an operator's account), by seat; repeat for each (1 to 32).
    #[arg(long = "oracle", value_name = "ADDRESS", value_parser = parse_address, required = true)]
    pub oracles: Vec<Address>,
    /// Oracle votes that must agree: a majority of the oracles (default: the smallest majority).
    #[arg(long, value_name = "N")]
    pub quorum: Option<u8>,
    #[command(flatten)]
    pub rpc: RpcArgs,
    /// The deployment JSON written by `drlaas chain deploy`.
    #[arg(long, value_name = "FILE", default_value = "deployment.json")]
    pub deployment: PathBuf,
    // The admin key for set-oracles; for execute any funded account's (--key-file, $DRLAAS_KEY or
    // --account).
    #[command(flatten)]
    pub keys: KeyArgs,
}

impl OraclesArgs {
    /// The governed call these flags name.
    fn change(&self) -> Result<(Governed, u8), CliError> {
        let quorum = self.quorum.unwrap_or_else(|| majority(self.oracles.len()));
        let call = Governed::set_oracles(&self.oracles, quorum).map_err(|e| oracle_set_error(&e))?;
        Ok((call, quorum))
    }
}

/// An invalid oracle set, named by its flags.
fn oracle_set_error(e: &ChainError) -> CliError {
    match e {
        ChainError::InvalidInput {
            field: "quorum",
            message,
        } => CliError::new(format!("--quorum: {message}")),
        ChainError::InvalidInput { message, .. } => CliError::new(format!("--oracle: {message}")),
        other => CliError::new(other.to_string()),
    }
}

/// `drlaas chain show`.
#[derive(Debug, clap::Args)]
pub struct ShowArgs {
    #[command(flatten)]
    pub rpc: RpcArgs,
    /// The deployment JSON written by `drlaas chain deploy`.
    #[arg(long, value_name = "FILE", default_value = "deployment.json")]
    pub deployment: PathBuf,
    /// An oracle account to check on TMC; repeat for several.
    #[arg(long = "oracle", value_name = "ADDRESS", value_parser = parse_address)]
    pub oracles: Vec<Address>,
    /// How to print.
    #[arg(short = 'o', long, value_enum, default_value_t)]
    pub output: Output,
}

/// Runs `drlaas chain ...`.
pub async fn run(args: ChainArgs) -> Result<(), CliError> {
    match args.command {
        ChainCommand::Deploy(a) => deploy(a).await,
        ChainCommand::SetOracles(a) => set_oracles(a).await,
        ChainCommand::Execute(a) => execute(a).await,
        ChainCommand::Show(a) => show(a).await,
    }
}

/// An account address: `0x` and 40 hex digits; mixed case must be a valid EIP-55 checksum.
pub fn parse_address(text: &str) -> Result<Address, String> {
    let t = text.trim();
    let digits = t.strip_prefix("0x").unwrap_or(t);
    if digits.len() != 40 || !digits.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err("not an address: expected 0x followed by 40 hex digits".into());
    }
    let mixed = digits.chars().any(|c| c.is_ascii_uppercase()) && digits.chars().any(|c| c.is_ascii_lowercase());
    let address = if mixed {
        Address::parse_checksummed(format!("0x{digits}"), None)
            .map_err(|_| "the mixed-case address fails its EIP-55 checksum (a typo?)".to_string())?
    } else {
        digits.parse::<Address>().map_err(|e| format!("not an address: {e}"))?
    };
    if address.is_zero() {
        return Err("the zero address is no account".into());
    }
    Ok(address)
}

/// The chart's `chain:` values for `deployment`, reached at `rpc_url`.
pub fn helm_values(rpc_url: &str, deployment: &Deployment) -> String {
    format!(
        "chain:\n  rpcUrl: {}\n  chainId: {}\n  deploymentBlock: {}\n  contracts:\n    umc: \"{}\"\n    tmc: \"{}\"\n    mmc: \"{}\"\n",
        yaml_scalar(rpc_url),
        deployment.chain_id,
        deployment.block,
        deployment.umc,
        deployment.tmc,
        deployment.mmc
    )
}

/// `text` as a YAML scalar: plain when it is safely plain (a URL), else double-quoted.
fn yaml_scalar(text: &str) -> String {
    let plain = text.starts_with(|c: char| c.is_ascii_alphanumeric())
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || ":/.-_~%?&=+@[]".contains(c))
        && !text.contains(": ");
    if plain {
        text.to_string()
    } else {
        serde_json::to_string(text).expect("a string serializes")
    }
}

/// Where the signing key came from, to name it in errors.
fn key_source(keys: &KeyArgs) -> String {
    if let Some(path) = &keys.key_file {
        format!("--key-file {}", path.display())
    } else if std::env::var_os("DRLAAS_KEY").is_some() {
        "$DRLAAS_KEY".into()
    } else if let Some(n) = keys.account {
        format!("--account {n}")
    } else {
        "the signing key".into()
    }
}

/// The admin's signer on chain `chain_id` (no default account: the admin is named explicitly).
fn admin_signer(keys: &KeyArgs, chain_id: u64) -> Result<PrivateKeySigner, CliError> {
    connect::signer_on(keys, chain_id, chain_id == DEV_CHAIN_ID, None)
}

/// Connects to the chain at `rpc_url` and reads its id.
async fn reach(rpc_url: &str) -> Result<(DynProvider, u64), CliError> {
    drlaas_chain::reach(rpc_url, REACH_TIMEOUT).await.map_err(|e| match e {
        ReachError::NotAUrl(_) => CliError::new(format!("--rpc-url {rpc_url:?}: {e}")),
        _ => CliError::new(format!("--rpc-url {rpc_url}: cannot reach the chain: {e}")),
    })
}

/// A chain error, said plainly: an unreachable node is named by its flag.
fn chain_error(rpc_url: &str, e: ChainError) -> CliError {
    match e {
        ChainError::Rpc(m) => CliError::new(format!("--rpc-url {rpc_url}: cannot reach the chain: {m}")),
        other => CliError::new(other.to_string()),
    }
}

/// A client of the deployment in `path` on the chain at `rpc_url`, checked against the chain.
async fn open(
    rpc_url: &str,
    path: &Path,
    signer: impl FnOnce(u64) -> Result<Option<PrivateKeySigner>, CliError>,
) -> Result<(Market, DynProvider), CliError> {
    let deployment = deployment_flag(path, " (`drlaas chain deploy` writes one)")?;
    let (provider, chain_id) = reach(rpc_url).await?;
    let signer = signer(chain_id)?;
    let market = Market::open(provider.clone(), devnet::wallet(signer), deployment)
        .await
        .map_err(|e| match e {
            OpenError::Chain(e) => chain_error(rpc_url, e),
            e => CliError::new(format!(
                "--deployment {} does not match the chain at {rpc_url}: {e}",
                path.display()
            )),
        })?
        .with_tx_config(tx_config());
    Ok((market, provider))
}

/// TMC's admin.
async fn tmc_admin(market: &Market, rpc_url: &str) -> Result<Address, CliError> {
    market
        .admin(Contract::Tmc)
        .await
        .map_err(|e| CliError::new(format!("--rpc-url {rpc_url}: cannot read TMC's admin: {e}")))
}

/// Writes `text` to `path`; an existing file only when `force`.
fn write_out(path: &Path, text: &str, force: bool) -> std::io::Result<()> {
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .create_new(!force)
        .open(path)?;
    file.write_all(text.as_bytes())
}

fn exists_error(path: &Path) -> CliError {
    CliError::new(format!(
        "--out {}: the file exists (an earlier deployment?); pass --force to overwrite it, or another --out",
        path.display()
    ))
}

async fn deploy(args: DeployArgs) -> Result<(), CliError> {
    let mut params = args.params.params()?;
    params.governance_delay = args.governance_delay;
    let out = &args.out;
    if out.exists() && !args.force {
        return Err(exists_error(out));
    }
    let rpc_url = args.rpc.rpc_url.as_str();
    let (provider, chain_id) = reach(rpc_url).await?;
    let signer = admin_signer(&args.keys, chain_id)?;
    let admin = signer.address();
    let oracles = if args.oracles.is_empty() {
        vec![admin]
    } else {
        args.oracles.clone()
    };
    let quorum = args.quorum.unwrap_or_else(|| majority(oracles.len()));
    // Checked before anything is sent, with the flags named.
    Governed::set_oracles(&oracles, quorum).map_err(|e| oracle_set_error(&e))?;
    let balance = provider
        .get_balance(admin)
        .await
        .map_err(|e| CliError::new(format!("--rpc-url {rpc_url}: cannot read the admin's balance: {e}")))?;
    if balance.is_zero() {
        return Err(CliError::new(format!(
            "{}: account {admin} holds no ETH on chain {chain_id}, and it pays the gas of the deployment",
            key_source(&args.keys)
        )));
    }
    eprintln!("deploying UMC, TMC and MMC on chain {chain_id} ({rpc_url}) from admin {admin}...");
    let deployed = deploy_marketplace(provider, devnet::wallet([signer]), admin, params, &oracles, quorum).await;
    // The deployment is saved even when UMC could not be bound: the contracts are on chain.
    let (market, unbound) = match deployed {
        Ok(market) => (market, None),
        Err(DeployError::Unbound { market, source }) => (*market, Some(source)),
        Err(DeployError::Contracts(e)) => {
            return Err(match e {
                ChainError::Rejected(ref m) if m.to_lowercase().contains("insufficient funds") => {
                    CliError::new(format!(
                        "{}: account {admin} holds {}, not enough for the gas of the deployment",
                        key_source(&args.keys),
                        eth(balance)
                    ))
                }
                e => CliError::new(format!("could not deploy the contracts: {}", chain_error(rpc_url, e))),
            });
        }
    };
    let deployment = *market.deployment();
    let json = deployment.to_file_text();
    write_out(out, &json, args.force).map_err(|e| {
        let why = if e.kind() == std::io::ErrorKind::AlreadyExists {
            exists_error(out).0
        } else {
            format!("--out {}: {e}", out.display())
        };
        CliError::new(format!(
            "{why}; the contracts are deployed, save their deployment yourself:\n{json}"
        ))
    })?;
    eprintln!(
        "deployed UMC {}, TMC {}, MMC {} in block {}; wrote {}",
        deployment.umc,
        deployment.tmc,
        deployment.mmc,
        deployment.block,
        out.display()
    );
    for (seat, oracle) in oracles.iter().enumerate() {
        eprintln!("oracle {oracle} (seat {seat}) of TMC");
    }
    eprintln!(
        "quorum: {quorum} of {} oracle votes must agree; governance delay {} s ({})",
        oracles.len(),
        args.governance_delay,
        duration(args.governance_delay)
    );
    if args.oracles.is_empty() {
        eprintln!(
            "no --oracle: the admin {admin} is the only oracle; replace it with `drlaas chain set-oracles --oracle ... \
             --rpc-url {rpc_url} --deployment {}` (it takes effect after the governance delay)",
            out.display()
        );
    }
    if let Some(e) = unbound {
        return Err(CliError::new(format!(
            "the contracts are deployed ({}), but UMC could not be bound to TMC, so no task can be assigned: {}; \
             send UMC.bindMarket({}) from the admin, or deploy again with --force",
            out.display(),
            chain_error(rpc_url, e),
            deployment.tmc
        )));
    }
    print!(
        "{}",
        helm_values(args.values_rpc_url.as_deref().unwrap_or(rpc_url), &deployment)
    );
    Ok(())
}

/// A client of the deployment that `args` name, signing with their key; the signing account.
async fn open_signing(args: &OraclesArgs) -> Result<(Market, Address), CliError> {
    let rpc_url = args.rpc.rpc_url.as_str();
    let mut signing = None;
    let (market, _) = open(rpc_url, &args.deployment, |chain_id| {
        let signer = admin_signer(&args.keys, chain_id)?;
        signing = Some(signer.address());
        Ok(Some(signer))
    })
    .await?;
    Ok((market, signing.expect("open asked for the signer")))
}

/// The `drlaas chain execute` command that executes what `args` name.
fn execute_command(args: &OraclesArgs, quorum: u8) -> String {
    let oracles: Vec<String> = args.oracles.iter().map(|o| format!("--oracle {o}")).collect();
    format!(
        "drlaas chain execute {} --quorum {quorum} --rpc-url {} --deployment {}",
        oracles.join(" "),
        args.rpc.rpc_url,
        args.deployment.display()
    )
}

async fn set_oracles(args: OraclesArgs) -> Result<(), CliError> {
    let (call, quorum) = args.change()?;
    let rpc_url = args.rpc.rpc_url.as_str();
    let (market, account) = open_signing(&args).await?;
    let deployment = *market.deployment();
    let admin = tmc_admin(&market, rpc_url).await?;
    if admin != account {
        return Err(CliError::new(format!(
            "{}: account {account} is not the admin of TMC {} (the admin is {admin}); sign with the admin's key",
            key_source(&args.keys),
            deployment.tmc
        )));
    }
    let current = market.consortium().await.map_err(|e| chain_error(rpc_url, e))?;
    if current.oracles == args.oracles && current.quorum == quorum {
        eprintln!(
            "TMC {} already has these oracles and quorum; setting them again voids the votes open tasks have",
            deployment.tmc
        );
    }
    let change = market
        .govern(account, vec![call])
        .await
        .map_err(|e| chain_error(rpc_url, e))?;
    match change {
        Change::Executed(txs) => {
            for tx in &txs {
                eprintln!("transaction {} (block {})", tx.hash, tx.block);
            }
            eprintln!(
                "TMC {} has {} oracle(s), {quorum} of which must agree (no governance delay)",
                deployment.tmc,
                args.oracles.len()
            );
            println!("executed");
        }
        Change::Scheduled(scheduled) => {
            for s in &scheduled {
                eprintln!(
                    "scheduled in transaction {} (block {}); until then the current oracles keep voting. Once \
                     ready, anyone runs:\n  {}",
                    s.outcome.hash,
                    s.outcome.block,
                    execute_command(&args, quorum)
                );
                println!("scheduled, executable at {} (id {})", utc(s.ready_at), s.id);
            }
        }
    }
    Ok(())
}

async fn execute(args: OraclesArgs) -> Result<(), CliError> {
    let (call, quorum) = args.change()?;
    let rpc_url = args.rpc.rpc_url.as_str();
    let (market, account) = open_signing(&args).await?;
    let deployment = *market.deployment();
    let ready_at = market
        .scheduled_at(call.contract, call.id())
        .await
        .map_err(|e| chain_error(rpc_url, e))?;
    let Some(ready_at) = ready_at else {
        let current = market.consortium().await.map_err(|e| chain_error(rpc_url, e))?;
        let already = current.oracles == args.oracles && current.quorum == quorum;
        return Err(CliError::new(format!(
            "no change to these oracles and quorum is scheduled on TMC {}{}; the admin schedules one with `drlaas \
             chain set-oracles` and the same --oracle and --quorum",
            deployment.tmc,
            if already {
                " (they are the oracle set already: it was executed)"
            } else {
                ""
            }
        )));
    };
    let now = market.block(None).await.map_err(|e| chain_error(rpc_url, e))?.timestamp;
    if now < ready_at {
        return Err(CliError::new(format!(
            "the change is scheduled but executable only at {} ({} from the chain's time now)",
            utc(ready_at),
            duration(ready_at - now)
        )));
    }
    let outcome = market
        .execute(account, call.contract, call.data)
        .await
        .map_err(|e| chain_error(rpc_url, e))?;
    eprintln!(
        "TMC {} has {} oracle(s), {quorum} of which must agree (transaction {}, block {})",
        deployment.tmc,
        args.oracles.len(),
        outcome.hash,
        outcome.block
    );
    println!("executed");
    Ok(())
}

/// What `drlaas chain show -o json` prints.
#[derive(Debug, serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct Shown {
    rpc_url: String,
    chain_id: u64,
    deployment_block: u64,
    contracts: Contracts,
    admin: Address,
    /// TMC's oracles by seat.
    oracle_set: Vec<Address>,
    quorum: u8,
    oracle_epoch: u16,
    /// TMC's governance delay, in seconds.
    governance_delay: u64,
    params: MarketParams,
    /// The --oracle checks.
    oracles: Vec<OracleCheck>,
}

#[derive(Debug, serde::Serialize)]
struct Contracts {
    umc: Address,
    tmc: Address,
    mmc: Address,
}

#[derive(Debug, serde::Serialize)]
struct OracleCheck {
    address: Address,
    allowed: bool,
}

async fn show(args: ShowArgs) -> Result<(), CliError> {
    let rpc_url = args.rpc.rpc_url.as_str();
    let (market, _) = open(rpc_url, &args.deployment, |_| Ok(None)).await?;
    let d = *market.deployment();
    let admin = tmc_admin(&market, rpc_url).await?;
    let consortium = market.consortium().await.map_err(|e| chain_error(rpc_url, e))?;
    let params = market.params().await.map_err(|e| chain_error(rpc_url, e))?;
    let oracles = args
        .oracles
        .iter()
        .map(|&address| OracleCheck {
            address,
            allowed: consortium.oracles.contains(&address),
        })
        .collect();
    let shown = Shown {
        rpc_url: rpc_url.to_string(),
        chain_id: d.chain_id,
        deployment_block: d.block,
        contracts: Contracts {
            umc: d.umc,
            tmc: d.tmc,
            mmc: d.mmc,
        },
        admin,
        oracle_set: consortium.oracles.clone(),
        quorum: consortium.quorum,
        oracle_epoch: consortium.epoch,
        governance_delay: params.governance_delay,
        params,
        oracles,
    };
    match args.output {
        Output::Json => print_json(&shown),
        Output::Table => {
            println!("deployment {} matches the chain", args.deployment.display());
            println!("rpc url             {}", shown.rpc_url);
            println!("chain id            {}", shown.chain_id);
            println!("deployment block    {}", shown.deployment_block);
            println!("UMC                 {}", d.umc);
            println!("TMC                 {}", d.tmc);
            println!("MMC                 {}", d.mmc);
            println!("admin               {admin}");
            for (seat, o) in consortium.oracles.iter().enumerate() {
                println!("oracle (seat {seat:>2})    {o}");
            }
            println!(
                "quorum              {} of {} (oracle set epoch {})",
                consortium.quorum,
                consortium.oracles.len(),
                consortium.epoch
            );
            println!(
                "governance delay    {} s ({})",
                params.governance_delay,
                duration(params.governance_delay)
            );
            println!(
                "terms               verification window {} s ({}), {} attempts, slash {} bps, reputation floor {}",
                params.verification_window,
                duration(params.verification_window),
                params.max_attempts,
                params.slash_bps,
                eth(params.reputation_floor)
            );
            println!(
                "staking             minimum {} per task held, unstake cooldown {} s ({})",
                eth(params.min_stake),
                params.unstake_cooldown,
                duration(params.unstake_cooldown)
            );
            for o in &shown.oracles {
                println!(
                    "--oracle            {} {}",
                    o.address,
                    if o.allowed { "allowed" } else { "NOT an oracle" }
                );
            }
        }
    }
    let missing: Vec<String> = shown
        .oracles
        .iter()
        .filter(|o| !o.allowed)
        .map(|o| o.address.to_string())
        .collect();
    if !missing.is_empty() {
        return Err(CliError::new(format!(
            "--oracle {}: not allowed (not an oracle of TMC {}); change the oracle set with `drlaas chain \
             set-oracles --oracle ADDRESS ... --rpc-url {rpc_url} --deployment {}`",
            missing.join(", "),
            d.tmc,
            args.deployment.display()
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct Params {
        #[command(flatten)]
        params: ParamArgs,
    }

    #[test]
    fn the_default_parameters_are_the_local_modes() {
        let p = Params::try_parse_from(["x"]).unwrap().params.params().unwrap();
        assert_eq!(p, MarketParams::default());
    }

    #[test]
    fn parameters_out_of_range_name_their_flag() {
        let err = Params::try_parse_from(["x", "--slash-bps", "6000"])
            .unwrap_err()
            .to_string();
        assert!(err.contains("--slash-bps"), "{err}");
        let err = Params::try_parse_from(["x", "--max-attempts", "0"])
            .unwrap_err()
            .to_string();
        assert!(err.contains("--max-attempts"), "{err}");
        let err = Params::try_parse_from(["x", "--unstake-cooldown", &(1u64 << 40).to_string()])
            .unwrap_err()
            .to_string();
        assert!(err.contains("--unstake-cooldown"), "{err}");
        let huge = Params::try_parse_from(["x", "--min-stake", "1e30"])
            .unwrap()
            .params
            .params();
        assert!(huge.unwrap_err().to_string().starts_with("--min-stake"));
        let p = Params::try_parse_from(["x", "--min-stake", "0.5", "--max-attempts", "5"])
            .unwrap()
            .params
            .params()
            .unwrap();
        assert_eq!(
            (p.min_stake, p.max_attempts),
            (U256::from(5u64) * U256::from(10u64).pow(U256::from(17u64)), 5)
        );
    }

    #[test]
    fn addresses_are_checked() {
        let a = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266";
        assert_eq!(parse_address(a).unwrap().to_string(), a);
        assert_eq!(parse_address(&a.to_lowercase()).unwrap().to_string(), a);
        assert_eq!(parse_address(&a[2..]).unwrap().to_string(), a);
        // One letter's case flipped: the checksum catches it.
        let typo = a.replacen("Fd6", "fd6", 1);
        assert!(parse_address(&typo).unwrap_err().contains("checksum"));
        assert!(parse_address("0x1234").unwrap_err().contains("40 hex digits"));
        assert!(parse_address("alice").is_err());
        assert!(
            parse_address(&format!("0x{}", "0".repeat(40)))
                .unwrap_err()
                .contains("zero")
        );
    }

    #[derive(Debug, serde::Deserialize, PartialEq)]
    #[serde(rename_all = "camelCase")]
    struct Values {
        chain: ChainValues,
    }

    #[derive(Debug, serde::Deserialize, PartialEq)]
    #[serde(rename_all = "camelCase")]
    struct ChainValues {
        rpc_url: String,
        chain_id: u64,
        deployment_block: u64,
        contracts: std::collections::BTreeMap<String, String>,
    }

    #[test]
    fn the_helm_values_parse_back() {
        let d = Deployment {
            chain_id: 1337,
            umc: Address::repeat_byte(0xaa),
            tmc: Address::repeat_byte(0xbb),
            mmc: Address::repeat_byte(0xcc),
            block: 42,
        };
        for url in [
            "http://node:8545",
            "https://rpc.example/v1/key?x=1&y=2",
            "http://[::1]:8545",
            "odd url #with: spaces",
        ] {
            let text = helm_values(url, &d);
            let v: Values = serde_saphyr::from_str(&text).unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!(
                (v.chain.rpc_url.as_str(), v.chain.chain_id, v.chain.deployment_block),
                (url, 1337, 42)
            );
            assert_eq!(v.chain.contracts["tmc"], d.tmc.to_string());
        }
        assert_eq!(
            helm_values("http://node:8545", &d),
            format!(
                "chain:\n  rpcUrl: http://node:8545\n  chainId: 1337\n  deploymentBlock: 42\n  contracts:\n    \
                 umc: \"{}\"\n    tmc: \"{}\"\n    mmc: \"{}\"\n",
                d.umc, d.tmc, d.mmc
            )
        );
    }
}
