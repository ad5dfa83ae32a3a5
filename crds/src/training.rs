//! The training part of a task: what to train, with which algorithm, for how long.
//!
//! This is the `task.json` the trainer reads (docs/architecture.md#the-trainer-contract) and the training part of a `DRLTask` spec.
//! JSON form (every field but `environment` may be omitted):
//!
//! ```json
//! {
//!   "environment": {"kind": "cartpole"},
//!   "algorithm": "ppo",
//!   "ppo": {"numEnvs": 8, "learningRate": 0.001},
//!   "network": {"hidden": [64, 64]},
//!   "totalEnvSteps": 200000,
//!   "targetMeanReturn": 475,
//!   "seed": 1
//! }
//! ```

use drlaas_envs::EnvDescriptor;
use serde::{Deserialize, Serialize};

use crate::hyperparameters::{DqnConfig, NetworkConfig, PpoConfig};

/// Largest run accepted, in env steps (a bound so a typo cannot book a worker for a year).
pub const MAX_TOTAL_ENV_STEPS: u64 = 10_000_000_000;

/// Largest seed accepted: the largest integer below 2^63 that a double holds exactly (2^63 - 1024).
/// Kubernetes keeps integers as int64 and the CRD's `maximum` is a double, so this is the bound the
/// API server can check exactly (2^63 - 1 would round up to 2^63, which the API server then cannot
/// read as an int64 bound).
pub const MAX_SEED: u64 = (1 << 63) - 1024;

/// Lowest and highest `targetMeanReturn`: the chain keeps a target in thousandths in 32 bits.
pub const MIN_TARGET_MEAN_RETURN: f64 = -2_147_483.648;
/// See [`MIN_TARGET_MEAN_RETURN`].
pub const MAX_TARGET_MEAN_RETURN: f64 = 2_147_483.647;

/// An invalid spec: the field (as a path in the spec) and what was expected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {field}: {message}")]
pub struct SpecError {
    /// The offending field, e.g. `ppo.gamma` or `environment.grid`.
    pub field: String,
    /// What was expected instead.
    pub message: String,
}

impl SpecError {
    /// An error about `field`.
    pub fn new(field: &str, message: impl Into<String>) -> Self {
        Self {
            field: field.to_owned(),
            message: message.into(),
        }
    }
}

impl From<drlaas_envs::EnvError> for SpecError {
    fn from(e: drlaas_envs::EnvError) -> Self {
        Self {
            field: e.field,
            message: e.message,
        }
    }
}

/// The learning algorithm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "kebab-case")]
pub enum Algorithm {
    /// Proximal Policy Optimization (on-policy actor-critic).
    #[default]
    Ppo,
    /// Deep Q-Network (off-policy, replay buffer).
    Dqn,
}

impl Algorithm {
    /// The name used in JSON and in model manifests.
    pub fn name(self) -> &'static str {
        match self {
            Self::Ppo => "ppo",
            Self::Dqn => "dqn",
        }
    }
}

