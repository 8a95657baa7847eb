"""How builds tell the outside world what they are doing (the CLI draws it; tests record it)."""

from __future__ import annotations

from typing import Protocol

from hailoc.records import BuildRecord
from hailoc.targets import BuildTarget


class Reporter(Protocol):
    """Receives progress events from the runner; called from worker threads."""

    def stage(self, target: BuildTarget, stage: str, cached: bool) -> None:
        """A stage starts (or is taken from the cache)."""

    def line(self, target: BuildTarget, text: str) -> None:
        """One line of a build's log."""

    def done(self, record: BuildRecord) -> None:
        """A build finished, successfully or not."""


class SilentReporter:
    """A reporter that ignores everything (library use, tests)."""

    def stage(self, target: BuildTarget, stage: str, cached: bool) -> None:
        """Ignore."""

    def line(self, target: BuildTarget, text: str) -> None:
        """Ignore."""

    def done(self, record: BuildRecord) -> None:
        """Ignore."""
