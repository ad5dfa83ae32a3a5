//! The local mode's workers: a config of dev accounts that play the workers of a consortium, each
//! registered on chain (UMC, with stake) and given to the operator as a `Worker` with its key in a
//! Secret, exactly as a worker joins a cluster. The default is three workers with different
//! capacity, price and expertise, plus a GPU worker when this machine has an NVIDIA driver.
//!
//! A worker can be told to misbehave (`behavior`), to watch the marketplace's protections work: a
//! `shirking` worker trains with a fraction of the steps asked for and submits what it got (the
//! operator's verification fails it, the requester is refunded and its stake slashed); a
//! `crashing` worker's trainer dies mid-run (the task goes to another worker); an
//! `otherEnvironment` worker trains on a variant of the task's environment (episodes one step
//! longer) and submits that model (the verifier refuses a model of another environment, however
//! well it plays its own).

use std::collections::BTreeMap;
use std::path::Path;

use drlaas_chain::alloy::primitives::{U256, utils::parse_ether};
use drlaas_chain::alloy::signers::local::PrivateKeySigner;
use drlaas_chain::{EnvKind, Expertise, Hardware, WorkerProfile};
use drlaas_crds::task::SecretKeyRef;
use drlaas_crds::worker::{WorkerCapacity, WorkerSpec};
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::chain::ACCOUNTS;

/// How a local worker behaves.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Behavior {
    /// Trains as asked.
    #[default]
    Honest,
    /// Trains a twentieth of the steps asked for and submits the result.
    Shirking,
    /// Its trainer is killed at its first progress report.
    Crashing,
    /// Trains on a variant of the task's environment (episodes one step longer) and submits it.
    OtherEnvironment,
}

/// One local worker.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LocalWorker {
    /// The `Worker` object's name.
    pub name: String,
    /// Which dev account of the local chain it is (2 to 9; 0 is the admin, 1 the operator).
    pub account: usize,
    /// Stake deposited at registration, in ETH.
    #[serde(default = "default_stake")]
    pub stake_eth: String,
    /// Price per task in wei.
    pub price_per_task_wei: String,
    /// Its pool.
    pub capacity: WorkerCapacity,
    /// Expertise per environment kind in [0, 1].
    pub expertise: BTreeMap<String, f64>,
    /// How it behaves (default honest).
    #[serde(default)]
    pub behavior: Behavior,
    /// Price in wei at which it lists each model it is paid for on the model market; none: it
    /// does not sell its models.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sell_models_wei: Option<String>,
}

fn default_stake() -> String {
    "2".into()
}

/// A file of local workers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkersConfig {
    pub workers: Vec<LocalWorker>,
}

/// The account the local mode's requesters pay from.
pub const REQUESTER_ACCOUNT: usize = 5;

