//! `drlaas local run TASK.yaml…`: the marketplace on this machine, start to finish.
//!
//! 1. The tasks are read and checked first: a mistake stops the run before anything is escrowed.
//! 2. The data directory's chain (anvil, or `--rpc-url`) gets the contracts if it has none; the
//!    workers of the config register on it with their stake.
//! 3. The embedded API server opens with every object of earlier runs; the workers, their key
//!    Secrets, the requester's wallet Secrets and the tasks are applied to it.
//! 4. The operator runtime of a cluster ([`runtime::run_with`]) runs against it, with the local
//!    kubelet running its pods as trainer processes, until every task is settled; workers that
//!    sell their models list them on the market once paid.
//! 5. A table of the outcomes is printed, with a learning curve per task in the data directory.
//!
//! Killing the run at any point loses nothing: the chain and the API server's journal outlive it,
//! and the controllers take every task up where the chain says it is.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use drlaas_chain::alloy::primitives::Address;
use drlaas_chain::alloy::providers::Provider;
use drlaas_chain::alloy::signers::local::PrivateKeySigner;
use drlaas_chain::devnet::{self, ADMIN, ORACLE};
use drlaas_chain::{Market, MarketParams};
use drlaas_crds::task::{DRLTask, TaskPhase};
use drlaas_store::{ContentStore, Store};
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use serde_json::{Value, json};

use super::api_server::ApiServer;
use super::chain::{self, LocalChain};
use super::kubelet::Kubelet;
use super::network::{self, Network};
use super::report;
use super::workers::{Behavior, REQUESTER_ACCOUNT, WorkersConfig};
use crate::core::admission::{ChainRecord, parse_wei, task_demand, worker_offer};
use crate::core::recruitment::{Resources, feasible};
use crate::local_pod::{LocalPodRunner, locate_trainer};
use crate::manifest;
use crate::runtime::{self, OperatorArgs};

/// The operator's namespace in the local mode (worker keys, the chain cursor, the Lease).
pub const SYSTEM_NAMESPACE: &str = "drlaas-system";

/// `drlaas local run`.
#[derive(Debug, Clone, clap::Args)]
pub struct RunArgs {
    /// DRLTask YAML files to run (each may hold several documents). Without any, the tasks of
    /// earlier runs in the data directory are resumed.
    pub tasks: Vec<PathBuf>,
    /// Where the chain, the content store, the API server's journal, pod logs and the report live.
    #[arg(long, env = "DRLAAS_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Use this dev chain (anvil's well-known accounts) instead of the data directory's anvil.
    #[arg(long)]
    pub rpc_url: Option<String>,
    /// Keep models in this IPFS node (its API URL) instead of the data directory's local store.
    #[arg(long)]
    pub ipfs_api: Option<String>,
    /// The local workers (YAML, see deploy/examples/local-workers.yaml). Default: the data
    /// directory's from an earlier run, else three CPU workers (and a GPU one with a driver).
    #[arg(long)]
    pub workers: Option<PathBuf>,
    /// Pods run at once (default: the CPU cores).
    #[arg(long)]
    pub parallel: Option<usize>,
    /// Keep serving after every task is settled (tasks posted on chain with `drlaas task submit`
    /// are run too) until Ctrl-C.
    #[arg(long)]
    pub serve: bool,
    /// Address of the operator's metrics and health endpoints.
    #[arg(long, default_value = "127.0.0.1:0")]
    pub listen: std::net::SocketAddr,
    /// Plain progress lines instead of progress bars (the default when not on a terminal).
    #[arg(long)]
    pub plain: bool,
}

