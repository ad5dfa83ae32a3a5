//! The chart's Grafana dashboard charts only metrics the operator exports, and every family an
//! operator of the marketplace looks for.

use std::collections::BTreeSet;

use drlaas_chart::{Helm, chart_dir};
use serde_json::Value;

#[test]
fn the_dashboard_charts_only_metrics_the_operator_exports() {
    let objects = Helm::pinned()
        .template(&[&chart_dir().join("ci/full-values.yaml")])
        .unwrap();
    let config = objects
        .iter()
        .find(|c| c["kind"] == "ConfigMap" && c["metadata"]["name"] == "drlaas-dashboard")
        .unwrap();
    let dashboard: Value =
        serde_json::from_str(config["data"]["drlaas.json"].as_str().unwrap()).expect("the dashboard is JSON");
    assert_eq!(dashboard["uid"], "drlaas-overview");
    let exported = every_family_sampled().encode();
    let families: BTreeSet<String> = exported
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .map(|l| l.split_whitespace().next().unwrap().to_string())
        .collect();
    let mut expressions = Vec::new();
    collect_expressions(&dashboard, &mut expressions);
    assert!(expressions.len() >= 10, "{expressions:?}");
    let mut charted = BTreeSet::new();
    for expr in &expressions {
        for name in metric_names(expr) {
            let family = ["_bucket", "_sum", "_count", "_total"]
                .iter()
                .find_map(|s| name.strip_suffix(s).filter(|f| families.contains(*f)))
                .unwrap_or(&name)
                .to_string();
            assert!(
                families.contains(&family),
                "{expr}: {name} is not exported (exported: {families:?})"
            );
            charted.insert(family);
        }
    }
    // Every family the issue asks for is on the dashboard.
    for family in [
        "drlaas_tasks",
        "drlaas_time_to_settle_seconds",
        "drlaas_training_env_steps_per_second",
        "drlaas_training_mean_return",
        "drlaas_chain_tx_gas",
        "drlaas_chain_head_block",
        "drlaas_chain_acked_block",
        "drlaas_reconcile_errors",
    ] {
        assert!(charted.contains(family), "{family} is not on the dashboard");
    }
}

/// The operator's metrics with one sample in every labelled family (an empty family is not
/// exposed at all). A family added to `Metrics` and missing here fails the dashboard test only if
/// the dashboard charts it.
fn every_family_sampled() -> drlaas_operator::metrics::Metrics {
    use drlaas_operator::metrics::{ActionLabels, Metrics, PhaseLabels, TaskLabels};
    let m = Metrics::default();
    drop(m.reconcile("task"));
    m.reconcile_failed("task", "chain");
    m.chain_task("created");
    m.tasks
        .get_or_create(&PhaseLabels {
            phase: "Training".into(),
        })
        .set(1);
    let action = ActionLabels {
        action: "complete".into(),
    };
    m.chain_tx_seconds.get_or_create(&action).observe(1.0);
    m.chain_tx_gas.get_or_create(&action).observe(50_000.0);
    let task = TaskLabels {
        namespace: "team-a".into(),
        task: "maze".into(),
    };
    m.training_sps.get_or_create(&task).set(1000.0);
    m.training_mean_return.get_or_create(&task).set(10.0);
    m
}

/// Every `expr` (and variable `query`) string in the dashboard.
fn collect_expressions(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (key, v) in map {
                match (key.as_str(), v) {
                    ("expr", Value::String(s)) => out.push(s.clone()),
                    ("query", Value::String(s)) if s.contains("drlaas_") => out.push(s.clone()),
                    _ => collect_expressions(v, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| collect_expressions(v, out)),
        _ => {}
    }
}

/// The `drlaas_…` identifiers in a PromQL expression.
fn metric_names(expr: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut rest = expr;
    while let Some(start) = rest.find("drlaas_") {
        let tail = &rest[start..];
        let end = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(tail.len());
        names.push(tail[..end].to_string());
        rest = &tail[end..];
    }
    names
}
