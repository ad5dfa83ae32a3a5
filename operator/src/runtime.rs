//! `drlaas operator`: the operator process. Its flags ([`OperatorArgs`]) are resolved into an
//! [`OperatorConfig`] (the deployment and the oracle key read from their files); the local mode,
//! the tests and the benches build that value directly. It checks its configuration against the
//! chain and the cluster before doing anything (a wrong RPC endpoint, deployment or oracle key fails
//! at start, not at the first settlement), serves `/metrics`, `/healthz` and `/readyz`, and runs the
//! controllers only while it holds the leader Lease, so that of several replicas exactly one sends
//! transactions. On SIGTERM it stops taking work, lets the reconciles in flight finish and exits.

use std::sync::Arc;
use std::time::Duration;

use drlaas_chain::{Market, OpenError, ReachError, rpc_provider};
use drlaas_store::Store;
use k8s_openapi::jiff::Timestamp;
use tokio::task::JoinSet;

pub use crate::config::{OperatorArgs, OperatorConfig};
use crate::controller::{Caches, Context, Settings, WatchScope, chain_mirror, task, worker};
use crate::leader::{LeaderElector, Leadership};
use crate::pods::PodSettings;
use crate::server::{self, Health};

/// How often a follower asks for the Lease: a released Lease is taken within this.
const FOLLOWER_RETRY: Duration = Duration::from_secs(1);

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

/// Resolves the flags, checks the configuration, then runs against the cluster of the kubeconfig
/// (or the in-cluster service account) until SIGTERM, or until the Lease is lost.
pub async fn run(args: OperatorArgs) -> Result<(), RunError> {
    run_with(args.resolve()?, None).await
}

/// Checks `config` against the chain, then runs against the API server behind `client` (default:
/// the kubeconfig's or the in-cluster one) until SIGTERM, or until the Lease is lost.
pub async fn run_with(config: OperatorConfig, client: Option<kube::Client>) -> Result<(), RunError> {
    let refused = |m: String| RunError::Config(m);
    let oracle = config.oracle_key.address();
    let deployment = config.deployment;
    let provider = rpc_provider(&config.rpc_url).map_err(|e| match e {
        ReachError::NotAUrl(m) => refused(format!("--rpc-url {:?}: {m}", config.rpc_url)),
        other => refused(format!("--rpc-url {}: {other}", config.rpc_url)),
    })?;
    let market = Market::open_as_oracle(provider, config.oracle_key.clone(), deployment)
        .await
        .map_err(|e| match e {
            OpenError::NotOracle { oracle, tmc } => refused(format!(
                "{oracle} (the --oracle-key-file account) is not an oracle of TMC {tmc}: the consortium must \
                 add it to the oracle set (`drlaas chain set-oracles`, then `drlaas chain execute` once the \
                 governance delay is over) before the operator can assign and settle tasks"
            )),
            OpenError::Mismatch(m) => RunError::Chain(drlaas_chain::ChainError::Inconsistent(m)),
            OpenError::Chain(e) => RunError::Chain(e),
        })?;
    let store = Store::open(&config.store)?;
    let health = Arc::new(Health::default());
    let client = match client {
        Some(client) => client,
        None => counted_client(health.clone()).await?,
    };
    let settings = Settings {
        oracle,
        namespace: config.namespace.clone(),
        scope: WatchScope::new(&config.watch_namespaces, &config.namespace),
        pods: PodSettings {
            trainer_image: config.trainer_image.clone(),
            store_address: config.pod_store.clone().unwrap_or_else(|| config.store.clone()),
            environments: config.environments.clone(),
        },
        confirmations: config.confirmations,
        proposal_turn_seconds: config.proposal_turn_seconds,
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
        consortium: Arc::default(),
    });
    let listener = tokio::net::TcpListener::bind(config.listen).await?;
    let http = tokio::spawn(server::serve(listener, health.clone(), shutdown_signal()));
    tracing::info!(
        %oracle, chain = deployment.chain_id, tmc = %deployment.tmc, listen = %config.listen,
        watching = %ctx.settings.scope,
        "drlaas operator started; waiting for the leader Lease"
    );
    health.set_ready(true);

    let identity = config.identity.clone().unwrap_or_else(host_name);
    let elector = LeaderElector::new(
        client,
        &config.namespace,
        &config.lease_name,
        &identity,
        config.lease_seconds,
    );
    let renew_every = Duration::from_secs(u64::try_from(config.lease_seconds / 3).unwrap_or(5).max(1));
    let mut controllers: Option<JoinSet<()>> = None;
    let shutdown = shutdown_signal();
    tokio::pin!(shutdown);
    let result = loop {
        let leadership = elector.try_acquire_or_renew(Timestamp::now()).await;
        match (leadership, &mut controllers) {
            (Ok(Leadership::Leader), None) => {
                tracing::info!(%identity, "leading: starting the controllers");
                controllers = Some(start_controllers(&ctx, config.chain_admission));
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

fn start_controllers(ctx: &Arc<Context>, chain_mirror: bool) -> JoinSet<()> {
    let mut set = JoinSet::new();
    set.spawn(task::run(ctx.clone()));
    set.spawn(worker::run(ctx.clone()));
    if chain_mirror {
        let ctx = ctx.clone();
        set.spawn(async move {
            tokio::select! {
                _ = chain_mirror::run(ctx) => {}
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
