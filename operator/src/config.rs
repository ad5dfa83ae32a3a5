//! The operator's settings: the `drlaas operator` flags ([`OperatorArgs`], each with the
//! environment variable the Helm chart sets) and what they resolve to ([`OperatorConfig`]: the
//! deployment and the oracle key read and checked). The local mode and the tests build an
//! [`OperatorConfig`] directly, so nothing is written to a file only to be read back.

use std::net::SocketAddr;
use std::path::PathBuf;

use drlaas_chain::alloy::signers::local::PrivateKeySigner;
use drlaas_chain::{Deployment, read_deployment};

use crate::controller::scope::parse_namespace;
use crate::pods::EnvironmentSidecars;
use crate::runtime::RunError;
use drlaas_core::consortium::PROPOSAL_TURN_SECONDS;

/// `--rpc-url`'s default.
pub const DEFAULT_RPC_URL: &str = "http://127.0.0.1:8545";
/// `--trainer-image`'s default.
pub const DEFAULT_TRAINER_IMAGE: &str = "drlaas/trainer:0.1.0";
/// `--namespace`'s default.
pub const DEFAULT_NAMESPACE: &str = "drlaas-system";
/// `--confirmations`' default.
pub const DEFAULT_CONFIRMATIONS: u64 = 2;
/// `--listen`'s default.
pub const DEFAULT_LISTEN: &str = "0.0.0.0:8080";
/// `--lease-name`'s default.
pub const DEFAULT_LEASE_NAME: &str = "drlaas-operator";
/// `--lease-seconds`' default.
pub const DEFAULT_LEASE_SECONDS: i32 = 15;

/// How `drlaas operator` is configured: flags, or the environment variables named beside them
/// (the Helm chart sets those). [`OperatorArgs::resolve`] turns them into an [`OperatorConfig`].
#[derive(Debug, Clone, clap::Args)]
pub struct OperatorArgs {
    /// JSON-RPC endpoint of the chain.
    #[arg(long, env = "DRLAAS_RPC_URL", default_value = DEFAULT_RPC_URL)]
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
    #[arg(long, env = "DRLAAS_TRAINER_IMAGE", default_value = DEFAULT_TRAINER_IMAGE)]
    pub trainer_image: String,
    /// The standard environment image (Python, gymnasium, pettingzoo, drlaas-envserver), run as
    /// the environment sidecar of the pods of `gymnasium` and `pettingzoo` tasks that do not name
    /// their own image. Without it such a task waits with a Warning instead of failing the worker it
    /// is given (a task with its own `environment.image` runs either way).
    #[arg(long, env = "DRLAAS_ENVIRONMENT_IMAGE")]
    pub environment_image: Option<String>,
    /// CPU of each environment sidecar (request and limit, on top of the task's).
    #[arg(long, env = "DRLAAS_ENVIRONMENT_CPU", default_value = "1")]
    pub environment_cpu: String,
    /// Memory of each environment sidecar (request and limit, on top of the task's).
    #[arg(long, env = "DRLAAS_ENVIRONMENT_MEMORY", default_value = "1Gi")]
    pub environment_memory: String,
    /// Server processes of each environment sidecar (environments step in parallel across them;
    /// the trainer uses one per 16 environments, up to 4).
    #[arg(long, env = "DRLAAS_ENVIRONMENT_SERVERS", default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..=16))]
    pub environment_servers: u32,
    /// The operator's namespace: worker key Secrets, the chain cursor, the Lease, mirrored tasks.
    #[arg(long, env = "POD_NAMESPACE", default_value = DEFAULT_NAMESPACE)]
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
    #[arg(long, env = "DRLAAS_CONFIRMATIONS", default_value_t = DEFAULT_CONFIRMATIONS)]
    pub confirmations: u64,
    /// Do not mirror tasks posted on chain (only DRLTasks applied in the cluster are run).
    #[arg(long)]
    pub no_chain_admission: bool,
    /// In a consortium (several oracles): seconds of chain time each member's turn to propose a
    /// task's worker lasts. Every member must use the same value.
    #[arg(long, env = "DRLAAS_PROPOSAL_TURN_SECONDS", default_value_t = PROPOSAL_TURN_SECONDS,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub proposal_turn_seconds: u64,
    /// Address of the metrics and health endpoints.
    #[arg(long, env = "DRLAAS_LISTEN", default_value = DEFAULT_LISTEN)]
    pub listen: SocketAddr,
    /// Name of the leader Lease.
    #[arg(long, default_value = DEFAULT_LEASE_NAME)]
    pub lease_name: String,
    /// This replica's identity in the Lease (default: the pod name, else the host name).
    #[arg(long, env = "POD_NAME")]
    pub identity: Option<String>,
    /// Seconds a Lease lasts without renewal.
    #[arg(long, default_value_t = DEFAULT_LEASE_SECONDS)]
    pub lease_seconds: i32,
}

