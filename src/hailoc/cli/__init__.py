"""The `hailoc` command line: a thin layer over the library."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import typer
from rich.console import Console
from rich.logging import RichHandler
from rich.text import Text
from typer.exceptions import TyperException

from hailoc import __version__
from hailoc.cli import (
    alls_cmd,
    build_cmd,
    calib_cmd,
    doctor_cmd,
    eval_cmd,
    gc_cmd,
    models_cmd,
    plan_cmd,
    report_cmd,
    verify_cmd,
)
from hailoc.cli.signals import Signals
from hailoc.cli.state import CliState
from hailoc.errors import HailocError
from hailoc.manifest.loader import MANIFEST_ENV, find_manifest

app = typer.Typer(
    name="hailoc",
    help=(
        "Compile face-recognition ONNX models into Hailo NPU binaries (HEF) reproducibly, "
        "with mixed precision that keeps accuracy.\n\n"
        "Models are described in models.yaml; every path in it is relative to its folder."
    ),
    no_args_is_help=True,
    rich_markup_mode="rich",
    pretty_exceptions_show_locals=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
app.add_typer(models_cmd.app, name="models")
app.add_typer(alls_cmd.app, name="alls")
app.add_typer(calib_cmd.app, name="calib")
app.command("build")(build_cmd.build)
app.command("plan")(plan_cmd.plan)
app.command("report")(report_cmd.report)
app.command("eval")(eval_cmd.evaluate)
app.command("gc")(gc_cmd.gc)
app.command("doctor")(doctor_cmd.doctor)
app.command("verify")(verify_cmd.verify)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"hailoc {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    ctx: typer.Context,
    manifest: Path | None = typer.Option(
        None,
        "--manifest",
        "-m",
        envvar=MANIFEST_ENV,
        help="Path to models.yaml (default: ./models.yaml).",
        show_default=False,
    ),
    verbose: int = typer.Option(
        0,
        "--verbose",
        "-v",
        count=True,
        metavar="",
        help="More log output: -v info, -vv debug (a flag, repeated; takes no value).",
    ),
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """Global options shared by every subcommand."""
    level = logging.DEBUG if verbose > 1 else logging.INFO if verbose else logging.WARNING
    logging.basicConfig(
        level=level,
        format="%(message)s",
        handlers=[RichHandler(console=Console(stderr=True), show_time=False, show_path=False)],
        force=True,
    )
    ctx.obj = CliState(manifest_path=find_manifest(manifest))


def run(argv: list[str] | None = None) -> int:
    """Run the CLI and return its exit code; user errors print one line, no traceback."""
    err = Console(stderr=True, highlight=False, soft_wrap=True)
    signals = Signals()
    try:
        with signals.installed():
            result = app(args=argv, prog_name="hailoc", standalone_mode=False)
    except HailocError as exc:
        err.print(Text.assemble(("error: ", "bold red"), str(exc)))
        return exc.exit_code
    except (typer.Abort, KeyboardInterrupt):
        result = 130
    except typer.Exit as exc:
        return int(exc.exit_code)
    except TyperException as exc:
        # Usage errors (unknown option, bad value): typer's own message and exit code 2.
        show = getattr(exc, "show", None)
        if callable(show):
            show()
        else:
            err.print(f"error: {exc}")
        return int(getattr(exc, "exit_code", 2))
    except OSError as exc:
        # The output itself failed (disk full, read-only folder): one line, not a traceback.
        where = f"{exc.filename}: " if exc.filename else ""
        err.print(Text.assemble(("error: ", "bold red"), f"{where}{exc.strerror or exc}"))
        return 1
    if signals.received is not None:
        err.print(f"interrupted by signal {signals.received}; running builds recorded it")
        return 128 + signals.received
    if result == 130:
        err.print("interrupted")
    return result if isinstance(result, int) else 0


def main() -> None:
    """Console-script entry point."""
    sys.exit(run(sys.argv[1:]))
