//! [`RemoteVecEnv`]: environments served over the protocol, as a [`VecEnv`].
//!
//! The vector is split between several servers (one process each), which step at the same time:
//! a step sends every server its share of the actions, then reads every reply.

use std::time::Duration;

use super::connection::{Connection, ServerAddress};
use super::protocol::{Actions, EnvSpec, FrameError, Space, Spaces, Stepped};
use super::server_process::{Launcher, ServerProcess, socket_path};
use crate::vec_env::{EpisodeStats, VecEnv, check_step_buffers};

/// How long a server may take to start (Python imports included) and to answer one request.
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    /// From spawn to the ready line.
    pub start: Duration,
    /// From a request to its reply (a step, a reset, the handshake).
    pub reply: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            start: Duration::from_secs(60),
            reply: Duration::from_secs(60),
        }
    }
}

#[derive(Debug)]
struct Server {
    /// The child process, when this vector started it (absent for a sidecar).
    process: Option<ServerProcess>,
    connection: Connection,
    /// Its environments are `first..first + envs` of the vector.
    first: usize,
    envs: usize,
    stepped: Stepped,
}

/// `num_envs` copies of an external environment, served by one or more environment servers.
#[derive(Debug)]
pub struct RemoteVecEnv {
    servers: Vec<Server>,
    spaces: Spaces,
    num_envs: usize,
    agents: usize,
    obs_len: usize,
    truncated: Vec<bool>,
    final_obs: Vec<(usize, Vec<f32>)>,
    finished: Vec<EpisodeStats>,
    failure: Option<String>,
    actions: Vec<i32>,
    continuous: Vec<f32>,
    /// `(low, high)` per component of a box action space; empty for others.
    bounds: Vec<(f32, f32)>,
    reset_obs: Vec<f32>,
}

/// Splits `num_envs` between `servers` as evenly as can be (the first ones take one more).
fn shares(num_envs: usize, servers: usize) -> Vec<usize> {
    let servers = servers.clamp(1, num_envs.max(1));
    (0..servers)
        .map(|i| num_envs / servers + usize::from(i < num_envs % servers))
        .collect()
}

impl RemoteVecEnv {
    /// Starts `servers` server processes with `launcher` and opens `num_envs` copies of
    /// `environment` across them.
    pub fn spawn(
        launcher: &Launcher,
        environment: &EnvSpec,
        num_envs: usize,
        servers: usize,
        timeouts: Timeouts,
    ) -> Result<RemoteVecEnv, String> {
        let processes = (0..shares(num_envs, servers).len())
            .map(|i| ServerProcess::spawn(launcher, &socket_path(i), timeouts.start))
            .collect::<Result<Vec<_>, _>>()?;
        Self::open(
            processes.into_iter().map(Endpoint::Started).collect(),
            environment,
            num_envs,
            timeouts,
        )
    }

    /// Opens `num_envs` copies of `environment` on servers that already listen (sidecars).
    pub fn connect(
        addresses: &[ServerAddress],
        environment: &EnvSpec,
        num_envs: usize,
        timeouts: Timeouts,
    ) -> Result<RemoteVecEnv, String> {
        if addresses.is_empty() {
            return Err("no environment server to connect to".into());
        }
        Self::open(
            addresses.iter().cloned().map(Endpoint::Listening).collect(),
            environment,
            num_envs,
            timeouts,
        )
    }

    fn open(
        servers: Vec<Endpoint>,
        environment: &EnvSpec,
        num_envs: usize,
        timeouts: Timeouts,
    ) -> Result<RemoteVecEnv, String> {
        if num_envs == 0 {
            return Err("num_envs must be at least 1".into());
        }
        // One share per endpoint (an endpoint beyond the number of environments is not used).
        let counts = shares(num_envs, servers.len());
        let mut first = 0;
        let mut built = Vec::new();
        for (endpoint, envs) in servers.into_iter().zip(counts) {
            let address = endpoint.address();
            let connection = Connection::open(&address, environment, envs as u32, timeouts.reply);
            let process = endpoint.process();
            let connection = connection.map_err(|e| describe(&address, process.as_ref(), "open", e))?;
            built.push(Server {
                process,
                connection,
                first,
                envs,
                stepped: Stepped::default(),
            });
            first += envs;
        }
        let spaces = built[0].connection.spaces().clone();
        for server in &built[1..] {
            let other = server.connection.spaces();
            if (&other.observation_space, &other.action_space, other.agents)
                != (&spaces.observation_space, &spaces.action_space, spaces.agents)
            {
                return Err(format!(
                    "two servers of one vector disagree on the environment's spaces: {:?} and {:?}",
                    spaces, other
                ));
            }
        }
        let agents = spaces.agents as usize;
        let obs_len = spaces.obs_len();
        let bounds = match &spaces.action_space {
            Space::Box { low, high, .. } => low
                .iter()
                .zip(high)
                .map(|(l, h)| {
                    (
                        l.map_or(f32::NEG_INFINITY, |l| l as f32),
                        h.map_or(f32::INFINITY, |h| h as f32),
                    )
                })
                .collect(),
            _ => Vec::new(),
        };
        Ok(RemoteVecEnv {
            servers: built,
            num_envs,
            agents,
            obs_len,
            truncated: vec![false; num_envs * agents],
            final_obs: Vec::new(),
            finished: Vec::new(),
            failure: None,
            actions: Vec::new(),
            continuous: Vec::new(),
            bounds,
            reset_obs: Vec::new(),
            spaces: Spaces {
                num_envs: num_envs as u32,
                ..spaces
            },
        })
    }

