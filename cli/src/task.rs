//! `drlaas task submit|list|status|cancel|fetch-model|evaluate`: a requester posts tasks on chain
//! with their budget in escrow (the operator's chain watcher, local or in a cluster, mirrors and runs
//! them), follows them, takes back one it no longer wants, and gets and checks the trained model.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use drlaas_chain::alloy::primitives::{Address, B256, U256};
use drlaas_chain::alloy::providers::Provider;
use drlaas_chain::alloy::sol_types::SolEvent;
use drlaas_chain::bindings::TMC;
use drlaas_chain::{ChainError, TaskInfo, TaskStatus, TxOutcome};
use drlaas_crds::task::{DRLTaskSpec, Payment, SecretKeyRef};
use drlaas_crds::trainer_output::{EvaluationReport, ProgressLine};
use drlaas_store::{ContentStore, Store};
use futures::StreamExt;
use serde::Serialize;

use super::connect::{self, Connection, DEFAULT_REQUESTER};
use super::render::{self, Table, count, eth, short_address, sparkline};
use super::wallet::Amount;
use super::worker::parse_eth;
use super::{CliError, KeyArgs, NetworkArgs, Output, print_json};
use drlaas_core::admission::{parse_wei, target_at_random, validate_task};
use drlaas_core::mirror::TaskDocument;
use drlaas_core::mirror::mirror_name;
use drlaas_local::api_server::ApiServer;
use drlaas_operator::controller::task::chain_task;

/// Width of the learning-curve sparkline, in bars.
const SPARKLINE_WIDTH: usize = 40;

/// `drlaas task`.
#[derive(Debug, clap::Args)]
pub struct TaskArgs {
    #[command(flatten)]
    pub network: NetworkArgs,
    #[command(subcommand)]
    pub command: TaskCommand,
}

/// What a requester does with tasks.
#[derive(Debug, clap::Subcommand)]
pub enum TaskCommand {
    /// Post the DRLTasks of a YAML file on chain, each with its budget in escrow.
    Submit(SubmitArgs),
    /// Every task on chain: kind, environment, status, worker, budget, model.
    List {
        #[arg(short = 'o', long, value_enum, default_value_t)]
        output: Output,
    },
    /// One task: its chain record and, when this machine runs it, its training progress.
    Status {
        /// The chain task id.
        id: u64,
        #[arg(short = 'o', long, value_enum, default_value_t)]
        output: Output,
    },
    /// Take back a task you posted: cancel it, or withdraw it from its worker.
    ///
    /// Before a worker is assigned, the whole budget is refunded. Once one is (and until the
    /// task's deadline), the worker is released without penalty and paid a fee of 10 % of its
    /// price for the compute it started; the rest of the budget is refunded. A submitted result
    /// cannot be withdrawn: its verification settles the task. Refund and fee are credits in TMC,
    /// taken out with `drlaas wallet withdraw`. Signed by the task's requester.
    Cancel(CancelArgs),
    /// Fetch a trained model from the content store, verified against its CID.
    FetchModel {
        /// A chain task id (its submitted model) or a model CID.
        #[arg(value_name = "ID|CID")]
        model: String,
        /// Where to write the model.
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
    },
    /// Play episodes with a trained model (the trainer's `evaluate`) and print its mean return.
    Evaluate {
        /// A chain task id (its submitted model) or a model CID.
        #[arg(value_name = "ID|CID")]
        model: String,
        /// Episodes to play.
        #[arg(long, default_value_t = 100)]
        episodes: u32,
        /// Evaluation seed.
        #[arg(long, default_value_t = 0)]
        seed: u64,
        #[arg(short = 'o', long, value_enum, default_value_t)]
        output: Output,
    },
}

/// `drlaas task submit`.
#[derive(Debug, clap::Args)]
pub struct SubmitArgs {
    /// A YAML file of one or more DRLTask documents.
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    /// Budget to escrow per task, in ETH (default: the task's spec.payment.amountWei).
    #[arg(long, value_name = "ETH")]
    pub budget: Option<String>,
    /// Wait until every task is settled, showing its progress.
    #[arg(long)]
    pub wait: bool,
    #[command(flatten)]
    pub keys: KeyArgs,
}

