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
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from hailoc.alls import render_alls
from hailoc.alls.flavor import applied_level, choose_flavor
from hailoc.alls.render import calibset_size
from hailoc.backends.hailo import docker_env
from hailoc.backends.hailo.container import StageFiles, StageOutcome, kill_labelled, run_stage
from hailoc.backends.hailo.docker_env import BackendUnavailable
from hailoc.backends.hailo.transfer import BlobStore
from hailoc.backends.protocol import (
    ArtifactFile,
    Candidate,
    Job,
    StageFailure,
    StageOutput,
    Stages,
)
from hailoc.cache import Damage, cache_key, check_blob
from hailoc.engines import LOCAL, EngineSpec, Slot
from hailoc.errors import HailocError
from hailoc.eval.sweep import split_sizes, stack_sizes
from hailoc.failures import (
    ENGINE_LOST,
    KILLED,
    OOM,
    PLAN_NOT_APPLIED,
    TIMEOUT,
    UNKNOWN,
    classify,
)
from hailoc.fsutil import atomic_write_bytes, sha256_file
from hailoc.manifest import LoadedManifest
from hailoc.manifest.schema import family_of
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
        ref = (
            options.suite_image
            or spec.suite_image(family_of(arch))
            or manifest.suite_image_for(arch)
        )
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

    def __init__(self, manifest: LoadedManifest, sessions: list[HailoSession]) -> None:
        self.manifest = manifest
        self.sessions = {s.engine: s for s in sessions}
        self._default = sessions[0]
        # Blobs and cache entries never change once written: hash each file once.
        self._sha256: dict[Path, str] = {}
        self._lock = threading.Lock()
        self.blobs = manifest.cache_dir / "blobs"
        # Every container of this invocation carries this label: cancel() and `hailoc gc`
        # find them by it.
        self.run_id = uuid.uuid4().hex[:12]

    def session(self, slot: Slot | None) -> HailoSession:
        """The engine a build holds (the first one when it holds none)."""
        return self.sessions[slot.engine] if slot is not None else self._default

    def facts(self, target: BuildTarget, slot: Slot) -> dict[str, str]:
        """Suite image, its id and versions, hailoc's DFC image and the worker digest."""
        session = self.session(slot)
        suite = session.suite(target.hw_arch)
        return {
            "suite_image": suite.info.ref,
            "suite_image_id": suite.info.image_id,
            "dfc_version": suite.info.dfc_version or "unknown",
            "hailort_version": suite.info.hailort_version or "none",
            "worker_python": suite.info.python or "unknown",
            "dfc_image": suite.image,
            "worker_sha256": session.worker,
            "gpus": "yes" if session.gpus else "no",
            "engine": session.engine,
            "files": "copied" if session.blobs is not None else "mounted",
        }

    # -- stages -----------------------------------------------------------------------------
    def prepare(self, job: Job, stages: Stages) -> Path | None:
        """Parse the ONNX into a HAR and the HN (shared by every precision of the model)."""
        inputs = job.inputs
        cfg = inputs.config
        onnx_name = self._blob(
            f"{inputs.onnx_sha256}.onnx", inputs.onnx_sha256, lambda: inputs.onnx_bytes, stages
        )
        key = cache_key(
            "parse",
            {
                "onnx_sha256": inputs.onnx_sha256,
                "suite_image_id": self.session(job.slot).suite(job.target.hw_arch).info.image_id,
                "worker_sha256": self.session(job.slot).worker,
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
        resolved = resolve_plan(plan, read_hn(prepared / "parsed.hn.json"), inputs.graph)
        entries = min(len(inputs.calib), cfg.optimization.calibset_size)
        flavor = choose_flavor(
            cfg.optimization.optimization_level, gpu=self.session(job.slot).gpus, entries=entries
        )
        alls = render_alls(cfg, resolved, self.manifest.templates_dir, flavor, entries)
        sizes = cfg.gate.face_sizes
        eval_bytes = _npy_bytes(stack_sizes(inputs.eval_faces, sizes))
        calib_name = self._calib_blob(job, stages)
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
            ("optimized.har", "applied_precision.json", "emulate_fp.npy", "emulate_q.npy"),
            extra_files={"model.alls": alls.encode(), "eval.npy": eval_bytes},
        )
        applied = _check_applied(resolved.a16_layers, entry)
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
            optimization_level_applied=applied_level(
                flavor, sorted((entry / "logs").glob("*.log"))
            ),
            calibset_size=calibset_size(cfg.optimization.calibset_size, entries),
            applied_a16=applied,
            compression_level=cfg.optimization.compression_level,
            auto_4bit_weights_ratio=0.0 if cfg.optimization.compression_level == 0 else None,
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
        calib_name = self._calib_blob(job, stages)
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
        """Kill every container this invocation started, on every engine."""
        for session in self.sessions.values():
            kill_labelled(session.client, {"org.hailoc.run": self.run_id})

    # -- helpers ----------------------------------------------------------------------------
    def _blob(self, name: str, sha256: str, data: Callable[[], bytes], stages: Stages) -> str:
        """The blob of `sha256` (its file name is that hash): checked once per invocation,
        stored from `data()` when missing, and moved aside and stored again when its bytes
        do not hash to its name. `data` runs only then (reading a large calibration set
        costs seconds)."""
        path = self.blobs / name
        with self._lock:
            if self._sha256.get(path) == sha256:
                return name
            present = path.exists()
            if not check_blob(path, self.manifest.cache_dir) and present:
                stages.damaged(Damage("blobs", name, "its bytes do not hash to its name", None))
            if not path.is_file():
                content = data()
                got = hashlib.sha256(content).hexdigest()
                if got != sha256:
                    raise HailocError(
                        f"{name}: the source changed while hailoc read it (sha256 {got[:12]})",
                        where=str(path),
                        fix="run the command again",
                    )
                atomic_write_bytes(path, content)
            self._sha256[path] = sha256
        return name

    def _calib_blob(self, job: Job, stages: Stages) -> str:
        """The calibration array as a blob: calib.npy's own bytes, which hash to the set's
        recorded sha256 (hailoc checked them when it read the set)."""
        inputs = job.inputs
        return self._blob(
            f"{inputs.calib_sha256}.npy",
            inputs.calib_sha256,
            inputs.calib_path.read_bytes,
            stages,
        )

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
        session = self.session(job.slot)
        job_file = {
            **job_file,
            "stage": stage,
            "out_dir": f"{WS}/work/out",
            "cwd": f"{WS}/work/cwd",
        }
        inputs = self._inputs(job_file, previous)
        job_file["sha256"] = {path: sha for path, (_, sha) in inputs.items()}

        def produce(workdir: Path) -> StageOutput:
            work = {**(extra_files or {}), "job.json": json.dumps(job_file, indent=1).encode()}
            outcome = run_stage(
                session.client,
                session.suite(job.target.hw_arch).image,
                workdir,
                StageFiles(inputs, work),
                blobs=session.blobs,
                timeout=job.options.stage_timeout,
                gpus=session.gpus,
                gpu_index=job.slot.gpu if job.slot is not None else None,
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
            verified.update(_check_outputs(stage, files, result, logs))
            files.update({f"logs/{name}": path for name, path in logs.items()})
            return StageOutput(
                files,
                worker_seconds=_float(result.get("seconds")),
                peak_rss_mb=_float(result.get("peak_rss_mb")),
            )

        verified: dict[str, str] = {}
        entry = stages.run(stage, key, produce)
        # The entry holds copies of the outputs just checked: the next stage that reads one
        # (a HAR of hundreds of MB) takes its hash from here instead of reading it again.
        with self._lock:
            self._sha256.update({entry / name: sha for name, sha in verified.items()})
        return entry

    def _inputs(
        self, job_file: dict[str, Any], previous: Path | None
    ) -> dict[str, tuple[Path, str]]:
        """The job's input files by container path, with the host file and its sha256."""
        inputs: dict[str, tuple[Path, str]] = {}
        for value in job_file.values():
            if not isinstance(value, str):
                continue
            if value.startswith(f"{INPUTS}/"):
                host = self.blobs / value.removeprefix(f"{INPUTS}/")
            elif value.startswith(f"{PREVIOUS}/") and previous is not None:
                host = previous / value.removeprefix(f"{PREVIOUS}/")
            else:
                continue
            with self._lock:
                if host not in self._sha256:
                    self._sha256[host] = sha256_file(host)
                inputs[value] = (host, self._sha256[host])
        return inputs


def _check_outputs(
    stage: str, files: dict[str, Path], result: dict[str, Any], logs: dict[str, Path]
) -> dict[str, str]:
    """Each output must hash to what the worker reported for it (after any download); their
    hashes by name."""
    reported = result.get("outputs_sha256") or {}
    hashes: dict[str, str] = {}
    for name, path in files.items():
        got = hashes[name] = sha256_file(path)
        if reported.get(name) != got:
            raise StageFailure(
                "transfer",
                f"{stage}: OutputChecksumError: {name} hashes to {got[:16]}, the worker "
                f"reported {str(reported.get(name))[:16]}",
                classify("OutputChecksumError", "", stage).hint,
                logs={n: p.read_bytes() for n, p in logs.items()},
            )
    return hashes


def _check_applied(planned: tuple[str, ...], entry: Path) -> list[str] | None:
    """The layers the optimized HAR holds in 16-bit; a planned layer that ended 8-bit fails
    the build (None: the DFC did not say, so nothing can be checked)."""
    try:
        applied = json.loads((entry / "applied_precision.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(applied, dict) or not applied:
        return None
    sixteen = sorted(str(k) for k, v in applied.items() if str(v).startswith("a16"))
    lost = [layer for layer in planned if str(applied.get(layer, "")).startswith("a8")]
    if lost:
        raise StageFailure(
            PLAN_NOT_APPLIED.name,
            f"optimize: planned a16_w16 but 8-bit after optimization: {', '.join(lost)}",
            PLAN_NOT_APPLIED.hint,
        )
    return sixteen


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
