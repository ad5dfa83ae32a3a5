//! `drlaas wallet show|withdraw`: what the marketplace owes an account, and taking it out.
//!
//! Payments are pull-based: the contracts credit an account and the account withdraws. TMC credits
//! a worker's pay and a requester's refunds, UMC the stake slashed from a failed worker (to the
//! wronged requester), MMC model sales and royalties. `show` prints an account's ETH balance, its
//! credits per contract and, for a worker, its stake; `withdraw` moves the signing account's credits
//! to its balance, one transaction per contract.

use drlaas_chain::alloy::primitives::{Address, B256, U256};
use drlaas_chain::alloy::providers::Provider;
use drlaas_chain::alloy::sol_types::SolEvent;
use drlaas_chain::bindings::TMC;
use drlaas_chain::{ChainError, Contract, Credits, TxOutcome};
use serde::Serialize;

use super::chain::parse_address;
use super::connect::{self, Connection};
use super::render::{Table, eth, ether};
use super::worker::{self as worker_cli, StakeState};
use super::{CliError, KeyArgs, NetworkArgs, Output, print_json};

/// `drlaas wallet`.
#[derive(Debug, clap::Args)]
pub struct WalletArgs {
    #[command(flatten)]
    pub network: NetworkArgs,
    #[command(subcommand)]
    pub command: WalletCommand,
}

/// What an account does with its money on the marketplace.
#[derive(Debug, clap::Subcommand)]
pub enum WalletCommand {
    /// An account's ETH balance, its credits per contract and their total.
    ///
    /// Credits: TMC (task pay and refunds), UMC (slashed stake owed to requesters), MMC (model
    /// sales and royalties); for a worker, its stake and any pending unstake too. Amounts in ETH;
    /// `-o json` gives each to the wei.
    Show(ShowArgs),
    /// Withdraw the signing account's credits to its balance.
    ///
    /// From every contract that owes it (or only --from), one transaction each, printing the
    /// amount, the transaction hash and its gas. With nothing owed it says so and succeeds.
    Withdraw(WithdrawArgs),
}

/// `drlaas wallet show`.
#[derive(Debug, clap::Args)]
pub struct ShowArgs {
    /// The account to show (default: the signing account of --key-file, $DRLAAS_KEY or --account).
    #[arg(value_name = "ADDRESS", value_parser = parse_address)]
    pub address: Option<Address>,
    #[command(flatten)]
    pub keys: KeyArgs,
    /// How to print.
    #[arg(short = 'o', long, value_enum, default_value_t)]
    pub output: Output,
}

/// `drlaas wallet withdraw`.
#[derive(Debug, clap::Args)]
pub struct WithdrawArgs {
    // The account whose credits are withdrawn signs: --key-file, $DRLAAS_KEY or --account.
    #[command(flatten)]
    pub keys: KeyArgs,
    /// Withdraw only from this contract (default: every contract with credit).
    #[arg(long, value_enum, value_name = "CONTRACT")]
    pub from: Option<Source>,
    /// How to print.
    #[arg(short = 'o', long, value_enum, default_value_t)]
    pub output: Output,
}

/// A contract that credits accounts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Source {
    /// Task lifecycle: worker pay, requester refunds.
    Tmc,
    /// Worker registry: slashed stake owed to requesters.
    Umc,
    /// Model market: sales and royalties.
    Mmc,
}

impl Source {
    /// Every source, in the order they are shown and withdrawn.
    pub const ALL: [Source; 3] = [Source::Tmc, Source::Umc, Source::Mmc];

    /// The contract.
    pub fn contract(self) -> Contract {
        match self {
            Source::Tmc => Contract::Tmc,
            Source::Umc => Contract::Umc,
            Source::Mmc => Contract::Mmc,
        }
    }

