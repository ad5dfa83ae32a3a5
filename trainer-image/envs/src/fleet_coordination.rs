//! Fleet coordination: N vehicles on an open G×G road grid serve pickup → drop-off requests.
//!
//! Each step, after the vehicles move: a carrying vehicle on its drop-off delivers (+1 team reward);
//! then an empty vehicle on a waiting pickup takes the oldest request there (vehicles in index order);
//! then a new request appears with probability `requestRate` (pickup and drop-off uniform, distinct)
//! unless `maxWaiting` are already waiting; finally the team pays 0.01 per request still waiting.
//! Episodes only end at the horizon.
//!
//! Observation per agent, `[5, G, G]`: self, teammates, waiting pickups (count per cell), own drop-off
//! target, other vehicles' drop-off targets (count per cell).

use crate::descriptor::FleetCoordinationParams;
use crate::grid::{Episode, NUM_MOVES, move_pos};
use crate::rng::Rng;
use crate::vec_env::{EpisodeStats, VecEnv, check_step_buffers};

/// Observation channels.
pub const CHANNELS: usize = 5;
const SELF: usize = 0;
const TEAM: usize = 1;
const PICKUPS: usize = 2;
const OWN_DROP: usize = 3;
const OTHER_DROPS: usize = 4;
/// Penalty per waiting request per step.
pub const WAIT_PENALTY: f32 = 0.01;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Request {
    pickup: usize,
    dropoff: usize,
}

#[derive(Debug, Clone)]
struct Fleet {
    pos: Vec<usize>,
    /// Drop-off cell of the request each vehicle carries.
    cargo: Vec<Option<usize>>,
    /// Waiting requests, oldest first.
    waiting: Vec<Request>,
    /// Shared planes: teammates counts every vehicle, others' drop-offs counts every cargo.
    base: Vec<f32>,
    episode: Episode,
    requested: u32,
    delivered: u32,
    waiting_steps: u32,
    rng: Rng,
}

impl Fleet {
    fn reset(&mut self, g: usize, agents: usize, scratch: &mut Vec<usize>) {
        scratch.clear();
        scratch.extend(0..g * g);
        self.pos.clear();
        for i in 0..agents {
            let j = i + self.rng.index(scratch.len() - i);
            scratch.swap(i, j);
            self.pos.push(scratch[i]);
        }
        self.cargo.clear();
        self.cargo.resize(agents, None);
        self.waiting.clear();
        self.episode = Episode::default();
        (self.requested, self.delivered, self.waiting_steps) = (0, 0, 0);
        self.rebuild_base(g);
    }

    fn rebuild_base(&mut self, g: usize) {
        let gg = g * g;
        self.base.fill(0.0);
        for (&p, c) in self.pos.iter().zip(&self.cargo) {
            self.base[TEAM * gg + p] += 1.0;
            if let Some(d) = c {
                self.base[OTHER_DROPS * gg + d] += 1.0;
            }
        }
        for r in &self.waiting {
            self.base[PICKUPS * gg + r.pickup] += 1.0;
        }
    }

    fn write_obs(&self, gg: usize, out: &mut [f32]) {
        for (a, row) in out.chunks_exact_mut(CHANNELS * gg).enumerate() {
            row.copy_from_slice(&self.base);
            let p = self.pos[a];
            row[SELF * gg + p] = 1.0;
            row[TEAM * gg + p] -= 1.0;
            if let Some(d) = self.cargo[a] {
                row[OWN_DROP * gg + d] = 1.0;
                row[OTHER_DROPS * gg + d] -= 1.0;
            }
        }
    }
}

/// `num_envs` fleet-coordination environments.
#[derive(Debug)]
pub struct FleetCoordination {
    g: usize,
    agents: usize,
    request_rate: f64,
    max_waiting: usize,
    horizon: u32,
    /// An open grid: vehicles are only stopped by its edges.
    no_walls: Vec<bool>,
    envs: Vec<Fleet>,
    scratch: Vec<usize>,
    finished: Vec<EpisodeStats>,
}

