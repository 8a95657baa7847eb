"""Signals as exceptions: SIGTERM and SIGINT end a command through its cleanup and records."""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

from hailoc.errors import Interrupted


class Signals:
    """SIGTERM and SIGINT raise Interrupted in the main thread (so cleanup and records run) and
    remember which signal came: typer turns the exception into a plain exit code."""

    def __init__(self) -> None:
        self.received: int | None = None

    def _handler(self, signum: int, frame: FrameType | None) -> None:
        self.received = signum
        raise Interrupted(signum)

    @contextmanager
    def installed(self) -> Iterator[None]:
        """Route the signals to `_handler` while the block runs (main thread only)."""
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        previous = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT)}
        for sig in previous:
            signal.signal(sig, self._handler)
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