    /// Its name in capitals, as the contracts are called.
    pub fn name(self) -> &'static str {
        match self {
            Source::Tmc => "TMC",
            Source::Umc => "UMC",
            Source::Mmc => "MMC",
        }
    }

    /// What it credits.
    pub fn what(self) -> &'static str {
        match self {
            Source::Tmc => "task pay and refunds",
            Source::Umc => "slashed stake owed to requesters",
            Source::Mmc => "model sales and royalties",
        }
    }

    /// The credit `credits` holds in this contract.
    pub fn credit(self, credits: &Credits) -> U256 {
        match self {
            Source::Tmc => credits.tmc,
            Source::Umc => credits.umc,
            Source::Mmc => credits.mmc,
        }
    }

    fn address(self, conn: &Connection) -> Address {
        let d = &conn.network.deployment;
        match self {
            Source::Tmc => d.tmc,
            Source::Umc => d.umc,
            Source::Mmc => d.mmc,
        }
    }
}

/// An amount both ways: exact wei (a decimal string) and ether.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Amount {
    pub wei: String,
    pub eth: String,
}

impl From<U256> for Amount {
    fn from(wei: U256) -> Self {
        Amount {
            wei: wei.to_string(),
            eth: ether(wei),
        }
    }
}

/// `wallet show -o json`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct WalletReport {
    /// EIP-55 checksummed.
    address: String,
    balance: Amount,
    credits: CreditReport,
    /// Only for a registered worker.
    #[serde(skip_serializing_if = "Option::is_none")]
    stake: Option<StakeReport>,
}

#[derive(Debug, Serialize)]
struct CreditReport {
    tmc: Amount,
    umc: Amount,
    mmc: Amount,
    total: Amount,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct StakeReport {
    staked: Amount,
    /// Requested for withdrawal (zero when none is pending).
    unstaking: Amount,
    /// Unix time from which the pending unstake can be withdrawn.
    #[serde(skip_serializing_if = "Option::is_none")]
    withdrawable_at: Option<u64>,
}

/// One withdrawal, as `wallet withdraw -o json` prints it.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Withdrawal {
    contract: &'static str,
    amount: Amount,
    transaction: B256,
    block: u64,
    /// Wei paid for gas.
    fee: Amount,
}

/// `wallet withdraw -o json`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct WithdrawReport {
    /// EIP-55 checksummed.
    address: String,
    withdrawals: Vec<Withdrawal>,
    /// The balance after the withdrawals.
    balance: Amount,
}

/// Runs `drlaas wallet ...`.
pub async fn run(args: WalletArgs) -> Result<(), CliError> {
    match args.command {
        WalletCommand::Show(show) => self::show(&args.network, show).await,
        WalletCommand::Withdraw(withdraw) => self::withdraw(&args.network, withdraw).await,
    }
}

/// Whether any key was named: a key file, `$DRLAAS_KEY` or a dev account.
fn key_given(keys: &KeyArgs) -> bool {
    keys.key_file.is_some() || keys.account.is_some() || std::env::var_os("DRLAAS_KEY").is_some()
}

async fn show(network: &NetworkArgs, args: ShowArgs) -> Result<(), CliError> {
    if args.address.is_none() && !key_given(&args.keys) {
        return Err(CliError::new(
            "no account to show: pass its ADDRESS, or a signing key with --key-file PATH or $DRLAAS_KEY (on a dev chain, --account N)",
        ));
    }
    let conn = Connection::open(network, |n| match args.address {
        Some(_) => Ok(None),
        None => connect::signer(&args.keys, n, None).map(Some),
    })
    .await?;
    let address = args.address.unwrap_or_else(|| conn.account());
    let chain = |e| conn.chain_error(e);
    let balance = conn.market.balance(address).await.map_err(chain)?;
    let credits = conn.market.credits(address).await.map_err(chain)?;
    let stake = worker_cli::stake_state(&conn, address).await?;
    if args.output == Output::Json {
        print_json(&WalletReport {
            address: address.to_string(),
            balance: balance.into(),
            credits: CreditReport {
                tmc: credits.tmc.into(),
                umc: credits.umc.into(),
                mmc: credits.mmc.into(),
                total: credits.total().into(),
            },
            stake: stake.as_ref().map(|s| StakeReport {
                staked: s.staked.into(),
                unstaking: s.unstaking.into(),
                withdrawable_at: s.withdrawable_at,
            }),
        });
        return Ok(());
    }
    let now = conn.chain_now().await?;
    print!("{}", show_text(address, balance, &credits, stake.as_ref(), now));
    Ok(())
}

