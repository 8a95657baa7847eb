"""`hailoc report`: compare every evaluated build under hef/ (models x precisions)."""

from __future__ import annotations

from pathlib import Path

import typer

from hailoc.cli.output import warning_line
from hailoc.cli.state import state
from hailoc.cli.tables import accuracy_table
from hailoc.eval.report import collect_records, write_batch_report
from hailoc.fsutil import check_replaceable


def report(
    ctx: typer.Context,
    output: Path | None = typer.Option(
        None, "--output", "-o", help="Folder for report.md and comparison.png (default: hef/)."
    ),
) -> None:
    """Render the batch comparison: agreement with fp32 and match rate per face size.

    Reads every hef/<model>/<target>/<precision>/record.json that has accuracy numbers,
    prints the table and writes report.md and comparison.png.
    """
    st = state(ctx)
    manifest = st.manifest()
    out = output or manifest.hef_dir
    collected = collect_records(manifest.hef_dir)
    for problem in collected.unreadable:
        warning_line(st.err, f"skipped {problem}")
    if output is not None:
        check_replaceable(out / "report.md", what="--output", force_file=True)
    rows = write_batch_report(collected.records, out)
    table = accuracy_table(collected.records)
    if table is None or not rows:
        st.err.print(f"no evaluated builds under {manifest.hef_dir}; run `hailoc build` first")
        raise typer.Exit(1)
    st.out.print(table)
    st.out.print(f"report: {out / 'report.md'}, {out / 'comparison.png'}")
