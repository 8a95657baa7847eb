"""Values the command line and the manifest choose from, checked in one line each."""

from __future__ import annotations

from hailoc.errors import HailocError

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
