"""Docker engines a batch may build on, and the slot (engine, GPU) one build holds.

Pure data: the manifest, the command line and the batch dispatcher share these shapes; talking
to an engine is the Hailo backend's job.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Literal
from urllib.parse import urlsplit

from hailoc.errors import HailocError

DOCKER_SCHEMES = ("unix", "tcp", "ssh", "npipe")
LOCAL = "local"
# How a stage's files reach its container: bind mounts of host folders (the engine sees this
# host's filesystem) or the Docker API's archive upload/download (it does not).
FileMode = Literal["mount", "copy"]


def check_docker_url(url: str, where: str) -> str:
    """A Docker engine URL with a known scheme and a host or socket path, else an error."""
    fix = "give unix:///path/to/docker.sock, tcp://host:2376 or ssh://user@host"
    try:
        parts = urlsplit(url)
        _ = parts.port  # reading the port is what validates it (ValueError when malformed)
    except ValueError as exc:
        raise HailocError(f"cannot read {url!r} ({exc})", where=where, fix=fix) from None
    if parts.scheme not in DOCKER_SCHEMES:
        raise HailocError(
            f"unsupported scheme {parts.scheme or '(none)'!r} in {url!r}", where=where, fix=fix
        )
    if parts.scheme in ("unix", "npipe") and not parts.path:
        raise HailocError(f"no socket path in {url!r}", where=where, fix=fix)
    if parts.scheme in ("tcp", "ssh") and not parts.hostname:
        raise HailocError(f"no host in {url!r}", where=where, fix=fix)
    return url


@dataclass(frozen=True)
class EngineSpec:
    """One Docker engine: how to reach it, how files reach its containers, its GPUs."""

    name: str
    host: str | None = None  # DOCKER_HOST-style URL
    context: str | None = None  # a named Docker context
    files: FileMode | None = None  # None: mount for the local default engine, else copy
    gpus: tuple[int, ...] | None = None  # None: ask the engine
    jobs: int | None = None  # builds at once without GPUs (None: as many as --jobs allows)
    suite_images: tuple[tuple[str, str], ...] = ()  # (family, image) overriding the manifest's

    @property
    def is_default(self) -> bool:
        """The engine docker.from_env() reaches with no DOCKER_HOST: this machine's daemon."""
        return self.host is None and self.context is None and not os.environ.get("DOCKER_HOST")

    @property
    def file_mode(self) -> FileMode:
        """mount only where host paths are known to be the engine's paths."""
        if self.files is not None:
            return self.files
        return "mount" if self.is_default else "copy"

    def suite_image(self, family: str) -> str | None:
        """This engine's own suite image for an architecture family, if it names one."""
        return dict(self.suite_images).get(family)


@dataclass(frozen=True)
class Slot:
    """What a running build holds: an engine and, when GPUs are in use, one GPU index."""

    engine: str = LOCAL
    gpu: int | None = None
    # The engine this target's first attempt was lost with, when this is the second one.
    requeued_from: str | None = None


@dataclass(frozen=True)
class EngineSlots:
    """One engine as the dispatcher sees it: what it builds and how many builds it takes."""

    name: str
    archs: frozenset[str]  # the hw_archs its suites build
    gpus: tuple[int, ...] = ()  # GPU indices; empty: no GPUs in use
    per_gpu: int = 1  # builds one GPU may hold at once (--per-gpu)
    jobs: int | None = None  # without GPUs: builds at once (None: as many as --jobs)

    @property
    def capacity(self) -> int:
        """Builds it takes at once by default: one per GPU slot, else its cap, else one."""
        return len(self.gpus) * self.per_gpu if self.gpus else (self.jobs or 1)
