//! What uniformly random actions score on a built-in environment: the floor a task's target must
//! clear, measured without torch so that the operator can check a task before it is posted.
//!
//! The trainer's evaluator measures the same thing after training, beside the model's return (on the
//! verifier's seeds, through any environment); this is the cheap estimate admission needs.

use crate::descriptor::{EnvDescriptor, EnvError};
use crate::rng::Rng;
use crate::vec_env::obs_len;

/// Mean team return of one episode in each of `episodes` copies of `descriptor`'s environment under
/// uniformly random actions, seeded by `seed`. `None` for an external environment (`gymnasium`),
/// which needs its environment server to be played.
pub fn random_mean_return(descriptor: &EnvDescriptor, episodes: usize, seed: u64) -> Result<Option<f64>, EnvError> {
    if matches!(descriptor, EnvDescriptor::Gymnasium(_)) {
        return Ok(None);
    }
    let mut env = descriptor.make(episodes, seed)?;
    let (agents, actions) = (env.agents(), env.num_actions());
    let rows = episodes * agents;
    let mut obs = vec![0.0; rows * obs_len(env.as_ref())];
    env.reset(seed, &mut obs);
    let (mut rewards, mut dones, mut chosen) = (vec![0.0; rows], vec![false; rows], vec![0u32; rows]);
    let mut returns = vec![0.0f64; episodes];
    let mut finished = vec![false; episodes];
    let mut rng = Rng::stream(seed, 0x5241_4e44);
    // Every built-in environment ends its episodes by its horizon at the latest.
    while finished.contains(&false) {
        for action in &mut chosen {
            *action = rng.index(actions) as u32;
        }
        env.step(&chosen, &mut obs, &mut rewards, &mut dones);
        for (e, done) in finished.iter_mut().enumerate().filter(|(_, done)| !**done) {
            returns[e] += f64::from(env.team_reward(&rewards, e));
            *done = dones[e * agents];
        }
    }
    Ok(Some(returns.iter().sum::<f64>() / episodes as f64))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(json: &str) -> EnvDescriptor {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn random_cartpole_lasts_about_twenty_steps_and_the_seed_decides() {
        let cartpole = env(r#"{"kind": "cartpole"}"#);
        let mean = random_mean_return(&cartpole, 64, 1).unwrap().unwrap();
        assert!((15.0..30.0).contains(&mean), "{mean}");
        assert_eq!(random_mean_return(&cartpole, 64, 1).unwrap(), Some(mean));
        assert_ne!(random_mean_return(&cartpole, 64, 2).unwrap(), Some(mean));
    }

    #[test]
    fn a_maze_is_played_to_its_horizon_and_gymnasium_is_not_played_here() {
        let maze = env(r#"{"kind": "maze-cleaning", "grid": 8, "agents": 2, "horizon": 50}"#);
        let mean = random_mean_return(&maze, 8, 0).unwrap().unwrap();
        assert!(mean > 0.0, "random agents clean some cells: {mean}");
        let gym = env(r#"{"kind": "gymnasium", "id": "CartPole-v1", "observationShape": [4], "actions": 2}"#);
        assert_eq!(random_mean_return(&gym, 8, 0).unwrap(), None);
    }
}
