//! Hyperparameters of the trainer's algorithms and networks, one struct each, with documented defaults.
//!
//! Every field may be omitted from a task spec (it takes the default written next to it) and unknown
//! fields are rejected, so a typo like `learingRate` fails loudly instead of training with the default.
//! The defaults are general-purpose values in the spirit of CleanRL's; tuned specs for particular
//! environments live in `trainer-image/specs/`.

use serde::{Deserialize, Serialize};

use crate::training::SpecError;

/// Proximal Policy Optimization (clipped surrogate, GAE) settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
// The CEL rules leave counts out of range to their own bounds (which also keep products in int64).
#[cfg_attr(feature = "schema", schemars(extend("x-kubernetes-validations" = [{
    "rule": "self.numEnvs < 1 || self.numEnvs > 4096 || self.numSteps < 1 || self.numSteps > 100000 || self.numMinibatches <= self.numEnvs * self.numSteps",
    "message": "numMinibatches must be at most numEnvs × numSteps (each minibatch needs at least one row of the batch)",
    "fieldPath": ".numMinibatches",
    "reason": "FieldValueInvalid"
}])))]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct PpoConfig {
    /// Environments stepped together (each multi-agent environment adds one row per agent). Default 8.
    #[cfg_attr(feature = "schema", schemars(range(min = 1, max = 4096)))]
    pub num_envs: u32,
    /// Steps per environment in one rollout; a batch is `numEnvs × agents × numSteps` rows. Default 128.
    #[cfg_attr(feature = "schema", schemars(range(min = 1, max = 100_000)))]
    pub num_steps: u32,
    /// Adam learning rate. Default 2.5e-4.
    #[cfg_attr(feature = "schema", schemars(extend("minimum" = 0.0, "exclusiveMinimum" = true, "maximum" = 1.0)))]
    pub learning_rate: f64,
    /// Anneal the learning rate linearly to 0 over the run. Default true.
    pub anneal_lr: bool,
    /// Discount factor. Default 0.99.
    #[cfg_attr(feature = "schema", schemars(range(min = 0.0, max = 1.0)))]
    pub gamma: f64,
    /// GAE λ. Default 0.95.
    #[cfg_attr(feature = "schema", schemars(range(min = 0.0, max = 1.0)))]
    pub gae_lambda: f64,
    /// Minibatches per epoch. Default 4.
    #[cfg_attr(feature = "schema", schemars(range(min = 1, max = 100_000)))]
    pub num_minibatches: u32,
    /// Passes over each batch. Default 4.
    #[cfg_attr(feature = "schema", schemars(range(min = 1, max = 1000)))]
    pub update_epochs: u32,
    /// Normalize advantages per minibatch. Default true.
    pub norm_adv: bool,
    /// Surrogate clipping ε. Default 0.2.
    #[cfg_attr(feature = "schema", schemars(extend("minimum" = 0.0, "exclusiveMinimum" = true, "maximum" = 10.0)))]
    pub clip_coef: f64,
    /// Clip the value loss around the rollout's values, as in the PPO paper's implementation. Default true.
    pub clip_vloss: bool,
    /// Entropy bonus coefficient. Default 0.01.
    #[cfg_attr(feature = "schema", schemars(range(min = 0.0, max = 10.0)))]
    pub ent_coef: f64,
    /// Value loss coefficient. Default 0.5.
    #[cfg_attr(feature = "schema", schemars(extend("minimum" = 0.0, "exclusiveMinimum" = true, "maximum" = 100.0)))]
    pub vf_coef: f64,
    /// Global gradient-norm clip. Default 0.5.
    #[cfg_attr(feature = "schema", schemars(extend("minimum" = 0.0, "exclusiveMinimum" = true, "maximum" = 1e6)))]
    pub max_grad_norm: f64,
    /// Stop an update's epochs early once the approximate KL exceeds this. Default none.
    #[cfg_attr(feature = "schema", schemars(extend("minimum" = 0.0, "exclusiveMinimum" = true, "maximum" = 10.0)))]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target_kl: Option<f64>,
    /// Normalize observations by their running mean and variance (clipped to ±10). The statistics
    /// are part of the model, so evaluation and warm starts see what training saw. Default: on for
    /// continuous actions, off for discrete ones.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub norm_obs: Option<bool>,
    /// Scale rewards by the running standard deviation of the discounted return (clipped to ±10),
    /// for the learner only: returns are reported unscaled. Default: on for continuous actions, off
    /// for discrete ones.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub norm_reward: Option<bool>,
    /// The initial log standard deviation of a Gaussian policy (continuous actions), the same for
    /// every action component; learned from there. Default 0 (a standard deviation of 1); −2 starts
    /// with small, careful actions (RL-Zoo's setting for MuJoCo locomotion).
    #[cfg_attr(feature = "schema", schemars(range(min = -5.0, max = 2.0)))]
    pub log_std_init: f64,
}

