"""The `drlaas-envserver` command (also `python -m drlaas_envserver`)."""

from __future__ import annotations

import argparse
import signal
import sys
from types import FrameType

from . import SERVER_NAME
from .server import AddressError, announce, cleanup, listen, parse_address, serve


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="drlaas-envserver",
        description="Serves Gymnasium and PettingZoo environments to the drlaas trainer "
        "(the environment protocol, docs/env-protocol.md).",
    )
    parser.add_argument(
        "--listen",
        required=True,
        metavar="ADDRESS",
        help="unix:PATH, or tcp:HOST:PORT on a loopback host (port 0: any free port, shown in the ready line)",
    )
    parser.add_argument("--once", action="store_true", help="exit after the first connection closes")
    parser.add_argument(
        "--allow-remote",
        action="store_true",
        help="allow a TCP host other than loopback (anyone who can connect runs the environment's code)",
    )
    parser.add_argument("--ready-file", metavar="PATH", help="write the address there once listening")
    parser.add_argument("--version", action="version", version=SERVER_NAME)
    return parser


def _stop(signum: int, _frame: FrameType | None) -> None:
    # Unwinds the accept loop through its finally, which removes the socket file.
    raise SystemExit(128 + signum)


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        address = parse_address(args.listen, allow_remote=args.allow_remote)
        listener, address = listen(address)
    except AddressError as e:
        parser.error(str(e))
    signal.signal(signal.SIGTERM, _stop)
    try:
        announce(address, args.ready_file)
        serve(listener, address, once=args.once)
    except KeyboardInterrupt:
        return 130
    finally:
        cleanup(listener, address)
    return 0


if __name__ == "__main__":
    sys.exit(main())
