//! The interface every environment implements.
//!
//! The trainer owns flat `f32` buffers and hands them in, so one step of `num_envs` environments does
//! no allocation and the buffers can be pinned or copied to the GPU in one piece. Multi-agent
//! environments are laid out as rows of agents: row `e * agents + a` is agent `a` of environment `e`.
//! One shared policy acts for every row, so the trainer can treat a multi-agent vector as a bigger
//! single-agent one. Every agent of a built-in environment receives the same team reward; a
//! PettingZoo environment rewards each agent on its own, and its team reward is their sum
//! ([`VecEnv::team_reward`]).

/// Return and length of one finished episode (team return: the sum of the per-step team reward).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EpisodeStats {
    /// Sum of the team reward over the episode.
    pub episode_return: f32,
    /// Number of steps the episode lasted.
    pub length: u32,
}

/// A vector of `num_envs` independent copies of one environment, stepped together.
///
/// `Debug` is a supertrait so holders of a `Box<dyn VecEnv>` can derive `Debug` (the workspace warns on
/// `missing_debug_implementations`).
pub trait VecEnv: Send + std::fmt::Debug {
    /// Number of independent environments.
    fn num_envs(&self) -> usize;
    /// Agents per environment (1 for cartpole); one shared policy acts for all of them.
    fn agents(&self) -> usize;
    /// Observation shape of one agent: `[4]` for cartpole, `[C, G, G]` for grids.
    fn obs_shape(&self) -> Vec<usize>;
    /// Discrete actions per agent (0 when the actions are continuous).
    fn num_actions(&self) -> usize;
    /// Real-valued action components per agent when the action space is continuous (a box), else 0.
    /// Such an environment is stepped with [`VecEnv::step_continuous`].
    fn continuous_actions(&self) -> usize {
        0
    }
    /// The bounds `(low, high)` of each continuous action component (infinite where the box has no
    /// bound); empty for discrete actions.
    fn action_bounds(&self) -> Vec<(f32, f32)> {
        Vec::new()
    }
    /// Re-seeds and resets every environment; writes the first observations.
    /// `obs.len() == num_envs * agents * obs_len`.
    fn reset(&mut self, seed: u64, obs: &mut [f32]);
    /// Advances every environment one step.
    ///
    /// `actions.len() == num_envs * agents`; `obs.len() == num_envs * agents * obs_len`;
    /// `rewards.len() == dones.len() == num_envs * agents`. Environments that finish (terminated or
    /// truncated) are reset automatically: `obs` then holds the new episode's first observation and
    /// `dones` marks every agent row of that environment.
    fn step(&mut self, actions: &[u32], obs: &mut [f32], rewards: &mut [f32], dones: &mut [bool]);
    /// [`VecEnv::step`] with continuous actions: `actions.len() == num_envs * agents *
    /// continuous_actions`, each component clipped to its [`VecEnv::action_bounds`] before the
    /// environment sees it. Environments with discrete actions do not implement it.
    fn step_continuous(&mut self, actions: &[f32], obs: &mut [f32], rewards: &mut [f32], dones: &mut [bool]) {
        let _ = (actions, obs, rewards, dones);
        unimplemented!("this environment's actions are discrete: step it with VecEnv::step")
    }
    /// For every agent row, whether the last [`VecEnv::step`] ended its episode at the horizon rather
    /// than by reaching a terminal state. Learners bootstrap the value of such an episode's last state
    /// instead of treating it as worth nothing (a time limit is not part of the task).
    fn truncated(&self) -> &[bool];
    /// Team return and length of every episode that finished since the last call.
    fn drain_finished(&mut self) -> Vec<EpisodeStats>;
    /// The team reward of environment `env` in the last step, from its agents' `rewards`: the
    /// built-in environments give every agent the team reward (row `env * agents` holds it); an
    /// environment that rewards each agent on its own sums its agents' rows.
    fn team_reward(&self, rewards: &[f32], env: usize) -> f32 {
        rewards[env * self.agents()]
    }
    /// Why the vector cannot step any more (an external environment's server crashed, hung or
    /// refused), if it cannot. Built-in environments never fail. After a failure `step` marks every
    /// row done and leaves the buffers as they were; the trainer checks this after each step.
    fn failure(&self) -> Option<&str> {
        None
    }
}

/// Number of `f32`s in one agent's observation (the product of `obs_shape`).
pub fn obs_len(env: &dyn VecEnv) -> usize {
    env.obs_shape().iter().product()
}

/// Panics with a clear message when the caller's buffers do not match the environment.
pub(crate) fn check_step_buffers(env: &dyn VecEnv, actions: &[u32], obs: &[f32], rewards: &[f32], dones: &[bool]) {
    let rows = env.num_envs() * env.agents();
    assert_eq!(actions.len(), rows, "actions.len() must be num_envs * agents");
    assert_eq!(rewards.len(), rows, "rewards.len() must be num_envs * agents");
    assert_eq!(dones.len(), rows, "dones.len() must be num_envs * agents");
    assert_eq!(
        obs.len(),
        rows * obs_len(env),
        "obs.len() must be num_envs * agents * obs_len"
    );
}
