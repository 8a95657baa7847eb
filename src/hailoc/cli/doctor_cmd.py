"""`hailoc doctor`: check, before an overnight batch, what a real Hailo build needs."""

from __future__ import annotations

import typer
from rich.table import Table

from hailoc.cli.option_checks import chosen_engines
from hailoc.cli.state import state

STYLE = {"ok": "green", "warning": "yellow", "fail": "red"}


def doctor(
    ctx: typer.Context,
    engine: list[str] = typer.Option(
        None,
        "--engine",
        metavar="NAME",
        help="Check this engine of defaults.engines (repeatable; default: all).",
    ),
    docker_host: list[str] = typer.Option(
        None,
        "--docker-host",
        metavar="URL",
        help="Check the Docker engine at this URL (repeatable).",
    ),
    docker_context: list[str] = typer.Option(
        None,
        "--docker-context",
        metavar="NAME",
        help="Check this named Docker context (repeatable).",
    ),
) -> None:
    """Check each engine (defaults.engines, else this machine's Docker): each suite image
    (DFC and HailoRT versions, the archs it builds, the worker's Python), /dev/shm and GPUs in
    a container; and free disk and write access under hef/ and .hailoc/. Prints one table;
    exits 1 when a check fails (a missing GPU is a warning), with the fix beside each failing
    row.
    """
    from hailoc.backends.hailo.doctor import diagnose

    st = state(ctx)
    manifest = st.manifest()
    checks = diagnose(
        manifest, chosen_engines(manifest, engine or [], docker_host or [], docker_context or [])
    )
    table = Table(title="hailoc doctor")
    for column in ("check", "result", "detail", "fix"):
        table.add_column(column, overflow="fold")
    for check in checks:
        table.add_row(
            check.name, f"[{STYLE[check.level]}]{check.level}[/]", check.detail, check.fix
        )
    st.out.print(table)
    if any(c.level == "fail" for c in checks):
        raise typer.Exit(1)
