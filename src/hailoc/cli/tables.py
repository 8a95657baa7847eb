"""Rich tables shared by `hailoc build` and `hailoc report`: narrow enough for 80 columns."""

from __future__ import annotations

from rich import box
from rich.console import Group
from rich.table import Table

from hailoc.eval.build_report import precision_rank
from hailoc.records import BuildRecord


def _num(value: float | None, digits: int) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _label(record: BuildRecord) -> str:
    if record.backend == "onnxruntime":
        return record.precision
    return f"{record.precision} {record.hw_arch}"


def accuracy_table(records: list[BuildRecord]) -> Group | None:
    """Per model: a gate/agreement table, then one row per face size with builds side by side."""
    rows = [r for r in records if r.accuracy is not None]
    if not rows:
        return None
    parts: list[Table] = []
    for model in sorted({r.model for r in rows}):
        builds = sorted(
            (r for r in rows if r.model == model),
            key=lambda r: (r.backend, r.hw_arch, precision_rank(r.precision)),
        )
        summary = Table(title=f"{model}: agreement with fp32 on held-out faces", box=box.SIMPLE)
        for column in ("build", "backend", "gate", "mean", "worst", "p5"):
            summary.add_column(
                column, justify="right" if column in ("mean", "worst", "p5") else "left"
            )
        for r in builds:
            acc = r.accuracy
            assert acc is not None
            verdict = "[green]pass[/]" if acc.gate.passed else f"[red]{r.failure_class}[/]"
            summary.add_row(
                _label(r),
                r.backend,
                verdict,
                _num(acc.agreement.mean, 4),
                _num(acc.agreement.min, 4),
                _num(acc.agreement.p5, 4),
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
        sizes = sorted({s for r in builds if r.accuracy for s in r.accuracy.sizes}, reverse=True)
        for size in sizes:
            found = [r.accuracy.at_size(size) for r in builds if r.accuracy]
            fp_match = next((row.match_rate_fp32 for row in found if row is not None), None)
            cells = [
                "-" if row is None else _cell(row.agreement_mean, row.match_rate_candidate)
                for row in found
            ]
            sweep.add_row(str(size), _num(fp_match, 2), *cells)
        parts.append(sweep)
    return Group(*parts)


def _cell(agreement: float, match: float | None) -> str:
    return f"{agreement:.3f}" + (f" / {match:.2f}" if match is not None else "")
