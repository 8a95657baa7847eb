"""The table `hailoc build` prints when a batch ends, with walls recovered and failures."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from hailoc.cli.tables import accuracy_table
from hailoc.records import BuildRecord


def print_summary(out: Console, err: Console, records: list[BuildRecord], json_path: Path) -> None:
    """The batch's summary table, each recovered wall, each failure with its hint."""
    table = Table(title="build summary")
    # Which engine built what matters once there is more than one.
    engines = len({r.engine for r in records if r.engine}) > 1 or any(
        r.requeued_from for r in records
    )
    columns = ["model", "hw_arch", "precision", "backend", "status", "class", "seconds"]
    if engines:
        columns.insert(4, "engine")
    for column in columns:
        table.add_column(column, justify="right" if column == "seconds" else "left")
    for r in records:
        status = f"[green]{r.status}[/]" if r.status == "ok" else f"[red]{r.status}[/]"
        if r.all_cached:
            status += " (cached)"
        row = [r.model, r.hw_arch, r.precision, r.backend, status, r.failure_class or ""]
        if engines:
            lost = f" (lost on {r.requeued_from})" if r.requeued_from else ""
            row.insert(4, f"{r.engine or '-'}{lost}")
        table.add_row(*row, f"{r.seconds:.1f}")
    out.print()
    out.print(table)
    for r in records:
        # DFC messages hold brackets (`the exponent [[nan]] is not in range [ 7 22]`): never
        # let rich read them as markup.
        if r.recovery is not None:
            out.print(
                f"{escape(r.model)} ({r.hw_arch}, {r.precision}): {r.recovery.line} "
                f"({r.recovery.compiles} compiles; walls: {', '.join(r.recovery.walls)})",
                highlight=False,
            )
        if r.status != "ok":
            err.print(
                f"[red]{escape(r.model)}[/] ({r.precision}, {r.backend}): "
                f"{escape(r.message or '')}\n  [yellow]hint[/]: {escape(r.hint or '')}",
                highlight=False,
            )
    comparison = accuracy_table(records)
    if comparison is not None:
        out.print(comparison)
    out.print(f"summary: {_rel(json_path)}, {_rel(json_path.with_suffix('.md'))}")


def _rel(path: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)
