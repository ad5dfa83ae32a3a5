//! CartPole-v1 with gym's exact dynamics, vectorized as a struct of arrays.
//!
//! Same constants and explicit-Euler integration as `gym.envs.classic_control.CartPoleEnv`, so returns
//! are comparable with published baselines: terminate when |x| > 2.4 or |θ| > 12°, truncate at the
//! horizon (500 in v1), reward 1 per step including the last, initial state uniform in ±0.05. The state
//! is `f64` like gym's numpy arrays; observations are emitted as `f32`.

use crate::rng::Rng;
use crate::vec_env::{EpisodeStats, VecEnv, check_step_buffers};

const GRAVITY: f64 = 9.8;
const MASS_CART: f64 = 1.0;
const MASS_POLE: f64 = 0.1;
const TOTAL_MASS: f64 = MASS_CART + MASS_POLE;
const LENGTH: f64 = 0.5; // half the pole's length
const POLE_MASS_LENGTH: f64 = MASS_POLE * LENGTH;
const FORCE_MAG: f64 = 10.0;
const TAU: f64 = 0.02;
/// Cart position beyond which the episode terminates.
pub const X_THRESHOLD: f64 = 2.4;
/// Pole angle (radians) beyond which the episode terminates: 12°.
pub const THETA_THRESHOLD: f64 = 12.0 * 2.0 * std::f64::consts::PI / 360.0;

/// `num_envs` cart-poles. Actions: 0 push left, 1 push right.
#[derive(Debug)]
pub struct CartPole {
    horizon: u32,
    x: Vec<f64>,
    x_dot: Vec<f64>,
    theta: Vec<f64>,
    theta_dot: Vec<f64>,
    steps: Vec<u32>,
    truncated: Vec<bool>,
    rngs: Vec<Rng>,
    finished: Vec<EpisodeStats>,
}

impl CartPole {
    /// `num_envs` cart-poles truncated at `horizon`, reset with `seed`.
    pub fn new(num_envs: usize, horizon: u32, seed: u64) -> Self {
        let mut env = Self {
            horizon,
            x: vec![0.0; num_envs],
            x_dot: vec![0.0; num_envs],
            theta: vec![0.0; num_envs],
            theta_dot: vec![0.0; num_envs],
            steps: vec![0; num_envs],
            truncated: vec![false; num_envs],
            rngs: Vec::new(),
            finished: Vec::new(),
        };
        env.reseed(seed);
        env
    }

    fn reseed(&mut self, seed: u64) {
        let n = self.x.len();
        self.rngs = (0..n).map(|i| Rng::stream(seed, i as u64)).collect();
        self.finished.clear();
        self.truncated.fill(false);
        for i in 0..n {
            self.reset_one(i);
        }
    }

    fn reset_one(&mut self, i: usize) {
        let rng = &mut self.rngs[i];
        self.x[i] = f64::from(rng.uniform_f32(-0.05, 0.05));
        self.x_dot[i] = f64::from(rng.uniform_f32(-0.05, 0.05));
        self.theta[i] = f64::from(rng.uniform_f32(-0.05, 0.05));
        self.theta_dot[i] = f64::from(rng.uniform_f32(-0.05, 0.05));
        self.steps[i] = 0;
    }

    #[inline]
    fn write_obs(&self, i: usize, obs: &mut [f32]) {
        let o = &mut obs[i * 4..i * 4 + 4];
        o[0] = self.x[i] as f32;
        o[1] = self.x_dot[i] as f32;
        o[2] = self.theta[i] as f32;
        o[3] = self.theta_dot[i] as f32;
    }
}

impl VecEnv for CartPole {
    fn num_envs(&self) -> usize {
        self.x.len()
    }

    fn agents(&self) -> usize {
        1
    }

    fn obs_shape(&self) -> Vec<usize> {
        vec![4]
    }

    fn num_actions(&self) -> usize {
        2
    }

    fn reset(&mut self, seed: u64, obs: &mut [f32]) {
        assert_eq!(obs.len(), self.num_envs() * 4, "obs.len() must be num_envs * 4");
        self.reseed(seed);
        for i in 0..self.num_envs() {
            self.write_obs(i, obs);
        }
    }

    fn step(&mut self, actions: &[u32], obs: &mut [f32], rewards: &mut [f32], dones: &mut [bool]) {
        check_step_buffers(self, actions, obs, rewards, dones);
        for i in 0..self.x.len() {
            let force = if actions[i] == 1 { FORCE_MAG } else { -FORCE_MAG };
            let (x, x_dot, theta, theta_dot) = (self.x[i], self.x_dot[i], self.theta[i], self.theta_dot[i]);
            let (sin_t, cos_t) = theta.sin_cos();
            let temp = (force + POLE_MASS_LENGTH * theta_dot * theta_dot * sin_t) / TOTAL_MASS;
            let theta_acc =
                (GRAVITY * sin_t - cos_t * temp) / (LENGTH * (4.0 / 3.0 - MASS_POLE * cos_t * cos_t / TOTAL_MASS));
            let x_acc = temp - POLE_MASS_LENGTH * theta_acc * cos_t / TOTAL_MASS;
            let x = x + TAU * x_dot;
            let x_dot = x_dot + TAU * x_acc;
            let theta = theta + TAU * theta_dot;
            let theta_dot = theta_dot + TAU * theta_acc;
            (self.x[i], self.x_dot[i], self.theta[i], self.theta_dot[i]) = (x, x_dot, theta, theta_dot);
            self.steps[i] += 1;
            let terminated =
                !(-X_THRESHOLD..=X_THRESHOLD).contains(&x) || !(-THETA_THRESHOLD..=THETA_THRESHOLD).contains(&theta);
            let done = terminated || self.steps[i] >= self.horizon;
            rewards[i] = 1.0;
            dones[i] = done;
            self.truncated[i] = done && !terminated;
            if done {
                // Reward is 1 per step, so the return equals the length.
                let length = self.steps[i];
                self.finished.push(EpisodeStats {
                    episode_return: length as f32,
                    length,
                });
                self.reset_one(i);
            }
            self.write_obs(i, obs);
        }
    }

