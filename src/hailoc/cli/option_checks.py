"""Checks of command-line values that typer's types cannot express: one line, exit 2."""

from __future__ import annotations

import math

from hailoc.engines import EngineSpec, check_docker_url
from hailoc.errors import HailocError
from hailoc.manifest import LoadedManifest
from hailoc.manifest.schema import ALIGNED_SIZE


def finite(
    option: str, value: float, *, low: float | None = None, high: float | None = None
) -> float:
    """`value` when it is a finite number within [low, high], else a one-line error."""
    bounds = (
        f" in [{low:g}, {high:g}]"
        if low is not None and high is not None
        else (f" >= {low:g}" if low is not None else (f" <= {high:g}" if high is not None else ""))
    )
    if (
        not math.isfinite(value)
        or (low is not None and value < low)
        or (high is not None and value > high)
    ):
        raise HailocError(
            f"{value!r} is not a finite number{bounds}",
            where=option,
            fix=f"give a number{bounds}",
        )
    return value


def docker_host_option(url: str | None) -> str | None:
    """A Docker engine URL with a known scheme and a host or socket path, else an error."""
    return None if url is None else check_docker_url(url, "--docker-host")


def name_option(option: str, value: str) -> str:
    """A name that becomes a folder (calibration set, model): safe characters only."""
    from hailoc.manifest.schema import SAFE_NAME, is_safe_name

    if not is_safe_name(value):
        raise HailocError(
            f"{value!r} cannot be a name",
            where=option,
            fix=f"use letters, digits, '_', '.', '-' ({SAFE_NAME})",
        )
    return value


def chosen_engines(
    manifest: LoadedManifest, names: list[str], hosts: list[str], contexts: list[str]
) -> tuple[EngineSpec, ...]:
    """The engines the command line names, else defaults.engines (empty: the default one)."""
    listed = {e.name: e.spec() for e in manifest.data.defaults.engines}
    specs: list[EngineSpec] = []
    for name in names:
        if name not in listed:
            known = ", ".join(listed) or "none (add defaults.engines to models.yaml)"
            raise HailocError(
                f"no engine named {name!r}",
                where="--engine",
                fix=f"use one of: {known}, or pass --docker-host URL",
            )
        specs.append(listed[name])
    specs += [EngineSpec(url, host=docker_host_option(url)) for url in hosts]
    specs += [
        EngineSpec(f"context:{c}", context=name_option("--docker-context", c)) for c in contexts
    ]
    if not (names or hosts or contexts):
        specs = list(listed.values())
    return tuple({s.name: s for s in specs}.values())


def face_sizes_option(text: str) -> tuple[int, ...]:
    """--face-sizes: distinct integers in [8, 112], largest first."""
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        values = []
    if not values or any(not 8 <= v <= ALIGNED_SIZE for v in values):
        raise HailocError(
            f"bad face sizes {text!r}",
            where="--face-sizes",
            fix=f"give sizes in px between 8 and {ALIGNED_SIZE}, e.g. 112,40,24",
        )
    return tuple(sorted(set(values), reverse=True))