/// Why a local run could not go on.
#[derive(Debug, thiserror::Error)]
pub enum LocalError {
    #[error("{0}")]
    Setup(String),
    #[error(transparent)]
    Manifest(#[from] manifest::ManifestError),
    #[error("chain: {0}")]
    Chain(#[from] drlaas_chain::ChainError),
    #[error("content store: {0}")]
    Store(#[from] drlaas_store::StoreError),
    #[error("the operator stopped: {0}")]
    Operator(#[from] runtime::RunError),
}

fn setup(message: impl Into<String>) -> LocalError {
    LocalError::Setup(message.into())
}

/// Everything a local run set up.
struct Marketplace {
    data_dir: PathBuf,
    network: Network,
    signers: Vec<PrivateKeySigner>,
    market: Market,
    store: Store,
    workers: WorkersConfig,
    owns_chain: bool,
}

/// Runs the tasks of `args` (and every unsettled task of the data directory) to settlement;
/// returns the report's rows.
pub async fn run(args: RunArgs) -> Result<Vec<report::Row>, LocalError> {
    let data_dir = network::data_dir(args.data_dir.clone());
    std::fs::create_dir_all(&data_dir).map_err(|e| setup(format!("--data-dir {}: {e}", data_dir.display())))?;
    let mut tasks = Vec::new();
    for path in &args.tasks {
        tasks.extend(manifest::load_tasks(path)?);
    }
    let trainer = locate_trainer().filter(|p| p.is_file()).ok_or_else(|| {
        setup(
            "the trainer binary (drlaas-trainer) is not beside drlaas: build it (cargo build -p drlaas-trainer) \
             or set DRLAAS_TRAINER_BIN",
        )
    })?;
    let marketplace = open_marketplace(&args, &data_dir).await?;
    let api = ApiServer::open(&data_dir.join("api.jsonl"))
        .map_err(|e| setup(format!("{}: {e}", data_dir.join("api.jsonl").display())))?;
    let addresses = marketplace.register_workers(&api).await?;
    marketplace.check_feasible(&tasks, &addresses).await?;
    marketplace.apply_tasks(&api, &tasks)?;
    if api.all("drltasks").is_empty() && !args.serve {
        return Err(setup(
            "nothing to run: give DRLTask YAML files (see deploy/examples/), or --serve to run tasks posted on chain",
        ));
    }

    let operator = tokio::spawn(runtime::run_with(marketplace.operator_args(&args)?, Some(api.client())));
    let slots = args
        .parallel
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()));
    let runner = LocalPodRunner::new(trainer, data_dir.join("pods"), marketplace.network.store.clone(), 1);
    let logs_api = api.clone();
    let behaviors: BTreeMap<String, Behavior> = marketplace
        .workers
        .workers
        .iter()
        .map(|w| (w.name.clone(), w.behavior))
        .collect();
    let kubelet = Kubelet::new(api.client(), None, runner, slots)
        .with_logs(Arc::new(move |ns: &str, pod: &str, text: &str| {
            logs_api.set_log(ns, pod, text.to_string())
        }))
        .with_behaviors(behaviors);
    let kubelet = tokio::spawn(kubelet.run());
    let ticker = marketplace.owns_chain.then(|| {
        tokio::spawn(chain::tick(
            marketplace.market.provider().clone(),
            Duration::from_secs(1),
        ))
    });

    let sellers: BTreeMap<String, (Address, String)> = marketplace
        .workers
        .workers
        .iter()
        .filter_map(|w| Some((w.name.clone(), (addresses[&w.name], w.sell_models_wei.clone()?))))
        .collect();
    let mut display = report::Display::new(args.plain);
    let started = Instant::now();
    let mut operator = Some(operator);
    let outcome = loop {
        if let Some(finished) = operator.take_if(|o| o.is_finished()) {
            break match finished.await {
                Ok(Ok(())) => Err(setup("stopped before every task settled; run again to resume")),
                Ok(Err(e)) => Err(LocalError::Operator(e)),
                Err(e) => Err(setup(format!("the operator panicked: {e}"))),
            };
        }
        let tasks = typed_tasks(&api);
        display.update(&tasks);
        let sold = marketplace.sell_models(&tasks, &sellers).await;
        let settled = !tasks.is_empty() && tasks.iter().all(|t| phase(t) == Some(TaskPhase::Settled));
        if settled && sold && !args.serve {
            break Ok(());
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    kubelet.abort();
    if let Some(ticker) = ticker {
        ticker.abort();
    }
    display.finish();
    if let Some(operator) = operator {
        operator.abort();
    }
    outcome?;
    let tasks = typed_tasks(&api);
    let rows = report::rows(&marketplace.market, &tasks).await;
    report::write_curves(&data_dir, &tasks);
    report::write_json(&data_dir, &rows);
    tracing::debug!(seconds = started.elapsed().as_secs_f64(), "local run finished");
    Ok(rows)
}

fn typed_tasks(api: &ApiServer) -> Vec<DRLTask> {
    api.all("drltasks")
        .into_iter()
        .filter_map(|t| serde_json::from_value(t).ok())
        .collect()
}

fn phase(task: &DRLTask) -> Option<TaskPhase> {
    task.status.as_ref()?.phase
}

async fn open_marketplace(args: &RunArgs, data_dir: &Path) -> Result<Marketplace, LocalError> {
    let store_address = match &args.ipfs_api {
        Some(url) => url.clone(),
        None => data_dir.join("store").display().to_string(),
    };
    let store = Store::open(&store_address)?;
    if let Store::Ipfs(ipfs) = &store {
        ipfs.client()
            .version()
            .await
            .map_err(|e| setup(format!("--ipfs-api {store_address}: {e}")))?;
    }
    let (endpoint, signers, owns_chain) = match &args.rpc_url {
        Some(url) => {
            let signers = (0..chain::ACCOUNTS as u32)
                .map(crate::cli::connect::dev_account)
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| setup(e.to_string()))?;
            (url.clone(), signers, false)
        }
        None => {
            let LocalChain { endpoint, signers } = chain::start_or_reuse(data_dir).await.map_err(setup)?;
            (endpoint, signers, true)
        }
    };
    let url = endpoint
        .parse()
        .map_err(|e| setup(format!("--rpc-url {endpoint:?}: {e}")))?;
    let provider = devnet::http_provider(url);
    match tokio::time::timeout(Duration::from_secs(5), provider.get_chain_id()).await {
        Ok(Ok(_)) => {}
        Ok(Err(e)) => {
            return Err(setup(format!(
                "cannot reach the chain at {endpoint}: {e}; is it running?"
            )));
        }
        Err(_) => return Err(setup(format!("the chain at {endpoint} did not answer within 5 s"))),
    }
    let wallet = devnet::wallet(signers.iter().cloned());
    let recorded = Network::load(data_dir).map_err(|e| setup(e.to_string()))?;
    // The recorded contracts, if this chain has them (a restarted local chain has the same).
    let reusable = match recorded.as_ref().filter(|n| owns_chain || n.rpc_url == endpoint) {
        Some(n) => {
            let market = Market::connect(provider.clone(), wallet.clone(), n.deployment);
            market.verify().await.is_ok().then_some(market)
        }
        None => None,
    };
    let market = match reusable {
        Some(market) => market,
        None => {
            let market = Market::deploy(
                provider.clone(),
                wallet.clone(),
                signers[ADMIN].address(),
                MarketParams::default(),
            )
            .await
            .map_err(|e| setup(format!("could not deploy the contracts on {endpoint}: {e}")))?;
            market
                .set_oracle(signers[ADMIN].address(), signers[ORACLE].address(), true)
                .await?;
            market
        }
    };
    let network = Network {
        rpc_url: endpoint,
        deployment: *market.deployment(),
        store: store_address,
        dev_chain: true,
    };
    network.save(data_dir).map_err(|e| setup(e.to_string()))?;
    let workers = match &args.workers {
        Some(path) => WorkersConfig::load(path).map_err(setup)?,
        None => match WorkersConfig::load(&data_dir.join("workers.yaml")) {
            Ok(saved) => saved,
            Err(_) => WorkersConfig::default_pool(super::workers::nvidia_driver()),
        },
    };
    let saved = serde_saphyr::to_string(&workers).map_err(|e| setup(e.to_string()))?;
    std::fs::write(data_dir.join("workers.yaml"), saved).map_err(|e| setup(e.to_string()))?;
    Ok(Marketplace {
        data_dir: data_dir.to_path_buf(),
        network,
        signers,
        market,
        store,
        workers,
        owns_chain,
    })
}

/// A Secret holding `key` under `privateKey`: a wallet or a worker key, as the operator reads it.
pub fn key_secret(namespace: &str, name: &str, key: &PrivateKeySigner) -> Value {
    let key = ByteString(key.to_bytes().to_string().into_bytes());
    serde_json::to_value(Secret {
        metadata: kube::api::ObjectMeta {
            name: Some(name.into()),
            namespace: Some(namespace.into()),
            ..Default::default()
        },
        data: Some([("privateKey".to_string(), key)].into()),
        ..Default::default()
    })
    .expect("a Secret serializes")
}

/// Creates `object` if absent, else replaces its spec (keeping what the controllers wrote).
fn apply(api: &ApiServer, resource: &str, object: Value) {
    let namespace = object["metadata"]["namespace"].as_str().unwrap_or_default().to_string();
    let name = object["metadata"]["name"].as_str().unwrap_or_default().to_string();
    match api.get(resource, &namespace, &name) {
        Some(current) if current.get("spec").is_some() => {
            if current["spec"] != object["spec"] {
                api.update(resource, &namespace, &name, |o| o["spec"] = object["spec"].clone());
            }
        }
        Some(current) if current == object => {}
        Some(_) => api.update(resource, &namespace, &name, |o| *o = object),
        None => api.insert(resource, object),
    }
}

impl Marketplace {
    /// Registers each configured worker on chain (once) and gives it to the operator; returns the
    /// workers' addresses by name.
    async fn register_workers(&self, api: &ApiServer) -> Result<BTreeMap<String, Address>, LocalError> {
        let mut addresses = BTreeMap::new();
        for worker in &self.workers.workers {
            let key = &self.signers[worker.account];
            let address = key.address();
            if self.market.worker(address).await?.is_none() {
                let mut profile = worker.profile();
                let public = json!({"name": worker.name, "capacity": worker.capacity, "expertise": worker.expertise});
                profile.metadata_cid = self.store.put_bytes(public.to_string().into()).await?.cid.to_string();
                self.market.register_worker(address, &profile, worker.stake()).await?;
            }
            api_secret(api, SYSTEM_NAMESPACE, &worker.key_secret(), key);
            let spec = worker.spec(address.to_string());
            apply(
                api,
                "workers",
                json!({"apiVersion": "drlaas.io/v1alpha1", "kind": "Worker",
                       "metadata": {"name": worker.name}, "spec": spec}),
            );
            addresses.insert(worker.name.clone(), address);
        }
        Ok(addresses)
    }

    /// Refuses a task that no configured worker could ever take (resources, expertise, price,
    /// reputation), before anything is escrowed: it would wait for its deadline.
    async fn check_feasible(&self, tasks: &[DRLTask], addresses: &BTreeMap<String, Address>) -> Result<(), LocalError> {
        let mut offers = Vec::new();
        for worker in &self.workers.workers {
            let address = addresses[&worker.name];
            let record = self.market.worker(address).await?;
            let record = ChainRecord {
                reputation: record.map_or(0.5, |r| r.reputation.as_f64()),
                completed: 0,
                failed: 0,
            };
            let offer = worker_offer(
                worker.name.clone(),
                &worker.spec(address.to_string()),
                &record,
                Resources::default(),
                0,
                Vec::new(),
            )
            .map_err(|e| setup(format!("worker {}: {e}", worker.name)))?;
            offers.push(offer);
        }
        for task in tasks {
            let name = task.metadata.name.clone().unwrap_or_default();
            let budget = task
                .spec
                .payment
                .as_ref()
                .and_then(|p| parse_wei(&p.amount_wei).ok())
                .unwrap_or(u128::MAX);
            let demand = task_demand(name.clone(), &task.spec, budget, 0, Vec::new())
                .map_err(|e| setup(format!("task {name}: {e}")))?;
            let reasons: Vec<String> = offers
                .iter()
                .filter_map(|offer| feasible(offer, &demand).err().map(|why| format!("{}: {why}", offer.id)))
                .collect();
            if reasons.len() == offers.len() {
                return Err(setup(format!(
                    "no local worker can take task {name} ({}); change its spec.resources, payment or minReputation, \
                     or give workers that can (--workers, see deploy/examples/local-workers.yaml)",
                    reasons.join("; ")
                )));
            }
        }
        Ok(())
    }

    /// Applies the tasks, each with its wallet Secret holding the local requester's key.
    fn apply_tasks(&self, api: &ApiServer, tasks: &[DRLTask]) -> Result<(), LocalError> {
        let requester = &self.signers[REQUESTER_ACCOUNT];
        for task in tasks {
            let mut task = task.clone();
            let namespace = task.metadata.namespace.get_or_insert_with(|| "default".into()).clone();
            let name = task.metadata.name.clone().unwrap_or_default();
            if let Some(payment) = &task.spec.payment {
                api_secret(api, &namespace, &payment.wallet_secret_ref.name, requester);
            }
            let object = serde_json::to_value(&task).expect("a task serializes");
            match api.get("drltasks", &namespace, &name) {
                Some(current) if current["spec"] == object["spec"] => {}
                Some(_) => {
                    return Err(setup(format!(
                        "task {namespace}/{name} already exists in {} with another spec: rename it, or use another --data-dir",
                        self.data_dir.display()
                    )));
                }
                None => api.insert("drltasks", object),
            }
        }
        Ok(())
    }

    fn operator_args(&self, args: &RunArgs) -> Result<OperatorArgs, LocalError> {
        let deployment = self.data_dir.join("deployment.json");
        let write = |path: &Path, bytes: Vec<u8>| {
            std::fs::write(path, bytes).map_err(|e| setup(format!("{}: {e}", path.display())))
        };
        write(
            &deployment,
            serde_json::to_vec_pretty(&self.network.deployment).expect("serializes"),
        )?;
        let oracle_key = self.data_dir.join("oracle.key");
        write(&oracle_key, self.signers[ORACLE].to_bytes().to_string().into_bytes())?;
        Ok(OperatorArgs {
            rpc_url: self.network.rpc_url.clone(),
            deployment,
            oracle_key_file: oracle_key,
            store: self.network.store.clone(),
            pod_store: None,
            trainer_image: "drlaas/trainer:local".into(),
            namespace: SYSTEM_NAMESPACE.into(),
            watch_namespaces: Vec::new(),
            confirmations: 1,
            no_chain_admission: false,
            listen: args.listen,
            lease_name: "drlaas-operator".into(),
            // The same identity on every run: a restarted run holds the Lease at once.
            identity: Some("local".into()),
            lease_seconds: 15,
        })
    }

    /// Lists each paid model of a selling worker on the model market (once: a listing of the same
    /// CID by the same owner counts); true when none is left to list.
    async fn sell_models(&self, tasks: &[DRLTask], sellers: &BTreeMap<String, (Address, String)>) -> bool {
        let mut done = true;
        for task in tasks {
            let Some(status) = &task.status else { continue };
            let paid = status.outcome == Some(drlaas_crds::task::TaskOutcome::Paid);
            let (Some(worker), Some(cid)) = (&status.worker, &status.model_cid) else {
                continue;
            };
            let Some((owner, price)) = sellers.get(worker) else {
                continue;
            };
            if !paid {
                continue;
            }
            match report::list_model(&self.market, task, *owner, cid, price, status).await {
                Ok(()) => {}
                Err(e) => {
                    tracing::warn!(task = ?task.metadata.name, error = %e, "could not list the model");
                    done = false;
                }
            }
        }
        done
    }
}

fn api_secret(api: &ApiServer, namespace: &str, name: &str, key: &PrivateKeySigner) {
    apply(api, "secrets", key_secret(namespace, name, key));
}
