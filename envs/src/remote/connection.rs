//! One connection to an environment server: a vector of environments stepped over the protocol.
//!
//! Requests and replies are split ([`Connection::send_step`], [`Connection::receive_stepped`]) so a
//! caller with several servers can send every server its step before it waits for any reply: the
//! servers then step at the same time.

use std::io::{BufReader, BufWriter, Read, Write};
use std::net::TcpStream;
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::time::Duration;

use super::protocol::{
    Actions, EnvSpec, FrameError, Hello, Kind, PROTOCOL, Spaces, Stepped, decode_observations, decode_stepped,
    encode_actions, encode_seeds, expect_frame, write_frame,
};

/// Where a server listens: `unix:/path` or `tcp:127.0.0.1:PORT`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerAddress {
    /// A Unix domain socket.
    Unix(PathBuf),
    /// A TCP address (loopback in practice).
    Tcp(String),
}

impl std::str::FromStr for ServerAddress {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        match text.split_once(':') {
            Some(("unix", path)) if !path.is_empty() => Ok(ServerAddress::Unix(path.into())),
            Some(("tcp", address)) if address.contains(':') => Ok(ServerAddress::Tcp(address.into())),
            _ => Err(format!("{text:?} is not unix:/path/to/socket or tcp:HOST:PORT")),
        }
    }
}

impl std::fmt::Display for ServerAddress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ServerAddress::Unix(path) => write!(f, "unix:{}", path.display()),
            ServerAddress::Tcp(address) => write!(f, "tcp:{address}"),
        }
    }
}

trait Stream: Read + Write + Send + std::fmt::Debug {}
impl<T: Read + Write + Send + std::fmt::Debug> Stream for T {}

/// An open session with one server, after the handshake.
#[derive(Debug)]
pub struct Connection {
    reader: BufReader<Box<dyn Stream>>,
    writer: BufWriter<Box<dyn Stream>>,
    spaces: Spaces,
    payload: Vec<u8>,
    request: Vec<u8>,
}

impl Connection {
    /// Connects to `address`, says `HELLO` for `num_envs` copies of `environment` and reads the spaces.
    /// Every later read waits at most `timeout` (a server that hangs is an error, not a hang).
    pub fn open(
        address: &ServerAddress,
        environment: &EnvSpec,
        num_envs: u32,
        timeout: Duration,
    ) -> Result<Connection, FrameError> {
        let (read, write): (Box<dyn Stream>, Box<dyn Stream>) = match address {
            ServerAddress::Unix(path) => {
                let stream = UnixStream::connect(path)?;
                stream.set_read_timeout(Some(timeout))?;
                (Box::new(stream.try_clone()?), Box::new(stream))
            }
            ServerAddress::Tcp(address) => {
                let stream = TcpStream::connect(address)?;
                stream.set_read_timeout(Some(timeout))?;
                stream.set_nodelay(true)?;
                (Box::new(stream.try_clone()?), Box::new(stream))
            }
        };
        let mut reader = BufReader::with_capacity(1 << 16, read);
        let mut writer = BufWriter::with_capacity(1 << 16, write);
        let hello = Hello {
            protocol: PROTOCOL,
            num_envs,
            environment: environment.clone(),
        };
        let json = serde_json::to_vec(&hello).map_err(|e| FrameError::Protocol(e.to_string()))?;
        write_frame(&mut writer, Kind::Hello, &json)?;
        let mut payload = Vec::new();
        expect_frame(&mut reader, &mut payload, Kind::Spaces)?;
        let spaces: Spaces = serde_json::from_slice(&payload)
            .map_err(|e| FrameError::Protocol(format!("SPACES that is not the protocol's: {e}")))?;
        if spaces.protocol != PROTOCOL || spaces.num_envs != num_envs || spaces.agents == 0 {
            return Err(FrameError::Protocol(format!(
                "the server answered protocol {}, {} environments of {} agents to protocol {PROTOCOL}, {num_envs} environments",
                spaces.protocol, spaces.num_envs, spaces.agents
            )));
        }
        Ok(Connection {
            reader,
            writer,
            spaces,
            payload,
            request: Vec::new(),
        })
    }

    /// What the server said of the environment.
    pub fn spaces(&self) -> &Spaces {
        &self.spaces
    }

    /// Resets environment `i` with `seeds[i]`; the first observations go into `obs`.
    pub fn reset(&mut self, seeds: &[u64], obs: &mut Vec<f32>) -> Result<(), FrameError> {
        encode_seeds(seeds, &mut self.request);
        write_frame(&mut self.writer, Kind::Reset, &self.request)?;
        expect_frame(&mut self.reader, &mut self.payload, Kind::Observations)?;
        decode_observations(&self.payload, &self.spaces, obs)
    }

    /// Sends one step; [`Connection::receive_stepped`] reads its reply.
    pub fn send_step(&mut self, actions: Actions<'_>) -> Result<(), FrameError> {
        encode_actions(actions, &mut self.request);
        write_frame(&mut self.writer, Kind::Step, &self.request)?;
        Ok(())
    }

    /// Reads the reply to the last [`Connection::send_step`].
    pub fn receive_stepped(&mut self, into: &mut Stepped) -> Result<(), FrameError> {
        expect_frame(&mut self.reader, &mut self.payload, Kind::Stepped)?;
        decode_stepped(&self.payload, &self.spaces, into)
    }

    /// Ends the session (the server closes its side).
    pub fn close(mut self) -> Result<(), FrameError> {
        write_frame(&mut self.writer, Kind::Close, &[])?;
        Ok(())
    }
}
