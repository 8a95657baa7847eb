"""Options of one `hailoc build` invocation."""

from __future__ import annotations

from dataclasses import dataclass

STAGES = ("parse", "optimize", "compile")


@dataclass(frozen=True)
class BuildOptions:
    """What the user asked for beyond the manifest."""

    force: bool = False
    from_stage: str | None = None
    stage_timeout: float = 6 * 3600.0
    gpus: bool | None = None  # None: use GPUs when the engine has the NVIDIA runtime
    suite_image: str | None = None
    docker_host: str | None = None
    docker_context: str | None = None
    skip_gate: bool = False
    auto_target: float | None = None
    auto_budget: int | None = None

    def rerun(self, stage: str) -> bool:
        """True when `stage` must run even if its cache entry exists."""
        if self.force:
            return True
        if self.from_stage is None:
            return False
        return STAGES.index(stage) >= STAGES.index(self.from_stage)