/// What `wallet show` prints for people.
fn show_text(address: Address, balance: U256, credits: &Credits, stake: Option<&StakeState>, now: u64) -> String {
    let mut out = format!("account  {address}\nbalance  {}\n", eth(balance));
    if let Some(s) = stake {
        out.push_str(&format!("stake    {}\n", s.describe(now)));
    }
    out.push('\n');
    let mut table = Table::new(&["CREDIT", "AMOUNT", "FOR"]);
    for source in Source::ALL {
        table.row(vec![
            source.name().into(),
            eth(source.credit(credits)),
            source.what().into(),
        ]);
    }
    table.row(vec!["TOTAL".into(), eth(credits.total())]);
    out.push_str(&table.render());
    out.push('\n');
    if credits.total().is_zero() {
        out.push_str("nothing to withdraw\n");
    } else {
        out.push_str(&format!(
            "{} to withdraw with `drlaas wallet withdraw` (signed by {address})\n",
            eth(credits.total())
        ));
    }
    out
}

async fn withdraw(network: &NetworkArgs, args: WithdrawArgs) -> Result<(), CliError> {
    let conn = Connection::open(network, |n| connect::signer(&args.keys, n, None).map(Some)).await?;
    let account = conn.account();
    let chain = |e| conn.chain_error(e);
    let credits = conn.market.credits(account).await.map_err(chain)?;
    let sources: Vec<Source> = match args.from {
        Some(source) => vec![source],
        None => Source::ALL.to_vec(),
    };
    let owed: Vec<(Source, U256)> = sources
        .iter()
        .map(|s| (*s, s.credit(&credits)))
        .filter(|(_, amount)| !amount.is_zero())
        .collect();
    let text = args.output == Output::Table;
    if owed.is_empty() {
        if text {
            match args.from {
                Some(source) => println!(
                    "nothing to withdraw: {source} owes {account} nothing",
                    source = source.name()
                ),
                None => println!("nothing to withdraw: no contract owes {account} anything"),
            }
        } else {
            let balance = conn.market.balance(account).await.map_err(chain)?;
            print_json(&WithdrawReport {
                address: account.to_string(),
                withdrawals: Vec::new(),
                balance: balance.into(),
            });
        }
        return Ok(());
    }
    let mut withdrawals = Vec::new();
    for (source, credit) in owed {
        let balance = conn.market.balance(account).await.map_err(chain)?;
        let outcome = conn
            .market
            .withdraw(account, source.contract())
            .await
            .map_err(|e| withdraw_error(&conn, source, account, balance, &withdrawals, e))?;
        let amount = withdrawn(&conn, source, account, &outcome).await.unwrap_or(credit);
        if text {
            println!(
                "withdrew {} from {}: transaction {} (block {}, gas {})",
                eth(amount),
                source.name(),
                outcome.hash,
                outcome.block,
                eth(outcome.fee)
            );
        }
        withdrawals.push(Withdrawal {
            contract: source.name(),
            amount: amount.into(),
            transaction: outcome.hash,
            block: outcome.block,
            fee: outcome.fee.into(),
        });
    }
    let balance = conn.market.balance(account).await.map_err(chain)?;
    if text {
        println!("balance of {account}: {}", eth(balance));
    } else {
        print_json(&WithdrawReport {
            address: account.to_string(),
            withdrawals,
            balance: balance.into(),
        });
    }
    Ok(())
}

