//! Evaluation: play a fixed number of episodes with a model (PPO policies sample their discrete
//! actions and take their Gaussian's mean for continuous ones, DQN takes the argmax; any can be
//! chosen), or with random actions as the baseline. A model trained on normalized observations is
//! played with its own statistics, frozen.
//!
//! Episodes are split evenly over the vector's environments in advance (environment `e` plays episodes
//! `e, e + E, ...`), rather than taking whichever finish first, which would favour short episodes and
//! bias the mean. Seeded, so a verifier replaying the same seed gets the same figure.

use std::path::Path;

use drlaas_envs::{EnvDescriptor, Rng};
use tch::{Device, Tensor};

use crate::artifact::{self, ModelManifest};
use crate::dqn::argmax;
use crate::learner::{EnvRunner, to_vec};
use crate::network::Network;
use crate::normalize::{Normalization, ObsNormalizer};
use crate::params::{Init, ParamBuilder, ParamStore};
use crate::ppo::{LOG_STD, sample, sample_gaussian};

/// Most environments stepped together during an evaluation.
const MAX_EVAL_ENVS: usize = 16;

/// Outcome of an evaluation, and how its actions were chosen: shared with the evaluation's readers.
pub use drlaas_crds::trainer_output::{ActionSelection, Evaluation};

/// A policy network with its weights and observation statistics, ready to act.
#[derive(Debug)]
pub struct Policy {
    network: Network,
    params: ParamStore,
    obs_norm: Option<ObsNormalizer>,
    device: Device,
}

/// What plays an evaluation: a network, the parameters it reads (a learner's or a model's), the
/// observation statistics it was trained with, and where it runs.
#[derive(Debug, Clone, Copy)]
pub struct Actor<'a> {
    /// The policy network (logits, Q-values or a Gaussian's means).
    pub network: &'a Network,
    /// Its parameters; [`LOG_STD`] among them for a Gaussian policy.
    pub params: &'a ParamStore,
    /// The observation normalization it was trained with, if any (applied frozen).
    pub obs_norm: Option<&'a ObsNormalizer>,
    /// Where the network runs.
    pub device: Device,
}

impl Policy {
    /// Rebuilds the policy described by `manifest` and loads its `policy.*` tensors.
    pub fn from_artifact(art: &artifact::Artifact, device: Device) -> Result<Self, String> {
        let m: &ModelManifest = &art.manifest;
        let mut builder = ParamBuilder::default();
        let network = Network::declare(&mut builder, "policy", &m.obs_shape, &m.network, m.num_actions, 1.0);
        if m.environment.action_space().is_continuous() {
            builder.add(LOG_STD.into(), vec![m.num_actions as i64], Init::Const(0.0));
        }
        let mut params = builder.build(device, 0);
        let names: Vec<String> = params.entries().iter().map(|e| e.name.clone()).collect();
        for name in names {
            let tensor = art
                .tensors
                .get(&name)
                .ok_or_else(|| format!("model lacks tensor `{name}` its manifest implies"))?;
            if !params.load_named(&name, tensor) {
                return Err(format!(
                    "tensor `{name}` has shape {:?}, the manifest implies another",
                    tensor.size()
                ));
            }
        }
        let obs_norm = Normalization::of_model(&art.tensors, m.obs_shape.iter().product());
        Ok(Self {
            network,
            params,
            obs_norm,
            device,
        })
    }

    /// The policy as an [`Actor`].
    pub fn actor(&self) -> Actor<'_> {
        Actor {
            network: &self.network,
            params: &self.params,
            obs_norm: self.obs_norm.as_ref(),
            device: self.device,
        }
    }

    /// Reads a model file and rebuilds its policy.
    pub fn load(path: &Path, device: Device) -> Result<(Self, ModelManifest), String> {
        let art = artifact::read(path).map_err(|e| e.to_string())?;
        let policy = Self::from_artifact(&art, device)?;
        Ok((policy, art.manifest))
    }

    /// Plays `episodes` episodes of `environment`.
    pub fn evaluate(
        &self,
        environment: &EnvDescriptor,
        selection: ActionSelection,
        episodes: u32,
        seed: u64,
    ) -> Result<Evaluation, String> {
        evaluate(&self.actor(), environment, selection, episodes, seed)
    }
}

