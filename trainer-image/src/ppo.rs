//! Proximal Policy Optimization (Schulman et al. 2017) with the implementation details that make it
//! work (Huang et al., "The 37 implementation details of PPO"): GAE, per-minibatch advantage
//! normalization, clipped surrogate and value losses, entropy bonus, global gradient clipping, linear
//! learning-rate annealing, orthogonal initialization, optional KL early stop.
//!
//! Hyperparameters: [`PpoConfig`]. Every agent row of a multi-agent environment is one sample of the
//! shared policy, so `numEnvs × agents × numSteps` rows make a batch.
//!
//! Discrete actions come from a categorical policy over the network's logits. Continuous actions (a
//! Box) come from a diagonal Gaussian: the network gives the mean, and a learned log standard deviation
//! that does not depend on the state ([`LOG_STD`]) gives the spread. The sample is sent as it is and
//! the environment clips it to the box; the log-probability is the unclipped sample's, as in CleanRL.
//! Observation normalization and reward scaling ([`crate::normalize`]) are on by default for
//! continuous actions.
//!
//! Speed on a CPU comes from doing little per step: one policy forward pass for the whole vector,
//! actions sampled in Rust from the logits (no tensor round trips), the rollout's values in one batched
//! pass afterwards, GAE in Rust, and one flat optimizer.

use std::collections::HashMap;

use drlaas_crds::{NetworkConfig, PpoConfig};
use drlaas_envs::{EnvDescriptor, Rng};
use tch::{Device, Kind, Tensor};

use crate::adam::Adam;
use crate::learner::{EnvRunner, Learner, LearnerState, Schedule, UpdateStats, explained_variance, to_vec};
use crate::network::Network;
use crate::params::{Init, ParamBuilder, ParamStore};

/// Name of the Gaussian policy's log standard deviations, one per action component.
pub const LOG_STD: &str = "policy.log_std";

/// PPO learner state.
#[derive(Debug)]
pub struct Ppo {
    config: PpoConfig,
    params: ParamStore,
    policy: Network,
    value: Network,
    adam: Adam,
    rng: Rng,
    device: Device,
    rows: usize,
    obs_len: usize,
    num_actions: usize,
    num_envs: usize,
    /// Index of [`LOG_STD`] among the parameters, for continuous actions.
    log_std: Option<usize>,
    rollout: Rollout,
}

/// One iteration's experience, `[step][row]` flattened.
#[derive(Debug)]
struct Rollout {
    obs: Vec<f32>,
    /// Discrete actions (empty for continuous ones).
    actions: Vec<i64>,
    /// Continuous actions, `[step][row][component]` (empty for discrete ones).
    continuous: Vec<f32>,
    logprobs: Vec<f32>,
    rewards: Vec<f32>,
    dones: Vec<f32>,
    truncated: Vec<bool>,
    values: Vec<f32>,
    logits: Vec<f32>,
}

impl Ppo {
    /// A fresh learner: weights and sampling seeded from `seed`.
    pub fn new(
        config: PpoConfig,
        network: &NetworkConfig,
        environment: &EnvDescriptor,
        seed: u64,
        device: Device,
    ) -> Self {
        let (obs_shape, num_actions, agents) = (
            &environment.obs_shape(),
            environment.num_actions(),
            environment.agents(),
        );
        let continuous = environment.action_space().is_continuous();
        let mut builder = ParamBuilder::default();
        let policy = Network::declare(&mut builder, "policy", obs_shape, network, num_actions, 0.01);
        let log_std = continuous.then(|| {
            builder.add(
                LOG_STD.into(),
                vec![num_actions as i64],
                Init::Const(config.log_std_init),
            )
        });
        let value = Network::declare(&mut builder, "value", obs_shape, network, 1, 1.0);
        let params = builder.build(device, seed);
        let adam = Adam::new(&params);
        let num_envs = config.num_envs as usize;
        let rows = num_envs * agents;
        let obs_len = obs_shape.iter().product();
        let n = rows * config.num_steps as usize;
        Self {
            rollout: Rollout {
                obs: vec![0.0; n * obs_len],
                actions: if continuous { Vec::new() } else { vec![0; n] },
                continuous: if continuous {
                    vec![0.0; n * num_actions]
                } else {
                    Vec::new()
                },
                logprobs: vec![0.0; n],
                rewards: vec![0.0; n],
                dones: vec![0.0; n],
                truncated: vec![false; n],
                values: vec![0.0; n],
                logits: vec![0.0; rows * num_actions],
            },
            config,
            params,
            policy,
            value,
            adam,
            rng: Rng::stream(seed, 0x5050_4f00),
            device,
            rows,
            obs_len,
            num_actions,
            num_envs,
            log_std,
        }
    }