/// `drlaas task cancel`.
#[derive(Debug, clap::Args)]
pub struct CancelArgs {
    /// The chain task id (as `task submit` and `task list` print it).
    #[arg(value_name = "CHAIN_TASK_ID")]
    pub id: u64,
    // The task's requester signs: --key-file, $DRLAAS_KEY or --account (default 5 on a dev chain).
    #[command(flatten)]
    pub keys: KeyArgs,
    /// How to print.
    #[arg(short = 'o', long, value_enum, default_value_t)]
    pub output: Output,
}

/// Runs `drlaas task ...`.
pub async fn run(args: TaskArgs) -> Result<(), CliError> {
    match args.command {
        TaskCommand::Submit(submit) => self::submit(&args.network, submit).await,
        TaskCommand::Cancel(cancel) => self::cancel(&args.network, cancel).await,
        TaskCommand::List { output } => list(&args.network, output).await,
        TaskCommand::Status { id, output } => status(&args.network, id, output).await,
        TaskCommand::FetchModel { model, out } => fetch_model(&args.network, &model, &out).await,
        TaskCommand::Evaluate {
            model,
            episodes,
            seed,
            output,
        } => evaluate(&args.network, &model, episodes, seed, output).await,
    }
}

// ---------------------------------------------------------------------------------------- submit

/// A task of the file, ready to post.
struct Ready {
    name: String,
    spec: DRLTaskSpec,
    budget: U256,
}

/// The file's tasks with their budgets, checked as the operator will check them once posted.
fn ready_tasks(file: &Path, budget: Option<U256>) -> Result<Vec<Ready>, CliError> {
    let tasks = crate::manifest::load_tasks(file, crate::manifest::Destination::Chain)
        .map_err(|e| CliError::new(e.to_string()))?;
    tasks
        .into_iter()
        .map(|task| {
            let name = task.metadata.name.clone().unwrap_or_default();
            let at = |m: String| CliError::new(format!("{}, task {name}: {m}", file.display()));
            let mut spec = task.spec;
            if spec.chain_task_id.is_some() {
                return Err(at(
                    "spec.chainTaskId: a task to submit is not on chain yet; remove it".into()
                ));
            }
            let budget = match (budget, &spec.payment) {
                (Some(b), _) => b,
                (None, Some(p)) => {
                    U256::from(parse_wei(&p.amount_wei).map_err(|m| at(format!("spec.payment.amountWei: {m}")))?)
                }
                (None, None) => return Err(at("no budget: pass --budget ETH or set spec.payment.amountWei".into())),
            };
            if budget.is_zero() {
                return Err(at("the budget must be more than 0".into()));
            }
            // Checked as a paid task: the escrow pays against its target.
            spec.payment = Some(Payment {
                amount_wei: budget.to_string(),
                wallet_secret_ref: spec.payment.map_or_else(
                    || SecretKeyRef {
                        name: "command-line".into(),
                        key: "privateKey".into(),
                    },
                    |p| p.wallet_secret_ref,
                ),
            });
            validate_task(&spec).map_err(|e| at(e.to_string()))?;
            if let Some(low) = target_at_random(&spec) {
                eprintln!("warning: {}, task {name}: {low}", file.display());
            }
            Ok(Ready { name, spec, budget })
        })
        .collect()
}

async fn submit(network: &NetworkArgs, args: SubmitArgs) -> Result<(), CliError> {
    let budget = args.budget.as_deref().map(|b| parse_eth("--budget", b)).transpose()?;
    let tasks = ready_tasks(&args.file, budget)?;
    let conn = Connection::open(network, |n| {
        connect::signer(&args.keys, n, Some(DEFAULT_REQUESTER)).map(Some)
    })
    .await?;
    let requester = conn.account();
    let store = conn.store()?;
    let total: U256 = tasks.iter().map(|t| t.budget).sum();
    let balance = conn.market.balance(requester).await.map_err(|e| conn.chain_error(e))?;
    if balance <= total {
        return Err(CliError::new(format!(
            "account {requester} holds {}, the {} {} plus gas",
            eth(balance),
            if tasks.len() == 1 {
                "task escrows"
            } else {
                "tasks escrow"
            },
            eth(total)
        )));
    }
    let mut posted = Vec::new();
    for task in tasks {
        let stored = store
            .put_bytes(TaskDocument::new(&task.spec, None).to_bytes().into())
            .await
            .map_err(|e| CliError::new(format!("cannot store the task document in {}: {e}", conn.network.store)))?;
        let spec_cid = stored.cid.to_string();
        let head = conn.market.block(None).await.map_err(|e| conn.chain_error(e))?;
        let new = chain_task(&task.spec, spec_cid.clone(), task.budget, head.timestamp);
        let balance = conn.market.balance(requester).await.map_err(|e| conn.chain_error(e))?;
        let (id, outcome) = conn
            .market
            .post_task(requester, &new)
            .await
            .map_err(|e| connect::funds_error(&conn, requester, balance, task.budget, "the task escrows", e))?;
        println!(
            "posted task {id} ({}: {}, target {}), {} in escrow",
            task.name,
            task.spec.training.environment.kind_name(),
            f64::from(new.target_milli) / 1000.0,
            eth(task.budget)
        );
        println!("  transaction {} (block {})", outcome.hash, outcome.block);
        println!("  document    {spec_cid}");
        posted.push(id);
    }
    if args.wait {
        for id in posted {
            wait(&conn, id).await?;
        }
    }
    Ok(())
}

