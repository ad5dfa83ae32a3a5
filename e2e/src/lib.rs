//! drlaas cluster tests: the operator against a real Kubernetes API server.
//!
//! [`Cluster::start`] connects with `KUBECONFIG`, installs the CRDs, makes a namespace of its own,
//! starts a fresh anvil chain with the market and registered workers, and runs the operator (the
//! same [`runtime::run`] as `drlaas operator`) in this process. Trainer and evaluator pods run on
//! the cluster's nodes, or, with `DRLAAS_E2E_FAKE_KUBELET=1`, as local processes played by
//! the local mode's [`Kubelet`] on a cluster without nodes.
//!
//! On real nodes the pods need the trainer image (`DRLAAS_E2E_TRAINER_IMAGE`) and a content store
//! they can reach (`DRLAAS_E2E_POD_STORE`, an IPFS API; `DRLAAS_E2E_STORE` is the operator's
//! address of the same node).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use drlaas_chain::alloy::primitives::{Address, U256, utils::parse_ether};
use drlaas_chain::alloy::providers::Provider;
use drlaas_chain::devnet::{Devnet, ORACLE, dev_worker_profile};
use drlaas_chain::{EnvKind, Market, MarketParams};
use drlaas_cli::local::consortium::Member;
use drlaas_crds::task::DRLTask;
use drlaas_crds::worker::Worker;
use drlaas_local::kubelet::Kubelet;
use drlaas_local::local_pod::{LocalPodRunner, build_workspace_binary, locate_trainer};
use drlaas_operator::runtime::{self, OperatorArgs, OperatorConfig};
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::{Namespace, Secret};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{DeleteParams, ObjectMeta, Patch, PatchParams, PostParams};
use kube::{Api, ResourceExt};
use serde_json::json;
use tokio::task::JoinHandle;

pub mod load;
pub mod parity;

/// Price every test worker asks (0.01 ETH).
pub const PRICE_WEI: &str = "10000000000000000";
/// Budget of every test task (0.1 ETH).
pub const BUDGET_WEI: &str = "100000000000000000";

/// A test's slice of a cluster, a chain and a running operator.
pub struct Cluster {
    pub client: kube::Client,
    /// The test's namespace: tasks, Secrets, the operator's Lease and cursor.
    pub namespace: String,
    /// The Worker objects of this test (cluster-scoped, so named after the namespace).
    pub workers: Vec<String>,
    pub devnet: Devnet,
    pub market: Arc<Market>,
    /// Accounts of the workers, in the order of `workers`.
    pub worker_accounts: Vec<Address>,
    pub requester: Address,
    /// Every requester's account, in wallet order (the first is `requester`).
    pub requesters: Vec<Address>,
    /// How the operator of this cluster is run (the flags of `drlaas operator`).
    pub operator_args: OperatorArgs,
    scratch: tempfile::TempDir,
    background: Vec<JoinHandle<()>>,
    /// The other consortium members, each with a cluster of its own (stopped when dropped).
    _members: Vec<Member>,
    /// One test at a time: each runs its own operator, and operators watch every namespace.
    _alone: tokio::sync::MutexGuard<'static, ()>,
}

/// The training part of a cartpole task that trains in a second or two, towards `target`.
pub fn quick_cartpole(target: f64) -> serde_json::Value {
    json!({
        "environment": {"kind": "cartpole"},
        "ppo": {"numEnvs": 4, "numSteps": 16},
        "totalEnvSteps": 640,
        "targetMeanReturn": target,
    })
}

/// The Secret of requester `index`'s wallet in the test namespace.
fn requester_wallet(index: usize) -> String {
    match index {
        0 => "requester-wallet".into(),
        n => format!("requester-wallet-{n}"),
    }
}

/// A port nobody listens on now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// Binary `name` of this workspace (`drlaas` or `drlaas-trainer`). In a test, built from the
/// current source for this process ([`build_workspace_binary`]), so a test never runs a stale
/// build; in the load tool, which checks for them before it starts, the one beside it (for the
/// trainer, [`locate_trainer`]: `DRLAAS_TRAINER_BIN` first).
pub fn workspace_binary(name: &str) -> PathBuf {
    let package = match name {
        "drlaas" => "drlaas-cli",
        "drlaas-trainer" => "drlaas-trainer",
        other => panic!("no workspace binary named {other}"),
    };
    let found = match name {
        _ if in_test_harness() => return build_workspace_binary(name),
        "drlaas-trainer" => locate_trainer(),
        _ => find_workspace_binary(name),
    };
    found.unwrap_or_else(|| panic!("{name} is built: cargo build -p {package} --bin {name}"))
}

