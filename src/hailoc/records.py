"""Per-model build records and batch summaries, written atomically beside the outputs."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from hailoc import __version__
from hailoc.fsutil import atomic_write_text

Status = Literal["ok", "failed", "skipped"]


@dataclass
class StageRecord:
    """One stage of a build: what ran (or came from cache) and how it ended."""

    name: str
    status: Status
    seconds: float = 0.0  # wall time on the host, container start and stop included
    worker_seconds: float | None = None  # what the worker itself spent in the DFC
    cache_hit: bool = False
    cache_key: str = ""
    peak_rss_mb: float | None = None
    error_type: str | None = None
    message: str | None = None
    traceback_tail: list[str] = field(default_factory=list)


@dataclass
class BuildRecord:
    """Everything needed to trust, reproduce or debug one model build."""

    model: str
    backend: str
    hw_arch: str
    precision: str
    status: Status = "failed"
    failure_class: str | None = None
    message: str | None = None
    hint: str | None = None
    inputs: dict[str, Any] = field(default_factory=dict)
    stages: list[StageRecord] = field(default_factory=list)
    artifacts: dict[str, dict[str, str]] = field(default_factory=dict)
    accuracy: dict[str, Any] | None = None
    plan: dict[str, Any] | None = None
    log_tail: list[str] = field(default_factory=list)
    hailoc_version: str = __version__
    started_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat())
    seconds: float = 0.0

    def fail(self, failure_class: str, message: str, hint: str) -> None:
        """Mark the build failed with a class, a one-line message and a remedy hint."""
        self.status = "failed"
        self.failure_class = failure_class
        self.message = message
        self.hint = hint

    @property
    def all_cached(self) -> bool:
        """True when every stage that ran came from the cache."""
        return bool(self.stages) and all(s.cache_hit for s in self.stages)

    def to_json(self) -> str:
        """Stable, human-readable JSON."""
        return json.dumps(asdict(self), indent=2, sort_keys=False) + "\n"

    def write(self, path: Path) -> None:
        """Write record.json atomically."""
        atomic_write_text(path, self.to_json())


def read_record(path: Path) -> dict[str, Any]:
    """Load a record.json as a plain dict (records from older versions stay readable)."""
    data = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        raise ValueError(f"{path} is not a build record")
    return data


def write_summary(hef_dir: Path, records: list[BuildRecord]) -> tuple[Path, Path]:
    """Write hef/summary.json and hef/summary.md for a batch."""
    rows = [
        {
            "model": r.model,
            "backend": r.backend,
            "hw_arch": r.hw_arch,
            "precision": r.precision,
            "status": r.status,
            "failure_class": r.failure_class,
            "message": r.message,
            "hint": r.hint,
            "seconds": round(r.seconds, 2),
            "cached": r.all_cached,
        }
        for r in records
    ]
    failed = sum(r.status == "failed" for r in records)
    summary = {
        "hailoc_version": __version__,
        "models": len(records),
        "failed": failed,
        "results": rows,
    }
    json_path, md_path = hef_dir / "summary.json", hef_dir / "summary.md"
    atomic_write_text(json_path, json.dumps(summary, indent=2) + "\n")
    lines = [
        "# hailoc build summary",
        "",
        f"{len(records) - failed} of {len(records)} builds succeeded.",
        "",
        "| model | hw_arch | precision | backend | status | class | seconds | hint |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        lines.append(
            f"| {row['model']} | {row['hw_arch']} | {row['precision']} | {row['backend']} | "
            f"{row['status']}{' (cached)' if row['cached'] else ''} | "
            f"{row['failure_class'] or ''} | {row['seconds']} | {row['hint'] or ''} |"
        )
    atomic_write_text(md_path, "\n".join(lines) + "\n")
    return json_path, md_path
