//! drlaas native environments.
//!
//! Vectorized, seeded and deterministic environments for the trainer (docs/architecture.md#environments), and the serde
//! [`EnvDescriptor`]s that name them in task specs. The descriptors are plain data so the operator can
//! validate and compare them (docs/architecture.md#recruitment) without linking the trainer's torch.
//!
//! - [`VecEnv`]: the stepping interface (caller-owned flat `f32` buffers, auto-reset, one row per agent,
//!   team reward replicated to every agent of an environment).
//! - [`EnvDescriptor`]: kind + parameters, `validate`, `make`, `features`.
//! - Environments: [`CartPole`], [`TargetLocalization`], [`MazeCleaning`], [`FleetCoordination`].
//! - [`Rng`]: the crate's own xoshiro256**, so episodes never change with a dependency update.
//!
//! ```
//! use drlaas_envs::{EnvDescriptor, obs_len};
//! let d: EnvDescriptor = serde_json::from_str(r#"{"kind": "maze-cleaning", "agents": 3}"#).unwrap();
//! let mut env = d.make(16, 42).unwrap();
//! let rows = env.num_envs() * env.agents();
//! let mut obs = vec![0.0; rows * obs_len(env.as_ref())];
//! env.reset(42, &mut obs);
//! let (mut rewards, mut dones) = (vec![0.0; rows], vec![false; rows]);
//! env.step(&vec![0; rows], &mut obs, &mut rewards, &mut dones);
//! assert_eq!(env.obs_shape(), d.obs_shape());
//! ```

pub mod cartpole;
pub mod descriptor;
pub mod external;
pub mod fleet_coordination;
pub mod grid;
mod grid_vec;
pub mod maze_cleaning;
pub mod random_policy;
pub mod remote;
pub mod rng;
pub mod target_localization;
pub mod vec_env;

#[cfg(test)]
mod testing;

pub use cartpole::CartPole;
pub use descriptor::{
    ActionSpace, CartpoleParams, EnvDescriptor, EnvError, Feature, FleetCoordinationParams, GymnasiumParams,
    MazeCleaningParams, TargetLocalizationParams,
};
pub use fleet_coordination::FleetCoordination;
pub use maze_cleaning::MazeCleaning;
pub use random_policy::random_mean_return;
pub use rng::Rng;
pub use target_localization::TargetLocalization;
pub use vec_env::{EpisodeStats, VecEnv, obs_len};
