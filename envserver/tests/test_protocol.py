"""The frame format and the binary messages, byte for byte as docs/env-protocol.md writes them."""

from __future__ import annotations

import json
import socket
import struct

import numpy as np
import pytest

from drlaas_envserver.protocol import (
    ConnectionClosedError,
    Kind,
    ProtocolError,
    decode_hello,
    decode_stepped,
    encode_hello,
    encode_stepped,
    read_frame,
    write_frame,
)


def test_a_frame_is_a_little_endian_length_then_kind_then_payload() -> None:
    a, b = socket.socketpair()
    with a, b:
        write_frame(a, Kind.RESET, np.array([1, 2**64 - 1], dtype="<u8"))
        raw = b.recv(100)
        assert raw[:4] == (17).to_bytes(4, "little")
        assert raw[4] == 3
        assert struct.unpack("<QQ", raw[5:]) == (1, 2**64 - 1)
        write_frame(a, Kind.CLOSE)
        assert read_frame(b) == (7, bytearray())


def test_read_frame_sees_a_clean_end_and_a_torn_frame() -> None:
    a, b = socket.socketpair()
    a.close()
    assert read_frame(b) is None
    b.close()
    a, b = socket.socketpair()
    a.sendall((10).to_bytes(4, "little") + b"\x05abc")
    a.close()
    with pytest.raises(ConnectionClosedError):
        read_frame(b)
    b.close()


def test_hello_is_the_documented_json() -> None:
    payload = encode_hello(8, {"gymnasium": "CartPole-v1", "kwargs": {}})
    assert json.loads(payload) == {
        "protocol": 1,
        "numEnvs": 8,
        "environment": {"gymnasium": "CartPole-v1", "kwargs": {}},
    }
    hello = decode_hello(payload, max_envs=8)
    assert (hello.protocol, hello.num_envs) == (1, 8)
    with pytest.raises(ProtocolError) as info:
        decode_hello(payload, max_envs=7)
    assert info.value.field == "numEnvs"
    with pytest.raises(ProtocolError) as info:
        decode_hello(json.dumps({"protocol": True, "numEnvs": 1, "environment": {}}).encode(), max_envs=8)
    assert info.value.field == "protocol"


def test_stepped_layout() -> None:
    # 2 environments x 2 agents, obsLen 3; environment 1 ended.
    obs = np.arange(12, dtype="<f4").reshape(4, 3)
    rewards = np.array([0.5, -1, 2, 3], dtype="<f4")
    terminated = np.array([0, 1], dtype="u1")
    truncated = np.array([0, 0], dtype="u1")
    finals = np.full((1, 6), 7.0, dtype="<f4")
    parts = encode_stepped(obs, rewards, terminated, truncated, [1], finals, [(1, 4.5, 9)])
    payload = b"".join(memoryview(p).cast("B") for p in parts)
    want = (
        obs.tobytes()
        + rewards.tobytes()
        + b"\x00\x01"
        + b"\x00\x00"
        + struct.pack("<I", 1)
        + struct.pack("<I", 1)
        + finals.tobytes()
        + struct.pack("<I", 1)
        + struct.pack("<IfI", 1, 4.5, 9)
    )
    assert payload == want
    s = decode_stepped(payload, num_envs=2, agents=2, obs_len=3)
    np.testing.assert_array_equal(s.observations, obs)
    np.testing.assert_array_equal(s.rewards, rewards)
    assert s.terminated.tolist() == [False, True] and s.truncated.tolist() == [False, False]
    np.testing.assert_array_equal(s.final_observations[1], np.full((2, 3), 7.0))
    assert [(e.env, e.episode_return, e.length) for e in s.episodes] == [(1, 4.5, 9)]
    # A short or long frame is an error.
    for bad in (payload[:-1], payload + b"\x00"):
        with pytest.raises(ProtocolError):
            decode_stepped(bad, num_envs=2, agents=2, obs_len=3)
    with pytest.raises(ProtocolError):
        decode_stepped(payload, num_envs=2, agents=2, obs_len=2)
