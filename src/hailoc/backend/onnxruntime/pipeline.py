"""Emulate a Hailo build on any machine: QDQ quantization with the same plan, then the gate."""

from __future__ import annotations

import logging
import tempfile
import time
from pathlib import Path

from hailoc import __version__
from hailoc.autoplan import AutoResult
from hailoc.backend.onnxruntime.qdq_plan import QdqPlan, render_qdq
from hailoc.backend.onnxruntime.quantize import quantize
from hailoc.backend.onnxruntime.session import embed_at_sizes
from hailoc.build.inputs import BuildInputs, InputsCache
from hailoc.build.layout import BuildTarget, output_dir
from hailoc.build.options import BuildOptions
from hailoc.build.planning import AUTO_HINT, plan_for
from hailoc.build.reporter import Reporter
from hailoc.cache import StageCache, cache_key
from hailoc.eval.gate import accuracy_record, hint_for, judge
from hailoc.eval.report import write_build_report
from hailoc.eval.sweep import EvalResult, evaluate
from hailoc.fsutil import atomic_write_bytes, sha256_file
from hailoc.manifest import LoadedManifest
from hailoc.records import BuildRecord, StageRecord

log = logging.getLogger(__name__)


def _ort_version() -> str:
    import onnxruntime

    return str(onnxruntime.__version__)


class OrtBuilder:
    """Builds targets with ONNX Runtime on the host; outputs are QDQ models, never HEFs."""

    def __init__(
        self,
        manifest: LoadedManifest,
        options: BuildOptions,
        reporter: Reporter,
        inputs: InputsCache | None = None,
    ) -> None:
        self.manifest = manifest
        self.options = options
        self.reporter = reporter
        self.inputs = inputs or InputsCache(manifest)
        self.cache = StageCache(manifest.root / ".hailoc" / "cache")

    def build(self, target: BuildTarget, slot: int | None = None) -> BuildRecord:
        """Quantize, evaluate, gate; input problems raise HailocError before anything is written."""
        started = time.monotonic()
        inputs = self.inputs.get(target.model)
        cfg = inputs.config
        record = BuildRecord(target.model, "onnxruntime", target.hw_arch, target.precision)
        if target.precision == "auto":
            self.reporter.stage(target, "auto-search", False)
        plan, auto = plan_for(self.manifest, inputs, target.precision, self.options)
        import onnx

        qplan = render_qdq(plan, onnx.load(str(cfg.onnx), load_external_data=False))
        record.plan = {
            "onnx_nodes": list(plan.onnx_nodes),
            "a16_tensors": list(qplan.tensors),
            "excluded": [e.__dict__ for e in plan.excluded],
            **({"auto": _auto_summary(auto)} if auto else {}),
        }
        record.inputs = inputs.describe(self.manifest) | {"onnxruntime_version": _ort_version()}
        if auto is not None and not auto.reached:
            return self._auto_missed(target, record, auto, started)
        qdq = self._quantize(target, inputs, qplan, record)
        result = self._evaluate(target, inputs, qdq, record)
        verdict = judge(result, cfg.gate)
        record.accuracy = accuracy_record(result, verdict, eval_source=inputs.eval_source)
        out = output_dir(self.manifest.hef_dir, target)
        out.mkdir(parents=True, exist_ok=True)
        artifact = out / f"{cfg.name}.qdq.onnx"
        if verdict.passed or self.options.skip_gate:
            atomic_write_bytes(artifact, qdq.read_bytes())
            record.artifacts = {
                "qdq_onnx": {
                    "path": str(artifact),
                    "sha256": sha256_file(artifact),
                    "note": "ONNX Runtime QDQ emulation of the Hailo plan: NOT a HEF",
                }
            }
            record.status = "ok"
            if not verdict.passed:
                record.message = verdict.skipped_note
        else:
            artifact.unlink(missing_ok=True)
            assert verdict.failure_class is not None
            record.fail(verdict.failure_class, verdict.message, hint_for(verdict.failure_class))
        return self._finish(out, record, started, result)

    def _auto_missed(
        self, target: BuildTarget, record: BuildRecord, auto: AutoResult, started: float
    ) -> BuildRecord:
        out = output_dir(self.manifest.hef_dir, target)
        out.mkdir(parents=True, exist_ok=True)
        (out / f"{target.model}.qdq.onnx").unlink(missing_ok=True)
        record.fail("auto_target", auto.message, AUTO_HINT)
        return self._finish(out, record, started, None)

    def _finish(
        self, out: Path, record: BuildRecord, started: float, result: EvalResult | None
    ) -> BuildRecord:
        record.seconds = round(time.monotonic() - started, 3)
        if result is not None:
            write_build_report(out, record, result)
        record.write(out / "record.json")
        self.reporter.done(record)
        return record

    def _quantize(
        self, target: BuildTarget, inputs: BuildInputs, qplan: QdqPlan, record: BuildRecord
    ) -> Path:
        cfg = inputs.config
        key = cache_key(
            "ort-quantize",
            {
                "onnx_sha256": inputs.onnx_sha256,
                "calibration_sha256": inputs.calib_sha256,
                "calibset_size": cfg.optimization.calibset_size,
                "input": cfg.input.model_dump(mode="json"),
                "normalization": cfg.normalization.model_dump(mode="json"),
                "a16_tensors": list(qplan.tensors),
                "onnxruntime": _ort_version(),
                "hailoc": __version__,
            },
        )
        cached = None if self.options.force else self.cache.lookup("ort-quantize", key)
        self.reporter.stage(target, "quantize", cached is not None)
        if cached is not None:
            record.stages.append(StageRecord("quantize", "ok", 0.0, cache_hit=True, cache_key=key))
            return cached / "model.qdq.onnx"
        started = time.monotonic()
        with tempfile.TemporaryDirectory(prefix="hailoc-q-") as tmp:
            path = Path(tmp) / "model.qdq.onnx"
            facts = quantize(
                cfg.onnx,
                inputs.calib,
                cfg,
                qplan,
                path,
                calibset_size=cfg.optimization.calibset_size,
            )
            entry = self.cache.store("ort-quantize", key, {"model.qdq.onnx": path}, facts)
        record.stages.append(
            StageRecord("quantize", "ok", round(time.monotonic() - started, 3), cache_key=key)
        )
        return entry / "model.qdq.onnx"

    def _evaluate(
        self, target: BuildTarget, inputs: BuildInputs, qdq: Path, record: BuildRecord
    ) -> EvalResult:
        self.reporter.stage(target, "evaluate", False)
        started = time.monotonic()
        cfg = inputs.config
        sizes = cfg.gate.face_sizes
        result = evaluate(
            embed_at_sizes(cfg.onnx, cfg, inputs.eval_faces, sizes),
            embed_at_sizes(qdq, cfg, inputs.eval_faces, sizes),
        )
        record.stages.append(StageRecord("evaluate", "ok", round(time.monotonic() - started, 3)))
        return result


def _auto_summary(auto: AutoResult) -> dict[str, object]:
    return {
        "reached": auto.reached,
        "message": auto.message,
        "layers": auto.layers,
        "target": auto.target,
        "metric": auto.metric,
        "face_size": auto.face_size,
        "auto_plan": "../../auto_plan.json",
    }
