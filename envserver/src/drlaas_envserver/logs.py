"""Log lines on standard error, the only place a server says what it did: the trainer shows a dead
server's last lines, and a sidecar's are its container's logs.

A module of its own, without numpy, so that the command can log before it imports numpy and forks
its servers (see server.py), and the parent of forked servers (`workers`) after.
"""

from __future__ import annotations

import sys
import threading
from typing import TextIO

# Connections log from their own threads; one line must not cut into another.
_log_lock = threading.Lock()


def log(line: str, stream: TextIO | None = None) -> None:
    """One line on standard error: the trainer shows a dead server's last lines."""
    with _log_lock:
        print(f"drlaas-envserver: {line}", file=stream or sys.stderr, flush=True)