/// Follows task `id` until it is settled, printing each change; fails unless it completed.
async fn wait(conn: &Connection, id: u64) -> Result<(), CliError> {
    let mut last_status = None;
    let mut last_steps = None;
    loop {
        let info = conn.market.task(id).await.map_err(|e| conn.chain_error(e))?;
        if last_status != Some(info.status) {
            let worker = (info.worker != Address::ZERO).then(|| format!(", worker {}", info.worker));
            println!(
                "task {id}: {}{} (attempt {})",
                info.status,
                worker.unwrap_or_default(),
                info.attempts
            );
            last_status = Some(info.status);
        }
        if let Some(p) = local_progress(&conn.data_dir, conn.network.deployment.chain_id, id)
            && let Some(point) = p.points.last()
            && last_steps != Some((p.attempt, point.env_steps))
        {
            println!("task {id}: {}", progress_line(&p));
            last_steps = Some((p.attempt, point.env_steps));
        }
        if info.status.is_final() {
            return match info.status {
                TaskStatus::Completed => {
                    let model = conn.market.task_result(id).await.map_err(|e| conn.chain_error(e))?;
                    println!(
                        "task {id} completed: model {}",
                        model.map(|(cid, _)| cid).unwrap_or_else(|| "-".into())
                    );
                    Ok(())
                }
                other => Err(CliError::new(format!(
                    "task {id} ended {other}: the escrow was refunded"
                ))),
            };
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

// ---------------------------------------------------------------------------------------- cancel

/// What `task cancel` did, as `-o json` prints it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Cancellation {
    pub task_id: u64,
    /// The status the task was taken back from: `Posted` or `Assigned`.
    pub from: TaskStatus,
    /// EIP-55 checksummed.
    pub requester: String,
    /// The released worker (only when the task was assigned).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub worker: Option<String>,
    /// Credited to the requester.
    pub refund: Amount,
    /// Credited to the worker (zero before assignment).
    pub fee: Amount,
    pub transaction: B256,
    pub block: u64,
    /// Wei paid for gas.
    pub gas: Amount,
}

/// Why `account` cannot take task `info` back at chain time `now`, with what to do instead; `None`
/// when it can (its requester, Posted, or Assigned up to the deadline).
pub fn cancel_refusal(info: &TaskInfo, account: Address, now: u64) -> Option<String> {
    let id = info.id;
    if info.requester != account {
        return Some(format!(
            "task {id} was posted by {}, not by {account}: only its requester can cancel it; sign with the requester's key (--key-file PATH or $DRLAAS_KEY; on a dev chain --account N)",
            info.requester
        ));
    }
    match info.status {
        TaskStatus::Posted => None,
        // The transaction lands in a later block, so at `now` == deadline it would be too late.
        TaskStatus::Assigned if now < info.deadline => None,
        TaskStatus::Assigned => Some(format!(
            "task {id} is past its deadline ({}) without a result from worker {}: it can no longer be withdrawn; once it is expired (the operator does that, or anyone through TMC's expire) the whole budget is refunded",
            render::utc(info.deadline),
            info.worker
        )),
        TaskStatus::Submitted => Some(format!(
            "task {id} cannot be cancelled: worker {} has submitted its result, which is public on chain, so the oracles' verification settles the task (a passing result is paid its price and the rest of the budget refunded; a failing one is refunded with the worker's stake slashed to you); follow it with `drlaas task status {id}`",
            info.worker
        )),
        settled => Some(format!(
            "task {id} is already settled ({settled}): there is nothing to cancel; `drlaas wallet show` lists what the marketplace owes you"
        )),
    }
}

async fn cancel(network: &NetworkArgs, args: CancelArgs) -> Result<(), CliError> {
    let conn = Connection::open(network, |n| {
        connect::signer(&args.keys, n, Some(DEFAULT_REQUESTER)).map(Some)
    })
    .await?;
    let (account, id) = (conn.account(), args.id);
    let chain = |e| conn.chain_error(e);
    let count = conn.market.task_count().await.map_err(chain)?;
    if id == 0 || id > count {
        return Err(CliError::new(format!(
            "there is no task {id} on chain ({})",
            match count {
                0 => "no task has been posted".to_string(),
                1 => "the only task id is 1".to_string(),
                n => format!("task ids are 1 to {n}"),
            }
        )));
    }
    if let Some(refusal) = refusal(&conn, id, account).await? {
        return Err(refusal);
    }
    let balance = conn.market.balance(account).await.map_err(chain)?;
    let outcome = match conn.market.withdraw_task(account, id).await {
        Ok(outcome) => outcome,
        // The task moved on between the check and the transaction (a worker was assigned or
        // submitted, the deadline passed): say why from where it is now.
        Err(e) if e.revert().is_some() => {
            return Err(refusal(&conn, id, account)
                .await?
                .unwrap_or_else(|| conn.chain_error(e)));
        }
        Err(ChainError::Rejected(m)) if m.to_lowercase().contains("insufficient funds") => {
            return Err(CliError::new(format!(
                "account {account} holds {}, not enough for the gas",
                eth(balance)
            )));
        }
        Err(e) => return Err(conn.chain_error(e)),
    };
    let done = cancellation(&conn, account, id, &outcome).await?;
    if args.output == Output::Json {
        print_json(&done);
        return Ok(());
    }
    let wei = |a: &Amount| eth(a.wei.parse().unwrap_or_default());
    match &done.worker {
        None => println!(
            "cancelled task {id} before any worker took it: {} (the whole budget) refunded to {account}",
            wei(&done.refund)
        ),
        Some(worker) => {
            let info = conn.market.task(id).await.map_err(chain)?;
            let share = fee_bps(&conn)
                .await
                .map(|bps| format!("{} % of ", f64::from(bps) / 100.0))
                .unwrap_or_default();
            println!(
                "withdrew task {id} from worker {worker}: {} refunded to {account}, {} fee to the worker ({share}its {} price, for the compute it started; no slash, no reputation change)",
                wei(&done.refund),
                wei(&done.fee),
                eth(info.price)
            );
        }
    }
    println!(
        "  transaction {} (block {}, gas {})",
        done.transaction,
        done.block,
        wei(&done.gas)
    );
    println!("the refund is a credit in TMC: take it out with `drlaas wallet withdraw`");
    Ok(())
}

/// Why `account` cannot take task `id` back now ([`cancel_refusal`] on the chain's current state).
async fn refusal(conn: &Connection, id: u64, account: Address) -> Result<Option<CliError>, CliError> {
    let info = conn.market.task(id).await.map_err(|e| conn.chain_error(e))?;
    let now = conn.chain_now().await?;
    Ok(cancel_refusal(&info, account, now).map(CliError::new))
}

/// TMC's withdrawal fee in basis points of the worker's price (`None` when it cannot be read).
async fn fee_bps(conn: &Connection) -> Option<u16> {
    TMC::new(conn.network.deployment.tmc, conn.market.provider().clone())
        .WITHDRAWAL_FEE_BPS()
        .call()
        .await
        .ok()
}

/// What the transaction `outcome` of `withdrawTask(id)` did, from the `TaskCancelled` or
/// `TaskWithdrawn` event in its receipt.
async fn cancellation(
    conn: &Connection,
    requester: Address,
    id: u64,
    outcome: &TxOutcome,
) -> Result<Cancellation, CliError> {
    let receipt = conn
        .market
        .provider()
        .get_transaction_receipt(outcome.hash)
        .await
        .map_err(|e| CliError::new(format!("cannot read the receipt of {}: {e}", outcome.hash)))?
        .ok_or_else(|| CliError::new(format!("no receipt for {}", outcome.hash)))?;
    let tmc = conn.network.deployment.tmc;
    let logs: Vec<_> = receipt.inner.logs().iter().filter(|l| l.address() == tmc).collect();
    let (from, worker, refund, fee) =
        if let Some(e) = logs.iter().find_map(|l| TMC::TaskWithdrawn::decode_log(&l.inner).ok()) {
            (TaskStatus::Assigned, Some(e.worker.to_string()), e.refund, e.fee)
        } else if let Some(e) = logs.iter().find_map(|l| TMC::TaskCancelled::decode_log(&l.inner).ok()) {
            (TaskStatus::Posted, None, e.refund, U256::ZERO)
        } else {
            return Err(CliError::new(format!(
                "transaction {} cancelled task {id} but its receipt has neither TaskCancelled nor TaskWithdrawn",
                outcome.hash
            )));
        };
    Ok(Cancellation {
        task_id: id,
        from,
        requester: requester.to_string(),
        worker,
        refund: refund.into(),
        fee: fee.into(),
        transaction: outcome.hash,
        block: outcome.block,
        gas: outcome.fee.into(),
    })
}

// ---------------------------------------------------------------------------------------- views

/// A task as the commands show it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskView {
    pub id: u64,
    pub kind: String,
    pub status: TaskStatus,
    pub requester: Address,
    pub worker: Option<Address>,
    pub budget_wei: String,
    pub price_wei: String,
    pub escrow_wei: String,
    pub attempts: u8,
    pub deadline: u64,
    pub target_mean_return: f64,
    pub spec_cid: Option<String>,
    pub environment: Option<String>,
    pub model_cid: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub progress: Option<ProgressView>,
}

/// What the trainer of a task's latest attempt on this machine reported.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ProgressView {
    pub attempt: u32,
    pub log: PathBuf,
    /// The trainer's progress lines (docs/architecture.md#the-trainer-contract).
    pub points: Vec<ProgressLine>,
}

