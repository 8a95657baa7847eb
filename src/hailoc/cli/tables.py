"""Rich tables shared by `hailoc build` and `hailoc report`."""

from __future__ import annotations

from typing import Any

from rich import box
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


def accuracy_table(records: list[BuildRecord] | list[dict[str, Any]]) -> Table | None:
    """Builds side by side: agreement with fp32, then per face size agreement / match rate."""
    rows = accuracy_rows(records)
    if not rows:
        return None
    sizes = sorted({s["size"] for r in rows for s in r["accuracy"]["sweep"]}, reverse=True)
    models = sorted({r["model"] for r in rows})
    single = len(models) == 1
    table = Table(
        title=(f"{models[0]}: " if single else "")
        + "accuracy vs fp32 on eval faces; per face size: agreement/match rate",
        pad_edge=False,
        caption="match rate: genuine pairs accepted at fp32's threshold; fp32 rows = reference",
        box=box.SIMPLE_HEAD,
    )
    for column in (
        ("build", "gate", "mean", "worst")
        if single
        else ("model", "build", "gate", "mean", "worst")
    ):
        table.add_column(
            column, justify="right" if column in ("mean", "worst") else "left", no_wrap=True
        )
    for size in sizes:
        table.add_column(f"{size}px", justify="right", no_wrap=True)
    seen_reference: set[str] = set()
    for r in rows:
        acc = r["accuracy"]
        by_size = {s["size"]: s for s in acc["sweep"]}
        if r["model"] not in seen_reference:
            seen_reference.add(r["model"])
            table.add_row(
                *([] if single else [r["model"]]),
                "fp32",
                "",
                "1.0000",
                "1.0000",
                *[
                    _cell(1.0, by_size[s]["match_rate_fp32"]) if s in by_size else "-"
                    for s in sizes
                ],
                style="dim",
            )
        gate = acc.get("gate", {})
        verdict = "[green]pass[/]" if gate.get("passed") else f"[red]{r.get('failure_class')}[/]"
        table.add_row(
            *([] if single else [r["model"]]),
            r["precision"] if r["backend"] == "onnxruntime" else f"{r['precision']} (hailo)",
            verdict,
            _num(acc["agreement"]["mean"], 4),
            _num(acc["agreement"]["min"], 4),
            *[
                _cell(by_size[s]["agreement_mean"], by_size[s]["match_rate_candidate"])
                if s in by_size
                else "-"
                for s in sizes
            ],
        )
    return table


def _cell(agreement: float, match: float | None) -> str:
    return f"{agreement:.3f}" + (f"/{match:.2f}" if match is not None else "")
