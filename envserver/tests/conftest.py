"""Fixtures: a server session on one end of a socket pair, the reference client on the other; and
servers started as processes (`start`).

The session is the server's real connection code (`serve_connection`), run in a thread, so every
test goes through the real frames; test_server_process.py and test_sidecar.py cover the process and
its sockets.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterator

import pytest

from drlaas_envserver.client import EnvClient
from drlaas_envserver.session import serve_connection

from helpers import ServerProcess


class Served:
    """A client and the thread serving it."""

    def __init__(self) -> None:
        server_end, client_end = socket.socketpair()
        client_end.settimeout(30)
        self.thread = threading.Thread(target=serve_connection, args=(server_end, "test"), daemon=True)
        self.thread.start()
        self.client = EnvClient(client_end)

    def finish(self) -> None:
        self.client.close()
        self.thread.join(timeout=30)
        assert not self.thread.is_alive(), "the server session did not end after CLOSE"


@pytest.fixture
def serve() -> Iterator[Callable[[], EnvClient]]:
    """Makes clients, each connected to its own server session; closes them all at the end."""
    served: list[Served] = []

    def make() -> EnvClient:
        s = Served()
        served.append(s)
        return s.client

    yield make
    for s in served:
        s.finish()


@pytest.fixture
def start() -> Iterator[Callable[..., ServerProcess]]:
    """Starts `python -m drlaas_envserver ARGS...` processes; kills those still running at the end."""
    started: list[ServerProcess] = []

    def make(*args: str) -> ServerProcess:
        server = ServerProcess(*args)
        started.append(server)
        return server

    yield make
    for server in started:
        server.stop()