/// One line about the latest progress point.
pub fn progress_line(p: &ProgressView) -> String {
    let Some(last) = p.points.last() else {
        return format!("attempt {}: started, no progress yet", p.attempt);
    };
    let mut line = format!("attempt {}: ", p.attempt);
    if last.updates > 0 {
        line.push_str(&format!(
            "update {}/{} ({:.0}%), ",
            last.update,
            last.updates,
            100.0 * last.update as f64 / last.updates as f64
        ));
    }
    line.push_str(&format!(
        "{} env steps, {} episodes",
        count(last.env_steps),
        count(last.episodes)
    ));
    if let Some(r) = last.mean_return {
        line.push_str(&format!(", mean return {r:.2}"));
    }
    line.push_str(&format!(
        ", {} sps, {}",
        count(last.sps as u64),
        render::duration(last.wall_seconds as u64)
    ));
    line
}

/// The learning curve: a sparkline of the mean return and its range.
pub fn curve_line(p: &ProgressView) -> Option<String> {
    let returns: Vec<f64> = p.points.iter().filter_map(|x| x.mean_return).collect();
    let (first, last) = (returns.first()?, returns.last()?);
    let min = returns.iter().copied().fold(f64::INFINITY, f64::min);
    let max = returns.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    Some(format!(
        "{}  {first:.1} → {last:.1} (min {min:.1}, max {max:.1})",
        sparkline(&render::downsample(&returns, SPARKLINE_WIDTH))
    ))
}

