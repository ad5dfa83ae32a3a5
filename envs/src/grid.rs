//! Shared machinery of the grid environments: moves, placement, connectivity and observation copying.
//!
//! Cells are indexed row-major, `cell = row * g + col`. Observations are `[C, G, G]` planes; each
//! environment keeps one *base* observation (the planes every agent shares, plus a teammates plane
//! that counts all agents) up to date incrementally, and emits each agent's row as one `copy_from_slice`
//! of the base followed by a two-cell patch (mark self, remove self from teammates). That keeps writing
//! observations at memcpy speed instead of rebuilding `C·G²` floats per agent.

use crate::rng::Rng;

/// Stay, up, down, left, right.
pub(crate) const NUM_MOVES: usize = 5;

/// Where `action` takes an agent at `pos`; moving off the grid or into a wall means staying.
#[inline]
pub(crate) fn move_pos(g: usize, walls: &[bool], pos: usize, action: u32) -> usize {
    let (r, c) = (pos / g, pos % g);
    let target = match action {
        1 if r > 0 => pos - g,
        2 if r + 1 < g => pos + g,
        3 if c > 0 => pos - 1,
        4 if c + 1 < g => pos + 1,
        _ => return pos,
    };
    if walls[target] { pos } else { target }
}

/// `k` distinct cells drawn uniformly from the free cells (partial Fisher-Yates over `scratch`).
pub(crate) fn sample_free_cells(
    rng: &mut Rng,
    walls: &[bool],
    k: usize,
    scratch: &mut Vec<usize>,
    out: &mut Vec<usize>,
) {
    scratch.clear();
    scratch.extend((0..walls.len()).filter(|&c| !walls[c]));
    assert!(
        k <= scratch.len(),
        "not enough free cells ({}) for {k} placements",
        scratch.len()
    );
    out.clear();
    for i in 0..k {
        let j = i + rng.index(scratch.len() - i);
        scratch.swap(i, j);
        out.push(scratch[i]);
    }
}

/// Cells reachable from `start` through free cells (4-connected). Used by tests and scripted agents.
pub fn reachable(g: usize, walls: &[bool], start: usize) -> Vec<bool> {
    let mut seen = vec![false; walls.len()];
    let mut queue = std::collections::VecDeque::from([start]);
    seen[start] = true;
    while let Some(p) = queue.pop_front() {
        for a in 1..NUM_MOVES as u32 {
            let q = move_pos(g, walls, p, a);
            if !seen[q] {
                seen[q] = true;
                queue.push_back(q);
            }
        }
    }
    seen
}

/// Whether all free cells form one 4-connected region.
pub fn is_connected(g: usize, walls: &[bool]) -> bool {
    match walls.iter().position(|w| !w) {
        None => true,
        Some(start) => {
            let seen = reachable(g, walls, start);
            walls.iter().zip(&seen).all(|(w, s)| *w || *s)
        }
    }
}

/// Writes every agent's observation row: the base planes, then `self_plane[pos] = 1` and the agent
/// removed from `team_plane` (which counts every agent in the base). `out` holds one row per `pos`.
#[inline]
pub(crate) fn emit_agent_obs(
    base: &[f32],
    pos: &[usize],
    out: &mut [f32],
    gg: usize,
    self_plane: usize,
    team_plane: usize,
) {
    for (row, &p) in out.chunks_exact_mut(base.len()).zip(pos) {
        row.copy_from_slice(base);
        row[self_plane * gg + p] = 1.0;
        row[team_plane * gg + p] -= 1.0;
    }
}