impl Default for PpoConfig {
    fn default() -> Self {
        Self {
            num_envs: 8,
            num_steps: 128,
            learning_rate: 2.5e-4,
            anneal_lr: true,
            gamma: 0.99,
            gae_lambda: 0.95,
            num_minibatches: 4,
            update_epochs: 4,
            norm_adv: true,
            clip_coef: 0.2,
            clip_vloss: true,
            ent_coef: 0.01,
            vf_coef: 0.5,
            max_grad_norm: 0.5,
            target_kl: None,
            norm_obs: None,
            norm_reward: None,
            log_std_init: 0.0,
        }
    }
}

impl PpoConfig {
    /// Whether observations are normalized, for an environment whose actions are `continuous` or not.
    pub fn normalizes_observations(&self, continuous: bool) -> bool {
        self.norm_obs.unwrap_or(continuous)
    }

    /// Whether rewards are scaled, for an environment whose actions are `continuous` or not.
    pub fn scales_rewards(&self, continuous: bool) -> bool {
        self.norm_reward.unwrap_or(continuous)
    }

    /// Checks every field; errors are prefixed with `ppo.`.
    pub fn validate(&self) -> Result<(), SpecError> {
        let f = |name: &str| format!("ppo.{name}");
        positive_count(&f("numEnvs"), self.num_envs, 4096)?;
        positive_count(&f("numSteps"), self.num_steps, 100_000)?;
        positive_count(&f("numMinibatches"), self.num_minibatches, 100_000)?;
        positive_count(&f("updateEpochs"), self.update_epochs, 1000)?;
        if self.num_minibatches > self.num_envs * self.num_steps {
            return Err(SpecError::new(
                &f("numMinibatches"),
                format!(
                    "at most numEnvs × numSteps ({}) minibatches, got {}",
                    self.num_envs * self.num_steps,
                    self.num_minibatches
                ),
            ));
        }
        learning_rate(&f("learningRate"), self.learning_rate)?;
        unit_interval(&f("gamma"), self.gamma)?;
        unit_interval(&f("gaeLambda"), self.gae_lambda)?;
        in_range(
            &f("clipCoef"),
            self.clip_coef,
            0.0,
            10.0,
            "a clip coefficient in (0, 10]",
        )?;
        if !(0.0..=10.0).contains(&self.ent_coef) {
            return Err(SpecError::new(
                &f("entCoef"),
                format!("a coefficient in [0, 10], got {}", self.ent_coef),
            ));
        }
        in_range(&f("vfCoef"), self.vf_coef, 0.0, 100.0, "a coefficient in (0, 100]")?;
        in_range(&f("maxGradNorm"), self.max_grad_norm, 0.0, 1e6, "a norm in (0, 1e6]")?;
        if let Some(kl) = self.target_kl {
            in_range(&f("targetKl"), kl, 0.0, 10.0, "a KL bound in (0, 10]")?;
        }
        if !(-5.0..=2.0).contains(&self.log_std_init) {
            return Err(SpecError::new(
                &f("logStdInit"),
                format!("a log standard deviation in [-5, 2], got {}", self.log_std_init),
            ));
        }
        Ok(())
    }
}

