//! The environment protocol's messages (docs/env-protocol.md), as types, with their binary forms.
//!
//! Frames are a little-endian `u32` length, a kind byte and a payload. `HELLO`, `SPACES` and `ERROR`
//! carry JSON; the per-step messages are flat little-endian arrays, so a step costs one write and one
//! read and no parsing beyond a copy.

use std::io::{self, Read, Write};

use serde::{Deserialize, Serialize};

/// The protocol version this crate speaks.
pub const PROTOCOL: u32 = 1;
/// The largest frame either side accepts (a bound against a corrupt length).
pub const MAX_FRAME: usize = 1 << 30;

/// What a frame carries (its first byte).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Kind {
    /// Trainer: which environment, how many copies.
    Hello = 1,
    /// Server: the spaces of the environment.
    Spaces = 2,
    /// Trainer: a seed per environment.
    Reset = 3,
    /// Server: the first observations.
    Observations = 4,
    /// Trainer: one action per row.
    Step = 5,
    /// Server: what the step did.
    Stepped = 6,
    /// Trainer: the end of the session.
    Close = 7,
    /// Server: the request failed; the connection closes.
    Error = 255,
}

impl Kind {
    fn from_byte(byte: u8) -> Option<Kind> {
        Some(match byte {
            1 => Kind::Hello,
            2 => Kind::Spaces,
            3 => Kind::Reset,
            4 => Kind::Observations,
            5 => Kind::Step,
            6 => Kind::Stepped,
            7 => Kind::Close,
            255 => Kind::Error,
            _ => return None,
        })
    }
}

/// Where an environment's code comes from and how it is built, as the server is told in `HELLO`:
/// exactly one of `gymnasium`, `class` and `pettingzoo`, with keyword arguments.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EnvSpec {
    /// A registered Gymnasium id: `gymnasium.make(id, **kwargs)`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gymnasium: Option<String>,
    /// A `gymnasium.Env` subclass as `module:Class`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub class: Option<String>,
    /// A PettingZoo parallel environment factory as `module:factory`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pettingzoo: Option<String>,
    /// Keyword arguments of the constructor.
    #[serde(default, skip_serializing_if = "serde_json::Map::is_empty")]
    pub kwargs: serde_json::Map<String, serde_json::Value>,
}

/// `HELLO`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Hello {
    /// [`PROTOCOL`].
    pub protocol: u32,
    /// Copies of the environment this connection steps.
    pub num_envs: u32,
    /// Which environment.
    pub environment: EnvSpec,
}

/// An observation or action space.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum Space {
    /// One integer in `[start, start + n)`.
    Discrete {
        /// Number of values.
        n: u64,
        /// The smallest value.
        #[serde(default)]
        start: i64,
    },
    /// One integer per component, component `i` in `[0, nvec[i])`.
    #[serde(rename_all = "camelCase")]
    MultiDiscrete {
        /// Values per component.
        nvec: Vec<u64>,
    },
    /// `f32`s of a shape; bounds flattened row-major, `None` for an unbounded side.
    Box {
        /// The shape.
        shape: Vec<usize>,
        /// Lower bounds.
        low: Vec<Option<f64>>,
        /// Upper bounds.
        high: Vec<Option<f64>>,
    },
}

impl Space {
    /// Number of action components one row sends for this action space (1 for discrete).
    pub fn action_len(&self) -> usize {
        match self {
            Space::Discrete { .. } => 1,
            Space::MultiDiscrete { nvec } => nvec.len(),
            Space::Box { shape, .. } => shape.iter().product(),
        }
    }
}

/// `SPACES`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Spaces {
    /// The version the server speaks.
    pub protocol: u32,
    /// Copies it steps.
    pub num_envs: u32,
    /// Rows per environment (1 for Gymnasium).
    pub agents: u32,
    /// The agents, in row order.
    pub agent_ids: Vec<String>,
    /// The environment's observation space, as it is.
    pub observation_space: Space,
    /// One row's observation on the wire (`f32`s).
    pub observation_shape: Vec<usize>,
    /// The action space (shared by every agent).
    pub action_space: Space,
    /// The time limit the environment declares.
    #[serde(default)]
    pub max_episode_steps: Option<u64>,
    /// The server's name and version, for messages.
    #[serde(default)]
    pub server: String,
}

impl Spaces {
    /// `f32`s in one row's observation.
    pub fn obs_len(&self) -> usize {
        self.observation_shape.iter().product()
    }

