//! `drlaas operator`: the operator process. It checks its configuration against the chain and the
//! cluster before doing anything (a wrong RPC endpoint, deployment or oracle key fails at start,
//! not at the first settlement), serves `/metrics`, `/healthz` and `/readyz`, and runs the
//! controllers only while it holds the leader Lease, so that of several replicas exactly one sends
//! transactions. On SIGTERM it stops taking work, lets the reconciles in flight finish and exits.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use drlaas_chain::alloy::signers::local::PrivateKeySigner;
use drlaas_chain::{Deployment, Market, devnet};
use drlaas_store::Store;
use k8s_openapi::jiff::Timestamp;
use tokio::task::JoinSet;

use crate::controller::scope::parse_namespace;
use crate::controller::{Caches, Context, Settings, WatchScope, chain_admission, task, worker};
use crate::leader::{LeaderElector, Leadership};
use crate::pods::PodSettings;
use crate::server::{self, Health};

/// How often a follower asks for the Lease: a released Lease is taken within this.
const FOLLOWER_RETRY: Duration = Duration::from_secs(1);

/// How `drlaas operator` is configured: flags, or the environment variables named beside them
/// (the Helm chart sets those).
#[derive(Debug, Clone, clap::Args)]
pub struct OperatorArgs {
    /// JSON-RPC endpoint of the chain.
    #[arg(long, env = "DRLAAS_RPC_URL", default_value = "http://127.0.0.1:8545")]
    pub rpc_url: String,
    /// The marketplace deployment: a JSON file with chainId, umc, tmc, mmc and block.
    #[arg(long, env = "DRLAAS_DEPLOYMENT")]
    pub deployment: PathBuf,
    /// File holding the oracle account's hex private key (a mounted Secret).
    #[arg(long, env = "DRLAAS_ORACLE_KEY_FILE")]
    pub oracle_key_file: PathBuf,
    /// Content store of the operator: an IPFS API URL, or a directory.
    #[arg(long, env = "DRLAAS_STORE")]
    pub store: String,
    /// Content store address given to trainer and evaluator pods (default: --store).
    #[arg(long, env = "DRLAAS_POD_STORE")]
    pub pod_store: Option<String>,
    /// Trainer image of the pods, unless a Worker names its own.
    #[arg(long, env = "DRLAAS_TRAINER_IMAGE", default_value = "drlaas/trainer:0.1.0")]
    pub trainer_image: String,
    /// The operator's namespace: worker key Secrets, the chain cursor, the Lease, mirrored tasks.
    #[arg(long, env = "POD_NAMESPACE", default_value = "drlaas-system")]
    pub namespace: String,
    /// Namespaces whose DRLTasks and pods the operator watches, comma-separated (e.g.
    /// team-a,team-b); none (the default) = every namespace. When some are named, every list and
    /// watch of tasks and pods stays in those namespaces and in --namespace (always added: mirrored
    /// tasks live there), so namespaced Roles suffice for them; Workers and DRLModels are
    /// cluster-scoped and read cluster-wide either way.
    #[arg(
        long,
        env = "DRLAAS_WATCH_NAMESPACES",
        value_delimiter = ',',
        value_name = "NAMESPACES",
        value_parser = parse_namespace
    )]
    pub watch_namespaces: Vec<String>,
    /// Blocks on top of a `TaskPosted` event before it is mirrored.
    #[arg(long, env = "DRLAAS_CONFIRMATIONS", default_value_t = 2)]
    pub confirmations: u64,
    /// Do not mirror tasks posted on chain (only DRLTasks applied in the cluster are run).
    #[arg(long)]
    pub no_chain_admission: bool,
    /// Address of the metrics and health endpoints.
    #[arg(long, env = "DRLAAS_LISTEN", default_value = "0.0.0.0:8080")]
    pub listen: SocketAddr,
    /// Name of the leader Lease.
    #[arg(long, default_value = "drlaas-operator")]
    pub lease_name: String,
    /// This replica's identity in the Lease (default: the pod name, else the host name).
    #[arg(long, env = "POD_NAME")]
    pub identity: Option<String>,
    /// Seconds a Lease lasts without renewal.
    #[arg(long, default_value_t = 15)]
    pub lease_seconds: i32,
}