/// The trainer log of the latest attempt of chain task `id` kept by the local mode, in
/// `DATA_DIR/pods/<namespace>/<task>-train-<attempt>.log`. The task is the `DRLTask` bound to `id`
/// in the data directory's API server (one applied by `drlaas local run`), else the one the
/// operator mirrors from chain, named as [`mirror_name`] says.
pub fn local_progress(data_dir: &Path, chain_id: u64, id: u64) -> Option<ProgressView> {
    let bound = ApiServer::read(&data_dir.join("api.jsonl")).ok().and_then(|api| {
        api.all("drltasks")
            .into_iter()
            .find(|t| t["status"]["chainTaskId"].as_u64() == Some(id))
            .and_then(|t| t["metadata"]["name"].as_str().map(str::to_string))
    });
    let task = bound.unwrap_or_else(|| mirror_name(chain_id, id));
    let prefix = format!("{task}-train-");
    let mut latest: Option<(u32, PathBuf)> = None;
    for namespace in std::fs::read_dir(data_dir.join("pods")).ok()?.flatten() {
        let Ok(files) = std::fs::read_dir(namespace.path()) else {
            continue;
        };
        for file in files.flatten() {
            let name = file.file_name().to_string_lossy().into_owned();
            let attempt = name
                .strip_prefix(&prefix)
                .and_then(|rest| rest.strip_suffix(".log"))
                .and_then(|n| n.parse::<u32>().ok());
            if let Some(attempt) = attempt
                && latest.as_ref().is_none_or(|(a, _)| attempt > *a)
            {
                latest = Some((attempt, file.path()));
            }
        }
    }
    let (attempt, log) = latest?;
    let text = std::fs::read_to_string(&log).ok()?;
    Some(ProgressView {
        attempt,
        points: ProgressLine::all_in(&text).collect(),
        log,
    })
}