/// A failed withdrawal from `source`, said plainly; the withdrawals `done` before it stand.
fn withdraw_error(
    conn: &Connection,
    source: Source,
    account: Address,
    balance: U256,
    done: &[Withdrawal],
    e: ChainError,
) -> CliError {
    let why = match &e {
        ChainError::Rejected(m) if m.to_lowercase().contains("insufficient funds") => {
            format!("account {account} holds {}, not enough for the gas", eth(balance))
        }
        _ => conn.chain_error(e).0,
    };
    let mut message = format!("could not withdraw from {}: {why}", source.name());
    if !done.is_empty() {
        let done: Vec<String> = done
            .iter()
            .map(|w| format!("{} ETH from {} in {}", w.amount.eth, w.contract, w.transaction))
            .collect();
        message.push_str(&format!(" (already withdrawn: {})", done.join(", ")));
    }
    CliError::new(message)
}

/// The amount the `Withdrawn` event of `outcome` says was paid (the credit could change between
/// reading it and the transaction).
async fn withdrawn(conn: &Connection, source: Source, account: Address, outcome: &TxOutcome) -> Option<U256> {
    let receipt = conn
        .market
        .provider()
        .get_transaction_receipt(outcome.hash)
        .await
        .ok()??;
    let contract = source.address(conn);
    // The three contracts share the Consortium's `Withdrawn` event.
    receipt
        .inner
        .logs()
        .iter()
        .filter(|l| l.address() == contract)
        .filter_map(|l| TMC::Withdrawn::decode_log(&l.inner).ok())
        .find(|e| e.account == account)
        .map(|e| e.amount)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ether_wei(n: u64) -> U256 {
        U256::from(n) * U256::from(10u64).pow(U256::from(18u64))
    }

    #[test]
    fn amounts_keep_every_wei() {
        let a = Amount::from(ether_wei(2) + U256::from(5u8));
        assert_eq!(
            (a.wei.as_str(), a.eth.as_str()),
            ("2000000000000000005", "2.000000000000000005")
        );
        assert_eq!(
            serde_json::to_value(Amount::from(U256::ZERO)).unwrap(),
            serde_json::json!({"wei": "0", "eth": "0"})
        );
    }

    #[test]
    fn show_lists_each_contracts_credit_and_the_total() {
        let a: Address = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8".parse().unwrap();
        let credits = Credits {
            tmc: ether_wei(3) / U256::from(2u8),
            umc: U256::ZERO,
            mmc: ether_wei(1) / U256::from(4u8),
        };
        let text = show_text(a, ether_wei(10), &credits, None, 0);
        assert_eq!(
            text,
            format!(
                "account  {a}\nbalance  10 ETH\n\n\
                 CREDIT  AMOUNT    FOR\n\
                 TMC     1.5 ETH   task pay and refunds\n\
                 UMC     0 ETH     slashed stake owed to requesters\n\
                 MMC     0.25 ETH  model sales and royalties\n\
                 TOTAL   1.75 ETH\n\n\
                 1.75 ETH to withdraw with `drlaas wallet withdraw` (signed by {a})\n"
            )
        );
        let stake = StakeState {
            staked: ether_wei(2),
            unstaking: ether_wei(1),
            withdrawable_at: Some(3_600),
        };
        let text = show_text(a, U256::ZERO, &Credits::default(), Some(&stake), 0);
        assert!(
            text.contains("stake    2 ETH (1 ETH unstaking: withdrawable at 1970-01-01T01:00:00Z, in 1h)"),
            "{text}"
        );
        assert!(text.ends_with("TOTAL   0 ETH\n\nnothing to withdraw\n"), "{text}");
    }

    #[test]
    fn sources_name_their_contract() {
        assert_eq!(Source::ALL.map(Source::name), ["TMC", "UMC", "MMC"]);
        assert_eq!(Source::Umc.contract(), Contract::Umc);
        let credits = Credits {
            tmc: U256::from(1u8),
            umc: U256::from(2u8),
            mmc: U256::from(3u8),
        };
        assert_eq!(Source::ALL.map(|s| s.credit(&credits)), [1, 2, 3].map(U256::from));
    }
}
