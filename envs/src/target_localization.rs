//! Target localization: N agents search a walled G×G grid for K radiation sources.
//!
//! Walls are placed at random up to `wallDensity·G²`, skipping any wall that would split the free cells
//! (a local test: the wall's free 4-neighbours must stay joined around its 8-neighbourhood), so every
//! source is reachable. Each step an agent reads `Σ_k 1/(1+d²)` over the sources not yet found (`d`
//! Euclidean distance in cells) plus Gaussian noise σ = 0.05. A source is located when an agent steps
//! onto its cell: +1 team reward, once per source; −0.01 per step. Ends when all are found or at the
//! horizon.
//!
//! Observation per agent, `[5, G, G]`: walls, visited-by-team, self, teammates, readings (the team's
//! latest reading at each cell where one was taken; 0 elsewhere).

use crate::descriptor::TargetLocalizationParams;
use crate::grid::{emit_agent_obs, move_pos, sample_free_cells};
use crate::grid_vec::{Dims, Episode, GridEpisode, GridVec};
use crate::rng::Rng;

/// Observation channels.
pub const CHANNELS: usize = 5;
const WALLS: usize = 0;
const VISITED: usize = 1;
const SELF: usize = 2;
const TEAM: usize = 3;
const READINGS: usize = 4;
/// Penalty per step.
pub const STEP_PENALTY: f32 = 0.01;
/// Standard deviation of the sensor noise.
pub const NOISE_SIGMA: f32 = 0.05;

/// Whether walling `cell` keeps the free cells around it connected: its free 4-neighbours must lie in
/// one run of free cells around the 8-neighbourhood ring (off-grid counts as wall).
fn wall_keeps_connectivity(g: usize, walls: &[bool], cell: usize) -> bool {
    let (r, c) = ((cell / g) as isize, (cell % g) as isize);
    // Ring order N, NE, E, SE, S, SW, W, NW: consecutive cells are 4-adjacent.
    const RING: [(isize, isize); 8] = [(-1, 0), (-1, 1), (0, 1), (1, 1), (1, 0), (1, -1), (0, -1), (-1, -1)];
    let free = |i: usize| {
        let (dr, dc) = RING[i];
        let (rr, cc) = (r + dr, c + dc);
        rr >= 0 && cc >= 0 && (rr as usize) < g && (cc as usize) < g && !walls[rr as usize * g + cc as usize]
    };
    let ring: [bool; 8] = std::array::from_fn(free);
    let Some(start) = ring.iter().position(|f| !f) else {
        return true; // all eight free: one loop around the cell
    };
    let mut run = 0;
    let mut orth_run = None;
    let mut prev_free = false;
    for k in 1..=8 {
        let i = (start + k) % 8;
        if ring[i] {
            if !prev_free {
                run += 1;
            }
            if i % 2 == 0 {
                match orth_run {
                    None => orth_run = Some(run),
                    Some(r) if r != run => return false,
                    Some(_) => {}
                }
            }
        }
        prev_free = ring[i];
    }
    true
}

/// Fills `walls` with up to `floor(density·g²)` walls in random cells, keeping free cells connected.
pub fn generate_walls(g: usize, density: f64, rng: &mut Rng, walls: &mut [bool], order: &mut Vec<usize>) {
    walls.fill(false);
    let target = (density * (g * g) as f64).floor() as usize;
    order.clear();
    order.extend(0..g * g);
    let mut placed = 0;
    for i in 0..order.len() {
        if placed == target {
            break;
        }
        let j = i + rng.index(order.len() - i);
        order.swap(i, j);
        let cell = order[i];
        if wall_keeps_connectivity(g, walls, cell) {
            walls[cell] = true;
            placed += 1;
        }
    }
}

/// One target-localization environment.
#[derive(Debug, Clone)]
pub struct Search {
    walls: Vec<bool>,
    visited: Vec<bool>,
    sources: Vec<usize>,
    found: Vec<bool>,
    found_count: usize,
    pos: Vec<usize>,
    base: Vec<f32>,
    episode: Episode,
    rng: Rng,
}

impl Search {
    fn intensity(&self, g: usize, cell: usize) -> f32 {
        let (r, c) = ((cell / g) as f32, (cell % g) as f32);
        let mut sum = 0.0;
        for (&s, &f) in self.sources.iter().zip(&self.found) {
            if !f {
                let (dr, dc) = ((s / g) as f32 - r, (s % g) as f32 - c);
                sum += 1.0 / (1.0 + dr * dr + dc * dc);
            }
        }
        sum
    }

