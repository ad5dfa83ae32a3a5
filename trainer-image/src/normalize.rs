//! Observation normalization and reward scaling: what Gymnasium's `NormalizeObservation` and
//! `NormalizeReward` wrappers do for CleanRL's continuous PPO, done on the trainer's flat buffers.
//!
//! The statistics are part of what was learned: a policy trained on normalized observations acts on
//! nonsense without them. So they go into the model artifact (tensors `normalize.obs.mean`,
//! `normalize.obs.var`, `normalize.obs.count`, `normalize.reward.var`, `normalize.reward.count`),
//! the evaluator applies the same observation statistics (frozen), and a warm start continues from
//! them. Checkpoints also keep them as JSON in `f64`, so a resumed run replays exactly.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use tch::Tensor;

/// Observations and scaled rewards are clipped to `±CLIP`, as the Gymnasium wrappers are used.
const CLIP: f64 = 10.0;
/// Added to a variance before its square root.
const EPSILON: f64 = 1e-8;

/// Mean and variance of a stream of vectors, merged one batch at a time (Chan et al.'s parallel
/// update). Starts at mean 0, variance 1 and a tiny count, as Gymnasium's `RunningMeanStd`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunningMeanStd {
    /// Mean of each component.
    pub mean: Vec<f64>,
    /// Variance of each component.
    pub var: Vec<f64>,
    /// Vectors seen (plus the starting 1e-4).
    pub count: f64,
}

impl RunningMeanStd {
    /// Statistics of vectors of `len` components, before any was seen.
    pub fn new(len: usize) -> Self {
        Self {
            mean: vec![0.0; len],
            var: vec![1.0; len],
            count: 1e-4,
        }
    }

    /// Merges a batch of vectors (rows of `self.mean.len()` components, flattened).
    pub fn update(&mut self, batch: &[f32]) {
        let len = self.mean.len();
        let rows = batch.len() / len;
        if rows == 0 {
            return;
        }
        let n = rows as f64;
        for (i, (mean, var)) in self.mean.iter_mut().zip(&mut self.var).enumerate() {
            let column = || batch.iter().skip(i).step_by(len).map(|&x| f64::from(x));
            let batch_mean = column().sum::<f64>() / n;
            let batch_var = column().map(|x| (x - batch_mean).powi(2)).sum::<f64>() / n;
            let delta = batch_mean - *mean;
            let total = self.count + n;
            *mean += delta * n / total;
            let m2 = *var * self.count + batch_var * n + delta * delta * self.count * n / total;
            *var = m2 / total;
        }
        self.count += n;
    }

    /// Standard deviation of component `i` (with [`EPSILON`] added to the variance).
    fn std(&self, i: usize) -> f64 {
        (self.var[i] + EPSILON).sqrt()
    }

    fn tensors(&self, prefix: &str) -> Vec<(String, Tensor)> {
        let floats = |xs: &[f64]| Tensor::from_slice(&xs.iter().map(|&x| x as f32).collect::<Vec<_>>());
        vec![
            (format!("{prefix}.mean"), floats(&self.mean)),
            (format!("{prefix}.var"), floats(&self.var)),
            (format!("{prefix}.count"), floats(&[self.count])),
        ]
    }

    /// Reads [`RunningMeanStd::tensors`] back; `None` when they are absent or of another length.
    fn from_tensors(tensors: &HashMap<String, Tensor>, prefix: &str, len: usize) -> Option<Self> {
        let read = |name: &str| {
            let t = tensors.get(&format!("{prefix}.{name}"))?;
            Some(crate::learner::to_vec(t).into_iter().map(f64::from).collect::<Vec<_>>())
        };
        let (mean, var, count) = (read("mean")?, read("var")?, read("count")?);
        (mean.len() == len && var.len() == len && count.len() == 1).then(|| Self {
            mean,
            var,
            count: count[0],
        })
    }
}

/// Observations centred and scaled by their running statistics, then clipped to ±10.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ObsNormalizer {
    /// The statistics of every observation seen while not frozen.
    pub stats: RunningMeanStd,
    /// Whether new observations still update the statistics (training) or not (evaluation).
    pub frozen: bool,
}

