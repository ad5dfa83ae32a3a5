//! The operator's Prometheus metrics (scraped from `/metrics`, see [`crate::server`]).
//!
//! What a cluster admin watches: reconciles and errors by kind, tasks per phase, how long tasks take
//! to be assigned, verified and settled, how long trainer pods take to start, chain transaction
//! latency and gas, and per task the training speed and mean return.

use std::sync::atomic::AtomicU64;
use std::time::Instant;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ControllerLabels {
    pub controller: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ErrorLabels {
    pub controller: String,
    pub kind: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PhaseLabels {
    pub phase: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ActionLabels {
    pub action: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TaskLabels {
    pub namespace: String,
    pub task: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    /// `get`, `list`, `watch`, `create`, `update`, `patch`, `delete`, `deletecollection`.
    pub verb: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabels {
    pub outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OracleLabels {
    /// The other oracle's account.
    pub oracle: String,
}

/// Seconds from 10 ms to ~3 h: reconciles are fast, settling a task takes as long as training.
fn seconds() -> Histogram {
    Histogram::new(exponential_buckets(0.01, 3.0, 14))
}

/// Gas from 21k to ~1.4M.
fn gas() -> Histogram {
    Histogram::new(exponential_buckets(21_000.0, 2.0, 7))
}

/// Every metric, and the registry that exposes them.
#[derive(Debug)]
pub struct Metrics {
    pub reconciles: Family<ControllerLabels, Counter>,
    pub reconcile_errors: Family<ErrorLabels, Counter>,
    pub reconcile_seconds: Family<ControllerLabels, Histogram, fn() -> Histogram>,
    pub tasks: Family<PhaseLabels, Gauge>,
    pub time_to_assign_seconds: Histogram,
    pub time_to_verify_seconds: Histogram,
    pub time_to_settle_seconds: Histogram,
    pub pod_launch_delay_seconds: Histogram,
    pub chain_tx_seconds: Family<ActionLabels, Histogram, fn() -> Histogram>,
    pub chain_tx_gas: Family<ActionLabels, Histogram, fn() -> Histogram>,
    pub training_sps: Family<TaskLabels, Gauge<f64, AtomicU64>>,
    pub training_mean_return: Family<TaskLabels, Gauge<f64, AtomicU64>>,
    pub chain_tasks: Family<OutcomeLabels, Counter>,
    pub chain_acked_block: Gauge,
    pub chain_head_block: Gauge,
    pub kube_requests: Family<RequestLabels, Counter>,
    pub proposals_refused: Counter,
    pub oracle_dissents: Family<OracleLabels, Counter>,
    registry: Registry,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut m = Metrics {
            reconciles: Family::default(),
            reconcile_errors: Family::default(),
            reconcile_seconds: Family::new_with_constructor(seconds),
            tasks: Family::default(),
            time_to_assign_seconds: seconds(),
            time_to_verify_seconds: seconds(),
            time_to_settle_seconds: seconds(),
            pod_launch_delay_seconds: seconds(),
            chain_tx_seconds: Family::new_with_constructor(seconds),
            chain_tx_gas: Family::new_with_constructor(gas),
            training_sps: Family::default(),
            training_mean_return: Family::default(),
            chain_tasks: Family::default(),
            chain_acked_block: Gauge::default(),
            chain_head_block: Gauge::default(),
            kube_requests: Family::default(),
            proposals_refused: Counter::default(),
            oracle_dissents: Family::default(),
            registry: Registry::with_prefix("drlaas"),
        };
        let r = &mut m.registry;
        r.register("reconciles", "Reconciles run, by controller", m.reconciles.clone());
        r.register(
            "reconcile_errors",
            "Reconciles failed, by controller and error kind",
            m.reconcile_errors.clone(),
        );
        r.register(
            "reconcile_duration_seconds",
            "Time per reconcile",
            m.reconcile_seconds.clone(),
        );
        r.register("tasks", "DRLTasks per phase", m.tasks.clone());
        r.register(
            "time_to_assign_seconds",
            "Admission to worker assigned",
            m.time_to_assign_seconds.clone(),
        );
        r.register(
            "time_to_verify_seconds",
            "Result submitted to verdict",
            m.time_to_verify_seconds.clone(),
        );
        r.register(
            "time_to_settle_seconds",
            "Admission to settled on chain",
            m.time_to_settle_seconds.clone(),
        );
        r.register(
            "pod_launch_delay_seconds",
            "Trainer pod created to running",
            m.pod_launch_delay_seconds.clone(),
        );
        r.register(
            "chain_tx_duration_seconds",
            "Chain transaction sent to receipt, by action",
            m.chain_tx_seconds.clone(),
        );
        r.register(
            "chain_tx_gas",
            "Gas used per chain transaction, by action",
            m.chain_tx_gas.clone(),
        );
        r.register(
            "training_env_steps_per_second",
            "Training speed per task",
            m.training_sps.clone(),
        );
        r.register(
            "training_mean_return",
            "Mean training return per task",
            m.training_mean_return.clone(),
        );
        r.register(
            "chain_tasks",
            "TaskPosted events handled by the chain watcher, by outcome (created, already_mirrored, owned_by_kubernetes_task, refused)",
            m.chain_tasks.clone(),
        );
        r.register(
            "consortium_proposals_refused",
            "Reconciles in which every assignment another consortium member proposed broke the public recruitment rule",
            m.proposals_refused.clone(),
        );
        r.register(
            "consortium_dissents",
            "Votes of another oracle found on a result against this member's verdict when it voted, by oracle",
            m.oracle_dissents.clone(),
        );
        r.register(
            "chain_acked_block",
            "Block through which the chain watcher has handled every chain event",
            m.chain_acked_block.clone(),
        );
        r.register(
            "chain_head_block",
            "Latest block number the chain watcher saw",
            m.chain_head_block.clone(),
        );
        r.register(
            "kube_requests",
            "Requests the operator sent to the Kubernetes API server, by verb (a watch counts once, when it starts)",
            m.kube_requests.clone(),
        );
        m
    }
}

impl Metrics {
    /// The OpenMetrics text of every metric.
    pub fn encode(&self) -> String {
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &self.registry).expect("writing to a String cannot fail");
        text
    }

    /// Counts a reconcile of `controller` and times it until the returned guard is dropped.
    pub fn reconcile(&self, controller: &str) -> ReconcileTimer<'_> {
        let labels = ControllerLabels {
            controller: controller.to_string(),
        };
        self.reconciles.get_or_create(&labels).inc();
        ReconcileTimer {
            metrics: self,
            labels,
            started: Instant::now(),
        }
    }

    /// Counts a request to the Kubernetes API server (`method` and `uri` as sent).
    pub fn kube_request(&self, method: &http::Method, uri: &http::Uri) {
        let verb = api_verb(method, uri.path(), uri.query().unwrap_or_default());
        self.kube_requests
            .get_or_create(&RequestLabels { verb: verb.into() })
            .inc();
    }

    /// Counts a failed reconcile.
    pub fn reconcile_failed(&self, controller: &str, kind: &str) {
        self.reconcile_errors
            .get_or_create(&ErrorLabels {
                controller: controller.into(),
                kind: kind.into(),
            })
            .inc();
    }

    /// Counts a `TaskPosted` event the chain watcher handled, by what became of it.
    pub fn chain_task(&self, outcome: &str) {
        self.chain_tasks
            .get_or_create(&OutcomeLabels {
                outcome: outcome.into(),
            })
            .inc();
    }
}

/// Observes a reconcile's duration when dropped.
#[derive(Debug)]
pub struct ReconcileTimer<'a> {
    metrics: &'a Metrics,
    labels: ControllerLabels,
    started: Instant,
}

impl Drop for ReconcileTimer<'_> {
    fn drop(&mut self) {
        self.metrics
            .reconcile_seconds
            .get_or_create(&self.labels)
            .observe(self.started.elapsed().as_secs_f64());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reconciles_errors_and_timings_are_exposed() {
        let m = Metrics::default();
        drop(m.reconcile("worker"));
        m.reconcile_failed("worker", "chain");
        let text = m.encode();
        assert!(
            text.contains(r#"drlaas_reconciles_total{controller="worker"} 1"#),
            "{text}"
        );
        assert!(
            text.contains(r#"drlaas_reconcile_errors_total{controller="worker",kind="chain"} 1"#),
            "{text}"
        );
        assert!(
            text.contains(r#"drlaas_reconcile_duration_seconds_count{controller="worker"} 1"#),
            "{text}"
        );
        assert!(text.ends_with("# EOF\n"));
    }

    #[test]
    fn chain_watcher_blocks_are_exposed() {
        let m = Metrics::default();
        m.chain_acked_block.set(40);
        m.chain_head_block.set(42);
        let text = m.encode();
        assert!(text.contains("# TYPE drlaas_chain_acked_block gauge\n"), "{text}");
        assert!(text.contains("drlaas_chain_acked_block 40\n"), "{text}");
        assert!(
            text.contains("# HELP drlaas_chain_head_block Latest block number the chain watcher saw.\n"),
            "{text}"
        );
        assert!(text.contains("# TYPE drlaas_chain_head_block gauge\n"), "{text}");
        assert!(text.contains("drlaas_chain_head_block 42\n"), "{text}");
    }
}

/// The API server's verb for a request, as its audit log and RBAC name it.
pub fn api_verb(method: &http::Method, path: &str, query: &str) -> &'static str {
    let watch = query.split('&').any(|kv| kv == "watch=true" || kv == "watch=1");
    // A collection path ends in the resource (`/api/v1/namespaces/ns/pods`), an object path in
    // its name; the segments after `namespaces/NS` or the version tell them apart.
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    let rest = match segments.iter().position(|s| *s == "namespaces") {
        Some(i) if segments.len() > i + 2 => &segments[i + 2..],
        _ => {
            let version_at = if segments.first() == Some(&"api") { 1 } else { 2 };
            segments.get(version_at + 1..).unwrap_or_default()
        }
    };
    let collection = rest.len() <= 1;
    match *method {
        http::Method::GET if watch => "watch",
        http::Method::GET if collection => "list",
        http::Method::GET => "get",
        http::Method::POST => "create",
        http::Method::PUT => "update",
        http::Method::PATCH => "patch",
        http::Method::DELETE if collection => "deletecollection",
        http::Method::DELETE => "delete",
        _ => "other",
    }
}

#[cfg(test)]
mod verb_tests {
    use super::api_verb;
    use http::Method;

    #[test]
    fn verbs_are_named_as_the_api_server_names_them() {
        let cases = [
            (Method::GET, "/apis/drlaas.io/v1alpha1/drltasks", "", "list"),
            (
                Method::GET,
                "/apis/drlaas.io/v1alpha1/namespaces/ns/drltasks",
                "watch=true&resourceVersion=1",
                "watch",
            ),
            (Method::GET, "/api/v1/namespaces/ns/pods/p", "", "get"),
            (Method::GET, "/api/v1/namespaces/ns/pods/p/log", "tailLines=5", "get"),
            (Method::GET, "/api/v1/namespaces/ns", "", "get"),
            (Method::GET, "/apis/drlaas.io/v1alpha1/workers/w", "", "get"),
            (Method::GET, "/apis/drlaas.io/v1alpha1/workers", "", "list"),
            (Method::POST, "/api/v1/namespaces/ns/pods", "", "create"),
            (
                Method::PATCH,
                "/apis/drlaas.io/v1alpha1/namespaces/ns/drltasks/t/status",
                "",
                "patch",
            ),
            (
                Method::DELETE,
                "/api/v1/namespaces/ns/pods",
                "labelSelector=a",
                "deletecollection",
            ),
            (Method::DELETE, "/api/v1/namespaces/ns/pods/p", "", "delete"),
        ];
        for (method, path, query, verb) in cases {
            assert_eq!(api_verb(&method, path, query), verb, "{method} {path}?{query}");
        }
    }
}
