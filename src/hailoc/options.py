"""Options of one `hailoc build` invocation, checked when they are read."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from hailoc.engines import EngineSpec
from hailoc.errors import HailocError

DEFAULT_STAGE_TIMEOUT = 6 * 3600.0


@dataclass(frozen=True)
class BuildOptions:
    """What the user asked for beyond the manifest."""

    force: bool = False
    from_stage: str | None = None
    stage_timeout: float = DEFAULT_STAGE_TIMEOUT
    gpus: bool | None = None  # None: use GPUs when the engine has the NVIDIA runtime
    suite_image: str | None = None
    engines: tuple[EngineSpec, ...] = ()  # empty: this machine's default Docker engine
    per_gpu: int = 1  # builds one GPU may hold at once
    skip_gate: bool = False
    auto_target: float | None = None
    auto_budget: int | None = None
    wait: bool = True  # wait for another build of the same target instead of exiting 3
    accept_best: bool = False  # auto: build the best plan found even below the target
    # A 16-bit wall in the DFC: narrow the 16-bit set and go on, or end the build (None: the
    # manifest's defaults.walls).
    on_wall: Literal["recover", "fail"] | None = None

    def __post_init__(self) -> None:
        if not (math.isfinite(self.stage_timeout) and self.stage_timeout > 0):
            raise HailocError(
                f"stage timeout {self.stage_timeout} is not a positive number of seconds",
                where="--stage-timeout",
                fix="give seconds > 0, e.g. 3600",
            )
        if self.auto_target is not None and not (
            math.isfinite(self.auto_target) and 0 < self.auto_target <= 1
        ):
            raise HailocError(
                f"target {self.auto_target} is not an agreement in (0, 1]",
                where="--target",
                fix="give a cosine agreement such as 0.98",
            )
        if self.auto_budget is not None and self.auto_budget < 1:
            raise HailocError(
                f"budget {self.auto_budget} < 1", where="--budget", fix="give a layer count >= 1"
            )

    def rerun(self, stage: str, stages: tuple[str, ...]) -> bool:
        """True when `stage` (one of the backend's `stages`) must run even if it is cached."""
        if self.force:
            return True
        if self.from_stage is None or self.from_stage not in stages:
            return False
        return stages.index(stage) >= stages.index(self.from_stage)
