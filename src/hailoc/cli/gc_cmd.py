"""`hailoc gc`: remove what killed runs left behind (work folders, staging folders, containers)."""

from __future__ import annotations

import typer
from rich.markup import escape

from hailoc.cli.state import state
from hailoc.errors import HailocError
from hailoc.gc import collect, verify_cache


def gc(
    ctx: typer.Context,
    dry_run: bool = typer.Option(False, "--dry-run", "-n", help="List, remove nothing."),
    verify: bool = typer.Option(
        False,
        "--verify",
        help="Also hash every cache entry and blob against its index and report the damaged "
        "ones (exit 1 when any is).",
    ),
    fix: bool = typer.Option(
        False,
        "--fix",
        help="With --verify: move damaged entries aside to .hailoc/cache/damaged/ (the next "
        "build produces them again).",
    ),
    containers: bool = typer.Option(
        True,
        "--containers/--no-containers",
        help="Also remove hailoc stage containers whose hailoc process is gone (needs Docker).",
    ),
) -> None:
    """Clean up after runs that were killed (SIGKILL, power loss) before they could.

    Removes, only when the process that made them is gone: .hailoc/work/ stage folders,
    staging folders beside hef/ targets and calibration sets, and stage containers labelled by
    hailoc on this host; and cache entries earlier builds moved aside as damaged
    (.hailoc/cache/damaged/, each listed with why). Locks need no cleaning: the kernel drops
    them with their process. Never touches anything hailoc did not create.
    """
    st = state(ctx)
    manifest = st.manifest()
    if fix and not verify:
        raise HailocError("--fix needs --verify", where="--fix", fix="add --verify")
    # Collect first: entries --fix moves aside now stay in damaged/ for the user to inspect.
    found = collect(manifest, remove=not dry_run, containers=containers)
    for item in found.items:
        st.out.print(f"{'would remove' if dry_run else 'removed'} {item}", highlight=False)
    for note in found.notes:
        st.err.print(f"note: {note}", highlight=False)
    if not found.items:
        st.out.print("nothing to clean")
    if not verify:
        return
    checked = verify_cache(manifest, fix=fix and not dry_run)
    st.out.print(
        f"cache: {checked.entries} entries and {checked.blobs} blobs, "
        f"{checked.bytes / 1e6:.1f} MB, {len(checked.damaged)} damaged",
        highlight=False,
    )
    for line in checked.damaged:
        moved = "moved aside to .hailoc/cache/damaged/: " if fix and not dry_run else "damaged: "
        st.err.print(escape(moved + line), highlight=False)
    if checked.damaged and not (fix and not dry_run):
        raise typer.Exit(1)
