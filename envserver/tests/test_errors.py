"""Every refusal: the ERROR's field and message, and the connection closed after it."""

from __future__ import annotations

import importlib.util
import json
import socket
import threading
from collections.abc import Callable

import numpy as np
import pytest

from drlaas_envserver.client import EnvClient
from drlaas_envserver.protocol import Kind
from drlaas_envserver.session import serve_connection

import envs_for_tests
from helpers import assert_closed, expect_error

CARTPOLE = {"gymnasium": "CartPole-v1"}


def hello_fails(client: EnvClient, environment: dict, field: str, *fragments: str, num_envs: int = 1) -> str:
    error = expect_error(lambda: client.hello(environment, num_envs), field, *fragments)
    assert_closed(client)
    return error.message


def test_unknown_protocol_version(serve: Callable) -> None:
    client = serve()
    expect_error(lambda: client.hello(CARTPOLE, 1, protocol=2), "protocol", "2", "speaks 1")
    assert_closed(client)


@pytest.mark.parametrize("num_envs", [0, -1, 1_000_000])
def test_num_envs_out_of_range(serve: Callable, num_envs: int) -> None:
    hello_fails(serve(), CARTPOLE, "numEnvs", str(num_envs), num_envs=num_envs)


def test_num_envs_must_be_an_integer(serve: Callable) -> None:
    client = serve()
    client.send_raw(Kind.HELLO, json.dumps({"protocol": 1, "numEnvs": "4", "environment": CARTPOLE}).encode())
    expect_error(lambda: client.read_reply(Kind.SPACES), "numEnvs", "'4'")


@pytest.mark.parametrize(
    ("environment", "fragment"),
    [
        ({}, "0 ways"),
        ({"kwargs": {}}, "0 ways"),
        ({"gymnasium": "CartPole-v1", "class": "envs_for_tests:CountingEnv"}, "2 ways"),
        ({"gym": "CartPole-v1"}, "'gym'"),
    ],
)
def test_environment_named_in_not_exactly_one_way(serve: Callable, environment: dict, fragment: str) -> None:
    hello_fails(serve(), environment, "environment", fragment)


def test_unknown_gymnasium_id_suggests_a_close_one(serve: Callable) -> None:
    message = hello_fails(serve(), {"gymnasium": "CartPol-v1"}, "environment.gymnasium", "CartPol-v1")
    assert "Did you mean: `CartPole`" in message


def test_unknown_gymnasium_version(serve: Callable) -> None:
    hello_fails(serve(), {"gymnasium": "CartPole-v9"}, "environment.gymnasium", "v9")


@pytest.mark.skipif(importlib.util.find_spec("Box2D") is not None, reason="Box2D is installed here")
def test_a_missing_package_is_named(serve: Callable) -> None:
    message = hello_fails(serve(), {"gymnasium": "LunarLander-v3"}, "environment.gymnasium", "LunarLander-v3")
    assert "box2d" in message.lower()


def test_a_missing_module_in_a_gymnasium_id_is_named(serve: Callable) -> None:
    hello_fails(serve(), {"gymnasium": "no_such_env_package:Thing-v0"}, "environment.gymnasium", "no_such_env_package")


@pytest.mark.parametrize(
    "environment",
    [
        {"gymnasium": "CartPole-v1", "kwargs": {"gravity_please": 3}},
        {"class": "envs_for_tests:CountingEnv", "kwargs": {"lenght": 3}},
        {"pettingzoo": "envs_for_tests:team_parallel_env", "kwargs": {"agents": 9}},
    ],
)
def test_keyword_arguments_the_environment_does_not_take(serve: Callable, environment: dict) -> None:
    bad = next(iter(environment["kwargs"]))
    hello_fails(serve(), environment, "environment.kwargs", bad)


def test_kwargs_must_be_an_object(serve: Callable) -> None:
    hello_fails(serve(), {"gymnasium": "CartPole-v1", "kwargs": [1]}, "environment.kwargs", "not a JSON object")


@pytest.mark.parametrize(
    ("environment", "field", "fragment"),
    [
        ({"class": "no_such_module_here:Env"}, "environment.class", "no module named 'no_such_module_here'"),
        ({"class": "envs_for_tests:NoSuchEnv"}, "environment.class", "no attribute 'NoSuchEnv'"),
        ({"class": "envs_for_tests"}, "environment.class", "module:name"),
        ({"class": "envs_for_tests:NotAnEnv"}, "environment.class", "not a subclass of gymnasium.Env"),
        ({"class": "envs_for_tests:team_parallel_env"}, "environment.class", "not a gymnasium.Env"),
        ({"pettingzoo": "no_such_module_here:parallel_env"}, "environment.pettingzoo", "no_such_module_here"),
        ({"pettingzoo": "envs_for_tests:TeamEnv.nope"}, "environment.pettingzoo", "no attribute 'nope'"),
        ({"pettingzoo": "envs_for_tests:CountingEnv"}, "environment.pettingzoo", "not a PettingZoo parallel"),
        ({"class": 3}, "environment.class", "not a non-empty string"),
    ],
)
def test_modules_and_names_that_do_not_resolve(serve: Callable, environment: dict, field: str, fragment: str) -> None:
    hello_fails(serve(), environment, field, fragment)


def test_a_dotted_path_after_the_colon_resolves(serve: Callable) -> None:
    # The part after ':' may be a dotted path, as in pettingzoo.mpe:simple_spread_v3.parallel_env.
    spaces = serve().hello({"class": "gymnasium.envs:classic_control.CartPoleEnv"}, num_envs=1)
    assert spaces.raw["observationShape"] == [4]


