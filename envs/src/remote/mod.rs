//! External environments: Gymnasium and PettingZoo environments served by an environment server in
//! another process, over the protocol of docs/env-protocol.md.
//!
//! - [`protocol`]: the messages as types and their binary frames;
//! - [`Connection`]: one session with one server;
//! - [`ServerProcess`]: a server started as a child process (`python -m drlaas_envserver`);
//! - [`Sidecar`]: servers that already run beside the trainer (a pod's environment sidecar);
//! - [`package`]: a requester's environment shipped as wheels, installed for a server;
//! - [`RemoteVecEnv`]: a [`VecEnv`](crate::VecEnv) over one or more servers that step in parallel.

mod connection;
pub mod package;
pub mod protocol;
mod server_process;
mod sidecar;
mod vec_env;

pub use connection::{Connection, ServerAddress};
pub use protocol::{EnvSpec, Space, Spaces};
pub use server_process::{Launcher, READY, ServerProcess, socket_path};
pub use sidecar::{ENV_READY, ENV_SERVERS, Sidecar};
pub use vec_env::{RemoteVecEnv, Timeouts};