    fn truncated(&self) -> &[bool] {
        &self.truncated
    }

    fn drain_finished(&mut self) -> Vec<EpisodeStats> {
        std::mem::take(&mut self.finished)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{check_determinism, run_random};

    #[test]
    fn deterministic_per_seed() {
        check_determinism(|seed| Box::new(CartPole::new(8, 500, seed)));
    }

    #[test]
    fn terminates_out_of_bounds_and_within_horizon() {
        let mut env = CartPole::new(16, 500, 3);
        let mut obs = vec![0.0; 16 * 4];
        let (mut rew, mut done) = (vec![0.0; 16], vec![false; 16]);
        // Always pushing right drives the pole over quickly.
        for _ in 0..200 {
            env.step(&[1; 16], &mut obs, &mut rew, &mut done);
            assert!(rew.iter().all(|&r| r == 1.0));
            for i in 0..16 {
                if !done[i] {
                    assert!(env.x[i].abs() <= X_THRESHOLD && env.theta[i].abs() <= THETA_THRESHOLD);
                } else {
                    // A fresh episode starts near the origin.
                    assert!(obs[i * 4..i * 4 + 4].iter().all(|v| v.abs() <= 0.05));
                }
            }
        }
        let eps = env.drain_finished();
        assert!(eps.len() >= 16, "every pole should have fallen at least once");
        assert!(
            eps.iter()
                .all(|e| e.length >= 1 && e.length < 200 && e.episode_return == e.length as f32)
        );
        assert!(env.drain_finished().is_empty());
    }

    #[test]
    fn truncates_at_horizon() {
        // A horizon of 5 is shorter than any fall from ±0.05.
        let eps = run_random(&mut CartPole::new(4, 5, 1), 100, 2);
        assert!(!eps.is_empty());
        assert!(eps.iter().all(|e| e.length == 5));
    }

    #[test]
    fn truncation_is_flagged_apart_from_termination() {
        let mut env = CartPole::new(2, 5, 1);
        let mut obs = vec![0.0; 8];
        env.reset(1, &mut obs);
        let (mut rewards, mut dones) = (vec![0.0; 2], vec![false; 2]);
        for step in 1..=5 {
            env.step(&[0, 1], &mut obs, &mut rewards, &mut dones);
            assert_eq!(dones, [step == 5; 2]);
            assert_eq!(env.truncated(), [step == 5; 2]);
        }
        // Always pushing right makes the pole fall long before step 500: terminated, not truncated.
        let mut env = CartPole::new(1, 500, 1);
        let mut obs = vec![0.0; 4];
        env.reset(1, &mut obs);
        let (mut rewards, mut dones) = (vec![0.0], vec![false]);
        while !dones[0] {
            env.step(&[1], &mut obs, &mut rewards, &mut dones);
        }
        assert_eq!(env.truncated(), [false]);
    }

    #[test]
    fn random_policy_returns_are_sane() {
        let eps = run_random(&mut CartPole::new(32, 500, 11), 2_000, 5);
        let mean = eps.iter().map(|e| e.episode_return).sum::<f32>() / eps.len() as f32;
        // Random CartPole-v1 averages about 22 steps.
        assert!((12.0..40.0).contains(&mean), "mean random return {mean}");
        assert!(eps.iter().all(|e| e.length <= 500));
    }

    #[test]
    fn dynamics_match_gym_one_step() {
        // Hand-computed from gym's formulas for state (0,0,0.05,0), action 1.
        let mut env = CartPole::new(1, 500, 0);
        (env.x[0], env.x_dot[0], env.theta[0], env.theta_dot[0]) = (0.0, 0.0, 0.05, 0.0);
        let mut obs = [0.0; 4];
        env.step(&[1], &mut obs, &mut [0.0], &mut [false]);
        let (s, c) = 0.05f64.sin_cos();
        let temp = 10.0 / 1.1;
        let ta = (9.8 * s - c * temp) / (0.5 * (4.0 / 3.0 - 0.1 * c * c / 1.1));
        let xa = temp - 0.05 * ta * c / 1.1;
        assert_eq!(obs, [0.0, (0.02 * xa) as f32, 0.05, (0.02 * ta) as f32]);
    }
}