impl FleetCoordination {
    /// Builds and resets `num_envs` environments (parameters must have been validated).
    pub fn new(p: &FleetCoordinationParams, num_envs: usize, seed: u64) -> Self {
        let (g, agents) = (p.grid as usize, p.agents as usize);
        let proto = Fleet {
            pos: Vec::with_capacity(agents),
            cargo: Vec::with_capacity(agents),
            waiting: Vec::with_capacity(p.max_waiting as usize),
            base: vec![0.0; CHANNELS * g * g],
            episode: Episode::default(),
            requested: 0,
            delivered: 0,
            waiting_steps: 0,
            rng: Rng::new(0),
        };
        let mut env = Self {
            g,
            agents,
            request_rate: p.request_rate,
            max_waiting: p.max_waiting as usize,
            horizon: p.horizon,
            no_walls: vec![false; g * g],
            envs: vec![proto; num_envs],
            scratch: Vec::new(),
            finished: Vec::new(),
        };
        env.reseed(seed);
        env
    }

    fn reseed(&mut self, seed: u64) {
        self.finished.clear();
        for (i, f) in self.envs.iter_mut().enumerate() {
            f.rng = Rng::stream(seed, i as u64);
            f.reset(self.g, self.agents, &mut self.scratch);
        }
    }
}

impl VecEnv for FleetCoordination {
    fn num_envs(&self) -> usize {
        self.envs.len()
    }

    fn agents(&self) -> usize {
        self.agents
    }

    fn obs_shape(&self) -> Vec<usize> {
        vec![CHANNELS, self.g, self.g]
    }

    fn num_actions(&self) -> usize {
        NUM_MOVES
    }

    fn reset(&mut self, seed: u64, obs: &mut [f32]) {
        let gg = self.g * self.g;
        let per_env = self.agents * CHANNELS * gg;
        assert_eq!(
            obs.len(),
            self.envs.len() * per_env,
            "obs.len() must be num_envs * agents * obs_len"
        );
        self.reseed(seed);
        for (f, out) in self.envs.iter().zip(obs.chunks_exact_mut(per_env)) {
            f.write_obs(gg, out);
        }
    }

    fn step(&mut self, actions: &[u32], obs: &mut [f32], rewards: &mut [f32], dones: &mut [bool]) {
        check_step_buffers(self, actions, obs, rewards, dones);
        let (g, n) = (self.g, self.agents);
        let gg = g * g;
        let per_env = n * CHANNELS * gg;
        for (e, (f, out)) in self.envs.iter_mut().zip(obs.chunks_exact_mut(per_env)).enumerate() {
            let mut delivered = 0u32;
            for a in 0..n {
                let p = move_pos(g, &self.no_walls, f.pos[a], actions[e * n + a]);
                f.pos[a] = p;
                if f.cargo[a] == Some(p) {
                    f.cargo[a] = None;
                    delivered += 1;
                }
                if f.cargo[a].is_none()
                    && let Some(i) = f.waiting.iter().position(|r| r.pickup == p)
                {
                    f.cargo[a] = Some(f.waiting.remove(i).dropoff);
                }
            }
            if f.waiting.len() < self.max_waiting && f.rng.chance(self.request_rate) {
                let pickup = f.rng.index(gg);
                let dropoff = (pickup + 1 + f.rng.index(gg - 1)) % gg; // uniform over the other cells
                f.waiting.push(Request { pickup, dropoff });
                f.requested += 1;
            }
            f.delivered += delivered;
            f.waiting_steps += f.waiting.len() as u32;
            let reward = delivered as f32 - WAIT_PENALTY * f.waiting.len() as f32;
            f.episode.steps += 1;
            f.episode.ret += reward;
            let done = f.episode.steps >= self.horizon;
            rewards[e * n..(e + 1) * n].fill(reward);
            dones[e * n..(e + 1) * n].fill(done);
            if done {
                self.finished.push(EpisodeStats {
                    episode_return: f.episode.ret,
                    length: f.episode.steps,
                });
                f.reset(g, n, &mut self.scratch);
            } else {
                f.rebuild_base(g);
            }
            f.write_obs(gg, out);
        }
    }

