"""Build targets: (model, hw_arch, precision, backend), every field a checked name."""

from __future__ import annotations

from dataclasses import dataclass

from hailoc.choices import BACKENDS, check_choice
from hailoc.errors import HailocError
from hailoc.manifest.schema import HW_ARCHS, PRECISIONS, is_safe_name


@dataclass(frozen=True)
class BuildTarget:
    """One (model, target, precision, backend) combination; every field is a checked name."""

    model: str
    hw_arch: str
    precision: str
    backend: str

    def __post_init__(self) -> None:
        # These values become folder names: refuse anything but the known, path-free names.
        if not is_safe_name(self.model):
            raise HailocError(
                f"model name {self.model!r} may only use letters, digits, '_', '-' and '.'",
                where="model",
                fix="use a plain model name from `hailoc models list`",
            )
        check_choice("--hw-arch", self.hw_arch, HW_ARCHS)
        check_choice("--precision", self.precision, PRECISIONS)
        check_choice("--backend", self.backend, BACKENDS)

    @property
    def label(self) -> str:
        """Short human label."""
        return f"{self.model} {self.hw_arch} {self.precision} ({self.backend})"

    @property
    def arch_folder(self) -> str:
        """The target folder: the hw_arch, or `onnxruntime` for emulation results."""
        # Emulation results never sit where a HEF would: their folder says what they are.
        return "onnxruntime" if self.backend == "onnxruntime" else self.hw_arch
