"""Build one model with the Hailo DFC: parse -> render .alls -> optimize -> compile, cached."""

from __future__ import annotations

import hashlib
import io
import logging
import re
import shutil
import time
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from hailoc.alls import render_alls
from hailoc.backend.hailo import docker_env
from hailoc.backend.hailo.container import Mount, StageOutcome, prepare_workdir, run_stage
from hailoc.build.inputs import BuildInputs, InputsCache
from hailoc.build.layout import BuildTarget, output_dir
from hailoc.build.options import BuildOptions
from hailoc.build.planning import AUTO_HINT, plan_for
from hailoc.build.reporter import Reporter
from hailoc.cache import StageCache, cache_key
from hailoc.errors import HailocError
from hailoc.eval.gate import GateVerdict, accuracy_record, hint_for, judge
from hailoc.eval.report import write_build_report
from hailoc.eval.sweep import EvalResult, evaluate, split_sizes, stack_sizes
from hailoc.failures import KILLED, TIMEOUT, UNKNOWN, classify
from hailoc.fsutil import atomic_write_bytes, atomic_write_text
from hailoc.manifest import LoadedManifest, ModelConfig
from hailoc.plan import read_hn, resolve_plan
from hailoc.records import BuildRecord, StageRecord

log = logging.getLogger(__name__)

STANDIN_MAGIC = b"HAILOC-STANDIN-NOT-A-HEF"
WS = "/local/workspace"


@dataclass(frozen=True)
class HailoSession:
    """A connected engine with the suite and hailoc's DFC image ready."""

    client: Any
    image: str
    suite_ref: str
    suite_id: str
    gpus: bool
    worker: str


def open_session(manifest: LoadedManifest, options: BuildOptions) -> HailoSession:
    """Check the daemon and the suite image, build the DFC image if needed."""
    target = docker_env.DockerTarget(options.docker_host, options.docker_context)
    client = docker_env.connect(target)
    suite_ref = options.suite_image or manifest.data.defaults.suite_image
    suite_id = docker_env.suite_image_id(client, suite_ref)
    image = docker_env.ensure_dfc_image(client, suite_ref, suite_id, manifest.root)
    gpus = docker_env.has_gpu_runtime(client) if options.gpus is None else options.gpus
    return HailoSession(client, image, suite_ref, suite_id, gpus, docker_env.worker_digest())


class StageFailed(Exception):
    """A stage ended without its outputs; the record already says why."""


def _net_name(model: str) -> str:
    return re.sub(r"\W", "_", model)


