"""Every command explains itself; --version works."""

from __future__ import annotations

import pytest

from hailoc import __version__

COMMANDS = [
    (),
    ("models",),
    ("models", "list"),
    ("models", "validate"),
    ("models", "import"),
    ("alls",),
    ("alls", "render"),
    ("plan",),
    ("build",),
    ("report",),
    ("eval",),
    ("calib",),
    ("calib", "build"),
    ("calib", "list"),
    ("calib", "show"),
    ("calib", "verify"),
    ("calib", "export"),
    ("gc",),
    ("doctor",),
    ("verify",),
]


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c) or "hailoc")
def test_help(cli, command: tuple[str, ...]) -> None:
    result = cli(*command, "--help")
    assert result.code == 0
    assert "Usage:" in result.out
    # The first line of the docstring or group help must be shown, not an empty help page.
    body = result.out.split("Usage:", 1)[1]
    assert len([line for line in body.splitlines() if line.strip()]) >= 3


def test_version(cli) -> None:
    result = cli("--version")
    assert result.code == 0
    assert result.out.strip() == f"hailoc {__version__}"


def test_verbose_is_a_flag_not_a_value(cli) -> None:
    """`-v` takes no value; --help must not suggest `-v <int>`."""
    result = cli("--help")
    line = next(line for line in result.out.splitlines() if "--verbose" in line)
    assert "<int>" not in line and "INTEGER" not in line