/// Deep Q-Network settings (replay buffer, target network, double DQN, linear ε schedule).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[cfg_attr(feature = "schema", schemars(extend("x-kubernetes-validations" = [{
    "rule": "self.bufferSize < 1 || self.batchSize <= self.bufferSize",
    "message": "batchSize must be at most bufferSize",
    "fieldPath": ".batchSize",
    "reason": "FieldValueInvalid"
}])))]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct DqnConfig {
    /// Environments stepped together. Default 4.
    #[cfg_attr(feature = "schema", schemars(range(min = 1, max = 4096)))]
    pub num_envs: u32,
    /// Adam learning rate. Default 2.5e-4.
    #[cfg_attr(feature = "schema", schemars(extend("minimum" = 0.0, "exclusiveMinimum" = true, "maximum" = 1.0)))]
    pub learning_rate: f64,
    /// Transitions the replay buffer keeps (agent rows count one each). Default 10,000.
    #[cfg_attr(feature = "schema", schemars(range(min = 1, max = 10_000_000)))]
    pub buffer_size: u32,
    /// Discount factor. Default 0.99.
    #[cfg_attr(feature = "schema", schemars(range(min = 0.0, max = 1.0)))]
    pub gamma: f64,
    /// Soft update rate of the target network (1.0 = hard copy). Default 1.0.
    #[cfg_attr(feature = "schema", schemars(range(min = 0.0, max = 1.0)))]
    pub tau: f64,
    /// Env steps between target-network updates. Default 500.
    #[cfg_attr(feature = "schema", schemars(range(min = 1)))]
    pub target_network_frequency: u32,
    /// Transitions per gradient step. Default 128.
    #[cfg_attr(feature = "schema", schemars(range(min = 1, max = 1_000_000)))]
    pub batch_size: u32,
    /// ε at the start. Default 1.0.
    #[cfg_attr(feature = "schema", schemars(range(min = 0.0, max = 1.0)))]
    pub start_e: f64,
    /// ε at the end of the schedule. Default 0.05.
    #[cfg_attr(feature = "schema", schemars(range(min = 0.0, max = 1.0)))]
    pub end_e: f64,
    /// Fraction of the run over which ε falls linearly from `startE` to `endE`. Default 0.5.
    #[cfg_attr(feature = "schema", schemars(range(min = 0.0, max = 1.0)))]
    pub exploration_fraction: f64,
    /// Env steps collected before learning starts. Default 1,000.
    pub learning_starts: u32,
    /// Env steps between gradient steps. Default 1.
    #[cfg_attr(feature = "schema", schemars(range(min = 1)))]
    pub train_frequency: u32,
    /// Pick the next action with the online network and value it with the target network. Default true.
    pub double_dqn: bool,
    /// Global gradient-norm clip. Default 10.
    #[cfg_attr(feature = "schema", schemars(extend("minimum" = 0.0, "exclusiveMinimum" = true, "maximum" = 1e6)))]
    pub max_grad_norm: f64,
}

impl Default for DqnConfig {
    fn default() -> Self {
        Self {
            num_envs: 4,
            learning_rate: 2.5e-4,
            buffer_size: 10_000,
            gamma: 0.99,
            tau: 1.0,
            target_network_frequency: 500,
            batch_size: 128,
            start_e: 1.0,
            end_e: 0.05,
            exploration_fraction: 0.5,
            learning_starts: 1_000,
            train_frequency: 1,
            double_dqn: true,
            max_grad_norm: 10.0,
        }
    }
}

impl DqnConfig {
    /// Checks every field; errors are prefixed with `dqn.`.
    pub fn validate(&self) -> Result<(), SpecError> {
        let f = |name: &str| format!("dqn.{name}");
        positive_count(&f("numEnvs"), self.num_envs, 4096)?;
        positive_count(&f("bufferSize"), self.buffer_size, 10_000_000)?;
        positive_count(&f("batchSize"), self.batch_size, 1_000_000)?;
        positive_count(&f("targetNetworkFrequency"), self.target_network_frequency, u32::MAX)?;
        positive_count(&f("trainFrequency"), self.train_frequency, u32::MAX)?;
        if self.batch_size > self.buffer_size {
            return Err(SpecError::new(
                &f("batchSize"),
                format!("at most bufferSize ({}), got {}", self.buffer_size, self.batch_size),
            ));
        }
        learning_rate(&f("learningRate"), self.learning_rate)?;
        unit_interval(&f("gamma"), self.gamma)?;
        unit_interval(&f("tau"), self.tau)?;
        unit_interval(&f("startE"), self.start_e)?;
        unit_interval(&f("endE"), self.end_e)?;
        unit_interval(&f("explorationFraction"), self.exploration_fraction)?;
        in_range(&f("maxGradNorm"), self.max_grad_norm, 0.0, 1e6, "a norm in (0, 1e6]")?;
        Ok(())
    }
}