impl ObsNormalizer {
    /// Updates the statistics with `obs` (rows of one observation each) unless frozen, then
    /// normalizes `obs` in place.
    pub fn apply(&mut self, obs: &mut [f32]) {
        if !self.frozen {
            self.stats.update(obs);
        }
        let len = self.stats.mean.len();
        let scale: Vec<(f64, f64)> = (0..len)
            .map(|i| (self.stats.mean[i], 1.0 / self.stats.std(i)))
            .collect();
        for row in obs.chunks_exact_mut(len) {
            for (x, &(mean, inv_std)) in row.iter_mut().zip(&scale) {
                *x = ((f64::from(*x) - mean) * inv_std).clamp(-CLIP, CLIP) as f32;
            }
        }
    }
}

/// Rewards divided by the running standard deviation of each row's discounted return, then clipped
/// to ±10: the scale of the value targets stays near 1 whatever the environment pays.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RewardScaler {
    /// Statistics of the discounted returns.
    pub stats: RunningMeanStd,
    /// The discount of the return.
    pub gamma: f64,
    /// The discounted return of each row's current episode so far.
    pub returns: Vec<f64>,
}

impl RewardScaler {
    /// Scales `rewards` in place; `dones` ends the rows' episodes after this step.
    pub fn apply(&mut self, rewards: &mut [f32], dones: &[bool]) {
        self.returns.resize(rewards.len(), 0.0);
        for (g, &r) in self.returns.iter_mut().zip(rewards.iter()) {
            *g = *g * self.gamma + f64::from(r);
        }
        let returns: Vec<f32> = self.returns.iter().map(|&g| g as f32).collect();
        self.stats.update(&returns);
        let inv_std = 1.0 / self.stats.std(0);
        for ((r, g), &done) in rewards.iter_mut().zip(&mut self.returns).zip(dones) {
            *r = (f64::from(*r) * inv_std).clamp(-CLIP, CLIP) as f32;
            if done {
                *g = 0.0;
            }
        }
    }
}

/// What the environment runner applies to what the learner sees: neither, either or both.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Normalization {
    /// Observation normalization.
    pub obs: Option<ObsNormalizer>,
    /// Reward scaling (training only: evaluations report the environment's own rewards).
    pub reward: Option<RewardScaler>,
}

impl Normalization {
    /// Fresh statistics for observations of `obs_len` floats and returns discounted by `gamma`.
    pub fn new(normalize_obs: bool, scale_rewards: bool, obs_len: usize, gamma: f64) -> Self {
        Self {
            obs: normalize_obs.then(|| ObsNormalizer {
                stats: RunningMeanStd::new(obs_len),
                frozen: false,
            }),
            reward: scale_rewards.then(|| RewardScaler {
                stats: RunningMeanStd::new(1),
                gamma,
                returns: Vec::new(),
            }),
        }
    }

    /// The statistics as named tensors, for the model artifact.
    pub fn tensors(&self) -> Vec<(String, Tensor)> {
        let mut tensors = Vec::new();
        if let Some(obs) = &self.obs {
            tensors.extend(obs.stats.tensors("normalize.obs"));
        }
        if let Some(reward) = &self.reward {
            tensors.extend(reward.stats.tensors("normalize.reward"));
        }
        tensors
    }

    /// Takes the statistics a model carries (a warm start's parent) where this run uses them and
    /// their shapes match; returns how many of the two it took.
    pub fn load(&mut self, tensors: &HashMap<String, Tensor>) -> usize {
        let mut loaded = 0;
        if let Some(obs) = &mut self.obs
            && let Some(stats) = RunningMeanStd::from_tensors(tensors, "normalize.obs", obs.stats.mean.len())
        {
            obs.stats = stats;
            loaded += 1;
        }
        if let Some(reward) = &mut self.reward
            && let Some(stats) = RunningMeanStd::from_tensors(tensors, "normalize.reward", 1)
        {
            reward.stats = stats;
            loaded += 1;
        }
        loaded
    }

