"""The wire format of docs/env-protocol.md: frames, and the encoding of every message.

Both ends use this module (the server in `session`, the reference client in `client`), so a change of
the format is made in one place. Binary payloads are little-endian whatever the host's byte order; the
dtypes below say so explicitly.
"""

from __future__ import annotations

import json
import socket
import struct
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any

import numpy as np

PROTOCOL_VERSION = 1

# A frame is at most 1 GiB (its length field included in nothing: L counts the kind byte and payload).
MAX_FRAME = 1 << 30

F32 = np.dtype("<f4")
I32 = np.dtype("<i4")
U64 = np.dtype("<u8")
U8 = np.dtype("u1")

_HEADER = struct.Struct("<IB")
_LENGTH = struct.Struct("<I")
_U32 = struct.Struct("<I")
_EPISODE = struct.Struct("<IfI")


class Kind(IntEnum):
    """The kind byte of a frame."""

    HELLO = 1
    SPACES = 2
    RESET = 3
    OBSERVATIONS = 4
    STEP = 5
    STEPPED = 6
    CLOSE = 7
    ERROR = 255


class ProtocolError(Exception):
    """A request the server refuses (or a reply the client refuses): becomes an ERROR frame.

    `field` names what was wrong in the words of the protocol's error table (`protocol`,
    `environment.kwargs`, `action`, ...), so the trainer can point its user at the right setting.
    """

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class ConnectionClosedError(EOFError):
    """The peer closed the connection in the middle of a frame, or before one it owed."""


# ---------------------------------------------------------------------------------------------------
# Frames


def _read_exact(sock: socket.socket, n: int) -> bytearray | None:
    """Reads exactly `n` bytes; None when the peer closed before the first byte."""
    buf = bytearray(n)
    view = memoryview(buf)
    got = 0
    while got < n:
        k = sock.recv_into(view[got:], n - got)
        if k == 0:
            if got == 0:
                return None
            raise ConnectionClosedError(f"connection closed after {got} of {n} bytes")
        got += k
    return buf


def read_frame(sock: socket.socket) -> tuple[int, bytearray] | None:
    """Reads one frame: its kind (an int, possibly not a known `Kind`) and payload.

    Returns None on a clean end of stream (the peer closed between frames).
    """
    head = _read_exact(sock, _LENGTH.size)
    if head is None:
        return None
    (length,) = _LENGTH.unpack(head)
    if length == 0:
        raise ProtocolError("protocol", "a frame of length 0 (every frame has at least its kind byte)")
    if length > MAX_FRAME:
        raise ProtocolError("protocol", f"a frame of {length} bytes (at most {MAX_FRAME})")
    body = _read_exact(sock, length)
    if body is None:
        raise ConnectionClosedError("connection closed after a frame's length")
    kind = body[0]
    # Dropping the kind byte copies the payload once; simpler than carrying an offset everywhere.
    return kind, body[1:]


def write_frame(sock: socket.socket, kind: Kind, *parts: Any) -> None:
    """Writes one frame whose payload is the concatenation of `parts` (bytes-like: bytes, numpy arrays).

    One `sendall` per frame: several small writes would meet Nagle's algorithm on TCP.
    """
    views = [memoryview(p).cast("B") for p in parts]
    length = 1 + sum(v.nbytes for v in views)
    if length > MAX_FRAME:
        raise ProtocolError("protocol", f"a frame of {length} bytes (at most {MAX_FRAME})")
    sock.sendall(b"".join([_HEADER.pack(length, kind), *views]))


# ---------------------------------------------------------------------------------------------------
# JSON messages


