"""`hailoc report`: compare every evaluated build under hef/ (models x precisions)."""

from __future__ import annotations

from pathlib import Path

import typer

from hailoc.cli.output import warning_line
from hailoc.cli.state import state
from hailoc.cli.tables import accuracy_table
from hailoc.eval.build_report import collect_records, is_hailoc_report, write_batch_report
from hailoc.owned_files import check_replaceable


def report(
    ctx: typer.Context,
    output: Path | None = typer.Option(
        None, "--output", "-o", help="Folder for report.md and comparison.png (default: hef/)."
    ),
    force: bool = typer.Option(
        False, "--force", help="Replace a report.md / comparison.png hailoc did not write."
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
    ours = is_hailoc_report(out / "report.md")
    for name in ("report.md", "comparison.png"):
        # A previous `hailoc report` is replaced; a user's files of those names are not.
        check_replaceable(out / name, what="--output", force_file=force or ours)
    rows = write_batch_report(collected.records, out)
    table = accuracy_table(collected.records)
    if table is None or not rows:
        st.err.print(f"no evaluated builds under {manifest.hef_dir}; run `hailoc build` first")
        raise typer.Exit(1)
    st.out.print(table)
    st.out.print(f"report: {out / 'report.md'}, {out / 'comparison.png'}")