/// What the operator runs with: [`OperatorArgs`] resolved, the deployment and the oracle key as
/// values. [`OperatorConfig::new`] gives the flags' defaults for the rest.
#[derive(Debug, Clone)]
pub struct OperatorConfig {
    /// JSON-RPC endpoint of the chain.
    pub rpc_url: String,
    /// The marketplace's contracts.
    pub deployment: Deployment,
    /// The oracle account's key: it assigns and settles tasks.
    pub oracle_key: PrivateKeySigner,
    /// Content store of the operator: an IPFS API URL, or a directory.
    pub store: String,
    /// Content store address given to trainer and evaluator pods (`None`: `store`).
    pub pod_store: Option<String>,
    /// Trainer image of the pods, unless a Worker names its own.
    pub trainer_image: String,
    /// The environment sidecar of pods on external environments; see
    /// [`OperatorArgs::environment_image`].
    pub environments: EnvironmentSidecars,
    /// The operator's namespace.
    pub namespace: String,
    /// Namespaces whose DRLTasks and pods the operator watches (none: every namespace); see
    /// [`OperatorArgs::watch_namespaces`].
    pub watch_namespaces: Vec<String>,
    /// Blocks on top of a `TaskPosted` event before it is mirrored.
    pub confirmations: u64,
    /// Whether tasks posted on chain are mirrored into DRLTasks.
    pub chain_admission: bool,
    /// Seconds each consortium member's turn to propose lasts.
    pub proposal_turn_seconds: u64,
    /// Address of the metrics and health endpoints.
    pub listen: SocketAddr,
    /// Name of the leader Lease.
    pub lease_name: String,
    /// This replica's identity in the Lease (`None`: the host name).
    pub identity: Option<String>,
    /// Seconds a Lease lasts without renewal.
    pub lease_seconds: i32,
}

impl OperatorConfig {
    /// The operator of `deployment` on the chain at `rpc_url`, as oracle `oracle_key`, with its
    /// content store at `store`, and every other setting at its flag's default.
    pub fn new(rpc_url: String, deployment: Deployment, oracle_key: PrivateKeySigner, store: String) -> Self {
        OperatorConfig {
            rpc_url,
            deployment,
            oracle_key,
            store,
            pod_store: None,
            trainer_image: DEFAULT_TRAINER_IMAGE.into(),
            environments: EnvironmentSidecars::default(),
            namespace: DEFAULT_NAMESPACE.into(),
            watch_namespaces: Vec::new(),
            confirmations: DEFAULT_CONFIRMATIONS,
            chain_admission: true,
            proposal_turn_seconds: PROPOSAL_TURN_SECONDS,
            listen: DEFAULT_LISTEN.parse().expect("the default listen address parses"),
            lease_name: DEFAULT_LEASE_NAME.into(),
            identity: None,
            lease_seconds: DEFAULT_LEASE_SECONDS,
        }
    }
}