/// What to train and how.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[cfg_attr(feature = "schema", schemars(extend("x-kubernetes-validations" = [
    {
        "rule": "!has(self.dqn) || has(self.algorithm) && self.algorithm == 'dqn'",
        "message": "no dqn settings with algorithm ppo (remove them or set algorithm: dqn)",
        "fieldPath": ".dqn",
        "reason": "FieldValueForbidden"
    },
    {
        "rule": "!has(self.ppo) || !has(self.algorithm) || self.algorithm == 'ppo'",
        "message": "no ppo settings with algorithm dqn (remove them or set algorithm: ppo)",
        "fieldPath": ".ppo",
        "reason": "FieldValueForbidden"
    },
    {
        "rule": "!has(self.algorithm) || self.algorithm != 'dqn' || !has(self.environment.continuousActions)",
        "message": "dqn acts in discrete action spaces only: an environment with continuousActions (a Box action space) needs algorithm ppo",
        "fieldPath": ".algorithm",
        "reason": "FieldValueInvalid"
    }
])))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TrainingSpec {
    /// The environment and its parameters.
    pub environment: EnvDescriptor,
    /// Learning algorithm. Default `ppo`.
    #[serde(default)]
    pub algorithm: Algorithm,
    /// PPO settings; only with `algorithm: ppo`. Omitted fields take their defaults.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ppo: Option<PpoConfig>,
    /// DQN settings; only with `algorithm: dqn`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dqn: Option<DqnConfig>,
    /// Network shape. Default: MLP `[64, 64]` tanh; grids add convolutions `[16, 32]`.
    #[serde(default)]
    pub network: NetworkConfig,
    /// Environment transitions to train for (a step of a multi-agent environment counts once).
    /// Default 1,000,000.
    #[serde(default = "default_total_env_steps")]
    #[cfg_attr(feature = "schema", schemars(range(min = 1, max = MAX_TOTAL_ENV_STEPS)))]
    pub total_env_steps: u64,
    /// The mean team return the model must reach: verification passes when the evaluator's mean over
    /// `evalEpisodes` episodes is at least this. The trainer stops early once its training window
    /// reaches it and a greedy evaluation of its own clears it with a margin (two standard errors and
    /// 5 % of the target). Required for a paid task; in [-2147483.648, 2147483.647] (the chain keeps it in
    /// thousandths in 32 bits).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "schema", schemars(range(min = MIN_TARGET_MEAN_RETURN, max = MAX_TARGET_MEAN_RETURN)))]
    pub target_mean_return: Option<f64>,
    /// Episodes in the moving window of the early-stop criterion. Default 100.
    #[serde(default = "default_return_window")]
    #[cfg_attr(feature = "schema", schemars(range(min = 1, max = 100_000)))]
    pub return_window: u32,
    /// Seed of the environments, weights and sampling: the same spec and seed give the same model on CPU.
    /// At most 9223372036854774784 (Kubernetes keeps integers as int64).
    #[serde(default)]
    #[cfg_attr(feature = "schema", schemars(range(max = MAX_SEED)))]
    pub seed: u64,
    /// Episodes of the final greedy evaluation reported as `meanReturn`. Default 100.
    #[serde(default = "default_eval_episodes")]
    #[cfg_attr(feature = "schema", schemars(range(min = 1, max = 100_000)))]
    pub eval_episodes: u32,
    /// Write a checkpoint every this many updates (0 = only the final model). Default 50.
    #[serde(default = "default_checkpoint_every")]
    pub checkpoint_every: u32,
}

fn default_total_env_steps() -> u64 {
    1_000_000
}
fn default_return_window() -> u32 {
    100
}
fn default_eval_episodes() -> u32 {
    100
}
fn default_checkpoint_every() -> u32 {
    50
}

impl TrainingSpec {
    /// A spec with every default for `environment`.
    pub fn new(environment: EnvDescriptor) -> Self {
        Self {
            environment,
            algorithm: Algorithm::default(),
            ppo: None,
            dqn: None,
            network: NetworkConfig::default(),
            total_env_steps: default_total_env_steps(),
            target_mean_return: None,
            return_window: default_return_window(),
            seed: 0,
            eval_episodes: default_eval_episodes(),
            checkpoint_every: default_checkpoint_every(),
        }
    }

    /// Parses and validates a spec; serde errors keep their line/column and name the field.
    pub fn from_json(json: &str) -> Result<Self, SpecError> {
        let spec: Self = serde_json::from_str(json).map_err(|e| SpecError::new("spec", e.to_string()))?;
        spec.validate()?;
        Ok(spec)
    }