    /// The observation statistics of a model (`None` if it was trained without), frozen: what an
    /// evaluation of it applies.
    pub fn of_model(tensors: &HashMap<String, Tensor>, obs_len: usize) -> Option<ObsNormalizer> {
        RunningMeanStd::from_tensors(tensors, "normalize.obs", obs_len)
            .map(|stats| ObsNormalizer { stats, frozen: true })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_merge_to_the_statistics_of_the_whole() {
        let mut rms = RunningMeanStd::new(2);
        let data: Vec<f32> = (0..40)
            .map(|i| (i as f32 * 0.37).sin() * 3.0 + (i % 2) as f32 * 5.0)
            .collect();
        rms.update(&data[..12]);
        rms.update(&data[12..14]);
        rms.update(&data[14..]);
        for c in 0..2 {
            let column: Vec<f64> = data.iter().skip(c).step_by(2).map(|&x| f64::from(x)).collect();
            let mean = column.iter().sum::<f64>() / 20.0;
            let var = column.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / 20.0;
            // The starting count of 1e-4 (mean 0, variance 1) weighs next to nothing.
            assert!((rms.mean[c] - mean).abs() < 1e-4, "{} {mean}", rms.mean[c]);
            assert!((rms.var[c] - var).abs() < 1e-3, "{} {var}", rms.var[c]);
        }
        assert!((rms.count - 20.0).abs() < 1e-3);
    }

    #[test]
    fn observations_are_standardized_and_clipped_and_frozen_statistics_stay() {
        let mut n = ObsNormalizer {
            stats: RunningMeanStd::new(1),
            frozen: false,
        };
        let mut obs: Vec<f32> = (0..1000).map(|i| 100.0 + (i % 10) as f32).collect();
        n.apply(&mut obs);
        let mean = obs.iter().sum::<f32>() / 1000.0;
        let var = obs.iter().map(|x| (x - mean).powi(2)).sum::<f32>() / 1000.0;
        assert!(mean.abs() < 1e-3 && (var - 1.0).abs() < 1e-3, "{mean} {var}");
        n.frozen = true;
        let before = n.stats.clone();
        let mut far = vec![1e6_f32];
        n.apply(&mut far);
        assert_eq!((far[0], &n.stats), (10.0, &before));
    }

    #[test]
    fn rewards_are_divided_by_the_spread_of_the_discounted_return() {
        let mut scaler = RewardScaler {
            stats: RunningMeanStd::new(1),
            gamma: 0.5,
            returns: Vec::new(),
        };
        // Two rows paying -8 a step; row 1's episode ends at the first step.
        let mut rewards = [-8.0, -8.0];
        scaler.apply(&mut rewards, &[false, true]);
        assert_eq!(scaler.returns, [-8.0, 0.0]);
        let std = (scaler.stats.var[0] + EPSILON).sqrt();
        assert!((f64::from(rewards[0]) - (-8.0 / std).max(-10.0)).abs() < 1e-5);
        let mut rewards = [-8.0, -8.0];
        scaler.apply(&mut rewards, &[false, false]);
        assert_eq!(scaler.returns, [-12.0, -8.0]);
    }

    #[test]
    fn statistics_survive_the_artifact_tensors() {
        let mut n = Normalization::new(true, true, 3, 0.99);
        n.obs.as_mut().unwrap().apply(&mut [1.0, 2.0, 3.0, 2.0, 4.0, 9.0]);
        n.reward.as_mut().unwrap().apply(&mut [3.0], &[false]);
        let tensors: HashMap<String, Tensor> = n.tensors().into_iter().collect();
        let mut fresh = Normalization::new(true, true, 3, 0.99);
        assert_eq!(fresh.load(&tensors), 2);
        let obs = fresh.obs.unwrap().stats;
        assert!(
            (obs.mean[2] - 6.0).abs() < 1e-3 && (obs.var[2] - 9.0).abs() < 1e-2,
            "{obs:?}"
        );
        let frozen = Normalization::of_model(&tensors, 3).unwrap();
        assert!(frozen.frozen);
        // Other observation shapes do not take them.
        assert!(Normalization::of_model(&tensors, 4).is_none());
        assert_eq!(Normalization::new(true, false, 4, 0.99).load(&tensors), 0);
    }
}