    /// The Gaussian's log standard deviations, for continuous actions.
    fn log_std_values(&self) -> Option<Vec<f32>> {
        self.log_std.map(|i| to_vec(&self.params.leaves()[i]))
    }

    /// Steps the environments `numSteps` times with the current policy. Values are not computed here:
    /// [`Ppo::evaluate_values`] does the whole rollout in one batched pass afterwards.
    fn collect(&mut self, runner: &mut EnvRunner) {
        let (rows, obs_len, actions) = (self.rows, self.obs_len, self.num_actions);
        let _guard = tch::no_grad_guard();
        let log_std = self.log_std_values();
        let views = self.params.leaves();
        let r = &mut self.rollout;
        for t in 0..self.config.num_steps as usize {
            let obs = runner.obs_tensor(self.device);
            let logits = self.policy.forward(views, &obs);
            logits.to_device(Device::Cpu).copy_data(&mut r.logits, rows * actions);
            r.obs[t * rows * obs_len..(t + 1) * rows * obs_len].copy_from_slice(&runner.obs);
            for row in 0..rows {
                let outputs = &r.logits[row * actions..(row + 1) * actions];
                r.logprobs[t * rows + row] = match &log_std {
                    None => {
                        let (action, logprob) = sample(outputs, &mut self.rng);
                        runner.actions[row] = action as u32;
                        r.actions[t * rows + row] = action as i64;
                        logprob
                    }
                    Some(log_std) => {
                        let at = (t * rows + row) * actions;
                        let action = &mut r.continuous[at..at + actions];
                        let logprob = sample_gaussian(outputs, log_std, &mut self.rng, action);
                        runner.continuous[row * actions..(row + 1) * actions].copy_from_slice(action);
                        logprob
                    }
                };
            }
            runner.step();
            for row in 0..rows {
                r.rewards[t * rows + row] = runner.rewards[row];
                r.dones[t * rows + row] = f32::from(u8::from(runner.dones[row]));
            }
            r.truncated[t * rows..(t + 1) * rows].copy_from_slice(runner.truncated());
        }
    }

    /// Values of every rollout observation (into the rollout) and of the observation after the last
    /// step (returned, for bootstrapping), in one forward pass.
    fn evaluate_values(&mut self, runner: &EnvRunner) -> Vec<f32> {
        let n = self.rollout.values.len();
        let obs = Tensor::cat(
            &[Tensor::from_slice(&self.rollout.obs), Tensor::from_slice(&runner.obs)],
            0,
        )
        .view([(n + self.rows) as i64, self.obs_len as i64])
        .to_device(self.device);
        let values = tch::no_grad(|| to_vec(&self.value.forward(self.params.leaves(), &obs)));
        self.rollout.values.copy_from_slice(&values[..n]);
        values[n..].to_vec()
    }

