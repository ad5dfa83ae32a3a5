//! drlaas trainer: PPO and DQN in libtorch on the native vectorized environments.
//!
//! - [`train::train`] runs a [`drlaas_crds::TrainingSpec`]: iterations of a [`learner::Learner`]
//!   ([`ppo::Ppo`], [`dqn::Dqn`]), checkpoints, resume, warm start, early stop, greedy evaluation,
//!   and writes the model [`artifact`] (safetensors with the manifest in its metadata).
//! - [`evaluate`] replays a model greedily; [`progress`] reports each iteration; [`store`] puts models
//!   and checkpoints in the content store and fetches them by CID, verified.
//! - Networks ([`network`]) keep their parameters in one flat buffer ([`params`]) optimized by our
//!   own [`adam`], so checkpoints hold the complete optimizer state.

pub mod adam;
pub mod artifact;
pub mod device;
pub mod dqn;
pub mod env_package;
pub mod evaluate;
pub mod learner;
pub mod network;
pub mod normalize;
pub mod params;
pub mod ppo;
pub mod progress;
pub mod store;
pub mod train;
