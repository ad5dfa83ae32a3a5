//! `drlaas local run TASK.yaml…`: the marketplace on this machine, start to finish.
//!
//! 1. The tasks are read and checked first: a mistake stops the run before anything is escrowed.
//! 2. The data directory's chain (anvil, or `--rpc-url`) gets the contracts if it has none; the
//!    workers of the config register on it with their stake.
//! 3. The embedded API server opens with every object of earlier runs; the workers, their key
//!    Secrets, the requester's wallet Secrets and the tasks are applied to it.
//! 4. The operator runtime of a cluster ([`runtime::run_with`]) runs against it, given its
//!    settings as a value ([`OperatorConfig`]: the deployment and the oracle's key, nothing written
//!    to disk), with the local kubelet running its pods as trainer processes, until every task is
//!    settled ([`super::progress`] shows where each is); workers that sell their models list them
//!    on the market once paid ([`super::listings`]).
//! 5. A table of the outcomes is printed ([`super::outcomes`], also `report.json`), with a learning
//!    curve per task in the data directory ([`super::curves`]).
//!
//! Killing the run at any point loses nothing: the chain and the API server's journal outlive it,
//! and the controllers take every task up where the chain says it is.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use drlaas_chain::alloy::primitives::Address;
use drlaas_chain::alloy::signers::local::PrivateKeySigner;
use drlaas_chain::devnet::{self, ADMIN};
use drlaas_chain::{Market, MarketParams, ReachError, deploy_marketplace, reach};
use drlaas_crds::task::{DRLTask, TaskPhase};
use drlaas_store::{ContentStore, Store};
use serde_json::{Value, json};

use super::consortium::{self, LOCAL_PROPOSAL_TURN_SECONDS, Member};
use super::curves;
use super::listings::{Sellers, list_paid_models};
use super::outcomes;
use super::progress::Progress;
use crate::manifest;
use drlaas_core::admission::{ChainRecord, parse_wei, target_at_random, task_demand, worker_offer};
use drlaas_core::recruitment::{Resources, feasible};
use drlaas_local::api_server::ApiServer;
use drlaas_local::chain::{self, LocalChain};
use drlaas_local::kubelet::Kubelet;
use drlaas_local::local_pod::{LocalPodRunner, locate_trainer};
use drlaas_local::network::{self, Network};
use drlaas_local::workers::{Behavior, REQUESTER_ACCOUNT, WorkersConfig, key_secret};
use drlaas_operator::pods::EnvironmentSidecars;
use drlaas_operator::runtime::{self, OperatorConfig};

/// The operator's namespace in the local mode (worker keys, the chain cursor, the Lease).
pub const SYSTEM_NAMESPACE: &str = "drlaas-system";

