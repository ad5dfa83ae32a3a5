//! What the training loop needs from an algorithm, and the environment vector it steps.
//!
//! The loop in [`crate::train`] owns time: iterations, checkpoints, early stopping, progress. A
//! [`Learner`] (PPO, DQN) owns its networks and optimizer and turns one iteration's worth of
//! environment steps into parameter updates.

use std::collections::HashMap;

use drlaas_envs::{Rng, VecEnv, obs_len};
use serde_json::json;
use tch::{Device, Kind, Tensor};

use crate::adam::Adam;
use crate::network::Network;
use crate::normalize::Normalization;
use crate::params::ParamStore;

/// A vector of environments and the flat buffers it is stepped with: what the learner sees, after
/// the observation normalization and reward scaling the run asked for.
#[derive(Debug)]
pub struct EnvRunner {
    env: Box<dyn VecEnv>,
    /// Current observation of every agent row, `rows × obs_len`.
    pub obs: Vec<f32>,
    /// Discrete actions to take in the next [`EnvRunner::step`], one per row.
    pub actions: Vec<u32>,
    /// Continuous actions to take instead, `rows × continuous_actions` (empty for a discrete
    /// environment). The environment clips them to its bounds.
    pub continuous: Vec<f32>,
    /// Team rewards of the last step, one per row (scaled when the run scales rewards).
    pub rewards: Vec<f32>,
    /// Whether the last step ended the row's episode (its `obs` is then a new episode's first).
    pub dones: Vec<bool>,
    /// What is applied to observations and rewards.
    pub normalization: Normalization,
}

impl EnvRunner {
    /// Buffers sized for `env`; call [`EnvRunner::reset`] before stepping.
    pub fn new(env: Box<dyn VecEnv>) -> Self {
        let rows = env.num_envs() * env.agents();
        Self {
            obs: vec![0.0; rows * obs_len(env.as_ref())],
            actions: vec![0; rows],
            continuous: vec![0.0; rows * env.continuous_actions()],
            rewards: vec![0.0; rows],
            dones: vec![false; rows],
            normalization: Normalization::default(),
            env,
        }
    }

    /// The same runner, applying `normalization` from the next reset or step on.
    pub fn with_normalization(mut self, normalization: Normalization) -> Self {
        self.normalization = normalization;
        self
    }

    /// Continuous action components per row (0 for discrete actions).
    pub fn continuous_actions(&self) -> usize {
        self.env.continuous_actions()
    }

    /// Bounds of each continuous action component (see [`VecEnv::action_bounds`]).
    pub fn action_bounds(&self) -> Vec<(f32, f32)> {
        self.env.action_bounds()
    }

    /// Agent rows: environments × agents.
    pub fn rows(&self) -> usize {
        self.actions.len()
    }

    /// Environments in the vector.
    pub fn num_envs(&self) -> usize {
        self.env.num_envs()
    }

    /// Floats in one row's observation.
    pub fn obs_len(&self) -> usize {
        self.obs.len() / self.rows()
    }

    /// Re-seeds every environment and discards unfinished episodes.
    pub fn reset(&mut self, seed: u64) {
        self.env.reset(seed, &mut self.obs);
        self.dones.fill(false);
        let _ = self.env.drain_finished();
        if let Some(n) = &mut self.normalization.obs {
            n.apply(&mut self.obs);
        }
        if let Some(scaler) = &mut self.normalization.reward {
            // Unfinished episodes were discarded: their returns start again.
            scaler.returns.fill(0.0);
        }
    }

    /// Applies `actions` (or `continuous`); fills `obs`, `rewards`, `dones`.
    pub fn step(&mut self) {
        if self.continuous.is_empty() {
            self.env
                .step(&self.actions, &mut self.obs, &mut self.rewards, &mut self.dones);
        } else {
            self.env
                .step_continuous(&self.continuous, &mut self.obs, &mut self.rewards, &mut self.dones);
        }
        if let Some(n) = &mut self.normalization.obs {
            n.apply(&mut self.obs);
        }
        if let Some(scaler) = &mut self.normalization.reward {
            scaler.apply(&mut self.rewards, &self.dones);
        }
    }

    /// Why the environment cannot step any more (see [`VecEnv::failure`]).
    pub fn failure(&self) -> Option<&str> {
        self.env.failure()
    }

    /// Rows whose last step hit the horizon rather than a terminal state (see [`VecEnv::truncated`]).
    pub fn truncated(&self) -> &[bool] {
        self.env.truncated()
    }

    /// The team reward of environment `env` in the last step (see [`VecEnv::team_reward`]).
    pub fn team_reward(&self, env: usize) -> f32 {
        self.env.team_reward(&self.rewards, env)
    }

    /// Returns of the episodes that finished since the last call (the environment's own rewards,
    /// never scaled).
    pub fn drain_finished(&mut self) -> Vec<f32> {
        self.env.drain_finished().iter().map(|e| e.episode_return).collect()
    }

    /// The current observations as a `[rows, obs_len]` tensor on `device`.
    pub fn obs_tensor(&self, device: Device) -> Tensor {
        Tensor::from_slice(&self.obs)
            .view([self.rows() as i64, self.obs_len() as i64])
            .to_device(device)
    }
}

