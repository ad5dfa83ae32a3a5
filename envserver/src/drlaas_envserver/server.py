"""Listening: the address forms of the protocol (`unix:PATH`, `tcp:HOST:PORT`) and the accept loop.

The server runs requesters' code and steps it for whoever connects, so TCP is refused on anything but
the loopback interface unless `--allow-remote` says otherwise. A parent process (the trainer) waits
for the ready line on standard error, or for `--ready-file`, before it connects.

This module does not import the session code (and with it numpy) until `serve` runs: the command binds
its listeners and forks a process per address (`workers`) first, and numpy's BLAS starts threads as
it is imported, which a fork must not find.

SIGTERM and SIGINT stop a server through a Python handler, which runs in the main thread when it next
runs Python code; but the kernel may give a signal to another thread (numpy's, a connection's), which
leaves the main thread asleep in `accept`. So the accept loop waits on the listener and on a pipe that
every signal is written to (`signal.set_wakeup_fd`), whichever thread takes it.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import select
import signal
import socket
import stat
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass


class AddressError(ValueError):
    """A `--listen` address the server cannot or will not listen on."""


@dataclass(frozen=True)
class Address:
    """Where to listen: a Unix socket path, or a TCP host and port (port 0: any free port)."""

    kind: str  # "unix" or "tcp"
    path: str = ""
    host: str = ""
    port: int = 0

    def __str__(self) -> str:
        if self.kind == "unix":
            return f"unix:{self.path}"
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"tcp:{host}:{self.port}"


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # A host name other than localhost: where it points is not ours to check.


def parse_address(text: str, allow_remote: bool = False) -> Address:
    """Parses `unix:PATH` or `tcp:HOST:PORT` (an IPv6 host in brackets: `tcp:[::1]:5555`)."""
    scheme, sep, rest = text.partition(":")
    if not sep or not rest:
        raise AddressError(f"{text!r} is not unix:PATH or tcp:HOST:PORT")
    if scheme == "unix":
        return Address("unix", path=rest)
    if scheme != "tcp":
        raise AddressError(f"{text!r}: unknown scheme {scheme!r} (unix or tcp)")
    host, sep, port_text = rest.rpartition(":")
    if not sep or not host or not port_text.isdigit() or int(port_text) > 65535:
        raise AddressError(f"{text!r} is not tcp:HOST:PORT")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if not allow_remote and not _is_loopback(host):
        raise AddressError(
            f"{host} is not a loopback address: the server runs environments for whoever connects, "
            "so it listens on 127.0.0.1, ::1 or localhost unless --allow-remote is given"
        )
    return Address("tcp", host=host, port=int(port_text))


def _claim_unix_path(path: str) -> None:
    """Removes a stale socket file left by a server that died; refuses a live one or any other file."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(mode):
        raise AddressError(f"{path} exists and is not a socket")
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.connect(path)
    except OSError:
        os.unlink(path)  # Nobody listens: a leftover.
        return
    finally:
        probe.close()
    raise AddressError(f"{path}: another server is listening there")


def listen(address: Address) -> tuple[socket.socket, Address]:
    """A listening socket, and the address it really has (the port a `tcp:...:0` got)."""
    if address.kind == "unix":
        _claim_unix_path(address.path)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.bind(address.path)
        except OSError as e:
            sock.close()
            raise AddressError(f"cannot listen on {address}: {e}") from None
        sock.listen(16)
        return sock, address
    try:
        infos = socket.getaddrinfo(address.host, address.port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as e:
        raise AddressError(f"cannot resolve {address.host}: {e}") from None
    family, kind, proto, _, sockaddr = infos[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(sockaddr)
    except OSError as e:
        sock.close()
        raise AddressError(f"cannot listen on {address}: {e}") from None
    sock.listen(16)
    host, port = sock.getsockname()[:2]
    return sock, Address("tcp", host=host, port=port)


def withdraw(ready_file: str | None) -> None:
    """Removes a ready file left by an earlier run (a restarted sidecar's): it would say ready too soon."""
    if ready_file:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(ready_file)


def announce(addresses: list[Address], ready_file: str | None) -> None:
    """Says the server is ready, once every address listens: a line per address on standard error
    (`drlaas-envserver listening on ADDRESS`), and the addresses, one a line, in `ready_file` if given.
    """
    if ready_file:
        # Written whole then renamed, so a watcher never reads half the addresses.
        tmp = f"{ready_file}.tmp{os.getpid()}"
        with open(tmp, "w", encoding="utf-8") as f:
            f.writelines(f"{address}\n" for address in addresses)
        os.replace(tmp, ready_file)
    lines = "".join(f"drlaas-envserver listening on {address}\n" for address in addresses)
    sys.stderr.write(lines)
    sys.stderr.flush()


def _peer_name(address: Address, peer: object, number: int) -> str:
    if address.kind == "tcp" and isinstance(peer, tuple):
        return f"connection {number} from {peer[0]}:{peer[1]}"
    return f"connection {number}"


def serve(
    listener: socket.socket,
    address: Address,
    once: bool = False,
    refusal: tuple[str, str] | None = None,
    ready: Callable[[], None] | None = None,
) -> None:
    """Accepts connections, each served by its own thread (each is its own vector), until stopped.
    Runs in the main thread (it wakes on signals); calls `ready` once it can answer a HELLO at once.

    With `once`, serves the first connection in this thread and returns when it closes: a trainer that
    starts a server per run has it exit with the run. With `refusal` (field, message), every HELLO is
    answered with that ERROR: the server could not get ready (its package did not install) and stays
    up to say so.
    """
    from .session import refuse_every_hello, serve_connection  # Here: see the module's docstring.

    if refusal is not None:
        refuse_every_hello(*refusal)
    if ready is not None:
        ready()
    number = 0
    with _signal_wakeup() as wakeup:
        listener.setblocking(False)  # The client of a waiting connection may be gone by the accept.
        while True:
            # A signal's handler runs when this returns (see the module's docstring).
            readable, _, _ = select.select([listener, wakeup], [], [])
            if wakeup in readable:
                with contextlib.suppress(BlockingIOError):
                    os.read(wakeup, 512)
            if listener not in readable:
                continue
            try:
                conn, peer = listener.accept()
            except (BlockingIOError, ConnectionAbortedError):
                continue
            conn.setblocking(True)
            number += 1
            if address.kind == "tcp":
                # Replies are single writes, but requests are small and latency is all that matters.
                conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            name = _peer_name(address, peer, number)
            if once:
                serve_connection(conn, name)
                return
            threading.Thread(target=serve_connection, args=(conn, name), name=name, daemon=True).start()


@contextlib.contextmanager
def _signal_wakeup() -> Iterator[int]:
    """A file descriptor that turns readable when a signal comes (`signal.set_wakeup_fd`, main thread only)."""
    read_end, write_end = os.pipe()
    os.set_blocking(read_end, False)
    os.set_blocking(write_end, False)
    previous = signal.set_wakeup_fd(write_end, warn_on_full_buffer=False)
    try:
        yield read_end
    finally:
        signal.set_wakeup_fd(previous)
        os.close(read_end)
        os.close(write_end)


def cleanup(listener: socket.socket, address: Address) -> None:
    """Closes the listener and removes its socket file, so the next server finds the path free."""
    listener.close()
    remove_socket_file(address)


def remove_socket_file(address: Address) -> None:
    """Removes a Unix address's socket file, if it is still there; nothing for TCP."""
    if address.kind == "unix":
        with contextlib.suppress(FileNotFoundError):
            os.unlink(address.path)
