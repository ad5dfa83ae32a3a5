//! Deep Q-Network (Mnih et al. 2015) with double-DQN targets (van Hasselt et al. 2016): an ε-greedy
//! behaviour policy with a linear schedule, a uniform replay buffer, a target network (hard or Polyak
//! updates) and the Huber loss.
//!
//! Hyperparameters: [`DqnConfig`]. Frequencies are in env steps, so results do not depend on how many
//! environments share a vector step: after each vector step, as many gradient steps (and target
//! updates) run as there were multiples of `trainFrequency` (`targetNetworkFrequency`) crossed.

use std::collections::HashMap;

use drlaas_crds::{DqnConfig, NetworkConfig};
use drlaas_envs::{EnvDescriptor, Rng};
use tch::{Device, Kind, Reduction, Tensor};

use crate::adam::Adam;
use crate::learner::{EnvRunner, Learner, LearnerState, Schedule, UpdateStats, take, to_vec};
use crate::network::Network;
use crate::params::{ParamBuilder, ParamStore};

/// Vector steps in one iteration (one progress line, the unit of `checkpointEvery`).
pub const VECTOR_STEPS_PER_ITERATION: u64 = 128;

/// DQN learner state.
#[derive(Debug)]
pub struct Dqn {
    config: DqnConfig,
    params: ParamStore,
    target: Tensor,
    q: Network,
    adam: Adam,
    rng: Rng,
    device: Device,
    num_actions: usize,
    num_envs: usize,
    replay: Replay,
    q_values: Vec<f32>,
}

/// Uniform replay buffer of agent-row transitions (a ring of `bufferSize` slots).
#[derive(Debug)]
struct Replay {
    obs_len: usize,
    capacity: usize,
    len: usize,
    next: usize,
    obs: Vec<f32>,
    next_obs: Vec<f32>,
    actions: Vec<f32>,
    rewards: Vec<f32>,
    dones: Vec<f32>,
}

impl Replay {
    fn new(capacity: usize, obs_len: usize) -> Self {
        Self {
            obs_len,
            capacity,
            len: 0,
            next: 0,
            obs: vec![0.0; capacity * obs_len],
            next_obs: vec![0.0; capacity * obs_len],
            actions: vec![0.0; capacity],
            rewards: vec![0.0; capacity],
            dones: vec![0.0; capacity],
        }
    }

    fn push(&mut self, obs: &[f32], action: u32, reward: f32, next_obs: &[f32], done: bool) {
        let (i, l) = (self.next, self.obs_len);
        self.obs[i * l..(i + 1) * l].copy_from_slice(obs);
        self.next_obs[i * l..(i + 1) * l].copy_from_slice(next_obs);
        self.actions[i] = action as f32;
        self.rewards[i] = reward;
        self.dones[i] = f32::from(u8::from(done));
        self.next = (i + 1) % self.capacity;
        self.len = (self.len + 1).min(self.capacity);
    }

    /// A uniform sample with replacement: `(obs, actions, rewards, next_obs, dones)` as tensors.
    fn sample(&self, batch: usize, rng: &mut Rng, device: Device) -> [Tensor; 5] {
        let l = self.obs_len;
        let (mut obs, mut next_obs) = (Vec::with_capacity(batch * l), Vec::with_capacity(batch * l));
        let (mut actions, mut rewards, mut dones) = (Vec::with_capacity(batch), Vec::new(), Vec::new());
        for _ in 0..batch {
            let i = rng.index(self.len);
            obs.extend_from_slice(&self.obs[i * l..(i + 1) * l]);
            next_obs.extend_from_slice(&self.next_obs[i * l..(i + 1) * l]);
            actions.push(self.actions[i] as i64);
            rewards.push(self.rewards[i]);
            dones.push(self.dones[i]);
        }
        let shape = [batch as i64, l as i64];
        [
            Tensor::from_slice(&obs).view(shape),
            Tensor::from_slice(&actions).unsqueeze(1),
            Tensor::from_slice(&rewards),
            Tensor::from_slice(&next_obs).view(shape),
            Tensor::from_slice(&dones),
        ]
        .map(|t| t.to_device(device))
    }
}

impl Dqn {
    /// A fresh learner: weights and exploration seeded from `seed`.
    pub fn new(
        config: DqnConfig,
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
        let mut builder = ParamBuilder::default();
        let q = Network::declare(&mut builder, "policy", obs_shape, network, num_actions, 1.0);
        let params = builder.build(device, seed);
        let num_envs = config.num_envs as usize;
        let obs_len = obs_shape.iter().product();
        Self {
            target: params.snapshot(),
            adam: Adam::new(&params),
            replay: Replay::new(config.buffer_size as usize, obs_len),
            q_values: vec![0.0; num_envs * agents * num_actions],
            config,
            params,
            q,
            rng: Rng::stream(seed, 0x4451_4e00),
            device,
            num_actions,
            num_envs,
        }
    }

