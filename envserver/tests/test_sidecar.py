"""The server as a pod's environment sidecar runs it: a process per `--listen` address, and a requester's
package installed before it listens (`--package`, and `python -m drlaas_envserver.install`).

Real processes throughout; which process holds which socket is read from Linux's /proc.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from drlaas_envserver.client import EnvClient

from helpers import TEST_PYTHONPATH, assert_closed, expect_error

pytestmark = pytest.mark.skipif(not Path("/proc/net/unix").exists(), reason="reads Linux's /proc")

READY = "drlaas-envserver listening on "

TINY_PYPROJECT = """[build-system]
requires = ["setuptools>=64"]
build-backend = "setuptools.build_meta"

[project]
name = "drlaas-tiny-env"
version = "0.1.0"
"""

TINY_ENV = '''import gymnasium
import numpy as np
from gymnasium import spaces


class Tiny(gymnasium.Env):
    """Observes its step count; ends after `length` steps."""

    def __init__(self, length=3):
        self.length = length
        self.observation_space = spaces.Box(0.0, 100.0, shape=(1,), dtype=np.float32)
        self.action_space = spaces.Discrete(2)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        return np.array([0.0], dtype=np.float32), {}

    def step(self, action):
        self.t += 1
        return np.array([self.t], dtype=np.float32), 1.0, self.t >= self.length, False, {}


gymnasium.register(id="Tiny-v0", entry_point="drlaas_tiny_env:Tiny")
'''


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A requester's wheel, built as one builds it (no index, no download)."""
    source = tmp_path_factory.mktemp("tiny-source")
    (source / "drlaas_tiny_env").mkdir()
    (source / "pyproject.toml").write_text(TINY_PYPROJECT)
    (source / "drlaas_tiny_env" / "__init__.py").write_text(TINY_ENV)
    dist = tmp_path_factory.mktemp("tiny-dist")
    pip_wheel = [sys.executable, "-m", "pip", "wheel", "--quiet", "--disable-pip-version-check", "--no-deps"]
    built = subprocess.run(
        [*pip_wheel, "--no-build-isolation", "--no-index", "-w", str(dist), str(source)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert built.returncode == 0, built.stderr
    [found] = dist.glob("*.whl")
    return found


@pytest.fixture
def not_a_wheel(tmp_path: Path) -> Path:
    path = tmp_path / "broken-0.1.0-py3-none-any.whl"
    path.write_bytes(b"this is not a zip archive")
    return path


def _parent_of(pid: int) -> int | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command (the second field) is in parentheses and may hold spaces: the fields after it.
    return int(stat.rsplit(")", 1)[1].split()[1])


def _children(pid: int) -> list[int]:
    return [int(entry) for entry in os.listdir("/proc") if entry.isdigit() and _parent_of(int(entry)) == pid]


def _listening_inode(path: Path) -> int:
    """The inode of the socket listening on `path` (its line of /proc/net/unix)."""
    for line in Path("/proc/net/unix").read_text().splitlines()[1:]:
        fields = line.split()
        # Num RefCount Protocol Flags Type St Inode Path; flag 0x10000: accepts connections.
        if len(fields) == 8 and fields[7] == str(path) and int(fields[3], 16) & 0x10000:
            return int(fields[6])
    raise AssertionError(f"nothing listens on {path}")


def _holders(inode: int, pids: list[int]) -> set[int]:
    """Which of `pids` have the socket `inode` open."""
    held = set()
    for pid in pids:
        for fd in os.listdir(f"/proc/{pid}/fd"):
            try:
                if os.readlink(f"/proc/{pid}/fd/{fd}") == f"socket:[{inode}]":
                    held.add(pid)
            except OSError:
                pass  # Closed since listed.
    return held


def _gone(pid: int, timeout: float = 30.0) -> bool:
    """Whether `pid` ends within `timeout` (a zombie left to an init that does not reap counts as gone)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            return True
        if state == "Z":
            return True
        time.sleep(0.05)
    return False


def _run_cartpole(address: str) -> None:
    with EnvClient.connect(address, timeout=30) as client:
        client.hello({"gymnasium": "CartPole-v1"}, num_envs=2)
        assert client.reset([1, 2]).shape == (2, 4)
        assert client.step(np.array([0, 1], dtype=np.int32)).rewards.shape == (2,)


def test_two_addresses_are_two_processes_and_sigterm_stops_both(start, tmp_path: Path) -> None:
    first, second, ready = tmp_path / "env-0.sock", tmp_path / "env-1.sock", tmp_path / "ready"
    ready.write_text("unix:/left/by/an/earlier/run.sock\n")  # A restarted sidecar's: replaced.
    server = start("--listen", f"unix:{first}", "--listen", f"unix:{second}", "--ready-file", str(ready))
    assert server.wait_for(READY) == f"{READY}unix:{first}"
    assert server.wait_for(READY) == f"{READY}unix:{second}"
    assert ready.read_text() == f"unix:{first}\nunix:{second}\n"
    # The parent serves the first address, a child of it the second; neither holds the other's socket.
    [child] = _children(server.proc.pid)
    processes = [server.proc.pid, child]
    assert _holders(_listening_inode(first), processes) == {server.proc.pid}
    assert _holders(_listening_inode(second), processes) == {child}
    _run_cartpole(f"unix:{first}")
    _run_cartpole(f"unix:{second}")
    # The child, too, serves several connections at once (a thread each).
    with EnvClient.connect(f"unix:{second}", timeout=30) as a, EnvClient.connect(f"unix:{second}", timeout=30) as b:
        a.hello({"gymnasium": "CartPole-v1"}, num_envs=1)
        b.hello({"gymnasium": "Pendulum-v1"}, num_envs=1)
    server.proc.send_signal(signal.SIGTERM)
    assert server.proc.wait(timeout=30) == 128 + signal.SIGTERM
    assert _gone(child)
    assert not first.exists() and not second.exists()


def test_a_child_that_dies_is_logged_and_the_others_serve_on(start, tmp_path: Path) -> None:
    first, second = tmp_path / "env-0.sock", tmp_path / "env-1.sock"
    server = start("--listen", f"unix:{first}", "--listen", f"unix:{second}")
    server.wait_for(READY)
    [child] = _children(server.proc.pid)
    os.kill(child, signal.SIGKILL)
    line = server.wait_for("drlaas-envserver: the server on")
    assert line == (
        f"drlaas-envserver: the server on unix:{second} (process {child}) was killed by SIGKILL; "
        "that address is not served any more"
    )
    assert not second.exists()  # Its file removed by the parent: the path does not look served.
    _run_cartpole(f"unix:{first}")
    server.proc.send_signal(signal.SIGTERM)
    assert server.proc.wait(timeout=30) == 128 + signal.SIGTERM
    assert not first.exists()


def test_children_do_not_outlive_a_killed_parent(start, tmp_path: Path) -> None:
    sockets = [tmp_path / f"env-{i}.sock" for i in range(3)]
    server = start(*(arg for path in sockets for arg in ("--listen", f"unix:{path}")))
    server.wait_for(READY)
    children = _children(server.proc.pid)
    assert len(children) == 2
    server.proc.kill()
    server.proc.wait(timeout=30)
    # The kernel sends each child SIGTERM, and each removes its own socket file.
    assert all(_gone(pid) for pid in children)
    assert not sockets[1].exists() and not sockets[2].exists()


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["--listen", "unix:{dir}/a.sock", "--listen", "unix:{dir}/b.sock", "--once"], "--once"),
        (["--listen", "unix:{dir}/a.sock", "--package", "{dir}/env.whl"], "--package-target"),
        (["--listen", "unix:{dir}/a.sock", "--package-target", "{dir}/site"], "--package-target"),
        (["--listen", "unix:{dir}/a.sock", "--listen", "tcp:0.0.0.0:0"], "--allow-remote"),
    ],
)
def test_a_command_line_that_cannot_work_is_refused_before_anything_listens(
    start, tmp_path: Path, args: list[str], named: str
) -> None:
    server = start(*(arg.format(dir=tmp_path) for arg in args))
    assert server.proc.wait(timeout=30) == 2
    assert named in server.stderr_rest()
    assert not (tmp_path / "a.sock").exists() and not (tmp_path / "b.sock").exists()


def test_a_package_is_installed_and_served_by_every_process(start, wheel: Path, tmp_path: Path) -> None:
    # The sidecar's layout: a folder holding the fetched wheel, a target to install into.
    package, target = tmp_path / "package", tmp_path / "site"
    package.mkdir()
    (package / wheel.name).write_bytes(wheel.read_bytes())
    first, second = tmp_path / "env-0.sock", tmp_path / "env-1.sock"
    server = start(
        *("--listen", f"unix:{first}", "--listen", f"unix:{second}"),
        *("--package", str(package), "--package-target", str(target)),
    )
    assert server.wait_for("drlaas-envserver: installed") == f"drlaas-envserver: installed {package} into {target}"
    server.wait_for(READY, timeout=60)
    assert (target / "drlaas_tiny_env" / "__init__.py").is_file()
    for path in (first, second):
        with EnvClient.connect(f"unix:{path}", timeout=30) as client:
            spaces = client.hello({"class": "drlaas_tiny_env:Tiny", "kwargs": {"length": 2}}, num_envs=2)
            assert spaces.raw["observationShape"] == [1]
            client.reset([1, 2])
            client.step(np.array([0, 1], dtype=np.int32))
            assert len(client.step(np.array([0, 1], dtype=np.int32)).episodes) == 2
        # The id it registers as it is imported, as a task names it.
        with EnvClient.connect(f"unix:{path}", timeout=30) as client:
            assert client.hello({"gymnasium": "drlaas_tiny_env:Tiny-v0"}, num_envs=1).num_envs == 1


def test_a_package_that_does_not_install_is_every_hellos_error(start, not_a_wheel: Path, tmp_path: Path) -> None:
    path = tmp_path / "env.sock"
    server = start("--listen", f"unix:{path}", "--package", str(not_a_wheel), "--package-target", str(tmp_path / "t"))
    server.wait_for(READY, timeout=60)
    # The server stays up (a sidecar that exited would leave the trainer no message) and says why.
    for _ in range(2):
        client = EnvClient.connect(f"unix:{path}", timeout=30)
        error = expect_error(
            lambda client=client: client.hello({"gymnasium": "CartPole-v1"}, num_envs=1),
            "package",
            f"the environment package {not_a_wheel} did not install: ",
        )
        assert "ERROR" in error.message  # pip's own error line.
        assert len(error.message) <= 2100
        assert_closed(client)
        client.sock.close()
    assert server.proc.poll() is None
    server.proc.send_signal(signal.SIGTERM)
    assert server.proc.wait(timeout=30) == 128 + signal.SIGTERM
    assert f"drlaas-envserver: the environment package {not_a_wheel} did not install" in server.stderr_rest()


def _install_command(*args: str, home: Path) -> subprocess.CompletedProcess[str]:
    env = {key: value for key, value in os.environ.items() if key != "XDG_CACHE_HOME"}
    # A home of its own (the sidecar's is read-only), and a PIP_USER that would make pip refuse --target.
    env.update(PYTHONPATH=TEST_PYTHONPATH, HOME=str(home), PIP_USER="1")
    return subprocess.run(
        [sys.executable, "-m", "drlaas_envserver.install", *args], capture_output=True, text=True, env=env, check=False
    )


def _pip_wrote_in(home: Path) -> bool:
    # Its cache or a user site. (pip's user agent runs `rustc --version`, and where rustup is on PATH
    # it keeps its settings in the home: not pip's doing, nor in the environment image.)
    return (home / ".cache").exists() or (home / ".local").exists()


def test_the_install_command_installs_or_says_why_not(wheel: Path, not_a_wheel: Path, tmp_path: Path) -> None:
    home, target = tmp_path / "home", tmp_path / "site"
    target.mkdir()
    (target / "left-over").write_text("from an earlier install")
    done = _install_command(str(wheel), str(target), home=home)
    assert (done.returncode, done.stderr) == (0, "")
    assert (target / "drlaas_tiny_env" / "__init__.py").is_file()
    assert not (target / "left-over").exists()
    assert not _pip_wrote_in(home)
    # A package folder with no wheel in it, and a wheel that is not one.
    empty = tmp_path / "empty"
    empty.mkdir()
    failed = _install_command(str(empty), str(target), home=home)
    assert failed.returncode == 1
    assert failed.stderr == f"the environment package {empty} did not install: the folder holds no wheel (*.whl)\n"
    failed = _install_command(str(not_a_wheel), str(target), home=home)
    assert failed.returncode == 1
    assert failed.stderr.startswith(f"the environment package {not_a_wheel} did not install: ")
    assert not _pip_wrote_in(home)