    /// Generalized advantage estimates and returns, bootstrapped from the value of the final observation.
    fn advantages(&self, next_values: &[f32]) -> (Vec<f32>, Vec<f32>) {
        let (rows, steps) = (self.rows, self.config.num_steps as usize);
        let (gamma, lambda) = (self.config.gamma as f32, self.config.gae_lambda as f32);
        let r = &self.rollout;
        let mut advantages = vec![0.0; rows * steps];
        for (row, &bootstrap) in next_values.iter().enumerate().take(rows) {
            let mut last = 0.0;
            for t in (0..steps).rev() {
                let i = t * rows + row;
                let next_value = if t + 1 == steps { bootstrap } else { r.values[i + rows] };
                if r.truncated[i] {
                    // The time limit cut the episode; the state it would have reached was replaced by
                    // the next episode's first observation, so bootstrap from the last state's value.
                    last = r.rewards[i] + (gamma - 1.0) * r.values[i];
                } else {
                    let nonterminal = 1.0 - r.dones[i];
                    let delta = r.rewards[i] + gamma * next_value * nonterminal - r.values[i];
                    last = delta + gamma * lambda * nonterminal * last;
                }
                advantages[i] = last;
            }
        }
        let returns = advantages.iter().zip(&r.values).map(|(a, v)| a + v).collect();
        (advantages, returns)
    }

    /// Minibatch epochs over the rollout; returns the mean diagnostics.
    fn learn(&mut self, advantages: &[f32], returns: &[f32], learning_rate: f64) -> UpdateStats {
        let c = &self.config;
        let n = self.rows * c.num_steps as usize;
        let minibatch = (n / c.num_minibatches as usize) as i64;
        let dev = self.device;
        let r = &self.rollout;
        let normalized;
        let advantages = if c.norm_adv && c.num_minibatches == 1 {
            normalized = normalize(advantages);
            &normalized
        } else {
            advantages
        };
        let actions = if self.log_std.is_some() {
            Tensor::from_slice(&r.continuous).view([n as i64, self.num_actions as i64])
        } else {
            Tensor::from_slice(&r.actions).unsqueeze(1)
        };
        let batch = [
            Tensor::from_slice(&r.obs).view([n as i64, self.obs_len as i64]),
            actions,
            Tensor::from_slice(&r.logprobs),
            Tensor::from_slice(advantages),
            Tensor::from_slice(returns),
            Tensor::from_slice(&r.values),
        ]
        .map(|t| t.to_device(dev));
        // Diagnostics come from the last epoch run (every epoch when a KL target must be checked), so
        // the other epochs spend no kernels on them.
        let mut totals = Tensor::zeros([5], (Kind::Float, dev));
        let mut count = 0.0;
        let mut order: Vec<i64> = (0..n as i64).collect();
        for epoch in 0..c.update_epochs {
            let diagnose = epoch + 1 == c.update_epochs || c.target_kl.is_some();
            if diagnose {
                let _ = totals.zero_();
                count = 0.0;
            }
            shuffle(&mut order, &mut self.rng);
            let perm = Tensor::from_slice(&order).to_device(dev);
            let shuffled = batch.each_ref().map(|t| t.index_select(0, &perm));
            for k in 0..c.num_minibatches as i64 {
                let [obs, actions, old_logprobs, adv, ret, old_values] =
                    shuffled.each_ref().map(|t| t.narrow(0, k * minibatch, minibatch));
                let params = self.params.leaves();
                let policy = Distribution::new(self.policy.forward(params, &obs), self.log_std.map(|i| &params[i]));
                let logprobs = policy.log_prob(&actions);
                let log_ratio = &logprobs - &old_logprobs;
                let ratio = log_ratio.exp();
                // With one minibatch the advantages were normalized once for the whole batch.
                let adv = if c.norm_adv && c.num_minibatches > 1 {
                    (&adv - adv.mean(Kind::Float)) / (adv.std(true) + 1e-8)
                } else {
                    adv
                };
                let clipped = ratio.clamp(1.0 - c.clip_coef, 1.0 + c.clip_coef);
                let policy_loss = (-&adv * &ratio).max_other(&(-&adv * clipped)).mean(Kind::Float);
                let values = self.value.forward(params, &obs).squeeze_dim(1);
                let value_loss = if c.clip_vloss {
                    let clipped = &old_values + (&values - &old_values).clamp(-c.clip_coef, c.clip_coef);
                    (&values - &ret)
                        .square()
                        .max_other(&(clipped - &ret).square())
                        .mean(Kind::Float)
                        * 0.5
                } else {
                    (&values - &ret).square().mean(Kind::Float) * 0.5
                };
                let entropy = || policy.entropy();
                let mut loss = &policy_loss + &value_loss * c.vf_coef;
                if c.ent_coef != 0.0 {
                    loss -= entropy() * c.ent_coef;
                }
                self.adam.minimize(&self.params, &loss, learning_rate, c.max_grad_norm);
                if diagnose {
                    tch::no_grad(|| {
                        let approx_kl = ((&ratio - 1.0) - &log_ratio).mean(Kind::Float);
                        let clip_fraction = (&ratio - 1.0)
                            .abs()
                            .gt(c.clip_coef)
                            .to_kind(Kind::Float)
                            .mean(Kind::Float);
                        totals += Tensor::stack(
                            &[
                                policy_loss.detach(),
                                value_loss.detach(),
                                entropy().detach(),
                                approx_kl,
                                clip_fraction,
                            ],
                            0,
                        );
                    });
                    count += 1.0;
                }
            }
            if let Some(target) = c.target_kl
                && f64::try_from(totals.get(3)).unwrap_or(0.0) / count > target
            {
                break;
            }
        }
        let means = to_vec(&(totals / count));
        let mean = |i: usize| Some(f64::from(means[i]));
        UpdateStats {
            learning_rate,
            policy_loss: mean(0),
            value_loss: mean(1),
            entropy: mean(2),
            approx_kl: mean(3),
            clip_fraction: mean(4),
            explained_variance: Some(explained_variance(&r.values, returns)),
            action_std: self
                .log_std_values()
                .map(|log_std| log_std.iter().map(|ls| f64::from(ls.exp())).sum::<f64>() / log_std.len() as f64),
            ..UpdateStats::default()
        }
    }
}