/// Plays `episodes` episodes of `environment` with `actor`.
pub fn evaluate(
    actor: &Actor<'_>,
    environment: &EnvDescriptor,
    selection: ActionSelection,
    episodes: u32,
    seed: u64,
) -> Result<Evaluation, String> {
    if selection == ActionSelection::Random {
        return evaluate_random(environment, episodes, seed);
    }
    let num_actions = environment.num_actions();
    let log_std = actor
        .params
        .entries()
        .iter()
        .position(|e| e.name == LOG_STD)
        .map(|i| to_vec(&actor.params.leaves()[i]));
    let mut outputs = Vec::new();
    let mut rng = Rng::stream(seed, 0x4556_414c);
    let _guard = tch::no_grad_guard();
    play(environment, episodes, seed, actor.obs_norm, |runner| {
        let rows = runner.rows();
        outputs.resize(rows * num_actions, 0.0);
        let out: Tensor = actor
            .network
            .forward(actor.params.leaves(), &runner.obs_tensor(actor.device));
        out.to_device(Device::Cpu).copy_data(&mut outputs, rows * num_actions);
        for row in 0..rows {
            let row_outputs = &outputs[row * num_actions..(row + 1) * num_actions];
            if runner.continuous.is_empty() {
                runner.actions[row] = match selection {
                    ActionSelection::Greedy => argmax(row_outputs),
                    ActionSelection::Sample => sample(row_outputs, &mut rng).0,
                    ActionSelection::Random => unreachable!("handled by evaluate_random"),
                } as u32;
                continue;
            }
            let action = &mut runner.continuous[row * num_actions..(row + 1) * num_actions];
            match (selection, &log_std) {
                (ActionSelection::Sample, Some(log_std)) => {
                    sample_gaussian(row_outputs, log_std, &mut rng, action);
                }
                // The mean (a model without a spread can only be played by its mean).
                _ => action.copy_from_slice(row_outputs),
            }
        }
    })
}

/// Plays `episodes` episodes of `environment` with uniformly random actions (for a box, uniform
/// within its bounds, standard normal on an unbounded side): the baseline a trained policy must beat.
pub fn evaluate_random(environment: &EnvDescriptor, episodes: u32, seed: u64) -> Result<Evaluation, String> {
    let num_actions = environment.num_actions();
    let mut rng = Rng::stream(seed, 0x5241_4e44);
    let mut bounds = Vec::new();
    play(environment, episodes, seed, None, |runner| {
        if runner.continuous.is_empty() {
            for action in runner.actions.iter_mut() {
                *action = rng.index(num_actions) as u32;
            }
            return;
        }
        if bounds.is_empty() {
            bounds = runner.action_bounds();
        }
        for (action, &(low, high)) in runner.continuous.iter_mut().zip(bounds.iter().cycle()) {
            *action = if low.is_finite() && high.is_finite() {
                rng.uniform_f32(low, high)
            } else {
                rng.normal_f32()
            };
        }
    })
}

/// Steps `environment` with actions from `act` until every environment has played its quota,
/// normalizing observations with `obs_norm` (frozen) where the policy was trained so.
fn play(
    environment: &EnvDescriptor,
    episodes: u32,
    seed: u64,
    obs_norm: Option<&ObsNormalizer>,
    mut act: impl FnMut(&mut EnvRunner),
) -> Result<Evaluation, String> {
    if episodes == 0 {
        return Err("evaluation needs at least 1 episode".into());
    }
    let num_envs = (episodes as usize).min(MAX_EVAL_ENVS);
    let env = environment.make(num_envs, seed).map_err(|e| e.to_string())?;
    let agents = env.agents();
    let mut runner = EnvRunner::new(env).with_normalization(Normalization {
        obs: obs_norm.map(|n| ObsNormalizer {
            frozen: true,
            ..n.clone()
        }),
        reward: None,
    });
    runner.reset(seed);
    // Environment e plays episodes e, e + num_envs, ...: its quota is fixed before anything runs.
    let quota: Vec<u32> = (0..num_envs)
        .map(|e| (episodes as usize / num_envs + usize::from(e < episodes as usize % num_envs)) as u32)
        .collect();
    let mut played = vec![0u32; num_envs];
    let (mut running_return, mut running_length) = (vec![0.0f64; num_envs], vec![0u64; num_envs]);
    let (mut returns, mut lengths) = (Vec::new(), Vec::new());
    while played.iter().zip(&quota).any(|(p, q)| p < q) {
        act(&mut runner);
        runner.step();
        if let Some(failure) = runner.failure() {
            return Err(format!("the environment failed: {failure}"));
        }
        for e in 0..num_envs {
            if played[e] >= quota[e] {
                continue;
            }
            running_return[e] += f64::from(runner.team_reward(e));
            running_length[e] += 1;
            if runner.dones[e * agents] {
                returns.push(running_return[e]);
                lengths.push(running_length[e] as f64);
                (running_return[e], running_length[e]) = (0.0, 0);
                played[e] += 1;
            }
        }
    }
    let n = returns.len() as f64;
    let mean_return = returns.iter().sum::<f64>() / n;
    let std_return = (returns.iter().map(|r| (r - mean_return).powi(2)).sum::<f64>() / n).sqrt();
    Ok(Evaluation {
        mean_return,
        std_return,
        episodes,
        mean_length: lengths.iter().sum::<f64>() / n,
        seed,
    })
}
