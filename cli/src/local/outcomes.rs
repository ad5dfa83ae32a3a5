//! The outcome of a local run, read back from the chain once every task is settled: per task the
//! worker, the evaluated return, the model's CID, the payment or refund, the worker's reputation
//! before and after, the time to settlement and the transactions. [`table`] draws it at the end of
//! `drlaas local run`; [`write_json`] keeps the same rows in the data directory's `report.json`.

use std::collections::BTreeMap;
use std::path::Path;

use drlaas_chain::Market;
use drlaas_chain::alloy::primitives::{B256, U256};
use drlaas_chain::alloy::providers::Provider;
use drlaas_chain::alloy::rpc::types::{Filter, Log};
use drlaas_chain::alloy::sol_types::SolEvent;
use drlaas_chain::bindings::{TMC, UMC};
use drlaas_crds::task::{DRLTask, DRLTaskStatus, TaskPhase};
use drlaas_crds::transactions::TxAction;
use serde::{Deserialize, Serialize};

/// One settled (or still running) task, as the table shows it and `report.json` holds it (the
/// demo bench reads it back).
#[derive(Debug, Clone, Serialize, Deserialize)]
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
    /// What random actions scored in that evaluation (the baseline).
    #[serde(default)]
    pub random_mean_return: Option<f64>,
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

/// What settlement transaction `tx` of chain task `id`, whose escrow was `budget`, did, from its
/// receipt. In a consortium the operator's own transaction may have been a vote that another
/// oracle's vote carried out: then the transaction that did is found by the task's settlement event.
async fn settlement(market: &Market, tx: &str, id: Option<u64>, budget: Option<U256>) -> Settlement {
    let from_receipt = |hash: B256| async move {
        match market.provider().get_transaction_receipt(hash).await {
            Ok(Some(receipt)) => Some(read_settlement(receipt.inner.logs(), budget)),
            _ => None,
        }
    };
    let own = match tx.parse::<B256>() {
        Ok(hash) => from_receipt(hash).await.unwrap_or_default(),
        Err(_) => Settlement::default(),
    };
    if own.paid.is_some() || own.refund.is_some() {
        return own;
    }
    let Some(id) = id else { return own };
    let filter = Filter::new()
        .address(market.deployment().tmc)
        .event_signature(vec![
            TMC::TaskCompleted::SIGNATURE_HASH,
            TMC::TaskFailed::SIGNATURE_HASH,
            TMC::TaskExpired::SIGNATURE_HASH,
        ])
        .topic1(U256::from(id))
        .from_block(market.deployment().block);
    let carried_out = match market.provider().get_logs(&filter).await {
        Ok(logs) => logs.last().and_then(|l| l.transaction_hash),
        Err(_) => None,
    };
    match carried_out {
        Some(hash) => from_receipt(hash).await.unwrap_or(own),
        None => own,
    }
}

