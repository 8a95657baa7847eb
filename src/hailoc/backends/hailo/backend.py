"""Build with the Hailo DFC: parse -> render .alls -> optimize + emulate -> compile, in containers.

Each stage runs hailoc's worker in a fresh container of the suite image. Inputs reach it as
content-addressed blobs (the bytes hailoc hashed) and earlier stages' cache entries, mounted
read-only; the stage writes only into its own work folder.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import re
import socket
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from hailoc.alls import render_alls
from hailoc.alls.flavor import choose_flavor
from hailoc.backends.hailo import docker_env
from hailoc.backends.hailo.container import Mount, StageOutcome, kill_labelled, run_stage
from hailoc.backends.protocol import (
    ArtifactFile,
    Candidate,
    Job,
    StageFailure,
    StageOutput,
    Stages,
)
from hailoc.cache import cache_key
from hailoc.eval.sweep import split_sizes, stack_sizes
from hailoc.failures import ENGINE_LOST, KILLED, OOM, TIMEOUT, UNKNOWN, classify
from hailoc.fsutil import atomic_write_bytes
from hailoc.manifest import LoadedManifest
from hailoc.options import BuildOptions
from hailoc.plan import PrecisionPlan, read_hn, resolve_plan
from hailoc.records import ExcludedLayer, PlanSection
from hailoc.targets import BuildTarget

log = logging.getLogger(__name__)

STANDIN_MAGIC = b"HAILOC-STANDIN-NOT-A-HEF"
WS = "/local/workspace"
INPUTS = f"{WS}/inputs"  # content-addressed blobs: ONNX bytes, calibration array
PREVIOUS = f"{WS}/in"  # the previous stage's cache entry


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
    engine: str = "local"  # the engine's URL or context name, for records

    def suite(self, hw_arch: str) -> Suite:
        """The suite that builds `hw_arch` (checked when the session opened)."""
        return self.suites[hw_arch]


def open_session(
    manifest: LoadedManifest, options: BuildOptions, hw_archs: list[str]
) -> HailoSession:
    """Check the daemon and every suite image the targets need, build the DFC images; a
    suite that cannot build a requested hw_arch is refused here, before any stage runs."""
    target = docker_env.DockerTarget(options.docker_host, options.docker_context)
    client = docker_env.connect(target)
    by_ref: dict[str, Suite] = {}
    suites: dict[str, Suite] = {}
    for arch in dict.fromkeys(hw_archs):
        ref = manifest.suite_image_for(arch, options.suite_image)
        if ref not in by_ref:
            image_id = docker_env.suite_image_id(client, ref)
            info = docker_env.probe_suite(client, ref, image_id, manifest.cache_dir)
            docker_env.check_suite(info, arch)
            image = docker_env.ensure_dfc_image(
                client, ref, image_id, manifest.root, info.python or "python3"
            )
            by_ref[ref] = Suite(info, image)
        docker_env.check_suite(by_ref[ref].info, arch)
        suites[arch] = by_ref[ref]
    gpus = docker_env.has_gpu_runtime(client) if options.gpus is None else options.gpus
    engine = options.docker_host or (
        f"context {options.docker_context}" if options.docker_context else "local"
    )
    return HailoSession(client, suites, gpus, docker_env.worker_digest(), engine)


def _net_name(model: str) -> str:
    return re.sub(r"\W", "_", model)


def _npy_bytes(array: np.ndarray[Any, Any]) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


class HailoBackend:
    """Builds targets against an open session; one instance serves a whole batch."""

    name = "hailo"
    stages: tuple[str, ...] = ("parse", "optimize", "noise", "compile")
    ranks_layers = True

    def __init__(self, manifest: LoadedManifest, session: HailoSession) -> None:
        self.manifest = manifest
        self.session = session
        self.blobs = manifest.cache_dir / "blobs"
        # Every container of this invocation carries this label: cancel() and `hailoc gc`
        # find them by it.
        self.run_id = uuid.uuid4().hex[:12]

    def facts(self, target: BuildTarget) -> dict[str, str]:
        """Suite image, its id and versions, hailoc's DFC image and the worker digest."""
        suite = self.session.suite(target.hw_arch)
        return {
            "suite_image": suite.info.ref,
            "suite_image_id": suite.info.image_id,
            "dfc_version": suite.info.dfc_version or "unknown",
            "hailort_version": suite.info.hailort_version or "none",
            "worker_python": suite.info.python or "unknown",
            "dfc_image": suite.image,
            "worker_sha256": self.session.worker,
            "gpus": "yes" if self.session.gpus else "no",
            "engine": self.session.engine,
        }

    # -- stages -----------------------------------------------------------------------------
    def prepare(self, job: Job, stages: Stages) -> Path | None:
        """Parse the ONNX into a HAR and the HN (shared by every precision of the model)."""
        inputs = job.inputs
        cfg = inputs.config
        onnx_name = self._blob(f"{inputs.onnx_sha256}.onnx", lambda: inputs.onnx_bytes)
        key = cache_key(
            "parse",
            {
                "onnx_sha256": inputs.onnx_sha256,
                "suite_image_id": self.session.suite(job.target.hw_arch).info.image_id,
                "worker_sha256": self.session.worker,
                "hw_arch": job.target.hw_arch,
                "net": _net_name(cfg.name),
                "input": cfg.input.model_dump(mode="json"),
                "start_nodes": cfg.start_nodes,
                "end_nodes": cfg.end_nodes,
                "hailoc": inputs.versions.hailoc,
            },
        )
        job_file = {
            "onnx": f"{INPUTS}/{onnx_name}",
            "net_name": _net_name(cfg.name),
            "hw_arch": job.target.hw_arch,
            "start_nodes": list(cfg.start_nodes),
            "end_nodes": list(cfg.end_nodes),
            "input_name": cfg.input.name,
            "input_shape": [1, *cfg.input.shape[1:]],
        }
        return self._stage(
            job, stages, "parse", key, job_file, None, ("parsed.har", "parsed.hn.json")
        )

    def quantize(
        self, job: Job, plan: PrecisionPlan, prepared: Path | None, stages: Stages
    ) -> Candidate:
        """Resolve the plan on the HN, render the .alls, optimize and emulate the eval faces."""
        assert prepared is not None
        inputs = job.inputs
        cfg = inputs.config
        resolved = resolve_plan(plan, read_hn(prepared / "parsed.hn.json"))
        entries = min(len(inputs.calib), cfg.optimization.calibset_size)
        flavor = choose_flavor(
            cfg.optimization.optimization_level, gpu=self.session.gpus, entries=entries
        )
        alls = render_alls(cfg, resolved, self.manifest.templates_dir, flavor)
        sizes = cfg.gate.face_sizes
        eval_bytes = _npy_bytes(stack_sizes(inputs.eval_faces, sizes))
        calib_name = self._blob(f"{inputs.calib_sha256}.npy", lambda: _npy_bytes(inputs.calib))
        key = cache_key(
            "optimize",
            {
                "parse": prepared.name,
                "alls_sha256": hashlib.sha256(alls.encode()).hexdigest(),
                "calibration_sha256": inputs.calib_sha256,
                "eval_sha256": hashlib.sha256(eval_bytes).hexdigest(),
                "channel_order": cfg.input.color,
            },
        )
        job_file = {
            "har_in": f"{PREVIOUS}/parsed.har",
            "alls": f"{WS}/work/model.alls",
            "calib": f"{INPUTS}/{calib_name}",
            "eval": f"{WS}/work/eval.npy",
            "hw_arch": job.target.hw_arch,
            "channel_order": cfg.input.color,
        }
        entry = self._stage(
            job,
            stages,
            "optimize",
            key,
            job_file,
            prepared,
            ("optimized.har", "emulate_fp.npy", "emulate_q.npy"),
            extra_files={"model.alls": alls.encode(), "eval.npy": eval_bytes},
        )
        section = PlanSection(
            precision=plan.precision,
            onnx_nodes=list(plan.onnx_nodes),
            a16_kind="hn_layers",
            a16_layers=list(resolved.a16_layers),
            excluded=[
                ExcludedLayer(name=e.name, kind=e.kind, why=e.why) for e in resolved.excluded
            ],
            optimization_level=flavor.level,
            optimization_reason=flavor.reason,
        )
        return Candidate(
            plan=section,
            embeddings=split_sizes(np.load(entry / "emulate_q.npy"), sizes),
            entry=entry,
            fp_emulated=split_sizes(np.load(entry / "emulate_fp.npy"), sizes),
            alls=alls,
            prepared=prepared,
        )

    def layer_noise(
        self, job: Job, candidate: Candidate, stages: Stages
    ) -> dict[str, float] | None:
        """The DFC's layer noise analysis of the optimized HAR, per ONNX layer (lowest SNR of
        the HN layers made from it)."""
        assert candidate.prepared is not None
        inputs = job.inputs
        spec = inputs.config.auto
        count = min(spec.noise_images, len(inputs.calib))
        calib_name = self._blob(f"{inputs.calib_sha256}.npy", lambda: _npy_bytes(inputs.calib))
        key = cache_key(
            "noise",
            {
                "optimize": candidate.entry.name,
                "calibration_sha256": inputs.calib_sha256,
                "images": count,
                "mode": spec.noise_analysis,
            },
        )
        job_file = {
            "har_in": f"{PREVIOUS}/optimized.har",
            "calib": f"{INPUTS}/{calib_name}",
            "hw_arch": job.target.hw_arch,
            "channel_order": inputs.config.input.color,
            "data_count": count,
            "mode": spec.noise_analysis,
        }
        entry = self._stage(job, stages, "noise", key, job_file, candidate.entry, ("noise.json",))
        by_hn = json.loads((entry / "noise.json").read_text(encoding="utf-8"))
        network = read_hn(candidate.prepared / "parsed.hn.json")
        origins = {layer.name: layer.original_names for layer in network.layers}
        snr: dict[str, float] = {}
        for name, value in by_hn.items():
            for node in origins.get(str(name).split("/", 1)[-1], ()):
                snr[node] = min(float(value), snr.get(node, float("inf")))
        return snr

    def emulate(
        self, job: Job, optimized: Path, faces: np.ndarray[Any, Any], stages: Stages
    ) -> np.ndarray[Any, Any]:
        """SDK_QUANTIZED embeddings of uint8 RGB faces under an optimize stage's HAR."""
        data = _npy_bytes(np.ascontiguousarray(faces, dtype=np.uint8))
        key = cache_key(
            "emulate",
            {"optimize": optimized.name, "faces_sha256": hashlib.sha256(data).hexdigest()},
        )
        job_file = {
            "har_in": f"{PREVIOUS}/optimized.har",
            "faces": f"{WS}/work/faces.npy",
            "hw_arch": job.target.hw_arch,
            "channel_order": job.inputs.config.input.color,
        }
        entry = self._stage(
            job,
            stages,
            "emulate",
            key,
            job_file,
            optimized,
            ("emulate_q.npy",),
            extra_files={"faces.npy": data},
        )
        return np.asarray(np.load(entry / "emulate_q.npy"), np.float32)

    def finish(self, job: Job, candidate: Candidate, stages: Stages) -> list[ArtifactFile]:
        """Compile the optimized HAR; the HEF (or the stand-in's marked output) is the artifact."""
        key = cache_key("compile", {"optimize": candidate.entry.name})
        job_file = {
            "har_in": f"{PREVIOUS}/optimized.har",
            "hw_arch": job.target.hw_arch,
            "alls": f"{WS}/work/model.alls",
        }
        entry = self._stage(
            job,
            stages,
            "compile",
            key,
            job_file,
            candidate.entry,
            ("model.hef",),
            extra_files={"model.alls": (candidate.alls or "").encode()},
        )
        data = (entry / "model.hef").read_bytes()
        model = job.target.model
        artifacts = [ArtifactFile("alls", "model.alls", (candidate.alls or "").encode())]
        if candidate.prepared is not None:
            artifacts.append(
                ArtifactFile("hn", "parsed.hn.json", candidate.prepared / "parsed.hn.json")
            )
        if data.startswith(STANDIN_MAGIC):
            # A stand-in's output must never pass for a HEF: different name, flagged.
            log.warning("%s: built with the stand-in DFC: the output is NOT a HEF", model)
            artifacts.append(
                ArtifactFile(
                    "standin_output",
                    f"{model}.standin-not-a-hef",
                    data,
                    "produced by the test stand-in DFC: NOT a HEF",
                )
            )
        else:
            artifacts.append(ArtifactFile("hef", f"{model}.hef", data))
        return artifacts

    def cancel(self) -> None:
        """Kill every container this invocation started."""
        kill_labelled(self.session.client, {"org.hailoc.run": self.run_id})

    # -- helpers ----------------------------------------------------------------------------
    def _blob(self, name: str, data: Callable[[], bytes]) -> str:
        """Store the bytes under the content-addressed blob folder once; its file name.
        `data` runs only on a miss: serialising a large calibration set costs seconds."""
        path = self.blobs / name
        if not path.is_file():
            atomic_write_bytes(path, data())
        return name

    def _stage(
        self,
        job: Job,
        stages: Stages,
        stage: str,
        key: str,
        job_file: dict[str, Any],
        previous: Path | None,
        outputs: tuple[str, ...],
        extra_files: dict[str, bytes] | None = None,
    ) -> Path:
        def produce(workdir: Path) -> StageOutput:
            mounts = [Mount(self.blobs, INPUTS)]
            if previous is not None:
                mounts.append(Mount(previous, PREVIOUS))
            outcome = run_stage(
                self.session.client,
                self.session.suite(job.target.hw_arch).image,
                {**job_file, "stage": stage, "out_dir": f"{WS}/work/out", "cwd": f"{WS}/work/cwd"},
                workdir,
                mounts,
                files=extra_files or {},
                timeout=job.options.stage_timeout,
                gpus=self.session.gpus,
                gpu_index=job.slot,
                on_line=stages.log,
                labels={
                    "org.hailoc.model": job.target.model,
                    "org.hailoc.stage": stage,
                    "org.hailoc.run": self.run_id,
                    "org.hailoc.pid": str(os.getpid()),
                    "org.hailoc.host": socket.gethostname(),
                },
            )
            # The DFC's own logs (written into its working directory) are kept either way.
            logs = {p.name: p for p in sorted((workdir / "cwd").glob("*.log")) if p.is_file()}
            _raise_if_failed(stage, outcome, job.options.stage_timeout, logs)
            files = {name: workdir / "out" / name for name in outputs}
            missing = [n for n, p in files.items() if not p.is_file()]
            if missing:
                raise StageFailure(
                    UNKNOWN.name,
                    f"{stage} reported ok but wrote no {', '.join(missing)}",
                    UNKNOWN.hint,
                )
            result = outcome.result or {}
            files.update({f"logs/{name}": path for name, path in logs.items()})
            return StageOutput(
                files,
                worker_seconds=_float(result.get("seconds")),
                peak_rss_mb=_float(result.get("peak_rss_mb")),
            )

        return stages.run(stage, key, produce)


