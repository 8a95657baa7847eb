"""Which optimization level a stage runs, and why: the DFC's own rule, unless the user chose.

Public evidence (docs/dfc-behaviour.md): left at its default, the DFC uses level 2, but drops
to 0 without a GPU and with fewer than 1024 calibration entries (to 1 with a GPU); level 2 on
the CPU runs AdaRound / fine-tuning for hours. hailoc applies the same rule itself, so the
.alls says what will run and the record says why.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

RECOMMENDED_ENTRIES = 1024


@dataclass(frozen=True)
class Flavor:
    """The level written into the model script (None: leave the DFC's default) and why."""

    level: int | None
    reason: str


def choose_flavor(setting: int | Literal["auto"], *, gpu: bool, entries: int) -> Flavor:
    """The optimization level for a stage with or without a GPU and `entries` calibration faces."""
    if setting != "auto":
        return Flavor(setting, "set in the manifest (optimization.optimization_level)")
    if not gpu:
        return Flavor(0, "auto: no GPU in the stage container (level 2 would run for hours)")
    if entries < RECOMMENDED_ENTRIES:
        return Flavor(1, f"auto: {entries} calibration entries < {RECOMMENDED_ENTRIES}")
    return Flavor(None, "auto: GPU and >= 1024 entries, the DFC's default level 2")


# The DFC's log lines for an implicit level (third-party logs, docs/dfc-behaviour.md row 5).
_APPLIED = re.compile(
    r"(?:Using default optimization level of|Reducing optimization level to) (\d+)"
)


def applied_level(flavor: Flavor, logs: list[Path]) -> int | None:
    """The level the DFC ran: the one the .alls set, else the last one its logs announce."""
    if flavor.level is not None:
        return flavor.level
    found: int | None = None
    for path in logs:
        try:
            text = path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            continue
        for match in _APPLIED.finditer(text):
            found = int(match.group(1))
    return found
