//! Maze cleaning: N agents clean every free cell of a G×G maze.
//!
//! The maze comes from recursive division on a lattice: walls only on odd rows/columns, gaps only on
//! even ones, so a later wall can never close an earlier gap and every free cell stays reachable (for
//! even G the last row and column stay open corridors). Every free cell starts dirty except those the
//! agents start on; an agent cleans the cell it ends a step on. Team reward per step = newly cleaned
//! cells − 0.01, the same for every agent. The episode ends when all is clean or at the horizon.
//!
//! Observation per agent, `[4, G, G]`: walls, dirty, self position, teammates (count per cell).

use crate::descriptor::MazeCleaningParams;
use crate::grid::{emit_agent_obs, move_pos, sample_free_cells};
use crate::grid_vec::{Dims, Episode, GridEpisode, GridVec};
use crate::rng::Rng;

/// Observation channels.
pub const CHANNELS: usize = 4;
const WALLS: usize = 0;
const DIRTY: usize = 1;
const SELF: usize = 2;
const TEAM: usize = 3;
/// Penalty per step, so finishing sooner pays.
pub const STEP_PENALTY: f32 = 0.01;

/// Cells free in every maze of side `g`: the (even, even) lattice points of the divided region, plus
/// the open last row and column when `g` is even.
pub fn guaranteed_free_cells(g: usize) -> usize {
    let m = if g % 2 == 1 { g } else { g - 1 };
    let lattice = m.div_ceil(2) * m.div_ceil(2);
    if g % 2 == 1 { lattice } else { lattice + 2 * g - 1 }
}

/// Fills `walls` (len g·g) with a recursive-division maze.
pub fn generate_maze(g: usize, rng: &mut Rng, walls: &mut [bool]) {
    walls.fill(false);
    let m = if g % 2 == 1 { g - 1 } else { g - 2 }; // last even index of the divided region
    // Chambers (r0, r1, c0, c1), inclusive, all bounds even.
    let mut stack = vec![(0usize, m, 0usize, m)];
    while let Some((r0, r1, c0, c1)) = stack.pop() {
        let (h, w) = (r1 - r0, c1 - c0);
        if h < 2 && w < 2 {
            continue;
        }
        let vertical = if w < 2 {
            false
        } else if h < 2 {
            true
        } else if w != h {
            w > h
        } else {
            rng.below(2) == 0
        };
        if vertical {
            let col = c0 + 1 + 2 * rng.index(w / 2);
            let gap = r0 + 2 * rng.index(h / 2 + 1);
            for r in (r0..=r1).filter(|&r| r != gap) {
                walls[r * g + col] = true;
            }
            stack.push((r0, r1, c0, col - 1));
            stack.push((r0, r1, col + 1, c1));
        } else {
            let row = r0 + 1 + 2 * rng.index(h / 2);
            let gap = c0 + 2 * rng.index(w / 2 + 1);
            for c in (c0..=c1).filter(|&c| c != gap) {
                walls[row * g + c] = true;
            }
            stack.push((r0, row - 1, c0, c1));
            stack.push((row + 1, r1, c0, c1));
        }
    }
}

/// One maze-cleaning environment.
#[derive(Debug, Clone)]
pub struct Maze {
    walls: Vec<bool>,
    dirty: Vec<bool>,
    dirty_left: usize,
    pos: Vec<usize>,
    /// Shared observation planes, kept current incrementally (self plane all zero).
    base: Vec<f32>,
    episode: Episode,
    rng: Rng,
}

impl GridEpisode for Maze {
    const CHANNELS: usize = CHANNELS;
    type Config = ();

    fn rng_mut(&mut self) -> &mut Rng {
        &mut self.rng
    }

    fn episode_mut(&mut self) -> &mut Episode {
        &mut self.episode
    }