def _float(value: object) -> float | None:
    return float(value) if isinstance(value, int | float) else None


def _raise_if_failed(
    stage: str, outcome: StageOutcome, timeout: float, log_files: dict[str, Path]
) -> None:
    result = outcome.result or {}
    if result.get("status") == "ok" and outcome.exit_code == 0 and not outcome.timed_out:
        return
    logs = {name: path.read_bytes() for name, path in log_files.items()}
    seconds = _float(result.get("seconds"))
    peak = _float(result.get("peak_rss_mb"))
    if outcome.engine_lost:
        raise StageFailure(
            ENGINE_LOST.name,
            f"{stage}: the Docker engine stopped answering mid-stage",
            ENGINE_LOST.hint,
            logs=logs,
        )
    if outcome.timed_out:
        raise StageFailure(
            TIMEOUT.name, f"{stage} exceeded its {timeout:g} s timeout", TIMEOUT.hint, logs=logs
        )
    if outcome.result is None:
        if outcome.oom_killed:
            limit = f" (memory limit {outcome.memory_limit})" if outcome.memory_limit else ""
            raise StageFailure(
                OOM.name, f"{stage} container was killed out of memory{limit}", OOM.hint, logs=logs
            )
        raise StageFailure(
            KILLED.name,
            f"{stage} container died without a result: exit code {outcome.exit_code}",
            KILLED.hint,
            logs=logs,
        )
    error_type = str(result.get("error_type") or "")
    message = str(result.get("message") or "")
    known = classify(error_type, message, stage)
    raise StageFailure(
        known.name,
        f"{stage}: {error_type}: {message}",
        known.hint,
        error_type=error_type,
        detail=message,
        traceback_tail=tuple(str(t) for t in result.get("traceback_tail", [])),
        worker_seconds=seconds,
        peak_rss_mb=peak,
        logs=logs,
    )