    /// ε after `env_steps` of a run of `total` env steps.
    fn epsilon(&self, env_steps: u64, total: u64) -> f64 {
        let c = &self.config;
        let duration = c.exploration_fraction * total as f64;
        let progress = if duration > 0.0 {
            (env_steps as f64 / duration).min(1.0)
        } else {
            1.0
        };
        c.start_e + (c.end_e - c.start_e) * progress
    }

    /// One gradient step on a replay sample; returns `(td_loss, mean Q)` as tensors.
    fn train_step(&mut self, learning_rate: f64) -> (Tensor, Tensor) {
        let c = &self.config;
        let [obs, actions, rewards, next_obs, dones] =
            self.replay.sample(c.batch_size as usize, &mut self.rng, self.device);
        let target = tch::no_grad(|| {
            let target_views = self.params.views_of(&self.target);
            let next_target = self.q.forward(&target_views, &next_obs);
            let next_q = if c.double_dqn {
                let online = self.q.forward(self.params.leaves(), &next_obs);
                next_target.gather(1, &online.argmax(1, true), false).squeeze_dim(1)
            } else {
                next_target.amax([1i64].as_slice(), false)
            };
            rewards + (1.0 - dones) * next_q * c.gamma
        });
        let q = self
            .q
            .forward(self.params.leaves(), &obs)
            .gather(1, &actions, false)
            .squeeze_dim(1);
        let loss = q.huber_loss(&target, Reduction::Mean, 1.0);
        self.adam.minimize(&self.params, &loss, learning_rate, c.max_grad_norm);
        (loss.detach(), q.detach().mean(Kind::Float))
    }

    fn update_target(&mut self) {
        let tau = self.config.tau;
        let online = self.params.snapshot();
        tch::no_grad(|| {
            if tau >= 1.0 {
                self.target.copy_(&online);
            } else {
                let _ = self.target.lerp_(&online, tau);
            }
        });
    }
}

impl Learner for Dqn {
    fn num_envs(&self) -> usize {
        self.num_envs
    }

    fn env_steps_per_iteration(&self) -> u64 {
        self.num_envs as u64 * VECTOR_STEPS_PER_ITERATION
    }

    fn iterate(&mut self, runner: &mut EnvRunner, schedule: Schedule) -> UpdateStats {
        let c = self.config.clone();
        let rows = runner.rows();
        let obs_len = runner.obs_len();
        let learning_rate = c.learning_rate;
        let mut env_steps = schedule.env_steps;
        let mut epsilon = self.epsilon(env_steps, schedule.total_env_steps);
        let mut losses = Tensor::zeros([2], (Kind::Float, self.device));
        let mut train_steps = 0u32;
        let mut obs_before = runner.obs.clone();
        for _ in 0..VECTOR_STEPS_PER_ITERATION {
            epsilon = self.epsilon(env_steps, schedule.total_env_steps);
            tch::no_grad(|| {
                let views = self.params.leaves();
                let q = self.q.forward(views, &runner.obs_tensor(self.device));
                q.to_device(Device::Cpu)
                    .copy_data(&mut self.q_values, rows * self.num_actions);
            });
            for row in 0..rows {
                runner.actions[row] = if self.rng.unit_f64() < epsilon {
                    self.rng.index(self.num_actions) as u32
                } else {
                    argmax(&self.q_values[row * self.num_actions..(row + 1) * self.num_actions]) as u32
                };
            }
            obs_before.copy_from_slice(&runner.obs);
            runner.step();
            for row in 0..rows {
                let span = row * obs_len..(row + 1) * obs_len;
                // A time limit is not a terminal state: bootstrap. The state it would have reached was
                // replaced by the next episode's first observation, so the last state stands in for it.
                let truncated = runner.truncated()[row];
                let next = if truncated {
                    &obs_before[span.clone()]
                } else {
                    &runner.obs[span.clone()]
                };
                self.replay.push(
                    &obs_before[span],
                    runner.actions[row],
                    runner.rewards[row],
                    next,
                    runner.dones[row] && !truncated,
                );
            }
            let before = env_steps;
            env_steps += self.num_envs as u64;
            if env_steps <= u64::from(c.learning_starts) {
                continue;
            }
            let crossed = |every: u32| env_steps / u64::from(every) - before / u64::from(every);
            for _ in 0..crossed(c.train_frequency) {
                let (loss, q) = self.train_step(learning_rate);
                losses += Tensor::stack(&[loss, q], 0);
                train_steps += 1;
            }
            if crossed(c.target_network_frequency) > 0 {
                self.update_target();
            }
        }
        let means = (train_steps > 0).then(|| to_vec(&(losses / f64::from(train_steps))));
        UpdateStats {
            learning_rate,
            td_loss: means.as_ref().map(|m| f64::from(m[0])),
            q_value: means.as_ref().map(|m| f64::from(m[1])),
            epsilon: Some(epsilon),
            ..UpdateStats::default()
        }
    }