    fn drain_finished(&mut self) -> Vec<EpisodeStats> {
        std::mem::take(&mut self.finished)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{Buffers, check_determinism, run_random};

    fn params(grid: u32, agents: u32, request_rate: f64, max_waiting: u32, horizon: u32) -> FleetCoordinationParams {
        FleetCoordinationParams {
            grid,
            agents,
            request_rate,
            max_waiting,
            horizon,
        }
    }

    #[test]
    fn deterministic_per_seed() {
        check_determinism(|seed| Box::new(FleetCoordination::new(&params(8, 3, 0.2, 4, 200), 4, seed)));
    }

    #[test]
    fn accounting_and_limits() {
        let (n, envs, gg) = (3usize, 8usize, 36usize);
        let mut env = FleetCoordination::new(&params(6, 3, 0.5, 3, 150), envs, 2);
        let mut b = Buffers::for_env(&env);
        env.reset(2, &mut b.obs);
        let mut rng = Rng::new(4);
        for _ in 0..3_000 {
            b.random_actions(&mut rng, NUM_MOVES);
            env.step(&b.actions, &mut b.obs, &mut b.rewards, &mut b.dones);
            for (e, f) in env.envs.iter().enumerate() {
                assert!(f.waiting.len() <= 3);
                let carried = f.cargo.iter().filter(|c| c.is_some()).count() as u32;
                // Every request is waiting, carried or delivered.
                assert_eq!(f.requested, f.delivered + carried + f.waiting.len() as u32);
                // Penalty accounting: the return so far is deliveries − 0.01 per waiting request-step.
                let expect = f.delivered as f32 - WAIT_PENALTY * f.waiting_steps as f32;
                assert!((f.episode.ret - expect).abs() < 1e-3);
                for a in 0..n {
                    let row = &b.obs[(e * n + a) * CHANNELS * gg..(e * n + a + 1) * CHANNELS * gg];
                    assert_eq!(row[SELF * gg + f.pos[a]], 1.0);
                    assert_eq!(row[SELF * gg..(SELF + 1) * gg].iter().sum::<f32>(), 1.0);
                    assert_eq!(row[TEAM * gg..(TEAM + 1) * gg].iter().sum::<f32>(), (n - 1) as f32);
                    assert_eq!(
                        row[PICKUPS * gg..(PICKUPS + 1) * gg].iter().sum::<f32>(),
                        f.waiting.len() as f32
                    );
                    let own = row[OWN_DROP * gg..(OWN_DROP + 1) * gg].iter().sum::<f32>();
                    assert_eq!(own, f32::from(u8::from(f.cargo[a].is_some())));
                    let others = row[OTHER_DROPS * gg..(OTHER_DROPS + 1) * gg].iter().sum::<f32>();
                    assert_eq!(others + own, carried as f32);
                }
            }
        }
        let eps = env.drain_finished();
        assert_eq!(eps.len(), 3_000 / 150 * envs);
        assert!(
            eps.iter()
                .all(|e| e.length == 150 && e.episode_return <= 150.0 * 0.5 + 1e-3)
        );
    }

    #[test]
    fn episodes_end_only_at_horizon() {
        let eps = run_random(&mut FleetCoordination::new(&params(8, 3, 0.2, 4, 200), 4, 6), 1_000, 3);
        assert_eq!(eps.len(), 20);
        assert!(
            eps.iter()
                .all(|e| e.length == 200 && e.episode_return >= -0.01 * 4.0 * 200.0)
        );
    }

    /// Scripted dispatch: empty vehicles head for the nearest pickup, loaded ones for their drop-off.
    #[test]
    fn scripted_dispatch_beats_random() {
        let p = params(8, 3, 0.3, 4, 200);
        let total = |scripted: bool| {
            let mut env = FleetCoordination::new(&p, 8, 7);
            let mut b = Buffers::for_env(&env);
            let mut rng = Rng::new(1);
            let mut ret = 0.0;
            for _ in 0..600 {
                if scripted {
                    for (e, f) in env.envs.iter().enumerate() {
                        for a in 0..3 {
                            let here = f.pos[a];
                            let goal = f.cargo[a].or_else(|| {
                                f.waiting
                                    .iter()
                                    .map(|r| r.pickup)
                                    .min_by_key(|&q| (q / 8).abs_diff(here / 8) + (q % 8).abs_diff(here % 8))
                            });
                            b.actions[e * 3 + a] = match goal {
                                Some(q) if q / 8 < here / 8 => 1,
                                Some(q) if q / 8 > here / 8 => 2,
                                Some(q) if q % 8 < here % 8 => 3,
                                Some(q) if q % 8 > here % 8 => 4,
                                _ => 0,
                            };
                        }
                    }
                } else {
                    b.random_actions(&mut rng, NUM_MOVES);
                }
                env.step(&b.actions, &mut b.obs, &mut b.rewards, &mut b.dones);
                ret += b.rewards.iter().step_by(3).sum::<f32>();
            }
            ret
        };
        let (s, r) = (total(true), total(false));
        assert!(s > r + 10.0, "scripted {s}, random {r}");
    }
}
