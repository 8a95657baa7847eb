"""Rich tables shared by `hailoc build` and `hailoc report`: narrow enough for 80 columns."""

from __future__ import annotations

from typing import Any

from rich import box
from rich.console import Group
from rich.table import Table

from hailoc.records import BuildRecord


def _num(value: float | None, digits: int) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def accuracy_rows(records: list[BuildRecord] | list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Records (as dicts) that carry accuracy numbers."""
    rows = []
    for r in records:
        data = r if isinstance(r, dict) else r.__dict__
        if data.get("accuracy"):
            rows.append(data)
    return rows


def _label(row: dict[str, Any]) -> str:
    if row["backend"] == "onnxruntime":
        return str(row["precision"])
    return f"{row['precision']} {row['hw_arch']}"


def accuracy_table(records: list[BuildRecord] | list[dict[str, Any]]) -> Group | None:
    """Per model: a gate/agreement table, then one row per face size with builds side by side."""
    rows = accuracy_rows(records)
    if not rows:
        return None
    parts: list[Table] = []
    for model in sorted({r["model"] for r in rows}):
        builds = [r for r in rows if r["model"] == model]
        summary = Table(title=f"{model}: agreement with fp32 on held-out faces", box=box.SIMPLE)
        for column in ("build", "backend", "gate", "mean", "worst", "p5"):
            summary.add_column(
                column, justify="right" if column in ("mean", "worst", "p5") else "left"
            )
        for r in builds:
            acc = r["accuracy"]
            gate = acc.get("gate", {})
            verdict = (
                "[green]pass[/]" if gate.get("passed") else f"[red]{r.get('failure_class')}[/]"
            )
            summary.add_row(
                _label(r),
                r["backend"],
                verdict,
                _num(acc["agreement"]["mean"], 4),
                _num(acc["agreement"]["min"], 4),
                _num(acc["agreement"].get("p5"), 4),
            )
        parts.append(summary)
        sweep = Table(
            title=f"{model}: per face size, agreement / genuine match rate",
            caption="match rate: same face close vs far accepted at fp32's threshold",
            box=box.SIMPLE,
        )
        sweep.add_column("face px", justify="right")
        sweep.add_column("fp32 match", justify="right")
        for r in builds:
            sweep.add_column(_label(r), justify="right", no_wrap=True)
        by_build = [{s["size"]: s for s in r["accuracy"]["sweep"]} for r in builds]
        sizes = sorted({size for b in by_build for size in b}, reverse=True)
        for size in sizes:
            fp_match = next((b[size]["match_rate_fp32"] for b in by_build if size in b), None)
            cells = []
            for b in by_build:
                row = b.get(size)
                cells.append(
                    "-"
                    if row is None
                    else _cell(row["agreement_mean"], row["match_rate_candidate"])
                )
            sweep.add_row(str(size), _num(fp_match, 2), *cells)
        parts.append(sweep)
    return Group(*parts)


def _cell(agreement: float, match: float | None) -> str:
    return f"{agreement:.3f}" + (f" / {match:.2f}" if match is not None else "")
