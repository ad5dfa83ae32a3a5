"""A small client of the environment protocol: what the tests drive the server with, and a reference for
clients in other languages (the trainer's is in Rust).

    with EnvClient.connect("unix:/tmp/env.sock") as client:
        spaces = client.hello({"gymnasium": "CartPole-v1"}, num_envs=4)
        obs = client.reset([1, 2, 3, 4])
        stepped = client.step(np.zeros(spaces.rows, dtype=np.int32))
"""

from __future__ import annotations

import socket
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import numpy as np

from .protocol import (
    Kind,
    ProtocolError,
    Stepped,
    decode_error,
    decode_f32_rows,
    decode_spaces,
    decode_stepped,
    encode_actions,
    encode_hello,
    encode_reset,
    read_frame,
    write_frame,
)
from .server import parse_address


class ServerError(ProtocolError):
    """The server answered ERROR: `field` and `message` are its."""


@dataclass(frozen=True)
class Spaces:
    """SPACES, with the counts a client needs to read the binary frames."""

    raw: dict[str, Any]

    @property
    def num_envs(self) -> int:
        return int(self.raw["numEnvs"])

    @property
    def agents(self) -> int:
        return int(self.raw["agents"])

    @property
    def rows(self) -> int:
        return self.num_envs * self.agents

    @property
    def obs_len(self) -> int:
        return int(np.prod(self.raw["observationShape"], dtype=np.int64))

    @property
    def action_space(self) -> dict[str, Any]:
        return self.raw["actionSpace"]


class EnvClient:
    """One connection to an environment server: one vector of environments."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.spaces: Spaces | None = None

    @classmethod
    def connect(cls, address: str, timeout: float | None = 60.0) -> EnvClient:
        """Connects to `unix:PATH` or `tcp:HOST:PORT`; `timeout` bounds every later read and write."""
        parsed = parse_address(address, allow_remote=True)
        if parsed.kind == "unix":
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            target: Any = parsed.path
        else:
            sock = socket.socket(socket.AF_INET6 if ":" in parsed.host else socket.AF_INET, socket.SOCK_STREAM)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            target = (parsed.host, parsed.port)
        sock.settimeout(timeout)
        try:
            sock.connect(target)
        except OSError:
            sock.close()
            raise
        return cls(sock)

    def __enter__(self) -> EnvClient:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def _reply(self, expected: Kind) -> bytearray:
        frame = read_frame(self.sock)
        if frame is None:
            raise ConnectionError("the server closed the connection without a reply")
        kind, payload = frame
        if kind == Kind.ERROR:
            error = decode_error(payload)
            raise ServerError(error.field, error.message)
        if kind != expected:
            raise ProtocolError("protocol", f"expected {expected.name}, got frame kind {kind}")
        return payload

    def hello(self, environment: dict[str, Any], num_envs: int, protocol: int = 1) -> Spaces:
        write_frame(self.sock, Kind.HELLO, encode_hello(num_envs, environment, protocol))
        self.spaces = Spaces(decode_spaces(self._reply(Kind.SPACES)))
        return self.spaces

    def _spaces(self) -> Spaces:
        if self.spaces is None:
            raise RuntimeError("hello() first")
        return self.spaces

    def reset(self, seeds: Any) -> np.ndarray:
        """Resets every environment with its seed; the `(rows, obsLen)` observations."""
        spaces = self._spaces()
        write_frame(self.sock, Kind.RESET, encode_reset(seeds))
        return decode_f32_rows(self._reply(Kind.OBSERVATIONS), spaces.rows, spaces.obs_len, "protocol")

    def step(self, actions: Any) -> Stepped:
        """One step of every row: `rows` actions (x the action's width), in the wire's dtype or castable to it."""
        spaces = self._spaces()
        write_frame(self.sock, Kind.STEP, encode_actions(spaces.action_space, actions, spaces.rows))
        return decode_stepped(self._reply(Kind.STEPPED), spaces.num_envs, spaces.agents, spaces.obs_len)

    def send_raw(self, kind: int, payload: bytes = b"") -> None:
        """Sends any frame, valid or not (for tests of the server's refusals)."""
        self.sock.sendall((len(payload) + 1).to_bytes(4, "little") + bytes([kind]) + payload)

    def read_reply(self, expected: Kind) -> bytearray:
        """The next reply's payload; ServerError if it is an ERROR."""
        return self._reply(expected)

    def close(self) -> None:
        """Sends CLOSE (if the connection is still up) and closes the socket."""
        try:
            write_frame(self.sock, Kind.CLOSE)
        except OSError:
            pass
        finally:
            self.sock.close()
