"""Checks of command-line values that typer's types cannot express: one line, exit 2."""

from __future__ import annotations

import math
from urllib.parse import urlsplit

from hailoc.errors import HailocError

DOCKER_SCHEMES = ("unix", "tcp", "ssh", "npipe")


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
    if url is None:
        return None
    fix = "give unix:///path/to/docker.sock, tcp://host:2376 or ssh://user@host"
    try:
        parts = urlsplit(url)
        _ = parts.port  # reading the port is what validates it (ValueError when malformed)
    except ValueError as exc:
        raise HailocError(f"cannot read {url!r} ({exc})", where="--docker-host", fix=fix) from None
    if parts.scheme not in DOCKER_SCHEMES:
        raise HailocError(
            f"unsupported scheme {parts.scheme or '(none)'!r} in {url!r}",
            where="--docker-host",
            fix=fix,
        )
    if parts.scheme in ("unix", "npipe") and not parts.path:
        raise HailocError(f"no socket path in {url!r}", where="--docker-host", fix=fix)
    if parts.scheme in ("tcp", "ssh") and not parts.hostname:
        raise HailocError(f"no host in {url!r}", where="--docker-host", fix=fix)
    return url


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