/// Why the operator could not start or had to stop.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("{0}")]
    Config(String),
    #[error("chain: {0}")]
    Chain(#[from] drlaas_chain::ChainError),
    #[error("content store: {0}")]
    Store(#[from] drlaas_store::StoreError),
    #[error("Kubernetes: {0}")]
    Kube(#[from] kube::Error),
    #[error("the metrics listener: {0}")]
    Listen(#[from] std::io::Error),
    #[error("lost the leader Lease to {0}: exiting so that only one replica settles")]
    LostLease(String),
}

/// Checks the configuration, then runs against the cluster of the kubeconfig (or the in-cluster
/// service account) until SIGTERM, or until the Lease is lost.
pub async fn run(args: OperatorArgs) -> Result<(), RunError> {
    run_with(args, None).await
}

/// [`run`], against the API server behind `client` when given.
pub async fn run_with(args: OperatorArgs, client: Option<kube::Client>) -> Result<(), RunError> {
    let config = |m: String| RunError::Config(m);
    let key_text = std::fs::read_to_string(&args.oracle_key_file)
        .map_err(|e| config(format!("--oracle-key-file {}: {e}", args.oracle_key_file.display())))?;
    let oracle_key: PrivateKeySigner = key_text.trim().parse().map_err(|_| {
        config(format!(
            "--oracle-key-file {}: not a hex secp256k1 private key",
            args.oracle_key_file.display()
        ))
    })?;
    let oracle = oracle_key.address();
    let deployment_text = std::fs::read_to_string(&args.deployment)
        .map_err(|e| config(format!("--deployment {}: {e}", args.deployment.display())))?;
    let deployment: Deployment = serde_json::from_str(&deployment_text)
        .map_err(|e| config(format!("--deployment {}: {e}", args.deployment.display())))?;
    let url = args
        .rpc_url
        .parse()
        .map_err(|e| config(format!("--rpc-url {:?}: {e}", args.rpc_url)))?;
    let market = Market::connect(devnet::http_provider(url), devnet::wallet([oracle_key]), deployment);
    market.verify().await?;
    if !market.is_oracle(oracle).await? {
        return Err(config(format!(
            "{oracle} (the --oracle-key-file account) is not an oracle of TMC {}: the admin must allow it (setOracle) \
             before the operator can assign and settle tasks",
            deployment.tmc
        )));
    }
    let store = Store::open(&args.store)?;
    let health = Arc::new(Health::default());
    let client = match client {
        Some(client) => client,
        None => counted_client(health.clone()).await?,
    };
    let settings = Settings {
        oracle,
        namespace: args.namespace.clone(),
        scope: WatchScope::new(&args.watch_namespaces, &args.namespace),
        pods: PodSettings {
            trainer_image: args.trainer_image.clone(),
            store_address: args.pod_store.clone().unwrap_or_else(|| args.store.clone()),
        },
        confirmations: args.confirmations,
    };
    // Started before the Lease is ours: a standby replica takes over with its caches filled.
    let mut watches = JoinSet::new();
    let caches = Caches::start(&client, &settings.scope, &mut watches).await;
    let ctx = Arc::new(Context {
        client: client.clone(),
        market: Arc::new(market),
        health: health.clone(),
        store,
        settings: Arc::new(settings),
        caches,
        recruiter: Arc::default(),
    });
    let listener = tokio::net::TcpListener::bind(args.listen).await?;
    let http = tokio::spawn(server::serve(listener, health.clone(), shutdown_signal()));
    tracing::info!(
        %oracle, chain = deployment.chain_id, tmc = %deployment.tmc, listen = %args.listen,
        watching = %ctx.settings.scope,
        "drlaas operator started; waiting for the leader Lease"
    );
    health.set_ready(true);

    let identity = args.identity.clone().unwrap_or_else(host_name);
    let elector = LeaderElector::new(client, &args.namespace, &args.lease_name, &identity, args.lease_seconds);
    let renew_every = Duration::from_secs(u64::try_from(args.lease_seconds / 3).unwrap_or(5).max(1));
    let mut controllers: Option<JoinSet<()>> = None;
    let shutdown = shutdown_signal();
    tokio::pin!(shutdown);
    let result = loop {
        let leadership = elector.try_acquire_or_renew(Timestamp::now()).await;
        match (leadership, &mut controllers) {
            (Ok(Leadership::Leader), None) => {
                tracing::info!(%identity, "leading: starting the controllers");
                controllers = Some(start_controllers(&ctx, !args.no_chain_admission));
            }
            (Ok(Leadership::Follower { holder }), Some(_)) => break Err(RunError::LostLease(holder)),
            (Ok(Leadership::Follower { holder }), None) => {
                tracing::debug!(%holder, "following");
            }
            (Ok(Leadership::Leader), Some(_)) => {}
            (Err(e), running) => {
                tracing::warn!(error = %e, "could not read or renew the leader Lease");
                if running.is_some() {
                    // Keep leading only while the Lease is surely ours.
                    break Err(RunError::Kube(e));
                }
            }
        }
        // A follower looks again soon: a leader that stops releases the Lease, and the next
        // replica should lead within a second or two, not a Lease duration later.
        let pause = if controllers.is_some() {
            renew_every
        } else {
            FOLLOWER_RETRY.min(renew_every)
        };
        tokio::select! {
            _ = &mut shutdown => break Ok(()),
            _ = tokio::time::sleep(pause) => {}
        }
    };
    health.set_ready(false);
    // A replica that lost the Lease must not touch it; one that stops while leading gives it up.
    let lead_was_held = controllers.is_some() && result.is_ok();
    if let Some(mut running) = controllers {
        // The controllers stop on the same signal after their reconciles in flight; the chain
        // watcher acknowledges each event after handling it, so stopping it anywhere loses nothing.
        let drained = tokio::time::timeout(Duration::from_secs(20), async {
            while running.join_next().await.is_some() {}
        })
        .await;
        if drained.is_err() {
            running.abort_all();
        }
    }
    if lead_was_held {
        // Only now that nothing of ours still acts: the next replica may start at once.
        match elector.release().await {
            Ok(true) => tracing::info!(%identity, "released the leader Lease"),
            Ok(false) => {}
            Err(e) => tracing::warn!(error = %e, "could not release the leader Lease; it expires on its own"),
        }
    }
    watches.abort_all();
    http.abort();
    tracing::info!("drlaas operator stopped");
    result
}

/// The client of the kubeconfig or in-cluster config, counting every request it sends in
/// `drlaas_kube_requests_total` (what an admin watches for an operator that hammers the API server).
async fn counted_client(health: Arc<Health>) -> Result<kube::Client, kube::Error> {
    let config = kube::Config::infer().await.map_err(kube::Error::InferConfig)?;
    let count = tower::util::MapRequestLayer::new(move |request: http::Request<kube::client::Body>| {
        health.metrics.kube_request(request.method(), request.uri());
        request
    });
    Ok(kube::client::ClientBuilder::try_from(config)?
        .with_layer(&count)
        .build())
}

fn start_controllers(ctx: &Arc<Context>, chain_admission: bool) -> JoinSet<()> {
    let mut set = JoinSet::new();
    set.spawn(task::run(ctx.clone()));
    set.spawn(worker::run(ctx.clone()));
    if chain_admission {
        let ctx = ctx.clone();
        set.spawn(async move {
            tokio::select! {
                _ = chain_admission::run(ctx) => {}
                _ = shutdown_signal() => {}
            }
        });
    }
    set
}

/// Resolves on SIGTERM (Kubernetes stopping the pod) or Ctrl-C.
async fn shutdown_signal() {
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terminate => {}
    }
}

fn host_name() -> String {
    std::fs::read_to_string("/etc/hostname")
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| format!("drlaas-{}", std::process::id()))
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        operator: OperatorArgs,
    }

    fn parse(extra: &[&str]) -> Result<OperatorArgs, clap::Error> {
        let required = [
            "drlaas",
            "--deployment",
            "d.json",
            "--oracle-key-file",
            "k",
            "--store",
            "s",
        ];
        Cli::try_parse_from(required.iter().chain(extra)).map(|cli| cli.operator)
    }

    fn scope(args: &OperatorArgs) -> WatchScope {
        WatchScope::new(&args.watch_namespaces, &args.namespace)
    }

    fn names(list: &[&str]) -> WatchScope {
        WatchScope::Namespaces(list.iter().map(|s| s.to_string()).collect())
    }

    #[test]
    fn watch_namespaces_is_a_comma_list_added_to_the_operators_namespace() {
        let args = parse(&["--watch-namespaces", "team-a,team-b", "--namespace", "ops"]).unwrap();
        assert_eq!(args.watch_namespaces, ["team-a", "team-b"]);
        assert_eq!(scope(&args), names(&["team-a", "team-b", "ops"]));

        let repeated = parse(&[
            "--watch-namespaces",
            "team-a",
            "--watch-namespaces",
            "team-b, ops",
            "--namespace",
            "x",
        ]);
        assert_eq!(scope(&repeated.unwrap()), names(&["team-a", "team-b", "ops", "x"]));
    }

    #[test]
    fn no_watch_namespaces_is_every_namespace() {
        if std::env::var_os("DRLAAS_WATCH_NAMESPACES").is_none() {
            assert_eq!(scope(&parse(&[]).unwrap()), WatchScope::All);
        }
        // An empty value (what an empty DRLAAS_WATCH_NAMESPACES gives) names no namespace either.
        for empty in ["--watch-namespaces=", "--watch-namespaces=,"] {
            assert_eq!(scope(&parse(&[empty]).unwrap()), WatchScope::All, "{empty}");
        }
    }

    #[test]
    fn a_watch_namespace_that_is_no_namespace_name_is_refused() {
        let error = parse(&["--watch-namespaces", "team-a,Team_B"]).unwrap_err();
        assert!(
            error.to_string().contains("\"Team_B\" is not a namespace name"),
            "{error}"
        );
    }
}