    fn reset(&mut self, d: Dims, _cfg: &(), scratch: &mut Vec<usize>) {
        let gg = d.gg;
        generate_maze(d.g, &mut self.rng, &mut self.walls);
        sample_free_cells(&mut self.rng, &self.walls, d.agents, scratch, &mut self.pos);
        self.base.fill(0.0);
        self.dirty_left = 0;
        for c in 0..gg {
            self.dirty[c] = !self.walls[c];
            if self.walls[c] {
                self.base[WALLS * gg + c] = 1.0;
            } else {
                self.base[DIRTY * gg + c] = 1.0;
                self.dirty_left += 1;
            }
        }
        for &p in &self.pos {
            if self.dirty[p] {
                self.dirty[p] = false;
                self.base[DIRTY * gg + p] = 0.0;
                self.dirty_left -= 1;
            }
            self.base[TEAM * gg + p] += 1.0;
        }
        self.episode = Episode::default();
    }

    fn step(&mut self, d: Dims, _cfg: &(), actions: &[u32]) -> (f32, bool) {
        let gg = d.gg;
        let mut cleaned = 0u32;
        for (a, &action) in actions.iter().enumerate() {
            let old = self.pos[a];
            let new = move_pos(d.g, &self.walls, old, action);
            if new != old {
                self.base[TEAM * gg + old] -= 1.0;
                self.base[TEAM * gg + new] += 1.0;
                self.pos[a] = new;
            }
            if self.dirty[new] {
                self.dirty[new] = false;
                self.base[DIRTY * gg + new] = 0.0;
                self.dirty_left -= 1;
                cleaned += 1;
            }
        }
        (cleaned as f32 - STEP_PENALTY, self.dirty_left == 0)
    }

    fn write_obs(&self, d: Dims, out: &mut [f32]) {
        emit_agent_obs(&self.base, &self.pos, out, d.gg, SELF, TEAM);
    }
}

/// `num_envs` maze-cleaning environments.
pub type MazeCleaning = GridVec<Maze>;