    /// What the servers said of the environment (`num_envs` is the whole vector's).
    pub fn spaces(&self) -> &Spaces {
        &self.spaces
    }

    /// The final observations (`agents × obs_len`) of the environments whose episodes ended in the
    /// last step, by environment index: what a learner bootstraps a truncated episode from.
    pub fn final_observations(&self) -> &[(usize, Vec<f32>)] {
        &self.final_obs
    }

    /// One step with actions of any space: `i32`s for discrete and multi-discrete spaces, `f32`s
    /// for a box (`rows × action_len` in both cases).
    pub fn step_actions(&mut self, actions: Actions<'_>, obs: &mut [f32], rewards: &mut [f32], dones: &mut [bool]) {
        if self.failure.is_some() {
            dones.fill(true);
            return;
        }
        if let Err(failure) = self.try_step(actions, obs, rewards, dones) {
            self.failure = Some(failure);
            dones.fill(true);
        }
    }

    fn try_step(
        &mut self,
        actions: Actions<'_>,
        obs: &mut [f32],
        rewards: &mut [f32],
        dones: &mut [bool],
    ) -> Result<(), String> {
        let per_row = self.spaces.action_space.action_len();
        for server in &mut self.servers {
            let rows = server.first * self.agents * per_row..(server.first + server.envs) * self.agents * per_row;
            let share = match actions {
                Actions::Integers(all) => Actions::Integers(&all[rows]),
                Actions::Floats(all) => Actions::Floats(&all[rows]),
            };
            if let Err(e) = server.connection.send_step(share) {
                return Err(explain_server(server, "step", e));
            }
        }
        self.final_obs.clear();
        let (agents, obs_len) = (self.agents, self.obs_len);
        for server in &mut self.servers {
            if let Err(e) = server.connection.receive_stepped(&mut server.stepped) {
                return Err(explain_server(server, "step", e));
            }
            let s = &server.stepped;
            let rows = server.first * agents..(server.first + server.envs) * agents;
            obs[rows.start * obs_len..rows.end * obs_len].copy_from_slice(&s.obs);
            rewards[rows.clone()].copy_from_slice(&s.rewards);
            for env in 0..server.envs {
                let ended = s.terminated[env] || s.truncated[env];
                let row = (server.first + env) * agents;
                dones[row..row + agents].fill(ended);
                self.truncated[row..row + agents].fill(s.truncated[env] && !s.terminated[env]);
            }
            self.final_obs.extend(
                s.final_obs
                    .iter()
                    .map(|(env, o)| (server.first + *env as usize, o.clone())),
            );
            self.finished.extend(s.episodes.iter().map(|e| EpisodeStats {
                episode_return: e.episode_return,
                length: e.length,
            }));
        }
        Ok(())
    }

    /// Closes every session (the servers the vector started are stopped when it is dropped).
    pub fn close(self) {
        for server in self.servers {
            let _ = server.connection.close();
        }
    }
}

/// A server to open a session on: one this vector started, or one listening already.
#[derive(Debug)]
enum Endpoint {
    Started(ServerProcess),
    Listening(ServerAddress),
}

impl Endpoint {
    fn address(&self) -> ServerAddress {
        match self {
            Endpoint::Started(process) => process.address().clone(),
            Endpoint::Listening(address) => address.clone(),
        }
    }

    fn process(self) -> Option<ServerProcess> {
        match self {
            Endpoint::Started(process) => Some(process),
            Endpoint::Listening(_) => None,
        }
    }
}

fn explain_server(server: &Server, what: &str, e: FrameError) -> String {
    match &server.process {
        Some(process) => {
            // Give a server that is dying a moment to print why.
            if !matches!(e, FrameError::Server(_)) {
                std::thread::sleep(Duration::from_millis(100));
            }
            describe(process.address(), Some(process), what, e)
        }
        None => format!(
            "environment server ({}): {what} failed: {e}",
            server.connection.spaces().server
        ),
    }
}