    fn take_readings(&mut self, g: usize) {
        let gg = g * g;
        for a in 0..self.pos.len() {
            let q = self.pos[a];
            let reading = self.intensity(g, q) + NOISE_SIGMA * self.rng.normal_f32();
            self.base[READINGS * gg + q] = reading;
        }
    }
}

/// Target-localization parameters beyond the grid, agents and horizon.
#[derive(Debug, Clone, Copy)]
pub struct Config {
    targets: usize,
    density: f64,
}

impl GridEpisode for Search {
    const CHANNELS: usize = CHANNELS;
    type Config = Config;

    fn rng_mut(&mut self) -> &mut Rng {
        &mut self.rng
    }

    fn episode_mut(&mut self) -> &mut Episode {
        &mut self.episode
    }

    fn reset(&mut self, d: Dims, cfg: &Config, scratch: &mut Vec<usize>) {
        let (g, gg) = (d.g, d.gg);
        generate_walls(g, cfg.density, &mut self.rng, &mut self.walls, scratch);
        // Agents and sources on distinct free cells: the first `targets` draws are sources.
        let mut cells = std::mem::take(&mut self.pos);
        sample_free_cells(&mut self.rng, &self.walls, cfg.targets + d.agents, scratch, &mut cells);
        self.sources.clear();
        self.sources.extend_from_slice(&cells[..cfg.targets]);
        cells.drain(..cfg.targets);
        self.pos = cells;
        self.found.clear();
        self.found.resize(cfg.targets, false);
        self.found_count = 0;
        self.visited.fill(false);
        self.base.fill(0.0);
        for c in 0..gg {
            if self.walls[c] {
                self.base[WALLS * gg + c] = 1.0;
            }
        }
        for a in 0..d.agents {
            let q = self.pos[a];
            self.visited[q] = true;
            self.base[VISITED * gg + q] = 1.0;
            self.base[TEAM * gg + q] += 1.0;
        }
        self.take_readings(g);
        self.episode = Episode::default();
    }

    fn step(&mut self, d: Dims, cfg: &Config, actions: &[u32]) -> (f32, bool) {
        let gg = d.gg;
        let mut located = 0u32;
        for (a, &action) in actions.iter().enumerate() {
            let old = self.pos[a];
            let new = move_pos(d.g, &self.walls, old, action);
            if new != old {
                self.base[TEAM * gg + old] -= 1.0;
                self.base[TEAM * gg + new] += 1.0;
                self.pos[a] = new;
                if !self.visited[new] {
                    self.visited[new] = true;
                    self.base[VISITED * gg + new] = 1.0;
                }
                for k in 0..cfg.targets {
                    if !self.found[k] && self.sources[k] == new {
                        self.found[k] = true;
                        self.found_count += 1;
                        located += 1;
                    }
                }
            }
        }
        (located as f32 - STEP_PENALTY, self.found_count == cfg.targets)
    }

    fn continue_episode(&mut self, d: Dims, _cfg: &Config) {
        self.take_readings(d.g);
    }

    fn write_obs(&self, d: Dims, out: &mut [f32]) {
        emit_agent_obs(&self.base, &self.pos, out, d.gg, SELF, TEAM);
    }
}

/// `num_envs` target-localization environments.
pub type TargetLocalization = GridVec<Search>;