impl WorkersConfig {
    /// Reads a workers file (YAML), naming the field of a mistake.
    pub fn load(path: &Path) -> Result<WorkersConfig, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let value: serde_json::Value =
            serde_saphyr::from_str(&text).map_err(|e| format!("{}: not YAML: {e}", path.display()))?;
        let config: WorkersConfig = serde_path_to_error::deserialize(value)
            .map_err(|e| format!("{}: {}: {}", path.display(), e.path(), e.inner()))?;
        config.validate().map_err(|e| format!("{}: {e}", path.display()))?;
        Ok(config)
    }

    /// Three CPU workers of different capacity, price and expertise; a GPU worker too when
    /// `gpu` (this machine has an NVIDIA driver).
    pub fn default_pool(gpu: bool) -> WorkersConfig {
        let capacity = |cpu_cores, memory_gib, gpus| WorkerCapacity {
            gpus,
            gpu_model: (gpus > 0).then(|| "local".to_string()),
            cpu_cores,
            node_cpu_cores: None,
            memory_gib,
            concurrent_tasks: 1,
        };
        let expertise = |levels: &[(&str, f64)]| levels.iter().map(|(k, v)| (k.to_string(), *v)).collect();
        let mut workers = vec![
            LocalWorker {
                name: "lab-a".into(),
                account: 2,
                stake_eth: "2".into(),
                price_per_task_wei: "100000000000000000".into(),
                capacity: capacity(8, 16, 0),
                expertise: expertise(&[
                    ("cartpole", 0.9),
                    ("maze-cleaning", 0.8),
                    ("target-localization", 0.6),
                    ("gymnasium", 0.7),
                    ("pettingzoo", 0.7),
                ]),
                behavior: Behavior::Honest,
                sell_models_wei: Some("20000000000000000".into()),
            },
            LocalWorker {
                name: "lab-b".into(),
                account: 3,
                stake_eth: "2".into(),
                price_per_task_wei: "50000000000000000".into(),
                capacity: capacity(4, 8, 0),
                expertise: expertise(&[
                    ("cartpole", 0.7),
                    ("fleet-coordination", 0.8),
                    ("maze-cleaning", 0.5),
                    ("gymnasium", 0.6),
                    ("pettingzoo", 0.6),
                ]),
                behavior: Behavior::Honest,
                sell_models_wei: Some("10000000000000000".into()),
            },
            LocalWorker {
                name: "lab-c".into(),
                account: 4,
                stake_eth: "1".into(),
                price_per_task_wei: "20000000000000000".into(),
                capacity: capacity(2, 4, 0),
                expertise: expertise(&[
                    ("cartpole", 0.5),
                    ("target-localization", 0.8),
                    ("maze-cleaning", 0.4),
                    ("fleet-coordination", 0.4),
                ]),
                behavior: Behavior::Honest,
                sell_models_wei: Some("5000000000000000".into()),
            },
        ];
        if gpu {
            workers.push(LocalWorker {
                name: "gpu-lab".into(),
                account: 6,
                stake_eth: "4".into(),
                price_per_task_wei: "200000000000000000".into(),
                capacity: capacity(16, 64, 1),
                expertise: expertise(&[
                    ("cartpole", 0.9),
                    ("target-localization", 0.9),
                    ("maze-cleaning", 0.9),
                    ("fleet-coordination", 0.9),
                    ("gymnasium", 0.9),
                    ("pettingzoo", 0.9),
                ]),
                behavior: Behavior::Honest,
                sell_models_wei: Some("50000000000000000".into()),
            });
        }
        WorkersConfig { workers }
    }

    /// Checks accounts, names, amounts and expertise, naming the field.
    pub fn validate(&self) -> Result<(), String> {
        let mut names = std::collections::BTreeSet::new();
        let mut accounts = std::collections::BTreeSet::new();
        for (i, w) in self.workers.iter().enumerate() {
            let at = |field: &str| format!("workers[{i}].{field}");
            if w.name.is_empty()
                || !w
                    .name
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
            {
                return Err(format!("{}: a DNS label (a-z, 0-9, -), got {:?}", at("name"), w.name));
            }
            if !names.insert(&w.name) {
                return Err(format!("{}: {:?} is used twice", at("name"), w.name));
            }
            if !(2..ACCOUNTS).contains(&w.account) || w.account == REQUESTER_ACCOUNT {
                return Err(format!(
                    "{}: a dev account from 2 to {} other than {REQUESTER_ACCOUNT} (0 is the admin, 1 the operator, \
                     {REQUESTER_ACCOUNT} the requester), got {}",
                    at("account"),
                    ACCOUNTS - 1,
                    w.account
                ));
            }
            if !accounts.insert(w.account) {
                return Err(format!("{}: account {} is used twice", at("account"), w.account));
            }
            parse_ether(&w.stake_eth).map_err(|e| format!("{}: an amount of ETH, {e}", at("stakeEth")))?;
            drlaas_core::admission::parse_wei(&w.price_per_task_wei)
                .map_err(|e| format!("{}: {e}", at("pricePerTaskWei")))?;
            if let Some(price) = &w.sell_models_wei {
                drlaas_core::admission::parse_wei(price).map_err(|e| format!("{}: {e}", at("sellModelsWei")))?;
            }
            for (kind, level) in &w.expertise {
                kind.parse::<EnvKind>()
                    .map_err(|e| format!("{}: {e}", at(&format!("expertise.{kind}"))))?;
                if !(0.0..=1.0).contains(level) {
                    return Err(format!(
                        "{}: a level in [0, 1], got {level}",
                        at(&format!("expertise.{kind}"))
                    ));
                }
            }
        }
        Ok(())
    }
}

