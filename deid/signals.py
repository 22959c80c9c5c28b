"""SIGINT and SIGTERM end a command the same way: the step under way stops, the run cleans up, exit 130/143.

Ctrl-C raises KeyboardInterrupt; SIGTERM (what `kill`, systemd, Kubernetes and Airflow send first) raises
`Terminated`, a KeyboardInterrupt too, so that both take one path: the driver cancels the statement under way
on the server, the run drops its working copy (it may hold production values) and saves its record, and the
command exits 128 + the signal's number, as shells expect. A second signal while that clean-up runs is
ignored, so the clean-up finishes; SIGKILL still stops everything, and the next run drops what is left.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where Ctrl-C would be."""


@dataclass
class Received:
    signum: int | None = None

    @property
    def exit_code(self) -> int | None:
        return None if self.signum is None else 128 + self.signum


@contextmanager
def interruptible() -> Iterator[Received]:
    """Handle SIGINT and SIGTERM for the block (main thread only; elsewhere the defaults stay)."""
    received = Received()
    if threading.current_thread() is not threading.main_thread():
        yield received
        return

    def handler(signum, frame):
        if received.signum is not None:
            return  # the first one's clean-up is under way: let it finish
        received.signum = signum
        raise Terminated() if signum == signal.SIGTERM else KeyboardInterrupt()

    previous = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield received
    finally:
        for signum, old in previous.items():
            signal.signal(signum, old)