def _json(payload: bytes | bytearray, what: str) -> dict[str, Any]:
    try:
        value = json.loads(bytes(payload).decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ProtocolError("protocol", f"{what} is not UTF-8 JSON: {e}") from None
    if not isinstance(value, dict):
        raise ProtocolError("protocol", f"{what} is not a JSON object")
    return value


def _dumps(value: dict[str, Any]) -> bytes:
    # allow_nan=False: JSON has no NaN or infinity; an unbounded box side is null, not Infinity.
    return json.dumps(value, separators=(",", ":"), allow_nan=False).encode("utf-8")


@dataclass(frozen=True)
class Hello:
    """The trainer's first frame: which environment, how many copies."""

    protocol: int
    num_envs: int
    environment: dict[str, Any]


def encode_hello(num_envs: int, environment: dict[str, Any], protocol: int = PROTOCOL_VERSION) -> bytes:
    return _dumps({"protocol": protocol, "numEnvs": num_envs, "environment": environment})


def _is_int(value: Any) -> bool:
    # bool is an int in Python, not in the protocol.
    return isinstance(value, int) and not isinstance(value, bool)


def decode_hello(payload: bytes | bytearray, max_envs: int) -> Hello:
    """Parses and checks HELLO; the environment's own keys are checked where it is built."""
    msg = _json(payload, "HELLO")
    protocol = msg.get("protocol")
    if not _is_int(protocol) or protocol != PROTOCOL_VERSION:
        raise ProtocolError(
            "protocol", f"protocol {protocol!r} is not spoken here (this server speaks {PROTOCOL_VERSION})"
        )
    num_envs = msg.get("numEnvs")
    if not _is_int(num_envs) or not 1 <= num_envs <= max_envs:
        raise ProtocolError("numEnvs", f"numEnvs {num_envs!r} is not an integer in [1, {max_envs}]")
    environment = msg.get("environment")
    if not isinstance(environment, dict):
        raise ProtocolError(
            "environment", 'environment is missing or not an object ({"gymnasium": ID}, {"class": ...}, ...)'
        )
    return Hello(protocol, num_envs, environment)


def encode_spaces(spaces: dict[str, Any]) -> bytes:
    return _dumps(spaces)


def decode_spaces(payload: bytes | bytearray) -> dict[str, Any]:
    return _json(payload, "SPACES")


def encode_error(field_name: str, message: str) -> bytes:
    return _dumps({"field": field_name, "message": message})


def decode_error(payload: bytes | bytearray) -> ProtocolError:
    msg = _json(payload, "ERROR")
    return ProtocolError(str(msg.get("field", "")), str(msg.get("message", "")))


# ---------------------------------------------------------------------------------------------------
# Binary messages


def encode_reset(seeds: Any) -> np.ndarray:
    return np.ascontiguousarray(seeds, dtype=U64)


def decode_reset(payload: bytes | bytearray, num_envs: int) -> list[int]:
    if len(payload) != num_envs * U64.itemsize:
        raise ProtocolError("seeds", f"RESET carries {len(payload)} bytes, not numEnvs ({num_envs}) u64 seeds")
    return np.frombuffer(payload, dtype=U64).tolist()


def decode_f32_rows(payload: bytes | bytearray, rows: int, width: int, what: str) -> np.ndarray:
    """`rows x width` f32s (OBSERVATIONS, or a box STEP), checked for length."""
    if len(payload) != rows * width * F32.itemsize:
        raise ProtocolError(what, f"{len(payload)} bytes, not {rows} x {width} f32")
    return np.frombuffer(payload, dtype=F32).reshape(rows, width)


def action_encoding(action_space: dict[str, Any]) -> tuple[np.dtype, int]:
    """The wire dtype of an action and the number of values per row, from SPACES' actionSpace."""
    kind = action_space["type"]
    if kind == "discrete":
        return I32, 1
    if kind == "multiDiscrete":
        return I32, len(action_space["nvec"])
    if kind == "box":
        return F32, int(np.prod(action_space["shape"], dtype=np.int64))
    raise ProtocolError("actionSpace", f"unknown action space type {kind!r}")


def encode_actions(action_space: dict[str, Any], actions: Any, rows: int) -> np.ndarray:
    dtype, width = action_encoding(action_space)
    wire = np.ascontiguousarray(actions, dtype=dtype)
    if wire.size != rows * width:
        raise ValueError(f"{wire.size} action values, not {rows} rows x {width}")
    return wire


def decode_actions(payload: bytes | bytearray, action_space: dict[str, Any], rows: int) -> np.ndarray:
    """STEP's actions as a `(rows, width)` array of the wire dtype, checked for length (not range)."""
    dtype, width = action_encoding(action_space)
    if len(payload) != rows * width * dtype.itemsize:
        raise ProtocolError("action", f"STEP carries {len(payload)} bytes, not {rows} rows x {width} {dtype.name}")
    return np.frombuffer(payload, dtype=dtype).reshape(rows, width)


@dataclass
class Episode:
    """A finished episode as STEPPED reports it."""

    env: int
    episode_return: float
    length: int


@dataclass
class Stepped:
    """STEPPED, decoded: arrays shaped by rows (observations, rewards) or by environments (the flags)."""

    observations: np.ndarray  # (rows, obsLen) f32
    rewards: np.ndarray  # (rows,) f32
    terminated: np.ndarray  # (numEnvs,) bool
    truncated: np.ndarray  # (numEnvs,) bool
    final_observations: dict[int, np.ndarray] = field(default_factory=dict)  # env -> (agents, obsLen)
    episodes: list[Episode] = field(default_factory=list)


def encode_stepped(
    observations: np.ndarray,
    rewards: np.ndarray,
    terminated: np.ndarray,
    truncated: np.ndarray,
    final_envs: list[int],
    final_observations: np.ndarray,
    episodes: list[tuple[int, float, int]],
) -> list[Any]:
    """STEPPED's parts, in order, for `write_frame`.

    `final_observations` is `(len(final_envs), agents x obsLen)` f32, in the order of `final_envs`.
    """
    parts: list[Any] = [observations, rewards, terminated, truncated, _U32.pack(len(final_envs))]
    for i, env in enumerate(final_envs):
        parts.append(_U32.pack(env))
        parts.append(final_observations[i])
    parts.append(_U32.pack(len(episodes)))
    parts.extend(_EPISODE.pack(env, ret, length) for env, ret, length in episodes)
    return parts


def decode_stepped(payload: bytes | bytearray, num_envs: int, agents: int, obs_len: int) -> Stepped:
    """Parses STEPPED, checking every length against what SPACES promised (a short or long frame is an error)."""
    rows = num_envs * agents
    view = memoryview(payload)
    pos = 0

    def take(n: int, what: str) -> memoryview:
        nonlocal pos
        if pos + n > len(view):
            raise ProtocolError("protocol", f"STEPPED ends inside {what} ({len(view)} bytes)")
        chunk = view[pos : pos + n]
        pos += n
        return chunk

    obs = np.frombuffer(take(rows * obs_len * 4, "the observations"), dtype=F32).reshape(rows, obs_len)
    rewards = np.frombuffer(take(rows * 4, "the rewards"), dtype=F32)
    terminated = np.frombuffer(take(num_envs, "terminated"), dtype=U8).astype(bool)
    truncated = np.frombuffer(take(num_envs, "truncated"), dtype=U8).astype(bool)
    (count,) = _U32.unpack(take(4, "the count of final observations"))
    finals: dict[int, np.ndarray] = {}
    for _ in range(count):
        (env,) = _U32.unpack(take(4, "a final observation's index"))
        if env >= num_envs:
            raise ProtocolError("protocol", f"a final observation of environment {env} of {num_envs}")
        chunk = take(agents * obs_len * 4, "a final observation")
        finals[env] = np.frombuffer(chunk, dtype=F32).reshape(agents, obs_len)
    (count,) = _U32.unpack(take(4, "the count of finished episodes"))
    episodes = []
    for _ in range(count):
        env, ret, length = _EPISODE.unpack(take(_EPISODE.size, "a finished episode"))
        if env >= num_envs:
            raise ProtocolError("protocol", f"a finished episode of environment {env} of {num_envs}")
        episodes.append(Episode(env, ret, length))
    if pos != len(view):
        raise ProtocolError("protocol", f"STEPPED has {len(view) - pos} bytes past its end")
    return Stepped(obs, rewards, terminated, truncated, finals, episodes)