/// Whether this process is a test or bench cargo built: those run from `target/PROFILE/deps/`,
/// binaries such as the load tool from `target/PROFILE/`.
fn in_test_harness() -> bool {
    std::env::current_exe().is_ok_and(|exe| exe.parent().and_then(|d| d.file_name()) == Some("deps".as_ref()))
}

/// A binary of this workspace beside this executable (in its directory or the one above, as
/// `target/PROFILE/` holds binaries and `target/PROFILE/deps/` test executables), if it is built:
/// for the load tool, which runs the release build it finds rather than building one.
pub fn find_workspace_binary(name: &str) -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    exe.ancestors()
        .skip(1)
        .take(2)
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}

/// A `drlaas operator` process of a test.
#[derive(Debug)]
pub struct OperatorProcess {
    pub child: std::process::Child,
    /// Its `/metrics` URL.
    pub metrics: String,
}

impl OperatorProcess {
    /// `kill -9`: no shutdown, no Lease released, whatever it was doing cut off.
    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM, as Kubernetes stops a pod; returns once it exited.
    pub fn terminate(mut self) -> std::process::ExitStatus {
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        self.child.wait().unwrap()
    }

    /// Peak resident memory so far in MiB (`VmHWM`), while it runs.
    pub fn peak_rss_mib(&self) -> f64 {
        proc_memory_mib(&format!("/proc/{}/status", self.child.id())).0
    }
}

impl Drop for OperatorProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Prefix of everything a cluster test creates (namespaces, Workers).
const PREFIX: &str = "drlaas-e2e-";

static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster")
            .field("namespace", &self.namespace)
            .field("workers", &self.workers)
            .finish_non_exhaustive()
    }
}

/// Whether pods are played by the fake kubelet (`DRLAAS_E2E_FAKE_KUBELET=1`).
pub fn fake_kubelet() -> bool {
    std::env::var("DRLAAS_E2E_FAKE_KUBELET").is_ok_and(|v| v == "1" || v == "true")
}

/// How a test runs the operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OperatorMode {
    /// [`runtime::run`] in the test's process, started by [`Cluster::start`].
    InProcess,
    /// None yet: the test starts `drlaas operator` processes itself ([`Cluster::spawn_operator`]),
    /// to kill, stop and restart them.
    Processes,
}

/// What a test cluster is set up with.
#[derive(Debug, Clone)]
pub struct Setup {
    /// Registered workers (each with a Worker object and a key Secret).
    pub workers: usize,
    /// Tasks each worker runs at once.
    pub concurrent_tasks: u32,
    /// Requester wallets (Secrets `requester-wallet`, `requester-wallet-1`, ...).
    pub requesters: usize,
    pub operator: OperatorMode,
    /// The operator's standard environment image (`--environment-image`): none, as a chart
    /// installed without one, unless a test sets it. The fake kubelet runs environment sidecars with
    /// this machine's Python whatever the image.
    pub environment_image: Option<String>,
    /// Other consortium members besides this cluster's operator (0: a one-member consortium). Each
    /// runs its own operator runtime, with its own oracle key, against a cluster of its own (an
    /// in-memory API server and a local kubelet), as another member's cluster would be.
    pub other_members: usize,
    /// Votes that must agree (a majority of the `1 + other_members` oracles).
    pub quorum: u8,
}

/// Seconds each consortium member's turn to propose lasts in the tests (blocks come twice a second).
const TEST_PROPOSAL_TURN_SECONDS: u64 = 3;

impl Setup {
    /// `workers` workers of `concurrent_tasks` slots, one requester, the operator in process.
    pub fn new(workers: usize, concurrent_tasks: u32) -> Setup {
        Setup {
            workers,
            concurrent_tasks,
            requesters: 1,
            operator: OperatorMode::InProcess,
            environment_image: None,
            other_members: 0,
            quorum: 1,
        }
    }
}

/// Dev accounts before the first requester: admin, oracle (and one spare).
const FIRST_REQUESTER: usize = 2;

