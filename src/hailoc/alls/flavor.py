"""Which optimization level a stage runs, and why: the DFC's own rule, unless the user chose.

Public evidence (docs/dfc-behaviour.md): left at its default, the DFC uses level 2, but drops
to 0 without a GPU and with fewer than 1024 calibration entries (to 1 with a GPU); level 2 on
the CPU runs AdaRound / fine-tuning for hours. hailoc applies the same rule itself, so the
.alls says what will run and the record says why.
"""

from __future__ import annotations

from dataclasses import dataclass
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