    /// Checks every field; the error names the first offending one.
    pub fn validate(&self) -> Result<(), SpecError> {
        self.environment.validate()?;
        match self.algorithm {
            Algorithm::Ppo if self.dqn.is_some() => {
                return Err(SpecError::new(
                    "dqn",
                    "no dqn settings with algorithm ppo (remove them or set algorithm: dqn)",
                ));
            }
            Algorithm::Dqn if self.ppo.is_some() => {
                return Err(SpecError::new(
                    "ppo",
                    "no ppo settings with algorithm dqn (remove them or set algorithm: ppo)",
                ));
            }
            Algorithm::Dqn if self.environment.action_space().is_continuous() => {
                let name = match &self.environment {
                    EnvDescriptor::Gymnasium(p) => p.id.as_str(),
                    EnvDescriptor::PettingZoo(p) => p.factory.as_str(),
                    other => other.kind_name(),
                };
                return Err(SpecError::new(
                    "algorithm",
                    format!(
                        "dqn acts in discrete action spaces only, and {name} has {}: use algorithm ppo",
                        self.environment.action_space()
                    ),
                ));
            }
            Algorithm::Ppo => self.ppo_config().validate()?,
            Algorithm::Dqn => self.dqn_config().validate()?,
        }
        self.network.validate()?;
        if self.total_env_steps == 0 || self.total_env_steps > MAX_TOTAL_ENV_STEPS {
            return Err(SpecError::new(
                "totalEnvSteps",
                format!("an integer in [1, {MAX_TOTAL_ENV_STEPS}], got {}", self.total_env_steps),
            ));
        }
        if let Some(target) = self.target_mean_return
            && !(MIN_TARGET_MEAN_RETURN..=MAX_TARGET_MEAN_RETURN).contains(&target)
        {
            return Err(SpecError::new(
                "targetMeanReturn",
                format!(
                    "a number in [{MIN_TARGET_MEAN_RETURN}, {MAX_TARGET_MEAN_RETURN}] (the chain keeps it in thousandths in 32 bits), got {target}"
                ),
            ));
        }
        if self.return_window == 0 || self.return_window > 100_000 {
            return Err(SpecError::new(
                "returnWindow",
                format!("an integer in [1, 100000], got {}", self.return_window),
            ));
        }
        if self.seed > MAX_SEED {
            return Err(SpecError::new(
                "seed",
                format!(
                    "at most {MAX_SEED} (Kubernetes keeps integers as int64), got {}",
                    self.seed
                ),
            ));
        }
        if self.eval_episodes == 0 || self.eval_episodes > 100_000 {
            return Err(SpecError::new(
                "evalEpisodes",
                format!("an integer in [1, 100000], got {}", self.eval_episodes),
            ));
        }
        Ok(())
    }

    /// PPO settings with defaults filled in.
    pub fn ppo_config(&self) -> PpoConfig {
        self.ppo.clone().unwrap_or_default()
    }

