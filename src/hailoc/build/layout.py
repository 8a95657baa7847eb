"""Where a build's outputs live: hef/<model>/<hw_arch>/<precision>/."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class BuildTarget:
    """One (model, target, precision) combination to build."""

    model: str
    hw_arch: str
    precision: str
    backend: str

    @property
    def label(self) -> str:
        """Short human label."""
        return f"{self.model} {self.hw_arch} {self.precision} ({self.backend})"


def output_dir(hef_dir: Path, target: BuildTarget) -> Path:
    """Folder holding the record, the log and the artifact of a build."""
    if target.backend == "onnxruntime":
        # Emulation results never sit where a HEF would: their folder says what they are.
        return hef_dir / target.model / "onnxruntime" / target.precision
    return hef_dir / target.model / target.hw_arch / target.precision
