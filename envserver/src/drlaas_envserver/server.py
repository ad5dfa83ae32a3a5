"""Listening: the address forms of the protocol (`unix:PATH`, `tcp:HOST:PORT`) and the accept loop.

The server runs requesters' code and steps it for whoever connects, so TCP is refused on anything but
the loopback interface unless `--allow-remote` says otherwise. A parent process (the trainer) waits
for the ready line on standard error, or for `--ready-file`, before it connects.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import socket
import stat
import sys
import threading
from dataclasses import dataclass

from .session import serve_connection


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


def announce(address: Address, ready_file: str | None) -> None:
    """Says the server is ready: one line on standard error, and the address in `ready_file` if given."""
    if ready_file:
        # Written whole then renamed, so a watcher never reads half an address.
        tmp = f"{ready_file}.tmp{os.getpid()}"
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(f"{address}\n")
        os.replace(tmp, ready_file)
    print(f"drlaas-envserver listening on {address}", file=sys.stderr, flush=True)


def _peer_name(address: Address, peer: object, number: int) -> str:
    if address.kind == "tcp" and isinstance(peer, tuple):
        return f"connection {number} from {peer[0]}:{peer[1]}"
    return f"connection {number}"


def serve(listener: socket.socket, address: Address, once: bool = False) -> None:
    """Accepts connections, each served by its own thread (each is its own vector), until stopped.

    With `once`, serves the first connection in this thread and returns when it closes: a trainer that
    starts a server per run has it exit with the run.
    """
    number = 0
    while True:
        conn, peer = listener.accept()
        number += 1
        if address.kind == "tcp":
            # Replies are single writes, but requests are small and latency is all that matters.
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        name = _peer_name(address, peer, number)
        if once:
            serve_connection(conn, name)
            return
        threading.Thread(target=serve_connection, args=(conn, name), name=name, daemon=True).start()


def cleanup(listener: socket.socket, address: Address) -> None:
    """Closes the listener and removes its socket file, so the next server finds the path free."""
    listener.close()
    if address.kind == "unix":
        with contextlib.suppress(FileNotFoundError):
            os.unlink(address.path)