/// Everything about task `id`: the chain record, its document's environment (when the store has
/// it), its submitted model and, with `progress`, what this machine's trainer reported.
async fn view(conn: &Connection, store: Option<&Store>, id: u64, progress: bool) -> Result<TaskView, CliError> {
    let chain = |e| conn.chain_error(e);
    let info: TaskInfo = conn.market.task(id).await.map_err(chain)?;
    let spec_cid = conn.market.task_spec_cid(id).await.ok();
    let model_cid = conn.market.task_result(id).await.map_err(chain)?.map(|(cid, _)| cid);
    let escrow = conn.market.escrow(id).await.map_err(chain)?;
    let mut environment = None;
    if let (Some(store), Some(cid)) = (store, spec_cid.as_deref())
        && let Ok(cid) = drlaas_store::cid::parse(cid)
        && let Ok(Ok(bytes)) = tokio::time::timeout(Duration::from_secs(5), store.get_bytes(&cid)).await
        && let Ok(text) = std::str::from_utf8(&bytes)
        && let Ok(document) = TaskDocument::parse(text)
    {
        environment = Some(document.spec.training.environment.kind_name().to_string());
    }
    Ok(TaskView {
        id,
        kind: format!("{:?}", info.kind),
        status: info.status,
        requester: info.requester,
        worker: (info.worker != Address::ZERO).then_some(info.worker),
        budget_wei: info.budget.to_string(),
        price_wei: info.price.to_string(),
        escrow_wei: escrow.to_string(),
        attempts: info.attempts,
        deadline: info.deadline,
        target_mean_return: info.target(),
        spec_cid,
        environment,
        model_cid,
        progress: progress
            .then(|| local_progress(&conn.data_dir, conn.network.deployment.chain_id, id))
            .flatten(),
    })
}

async fn list(network: &NetworkArgs, output: Output) -> Result<(), CliError> {
    let conn = Connection::open(network, |_| Ok(None)).await?;
    let store = conn.store().ok();
    let n = conn.market.task_count().await.map_err(|e| conn.chain_error(e))?;
    let views: Vec<Result<TaskView, CliError>> = futures::stream::iter(1..=n)
        .map(|id| view(&conn, store.as_ref(), id, false))
        .buffered(8)
        .collect()
        .await;
    let views = views.into_iter().collect::<Result<Vec<_>, _>>()?;
    if output == Output::Json {
        print_json(&views);
        return Ok(());
    }
    if views.is_empty() {
        println!("no tasks on chain");
        return Ok(());
    }
    let mut table = Table::new(&["ID", "KIND", "ENVIRONMENT", "STATUS", "WORKER", "BUDGET", "MODEL"]);
    for v in &views {
        table.row(vec![
            v.id.to_string(),
            v.kind.clone(),
            v.environment.clone().unwrap_or_else(|| "?".into()),
            v.status.to_string(),
            v.worker.map_or_else(|| "-".into(), short_address),
            eth(v.budget_wei.parse().unwrap_or_default()),
            v.model_cid.clone().unwrap_or_else(|| "-".into()),
        ]);
    }
    print!("{}", table.render());
    Ok(())
}

