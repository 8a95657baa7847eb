"""`hailoc doctor`: check, before an overnight batch, what a real Hailo build needs."""

from __future__ import annotations

import typer
from rich.table import Table

from hailoc.cli.state import state
from hailoc.cli.validate import docker_host_option

STYLE = {"ok": "green", "warning": "yellow", "fail": "red"}


def doctor(
    ctx: typer.Context,
    docker_host: str | None = typer.Option(
        None, "--docker-host", help="Docker engine URL: unix://, tcp:// or ssh://user@host."
    ),
    docker_context: str | None = typer.Option(
        None, "--docker-context", help="Named Docker context to use instead of the default."
    ),
) -> None:
    """Check the engine, each suite image (DFC and HailoRT versions, the archs it builds, the
    worker's Python), /dev/shm and GPUs in a container, and free disk and write access under
    hef/ and .hailoc/. Prints one table; exits 1 when a check fails (a missing GPU is a
    warning), with the fix beside each failing row.
    """
    from hailoc.backends.hailo.doctor import diagnose

    st = state(ctx)
    checks = diagnose(
        st.manifest(), docker_host=docker_host_option(docker_host), context=docker_context
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
