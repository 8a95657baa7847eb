"""Sessions with Docker engines: connect each engine, choose and probe the suite image per
hw_arch, build hailoc's DFC image on it, and find the GPUs it offers."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from hailoc.backends.hailo import docker_env
from hailoc.backends.hailo.docker_env import BackendUnavailable
from hailoc.backends.hailo.transfer import BlobStore
from hailoc.engines import LOCAL, EngineSpec
from hailoc.manifest import LoadedManifest
from hailoc.manifest.schema import family_of
from hailoc.options import BuildOptions

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Suite:
    """A suite image checked by a probe, and hailoc's DFC image built on it."""

    info: docker_env.SuiteInfo
    image: str  # hailoc-dfc:<hash>


@dataclass(frozen=True)
class HailoSession:
    """A connected engine with, per hw_arch, a suite that builds it and hailoc's DFC image."""

    client: Any
    suites: dict[str, Suite]  # hw_arch -> suite
    gpus: bool
    worker: str
    engine: str = LOCAL  # the engine's name (its URL when given as --docker-host), for records
    gpu_indices: tuple[int, ...] = ()  # GPUs the engine offers, for the batch's slot pool
    blobs: BlobStore | None = None  # set for engines without this host's files

    def suite(self, hw_arch: str) -> Suite:
        """The suite that builds `hw_arch` (checked when the session opened)."""
        return self.suites[hw_arch]


def open_sessions(
    manifest: LoadedManifest, options: BuildOptions, hw_archs: list[str]
) -> list[HailoSession]:
    """Connect every engine the options name and check the suite images the targets need;
    a hw_arch no engine builds is refused here, before any stage runs."""
    specs = options.engines or (EngineSpec(LOCAL),)
    archs = list(dict.fromkeys(hw_archs))
    opened = [_open_engine(manifest, options, spec, archs) for spec in specs]
    sessions = [session for session, _ in opened]
    for arch in archs:
        if not any(arch in s.suites for s in sessions):
            raise next(refused[arch] for _, refused in opened if arch in refused)
    for session, refused in opened:
        for arch, why in refused.items():
            log.warning("engine %s will not build %s: %s", session.engine, arch, why.message)
    return [s for s in sessions if s.suites]


def open_session(
    manifest: LoadedManifest, options: BuildOptions, hw_archs: list[str]
) -> HailoSession:
    """The first engine's session (commands that use one engine)."""
    return open_sessions(manifest, options, hw_archs)[0]


def _open_engine(
    manifest: LoadedManifest, options: BuildOptions, spec: EngineSpec, archs: list[str]
) -> tuple[HailoSession, dict[str, BackendUnavailable]]:
    client = docker_env.connect(docker_env.DockerTarget(spec.host, spec.context), name=spec.name)
    by_ref: dict[str, Suite] = {}
    suites: dict[str, Suite] = {}
    refused: dict[str, BackendUnavailable] = {}
    for arch in archs:
        ref = manifest.suite_image_for(arch, options.suite_image, spec.suite_image(family_of(arch)))
        try:
            if ref not in by_ref:
                image_id = docker_env.suite_image_id(client, ref, engine=spec.name)
                info = docker_env.probe_suite(client, ref, image_id, manifest.cache_dir)
                docker_env.check_suite(info, arch)
                image = docker_env.ensure_dfc_image(
                    client, ref, image_id, manifest.root, info.python or "python3"
                )
                by_ref[ref] = Suite(info, image)
            docker_env.check_suite(by_ref[ref].info, arch)
        except BackendUnavailable as exc:
            refused[arch] = exc
            continue
        suites[arch] = by_ref[ref]
    indices: tuple[int, ...] = ()
    if options.gpus is not False and suites:
        if spec.gpus is not None:
            indices = spec.gpus
        elif docker_env.has_gpu_runtime(client):
            indices = docker_env.probe_gpus(client, next(iter(suites.values())).image)
    gpus = bool(indices) or options.gpus is True
    blobs = None
    if spec.file_mode == "copy" and suites:
        blobs = BlobStore(client, next(iter(suites.values())).image)
    session = HailoSession(
        client, suites, gpus, docker_env.worker_digest(), spec.name, indices, blobs
    )
    return session, refused
