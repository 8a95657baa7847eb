"""`--precision auto`: per-layer sensitivity on the ORT emulation and a greedy 16-bit search."""

from hailoc.autoplan.search import (
    AutoResult,
    SearchProgress,
    save_outputs,
    search_plan,
    with_overrides,
)

__all__ = ["AutoResult", "SearchProgress", "save_outputs", "search_plan", "with_overrides"]
