"""Assertions shared by the tests, and the server run in its own process as the trainer runs it."""

from __future__ import annotations

import os
import queue
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from drlaas_envserver.client import EnvClient, ServerError
from drlaas_envserver.protocol import read_frame


def expect_error(call: Callable[[], Any], field: str, *fragments: str) -> ServerError:
    """Runs `call`, which must get ERROR with `field` and a message holding every fragment."""
    with pytest.raises(ServerError) as info:
        call()
    error = info.value
    assert error.field == field, f"field {error.field!r} (message: {error.message})"
    for fragment in fragments:
        assert fragment in error.message, f"{fragment!r} not in {error.message!r}"
    return error


def assert_closed(client: EnvClient) -> None:
    """After an ERROR the server closes the connection: the next read sees the end of the stream."""
    assert read_frame(client.sock) is None


TESTS = Path(__file__).resolve().parent
SRC = TESTS.parent / "src"
# The checkout's sources and the tests' environments, for a Python started by a test.
TEST_PYTHONPATH = os.pathsep.join([str(SRC), str(TESTS)])


class ServerProcess:
    """A server process whose standard error is read line by line (the ready line, the last words)."""

    def __init__(self, *args: str) -> None:
        env = dict(os.environ, PYTHONPATH=TEST_PYTHONPATH)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "drlaas_envserver", *args],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.seen: list[str] = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        with self.proc.stderr as stderr:
            for line in stderr:
                self.lines.put(line.rstrip("\n"))
        self.lines.put(None)

    def wait_for(self, prefix: str, timeout: float = 30.0) -> str:
        """The first line of standard error that starts with `prefix`."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self.lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError(f"no line {prefix!r} in {timeout} s; saw {self.seen}") from None
            if line is None:
                raise AssertionError(f"the server exited ({self.proc.wait()}) before {prefix!r}; saw {self.seen}")
            self.seen.append(line)
            if line.startswith(prefix):
                return line

    def stderr_rest(self) -> str:
        """Everything it wrote after what was read, once it has exited."""
        while (line := self.lines.get(timeout=30)) is not None:
            self.seen.append(line)
        return "\n".join(self.seen)

    def stop(self) -> None:
        # Killed: the processes it forked get SIGTERM from the kernel (`workers._die_with`).
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=30)
        self.reader.join(timeout=30)  # Until it closed the pipe.
