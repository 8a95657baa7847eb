"""hef/summary.json and summary.md: the batch, rewritten as each build finishes."""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import BaseModel, ConfigDict, ValidationError

from hailoc import __version__
from hailoc.errors import HailocError
from hailoc.owned_files import atomic_write_text
from hailoc.records.schema import BuildRecord, Status


class SummaryRow(BaseModel):
    """One target of a batch."""

    model_config = ConfigDict(extra="ignore")

    model: str
    backend: str
    hw_arch: str
    precision: str
    status: Status
    failure_class: str | None = None
    message: str | None = None
    hint: str | None = None
    seconds: float = 0.0
    cached: bool = False
    engine: str | None = None
    requeued_from: str | None = None
    recovery: str | None = None  # "recovered: N of M 16-bit layers kept after K attempts"

    @classmethod
    def of(cls, record: BuildRecord) -> SummaryRow:
        """The row for a finished build."""
        return cls(
            model=record.model,
            backend=record.backend,
            hw_arch=record.hw_arch,
            precision=record.precision,
            status=record.status,
            failure_class=record.failure_class,
            message=record.message,
            hint=record.hint,
            seconds=round(record.seconds, 2),
            cached=record.all_cached,
            engine=record.engine,
            requeued_from=record.requeued_from,
            recovery=record.recovery.line if record.recovery is not None else None,
        )


class Summary(BaseModel):
    """The whole hef/summary.json."""

    model_config = ConfigDict(extra="ignore")

    hailoc_version: str = __version__
    models: int = 0
    failed: int = 0
    results: list[SummaryRow] = []


def write_summary(hef_dir: Path, rows: list[SummaryRow]) -> tuple[Path, Path]:
    """Write hef/summary.json and hef/summary.md atomically."""
    failed = sum(r.status == "failed" for r in rows)
    summary = Summary(models=len(rows), failed=failed, results=rows)
    json_path, md_path = hef_dir / "summary.json", hef_dir / "summary.md"
    atomic_write_text(json_path, summary.model_dump_json(indent=2) + "\n")
    ok = sum(r.status == "ok" for r in rows)
    lines = [
        "# hailoc build summary",
        "",
        f"{ok} of {len(rows)} builds succeeded.",
        "",
        "| model | hw_arch | precision | backend | engine | status | class | seconds | hint |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        lines.append(
            f"| {row.model} | {row.hw_arch} | {row.precision} | {row.backend} | "
            f"{row.engine or '-'}{f' (lost on {row.requeued_from})' if row.requeued_from else ''}"
            f" | {row.status}{' (cached)' if row.cached else ''} | "
            f"{row.failure_class or ''} | {row.seconds} | "
            f"{'; '.join(x for x in (row.recovery, row.hint) if x)} |"
        )
    atomic_write_text(md_path, "\n".join(lines) + "\n")
    return json_path, md_path


def read_summary(hef_dir: Path) -> list[SummaryRow]:
    """The rows of the last batch, or a one-line error when there is none."""
    path = hef_dir / "summary.json"
    if not path.is_file():
        raise HailocError(
            f"no previous batch summary at {path}",
            where="--retry-failed",
            fix="run `hailoc build --all` first",
        )
    try:
        return Summary.model_validate(json.loads(path.read_text(encoding="utf-8"))).results
    except (OSError, ValueError, ValidationError) as exc:
        raise HailocError(
            f"unreadable batch summary ({str(exc).splitlines()[0][:120]})",
            where=str(path),
            fix="rerun the batch without --retry-failed",
        ) from None
