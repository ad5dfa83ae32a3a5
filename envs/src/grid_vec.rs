//! The vectorization scaffold shared by the grid environments.
//!
//! [`GridVec`] holds `num_envs` copies of one environment's per-episode state (a [`GridEpisode`]) and
//! implements [`VecEnv`] once for all of them: per-environment rng streams, buffer checks, stepping,
//! replicating the team reward and done flag to every agent row, the horizon, auto-reset with
//! [`EpisodeStats`], and writing observations. Each environment module keeps only its rules and its
//! observation planes.
//!
//! The module is private: its items are `pub` only so the public environment types
//! (`MazeCleaning = GridVec<Maze>`, ...) can name them.

use std::fmt::Debug;

use crate::grid::NUM_MOVES;
use crate::rng::Rng;
use crate::vec_env::{EpisodeStats, VecEnv, check_step_buffers};

/// Grid side and agents per environment, shared by every environment of a vector.
#[derive(Debug, Clone, Copy)]
pub struct Dims {
    /// Grid side.
    pub g: usize,
    /// Cells, `g * g`.
    pub gg: usize,
    /// Agents per environment.
    pub agents: usize,
}

/// Per-environment episode bookkeeping.
#[derive(Debug, Clone, Default)]
pub struct Episode {
    /// Steps taken so far.
    pub steps: u32,
    /// Team return so far.
    pub ret: f32,
}

/// One environment's state, stepped by [`GridVec`].
pub trait GridEpisode: Clone + Debug + Send {
    /// Observation channels: every agent sees `[CHANNELS, g, g]`.
    const CHANNELS: usize;
    /// Parameters shared by every environment of the vector, beyond [`Dims`] and the horizon.
    type Config: Debug + Send;

    /// The environment's own random stream (re-seeded by [`GridVec`] on reset).
    fn rng_mut(&mut self) -> &mut Rng;
    /// Return and length of the running episode.
    fn episode_mut(&mut self) -> &mut Episode;
    /// Starts a new episode from the environment's rng (and clears its [`Episode`]).
    fn reset(&mut self, d: Dims, cfg: &Self::Config, scratch: &mut Vec<usize>);
    /// Moves every agent (`actions` holds this environment's rows) and applies the rules; returns the
    /// team reward and whether the episode terminated (the horizon is checked by [`GridVec`]).
    fn step(&mut self, d: Dims, cfg: &Self::Config, actions: &[u32]) -> (f32, bool);
    /// Runs after a step that did not end the episode (the finished ones are reset instead).
    fn continue_episode(&mut self, _d: Dims, _cfg: &Self::Config) {}
    /// Writes every agent's observation, `out.len() == agents * CHANNELS * g²`.
    fn write_obs(&self, d: Dims, out: &mut [f32]);
}

/// `num_envs` environments of one grid kind, stepped together.
#[derive(Debug)]
pub struct GridVec<E: GridEpisode> {
    dims: Dims,
    horizon: u32,
    cfg: E::Config,
    pub(crate) envs: Vec<E>,
    scratch: Vec<usize>,
    truncated: Vec<bool>,
    finished: Vec<EpisodeStats>,
}

impl<E: GridEpisode> GridVec<E> {
    /// `num_envs` copies of `proto`, seeded and reset.
    pub(crate) fn from_proto(
        g: usize,
        agents: usize,
        horizon: u32,
        cfg: E::Config,
        proto: E,
        num_envs: usize,
        seed: u64,
    ) -> Self {
        let mut env = Self {
            dims: Dims { g, gg: g * g, agents },
            horizon,
            cfg,
            envs: vec![proto; num_envs],
            scratch: Vec::new(),
            truncated: vec![false; num_envs * agents],
            finished: Vec::new(),
        };
        env.reseed(seed);
        env
    }

    fn reseed(&mut self, seed: u64) {
        self.finished.clear();
        self.truncated.fill(false);
        for (i, s) in self.envs.iter_mut().enumerate() {
            *s.rng_mut() = Rng::stream(seed, i as u64);
            s.reset(self.dims, &self.cfg, &mut self.scratch);
        }
    }

    fn obs_per_env(&self) -> usize {
        self.dims.agents * E::CHANNELS * self.dims.gg
    }
}

impl<E: GridEpisode> VecEnv for GridVec<E> {
    fn num_envs(&self) -> usize {
        self.envs.len()
    }

    fn agents(&self) -> usize {
        self.dims.agents
    }

    fn obs_shape(&self) -> Vec<usize> {
        vec![E::CHANNELS, self.dims.g, self.dims.g]
    }

    fn num_actions(&self) -> usize {
        NUM_MOVES
    }

    fn reset(&mut self, seed: u64, obs: &mut [f32]) {
        let per_env = self.obs_per_env();
        assert_eq!(
            obs.len(),
            self.envs.len() * per_env,
            "obs.len() must be num_envs * agents * obs_len"
        );
        self.reseed(seed);
        for (s, out) in self.envs.iter().zip(obs.chunks_exact_mut(per_env)) {
            s.write_obs(self.dims, out);
        }
    }

    fn step(&mut self, actions: &[u32], obs: &mut [f32], rewards: &mut [f32], dones: &mut [bool]) {
        check_step_buffers(self, actions, obs, rewards, dones);
        let (d, n) = (self.dims, self.dims.agents);
        let per_env = self.obs_per_env();
        for (e, (s, out)) in self.envs.iter_mut().zip(obs.chunks_exact_mut(per_env)).enumerate() {
            let rows = e * n..(e + 1) * n;
            let (reward, terminated) = s.step(d, &self.cfg, &actions[rows.clone()]);
            let episode = s.episode_mut();
            episode.steps += 1;
            episode.ret += reward;
            let done = terminated || episode.steps >= self.horizon;
            rewards[rows.clone()].fill(reward);
            dones[rows.clone()].fill(done);
            self.truncated[rows].fill(done && !terminated);
            if done {
                self.finished.push(EpisodeStats {
                    episode_return: episode.ret,
                    length: episode.steps,
                });
                s.reset(d, &self.cfg, &mut self.scratch);
            } else {
                s.continue_episode(d, &self.cfg);
            }
            s.write_obs(d, out);
        }
    }

    fn truncated(&self) -> &[bool] {
        &self.truncated
    }

    fn drain_finished(&mut self) -> Vec<EpisodeStats> {
        std::mem::take(&mut self.finished)
    }
}