impl Learner for Ppo {
    fn num_envs(&self) -> usize {
        self.num_envs
    }

    fn env_steps_per_iteration(&self) -> u64 {
        self.num_envs as u64 * u64::from(self.config.num_steps)
    }

    fn iterate(&mut self, runner: &mut EnvRunner, schedule: Schedule) -> UpdateStats {
        let learning_rate = if self.config.anneal_lr {
            self.config.learning_rate * schedule.remaining()
        } else {
            self.config.learning_rate
        };
        self.collect(runner);
        let next_values = self.evaluate_values(runner);
        let (advantages, returns) = self.advantages(&next_values);
        self.learn(&advantages, &returns, learning_rate)
    }

    fn params(&self) -> &ParamStore {
        &self.params
    }

    fn params_mut(&mut self) -> &mut ParamStore {
        &mut self.params
    }

    fn policy(&self) -> &Network {
        &self.policy
    }

    fn save_state(&self) -> LearnerState {
        LearnerState::of_optimizer(&self.adam, &self.rng)
    }

    fn restore_state(&mut self, tensors: &HashMap<String, Tensor>, values: &serde_json::Value) -> Result<(), String> {
        self.rng = LearnerState::restore_optimizer(tensors, values, &mut self.adam)?;
        Ok(())
    }
}

/// The policy's distribution over one minibatch's actions.
enum Distribution<'a> {
    /// Log-probabilities of each discrete action, `[batch, actions]`.
    Categorical(Tensor),
    /// A diagonal Gaussian: means `[batch, components]`, log standard deviations `[components]`.
    Gaussian { mean: Tensor, log_std: &'a Tensor },
}

/// `ln √(2π)`: the Gaussian's log-density constant per component.
const LN_SQRT_2PI: f64 = 0.918_938_533_204_672_8;

impl<'a> Distribution<'a> {
    /// The distribution the network's `outputs` define: logits, or a Gaussian's means when the
    /// policy has `log_std`.
    fn new(outputs: Tensor, log_std: Option<&'a Tensor>) -> Self {
        match log_std {
            None => Self::Categorical(outputs.log_softmax(-1, Kind::Float)),
            Some(log_std) => Self::Gaussian { mean: outputs, log_std },
        }
    }