async fn status(network: &NetworkArgs, id: u64, output: Output) -> Result<(), CliError> {
    let conn = Connection::open(network, |_| Ok(None)).await?;
    let store = conn.store().ok();
    let v = view(&conn, store.as_ref(), id, true).await?;
    if output == Output::Json {
        print_json(&v);
        return Ok(());
    }
    let (_, max_attempts) = conn.market.task_limits().await.map_err(|e| conn.chain_error(e))?;
    let now = conn.chain_now().await?;
    let wei = |text: &str| eth(text.parse().unwrap_or_default());
    let mut fields: BTreeMap<usize, (&str, String)> = BTreeMap::new();
    let mut add = |label: &'static str, value: String| {
        let next = fields.len();
        fields.insert(next, (label, value));
    };
    add("Task", format!("{} ({})", v.id, v.kind));
    add("Status", v.status.to_string());
    add("Environment", v.environment.clone().unwrap_or_else(|| "?".into()));
    add("Target", format!("mean return ≥ {}", v.target_mean_return));
    add("Requester", v.requester.to_string());
    add("Worker", v.worker.map_or_else(|| "-".into(), |w| w.to_string()));
    add("Budget", wei(&v.budget_wei));
    add("Escrow", wei(&v.escrow_wei));
    if v.worker.is_some() {
        add("Price", wei(&v.price_wei));
    }
    add("Attempts", format!("{} of {max_attempts}", v.attempts));
    add(
        "Deadline",
        format!("{} ({})", v.deadline, render::deadline(v.deadline, now)),
    );
    add("Document", v.spec_cid.clone().unwrap_or_else(|| "-".into()));
    add("Model", v.model_cid.clone().unwrap_or_else(|| "-".into()));
    if let Some(p) = &v.progress {
        add("Progress", progress_line(p));
        if let Some(curve) = curve_line(p) {
            add("Return", curve);
        }
    }
    let width = fields.values().map(|(l, _)| l.len()).max().unwrap_or(0);
    for (label, value) in fields.values() {
        println!("{:width$}  {value}", format!("{label}:"), width = width + 1);
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------- models

/// The content store for a model argument, and the model's CID: a CID needs only a store (from
/// --store or the data directory); a task id is looked up on chain.
async fn model_of(network: &NetworkArgs, arg: &str) -> Result<(Store, String, String), CliError> {
    if let Ok(id) = arg.parse::<u64>() {
        let conn = Connection::open(network, |_| Ok(None)).await?;
        let info = conn.market.task(id).await.map_err(|e| conn.chain_error(e))?;
        let cid = conn
            .market
            .task_result(id)
            .await
            .map_err(|e| conn.chain_error(e))?
            .map(|(cid, _)| cid)
            .ok_or_else(|| CliError::new(format!("task {id} has no model yet (status {})", info.status)))?;
        return Ok((conn.store()?, conn.network.store.clone(), cid));
    }
    drlaas_store::cid::parse(arg)
        .map_err(|e| CliError::new(format!("{arg:?} is neither a task id nor a model CID: {e}")))?;
    let (store, address) = connect::open_store(network, None)?;
    Ok((store, address, arg.trim().to_string()))
}

async fn fetch_model(network: &NetworkArgs, arg: &str, out: &Path) -> Result<(), CliError> {
    let (store, address, cid_text) = model_of(network, arg).await?;
    let cid = drlaas_store::cid::parse(&cid_text).map_err(|e| CliError::new(e.to_string()))?;
    let size = store.get_to_file(&cid, out).await.map_err(|e| {
        CliError::new(format!(
            "cannot fetch {cid_text} from the content store at {address}: {e}"
        ))
    })?;
    println!(
        "wrote {} ({} bytes), verified against {cid_text}",
        out.display(),
        count(size)
    );
    Ok(())
}

async fn evaluate(network: &NetworkArgs, arg: &str, episodes: u32, seed: u64, output: Output) -> Result<(), CliError> {
    let (_, address, cid) = model_of(network, arg).await?;
    let trainer = drlaas_local::local_pod::locate_trainer().ok_or_else(|| {
        CliError::new(
            "the trainer binary drlaas-trainer was not found beside drlaas: set DRLAAS_TRAINER_BIN to its path",
        )
    })?;
    let mut command = std::process::Command::new(&trainer);
    command.args(["evaluate", "--model", &cid, "--store", &address]).args([
        "--episodes",
        &episodes.to_string(),
        "--seed",
        &seed.to_string(),
    ]);
    let out = tokio::task::spawn_blocking(move || command.output())
        .await
        .map_err(|e| CliError::new(format!("the evaluation stopped: {e}")))?
        .map_err(|e| CliError::new(format!("cannot run {}: {e}", trainer.display())))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let last = stdout.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or_default();
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        let reason = stderr.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or(last);
        return Err(CliError::new(format!(
            "the evaluation of {cid} failed ({}): {reason}",
            out.status
        )));
    }
    let json: serde_json::Value = serde_json::from_str(last)
        .map_err(|e| CliError::new(format!("the trainer printed no evaluation JSON: {e}")))?;
    if output == Output::Json {
        print_json(&json);
        return Ok(());
    }
    let report: EvaluationReport =
        serde_json::from_value(json).map_err(|e| CliError::new(format!("the trainer's evaluation JSON: {e}")))?;
    let kind = report.environment.as_ref().map_or("its environment", |e| e.kind_name());
    let e = &report.evaluation;
    println!(
        "mean return {:.2} ± {:.2} over {} episodes of {kind} (seed {}), model {cid}",
        e.mean_return, e.std_return, e.episodes, e.seed
    );
    if let Some(random) = report.random_mean_return {
        println!("random actions on the same episodes: {random:.2}");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A trainer's log: three progress lines and one of something else.
    fn log() -> String {
        let line = |update, env_steps, episodes, mean_return, sps, wall_seconds| {
            ProgressLine {
                update,
                updates: 4,
                env_steps,
                episodes,
                mean_return,
                sps,
                wall_seconds,
                stats: Default::default(),
            }
            .to_json_line()
        };
        [
            line(1, 160, 3, None, 900.0, 0.2),
            "not a progress line".into(),
            line(2, 320, 9, Some(12.5), 1000.0, 0.3),
            line(4, 640, 20, Some(30.0), 1250.5, 0.5),
        ]
        .join("\n")
    }

    #[test]
    fn progress_is_read_from_the_trainers_log() {
        let points: Vec<ProgressLine> = ProgressLine::all_in(&log()).collect();
        assert_eq!(points.len(), 3);
        assert_eq!(points[2].env_steps, 640);
        assert_eq!(points[0].mean_return, None);
        let p = ProgressView {
            attempt: 2,
            log: PathBuf::from("x.log"),
            points,
        };
        assert_eq!(
            progress_line(&p),
            "attempt 2: update 4/4 (100%), 640 env steps, 20 episodes, mean return 30.00, 1,250 sps, 0s"
        );
        assert_eq!(curve_line(&p).unwrap(), "▁█  12.5 → 30.0 (min 12.5, max 30.0)");
    }

    #[test]
    fn a_task_is_taken_back_only_by_its_requester_before_its_result_and_deadline() {
        let (requester, worker) = (Address::repeat_byte(5), Address::repeat_byte(6));
        let info = |status| TaskInfo {
            id: 7,
            requester,
            budget: U256::from(100u8),
            price: U256::from(30u8),
            worker,
            deadline: 1_000,
            status,
            kind: drlaas_chain::TaskKind::Training,
            attempts: 1,
            target_milli: 0,
            submitted_block: None,
            votes: Default::default(),
        };
        assert_eq!(cancel_refusal(&info(TaskStatus::Posted), requester, 5_000), None);
        assert_eq!(cancel_refusal(&info(TaskStatus::Assigned), requester, 999), None);
        // At the deadline the transaction would land in a later block, past it.
        let late = cancel_refusal(&info(TaskStatus::Assigned), requester, 1_000).unwrap();
        assert!(late.starts_with("task 7 is past its deadline"), "{late}");
        let other = cancel_refusal(&info(TaskStatus::Posted), worker, 0).unwrap();
        assert!(other.contains("only its requester can cancel it"), "{other}");
        let submitted = cancel_refusal(&info(TaskStatus::Submitted), requester, 0).unwrap();
        assert!(submitted.contains("verification settles the task"), "{submitted}");
        for settled in [
            TaskStatus::Completed,
            TaskStatus::Failed,
            TaskStatus::Cancelled,
            TaskStatus::Expired,
        ] {
            let text = cancel_refusal(&info(settled), requester, 0).unwrap();
            assert_eq!(
                text,
                format!(
                    "task 7 is already settled ({settled}): there is nothing to cancel; `drlaas wallet show` lists what the marketplace owes you"
                )
            );
        }
    }

    #[test]
    fn the_latest_attempt_of_the_mirrored_task_is_found() {
        let dir = tempfile::tempdir().unwrap();
        let ns = dir.path().join("pods/drlaas-system");
        std::fs::create_dir_all(&ns).unwrap();
        std::fs::write(ns.join("chain-31337-4-train-1.log"), log()).unwrap();
        std::fs::write(ns.join("chain-31337-4-train-2.log"), log().lines().next().unwrap()).unwrap();
        std::fs::write(ns.join("chain-31337-41-train-3.log"), log()).unwrap();
        let p = local_progress(dir.path(), 31337, 4).unwrap();
        assert_eq!((p.attempt, p.points.len()), (2, 1));
        assert!(local_progress(dir.path(), 31337, 5).is_none());
        assert!(local_progress(&dir.path().join("nowhere"), 31337, 4).is_none());
    }
}
