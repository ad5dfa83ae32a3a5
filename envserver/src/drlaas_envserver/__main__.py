"""The `drlaas-envserver` command (also `python -m drlaas_envserver`)."""

from __future__ import annotations

import argparse
import functools
import importlib
import os
import signal
import sys
from pathlib import Path
from types import FrameType

from . import SERVER_NAME
from .install import InstallError, install
from .logs import log
from .server import AddressError, announce, cleanup, listen, parse_address, serve, withdraw
from .workers import Listener, fork_servers

# The most of pip's error an ERROR frame carries: its start says which package, its end what failed;
# the log has all of it.
MAX_PACKAGE_ERROR = 2000


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="drlaas-envserver",
        description="Serves Gymnasium and PettingZoo environments to the drlaas trainer "
        "(the environment protocol, docs/env-protocol.md).",
    )
    parser.add_argument(
        "--listen",
        required=True,
        action="append",
        metavar="ADDRESS",
        help="unix:PATH, or tcp:HOST:PORT on a loopback host (port 0: any free port, shown in the ready line); "
        "given several times, a server process per address, so that environments step in parallel",
    )
    parser.add_argument("--once", action="store_true", help="exit after the first connection closes")
    parser.add_argument(
        "--allow-remote",
        action="store_true",
        help="allow a TCP host other than loopback (anyone who can connect runs the environment's code)",
    )
    parser.add_argument("--ready-file", metavar="PATH", help="write the addresses there, one a line, once listening")
    parser.add_argument(
        "--package",
        type=Path,
        metavar="PATH",
        help="install a requester's package first: a wheel (*.whl), or a folder of wheels; if it does not "
        "install, the server still listens and answers every HELLO with an ERROR that says why",
    )
    parser.add_argument(
        "--package-target",
        type=Path,
        metavar="DIR",
        help="the folder to install --package into (replaced if it exists; put first on the path)",
    )
    parser.add_argument("--version", action="version", version=SERVER_NAME)
    return parser


def _stop(signum: int, _frame: FrameType | None) -> None:
    # Unwinds the accept loop through its finally, which removes the socket file.
    raise SystemExit(128 + signum)


def _shorten(text: str, limit: int = MAX_PACKAGE_ERROR) -> str:
    if len(text) <= limit:
        return text
    head = limit // 4
    return f"{text[:head]} [...] {text[len(text) - (limit - head) :]}"


def _install(package: Path, target: Path) -> tuple[str, str] | None:
    """Installs `package` and puts `target` first on the path (before any fork, so that every server
    imports from it, and before numpy or gymnasium is imported, as `PYTHONPATH` would); returns the
    HELLO refusal (field, message) if it did not install."""
    try:
        install(package, target)
    except InstallError as e:
        log(str(e))
        return ("package", _shorten(str(e)))
    sys.path.insert(0, os.path.abspath(target))
    importlib.invalidate_caches()
    log(f"installed {package} into {target}")
    return None


def _bind_all(parser: argparse.ArgumentParser, args: argparse.Namespace) -> list[Listener]:
    """Every listener, bound and listening, or none (the command fails naming the address)."""
    listeners: list[Listener] = []
    try:
        for text in args.listen:
            listeners.append(listen(parse_address(text, allow_remote=args.allow_remote)))
    except AddressError as e:
        for listener, address in listeners:
            cleanup(listener, address)
        parser.error(str(e))
    return listeners


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.once and len(args.listen) > 1:
        parser.error("--once serves a single connection, so it takes a single --listen")
    if args.package is not None and args.package_target is None:
        parser.error("--package needs --package-target DIR, the folder to install it into")
    if args.package_target is not None and args.package is None:
        parser.error("--package-target is the folder of --package, which is not given")
    withdraw(args.ready_file)
    refusal = _install(args.package, args.package_target) if args.package is not None else None
    listeners = _bind_all(parser, args)
    signal.signal(signal.SIGTERM, _stop)
    listener, address = listeners[0]
    try:
        children = fork_servers(listeners, functools.partial(serve, refusal=refusal))
        ready = functools.partial(announce, [a for _, a in listeners], args.ready_file)
        try:
            serve(listener, address, once=args.once, refusal=refusal, ready=ready)
        finally:
            children.stop()
    except KeyboardInterrupt:
        return 130
    finally:
        cleanup(listener, address)
    return 0


if __name__ == "__main__":
    sys.exit(main())