/// What a settlement transaction's logs say, for a task whose escrow was `budget`.
fn read_settlement(logs: &[Log], budget: Option<U256>) -> Settlement {
    let mut out = Settlement::default();
    for log in logs {
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
        } else if let Ok(e) = log.log_decode::<TMC::TaskFailed>() {
            // The last attempt failed and the task was not reopened: the whole escrow comes back
            // (the event does not repeat it).
            if !e.inner.data.reopened {
                out.refund = budget;
            }
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

/// The transaction that settled a settled task (see [`TxAction::final_settlement`]).
fn settling_tx(status: &DRLTaskStatus) -> Option<&str> {
    if status.phase != Some(TaskPhase::Settled) {
        return None;
    }
    TxAction::final_settlement(&status.transactions).map(|(_, hash)| hash)
}

/// The rows of `tasks`, completed from the chain.
pub async fn rows(market: &Market, tasks: &[DRLTask]) -> Vec<Row> {
    let mut rows = Vec::new();
    for task in tasks {
        let status = task.status.clone().unwrap_or_default();
        let budget = status.budget_wei.as_deref().and_then(|w| w.parse().ok());
        let found = match settling_tx(&status) {
            Some(tx) => settlement(market, tx, status.chain_task_id, budget).await,
            None => Settlement::default(),
        };
        rows.push(row(task, found));
    }
    rows
}

/// The row of `task`, whose settlement transaction did what `found` says.
fn row(task: &DRLTask, found: Settlement) -> Row {
    let status = task.status.clone().unwrap_or_default();
    let outcome = match (status.outcome, status.phase) {
        (Some(o), _) => format!("{o:?}"),
        (None, Some(p)) => format!("{p:?}"),
        (None, None) => "Pending".into(),
    };
    Row {
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
        random_mean_return: status.evaluation.as_ref().and_then(|e| e.random_mean_return),
        model_cid: status.model_cid.clone(),
        paid_wei: found.paid.map(|w| w.to_string()),
        refund_wei: found.refund.map(|w| w.to_string()),
        reputation: found.reputation,
        warm_start: status.warm_start.as_ref().and_then(|w| w.model_cid.clone()),
        seconds_to_settle: seconds_to_settle(task),
        transactions: status.transactions,
    }
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
        "RANDOM",
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
            row.random_mean_return.map_or("-".into(), |r| format!("{r:.1}")),
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

    /// A task whose every attempt failed: its settlement is the last `fail-N` transaction, whose
    /// receipt shows the refund of the escrow and the worker's reputation falling.
    #[test]
    fn a_refunded_task_shows_its_refund_and_the_reputation_change() {
        use drlaas_chain::alloy::primitives::{Address, LogData};
        use drlaas_chain::alloy::sol_types::SolEvent;
        use drlaas_crds::task::{DRLTaskSpec, TaskOutcome};

        let spec: DRLTaskSpec = serde_json::from_value(serde_json::json!({
            "training": {"environment": {"kind": "cartpole"}, "targetMeanReturn": 150.0},
            "chainTaskId": 3
        }))
        .unwrap();
        let mut task = DRLTask::new("pole", spec);
        let hash = |n: u8| format!("0x{}", format!("{n:02x}").repeat(32));
        let keys = [
            TxAction::Post,
            TxAction::Assign(1),
            TxAction::Fail(1),
            TxAction::Assign(2),
            TxAction::Submit(2),
            TxAction::Fail(2),
        ];
        task.status = Some(DRLTaskStatus {
            phase: Some(TaskPhase::Settled),
            outcome: Some(TaskOutcome::Refunded),
            chain_task_id: Some(3),
            worker: Some("lab-b".into()),
            attempts: 2,
            budget_wei: Some("100000000000000000".into()),
            transactions: keys.iter().zip(1..).map(|(k, n)| (k.to_string(), hash(n))).collect(),
            ..DRLTaskStatus::default()
        });
        let status = task.status.as_ref().unwrap();
        assert_eq!(
            settling_tx(status),
            Some(hash(6).as_str()),
            "the last attempt's failure settled it"
        );

        let worker = Address::repeat_byte(7);
        let log = |data: LogData| Log {
            inner: drlaas_chain::alloy::primitives::Log {
                address: Address::repeat_byte(1),
                data,
            },
            ..Log::default()
        };
        let logs = [
            log(UMC::ReputationChanged {
                worker,
                previous: drlaas_chain::Reputation::ONE / 2,
                current: drlaas_chain::Reputation::ONE * 45 / 100,
            }
            .encode_log_data()),
            log(TMC::TaskFailed {
                taskId: U256::from(3),
                worker,
                slashed: U256::from(5),
                reopened: false,
            }
            .encode_log_data()),
        ];
        let budget = Some(U256::from(100_000_000_000_000_000u64));
        let found = read_settlement(&logs, budget);
        let row = row(&task, found);
        assert_eq!(
            (row.outcome.as_str(), row.paid_wei.as_deref(), row.refund_wei.as_deref()),
            ("Refunded", None, Some("100000000000000000"))
        );
        assert_eq!(row.reputation, Some((0.5, 0.45)));
        let line = table(&[row]).lines().nth(1).unwrap().to_string();
        assert!(
            line.contains("0 (refund 0.1)") && line.contains("0.500 → 0.450"),
            "{line}"
        );

        // An earlier attempt's failure reopened the task: nothing came back yet.
        let reopened = [log(TMC::TaskFailed {
            taskId: U256::from(3),
            worker,
            slashed: U256::from(5),
            reopened: true,
        }
        .encode_log_data())];
        assert_eq!(read_settlement(&reopened, budget).refund, None);
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
            random_mean_return: Some(21.7),
            model_cid: Some("bafkreiabcdefghijklmnopqrstuvwxyz".into()),
            paid_wei: Some("100000000000000000".into()),
            refund_wei: None,
            reputation: Some((0.5, 0.55)),
            warm_start: None,
            seconds_to_settle: Some(12),
            transactions: BTreeMap::from([(TxAction::Post.to_string(), format!("0x{}", "ab".repeat(32)))]),
        };
        let table = table(&[row]);
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0].find("WORKER"), lines[1].find("lab-a"));
        assert_eq!(lines[0].find("RANDOM"), lines[1].find("21.7"));
        assert!(lines[1].contains("0.500 → 0.550") && lines[1].contains("12 s") && lines[1].contains("0.1"));
    }
}