/// Nonlinearity of the hidden layers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "kebab-case")]
pub enum Activation {
    /// tanh (the PPO paper's choice for vector observations).
    Tanh,
    /// ReLU.
    Relu,
}

/// Network shape. Vector observations get an MLP of `hidden` layers; grid observations `[C, G, G]` get
/// 3×3 convolutions with `convChannels` (the second and later with stride 2) followed by the same MLP.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct NetworkConfig {
    /// Hidden layer widths of the MLP (and of the head after the convolutions). Default `[64, 64]`.
    #[cfg_attr(feature = "schema", schemars(length(max = 8), inner(range(min = 1, max = 4096))))]
    pub hidden: Vec<u32>,
    /// Hidden-layer nonlinearity. Default `tanh`.
    pub activation: Activation,
    /// Output channels of the 3×3 convolutions for grid observations. Default `[16, 32]`.
    #[cfg_attr(feature = "schema", schemars(length(max = 8), inner(range(min = 1, max = 4096))))]
    pub conv_channels: Vec<u32>,
}

impl Default for NetworkConfig {
    fn default() -> Self {
        Self {
            hidden: vec![64, 64],
            activation: Activation::Tanh,
            conv_channels: vec![16, 32],
        }
    }
}

impl NetworkConfig {
    /// Checks the layer widths; errors are prefixed with `network.`.
    pub fn validate(&self) -> Result<(), SpecError> {
        for (name, widths) in [("hidden", &self.hidden), ("convChannels", &self.conv_channels)] {
            if widths.len() > 8 {
                return Err(SpecError::new(
                    &format!("network.{name}"),
                    format!("at most 8 layers, got {}", widths.len()),
                ));
            }
            for (i, &w) in widths.iter().enumerate() {
                positive_count(&format!("network.{name}[{i}]"), w, 4096)?;
            }
        }
        Ok(())
    }
}

fn positive_count(field: &str, value: u32, max: u32) -> Result<(), SpecError> {
    if value == 0 || value > max {
        return Err(SpecError::new(field, format!("an integer in [1, {max}], got {value}")));
    }
    Ok(())
}

fn learning_rate(field: &str, value: f64) -> Result<(), SpecError> {
    in_range(field, value, 0.0, 1.0, "a learning rate in (0, 1]")
}

fn unit_interval(field: &str, value: f64) -> Result<(), SpecError> {
    if !(0.0..=1.0).contains(&value) {
        return Err(SpecError::new(field, format!("a value in [0, 1], got {value}")));
    }
    Ok(())
}

/// `low < value <= high` (NaN fails).
fn in_range(field: &str, value: f64, low: f64, high: f64, expected: &str) -> Result<(), SpecError> {
    if !(value > low && value <= high) {
        return Err(SpecError::new(field, format!("{expected}, got {value}")));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        PpoConfig::default().validate().unwrap();
        DqnConfig::default().validate().unwrap();
        NetworkConfig::default().validate().unwrap();
    }

    #[test]
    fn errors_name_the_field() {
        let ppo = PpoConfig {
            gamma: 1.5,
            ..PpoConfig::default()
        };
        assert_eq!(ppo.validate().unwrap_err().field, "ppo.gamma");
        let dqn = DqnConfig {
            batch_size: 20_000,
            ..DqnConfig::default()
        };
        let err = dqn.validate().unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid dqn.batchSize: at most bufferSize (10000), got 20000"
        );
        let net = NetworkConfig {
            hidden: vec![64, 0],
            ..NetworkConfig::default()
        };
        assert_eq!(net.validate().unwrap_err().field, "network.hidden[1]");
        let nan = PpoConfig {
            learning_rate: f64::NAN,
            ..PpoConfig::default()
        };
        assert_eq!(nan.validate().unwrap_err().field, "ppo.learningRate");
        let wide = PpoConfig {
            log_std_init: 3.0,
            ..PpoConfig::default()
        };
        assert_eq!(wide.validate().unwrap_err().field, "ppo.logStdInit");
    }

    #[test]
    fn unknown_fields_are_rejected() {
        let err = serde_json::from_str::<PpoConfig>(r#"{"learingRate": 0.1}"#).unwrap_err();
        assert!(err.to_string().contains("unknown field `learingRate`"), "{err}");
    }
}
