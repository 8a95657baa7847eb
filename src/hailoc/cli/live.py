"""A rich live view of builds: one row per target, plus the tail of the running log."""

from __future__ import annotations

import threading
from collections import deque
from types import TracebackType

from rich.console import Console, Group
from rich.live import Live
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from hailoc.records import BuildRecord
from hailoc.targets import BuildTarget

STYLE = {"ok": "green", "failed": "red", "running": "yellow", "queued": "dim"}


class LiveReporter:
    """Reporter that draws progress with rich.live; safe to call from worker threads."""

    def __init__(self, console: Console, targets: list[BuildTarget], tail: int = 8) -> None:
        self.console = console
        self.rows: dict[BuildTarget, list[str]] = {t: ["queued", ""] for t in targets}
        self.tail: deque[str] = deque(maxlen=tail)
        self.lock = threading.Lock()
        self.live = Live(self._render(), console=console, refresh_per_second=4, transient=False)

    def __enter__(self) -> LiveReporter:
        self.live.__enter__()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        with self.lock:
            # Whatever ended the view, no row stays "running" or "queued".
            for target, row in self.rows.items():
                if row[0] in ("running", "queued"):
                    self.rows[target] = ["stopped", "interrupted" if exc else "not run"]
            self.live.update(self._render(show_log=False))
        self.live.__exit__(kind, exc, tb)

    def _render(self, show_log: bool = True) -> Group:
        table = Table(box=None, pad_edge=False)
        for column in ("model", "hw_arch", "precision", "backend", "status", "detail"):
            table.add_column(column, no_wrap=column != "detail")
        for target, (status, detail) in self.rows.items():
            table.add_row(
                target.model,
                target.hw_arch,
                target.precision,
                target.backend,
                Text(status, style=STYLE.get(status, "")),
                Text(detail),  # DFC messages hold brackets: never markup
            )
        parts: list[Table | Panel] = [table]
        if show_log and self.tail:
            parts.append(Panel(Text("\n".join(self.tail)), title="log", border_style="dim"))
        return Group(*parts)

    def _refresh(self) -> None:
        self.live.update(self._render())

    def stage(self, target: BuildTarget, stage: str, cached: bool) -> None:
        """Show which stage a target is in."""
        with self.lock:
            self.rows[target] = ["running", f"{stage} (cached)" if cached else stage]
            self._refresh()

    def line(self, target: BuildTarget, text: str) -> None:
        """Append a log line to the tail panel."""
        with self.lock:
            self.tail.append(f"[{target.model}] {text}"[:200])
            self._refresh()

    def done(self, record: BuildRecord) -> None:
        """Mark a target finished."""
        target = BuildTarget(record.model, record.hw_arch, record.precision, record.backend)
        with self.lock:
            detail = "all stages cached" if record.all_cached else f"{record.seconds:.1f} s"
            if record.status != "ok":
                detail = f"{record.failure_class}: {record.hint}"
            self.rows[target] = [record.status, detail]
            self._refresh()