    fn params(&self) -> &ParamStore {
        &self.params
    }

    fn params_mut(&mut self) -> &mut ParamStore {
        &mut self.params
    }

    fn policy(&self) -> &Network {
        &self.q
    }

    fn params_loaded(&mut self) {
        self.target = self.params.snapshot();
    }

    fn save_state(&self) -> LearnerState {
        let mut state = LearnerState::of_optimizer(&self.adam, &self.rng);
        let r = &self.replay;
        let n = r.len as i64;
        let rows = |data: &[f32], width: usize| Tensor::from_slice(&data[..r.len * width]).view([n, width as i64]);
        state.tensors.extend([
            ("train.target".into(), self.target.to_device(Device::Cpu)),
            ("train.replay.obs".into(), rows(&r.obs, r.obs_len)),
            ("train.replay.nextObs".into(), rows(&r.next_obs, r.obs_len)),
            ("train.replay.actions".into(), rows(&r.actions, 1)),
            ("train.replay.rewards".into(), rows(&r.rewards, 1)),
            ("train.replay.dones".into(), rows(&r.dones, 1)),
        ]);
        state.values["replayLen"] = r.len.into();
        state.values["replayNext"] = r.next.into();
        state
    }

    fn restore_state(&mut self, tensors: &HashMap<String, Tensor>, values: &serde_json::Value) -> Result<(), String> {
        self.rng = LearnerState::restore_optimizer(tensors, values, &mut self.adam)?;
        let target = take(tensors, "train.target")?;
        if target.size() != self.target.size() {
            return Err("checkpoint target network does not match the network".into());
        }
        self.target = target.to_device(self.device);
        let len = values["replayLen"].as_u64().ok_or("checkpoint lacks replayLen")? as usize;
        let next = values["replayNext"].as_u64().ok_or("checkpoint lacks replayNext")? as usize;
        let r = &mut self.replay;
        if len > r.capacity || next >= r.capacity.max(1) {
            return Err(format!(
                "replay buffer of {len} transitions does not fit bufferSize {}",
                r.capacity
            ));
        }
        let l = r.obs_len;
        for (name, buffer, width) in [
            ("train.replay.obs", &mut r.obs, l),
            ("train.replay.nextObs", &mut r.next_obs, l),
            ("train.replay.actions", &mut r.actions, 1),
            ("train.replay.rewards", &mut r.rewards, 1),
            ("train.replay.dones", &mut r.dones, 1),
        ] {
            let data = to_vec(take(tensors, name)?);
            if data.len() != len * width {
                return Err(format!(
                    "checkpoint tensor `{name}` has {} values, expected {}",
                    data.len(),
                    len * width
                ));
            }
            buffer[..data.len()].copy_from_slice(&data);
        }
        (r.len, r.next) = (len, next);
        Ok(())
    }
}

/// Index of the largest value (the first on ties).
pub fn argmax(values: &[f32]) -> usize {
    let mut best = 0;
    for (i, &v) in values.iter().enumerate() {
        if v > values[best] {
            best = i;
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn epsilon_falls_linearly_then_stays() {
        let cartpole: EnvDescriptor = serde_json::from_str(r#"{"kind": "cartpole"}"#).unwrap();
        let dqn = Dqn::new(
            DqnConfig::default(),
            &NetworkConfig::default(),
            &cartpole,
            0,
            Device::Cpu,
        );
        assert_eq!(dqn.epsilon(0, 1000), 1.0);
        assert!((dqn.epsilon(250, 1000) - 0.525).abs() < 1e-12);
        assert!((dqn.epsilon(900, 1000) - 0.05).abs() < 1e-12);
    }

    #[test]
    fn replay_wraps_around() {
        let mut replay = Replay::new(3, 1);
        for i in 0..5 {
            replay.push(&[i as f32], 0, i as f32, &[0.0], false);
        }
        assert_eq!(replay.len, 3);
        assert_eq!(replay.rewards, vec![3.0, 4.0, 2.0]);
    }
}
