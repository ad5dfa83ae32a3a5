"""The server as the trainer runs it: `python -m drlaas_envserver` in its own process, on a real socket."""

from __future__ import annotations

import signal
import socket
from pathlib import Path

import numpy as np

from drlaas_envserver.client import EnvClient

from helpers import assert_closed, expect_error


def test_ready_line_then_a_run_over_a_unix_socket(start, tmp_path: Path) -> None:
    path = tmp_path / "env.sock"
    server = start("--listen", f"unix:{path}", "--once")
    assert server.wait_for("drlaas-envserver listening on") == f"drlaas-envserver listening on unix:{path}"
    with EnvClient.connect(f"unix:{path}", timeout=30) as client:
        client.hello({"gymnasium": "CartPole-v1"}, num_envs=2)
        obs = client.reset([1, 2])
        assert obs.shape == (2, 4)
        episodes = 0
        for _ in range(60):
            episodes += len(client.step(np.array([0, 0], dtype=np.int32)).episodes)
        assert episodes >= 4  # Always pushing left drops the pole in about ten steps.
    # --once: the server exits when the connection closes, and removes its socket file.
    assert server.proc.wait(timeout=30) == 0
    assert not path.exists()


def test_an_environment_crashing_mid_run_is_an_error_frame(start, tmp_path: Path) -> None:
    path = tmp_path / "env.sock"
    server = start("--listen", f"unix:{path}", "--once")
    server.wait_for("drlaas-envserver listening on")
    client = EnvClient.connect(f"unix:{path}", timeout=30)
    client.hello({"class": "envs_for_tests:CrashingEnv", "kwargs": {"crash_at": 4}}, num_envs=3)
    client.reset([1, 2, 3])
    for _ in range(3):
        client.step(np.array([1, 2, 3], dtype=np.int32))
    expect_error(
        lambda: client.step(np.array([1, 2, 3], dtype=np.int32)),
        "environment.step",
        "RuntimeError: the simulator exploded at step 4",
    )
    assert_closed(client)
    client.sock.close()
    assert server.proc.wait(timeout=30) == 0
    # Its last words on standard error carry the traceback and the ERROR it sent.
    last_words = server.stderr_rest()
    assert "Traceback" in last_words and 'raise RuntimeError(f"the simulator exploded' in last_words
    assert "ERROR environment.step: environment 0 (envs_for_tests:CrashingEnv) raised RuntimeError" in last_words


def test_tcp_on_a_free_port_with_a_ready_file(start, tmp_path: Path) -> None:
    ready = tmp_path / "ready"
    server = start("--listen", "tcp:127.0.0.1:0", "--once", "--ready-file", str(ready))
    line = server.wait_for("drlaas-envserver listening on")
    address = line.removeprefix("drlaas-envserver listening on ")
    host, port = address.removeprefix("tcp:").rsplit(":", 1)
    assert host == "127.0.0.1" and int(port) > 0
    assert ready.read_text() == f"{address}\n"
    with EnvClient.connect(address, timeout=30) as client:
        spaces = client.hello({"gymnasium": "Pendulum-v1"}, num_envs=1)
        assert spaces.raw["actionSpace"]["type"] == "box"
        client.reset([0])
        assert client.step(np.array([[0.5]], dtype=np.float32)).rewards.shape == (1,)
    assert server.proc.wait(timeout=30) == 0


def test_a_non_loopback_host_is_refused(start) -> None:
    server = start("--listen", "tcp:0.0.0.0:0")
    assert server.proc.wait(timeout=30) == 2
    message = server.stderr_rest()
    assert "not a loopback address" in message and "--allow-remote" in message


def test_sigterm_stops_the_server_and_removes_the_socket(start, tmp_path: Path) -> None:
    path = tmp_path / "env.sock"
    # A stale socket file, as a killed server leaves: the new one takes the path over.
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(str(path))
    stale.close()
    assert path.exists()
    server = start("--listen", f"unix:{path}")
    server.wait_for("drlaas-envserver listening on")
    # Without --once it serves one connection after another (here two at once).
    with EnvClient.connect(f"unix:{path}") as first, EnvClient.connect(f"unix:{path}") as second:
        first.hello({"gymnasium": "CartPole-v1"}, num_envs=1)
        second.hello({"gymnasium": "CartPole-v1"}, num_envs=1)
    server.proc.send_signal(signal.SIGTERM)
    assert server.proc.wait(timeout=30) == 128 + signal.SIGTERM
    assert not path.exists()