    /// Log-probability of each row's action (`[batch, 1]` indices, or `[batch, components]` values).
    fn log_prob(&self, actions: &Tensor) -> Tensor {
        match self {
            Self::Categorical(logp) => logp.gather(1, actions, false).squeeze_dim(1),
            Self::Gaussian { mean, log_std } => {
                let z = (actions - mean) * (-*log_std).exp();
                (z.square() * -0.5 - *log_std - LN_SQRT_2PI).sum_dim_intlist(-1, false, Kind::Float)
            }
        }
    }

    /// Mean entropy over the batch.
    fn entropy(&self) -> Tensor {
        match self {
            Self::Categorical(logp) => -(logp.exp() * logp)
                .sum_dim_intlist(-1, false, Kind::Float)
                .mean(Kind::Float),
            Self::Gaussian { log_std, .. } => (*log_std + 0.5 + LN_SQRT_2PI).sum(Kind::Float),
        }
    }
}

/// Samples a continuous action from the Gaussian with `mean` and `log_std` into `action`; returns
/// its log-probability.
pub fn sample_gaussian(mean: &[f32], log_std: &[f32], rng: &mut Rng, action: &mut [f32]) -> f32 {
    let mut logprob = 0.0;
    for ((a, &mu), &ls) in action.iter_mut().zip(mean).zip(log_std) {
        let z = rng.normal_f32();
        *a = mu + ls.exp() * z;
        logprob += -0.5 * z * z - ls - LN_SQRT_2PI as f32;
    }
    logprob
}

/// Samples an action from softmax(`logits`); returns it with its log-probability.
pub fn sample(logits: &[f32], rng: &mut Rng) -> (usize, f32) {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let sum: f32 = logits.iter().map(|&l| (l - max).exp()).sum();
    let mut u = rng.unit_f64() as f32 * sum;
    let mut action = logits.len() - 1;
    for (i, &l) in logits.iter().enumerate() {
        u -= (l - max).exp();
        if u <= 0.0 {
            action = i;
            break;
        }
    }
    (action, logits[action] - max - sum.ln())
}

/// `(x − mean) / (std + 1e-8)` with the unbiased standard deviation, as torch's `std` computes it.
fn normalize(xs: &[f32]) -> Vec<f32> {
    let n = xs.len() as f64;
    let mean = xs.iter().map(|&x| f64::from(x)).sum::<f64>() / n;
    let var = xs.iter().map(|&x| (f64::from(x) - mean).powi(2)).sum::<f64>() / (n - 1.0).max(1.0);
    let scale = 1.0 / (var.sqrt() + 1e-8);
    xs.iter().map(|&x| ((f64::from(x) - mean) * scale) as f32).collect()
}