fn describe(address: &ServerAddress, process: Option<&ServerProcess>, what: &str, e: FrameError) -> String {
    let timed_out = matches!(&e, FrameError::Io(io) if matches!(io.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut));
    let cause = match &e {
        FrameError::Server(error) => format!("it refused: {error}"),
        _ if timed_out => "it did not answer in time (hung?)".to_string(),
        FrameError::Io(io) if io.kind() == std::io::ErrorKind::UnexpectedEof => {
            "it closed the connection (crashed?)".to_string()
        }
        other => other.to_string(),
    };
    match process {
        Some(p) if !matches!(e, FrameError::Server(_)) => {
            format!(
                "environment server at {address}: {what} failed: {cause}; its last words:\n{}",
                p.last_words()
            )
        }
        _ => format!("environment server at {address}: {what} failed: {cause}"),
    }
}

impl VecEnv for RemoteVecEnv {
    fn num_envs(&self) -> usize {
        self.num_envs
    }

    fn agents(&self) -> usize {
        self.agents
    }

    fn obs_shape(&self) -> Vec<usize> {
        self.spaces.observation_shape.clone()
    }

    /// The discrete action count; 0 for other action spaces, which [`VecEnv::step`] cannot send
    /// (use [`RemoteVecEnv::step_actions`]).
    fn num_actions(&self) -> usize {
        match self.spaces.action_space {
            Space::Discrete { n, .. } => n as usize,
            _ => 0,
        }
    }

    fn continuous_actions(&self) -> usize {
        match &self.spaces.action_space {
            Space::Box { shape, .. } => shape.iter().product(),
            _ => 0,
        }
    }

    fn action_bounds(&self) -> Vec<(f32, f32)> {
        self.bounds.clone()
    }

    fn reset(&mut self, seed: u64, obs: &mut [f32]) {
        if self.failure.is_some() {
            return;
        }
        let row_len = self.agents * self.obs_len;
        for i in 0..self.servers.len() {
            let server = &mut self.servers[i];
            let seeds: Vec<u64> = (server.first..server.first + server.envs)
                .map(|env| seed.wrapping_add(env as u64))
                .collect();
            if let Err(e) = server.connection.reset(&seeds, &mut self.reset_obs) {
                self.failure = Some(explain_server(server, "reset", e));
                return;
            }
            let at = server.first * row_len;
            obs[at..at + server.envs * row_len].copy_from_slice(&self.reset_obs);
        }
        self.truncated.fill(false);
    }

    fn step(&mut self, actions: &[u32], obs: &mut [f32], rewards: &mut [f32], dones: &mut [bool]) {
        check_step_buffers(self, actions, obs, rewards, dones);
        let start = match self.spaces.action_space {
            Space::Discrete { start, .. } => start,
            _ => {
                self.failure = Some(format!(
                    "the environment's action space is {:?}: this learner sends discrete actions only",
                    self.spaces.action_space
                ));
                dones.fill(true);
                return;
            }
        };
        let mut wire = std::mem::take(&mut self.actions);
        wire.clear();
        wire.extend(actions.iter().map(|a| (i64::from(*a) + start) as i32));
        self.step_actions(Actions::Integers(&wire), obs, rewards, dones);
        self.actions = wire;
    }

    /// Clips each component to the box (the server sends actions on as they come) and steps.
    fn step_continuous(&mut self, actions: &[f32], obs: &mut [f32], rewards: &mut [f32], dones: &mut [bool]) {
        let components = self.continuous_actions();
        assert!(
            components > 0,
            "the environment's actions are not continuous: step it with VecEnv::step"
        );
        assert_eq!(
            actions.len(),
            self.num_envs * self.agents * components,
            "actions.len() must be num_envs * agents * continuous_actions"
        );
        let mut wire = std::mem::take(&mut self.continuous);
        wire.clear();
        wire.extend(
            actions
                .iter()
                .zip(self.bounds.iter().cycle())
                .map(|(a, (low, high))| a.max(*low).min(*high)),
        );
        self.step_actions(Actions::Floats(&wire), obs, rewards, dones);
        self.continuous = wire;
    }

    /// The server reports each agent's own reward (PettingZoo rewards agents apart): the team's is
    /// their sum, as in the episode returns.
    fn team_reward(&self, rewards: &[f32], env: usize) -> f32 {
        rewards[env * self.agents..(env + 1) * self.agents].iter().sum()
    }

    fn truncated(&self) -> &[bool] {
        &self.truncated
    }

    fn drain_finished(&mut self) -> Vec<EpisodeStats> {
        std::mem::take(&mut self.finished)
    }

    fn failure(&self) -> Option<&str> {
        self.failure.as_deref()
    }
}

#[cfg(test)]
mod tests {
    use super::shares;

    #[test]
    fn environments_are_shared_evenly_and_no_server_gets_none() {
        assert_eq!(shares(8, 3), [3, 3, 2]);
        assert_eq!(shares(2, 4), [1, 1]);
        assert_eq!(shares(5, 1), [5]);
        assert_eq!(shares(5, 0), [5]);
    }
}