impl OperatorArgs {
    /// The configuration these flags name: the oracle key and the deployment read from their
    /// files. An unreadable or malformed file is refused with its flag and path.
    pub fn resolve(&self) -> Result<OperatorConfig, RunError> {
        let config = |m: String| RunError::Config(m);
        let key_file = &self.oracle_key_file;
        let key_text = std::fs::read_to_string(key_file)
            .map_err(|e| config(format!("--oracle-key-file {}: {e}", key_file.display())))?;
        let oracle_key: PrivateKeySigner = key_text.trim().parse().map_err(|_| {
            config(format!(
                "--oracle-key-file {}: not a hex secp256k1 private key",
                key_file.display()
            ))
        })?;
        let deployment = read_deployment(&self.deployment).map_err(|e| config(format!("--deployment {e}")))?;
        Ok(OperatorConfig {
            rpc_url: self.rpc_url.clone(),
            deployment,
            oracle_key,
            store: self.store.clone(),
            pod_store: self.pod_store.clone(),
            trainer_image: self.trainer_image.clone(),
            environments: EnvironmentSidecars {
                image: self.environment_image.clone().filter(|i| !i.trim().is_empty()),
                cpu: self.environment_cpu.clone(),
                memory: self.environment_memory.clone(),
                servers: self.environment_servers,
            },
            namespace: self.namespace.clone(),
            watch_namespaces: self.watch_namespaces.clone(),
            confirmations: self.confirmations,
            chain_admission: !self.no_chain_admission,
            proposal_turn_seconds: self.proposal_turn_seconds,
            listen: self.listen,
            lease_name: self.lease_name.clone(),
            identity: self.identity.clone(),
            lease_seconds: self.lease_seconds,
        })
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;
    use crate::controller::WatchScope;

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

    /// `args` with its files in `dir`: the oracle key file holding `key`, the deployment file
    /// holding `deployment` (each absent when `None`).
    fn with_files(dir: &std::path::Path, key: Option<&str>, deployment: Option<&str>) -> OperatorArgs {
        let mut args = parse(&[]).unwrap();
        args.oracle_key_file = dir.join("oracle.key");
        args.deployment = dir.join("deployment.json");
        if let Some(key) = key {
            std::fs::write(&args.oracle_key_file, key).unwrap();
        }
        if let Some(deployment) = deployment {
            std::fs::write(&args.deployment, deployment).unwrap();
        }
        args
    }

    fn refusal(args: &OperatorArgs) -> String {
        args.resolve().unwrap_err().to_string()
    }

    #[test]
    fn resolve_reads_the_key_and_the_deployment_and_names_a_bad_file_by_its_flag() {
        let dir = tempfile::tempdir().unwrap();
        let dir = dir.path();
        let shown = |name: &str| dir.join(name).display().to_string();
        // anvil's account 1, the dev chains' oracle.
        let key = "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d";
        let deployment = Deployment {
            chain_id: 31337,
            umc: drlaas_chain::alloy::primitives::Address::repeat_byte(1),
            tmc: drlaas_chain::alloy::primitives::Address::repeat_byte(2),
            mmc: drlaas_chain::alloy::primitives::Address::repeat_byte(3),
            block: 1,
        };
        let text = deployment.to_file_text();

        let message = refusal(&with_files(dir, None, Some(&text)));
        assert!(
            message.starts_with(&format!("--oracle-key-file {}: ", shown("oracle.key"))),
            "{message}"
        );
        let message = refusal(&with_files(dir, Some("not a key"), Some(&text)));
        assert_eq!(
            message,
            format!(
                "--oracle-key-file {}: not a hex secp256k1 private key",
                shown("oracle.key")
            )
        );
        std::fs::remove_file(dir.join("deployment.json")).unwrap();
        let message = refusal(&with_files(dir, Some(key), None));
        assert!(
            message.starts_with(&format!("--deployment {}: ", shown("deployment.json"))),
            "{message}"
        );
        let message = refusal(&with_files(
            dir,
            Some(key),
            Some(&text.replace("\"chainId\": 31337", "\"chainId\": \"x\"")),
        ));
        assert!(
            message.starts_with(&format!(
                "--deployment {}: not a deployment (chainId, umc, tmc, mmc, block): field `chainId`",
                shown("deployment.json")
            )),
            "{message}"
        );

        let mut args = with_files(dir, Some(&format!("{key}\n")), Some(&text));
        args.no_chain_admission = true;
        let config = args.resolve().unwrap();
        assert_eq!(config.deployment, deployment);
        assert_eq!(
            config.oracle_key.address().to_string(),
            "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"
        );
        assert!(!config.chain_admission);
        // The flags' defaults are OperatorConfig::new's.
        let new = OperatorConfig::new(
            config.rpc_url.clone(),
            deployment,
            config.oracle_key.clone(),
            config.store.clone(),
        );
        let defaults = |c: &OperatorConfig| {
            (
                c.rpc_url.clone(),
                c.trainer_image.clone(),
                c.namespace.clone(),
                c.confirmations,
                c.listen,
                c.lease_name.clone(),
                c.lease_seconds,
            )
        };
        if std::env::vars().all(|(name, _)| !name.starts_with("DRLAAS_") && name != "POD_NAMESPACE") {
            assert_eq!(defaults(&config), defaults(&new));
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
