//! What a local run shows: a progress bar per task while it runs (or a line per change when not
//! on a terminal), then a table of outcomes read back from the chain: the worker, the evaluated
//! return, the model's CID, the payment, the worker's reputation before and after, the time from
//! submission to settlement and the transactions. The same rows go to `report.json`, and each
//! task's learning curve to `curves/NAMESPACE-NAME.png`, in the data directory.

use std::collections::BTreeMap;
use std::path::Path;

use drlaas_chain::alloy::primitives::{Address, B256, U256, keccak256};
use drlaas_chain::alloy::providers::Provider;
use drlaas_chain::bindings::{TMC, UMC};
use drlaas_chain::{Market, NewListing};
use drlaas_crds::task::{DRLTask, DRLTaskStatus, TaskPhase};
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::Serialize;

use super::curve::{Curve, render_png};

/// One settled (or still running) task, as the table shows it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Row {
    /// `namespace/name`.
    pub task: String,
    pub chain_task_id: Option<u64>,
    /// Phase, or outcome once settled.
    pub outcome: String,
    pub worker: Option<String>,
    pub target: Option<f64>,
    /// The operator's evaluation of the model.
    pub mean_return: Option<f64>,
    pub model_cid: Option<String>,
    /// Paid to the worker, in wei.
    pub paid_wei: Option<String>,
    /// Refunded to the requester, in wei.
    pub refund_wei: Option<String>,
    /// The settled worker's reputation before and after settlement.
    pub reputation: Option<(f64, f64)>,
    /// The model it started from, when warm-started.
    pub warm_start: Option<String>,
    /// From the task's submission to its settlement.
    pub seconds_to_settle: Option<i64>,
    /// Transaction hashes by action.
    pub transactions: BTreeMap<String, String>,
}

/// What the settlement transaction did, read from its receipt.
#[derive(Debug, Default)]
struct Settlement {
    paid: Option<U256>,
    refund: Option<U256>,
    reputation: Option<(f64, f64)>,
}

async fn settlement(market: &Market, tx: &str) -> Settlement {
    let mut out = Settlement::default();
    let Ok(hash) = tx.parse::<B256>() else { return out };
    let Ok(Some(receipt)) = market.provider().get_transaction_receipt(hash).await else {
        return out;
    };
    for log in receipt.inner.logs() {
        if let Ok(e) = log.log_decode::<TMC::TaskCompleted>() {
            out.paid = Some(e.inner.data.payment);
            out.refund = Some(e.inner.data.refund);
        } else if let Ok(e) = log.log_decode::<TMC::TaskExpired>() {
            out.refund = Some(e.inner.data.refund);
        } else if let Ok(e) = log.log_decode::<TMC::TaskCancelled>() {
            out.refund = Some(e.inner.data.refund);
        } else if let Ok(e) = log.log_decode::<TMC::TaskWithdrawn>() {
            // Withdrawn after assignment: the worker keeps its fee, the rest comes back.
            out.refund = Some(e.inner.data.refund);
        } else if let Ok(e) = log.log_decode::<UMC::ReputationChanged>() {
            let scale = f64::from(drlaas_chain::Reputation::ONE);
            out.reputation = Some((
                f64::from(e.inner.data.previous) / scale,
                f64::from(e.inner.data.current) / scale,
            ));
        }
    }
    out
}

/// The last settlement transaction of a task (`complete`, `fail`, `expire` or `cancel`).
fn settling_tx(status: &DRLTaskStatus) -> Option<&String> {
    ["complete", "expire", "cancel", "fail"]
        .iter()
        .find_map(|action| status.transactions.get(*action))
}

