"""`hailoc build` as a library call: the targets (or the last batch's failures), the backends
they need, the engine slots, and the batch, with the summary rewritten as each build ends."""

from __future__ import annotations

import threading
from dataclasses import dataclass

from hailoc.backends.hailo.backend import HailoBackend
from hailoc.backends.onnxruntime.backend import OrtBackend
from hailoc.backends.protocol import Backend
from hailoc.engines import Slot
from hailoc.errors import HailocError
from hailoc.inputs import InputsCache
from hailoc.manifest import LoadedManifest
from hailoc.options import BuildOptions
from hailoc.pipeline.batch import EnginePool, expand_targets, run_batch
from hailoc.pipeline.progress import Reporter
from hailoc.pipeline.runner import RunContext, build_one
from hailoc.records import BuildRecord, SummaryRow, read_summary, write_summary
from hailoc.reference import References
from hailoc.targets import BuildTarget

# Each backend's cached stages, as --from-stage names them (the backends own the lists).
BACKEND_STAGES = {"hailo": HailoBackend.stages, "onnxruntime": OrtBackend.stages}
STAGES = tuple(dict.fromkeys(s for stages in BACKEND_STAGES.values() for s in stages))


@dataclass(frozen=True)
class BuildRequest:
    """What the command line asked for, every value already checked."""

    names: list[str]
    all_models: bool = False
    precisions: list[str] | None = None
    hw_archs: list[str] | None = None
    backend: str | None = None
    retry_failed: bool = False  # only what failed or did not run in the last batch
    jobs: int | None = None  # builds at once (None: every engine slot)


def choose_targets(
    manifest: LoadedManifest, request: BuildRequest, from_stage: str | None
) -> list[BuildTarget]:
    """The targets of a request, checked up front (an empty list: nothing failed last time)."""
    if request.retry_failed:
        targets = [
            BuildTarget(r.model, r.hw_arch, r.precision, r.backend)
            for r in read_summary(manifest.hef_dir)
            if r.status != "ok"
        ]
    else:
        targets = expand_targets(
            manifest,
            request.names,
            all_models=request.all_models,
            precisions=request.precisions,
            hw_archs=request.hw_archs,
            backend=request.backend,
        )
    if from_stage is not None:
        for target in targets:
            stages = BACKEND_STAGES[target.backend]
            if from_stage not in stages:
                raise HailocError(
                    f"the {target.backend} backend has no stage {from_stage!r}",
                    where="--from-stage",
                    fix=f"use one of: {', '.join(stages)}",
                )
    return targets


def open_backends(
    manifest: LoadedManifest, targets: list[BuildTarget], options: BuildOptions
) -> dict[str, Backend]:
    """One backend per kind the targets use; a missing daemon or suite image is a one-line
    error here, before any build starts."""
    chosen: dict[str, Backend] = {}
    if any(t.backend == "onnxruntime" for t in targets):
        chosen["onnxruntime"] = OrtBackend()
    if any(t.backend == "hailo" for t in targets):
        from hailoc.backends.hailo.doctor import preflight
        from hailoc.backends.hailo.sessions import open_sessions

        preflight(manifest)
        archs = [t.hw_arch for t in targets if t.backend == "hailo"]
        chosen["hailo"] = HailoBackend(manifest, open_sessions(manifest, options, archs))
    return chosen


def read_inputs(manifest: LoadedManifest, targets: list[BuildTarget]) -> InputsCache:
    """The targets' inputs, read as builds need them; with one model they are read now, so a
    bad input is a one-line error with nothing written, not a failed batch."""
    inputs = InputsCache(manifest)
    if len({t.model for t in targets}) == 1:
        inputs.get(targets[0].model)
    return inputs


def run_builds(
    manifest: LoadedManifest,
    targets: list[BuildTarget],
    options: BuildOptions,
    reporter: Reporter,
    backends: dict[str, Backend],
    jobs: int | None = None,
    inputs: InputsCache | None = None,
) -> list[BuildRecord]:
    """Build every target on its backend (N at once, one engine or GPU slot each), surviving
    any single failure; hef/summary.json is rewritten as each build ends."""
    inputs = inputs or read_inputs(manifest, targets)
    context = RunContext(manifest, options, reporter, inputs, References(manifest.cache_dir))
    summary_lock = threading.Lock()

    def on_record(rows: list[SummaryRow]) -> None:
        with summary_lock:
            write_summary(manifest.hef_dir, rows)

    def cancel() -> None:
        context.cancelled.set()
        for backend in backends.values():
            backend.cancel()

    def build(target: BuildTarget, slot: Slot) -> BuildRecord:
        return build_one(context, backends[target.backend], target, slot)

    engines = [e for backend in backends.values() for e in backend.engine_slots(options)]
    return run_batch(
        targets,
        build,
        # Default: every slot busy (one build per GPU, or per engine without GPUs).
        jobs=jobs or max(1, sum(e.capacity for e in engines)),
        pool=EnginePool(engines),
        cost=lambda t: _onnx_size(manifest, t.model),
        on_record=on_record,
        cancel=cancel,
    )


def _onnx_size(manifest: LoadedManifest, model: str) -> float:
    """What a target costs to build, roughly: its ONNX file's size."""
    try:
        return float(manifest.model(model).onnx.stat().st_size)
    except (OSError, HailocError):
        return 0.0