/// Where the run is, for schedules (learning-rate annealing, ε decay).
#[derive(Debug, Clone, Copy)]
pub struct Schedule {
    /// Index of this iteration, from 0.
    pub iteration: u64,
    /// Iterations the whole run has.
    pub iterations: u64,
    /// Env steps taken before this iteration.
    pub env_steps: u64,
    /// Env steps the whole run has.
    pub total_env_steps: u64,
}

impl Schedule {
    /// Fraction of the run still ahead, in (0, 1]: multiply a learning rate by it to anneal linearly.
    pub fn remaining(&self) -> f64 {
        1.0 - self.iteration as f64 / self.iterations as f64
    }
}

/// Diagnostics of one iteration, as in the progress lines (absent fields are not the algorithm's).
pub use drlaas_crds::trainer_output::UpdateStats;

/// Training state beyond the parameters that a checkpoint must carry for an exact resume.
#[derive(Debug, Default)]
pub struct LearnerState {
    /// Named tensors (optimizer moments, target network, replay buffer).
    pub tensors: Vec<(String, Tensor)>,
    /// Small values (step counters, RNG state) as JSON.
    pub values: serde_json::Value,
}

/// An algorithm: networks, optimizer and the update rule.
pub trait Learner: std::fmt::Debug {
    /// Environments stepped together (each multi-agent environment adds one row per agent).
    fn num_envs(&self) -> usize;
    /// Env steps one iteration takes (the vector steps times the number of environments).
    fn env_steps_per_iteration(&self) -> u64;
    /// Collects one iteration of experience from `runner` and learns from it.
    fn iterate(&mut self, runner: &mut EnvRunner, schedule: Schedule) -> UpdateStats;
    /// All parameters (`policy.*` and any others, e.g. `value.*`).
    fn params(&self) -> &ParamStore;
    /// All parameters, to load a warm start or a checkpoint into.
    fn params_mut(&mut self) -> &mut ParamStore;
    /// The network whose argmax is the greedy action (policy logits or Q-values).
    fn policy(&self) -> &Network;
    /// Called after weights were loaded into [`Learner::params_mut`] from elsewhere (a warm start).
    fn params_loaded(&mut self) {}
    /// State for a checkpoint.
    fn save_state(&self) -> LearnerState;
    /// Restores [`Learner::save_state`]'s output.
    fn restore_state(&mut self, tensors: &HashMap<String, Tensor>, values: &serde_json::Value) -> Result<(), String>;
}

impl LearnerState {
    /// What every learner checkpoints: Adam's moments and step count, and the sampler's generator.
    pub fn of_optimizer(adam: &Adam, rng: &Rng) -> Self {
        let (m, v, step) = adam.state();
        Self {
            tensors: vec![("train.adam.m".into(), m), ("train.adam.v".into(), v)],
            values: json!({ "adamStep": step, "rng": rng.state() }),
        }
    }

    /// Restores what [`LearnerState::of_optimizer`] saved into `adam`; returns the generator.
    pub fn restore_optimizer(
        tensors: &HashMap<String, Tensor>,
        values: &serde_json::Value,
        adam: &mut Adam,
    ) -> Result<Rng, String> {
        let step = values["adamStep"].as_u64().ok_or("checkpoint lacks adamStep")?;
        adam.restore(take(tensors, "train.adam.m")?, take(tensors, "train.adam.v")?, step)?;
        let words: Vec<u64> =
            serde_json::from_value(values["rng"].clone()).map_err(|e| format!("bad rng state: {e}"))?;
        let state: [u64; 4] = words
            .try_into()
            .map_err(|_| "rng state must have 4 words".to_string())?;
        Rng::from_state(state).ok_or_else(|| "rng state is all zeros".to_string())
    }
}

/// Takes a tensor out of a checkpoint's map, with a clear error when it is missing.
pub fn take<'a>(tensors: &'a HashMap<String, Tensor>, name: &str) -> Result<&'a Tensor, String> {
    tensors
        .get(name)
        .ok_or_else(|| format!("checkpoint lacks tensor `{name}`"))
}

/// Copies a tensor to a CPU `Vec<f32>`.
pub fn to_vec(t: &Tensor) -> Vec<f32> {
    let t = t
        .to_device(Device::Cpu)
        .to_kind(Kind::Float)
        .contiguous()
        .flatten(0, -1);
    let n = t.numel();
    let mut out = vec![0.0f32; n];
    t.copy_data(&mut out, n);
    out
}

/// `1 − Var(y − ŷ) / Var(y)`: how much of the returns' variance the value function explains.
pub fn explained_variance(predicted: &[f32], actual: &[f32]) -> f64 {
    let n = actual.len() as f64;
    let mean = |xs: &mut dyn Iterator<Item = f64>| xs.sum::<f64>() / n;
    let mean_y = mean(&mut actual.iter().map(|&y| f64::from(y)));
    let var_y = mean(&mut actual.iter().map(|&y| (f64::from(y) - mean_y).powi(2)));
    let diffs: Vec<f64> = actual.iter().zip(predicted).map(|(&y, &p)| f64::from(y - p)).collect();
    let mean_d = diffs.iter().sum::<f64>() / n;
    let var_d = diffs.iter().map(|d| (d - mean_d).powi(2)).sum::<f64>() / n;
    if var_y == 0.0 { f64::NAN } else { 1.0 - var_d / var_y }
}