/// The rows of `tasks`, completed from the chain.
pub async fn rows(market: &Market, tasks: &[DRLTask]) -> Vec<Row> {
    let mut rows = Vec::new();
    for task in tasks {
        let status = task.status.clone().unwrap_or_default();
        let settled = status.phase == Some(TaskPhase::Settled);
        let found = match settling_tx(&status) {
            Some(tx) if settled => settlement(market, tx).await,
            _ => Settlement::default(),
        };
        let outcome = match (status.outcome, status.phase) {
            (Some(o), _) => format!("{o:?}"),
            (None, Some(p)) => format!("{p:?}"),
            (None, None) => "Pending".into(),
        };
        rows.push(Row {
            task: format!(
                "{}/{}",
                task.metadata.namespace.as_deref().unwrap_or("default"),
                task.metadata.name.as_deref().unwrap_or_default()
            ),
            chain_task_id: status.chain_task_id,
            outcome,
            worker: status.worker.clone(),
            target: task.spec.training.target_mean_return,
            mean_return: status.evaluation.as_ref().map(|e| e.mean_return),
            model_cid: status.model_cid.clone(),
            paid_wei: found.paid.map(|w| w.to_string()),
            refund_wei: found.refund.map(|w| w.to_string()),
            reputation: found.reputation,
            warm_start: status.warm_start.as_ref().and_then(|w| w.model_cid.clone()),
            seconds_to_settle: seconds_to_settle(task),
            transactions: status.transactions.clone(),
        });
    }
    rows
}

fn seconds_to_settle(task: &DRLTask) -> Option<i64> {
    let created = task.metadata.creation_timestamp.as_ref()?.0;
    let settled = task
        .status
        .as_ref()?
        .conditions
        .iter()
        .find(|c| c.type_ == "Settled" && c.status == "True")?
        .last_transition_time
        .0;
    Some(settled.as_second() - created.as_second())
}

/// Ether with up to four decimals (`0.1`, `0.0125`).
pub fn ether(wei: &str) -> String {
    let Ok(wei) = wei.parse::<u128>() else {
        return wei.to_string();
    };
    let whole = wei / 1_000_000_000_000_000_000;
    let frac = (wei % 1_000_000_000_000_000_000) / 100_000_000_000_000;
    let frac = format!("{frac:04}");
    let frac = frac.trim_end_matches('0');
    if frac.is_empty() {
        whole.to_string()
    } else {
        format!("{whole}.{frac}")
    }
}

fn short(text: &str, keep: usize) -> String {
    if text.len() <= 2 * keep + 1 {
        text.to_string()
    } else {
        format!("{}…{}", &text[..keep], &text[text.len() - keep..])
    }
}

