"""One server process per `--listen` address, so that a sidecar's environments step in parallel.

Python steps one environment at a time (the GIL), so a trainer that wants parallel stepping connects
to several servers, and a sidecar container runs them all from one command. The command binds every
listener first (a bad address fails before anything is forked), serves the first address itself and
forks a child for each other one. The forks come before any thread exists, Python's or numpy's (the
session code, and numpy with it, is imported by `serve` only after them), and the parent stops its
children when it is stopped. A child that dies is logged, not restarted: the trainer finds its address
dead and fails the attempt with a message.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import socket
import sys
import threading
import traceback
from collections.abc import Callable
from typing import NoReturn

from .logs import log
from .server import Address, cleanup, remove_socket_file

Listener = tuple[socket.socket, Address]

# The signals that stop a server (`__main__` turns them into SystemExit and KeyboardInterrupt).
STOP_SIGNALS = frozenset({signal.SIGTERM, signal.SIGINT})

# How long stopped children get to remove their socket files before they are killed.
STOP_GRACE_S = 5.0

# prctl(2): have the kernel signal this process when its parent dies.
_PR_SET_PDEATHSIG = 1


class Children:
    """The forked servers of this process: a thread per child waits for it, so that one that dies is
    logged and its socket file removed, and `stop` knows when they are all gone."""

    def __init__(self, children: dict[int, Address]) -> None:
        self._alive = dict(children)
        self._stopping = False
        self._changed = threading.Condition()
        for pid, address in children.items():
            threading.Thread(target=self._wait, args=(pid, address), name=f"server {pid}", daemon=True).start()

    def _wait(self, pid: int, address: Address) -> None:
        try:
            _, status = os.waitpid(pid, 0)
        except ChildProcessError:
            status = None
        # A child that was killed left its socket file: the path must not look served.
        remove_socket_file(address)
        with self._changed:
            del self._alive[pid]
            if not self._stopping:
                log(f"the server on {address} (process {pid}) {_ended(status)}; that address is not served any more")
            self._changed.notify_all()

    def stop(self) -> None:
        """Stops every child (SIGTERM; SIGKILL for one that outlasts `STOP_GRACE_S`) and waits for them."""
        if not self._alive:
            return
        # A second Ctrl-C or SIGTERM must not cut the waiting short and leave children behind.
        for signum in STOP_SIGNALS:
            signal.signal(signum, signal.SIG_IGN)
        with self._changed:
            self._stopping = True
            for pid in self._alive:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGTERM)
            if self._changed.wait_for(lambda: not self._alive, STOP_GRACE_S):
                return
            for pid, address in self._alive.items():
                log(f"the server on {address} (process {pid}) did not stop within {STOP_GRACE_S:g} s: killed")
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            self._changed.wait_for(lambda: not self._alive, STOP_GRACE_S)


def _ended(status: int | None) -> str:
    if status is None:
        return "ended"
    code = os.waitstatus_to_exitcode(status)
    if code < 0:
        return f"was killed by {signal.Signals(-code).name}"
    return f"exited with status {code}"


def fork_servers(listeners: list[Listener], serve_one: Callable[[socket.socket, Address], None]) -> Children:
    """Forks a child for every listener but the first (the caller's to serve): each runs `serve_one` on
    its own listener, removes its socket file however it ends, and exits; none returns here. The parent
    keeps none of the children's listeners open, so the address of a child that died refuses
    connections rather than leaving them waiting."""
    if len(listeners) == 1:
        return Children({})
    parent = os.getpid()
    pids: dict[int, Address] = {}
    # No stop signal in the middle of the forks: one that comes is handled once they are done, by the
    # parent (which then stops the children) and by each child on its own.
    signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
    try:
        for index in range(1, len(listeners)):
            pid = os.fork()
            if pid == 0:
                _child(parent, listeners, index, serve_one)
            pids[pid] = listeners[index][1]
    except BaseException:
        # A failed fork: the children so far are stopped (they remove their own socket files).
        Children(pids).stop()
        for listener, address in listeners[1 + len(pids) :]:
            cleanup(listener, address)
        raise
    finally:
        for listener, _ in listeners[1:]:
            listener.close()
        signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)
    return Children(pids)


def _child(parent: int, listeners: list[Listener], index: int, serve_one: Callable[..., None]) -> NoReturn:
    """A forked server: serves `listeners[index]` and exits, never returning into the parent's code (its
    cleanup of the other listeners is not this process's to run)."""
    status = 1
    try:
        listener, address = listeners[index]
        for i, (other, _) in enumerate(listeners):
            if i != index:
                other.close()  # Only the file descriptor: the socket files are their servers' own.
        try:
            _die_with(parent)
            signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)
            serve_one(listener, address)
            status = 0
        finally:
            cleanup(listener, address)
    except SystemExit as e:
        status = e.code if isinstance(e.code, int) else 1
    except KeyboardInterrupt:
        status = 130
    except BaseException:
        traceback.print_exc()
    finally:
        with contextlib.suppress(Exception):
            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(status)


def _die_with(parent: int) -> None:
    """Has Linux send this child SIGTERM when the parent dies, even killed, so no server outlives the
    command (elsewhere the parent's stop is all there is)."""
    with contextlib.suppress(AttributeError, OSError):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0)
    if os.getppid() != parent:
        raise SystemExit(128 + signal.SIGTERM)  # The parent died before the request.
