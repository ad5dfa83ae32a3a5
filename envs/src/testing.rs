//! Test helpers shared by the environment modules.

use crate::rng::Rng;
use crate::vec_env::{EpisodeStats, VecEnv, obs_len};

/// Buffers sized for `env`.
pub(crate) struct Buffers {
    pub obs: Vec<f32>,
    pub rewards: Vec<f32>,
    pub dones: Vec<bool>,
    pub actions: Vec<u32>,
}

impl Buffers {
    pub fn for_env(env: &dyn VecEnv) -> Self {
        let rows = env.num_envs() * env.agents();
        Self {
            obs: vec![f32::NAN; rows * obs_len(env)],
            rewards: vec![0.0; rows],
            dones: vec![false; rows],
            actions: vec![0; rows],
        }
    }

    pub fn random_actions(&mut self, rng: &mut Rng, num_actions: usize) {
        for a in &mut self.actions {
            *a = rng.index(num_actions) as u32;
        }
    }
}

/// Steps `env` with uniformly random actions and returns every finished episode.
pub(crate) fn run_random(env: &mut dyn VecEnv, steps: usize, action_seed: u64) -> Vec<EpisodeStats> {
    let mut b = Buffers::for_env(env);
    let mut rng = Rng::new(action_seed);
    let mut eps = Vec::new();
    for _ in 0..steps {
        b.random_actions(&mut rng, env.num_actions());
        env.step(&b.actions, &mut b.obs, &mut b.rewards, &mut b.dones);
        eps.extend(env.drain_finished());
    }
    eps
}

/// Trace of 1,000 random steps: every observation, reward and done, plus finished episodes.
fn trace(env: &mut dyn VecEnv, seed: u64) -> (Vec<f32>, Vec<f32>, Vec<bool>, Vec<EpisodeStats>) {
    let mut b = Buffers::for_env(env);
    env.reset(seed, &mut b.obs);
    assert!(
        b.obs.iter().all(|v| v.is_finite()),
        "reset must write every observation value"
    );
    let mut rng = Rng::new(1234);
    let (mut obs, mut rew, mut done) = (b.obs.clone(), Vec::new(), Vec::new());
    for _ in 0..1_000 {
        b.random_actions(&mut rng, env.num_actions());
        b.obs.fill(f32::NAN);
        env.step(&b.actions, &mut b.obs, &mut b.rewards, &mut b.dones);
        assert!(
            b.obs.iter().all(|v| v.is_finite()),
            "step must write every observation value"
        );
        obs.extend_from_slice(&b.obs);
        rew.extend_from_slice(&b.rewards);
        done.extend_from_slice(&b.dones);
    }
    (obs, rew, done, env.drain_finished())
}

/// Same seed gives identical traces (also after `reset` on a used env); another seed differs.
/// Also checks that every agent row of an env shares its reward and done flag.
pub(crate) fn check_determinism(make: impl Fn(u64) -> Box<dyn VecEnv>) {
    let mut a = make(5);
    let mut b = make(77);
    let ta = trace(a.as_mut(), 5);
    let ta2 = trace(a.as_mut(), 5); // reset re-seeds a used env
    let tb = trace(b.as_mut(), 5); // built with another seed, reset with ours
    assert!(ta == ta2 && ta == tb, "same seed must give the same trace");
    let tc = trace(b.as_mut(), 6);
    assert!(
        ta.0 != tc.0 || ta.1 != tc.1,
        "different seeds should give different traces"
    );
    assert!(!ta.3.is_empty(), "1,000 steps should finish some episodes");
    let agents = a.agents();
    for rows in ta.1.chunks(agents) {
        assert!(
            rows.iter().all(|r| *r == rows[0]),
            "team reward is replicated to every agent"
        );
    }
    for rows in ta.2.chunks(agents) {
        assert!(rows.iter().all(|d| *d == rows[0]), "done is shared by every agent");
    }
}