/// `drlaas local run`.
#[derive(Debug, Clone, clap::Args)]
pub struct RunArgs {
    /// DRLTask YAML files to run (each may hold several documents). Without any, the tasks of
    /// earlier runs in the data directory are resumed.
    pub tasks: Vec<PathBuf>,
    /// Where the chain, the content store, the API server's journal, pod logs, learning curves and
    /// the outcomes (report.json) live.
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
    /// Members of the consortium, each with its own oracle key and operator (1 to 4). Fixed when
    /// the data directory's marketplace is deployed.
    #[arg(long, default_value_t = 1, value_name = "N")]
    pub oracles: u8,
    /// Votes that must agree to assign, pay or fail (default: the smallest majority of --oracles).
    #[arg(long, value_name = "K")]
    pub quorum: Option<u8>,
    /// Make the last D members dishonest: they check nothing, second every proposal and vote to
    /// pay every result (at most --oracles minus --quorum, so the honest members still decide).
    #[arg(long, default_value_t = 0, value_name = "D")]
    pub dishonest_oracles: u8,
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
/// returns the outcome of each task.
pub async fn run(args: RunArgs) -> Result<Vec<outcomes::Row>, LocalError> {
    let data_dir = network::data_dir(args.data_dir.clone());
    std::fs::create_dir_all(&data_dir).map_err(|e| setup(format!("--data-dir {}: {e}", data_dir.display())))?;
    let mut tasks = Vec::new();
    for path in &args.tasks {
        let loaded = manifest::load_tasks(path, manifest::Destination::Cluster)?;
        // Said before anything is escrowed, as the operator's TargetAtRandom Warning says it.
        for task in &loaded {
            if let Some(low) = target_at_random(&task.spec) {
                let name = task.metadata.name.as_deref().unwrap_or_default();
                eprintln!("warning: {}, task {name}: {low}", path.display());
            }
        }
        tasks.extend(loaded);
    }
    let trainer = locate_trainer().filter(|p| p.is_file()).ok_or_else(|| {
        setup(
            "the trainer binary (drlaas-trainer) is not beside drlaas: build it (cargo build -p drlaas-trainer) \
             or set DRLAAS_TRAINER_BIN",
        )
    })?;
    let members = Consortium::of(&args)?;
    let marketplace = open_marketplace(&args, &data_dir, &members).await?;
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

    let operator = tokio::spawn(runtime::run_with(
        marketplace.operator_config(&args, &members, 0),
        Some(api.client()),
    ));
    // The other members: honest ones with clusters of their own, then the dishonest ones.
    let mut others = Vec::new();
    let mut dishonest = Vec::new();
    for seat in 1..members.accounts.len() {
        let oracle = marketplace.signers[members.accounts[seat]].address();
        if seat >= members.accounts.len() - usize::from(members.dishonest) {
            dishonest.push(tokio::spawn(consortium::dishonest_oracle(
                marketplace.market.clone(),
                oracle,
            )));
        } else {
            let config = marketplace.operator_config(&args, &members, seat);
            others.push(Member::start(seat, config, trainer.clone(), &data_dir).map_err(setup)?);
        }
    }
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

    let sellers = Sellers::of(&marketplace.workers, &addresses);
    let mut display = Progress::new(args.plain);
    let started = Instant::now();
    let mut operator = Some(operator);
    let outcome = loop {
        if others.iter().any(Member::stopped) {
            break Err(setup("a consortium member's operator stopped; see drlaas.log"));
        }
        if let Some(finished) = operator.take_if(|o| o.is_finished()) {
            break match finished.await {
                Ok(Ok(())) => Err(setup("stopped before every task settled; run again to resume")),
                Ok(Err(e)) => Err(LocalError::Operator(e)),
                Err(e) => Err(setup(format!("the operator panicked: {e}"))),
            };
        }
        let tasks = typed_tasks(&api);
        display.update(&tasks);
        let sold = list_paid_models(&marketplace.market, &tasks, &sellers).await;
        let settled = !tasks.is_empty() && tasks.iter().all(|t| phase(t) == Some(TaskPhase::Settled));
        if settled && sold && !args.serve {
            break Ok(());
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    kubelet.abort();
    drop(others);
    for oracle in dishonest {
        oracle.abort();
    }
    if let Some(ticker) = ticker {
        ticker.abort();
    }
    display.finish();
    if let Some(operator) = operator {
        operator.abort();
    }
    outcome?;
    let tasks = typed_tasks(&api);
    let rows = outcomes::rows(&marketplace.market, &tasks).await;
    curves::write_curves(&data_dir, &tasks);
    outcomes::write_json(&data_dir, &rows);
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

/// The consortium a run asks for: its members' dev accounts by seat, the quorum and how many of the
/// last seats are dishonest.
struct Consortium {
    accounts: Vec<usize>,
    quorum: u8,
    dishonest: u8,
}

impl Consortium {
    fn of(args: &RunArgs) -> Result<Consortium, LocalError> {
        let accounts = consortium::oracle_accounts(args.oracles).map_err(setup)?;
        let quorum = consortium::quorum(args.oracles, args.quorum).map_err(setup)?;
        if args.dishonest_oracles > args.oracles - quorum {
            return Err(setup(format!(
                "--dishonest-oracles {}: with {} oracles and quorum {quorum}, at most {} may be dishonest, \
                 or they could settle tasks alone",
                args.dishonest_oracles,
                args.oracles,
                args.oracles - quorum
            )));
        }
        Ok(Consortium {
            accounts,
            quorum,
            dishonest: args.dishonest_oracles,
        })
    }
}

async fn open_marketplace(args: &RunArgs, data_dir: &Path, members: &Consortium) -> Result<Marketplace, LocalError> {
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
                .map(crate::connect::dev_account)
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| setup(e.to_string()))?;
            (url.clone(), signers, false)
        }
        None => {
            let LocalChain { endpoint, signers } = chain::start_or_reuse(data_dir).await.map_err(setup)?;
            (endpoint, signers, true)
        }
    };
    let (provider, _) = reach(&endpoint, Duration::from_secs(5)).await.map_err(|e| match e {
        ReachError::NotAUrl(_) => setup(format!("--rpc-url {endpoint:?}: {e}")),
        _ => setup(format!("cannot reach the chain at {endpoint}: {e}; is it running?")),
    })?;
    let wallet = devnet::wallet(signers.iter().cloned());
    let recorded = Network::load(data_dir).map_err(|e| setup(e.to_string()))?;
    // The recorded contracts, if this chain has them (a restarted local chain has the same).
    let reusable = match recorded.as_ref().filter(|n| owns_chain || n.rpc_url == endpoint) {
        Some(n) => Market::open(provider.clone(), wallet.clone(), n.deployment).await.ok(),
        None => None,
    };
    let oracles: Vec<Address> = members.accounts.iter().map(|&a| signers[a].address()).collect();
    let market = match reusable {
        Some(market) => {
            let deployed = market.consortium().await?;
            if deployed.oracles != oracles || deployed.quorum != members.quorum {
                return Err(setup(format!(
                    "the marketplace of {} has {} oracles with quorum {}, not --oracles {} --quorum {}: \
                     give the same, or use another --data-dir",
                    data_dir.display(),
                    deployed.oracles.len(),
                    deployed.quorum,
                    oracles.len(),
                    members.quorum
                )));
            }
            market
        }
        None => {
            let admin = signers[ADMIN].address();
            let deployed = deploy_marketplace(
                provider,
                wallet,
                admin,
                MarketParams::default(),
                &oracles,
                members.quorum,
            )
            .await;
            deployed.map_err(|e| setup(format!("could not deploy the marketplace on {endpoint}: {e}")))?
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
            Err(_) => WorkersConfig::default_pool(drlaas_local::workers::nvidia_driver()),
        },
    };
    if let Some(w) = workers.workers.iter().find(|w| members.accounts.contains(&w.account)) {
        return Err(setup(format!(
            "worker {} uses dev account {}, which is an oracle's with --oracles {}: give it another account",
            w.name,
            w.account,
            members.accounts.len()
        )));
    }
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
                reputation: record.map_or(0.0, |r| r.reputation.as_f64()),
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

    /// The operator of consortium member `seat` of this marketplace, as its oracle account,
    /// watching every namespace of its cluster.
    fn operator_config(&self, args: &RunArgs, members: &Consortium, seat: usize) -> OperatorConfig {
        OperatorConfig {
            trainer_image: "drlaas/trainer:local".into(),
            // Pods get environment sidecars; the local kubelet runs them with this machine's
            // Python (DRLAAS_ENV_PYTHON, else python3), whatever the image.
            environments: EnvironmentSidecars {
                image: Some("drlaas/environment:local".into()),
                ..EnvironmentSidecars::default()
            },
            namespace: SYSTEM_NAMESPACE.into(),
            confirmations: 1,
            // Member 0's endpoints where asked; the others' anywhere free.
            listen: if seat == 0 {
                args.listen
            } else {
                "127.0.0.1:0".parse().expect("a socket address")
            },
            proposal_turn_seconds: LOCAL_PROPOSAL_TURN_SECONDS,
            // The same identity on every run (each member has its own API server): a restarted run
            // holds the Lease at once.
            identity: Some("local".into()),
            ..OperatorConfig::new(
                self.network.rpc_url.clone(),
                self.network.deployment,
                self.signers[members.accounts[seat]].clone(),
                self.network.store.clone(),
            )
        }
    }
}

fn api_secret(api: &ApiServer, namespace: &str, name: &str, key: &PrivateKeySigner) {
    apply(api, "secrets", key_secret(namespace, name, key));
}