    /// Rows of the vector: environments × agents.
    pub fn rows(&self) -> usize {
        self.num_envs as usize * self.agents as usize
    }
}

/// `ERROR`: which field of the request and what was expected.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{field}: {message}")]
pub struct ServerError {
    /// The field the server blames, e.g. `environment.gymnasium`.
    pub field: String,
    /// What went wrong.
    pub message: String,
}

/// Actions of one step, typed by the action space.
#[derive(Debug, Clone, Copy)]
pub enum Actions<'a> {
    /// Discrete and multi-discrete spaces.
    Integers(&'a [i32]),
    /// Box spaces.
    Floats(&'a [f32]),
}

/// An episode that ended in a step.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FinishedEpisode {
    /// Which environment of the vector.
    pub env: u32,
    /// Sum of every agent's rewards over the episode.
    pub episode_return: f32,
    /// Steps it lasted.
    pub length: u32,
}

/// `STEPPED`, decoded into buffers the caller keeps between steps.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Stepped {
    /// `rows × obs_len`: next observations (after auto-reset).
    pub obs: Vec<f32>,
    /// `rows`: rewards.
    pub rewards: Vec<f32>,
    /// `num_envs`: ended in a terminal state.
    pub terminated: Vec<bool>,
    /// `num_envs`: cut short without one.
    pub truncated: Vec<bool>,
    /// Final observations (`agents × obs_len`) of the environments that ended, by environment.
    pub final_obs: Vec<(u32, Vec<f32>)>,
    /// Episodes that ended.
    pub episodes: Vec<FinishedEpisode>,
}

/// Why a frame could not be read or made sense of.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    /// The connection failed or closed.
    #[error("{0}")]
    Io(#[from] io::Error),
    /// The server answered with `ERROR`.
    #[error("the environment server refused: {0}")]
    Server(ServerError),
    /// A frame that breaks the protocol.
    #[error("protocol: {0}")]
    Protocol(String),
}

fn protocol(message: impl Into<String>) -> FrameError {
    FrameError::Protocol(message.into())
}

/// Writes one frame.
pub fn write_frame(out: &mut impl Write, kind: Kind, payload: &[u8]) -> io::Result<()> {
    let len = u32::try_from(payload.len() + 1).map_err(|_| io::Error::other("frame over 4 GiB"))?;
    let mut head = [0u8; 5];
    head[..4].copy_from_slice(&len.to_le_bytes());
    head[4] = kind as u8;
    out.write_all(&head)?;
    out.write_all(payload)?;
    out.flush()
}

/// Reads one frame into `payload` (reused between calls); returns its kind. An `ERROR` frame comes
/// back as [`FrameError::Server`].
pub fn read_frame(input: &mut impl Read, payload: &mut Vec<u8>) -> Result<Kind, FrameError> {
    let mut head = [0u8; 5];
    input.read_exact(&mut head)?;
    let len = u32::from_le_bytes([head[0], head[1], head[2], head[3]]) as usize;
    if len == 0 || len > MAX_FRAME {
        return Err(protocol(format!("a frame of {len} bytes")));
    }
    let kind = Kind::from_byte(head[4]).ok_or_else(|| protocol(format!("unknown frame kind {}", head[4])))?;
    payload.clear();
    payload.resize(len - 1, 0);
    input.read_exact(payload)?;
    if kind == Kind::Error {
        let error = serde_json::from_slice::<ServerError>(payload)
            .map_err(|e| protocol(format!("an ERROR frame that is not {{field, message}}: {e}")))?;
        return Err(FrameError::Server(error));
    }
    Ok(kind)
}

/// Reads one frame and checks it is of kind `expected`.
pub fn expect_frame(input: &mut impl Read, payload: &mut Vec<u8>, expected: Kind) -> Result<(), FrameError> {
    let kind = read_frame(input, payload)?;
    if kind != expected {
        return Err(protocol(format!("expected {expected:?}, got {kind:?}")));
    }
    Ok(())
}

/// The payload of `RESET`.
pub fn encode_seeds(seeds: &[u64], out: &mut Vec<u8>) {
    out.clear();
    for seed in seeds {
        out.extend_from_slice(&seed.to_le_bytes());
    }
}

/// The payload of `STEP`.
pub fn encode_actions(actions: Actions<'_>, out: &mut Vec<u8>) {
    out.clear();
    match actions {
        Actions::Integers(values) => values.iter().for_each(|v| out.extend_from_slice(&v.to_le_bytes())),
        Actions::Floats(values) => values.iter().for_each(|v| out.extend_from_slice(&v.to_le_bytes())),
    }
}