/// Fisher–Yates shuffle with our generator (so minibatches are reproducible on every device).
pub fn shuffle<T>(items: &mut [T], rng: &mut Rng) {
    for i in (1..items.len()).rev() {
        items.swap(i, rng.index(i + 1));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cartpole() -> EnvDescriptor {
        serde_json::from_str(r#"{"kind": "cartpole"}"#).unwrap()
    }

    #[test]
    fn sampling_follows_the_softmax() {
        let mut rng = Rng::new(3);
        let logits = [0.0f32, (3.0f32).ln()];
        let ones = (0..20_000).filter(|_| sample(&logits, &mut rng).0 == 1).count();
        assert!((ones as f64 / 20_000.0 - 0.75).abs() < 0.02, "{ones}");
        let (_, logprob) = sample(&[0.0, 0.0, 0.0, 0.0], &mut rng);
        assert!((logprob - 0.25f32.ln()).abs() < 1e-6);
    }

    #[test]
    fn gaussian_samples_and_log_probabilities_agree_with_the_tensor_form() {
        let mut rng = Rng::new(5);
        let (mean, log_std) = ([0.5f32, -1.0], [0.0f32, (0.5f32).ln()]);
        let n = 20_000;
        let mut sums = [0.0f64; 2];
        let mut squares = [0.0f64; 2];
        let mut action = [0.0f32; 2];
        let mut last = (0.0, [0.0f32; 2]);
        for _ in 0..n {
            let logprob = sample_gaussian(&mean, &log_std, &mut rng, &mut action);
            for k in 0..2 {
                sums[k] += f64::from(action[k]);
                squares[k] += f64::from(action[k] - mean[k]).powi(2);
            }
            last = (logprob, action);
        }
        for k in 0..2 {
            assert!((sums[k] / n as f64 - f64::from(mean[k])).abs() < 0.02, "{sums:?}");
            let std = (squares[k] / n as f64).sqrt();
            assert!((std - f64::from(log_std[k].exp())).abs() < 0.02, "{std}");
        }
        // The sampler's log-probability is the one the update computes with tensors.
        let log_std_t = Tensor::from_slice(&log_std);
        let dist = Distribution::new(Tensor::from_slice(&mean).unsqueeze(0), Some(&log_std_t));
        let tensor_logprob = dist
            .log_prob(&Tensor::from_slice(&last.1).unsqueeze(0))
            .double_value(&[0]) as f32;
        assert!((tensor_logprob - last.0).abs() < 1e-5, "{tensor_logprob} {}", last.0);
        // Entropy of N(μ, σ²) per component: ½ ln(2πe σ²).
        let entropy = dist.entropy().double_value(&[]);
        let expected: f64 = log_std
            .iter()
            .map(|&ls| 0.5 * (2.0 * std::f64::consts::PI * std::f64::consts::E).ln() + f64::from(ls))
            .sum();
        assert!((entropy - expected).abs() < 1e-5, "{entropy} {expected}");
    }

    #[test]
    fn a_gaussian_policy_starts_at_its_configured_log_std() {
        // Declared spaces only: building the learner starts no environment server.
        let pendulum: EnvDescriptor = serde_json::from_str(
            r#"{"kind": "gymnasium", "id": "Pendulum-v1", "observationShape": [3], "continuousActions": 2}"#,
        )
        .unwrap();
        let config = PpoConfig {
            log_std_init: -2.0,
            ..PpoConfig::default()
        };
        let ppo = Ppo::new(config, &NetworkConfig::default(), &pendulum, 0, Device::Cpu);
        assert_eq!(ppo.log_std_values(), Some(vec![-2.0, -2.0]));
        let discrete = Ppo::new(
            PpoConfig::default(),
            &NetworkConfig::default(),
            &cartpole(),
            0,
            Device::Cpu,
        );
        assert_eq!(discrete.log_std_values(), None);
    }

    #[test]
    fn gae_matches_a_hand_computation() {
        let config = PpoConfig {
            num_envs: 1,
            num_steps: 3,
            gamma: 0.5,
            gae_lambda: 0.5,
            ..PpoConfig::default()
        };
        let mut ppo = Ppo::new(config, &NetworkConfig::default(), &cartpole(), 0, Device::Cpu);
        ppo.rollout.rewards = vec![1.0, 1.0, 1.0];
        ppo.rollout.values = vec![0.0, 2.0, 4.0];
        ppo.rollout.dones = vec![0.0, 1.0, 0.0];
        let (adv, ret) = ppo.advantages(&[8.0]);
        // t=2: δ = 1 + .5·8 − 4 = 1; t=1 (terminal): δ = 1 − 2 = −1; t=0: δ = 1 + .5·2 − 0 = 2, A = 2 + .25·(−1).
        assert_eq!(adv, vec![1.75, -1.0, 1.0]);
        assert_eq!(ret, vec![1.75, 1.0, 5.0]);
        // The same episode end as a time limit: t=1 bootstraps from its own value, δ = 1 + (.5 − 1)·2 = 0.
        ppo.rollout.truncated = vec![false, true, false];
        let (adv, _) = ppo.advantages(&[8.0]);
        assert_eq!(adv, vec![2.0, 0.0, 1.0]);
    }
}