/// The outcome table, as printed at the end of a run.
pub fn table(rows: &[Row]) -> String {
    let header = [
        "TASK",
        "ID",
        "OUTCOME",
        "WORKER",
        "RETURN",
        "TARGET",
        "MODEL CID",
        "PAID ETH",
        "REPUTATION",
        "SETTLED IN",
        "TRANSACTIONS",
    ];
    let mut lines: Vec<Vec<String>> = vec![header.iter().map(|h| h.to_string()).collect()];
    for row in rows {
        let txs: Vec<String> = row
            .transactions
            .iter()
            .map(|(action, hash)| format!("{action} {}", short(hash, 6)))
            .collect();
        lines.push(vec![
            row.task.clone(),
            row.chain_task_id.map_or("-".into(), |id| id.to_string()),
            row.outcome.clone(),
            row.worker.clone().unwrap_or_else(|| "-".into()),
            row.mean_return.map_or("-".into(), |r| format!("{r:.1}")),
            row.target.map_or("-".into(), |t| format!("{t:.1}")),
            row.model_cid.as_deref().map_or("-".into(), |c| short(c, 8)),
            match (&row.paid_wei, &row.refund_wei) {
                (Some(paid), _) => ether(paid),
                (None, Some(refund)) => format!("0 (refund {})", ether(refund)),
                _ => "-".into(),
            },
            row.reputation
                .map_or("-".into(), |(before, after)| format!("{before:.3} → {after:.3}")),
            row.seconds_to_settle.map_or("-".into(), |s| format!("{s} s")),
            if txs.is_empty() { "-".into() } else { txs.join(", ") },
        ]);
    }
    let widths: Vec<usize> = (0..header.len())
        .map(|c| lines.iter().map(|l| l[c].chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for line in lines {
        let cells: Vec<String> = line
            .iter()
            .zip(&widths)
            .map(|(cell, width)| format!("{cell}{}", " ".repeat(width - cell.chars().count())))
            .collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    out
}

/// Writes `report.json` in the data directory.
pub fn write_json(data_dir: &Path, rows: &[Row]) {
    let path = data_dir.join("report.json");
    if let Err(e) = std::fs::write(&path, serde_json::to_vec_pretty(rows).expect("rows serialize")) {
        tracing::warn!(path = %path.display(), error = %e, "could not write the report");
    }
}

/// `(env steps, mean return)` of each progress line of a pod's log.
pub fn progress_points(log: &str) -> Vec<(f64, f64)> {
    log.lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter_map(|v| Some((v["envSteps"].as_f64()?, v["meanReturn"].as_f64()?)))
        .collect()
}

/// The trainer logs of `task`'s attempts, in order.
fn trainer_logs(data_dir: &Path, task: &DRLTask) -> Vec<String> {
    let namespace = task.metadata.namespace.as_deref().unwrap_or("default");
    let attempts = task.status.as_ref().map_or(1, |s| s.attempts.max(1));
    (1..=attempts)
        .filter_map(|n| {
            let mut copy = task.clone();
            copy.metadata.namespace = Some(namespace.into());
            let pod = crate::pods::trainer_pod_name(&copy, n);
            std::fs::read_to_string(data_dir.join("pods").join(namespace).join(format!("{pod}.log"))).ok()
        })
        .collect()
}

/// Writes each task's learning curve (its last attempt) to `curves/NAMESPACE-NAME.png`.
pub fn write_curves(data_dir: &Path, tasks: &[DRLTask]) {
    let dir = data_dir.join("curves");
    if std::fs::create_dir_all(&dir).is_err() {
        return;
    }
    for task in tasks {
        let points = trainer_logs(data_dir, task)
            .last()
            .map(|log| progress_points(log))
            .unwrap_or_default();
        let namespace = task.metadata.namespace.as_deref().unwrap_or("default");
        let name = task.metadata.name.as_deref().unwrap_or_default();
        let title = format!("{namespace}/{name}: {}", task.spec.training.environment.kind_name());
        let png = render_png(
            &Curve {
                title: &title,
                points: &points,
                target: task.spec.training.target_mean_return,
                x_label: "env steps",
                y_label: "mean return",
            },
            800,
            480,
        );
        let path = dir.join(format!("{namespace}-{name}.png"));
        if let Err(e) = std::fs::write(&path, png) {
            tracing::warn!(path = %path.display(), error = %e, "could not write a learning curve");
        }
    }
}

/// Lists `cid` on the model market for `owner` at `price` wei, unless that owner already listed
/// it. The listing names the environment it was trained on and, when warm-started from a listing,
/// that parent (which then earns its royalty on sales).
pub async fn list_model(
    market: &Market,
    task: &DRLTask,
    owner: Address,
    cid: &str,
    price: &str,
    status: &DRLTaskStatus,
) -> Result<(), String> {
    let count = market.listing_count().await.map_err(|e| e.to_string())?;
    for id in (1..=count).rev() {
        let listing = market.listing(id).await.map_err(|e| e.to_string())?;
        if listing.owner == owner && listing.model_cid == cid {
            return Ok(());
        }
    }
    let environment = &task.spec.training.environment;
    let kind = environment.kind_name().parse().map_err(|e: String| e)?;
    let listing = NewListing {
        model_cid: cid.to_string(),
        env_kind: kind,
        env_descriptor_hash: keccak256(serde_json::to_vec(environment).map_err(|e| e.to_string())?),
        price: price.parse().map_err(|e| format!("sellModelsWei {price:?}: {e}"))?,
        parent: status.warm_start.as_ref().and_then(|w| w.listing_id),
        royalty_bps: 1_000,
    };
    market.list_model(owner, &listing).await.map_err(|e| e.to_string())?;
    Ok(())
}

/// The live view of a run.
pub struct Display {
    plain: bool,
    bars: MultiProgress,
    by_task: BTreeMap<String, ProgressBar>,
    last_line: BTreeMap<String, String>,
}

impl std::fmt::Debug for Display {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Display")
            .field("plain", &self.plain)
            .finish_non_exhaustive()
    }
}

impl Display {
    /// Progress bars on a terminal, else (or with `plain`) a line per change.
    pub fn new(plain: bool) -> Self {
        let plain = plain || !std::io::IsTerminal::is_terminal(&std::io::stderr());
        let bars = MultiProgress::with_draw_target(if plain {
            ProgressDrawTarget::hidden()
        } else {
            ProgressDrawTarget::stderr()
        });
        Display {
            plain,
            bars,
            by_task: BTreeMap::new(),
            last_line: BTreeMap::new(),
        }
    }

    /// Shows where each task is.
    pub fn update(&mut self, tasks: &[DRLTask]) {
        for task in tasks {
            let key = format!(
                "{}/{}",
                task.metadata.namespace.as_deref().unwrap_or("default"),
                task.metadata.name.as_deref().unwrap_or_default()
            );
            let line = describe(task);
            if self.plain {
                if self.last_line.get(&key) != Some(&line) {
                    eprintln!("{key}: {line}");
                    self.last_line.insert(key, line);
                }
                continue;
            }
            let bar = self.by_task.entry(key.clone()).or_insert_with(|| {
                let bar = self.bars.add(ProgressBar::new(1));
                bar.set_style(
                    ProgressStyle::with_template("{prefix:<22} [{bar:30}] {percent:>3}% {msg}")
                        .expect("a valid template")
                        .progress_chars("=> "),
                );
                bar.set_prefix(key.clone());
                bar
            });
            let status = task.status.clone().unwrap_or_default();
            match (&status.progress, status.phase) {
                (_, Some(TaskPhase::Settled)) => {
                    bar.set_length(1);
                    bar.set_position(1);
                }
                (Some(p), _) if p.total_env_steps > 0 => {
                    bar.set_length(p.total_env_steps);
                    bar.set_position(p.env_steps.min(p.total_env_steps));
                }
                _ => bar.set_position(0),
            }
            bar.set_message(line);
        }
    }

    /// Leaves the bars as they are.
    pub fn finish(&mut self) {
        for bar in self.by_task.values() {
            bar.abandon();
        }
        if !self.by_task.is_empty() {
            eprintln!();
        }
    }
}

/// One line on a task: its phase, worker, progress or outcome.
fn describe(task: &DRLTask) -> String {
    let status = task.status.clone().unwrap_or_default();
    let phase = status.phase.map_or("Pending".to_string(), |p| format!("{p:?}"));
    let mut parts = vec![match status.outcome {
        Some(outcome) => format!("{phase} ({outcome:?})"),
        None => phase,
    }];
    if let Some(worker) = &status.worker {
        parts.push(format!("worker {worker}"));
    }
    if status.attempts > 1 {
        parts.push(format!("attempt {}", status.attempts));
    }
    match (&status.evaluation, &status.progress, status.phase) {
        (Some(e), _, _) => parts.push(format!(
            "evaluated {:.1} ({})",
            e.mean_return,
            if e.passed { "passed" } else { "failed" }
        )),
        (None, Some(p), Some(TaskPhase::Training)) => {
            if let Some(r) = p.mean_return {
                parts.push(format!("return {r:.1}"));
            }
            parts.push(format!("{} steps", p.env_steps));
        }
        _ => {}
    }
    parts.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ether_is_short_and_exact_enough() {
        assert_eq!(ether("100000000000000000"), "0.1");
        assert_eq!(ether("1000000000000000000"), "1");
        assert_eq!(ether("12500000000000000"), "0.0125");
        assert_eq!(ether("0"), "0");
    }

    #[test]
    fn progress_points_come_from_json_lines_only() {
        let log = "starting\n{\"envSteps\": 2048, \"meanReturn\": 21.5}\n{\"envSteps\": 4096}\n{\"envSteps\": 6144, \"meanReturn\": 80.0}\n";
        assert_eq!(progress_points(log), vec![(2048.0, 21.5), (6144.0, 80.0)]);
    }

    #[test]
    fn the_table_aligns_its_columns() {
        let row = Row {
            task: "default/pole".into(),
            chain_task_id: Some(1),
            outcome: "Paid".into(),
            worker: Some("lab-a".into()),
            target: Some(150.0),
            mean_return: Some(200.0),
            model_cid: Some("bafkreiabcdefghijklmnopqrstuvwxyz".into()),
            paid_wei: Some("100000000000000000".into()),
            refund_wei: None,
            reputation: Some((0.5, 0.55)),
            warm_start: None,
            seconds_to_settle: Some(12),
            transactions: BTreeMap::from([("post".into(), format!("0x{}", "ab".repeat(32)))]),
        };
        let table = table(&[row]);
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0].find("WORKER"), lines[1].find("lab-a"));
        assert!(lines[1].contains("0.500 → 0.550") && lines[1].contains("12 s") && lines[1].contains("0.1"));
    }
}
