"""`hailoc gc`: remove what killed runs left behind (work folders, staging folders, containers)."""

from __future__ import annotations

import typer

from hailoc.cli.state import state
from hailoc.gc import collect


def gc(
    ctx: typer.Context,
    dry_run: bool = typer.Option(False, "--dry-run", "-n", help="List, remove nothing."),
    containers: bool = typer.Option(
        True,
        "--containers/--no-containers",
        help="Also remove hailoc stage containers whose hailoc process is gone (needs Docker).",
    ),
) -> None:
    """Clean up after runs that were killed (SIGKILL, power loss) before they could.

    Removes, only when the process that made them is gone: .hailoc/work/ stage folders,
    staging folders beside hef/ targets and calibration sets, and stage containers labelled by
    hailoc on this host. Locks need no cleaning: the kernel drops them with their process.
    Never touches anything hailoc did not create.
    """
    st = state(ctx)
    found = collect(st.manifest(), remove=not dry_run, containers=containers)
    for item in found.items:
        st.out.print(f"{'would remove' if dry_run else 'removed'} {item}", highlight=False)
    for note in found.notes:
        st.err.print(f"note: {note}", highlight=False)
    if not found.items:
        st.out.print("nothing to clean")