class HailoBuilder:
    """Builds targets one at a time against an open session."""

    def __init__(
        self,
        manifest: LoadedManifest,
        options: BuildOptions,
        session: HailoSession,
        reporter: Reporter,
        inputs: InputsCache | None = None,
    ) -> None:
        self.manifest = manifest
        self.options = options
        self.session = session
        self.reporter = reporter
        self.inputs = inputs or InputsCache(manifest)
        self.cache = StageCache(manifest.root / ".hailoc" / "cache")
        self.work_root = manifest.root / ".hailoc" / "work"

    # -- public -----------------------------------------------------------------------------
    def build(self, target: BuildTarget, slot: int | None = None) -> BuildRecord:
        """Build one target; failures end up in the returned record, never as exceptions."""
        started = time.monotonic()
        out = output_dir(self.manifest.hef_dir, target)
        out.mkdir(parents=True, exist_ok=True)
        record = BuildRecord(target.model, "hailo", target.hw_arch, target.precision)
        log_lines: list[str] = []
        try:
            self._build(target, record, out, log_lines, slot)
        except StageFailed:
            pass
        except HailocError as exc:
            record.fail("input", str(exc), exc.fix or "fix the input named in the message")
        record.seconds = round(time.monotonic() - started, 3)
        record.log_tail = log_lines[-30:]
        self._finish(out, record, log_lines)
        self.reporter.done(record)
        return record

    # -- steps ------------------------------------------------------------------------------
    def _build(
        self,
        target: BuildTarget,
        record: BuildRecord,
        out: Path,
        log_lines: list[str],
        slot: int | None,
    ) -> None:
        inputs = self.inputs.get(target.model)
        cfg = inputs.config
        calib = inputs.calib
        sizes = cfg.gate.face_sizes
        eval_stack = stack_sizes(inputs.eval_faces, sizes)
        eval_bytes = _npy_bytes(eval_stack)
        record.inputs = inputs.describe(self.manifest) | {
            "eval_sha256": hashlib.sha256(eval_bytes).hexdigest(),
            "suite_image": self.session.suite_ref,
            "suite_image_id": self.session.suite_id,
            "dfc_image": self.session.image,
            "worker_sha256": self.session.worker,
        }
        parse_key = cache_key(
            "parse",
            {
                k: record.inputs[k]
                for k in ("onnx_sha256", "suite_image_id", "worker_sha256", "hailoc_version")
            }
            | {
                "hw_arch": target.hw_arch,
                "net": _net_name(cfg.name),
                "input": cfg.input.model_dump(mode="json"),
                "start_nodes": cfg.start_nodes,
                "end_nodes": cfg.end_nodes,
            },
        )
        parse_dir = self._stage(
            target,
            record,
            log_lines,
            slot,
            "parse",
            parse_key,
            job={
                "onnx": f"{WS}/models/{cfg.onnx.name}",
                "net_name": _net_name(cfg.name),
                "hw_arch": target.hw_arch,
                "start_nodes": list(cfg.start_nodes),
                "end_nodes": list(cfg.end_nodes),
                "input_name": cfg.input.name,
                "input_shape": list(cfg.input.shape),
            },
            mounts=[Mount(cfg.onnx.parent, f"{WS}/models")],
            outputs=("parsed.har", "parsed.hn.json"),
        )
        hn_path = parse_dir / "parsed.hn.json"
        if target.precision == "auto":
            self.reporter.stage(target, "auto-search", False)
        plan, auto = plan_for(self.manifest, inputs, target.precision, self.options)
        if auto is not None and not auto.reached:
            record.fail("auto_target", auto.message, AUTO_HINT)
            raise StageFailed("auto")
        resolved = resolve_plan(plan, read_hn(hn_path))
        alls = render_alls(cfg, resolved, self.manifest.templates_dir)
        record.plan = {
            "onnx_nodes": list(plan.onnx_nodes),
            "a16_layers": list(resolved.a16_layers),
            "excluded": [e.__dict__ for e in resolved.excluded],
            **({"auto": {"layers": auto.layers, "message": auto.message}} if auto else {}),
        }
        record.inputs["alls"] = alls
        record.inputs["alls_sha256"] = hashlib.sha256(alls.encode()).hexdigest()

        optimize_key = cache_key(
            "optimize",
            {
                "parse": parse_key,
                "alls_sha256": record.inputs["alls_sha256"],
                "calibration_sha256": record.inputs["calibration_sha256"],
                "eval_sha256": record.inputs["eval_sha256"],
                "channel_order": cfg.input.color,
            },
        )
        optimize_dir = self._stage(
            target,
            record,
            log_lines,
            slot,
            "optimize",
            optimize_key,
            job={
                "har_in": f"{WS}/in/parsed.har",
                "alls": f"{WS}/work/model.alls",
                "calib": f"{WS}/calibration/{calib.name}",
                "eval": f"{WS}/work/eval.npy",
                "hw_arch": target.hw_arch,
                "channel_order": cfg.input.color,
            },
            mounts=[Mount(parse_dir, f"{WS}/in"), Mount(calib.parent, f"{WS}/calibration")],
            outputs=("optimized.har", "emulate_fp.npy", "emulate_q.npy"),
            extra_files={"model.alls": alls.encode(), "eval.npy": eval_bytes},
        )
        result, verdict = self._gate(target, inputs, optimize_dir, record)
        if not verdict.passed and not self.options.skip_gate:
            # Compiling takes hours on real models: a build that fails the gate stops here.
            klass = verdict.failure_class or "accuracy"
            record.fail(klass, verdict.message, hint_for(klass))
            self._report(target, record, result)
            raise StageFailed("gate")
        compile_key = cache_key("compile", {"optimize": optimize_key})
        compile_dir = self._stage(
            target,
            record,
            log_lines,
            slot,
            "compile",
            compile_key,
            job={"har_in": f"{WS}/in/optimized.har", "hw_arch": target.hw_arch},
            mounts=[Mount(optimize_dir, f"{WS}/in")],
            outputs=("model.hef",),
        )
        self._promote(cfg, record, out, alls, hn_path, compile_dir / "model.hef")
        if not verdict.passed:
            record.message = verdict.skipped_note
        self._report(target, record, result)

    def _gate(
        self, target: BuildTarget, inputs: BuildInputs, optimize_dir: Path, record: BuildRecord
    ) -> tuple[EvalResult, GateVerdict]:
        """Compare the DFC's quantized emulation with the fp32 ONNX model, before compiling."""
        from hailoc.backend.onnxruntime.session import embed_at_sizes

        cfg = inputs.config
        sizes = cfg.gate.face_sizes
        self.reporter.stage(target, "gate", False)
        reference = embed_at_sizes(cfg.onnx, cfg, inputs.eval_faces, sizes)
        fp_emulated = split_sizes(np.load(optimize_dir / "emulate_fp.npy"), sizes)
        quantized = split_sizes(np.load(optimize_dir / "emulate_q.npy"), sizes)
        result = evaluate(reference, quantized)
        judged = judge(result, cfg.gate)
        # The DFC's own full-precision emulation must match ONNX: if not, the .alls
        # normalization or colour order is wrong, whatever quantization did.
        fp_check = evaluate(reference, fp_emulated).agreement
        reasons = list(judged.reasons)
        klass = judged.failure_class
        if fp_check.mean < cfg.gate.min_mean_agreement:
            reasons.insert(
                0,
                f"the DFC's full-precision emulation already differs from the ONNX model "
                f"(agreement {fp_check.mean:.4f}): check normalization and colour order",
            )
            klass = klass or "accuracy"
        verdict = GateVerdict(not reasons, klass, tuple(reasons))
        record.accuracy = accuracy_record(
            result,
            verdict,
            emulator_fp_agreement=asdict(fp_check),
            eval_source=inputs.eval_source,
        )
        return result, verdict

    def _report(self, target: BuildTarget, record: BuildRecord, result: EvalResult) -> None:
        write_build_report(output_dir(self.manifest.hef_dir, target), record, result)

    def _stage(
        self,
        target: BuildTarget,
        record: BuildRecord,
        log_lines: list[str],
        slot: int | None,
        stage: str,
        key: str,
        *,
        job: dict[str, Any],
        mounts: list[Mount],
        outputs: tuple[str, ...],
        extra_files: dict[str, bytes] | None = None,
    ) -> Path:
        cached = None if self.options.rerun(stage) else self.cache.lookup(stage, key)
        self.reporter.stage(target, stage, cached is not None)
        if cached is not None:
            record.stages.append(StageRecord(stage, "ok", 0.0, cache_hit=True, cache_key=key))
            return cached
        workdir = self.work_root / uuid.uuid4().hex[:12]
        try:
            prepare_workdir(workdir, extra_files or {})
            started = time.monotonic()

            def on_line(text: str) -> None:
                log_lines.append(text)
                self.reporter.line(target, text)

            outcome = run_stage(
                self.session.client,
                self.session.image,
                {**job, "stage": stage, "out_dir": f"{WS}/work/out"},
                workdir,
                mounts,
                timeout=self.options.stage_timeout,
                gpus=self.session.gpus,
                gpu_index=slot,
                on_line=on_line,
                labels={"org.hailoc.model": target.model, "org.hailoc.stage": stage},
            )
            seconds = round(time.monotonic() - started, 3)
            stage_record = _stage_record(stage, key, seconds, outcome)
            record.stages.append(stage_record)
            if stage_record.status != "ok":
                _fail(record, stage_record, outcome, self.options.stage_timeout)
                raise StageFailed(stage)
            files = {name: workdir / "out" / name for name in outputs}
            missing = [n for n, p in files.items() if not p.is_file()]
            if missing:
                record.fail(
                    "unknown",
                    f"{stage} reported ok but wrote no {', '.join(missing)}",
                    UNKNOWN.hint,
                )
                raise StageFailed(stage)
            return self.cache.store(stage, key, files, {"stage": stage, "result": outcome.result})
        finally:
            shutil.rmtree(workdir, ignore_errors=True)

    def _promote(
        self, cfg: ModelConfig, record: BuildRecord, out: Path, alls: str, hn: Path, hef: Path
    ) -> None:
        data = hef.read_bytes()
        standin = data.startswith(STANDIN_MAGIC)
        # A stand-in's output must never pass for a HEF: different name, flagged in the record.
        name = f"{cfg.name}.standin-not-a-hef" if standin else f"{cfg.name}.hef"
        atomic_write_text(out / "model.alls", alls)
        atomic_write_bytes(out / "parsed.hn.json", hn.read_bytes())
        atomic_write_bytes(out / name, data)
        record.artifacts = {
            "hef" if not standin else "standin_output": {
                "path": str(out / name),
                "sha256": hashlib.sha256(data).hexdigest(),
                **({"note": "produced by the test stand-in DFC: NOT a HEF"} if standin else {}),
            },
            "alls": {"path": str(out / "model.alls"), "sha256": record.inputs["alls_sha256"]},
        }
        record.status = "ok"
        if standin:
            log.warning("%s: built with the stand-in DFC; %s is NOT a HEF", cfg.name, name)

    def _finish(self, out: Path, record: BuildRecord, log_lines: list[str]) -> None:
        if record.status != "ok":
            # What sits beside record.json always matches it: no stale HEF after a failure.
            for stale in (f"{record.model}.hef", f"{record.model}.standin-not-a-hef"):
                (out / stale).unlink(missing_ok=True)
        atomic_write_text(out / "build.log", "\n".join(log_lines) + ("\n" if log_lines else ""))
        record.write(out / "record.json")