/// A cursor over a binary payload that names what it was reading when the payload ran short.
struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8], FrameError> {
        if self.bytes.len() < n {
            return Err(protocol(format!(
                "the frame ends in {what}: {n} bytes wanted, {} left",
                self.bytes.len()
            )));
        }
        let (head, rest) = self.bytes.split_at(n);
        self.bytes = rest;
        Ok(head)
    }

    fn f32s(&mut self, out: &mut Vec<f32>, n: usize, what: &str) -> Result<(), FrameError> {
        let bytes = self.take(n * 4, what)?;
        out.clear();
        out.extend(
            bytes
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])),
        );
        Ok(())
    }

    fn flags(&mut self, out: &mut Vec<bool>, n: usize, what: &str) -> Result<(), FrameError> {
        let bytes = self.take(n, what)?;
        out.clear();
        out.extend(bytes.iter().map(|b| *b != 0));
        Ok(())
    }

    fn u32(&mut self, what: &str) -> Result<u32, FrameError> {
        let b = self.take(4, what)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn f32(&mut self, what: &str) -> Result<f32, FrameError> {
        let b = self.take(4, what)?;
        Ok(f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn env_index(&mut self, num_envs: usize, what: &str) -> Result<u32, FrameError> {
        let env = self.u32(what)?;
        if env as usize >= num_envs {
            return Err(protocol(format!("{what} names environment {env} of {num_envs}")));
        }
        Ok(env)
    }
}

/// Decodes an `OBSERVATIONS` payload of `spaces` into `obs`.
pub fn decode_observations(payload: &[u8], spaces: &Spaces, obs: &mut Vec<f32>) -> Result<(), FrameError> {
    let mut r = Reader { bytes: payload };
    r.f32s(obs, spaces.rows() * spaces.obs_len(), "the observations")?;
    if !r.bytes.is_empty() {
        return Err(protocol(format!("{} bytes after the observations", r.bytes.len())));
    }
    Ok(())
}

/// Decodes a `STEPPED` payload of `spaces` into `into`, checking every length.
pub fn decode_stepped(payload: &[u8], spaces: &Spaces, into: &mut Stepped) -> Result<(), FrameError> {
    let (rows, envs, obs_len) = (spaces.rows(), spaces.num_envs as usize, spaces.obs_len());
    let mut r = Reader { bytes: payload };
    r.f32s(&mut into.obs, rows * obs_len, "the observations")?;
    r.f32s(&mut into.rewards, rows, "the rewards")?;
    r.flags(&mut into.terminated, envs, "the terminated flags")?;
    r.flags(&mut into.truncated, envs, "the truncated flags")?;
    let finals = r.u32("the count of final observations")? as usize;
    into.final_obs.clear();
    for _ in 0..finals.min(envs) {
        let env = r.env_index(envs, "a final observation")?;
        let mut obs = Vec::new();
        r.f32s(&mut obs, spaces.agents as usize * obs_len, "a final observation")?;
        into.final_obs.push((env, obs));
    }
    let episodes = r.u32("the count of finished episodes")? as usize;
    into.episodes.clear();
    for _ in 0..episodes.min(envs) {
        let env = r.env_index(envs, "a finished episode")?;
        let episode_return = r.f32("an episode's return")?;
        let length = r.u32("an episode's length")?;
        into.episodes.push(FinishedEpisode {
            env,
            episode_return,
            length,
        });
    }
    if finals > envs || episodes > envs || !r.bytes.is_empty() {
        return Err(protocol(format!(
            "{finals} final observations and {episodes} episodes for {envs} environments, {} bytes left over",
            r.bytes.len()
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spaces(num_envs: u32, agents: u32) -> Spaces {
        Spaces {
            protocol: PROTOCOL,
            num_envs,
            agents,
            agent_ids: (0..agents).map(|a| format!("agent_{a}")).collect(),
            observation_space: Space::Box {
                shape: vec![2],
                low: vec![None, Some(-1.0)],
                high: vec![None, Some(1.0)],
            },
            observation_shape: vec![2],
            action_space: Space::Discrete { n: 3, start: 0 },
            max_episode_steps: Some(500),
            server: "test".into(),
        }
    }

    fn le(values: &[f32]) -> Vec<u8> {
        values.iter().flat_map(|v| v.to_le_bytes()).collect()
    }

    #[test]
    fn json_messages_read_as_the_document_writes_them() {
        let hello: Hello = serde_json::from_str(
            r#"{"protocol": 1, "numEnvs": 8, "environment": {"gymnasium": "CartPole-v1", "kwargs": {"sutton_barto_reward": true}}}"#,
        )
        .unwrap();
        assert_eq!(hello.environment.gymnasium.as_deref(), Some("CartPole-v1"));
        assert_eq!(hello.environment.kwargs["sutton_barto_reward"], true);
        let text = serde_json::to_string(&spaces(2, 1)).unwrap();
        assert!(
            text.contains(r#""observationSpace":{"type":"box","shape":[2],"low":[null,-1.0]"#),
            "{text}"
        );
        assert!(
            text.contains(r#""actionSpace":{"type":"discrete","n":3,"start":0}"#),
            "{text}"
        );
        let multi: Space = serde_json::from_str(r#"{"type": "multiDiscrete", "nvec": [3, 2]}"#).unwrap();
        assert_eq!(multi.action_len(), 2);
        // A typo in the environment is refused rather than ignored.
        assert!(serde_json::from_str::<EnvSpec>(r#"{"gymnasum": "CartPole-v1"}"#).is_err());
    }

    #[test]
    fn a_stepped_frame_round_trips_and_every_short_or_long_one_is_refused() {
        let s = spaces(2, 2);
        let mut payload = le(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0]);
        payload.extend(le(&[0.5, 0.5, -1.0, -1.0]));
        payload.extend([0, 1, 1, 0]); // env 1 terminated, env 0 truncated
        payload.extend(1u32.to_le_bytes());
        payload.extend(0u32.to_le_bytes());
        payload.extend(le(&[9.0, 9.5, 10.0, 10.5]));
        payload.extend(1u32.to_le_bytes());
        payload.extend(1u32.to_le_bytes());
        payload.extend(le(&[-3.0]));
        payload.extend(7u32.to_le_bytes());
        let mut stepped = Stepped::default();
        decode_stepped(&payload, &s, &mut stepped).unwrap();
        assert_eq!(stepped.obs, [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0]);
        assert_eq!(stepped.rewards, [0.5, 0.5, -1.0, -1.0]);
        assert_eq!(
            (stepped.terminated.as_slice(), stepped.truncated.as_slice()),
            (&[false, true][..], &[true, false][..])
        );
        assert_eq!(stepped.final_obs, [(0, vec![9.0, 9.5, 10.0, 10.5])]);
        assert_eq!(
            stepped.episodes,
            [FinishedEpisode {
                env: 1,
                episode_return: -3.0,
                length: 7
            }]
        );
        for cut in [1, 40, payload.len() - 1] {
            let e = decode_stepped(&payload[..cut], &s, &mut stepped).unwrap_err();
            assert!(e.to_string().contains("the frame ends in"), "{e}");
        }
        let mut long = payload.clone();
        long.push(0);
        assert!(decode_stepped(&long, &s, &mut stepped).is_err());
        // An environment index out of range.
        let mut wrong = payload.clone();
        let at = 8 * 4 + 4 * 4 + 4 + 4;
        wrong[at..at + 4].copy_from_slice(&5u32.to_le_bytes());
        let e = decode_stepped(&wrong, &s, &mut stepped).unwrap_err();
        assert!(e.to_string().contains("names environment 5 of 2"), "{e}");
    }

    #[test]
    fn frames_round_trip_and_an_error_frame_is_the_server_s_error() {
        let mut wire = Vec::new();
        write_frame(&mut wire, Kind::Reset, &[1, 2, 3]).unwrap();
        let error = serde_json::to_vec(&ServerError {
            field: "environment.gymnasium".into(),
            message: "no such id".into(),
        })
        .unwrap();
        write_frame(&mut wire, Kind::Error, &error).unwrap();
        let mut input = wire.as_slice();
        let mut payload = Vec::new();
        assert_eq!(read_frame(&mut input, &mut payload).unwrap(), Kind::Reset);
        assert_eq!(payload, [1, 2, 3]);
        match read_frame(&mut input, &mut payload) {
            Err(FrameError::Server(e)) => assert_eq!(e.to_string(), "environment.gymnasium: no such id"),
            other => panic!("{other:?}"),
        }
        let mut bad = vec![2, 0, 0, 0, 42, 0];
        let e = read_frame(&mut bad.as_slice(), &mut payload).unwrap_err();
        assert!(e.to_string().contains("unknown frame kind 42"), "{e}");
        bad[..4].copy_from_slice(&0u32.to_le_bytes());
        assert!(read_frame(&mut bad.as_slice(), &mut payload).is_err());
    }
}