    /// DQN settings with defaults filled in.
    pub fn dqn_config(&self) -> DqnConfig {
        self.dqn.clone().unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dqn_refuses_continuous_actions_by_name() {
        let environment =
            r#"{"kind": "gymnasium", "id": "Pendulum-v1", "observationShape": [3], "continuousActions": 1}"#;
        let e =
            TrainingSpec::from_json(&format!(r#"{{"environment": {environment}, "algorithm": "dqn"}}"#)).unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid algorithm: dqn acts in discrete action spaces only, and Pendulum-v1 has continuous actions of 1 component: use algorithm ppo"
        );
        let ppo = TrainingSpec::from_json(&format!(r#"{{"environment": {environment}}}"#)).unwrap();
        ppo.validate().unwrap();
        let config = ppo.ppo_config();
        assert!(config.normalizes_observations(true) && config.scales_rewards(true));
        assert!(!config.normalizes_observations(false) && !config.scales_rewards(false));
    }

    #[test]
    fn minimal_spec_takes_defaults() {
        let spec = TrainingSpec::from_json(r#"{"environment": {"kind": "cartpole"}}"#).unwrap();
        assert_eq!(spec.algorithm, Algorithm::Ppo);
        assert_eq!(spec.total_env_steps, 1_000_000);
        assert_eq!(spec.ppo_config(), PpoConfig::default());
        let round_trip: TrainingSpec = serde_json::from_str(&serde_json::to_string(&spec).unwrap()).unwrap();
        assert_eq!(round_trip, spec);
    }

    #[test]
    fn bad_specs_name_the_field() {
        let cases = [
            (
                r#"{"environment": {"kind": "maze-cleaning", "grid": 0}}"#,
                "environment.grid",
            ),
            (
                r#"{"environment": {"kind": "cartpole"}, "totalEnvSteps": 0}"#,
                "totalEnvSteps",
            ),
            (
                r#"{"environment": {"kind": "cartpole"}, "ppo": {"numEnvs": 0}}"#,
                "ppo.numEnvs",
            ),
            (r#"{"environment": {"kind": "cartpole"}, "dqn": {}}"#, "dqn"),
            (
                r#"{"environment": {"kind": "cartpole"}, "algorithm": "dqn", "dqn": {"gamma": 2}}"#,
                "dqn.gamma",
            ),
            (
                r#"{"environment": {"kind": "cartpole"}, "network": {"hidden": [0]}}"#,
                "network.hidden[0]",
            ),
            (
                r#"{"environment": {"kind": "cartpole"}, "returnWindow": 0}"#,
                "returnWindow",
            ),
            (
                r#"{"environment": {"kind": "cartpole"}, "evalEpisodes": 0}"#,
                "evalEpisodes",
            ),
            (
                r#"{"environment": {"kind": "cartpole"}, "seed": 9223372036854775808}"#,
                "seed",
            ),
            (
                r#"{"environment": {"kind": "cartpole"}, "targetMeanReturn": 2147483.648}"#,
                "targetMeanReturn",
            ),
        ];
        for (json, field) in cases {
            let err = TrainingSpec::from_json(json).unwrap_err();
            assert_eq!(err.field, field, "{json}: {err}");
        }
    }

    #[test]
    fn the_largest_seed_is_accepted() {
        let json = format!(r#"{{"environment": {{"kind": "cartpole"}}, "seed": {MAX_SEED}}}"#);
        assert_eq!(TrainingSpec::from_json(&json).unwrap().seed, MAX_SEED);
        assert_eq!(MAX_SEED as f64 as u64, MAX_SEED, "a double holds it exactly");
        assert!(MAX_SEED < 1 << 63 && (MAX_SEED + 1024) as f64 == (1u64 << 63) as f64);
    }

    /// Every `null` in `value`, by path.
    fn nulls(path: &str, value: &serde_json::Value) -> Vec<String> {
        match value {
            serde_json::Value::Null => vec![path.to_owned()],
            serde_json::Value::Array(items) => items
                .iter()
                .enumerate()
                .flat_map(|(i, item)| nulls(&format!("{path}[{i}]"), item))
                .collect(),
            serde_json::Value::Object(fields) => fields
                .iter()
                .flat_map(|(name, field)| nulls(&format!("{path}.{name}"), field))
                .collect(),
            _ => Vec::new(),
        }
    }

    /// A `null` in a task's spec would be stored by the API server and break the spec's
    /// `self == oldSelf` rule: no spec serializes one, with every part present or left out.
    #[test]
    fn no_spec_serializes_a_null() {
        let environments: Vec<EnvDescriptor> = [
            r#"{"kind": "cartpole"}"#,
            r#"{"kind": "target-localization"}"#,
            r#"{"kind": "maze-cleaning"}"#,
            r#"{"kind": "fleet-coordination"}"#,
        ]
        .iter()
        .map(|json| serde_json::from_str(json).unwrap())
        .collect();
        for environment in environments {
            let default = TrainingSpec::new(environment.clone());
            let mut sparse = default.clone();
            sparse.ppo = Some(PpoConfig::default());
            sparse.dqn = Some(DqnConfig::default());
            let mut full = sparse.clone();
            full.ppo = Some(PpoConfig {
                target_kl: Some(0.02),
                ..PpoConfig::default()
            });
            full.target_mean_return = Some(10.0);
            for spec in [default, sparse, full] {
                let value = serde_json::to_value(&spec).unwrap();
                assert_eq!(nulls("training", &value), Vec::<String>::new(), "{value}");
            }
        }
    }

    #[test]
    fn serde_errors_say_what_is_wrong() {
        let err = TrainingSpec::from_json(r#"{"environment": {"kind": "cartpole"}, "algorithm": "a2c"}"#).unwrap_err();
        assert!(err.message.contains("unknown variant `a2c`"), "{err}");
        let err = TrainingSpec::from_json(r#"{"environment": {"kind": "cartpole"}, "totalSteps": 5}"#).unwrap_err();
        assert!(err.message.contains("unknown field `totalSteps`"), "{err}");
        let err = TrainingSpec::from_json(r#"{"algorithm": "ppo"}"#).unwrap_err();
        assert!(err.message.contains("missing field `environment`"), "{err}");
    }
}