impl MazeCleaning {
    /// Builds and resets `num_envs` environments (parameters must have been validated).
    pub fn new(p: &MazeCleaningParams, num_envs: usize, seed: u64) -> Self {
        let (g, agents) = (p.grid as usize, p.agents as usize);
        let gg = g * g;
        let proto = Maze {
            walls: vec![false; gg],
            dirty: vec![false; gg],
            dirty_left: 0,
            pos: Vec::with_capacity(agents),
            base: vec![0.0; CHANNELS * gg],
            episode: Episode::default(),
            rng: Rng::new(0),
        };
        GridVec::from_proto(g, agents, p.horizon, (), proto, num_envs, seed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::grid::{NUM_MOVES, is_connected};
    use crate::testing::{Buffers, check_determinism, run_random};
    use crate::vec_env::VecEnv;

    fn params(grid: u32, agents: u32, horizon: u32) -> MazeCleaningParams {
        MazeCleaningParams { grid, agents, horizon }
    }

    #[test]
    fn deterministic_per_seed() {
        check_determinism(|seed| Box::new(MazeCleaning::new(&params(8, 2, 200), 4, seed)));
    }

    #[test]
    fn mazes_are_connected_and_keep_guaranteed_cells_free() {
        let mut rng = Rng::new(1);
        for g in 4..=33 {
            for _ in 0..50 {
                let mut walls = vec![false; g * g];
                generate_maze(g, &mut rng, &mut walls);
                assert!(is_connected(g, &walls), "disconnected maze g={g}");
                let free = walls.iter().filter(|w| !**w).count();
                assert!(free >= guaranteed_free_cells(g));
                assert!(free < g * g);
                for r in (0..g).step_by(2) {
                    for c in (0..g).step_by(2) {
                        assert!(!walls[r * g + c], "lattice point walled");
                    }
                }
            }
        }
        for g in [63, 64] {
            let mut walls = vec![false; g * g];
            generate_maze(g, &mut rng, &mut walls);
            assert!(is_connected(g, &walls));
        }
    }

    #[test]
    fn obs_layout_and_invariants() {
        let (g, n, envs) = (8usize, 3usize, 4usize);
        let gg = g * g;
        let mut env = MazeCleaning::new(&params(8, 3, 400), envs, 9);
        let mut b = Buffers::for_env(&env);
        env.reset(9, &mut b.obs);
        let mut rng = Rng::new(3);
        let mut dirty_before: Vec<Vec<bool>> = env.envs.iter().map(|m| m.dirty.clone()).collect();
        let mut cleaned_total = vec![0f32; envs];
        for _ in 0..3_000 {
            b.random_actions(&mut rng, NUM_MOVES);
            env.step(&b.actions, &mut b.obs, &mut b.rewards, &mut b.dones);
            for (e, m) in env.envs.iter().enumerate() {
                if b.dones[e * n] {
                    cleaned_total[e] = 0.0;
                } else {
                    // Cleaned cells never become dirty again; reward counts newly cleaned cells.
                    let newly = (0..gg).filter(|&c| dirty_before[e][c] && !m.dirty[c]).count();
                    assert!((0..gg).all(|c| !m.dirty[c] || dirty_before[e][c]));
                    assert!((b.rewards[e * n] - (newly as f32 - STEP_PENALTY)).abs() < 1e-6);
                    cleaned_total[e] += newly as f32;
                    assert!(m.dirty_left > 0);
                }
                assert_eq!(m.dirty.iter().filter(|d| **d).count(), m.dirty_left);
                // Every agent's row: walls, dirty, self, teammates.
                for a in 0..n {
                    let row = &b.obs[(e * n + a) * CHANNELS * gg..(e * n + a + 1) * CHANNELS * gg];
                    for c in 0..gg {
                        assert_eq!(row[WALLS * gg + c], f32::from(u8::from(m.walls[c])));
                        assert_eq!(row[DIRTY * gg + c], f32::from(u8::from(m.dirty[c])));
                        assert_eq!(row[SELF * gg + c], f32::from(u8::from(m.pos[a] == c)));
                        let mates = (0..n).filter(|&o| o != a && m.pos[o] == c).count();
                        assert_eq!(row[TEAM * gg + c], mates as f32);
                    }
                }
                dirty_before[e] = m.dirty.clone();
            }
        }
        let eps = env.drain_finished();
        assert!(!eps.is_empty());
        assert!(eps.iter().all(|e| e.length <= 400 && e.episode_return <= 64.0));
    }

    #[test]
    fn episode_ends_when_all_clean() {
        // A 4x4 maze with many agents and a long horizon is cleaned well before the horizon.
        let eps = run_random(&mut MazeCleaning::new(&params(4, 4, 10_000), 8, 2), 2_000, 1);
        assert!(!eps.is_empty());
        assert!(eps.iter().all(|e| e.length < 10_000));
        // Return = cleaned cells - penalty; cleaned ≤ 16 and every cell not started on was cleaned.
        for e in &eps {
            let cleaned = e.episode_return + STEP_PENALTY * e.length as f32;
            assert!(cleaned > 0.0 && cleaned <= 16.0, "{e:?}");
        }
    }

    /// Greedy scripted agent: first move of a shortest path to the nearest dirty cell.
    fn greedy_action(g: usize, m: &Maze, from: usize) -> u32 {
        let mut first = vec![u32::MAX; g * g];
        let mut queue = std::collections::VecDeque::from([from]);
        first[from] = 0;
        while let Some(p) = queue.pop_front() {
            if m.dirty[p] {
                return first[p];
            }
            for a in 1..NUM_MOVES as u32 {
                let q = move_pos(g, &m.walls, p, a);
                if first[q] == u32::MAX {
                    first[q] = if p == from { a } else { first[p] };
                    queue.push_back(q);
                }
            }
        }
        0
    }

    #[test]
    fn greedy_beats_random() {
        let p = params(8, 2, 200);
        let steps = 150;
        let cleaned = |greedy: bool| {
            let mut env = MazeCleaning::new(&p, 16, 4);
            let mut b = Buffers::for_env(&env);
            let mut rng = Rng::new(8);
            let mut total = 0.0;
            for _ in 0..steps {
                if greedy {
                    for (e, m) in env.envs.iter().enumerate() {
                        for a in 0..2 {
                            b.actions[e * 2 + a] = greedy_action(8, m, m.pos[a]);
                        }
                    }
                } else {
                    b.random_actions(&mut rng, NUM_MOVES);
                }
                env.step(&b.actions, &mut b.obs, &mut b.rewards, &mut b.dones);
                total += b.rewards.iter().step_by(2).map(|r| r + STEP_PENALTY).sum::<f32>();
            }
            total
        };
        let (g, r) = (cleaned(true), cleaned(false));
        assert!(g > 1.5 * r, "greedy cleaned {g}, random {r}");
    }
}
