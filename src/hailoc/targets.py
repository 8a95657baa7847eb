"""Build targets and where their outputs live: hef/<model>/<hw_arch>/<precision>/."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from hailoc.errors import HailocError
from hailoc.manifest.schema import HW_ARCHS, PRECISIONS, is_safe_name

BACKENDS = ("onnxruntime", "hailo")
WALL_MODES = ("recover", "fail")


def check_choice(option: str, value: str, allowed: tuple[str, ...]) -> str:
    """`value` when it is one of `allowed`, else a one-line error naming the option."""
    if value not in allowed:
        raise HailocError(
            f"unknown value {value!r}",
            where=option,
            fix=f"use one of: {', '.join(allowed)}",
        )
    return value


def split_choices(option: str, text: str, allowed: tuple[str, ...]) -> list[str]:
    """A comma-separated option (`int8,int16-final`), each value checked, duplicates dropped."""
    values = [v.strip() for v in text.split(",") if v.strip()]
    if not values:
        raise HailocError(
            f"empty value {text!r}", where=option, fix=f"use one of: {', '.join(allowed)}"
        )
    return list(dict.fromkeys(check_choice(option, v, allowed) for v in values))


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


def output_dir(hef_dir: Path, target: BuildTarget) -> Path:
    """Folder holding the record, the log and the artifact of a build."""
    return hef_dir / target.model / target.arch_folder / target.precision
