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
from pathlib import Path
from typing import Any

import numpy as np

from hailoc.alls import render_alls
from hailoc.alls.flavor import applied_level, choose_flavor
from hailoc.alls.render import calibset_size
from hailoc.backends.hailo.container import (
    ContainerRunner,
    StageFiles,
    StageRun,
    kill_labelled,
    run_stage,
)
from hailoc.backends.hailo.outcome import as_float, check_applied, check_outputs, raise_if_failed
from hailoc.backends.hailo.sessions import HailoSession
from hailoc.backends.hailo.transfer import INPUTS, PREVIOUS, WS, HostBlobs
from hailoc.backends.protocol import (
    ArtifactFile,
    Candidate,
    Job,
    StageFailure,
    StageOutput,
    Stages,
    plan_section,
)
from hailoc.cache import cache_key
from hailoc.engines import EngineSlots, Slot
from hailoc.faces import Embeddings, Faces, split_sizes, stack_sizes
from hailoc.failures import (
    UNKNOWN,
)
from hailoc.manifest import LoadedManifest
from hailoc.options import BuildOptions
from hailoc.plan import PrecisionPlan, read_hn, resolve_plan
from hailoc.records import ExcludedLayer
from hailoc.records.layout import artifact_name
from hailoc.targets import BuildTarget

log = logging.getLogger(__name__)

STANDIN_MAGIC = b"HAILOC-STANDIN-NOT-A-HEF"


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

    def __init__(
        self,
        manifest: LoadedManifest,
        sessions: list[HailoSession],
        run: ContainerRunner = run_stage,
    ) -> None:
        self.manifest = manifest
        self.sessions = {s.engine: s for s in sessions}
        self._default = sessions[0]
        self._run = run
        self.host = HostBlobs(manifest.cache_dir)
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
        onnx_name = self.host.blob(
            f"{inputs.onnx_sha256}.onnx",
            inputs.onnx_sha256,
            lambda: inputs.onnx_bytes,
            stages.damaged,
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
        applied = check_applied(resolved.a16_layers, entry)
        section = plan_section(
            plan,
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

    def emulate(self, job: Job, optimized: Path, faces: Faces, stages: Stages) -> Embeddings:
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
                    artifact_name("standin_output", model),
                    data,
                    "produced by the test stand-in DFC: NOT a HEF",
                )
            )
        else:
            artifacts.append(ArtifactFile("hef", artifact_name("hef", model), data))
        return artifacts

    def engine_slots(self, options: BuildOptions) -> list[EngineSlots]:
        """Every connected engine: the archs its suites build, its GPUs and its build cap."""
        caps = {e.name: e.jobs for e in options.engines}
        return [
            EngineSlots(
                name=s.engine,
                archs=frozenset(s.suites),
                gpus=s.gpu_indices,
                per_gpu=options.per_gpu,
                jobs=caps.get(s.engine),
            )
            for s in self.sessions.values()
        ]

    def cancel(self) -> None:
        """Kill every container this invocation started, on every engine."""
        for session in self.sessions.values():
            kill_labelled(session.client, {"org.hailoc.run": self.run_id})

    # -- helpers ----------------------------------------------------------------------------
    def _calib_blob(self, job: Job, stages: Stages) -> str:
        """The calibration array as a blob: calib.npy's own bytes, which hash to the set's
        recorded sha256 (hailoc checked them when it read the set)."""
        inputs = job.inputs
        return self.host.blob(
            f"{inputs.calib_sha256}.npy",
            inputs.calib_sha256,
            inputs.calib_path.read_bytes,
            stages.damaged,
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
        inputs = self.host.inputs(job_file, previous)
        job_file["sha256"] = {path: sha for path, (_, sha) in inputs.items()}

        def produce(workdir: Path) -> StageOutput:
            work = {**(extra_files or {}), "job.json": json.dumps(job_file, indent=1).encode()}
            run = StageRun(
                session.client,
                session.suite(job.target.hw_arch).image,
                StageFiles(inputs, work),
                blobs=session.blobs,
                timeout=job.options.stage_timeout,
                gpus=session.gpus,
                gpu_index=job.slot.gpu if job.slot is not None else None,
                labels={
                    "org.hailoc.model": job.target.model,
                    "org.hailoc.stage": stage,
                    "org.hailoc.run": self.run_id,
                    "org.hailoc.pid": str(os.getpid()),
                    "org.hailoc.host": socket.gethostname(),
                },
            )
            outcome = self._run(run, workdir, stages.log)
            # The DFC's own logs (written into its working directory) are kept either way.
            logs = {p.name: p for p in sorted((workdir / "cwd").glob("*.log")) if p.is_file()}
            raise_if_failed(stage, outcome, job.options.stage_timeout, logs)
            files = {name: workdir / "out" / name for name in outputs}
            missing = [n for n, p in files.items() if not p.is_file()]
            if missing:
                raise StageFailure(
                    UNKNOWN.name,
                    f"{stage} reported ok but wrote no {', '.join(missing)}",
                    UNKNOWN.hint,
                )
            result = outcome.result or {}
            verified.update(check_outputs(stage, files, result, logs))
            files.update({f"logs/{name}": path for name, path in logs.items()})
            return StageOutput(
                files,
                worker_seconds=as_float(result.get("seconds")),
                peak_rss_mb=as_float(result.get("peak_rss_mb")),
            )

        verified: dict[str, str] = {}
        entry = stages.run(stage, key, produce)
        # The entry holds copies of the outputs just checked: the next stage that reads one
        # (a HAR of hundreds of MB) takes its hash from here instead of reading it again.
        self.host.remember(entry, verified)
        return entry