impl LocalWorker {
    /// The secret holding its key, in the operator's namespace.
    pub fn key_secret(&self) -> String {
        format!("{}-key", self.name)
    }

    /// Its `Worker` spec, for the account at `address`.
    pub fn spec(&self, address: String) -> WorkerSpec {
        WorkerSpec {
            address,
            node_selector: BTreeMap::from([("drlaas.io/pool".to_string(), self.name.clone())]),
            tolerations: Vec::new(),
            capacity: self.capacity.clone(),
            expertise: self.expertise.clone(),
            price_per_task_wei: self.price_per_task_wei.clone(),
            image: None,
            key_secret_ref: SecretKeyRef {
                name: self.key_secret(),
                key: "privateKey".into(),
            },
        }
    }

    /// Its registration in UMC.
    pub fn profile(&self) -> WorkerProfile {
        let levels = self.expertise.iter().filter_map(|(kind, level)| {
            let kind = kind.parse::<EnvKind>().ok()?;
            Some((kind, (level * 255.0).round().clamp(0.0, 255.0) as u8))
        });
        WorkerProfile {
            expertise: Expertise::from_levels(levels),
            hardware: Hardware {
                gpus: u16::try_from(self.capacity.gpus).unwrap_or(u16::MAX),
                cpu_cores: u16::try_from(self.capacity.cpu_cores).unwrap_or(u16::MAX),
                memory_gib: self.capacity.memory_gib,
            },
            price_per_task: self.price_per_task_wei.parse().unwrap_or(U256::ZERO),
            metadata_cid: String::new(),
        }
    }

    /// The stake in wei.
    pub fn stake(&self) -> U256 {
        parse_ether(&self.stake_eth).unwrap_or(U256::ZERO)
    }
}

/// Whether this machine has an NVIDIA driver (then the default pool has a GPU worker).
pub fn nvidia_driver() -> bool {
    Path::new("/proc/driver/nvidia/version").exists()
}

/// A Secret holding `key` under `privateKey`: a wallet or a worker key, as the operator reads it.
pub fn key_secret(namespace: &str, name: &str, key: &PrivateKeySigner) -> Value {
    let key = ByteString(key.to_bytes().to_string().into_bytes());
    serde_json::to_value(Secret {
        metadata: k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta {
            name: Some(name.into()),
            namespace: Some(namespace.into()),
            ..Default::default()
        },
        data: Some([("privateKey".to_string(), key)].into()),
        ..Default::default()
    })
    .expect("a Secret serializes")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_pool_is_valid_and_varied() {
        let pool = WorkersConfig::default_pool(false);
        pool.validate().unwrap();
        assert_eq!(pool.workers.len(), 3);
        let prices: std::collections::BTreeSet<_> = pool.workers.iter().map(|w| &w.price_per_task_wei).collect();
        assert_eq!(prices.len(), 3);
        assert_eq!(WorkersConfig::default_pool(true).workers.len(), 4);
        WorkersConfig::default_pool(true).validate().unwrap();
    }

    #[test]
    fn the_example_file_is_the_default_pool_and_a_shirker() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/examples/local-workers.yaml");
        let mut example = WorkersConfig::load(&path).unwrap();
        let shirker = example.workers.pop().unwrap();
        assert_eq!(shirker.behavior, Behavior::Shirking);
        assert_eq!(example, WorkersConfig::default_pool(false));
    }

    #[test]
    fn mistakes_name_the_field() {
        let mut pool = WorkersConfig::default_pool(false);
        pool.workers[1].account = 1;
        assert!(pool.validate().unwrap_err().starts_with("workers[1].account"));
        let mut pool = WorkersConfig::default_pool(false);
        pool.workers[0].expertise.insert("pong".into(), 0.5);
        assert!(pool.validate().unwrap_err().starts_with("workers[0].expertise.pong"));
        let mut pool = WorkersConfig::default_pool(false);
        pool.workers[2].name = "Lab C".into();
        assert!(pool.validate().unwrap_err().starts_with("workers[2].name"));
    }
}