impl Cluster {
    /// Sets up a namespace, a chain with `workers` registered workers, and starts the operator.
    pub async fn start(workers: usize, concurrent_tasks: u32) -> Cluster {
        Cluster::start_with(Setup::new(workers, concurrent_tasks)).await
    }

    /// Sets up a namespace, a chain, workers and requesters as `setup` says, and starts the
    /// operator in process unless the test runs its own.
    pub async fn start_with(setup: Setup) -> Cluster {
        let (workers, concurrent_tasks) = (setup.workers, setup.concurrent_tasks);
        let client = kube::Client::try_default()
            .await
            .expect("a cluster to test against: set KUBECONFIG");
        let alone = ONE_AT_A_TIME.lock().await;
        install_crds(&client).await;
        remove_leftovers(&client).await;
        // Unique per test (tests of one binary share a process) and per run.
        static STARTED: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let suffix = format!(
            "{:x}{:x}",
            nanos ^ std::process::id(),
            STARTED.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        );
        let namespace = format!("{PREFIX}{suffix}");
        create_namespace(&client, &namespace)
            .await
            .expect("the test namespace is created");

        let requesters = setup.requesters.max(1);
        let first_member = FIRST_REQUESTER + requesters + workers + 1;
        let devnet =
            Devnet::spawn((first_member + setup.other_members) as u16).expect("anvil starts (run tools/setup.sh)");
        let accounts = devnet.accounts();
        let requester = accounts[FIRST_REQUESTER];
        let first_worker = FIRST_REQUESTER + requesters;
        // This cluster's operator holds seat 0; the other members the accounts after everyone else.
        let oracles: Vec<usize> = std::iter::once(ORACLE)
            .chain(first_member..first_member + setup.other_members)
            .collect();
        let market = devnet
            .deploy_consortium(MarketParams::default(), &oracles, setup.quorum)
            .await
            .expect("the market deploys");
        let secrets: Api<Secret> = Api::namespaced(client.clone(), &namespace);
        let key_secret = |name: &str, index: usize| Secret {
            metadata: ObjectMeta {
                name: Some(name.into()),
                ..ObjectMeta::default()
            },
            data: Some(BTreeMap::from([(
                "privateKey".to_string(),
                ByteString(devnet.signers()[index].to_bytes().to_string().into_bytes()),
            )])),
            ..Secret::default()
        };
        for r in 0..requesters {
            secrets
                .create(
                    &PostParams::default(),
                    &key_secret(&requester_wallet(r), FIRST_REQUESTER + r),
                )
                .await
                .unwrap();
        }

        let mut names = Vec::new();
        let worker_accounts: Vec<Address> = accounts[first_worker..first_worker + workers].to_vec();
        for (i, address) in worker_accounts.iter().enumerate() {
            let name = format!("{namespace}-w{i}");
            let profile = dev_worker_profile(&[EnvKind::Cartpole], PRICE_WEI.parse().unwrap());
            market
                .register_worker(*address, &profile, parse_ether("2").unwrap())
                .await
                .unwrap();
            secrets
                .create(
                    &PostParams::default(),
                    &key_secret(&format!("{name}-key"), first_worker + i),
                )
                .await
                .unwrap();
            let worker: Worker = serde_json::from_value(json!({
                "apiVersion": "drlaas.io/v1alpha1", "kind": "Worker",
                "metadata": {"name": name},
                "spec": {
                    "address": address.to_string(),
                    // Room for `concurrent_tasks` test trainers (1 CPU, 1 GiB each), at least a big node.
                    "capacity": {
                        "gpus": 0,
                        "cpuCores": concurrent_tasks.max(64),
                        "memoryGib": concurrent_tasks.max(256),
                        "concurrentTasks": concurrent_tasks,
                        "nodeCpuCores": 64,
                    },
                    "expertise": {"cartpole": 0.8, "gymnasium": 0.5},
                    "pricePerTaskWei": PRICE_WEI,
                    "keySecretRef": {"name": format!("{name}-key")},
                },
            }))
            .unwrap();
            Api::<Worker>::all(client.clone())
                .create(&PostParams::default(), &worker)
                .await
                .unwrap();
            names.push(name);
        }

        let scratch = tempfile::tempdir().unwrap();
        let deployment = scratch.path().join("deployment.json");
        std::fs::write(&deployment, serde_json::to_string(market.deployment()).unwrap()).unwrap();
        let oracle_key = scratch.path().join("oracle.key");
        std::fs::write(&oracle_key, devnet.signers()[ORACLE].to_bytes().to_string()).unwrap();
        let local_store = scratch.path().join("store").display().to_string();
        let store = std::env::var("DRLAAS_E2E_STORE").unwrap_or_else(|_| local_store.clone());
        let pod_store = if fake_kubelet() {
            store.clone()
        } else {
            std::env::var("DRLAAS_E2E_POD_STORE")
                .expect("pods on real nodes need a content store they can reach: set DRLAAS_E2E_POD_STORE")
        };
        let args = OperatorArgs {
            rpc_url: devnet.endpoint().to_string(),
            deployment,
            oracle_key_file: oracle_key,
            store: store.clone(),
            pod_store: Some(pod_store),
            trainer_image: std::env::var("DRLAAS_E2E_TRAINER_IMAGE").unwrap_or_else(|_| "drlaas/trainer:0.1.0".into()),
            environment_image: setup.environment_image.clone(),
            environment_cpu: "1".into(),
            environment_memory: "1Gi".into(),
            environment_servers: 2,
            namespace: namespace.clone(),
            watch_namespaces: vec![namespace.clone()],
            confirmations: 0,
            no_chain_admission: false,
            proposal_turn_seconds: if setup.other_members > 0 {
                TEST_PROPOSAL_TURN_SECONDS
            } else {
                drlaas_core::consortium::PROPOSAL_TURN_SECONDS
            },
            listen: "127.0.0.1:0".parse().unwrap(),
            lease_name: format!("drlaas-e2e-{suffix}"),
            identity: Some(format!("e2e-{suffix}")),
            lease_seconds: 15,
        };
        let mut background = Vec::new();
        if setup.operator == OperatorMode::InProcess {
            let args = args.clone();
            background.push(tokio::spawn(async move {
                if let Err(e) = runtime::run(args).await {
                    panic!("the operator stopped: {e}");
                }
            }));
        }
        // A live chain makes blocks on its own; the evaluation seed waits for one.
        let provider = devnet.provider();
        background.push(tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_millis(500)).await;
                let _: Result<serde_json::Value, _> = provider.raw_request("anvil_mine".into(), (1,)).await;
            }
        }));
        if fake_kubelet() {
            let runner = LocalPodRunner::new(
                workspace_binary("drlaas-trainer"),
                scratch.path().join("pods"),
                store,
                1,
            );
            background.push(tokio::spawn(
                Kubelet::new(client.clone(), Some(namespace.clone()), runner, 4).run(),
            ));
        }
        let mut members = Vec::new();
        for (seat, &account) in oracles.iter().enumerate().skip(1) {
            let config = OperatorConfig {
                trainer_image: args.trainer_image.clone(),
                confirmations: 0,
                proposal_turn_seconds: TEST_PROPOSAL_TURN_SECONDS,
                listen: "127.0.0.1:0".parse().unwrap(),
                identity: Some(format!("member-{seat}")),
                ..OperatorConfig::new(
                    devnet.endpoint().to_string(),
                    *market.deployment(),
                    devnet.signers()[account].clone(),
                    args.store.clone(),
                )
            };
            let trainer = workspace_binary("drlaas-trainer");
            members.push(Member::start(seat, config, trainer, scratch.path()).expect("a consortium member starts"));
        }
        Cluster {
            client,
            namespace,
            workers: names,
            devnet,
            market: Arc::new(market),
            worker_accounts,
            requester,
            requesters: accounts[FIRST_REQUESTER..FIRST_REQUESTER + requesters].to_vec(),
            operator_args: args,
            scratch,
            background,
            _members: members,
            _alone: alone,
        }
    }

    /// Starts `drlaas operator` ([`workspace_binary`]) as replica `identity`, with this
    /// cluster's chain, store and Lease, as the kubeconfig `kubeconfig` (default: `KUBECONFIG`).
    /// Its log goes to `operator-IDENTITY.log` in the scratch directory.
    pub fn spawn_operator(&self, identity: &str, kubeconfig: Option<&Path>) -> OperatorProcess {
        let port = free_port();
        let a = &self.operator_args;
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.scratch.path().join(format!("operator-{identity}.log")))
            .unwrap();
        let mut command = std::process::Command::new(workspace_binary("drlaas"));
        command
            .arg("operator")
            .args(["--rpc-url", &a.rpc_url])
            .arg("--deployment")
            .arg(&a.deployment)
            .arg("--oracle-key-file")
            .arg(&a.oracle_key_file)
            .args(["--store", &a.store])
            .args(["--pod-store", a.pod_store.as_deref().unwrap_or(&a.store)])
            .args(["--trainer-image", &a.trainer_image])
            .args(["--namespace", &a.namespace])
            .args(["--watch-namespaces", &a.watch_namespaces.join(",")])
            .args(["--confirmations", &a.confirmations.to_string()])
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .args(["--lease-name", &a.lease_name])
            .args(["--identity", identity])
            .args(["--lease-seconds", &a.lease_seconds.to_string()])
            .env("RUST_LOG", "info,kube_runtime=warn")
            .stdin(std::process::Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log);
        if let Some(kubeconfig) = kubeconfig {
            command.env("KUBECONFIG", kubeconfig);
        }
        let child = command
            .spawn()
            .expect("drlaas operator starts (cargo build -p drlaas-operator)");
        OperatorProcess {
            child,
            metrics: format!("http://127.0.0.1:{port}/metrics"),
        }
    }

    /// The Secret name of requester `index`'s wallet.
    pub fn requester_wallet(&self, index: usize) -> String {
        requester_wallet(index)
    }

    /// The DRLTask API of the test's namespace.
    pub fn tasks(&self) -> Api<DRLTask> {
        Api::namespaced(self.client.clone(), &self.namespace)
    }

    /// Applies a quick cartpole task paid from the requester's wallet.
    pub async fn apply_task(&self, name: &str, target: f64) -> DRLTask {
        self.apply_task_from(name, target, 0).await
    }

    /// Applies a quick cartpole task paid from requester `requester`'s wallet.
    pub async fn apply_task_from(&self, name: &str, target: f64, requester: usize) -> DRLTask {
        self.apply_training(name, quick_cartpole(target), requester).await
    }

    /// Applies a task training `training`, paid from requester `requester`'s wallet.
    pub async fn apply_training(&self, name: &str, training: serde_json::Value, requester: usize) -> DRLTask {
        let task: DRLTask = serde_json::from_value(json!({
            "apiVersion": "drlaas.io/v1alpha1", "kind": "DRLTask",
            "metadata": {"name": name},
            "spec": {
                "training": training,
                "resources": {"cpu": "1", "memory": "1Gi"},
                "payment": {"amountWei": BUDGET_WEI, "walletSecretRef": {"name": requester_wallet(requester)}},
            },
        }))
        .unwrap();
        self.tasks()
            .patch(name, &PatchParams::apply("drlaas-e2e").force(), &Patch::Apply(&task))
            .await
            .expect("the API server accepts the task")
    }

    /// Waits until task `name` satisfies `done`, or fails after `timeout` showing where it is.
    pub async fn wait_for(
        &self,
        name: &str,
        timeout: Duration,
        done: impl Fn(Option<&DRLTask>) -> bool,
    ) -> Option<DRLTask> {
        let start = Instant::now();
        loop {
            let task = self.tasks().get_opt(name).await.expect("the API server answers");
            if done(task.as_ref()) {
                return task;
            }
            assert!(
                start.elapsed() < timeout,
                "task {name} did not get there in {timeout:?}; status: {:?}",
                task.and_then(|t| t.status)
            );
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    /// The account recruited for `worker`.
    pub fn account_of(&self, worker: &str) -> Address {
        let i = self
            .workers
            .iter()
            .position(|w| w == worker)
            .expect("one of the test's workers");
        self.worker_accounts[i]
    }

    /// Credits of `account` in TMC.
    pub async fn tmc_credits(&self, account: Address) -> U256 {
        self.market.credits(account).await.unwrap().tmc
    }

    /// The scratch directory (store, pods' directories).
    pub fn scratch(&self) -> PathBuf {
        self.scratch.path().to_path_buf()
    }

    /// Stops the operator and removes what the test created in the cluster.
    pub async fn stop(self) {
        for handle in &self.background {
            handle.abort();
        }
        for worker in &self.workers {
            let _ = Api::<Worker>::all(self.client.clone())
                .delete(worker, &DeleteParams::default())
                .await;
        }
        // Tasks keep their finalizer without an operator: release them so the namespace can go.
        if let Ok(tasks) = self.tasks().list(&Default::default()).await {
            for task in tasks {
                let _ = self
                    .tasks()
                    .patch(
                        &task.name_any(),
                        &PatchParams::default(),
                        &Patch::Merge(json!({"metadata": {"finalizers": null}})),
                    )
                    .await;
            }
        }
        let _ = Api::<Namespace>::all(self.client.clone())
            .delete(&self.namespace, &DeleteParams::default())
            .await;
    }
}

/// Creates namespace `name`.
pub async fn create_namespace(client: &kube::Client, name: &str) -> Result<(), kube::Error> {
    let namespace = Namespace {
        metadata: ObjectMeta {
            name: Some(name.to_string()),
            ..ObjectMeta::default()
        },
        ..Namespace::default()
    };
    Api::<Namespace>::all(client.clone())
        .create(&PostParams::default(), &namespace)
        .await
        .map(|_| ())
}

/// Removes what an earlier, interrupted run left: its Workers, and its namespaces with their tasks
/// (whose finalizers no operator will release now). Otherwise this run's operator would drive them.
async fn remove_leftovers(client: &kube::Client) {
    let workers = Api::<Worker>::all(client.clone());
    for worker in workers
        .list(&Default::default())
        .await
        .map(|l| l.items)
        .unwrap_or_default()
    {
        if worker.name_any().starts_with(PREFIX) {
            let _ = workers.delete(&worker.name_any(), &DeleteParams::default()).await;
        }
    }
    let tasks = Api::<DRLTask>::all(client.clone());
    for task in tasks
        .list(&Default::default())
        .await
        .map(|l| l.items)
        .unwrap_or_default()
    {
        let namespace = task.namespace().unwrap_or_default();
        if namespace.starts_with(PREFIX) {
            let _ = Api::<DRLTask>::namespaced(client.clone(), &namespace)
                .patch(
                    &task.name_any(),
                    &PatchParams::default(),
                    &Patch::Merge(json!({"metadata": {"finalizers": null}})),
                )
                .await;
        }
    }
    let namespaces = Api::<Namespace>::all(client.clone());
    for namespace in namespaces
        .list(&Default::default())
        .await
        .map(|l| l.items)
        .unwrap_or_default()
    {
        if namespace.name_any().starts_with(PREFIX) {
            let _ = namespaces.delete(&namespace.name_any(), &DeleteParams::default()).await;
        }
    }
}

/// Applies the CRDs (server-side) and waits until the API server serves them.
pub async fn install_crds(client: &kube::Client) {
    let api = Api::<CustomResourceDefinition>::all(client.clone());
    for crd in drlaas_crds::crds() {
        let name = crd.name_any();
        api.patch(&name, &PatchParams::apply("drlaas-e2e").force(), &Patch::Apply(&crd))
            .await
            .expect("the CRDs install (cluster-admin needed)");
        let start = Instant::now();
        loop {
            let established = api.get(&name).await.ok().and_then(|c| c.status).is_some_and(|s| {
                s.conditions
                    .unwrap_or_default()
                    .iter()
                    .any(|c| c.type_ == "Established" && c.status == "True")
            });
            if established {
                break;
            }
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "CRD {name} is not established"
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
}

/// The `p`-quantile (0..=1) of `values`, by nearest rank.
pub fn quantile(values: &[f64], p: f64) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let rank = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

/// This process's peak and current resident memory in MiB (`VmHWM`, `VmRSS`).
pub fn memory_mib() -> (f64, f64) {
    proc_memory_mib("/proc/self/status")
}

/// Peak and current resident memory in MiB from a `/proc/PID/status` file.
fn proc_memory_mib(path: &str) -> (f64, f64) {
    let status = std::fs::read_to_string(path).unwrap_or_default();
    let field = |key: &str| {
        status
            .lines()
            .find(|l| l.starts_with(key))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|kb| kb.parse::<f64>().ok())
            .map_or(f64::NAN, |kb| kb / 1024.0)
    };
    (field("VmHWM:"), field("VmRSS:"))
}

#[cfg(test)]
mod tests {
    use super::quantile;

    #[test]
    fn quantiles_by_nearest_rank() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(quantile(&v, 0.5), 50.0);
        assert_eq!(quantile(&v, 0.99), 99.0);
        assert_eq!(quantile(&[3.0], 0.99), 3.0);
        assert!(quantile(&[], 0.5).is_nan());
    }
}
