"""One connection: the request/reply sequence of docs/env-protocol.md, from HELLO to CLOSE.

A connection serves one vector. Every request gets exactly one reply, in order; a request the server
refuses gets an ERROR and the connection is closed, as the protocol says, and its environments are
closed however the connection ends (CLOSE, ERROR, or the trainer going away).
"""

from __future__ import annotations

import contextlib
import socket
import traceback

from .environments import build
from .logs import log
from .protocol import (
    ConnectionClosedError,
    Kind,
    ProtocolError,
    decode_actions,
    decode_hello,
    decode_reset,
    encode_error,
    encode_spaces,
    read_frame,
    write_frame,
)
from .vector import Vector, make_vector

# More copies than this in one process would be a mistake (a trainer splits its environments between
# several servers to step them in parallel).
MAX_ENVS = 65536

# Frames only a server sends: a trainer sending one is out of order, not unknown.
_SERVER_KINDS = frozenset({Kind.SPACES, Kind.OBSERVATIONS, Kind.STEPPED, Kind.ERROR})

# Set once, before any connection, when this server cannot serve anything (the requester's package did
# not install): every HELLO gets this ERROR (field, message). A server that exited instead would leave a
# sidecar's trainer waiting with no message, and a restarted one would fail the same way.
_refusal: tuple[str, str] | None = None


def refuse_every_hello(field: str, message: str) -> None:
    """From now on, answers every HELLO with ERROR `field`: `message` (the server stays up to say why)."""
    global _refusal
    _refusal = (field, message)


class Session:
    """The state of one connection: no vector until HELLO, no STEP before the first RESET."""

    def __init__(self, sock: socket.socket, peer: str) -> None:
        self.sock = sock
        self.peer = peer
        self.vector: Vector | None = None
        self.was_reset = False

    def run(self) -> None:
        """Serves the connection until CLOSE, an error, or the trainer going away; then cleans up."""
        try:
            self._loop()
        except ProtocolError as e:
            self._refuse(e)
        except (ConnectionClosedError, ConnectionError) as e:
            log(f"{self.peer}: connection lost: {e}")
        except Exception as e:
            # A bug of this server, not of the request: still an ERROR the trainer can report.
            log(f"{self.peer}: internal error\n{traceback.format_exc().rstrip()}")
            self._refuse(ProtocolError("server", f"internal error of the environment server: {type(e).__name__}: {e}"))
        finally:
            if self.vector is not None:
                self.vector.close()
            self.sock.close()

    def _refuse(self, error: ProtocolError) -> None:
        cause = error.__cause__
        if cause is not None:
            trace = "".join(traceback.format_exception(type(cause), cause, cause.__traceback__)).rstrip()
            log(f"{self.peer}: {trace}")
        log(f"{self.peer}: ERROR {error.field}: {error.message}")
        # If the trainer is gone, the log line above is all that is left to say.
        with contextlib.suppress(OSError):
            write_frame(self.sock, Kind.ERROR, encode_error(error.field, error.message))

    def _loop(self) -> None:
        while True:
            frame = read_frame(self.sock)
            if frame is None:
                # The trainer closed without CLOSE (it stopped or was killed): nothing to answer.
                return
            kind, payload = frame
            if kind == Kind.CLOSE:
                return
            if kind == Kind.HELLO:
                self._hello(payload)
            elif kind == Kind.RESET:
                self._reset(payload)
            elif kind == Kind.STEP:
                self._step(payload)
            elif kind in _SERVER_KINDS:
                raise ProtocolError("protocol", f"{Kind(kind).name} (kind {kind}) is the server's frame, not a request")
            else:
                raise ProtocolError("protocol", f"unknown frame kind {kind}")

    def _hello(self, payload: bytearray) -> None:
        if self.vector is not None:
            raise ProtocolError("protocol", "a second HELLO on the connection (one connection is one vector)")
        if _refusal is not None:
            raise ProtocolError(*_refusal)
        hello = decode_hello(payload, MAX_ENVS)
        self.vector = make_vector(build(hello.environment, hello.num_envs))
        log(f"{self.peer}: serving {hello.num_envs} x {self.vector.name}")
        write_frame(self.sock, Kind.SPACES, encode_spaces(self.vector.spaces()))

    def _reset(self, payload: bytearray) -> None:
        if self.vector is None:
            raise ProtocolError("protocol", "RESET before HELLO")
        seeds = decode_reset(payload, self.vector.num_envs)
        observations = self.vector.reset(seeds)
        self.was_reset = True
        write_frame(self.sock, Kind.OBSERVATIONS, observations)

    def _step(self, payload: bytearray) -> None:
        if self.vector is None or not self.was_reset:
            raise ProtocolError("protocol", "STEP before the first RESET")
        actions = decode_actions(payload, self.vector.action_description, self.vector.rows)
        write_frame(self.sock, Kind.STEPPED, *self.vector.step(actions))


def serve_connection(sock: socket.socket, peer: str) -> None:
    """Serves one accepted connection to its end (see `Session`)."""
    Session(sock, peer).run()