def test_an_unsupported_observation_space_is_named(serve: Callable) -> None:
    hello_fails(serve(), {"class": "envs_for_tests:DictObsEnv"}, "observationSpace", "Dict(", "not carried")


def test_an_action_outside_the_discrete_range(serve: Callable) -> None:
    client = serve()
    client.hello({"class": "envs_for_tests:CountingEnv"}, num_envs=2)
    client.reset([1, 2])
    client.step(np.array([1, 3], dtype=np.int32))
    # Discrete(3, start=1): 0 is out of range, in row 1.
    expect_error(lambda: client.step(np.array([2, 0], dtype=np.int32)), "action", "row 1", "[1, 4)")
    assert_closed(client)


def test_a_multi_discrete_action_out_of_range(serve: Callable) -> None:
    client = serve()
    client.hello({"class": "envs_for_tests:GridEnv"}, num_envs=1)
    client.reset([1])
    expect_error(lambda: client.step(np.array([[1, 4]], dtype=np.int32)), "action", "component 1", "[0, 4)")


def test_a_step_of_the_wrong_length(serve: Callable) -> None:
    client = serve()
    client.hello(CARTPOLE, num_envs=2)
    client.reset([1, 2])
    client.send_raw(Kind.STEP, np.zeros(3, dtype="<i4").tobytes())
    expect_error(lambda: client.read_reply(Kind.STEPPED), "action", "12 bytes")


def test_a_reset_with_the_wrong_number_of_seeds(serve: Callable) -> None:
    client = serve()
    client.hello(CARTPOLE, num_envs=2)
    expect_error(lambda: client.reset([1, 2, 3]), "seeds", "numEnvs (2)")
    assert_closed(client)


def test_the_environment_raising_in_step(serve: Callable) -> None:
    client = serve()
    client.hello({"class": "envs_for_tests:CrashingEnv", "kwargs": {"crash_at": 3}}, num_envs=2)
    client.reset([1, 2])
    client.step(np.array([1, 1], dtype=np.int32))
    client.step(np.array([1, 1], dtype=np.int32))
    expect_error(
        lambda: client.step(np.array([1, 1], dtype=np.int32)),
        "environment.step",
        "environment 0",
        "RuntimeError: the simulator exploded at step 3",
    )
    assert_closed(client)


def test_the_environment_raising_in_an_auto_reset(serve: Callable) -> None:
    client = serve()
    client.hello({"class": "envs_for_tests:CrashingResetEnv", "kwargs": {"length": 1}}, num_envs=1)
    client.reset([1])
    expect_error(
        lambda: client.step(np.array([1], dtype=np.int32)),
        "environment.reset",
        "ValueError: cannot reset without a seed",
    )


@pytest.mark.parametrize(
    ("kind", "payload", "fragment"),
    [
        (Kind.STEP, b"", "STEP before the first RESET"),
        (Kind.RESET, b"", "RESET before HELLO"),
        (Kind.STEPPED, b"", "server's frame"),
        (42, b"", "unknown frame kind 42"),
        (Kind.HELLO, b"{not json", "not UTF-8 JSON"),
    ],
)
def test_frames_out_of_order_or_unknown(serve: Callable, kind: int, payload: bytes, fragment: str) -> None:
    client = serve()
    client.send_raw(kind, payload)
    expect_error(lambda: client.read_reply(Kind.SPACES), "protocol", fragment)
    assert_closed(client)


def test_step_before_reset_after_hello(serve: Callable) -> None:
    client = serve()
    client.hello(CARTPOLE, num_envs=1)
    expect_error(lambda: client.step(np.zeros(1, dtype=np.int32)), "protocol", "before the first RESET")


def test_a_second_hello(serve: Callable) -> None:
    client = serve()
    client.hello(CARTPOLE, num_envs=1)
    expect_error(lambda: client.hello(CARTPOLE, num_envs=1), "protocol", "second HELLO")


def test_a_frame_of_length_zero(serve: Callable) -> None:
    client = serve()
    client.sock.sendall(b"\0\0\0\0")
    expect_error(lambda: client.read_reply(Kind.SPACES), "protocol", "length 0")


def test_a_frame_over_one_gib(serve: Callable) -> None:
    client = serve()
    client.sock.sendall(((1 << 30) + 1).to_bytes(4, "little") + bytes([Kind.HELLO]))
    expect_error(lambda: client.read_reply(Kind.SPACES), "protocol", "at most 1073741824")


@pytest.mark.parametrize("how", ["close", "disconnect", "error"])
def test_the_environments_are_closed_however_the_connection_ends(how: str) -> None:
    server_end, client_end = socket.socketpair()
    client_end.settimeout(30)
    thread = threading.Thread(target=serve_connection, args=(server_end, "test"), daemon=True)
    thread.start()
    client = EnvClient(client_end)
    client.hello({"class": "envs_for_tests:ClosingEnv"}, num_envs=2)
    client.reset([1, 2])
    before = len(envs_for_tests.CLOSED)
    if how == "close":
        client.close()
    elif how == "disconnect":
        client.sock.close()  # The trainer died: no CLOSE.
    else:
        expect_error(lambda: client.step(np.array([9, 9], dtype=np.int32)), "action")
    thread.join(timeout=30)
    assert not thread.is_alive()
    assert len(envs_for_tests.CLOSED) - before == 2
    client.sock.close()