impl TargetLocalization {
    /// Builds and resets `num_envs` environments (parameters must have been validated).
    pub fn new(p: &TargetLocalizationParams, num_envs: usize, seed: u64) -> Self {
        let (g, agents) = (p.grid as usize, p.agents as usize);
        let cfg = Config {
            targets: p.targets as usize,
            density: p.wall_density,
        };
        let gg = g * g;
        let proto = Search {
            walls: vec![false; gg],
            visited: vec![false; gg],
            sources: Vec::with_capacity(cfg.targets),
            found: Vec::with_capacity(cfg.targets),
            found_count: 0,
            pos: Vec::with_capacity(agents + cfg.targets),
            base: vec![0.0; CHANNELS * gg],
            episode: Episode::default(),
            rng: Rng::new(0),
        };
        GridVec::from_proto(g, agents, p.horizon, cfg, proto, num_envs, seed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::grid::{NUM_MOVES, is_connected};
    use crate::testing::{Buffers, check_determinism, run_random};
    use crate::vec_env::VecEnv;

    fn params(grid: u32, agents: u32, targets: u32, wall_density: f64, horizon: u32) -> TargetLocalizationParams {
        TargetLocalizationParams {
            grid,
            agents,
            targets,
            wall_density,
            horizon,
        }
    }

    #[test]
    fn deterministic_per_seed() {
        check_determinism(|seed| Box::new(TargetLocalization::new(&params(8, 2, 2, 0.1, 100), 4, seed)));
    }

    #[test]
    fn walls_keep_free_cells_connected() {
        let mut rng = Rng::new(5);
        let mut order = Vec::new();
        for g in [4usize, 5, 8, 13, 32, 64] {
            for density in [0.0, 0.1, 0.3, 0.5] {
                for _ in 0..20 {
                    let mut walls = vec![false; g * g];
                    generate_walls(g, density, &mut rng, &mut walls, &mut order);
                    assert!(is_connected(g, &walls), "g={g} density={density}");
                    let count = walls.iter().filter(|w| **w).count();
                    assert!(count <= (density * (g * g) as f64) as usize);
                    if density == 0.1 && g >= 8 {
                        // Sparse walls are rarely refused: the density is nearly met.
                        assert!(count * 10 >= (g * g) * 8 / 10, "only {count} walls at g={g}");
                    }
                }
            }
        }
    }

    #[test]
    fn sources_found_once_and_counted() {
        let (n, k, envs) = (3usize, 3usize, 8usize);
        let mut env = TargetLocalization::new(&params(6, 3, 3, 0.2, 300), envs, 1);
        let mut b = Buffers::for_env(&env);
        env.reset(1, &mut b.obs);
        let mut rng = Rng::new(2);
        let mut found_before: Vec<usize> = vec![0; envs];
        for _ in 0..3_000 {
            b.random_actions(&mut rng, NUM_MOVES);
            env.step(&b.actions, &mut b.obs, &mut b.rewards, &mut b.dones);
            for (e, s) in env.envs.iter().enumerate() {
                assert!(s.found_count <= k);
                assert_eq!(s.found.iter().filter(|f| **f).count(), s.found_count);
                if !b.dones[e * n] {
                    let newly = s.found_count - found_before[e];
                    assert!((b.rewards[e * n] - (newly as f32 - STEP_PENALTY)).abs() < 1e-6);
                    // Found sources no longer radiate: readings near them drop to noise.
                    for (a, &q) in s.pos.iter().enumerate() {
                        let gg = 36;
                        let row = &b.obs[(e * n + a) * CHANNELS * gg..(e * n + a + 1) * CHANNELS * gg];
                        assert_eq!(row[SELF * gg + q], 1.0);
                        assert!(row[VISITED * gg + q] == 1.0);
                        assert!((row[READINGS * gg + q] - s.intensity(6, q)).abs() < 0.5);
                    }
                }
                found_before[e] = s.found_count;
            }
        }
        let eps = env.drain_finished();
        assert!(!eps.is_empty());
        for ep in &eps {
            // Return = sources found (≤ K) − penalty per step.
            let found = ep.episode_return + STEP_PENALTY * ep.length as f32;
            assert!(found > -1e-3 && found < k as f32 + 1e-3, "{ep:?}");
            assert!((found - found.round()).abs() < 1e-3);
            assert!(ep.length <= 300);
            if ep.length < 300 {
                assert!((found - k as f32).abs() < 1e-3, "early end means all found");
            }
        }
    }

    #[test]
    fn readings_fall_with_distance() {
        let mut env = TargetLocalization::new(&params(16, 1, 1, 0.0, 100), 1, 3);
        let s = &mut env.envs[0];
        let src = s.sources[0];
        let far = if src < 128 { 255 } else { 0 };
        assert!((s.intensity(16, src) - 1.0).abs() < 1e-6);
        assert!(s.intensity(16, far) < 0.02);
    }

    #[test]
    fn random_episodes_are_sane() {
        let eps = run_random(
            &mut TargetLocalization::new(&params(8, 2, 2, 0.1, 100), 16, 4),
            1_000,
            9,
        );
        assert!(eps.len() >= 160);
        assert!(
            eps.iter()
                .all(|e| e.length >= 1 && e.length <= 100 && e.episode_return <= 2.0)
        );
    }
}