def _npy_bytes(array: np.ndarray[Any, Any]) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


def _stage_record(stage: str, key: str, seconds: float, outcome: StageOutcome) -> StageRecord:
    result = outcome.result or {}
    ok = result.get("status") == "ok" and outcome.exit_code == 0 and not outcome.timed_out
    return StageRecord(
        name=stage,
        status="ok" if ok else "failed",
        seconds=seconds,
        cache_key=key,
        worker_seconds=result.get("seconds"),
        peak_rss_mb=result.get("peak_rss_mb"),
        error_type=result.get("error_type"),
        message=result.get("message"),
        traceback_tail=list(result.get("traceback_tail", [])),
    )


def _fail(record: BuildRecord, stage: StageRecord, outcome: StageOutcome, timeout: float) -> None:
    if outcome.timed_out:
        record.fail(TIMEOUT.name, f"{stage.name} exceeded its {timeout:g} s timeout", TIMEOUT.hint)
    elif outcome.result is None:
        how = (
            "out of memory (OOMKilled)"
            if outcome.oom_killed
            else (f"exit code {outcome.exit_code}")
        )
        record.fail(
            KILLED.name, f"{stage.name} container died without a result: {how}", KILLED.hint
        )
    else:
        known = classify(stage.error_type or "", stage.message or "")
        record.fail(known.name, f"{stage.name}: {stage.error_type}: {stage.message}", known.hint)
