"""Small rendering helpers shared by CLI commands."""

from __future__ import annotations

from rich.console import Console
from rich.text import Text

from hailoc.errors import HailocError


def error_line(console: Console, exc: HailocError | str, prefix: str = "") -> None:
    """Print one red 'error:' line without interpreting markup in the message."""
    console.print(Text.assemble(("error: ", "bold red"), f"{prefix}{exc}"), soft_wrap=True)


def warning_line(console: Console, message: str) -> None:
    """Print one yellow 'warning:' line."""
    console.print(Text.assemble(("warning: ", "yellow"), message), soft_wrap=True)
