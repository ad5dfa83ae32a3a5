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
use crate::grid::move_pos;
use crate::grid_vec::{Dims, Episode, GridEpisode, GridVec};
use crate::rng::Rng;

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

/// One fleet-coordination environment.
#[derive(Debug, Clone)]
pub struct Fleet {
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
}

/// Fleet-coordination parameters beyond the grid, agents and horizon.
#[derive(Debug, Clone)]
pub struct Config {
    request_rate: f64,
    max_waiting: usize,
    /// An open grid: vehicles are only stopped by its edges.
    no_walls: Vec<bool>,
}

impl GridEpisode for Fleet {
    const CHANNELS: usize = CHANNELS;
    type Config = Config;

    fn rng_mut(&mut self) -> &mut Rng {
        &mut self.rng
    }

    fn episode_mut(&mut self) -> &mut Episode {
        &mut self.episode
    }

    fn reset(&mut self, d: Dims, _cfg: &Config, scratch: &mut Vec<usize>) {
        scratch.clear();
        scratch.extend(0..d.gg);
        self.pos.clear();
        for i in 0..d.agents {
            let j = i + self.rng.index(scratch.len() - i);
            scratch.swap(i, j);
            self.pos.push(scratch[i]);
        }
        self.cargo.clear();
        self.cargo.resize(d.agents, None);
        self.waiting.clear();
        self.episode = Episode::default();
        (self.requested, self.delivered, self.waiting_steps) = (0, 0, 0);
        self.rebuild_base(d.g);
    }

    fn step(&mut self, d: Dims, cfg: &Config, actions: &[u32]) -> (f32, bool) {
        let gg = d.gg;
        let mut delivered = 0u32;
        for (a, &action) in actions.iter().enumerate() {
            let p = move_pos(d.g, &cfg.no_walls, self.pos[a], action);
            self.pos[a] = p;
            if self.cargo[a] == Some(p) {
                self.cargo[a] = None;
                delivered += 1;
            }
            if self.cargo[a].is_none()
                && let Some(i) = self.waiting.iter().position(|r| r.pickup == p)
            {
                self.cargo[a] = Some(self.waiting.remove(i).dropoff);
            }
        }
        if self.waiting.len() < cfg.max_waiting && self.rng.chance(cfg.request_rate) {
            let pickup = self.rng.index(gg);
            let dropoff = (pickup + 1 + self.rng.index(gg - 1)) % gg; // uniform over the other cells
            self.waiting.push(Request { pickup, dropoff });
            self.requested += 1;
        }
        self.delivered += delivered;
        self.waiting_steps += self.waiting.len() as u32;
        // Episodes only end at the horizon.
        (delivered as f32 - WAIT_PENALTY * self.waiting.len() as f32, false)
    }

    fn continue_episode(&mut self, d: Dims, _cfg: &Config) {
        self.rebuild_base(d.g);
    }

    fn write_obs(&self, d: Dims, out: &mut [f32]) {
        let gg = d.gg;
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
pub type FleetCoordination = GridVec<Fleet>;

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
        let cfg = Config {
            request_rate: p.request_rate,
            max_waiting: p.max_waiting as usize,
            no_walls: vec![false; g * g],
        };
        GridVec::from_proto(g, agents, p.horizon, cfg, proto, num_envs, seed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::grid::NUM_MOVES;
    use crate::testing::{Buffers, check_determinism, run_random};
    use crate::vec_env::VecEnv;

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
