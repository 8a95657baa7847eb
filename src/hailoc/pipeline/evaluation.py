"""The build side of `hailoc eval`: a finished build opened as an embedder (its QDQ model in
ONNX Runtime, or the DFC's SDK_QUANTIZED emulation of its optimized HAR in the suite
container), found through the build-folder layout and the stage cache."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from hailoc.cache import StageCache
from hailoc.errors import HailocError
from hailoc.eval.drivers import BuildSide, Step
from hailoc.faces import Faces
from hailoc.inference.shared_prefix import SharedPrefixEmbedder
from hailoc.inputs import toolchain_versions
from hailoc.manifest import LoadedManifest, ModelConfig
from hailoc.records import read_record
from hailoc.records.layout import artifact_name, optimize_key, output_dir, record_path
from hailoc.targets import BuildTarget

log = logging.getLogger(__name__)


def build_side(
    manifest: LoadedManifest,
    cfg: ModelConfig,
    precision: str,
    backend: str,
    suite_image: str | None,
    step: Step,
) -> BuildSide:
    """The built `precision` of `cfg` on `backend`, as an embedder; a missing build is a
    one-line error naming the command that makes it."""
    if backend == "hailo":
        return _hailo_side(manifest, cfg, precision, suite_image, step)
    target = BuildTarget(cfg.name, cfg.hw_arch, precision, "onnxruntime")
    folder = output_dir(manifest.hef_dir, target)
    qdq = folder / artifact_name("qdq_onnx", cfg.name)
    if not qdq.is_file():
        raise HailocError(
            f"no ONNX Runtime build of {cfg.name} {precision} at {qdq}",
            where="--precision",
            fix=f"run `hailoc build {cfg.name} -p {precision} -b onnxruntime` first",
        )
    # A build of the same model evaluated before on these faces did most of this work: start
    # from the deepest tensor it shares with this build (inference/shared_prefix.py).
    cache = StageCache(manifest.cache_dir)
    embed = SharedPrefixEmbedder(qdq, cfg, cache, toolchain_versions())
    return BuildSide(folder, embed, f"{qdq.name} (ONNX Runtime QDQ emulation)")


def _hailo_side(
    manifest: LoadedManifest,
    cfg: ModelConfig,
    precision: str,
    suite_image: str | None,
    step: Step,
) -> BuildSide:
    """SDK_QUANTIZED emulation of the build's optimized HAR (from the stage cache), all
    batches in one container stage."""
    from hailoc.backends.hailo.backend import HailoBackend
    from hailoc.backends.hailo.sessions import open_session as open_engine
    from hailoc.backends.protocol import Job
    from hailoc.inputs import gather
    from hailoc.options import BuildOptions
    from hailoc.pipeline.stages import CacheStages

    target = BuildTarget(cfg.name, cfg.hw_arch, precision, "hailo")
    folder = output_dir(manifest.hef_dir, target)
    fix = f"run `hailoc build {cfg.name} -b hailo -p {precision}` first"
    if not record_path(folder).is_file():
        raise HailocError(f"no Hailo build at {folder}", where="--precision", fix=fix)
    key = optimize_key(read_record(record_path(folder)))
    cache = StageCache(manifest.cache_dir)
    entry = cache.lookup("optimize", key) if key is not None else None
    if entry is None:
        raise HailocError(
            f"the build's optimized HAR is not in the stage cache ({folder})",
            where="--precision",
            fix=f"{fix} (it restores the cache entry)",
        )
    options = BuildOptions(suite_image=suite_image)
    session = open_engine(manifest, options, [cfg.hw_arch])
    backend = HailoBackend(manifest, [session])
    job = Job(target, gather(manifest, cfg.name), options)
    stages = CacheStages(cache, manifest.work_dir, log.debug)

    def embed(batches: list[Faces]) -> list[np.ndarray[Any, np.dtype[np.float32]]]:
        sizes = [len(b) for b in batches]
        with step(f"DFC emulation of {sum(sizes)} faces in the suite container"):
            out = backend.emulate(job, entry, np.concatenate(batches), stages)
        return list(np.split(out, np.cumsum(sizes)[:-1]))

    suite = session.suite(cfg.hw_arch).info.ref
    source = f"DFC emulator (SDK_QUANTIZED) of the optimized HAR {entry.name[:12]}, {suite}"
    return BuildSide(folder, embed, source)
