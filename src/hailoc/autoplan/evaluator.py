"""Score one 16-bit layer set on the ONNX Runtime emulation, with a persistent memo."""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hailoc.backends.onnxruntime.backend import QDQ
from hailoc.backends.onnxruntime.qdq_plan import QdqPlan, render_qdq
from hailoc.backends.onnxruntime.quantize import quantize, quantize_key
from hailoc.cache import StageCache
from hailoc.eval.sweep import BySize, evaluate
from hailoc.fsutil import atomic_write_text
from hailoc.inference.session import embed_at_sizes
from hailoc.inputs import BuildInputs
from hailoc.plan import PrecisionPlan
from hailoc.reference import References


@dataclass(frozen=True)
class Score:
    """What one layer set achieves: the search metric and the overall agreement."""

    metric: float
    mean: float
    worst: float
    per_size: dict[int, tuple[float, float]]  # size -> (mean, worst) agreement

    def as_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {
            "metric": self.metric,
            "mean": self.mean,
            "worst": self.worst,
            "per_size": {str(k): list(v) for k, v in self.per_size.items()},
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Score:
        """Inverse of as_dict."""
        per_size = {int(k): (float(v[0]), float(v[1])) for k, v in data["per_size"].items()}
        return cls(data["metric"], data["mean"], data["worst"], per_size)


class Evaluator:
    """Quantizes with a layer set in 16-bit and measures agreement; results are memoised on disk
    so a second search with the same inputs does no model work."""

    def __init__(
        self, inputs: BuildInputs, cache_root: Path, memo: Path, metric: str, face_size: int
    ) -> None:
        self.inputs = inputs
        self.cfg = inputs.config
        self.metric = metric
        self.face_size = face_size
        self.memo_path = memo / "evaluations.json"
        self.ranges = memo / "ranges.cache"
        memo.mkdir(parents=True, exist_ok=True)
        try:
            self.memo: dict[str, dict[str, Any]] = (
                json.loads(self.memo_path.read_text()) if self.memo_path.is_file() else {}
            )
        except ValueError:
            self.memo = {}  # a damaged memo only costs evaluations
        self.model = inputs.onnx_proto
        self.stage_cache = StageCache(cache_root)
        self.references = References(cache_root)
        self.computed = 0
        self.reused = 0

    def reference(self) -> BySize:
        """fp32 embeddings of the eval faces at every size (shared with builds)."""
        return self.references.get(self.inputs, self.cfg.gate.face_sizes)

    def _quantized(self, qplan: QdqPlan, path: Path) -> Path:
        """The QDQ model of `qplan`: a build's cache entry when one exists, else made here."""
        entry = self.stage_cache.lookup("quantize", quantize_key(self.inputs, qplan))
        if entry is not None:
            return entry / QDQ
        quantize(
            self.model,
            self.inputs.calib,
            self.cfg,
            qplan,
            path,
            calibset_size=self.cfg.optimization.calibset_size,
            ranges_cache=self.ranges,
        )
        return path

    def materialize(self, layers: tuple[str, ...]) -> None:
        """Put the QDQ model of `layers` into the stage cache, where a build of it will look."""
        qplan = render_qdq(PrecisionPlan(self.cfg.name, "auto", tuple(layers)), self.model)
        key = quantize_key(self.inputs, qplan)
        if self.stage_cache.lookup("quantize", key) is not None:
            return
        with tempfile.TemporaryDirectory(prefix="hailoc-auto-", dir=self.ranges.parent) as tmp:
            path = self._quantized(qplan, Path(tmp) / QDQ)
            self.stage_cache.store("quantize", key, {QDQ: path}, {"stage": "quantize"})

    def score(self, layers: tuple[str, ...]) -> Score:
        """Score of running `layers` in 16-bit and everything else in int8."""
        key = ",".join(sorted(layers)) or "<int8>"
        if key in self.memo:
            self.reused += 1
            return Score.from_dict(self.memo[key])
        plan = PrecisionPlan(self.cfg.name, "auto", tuple(layers))
        qplan = render_qdq(plan, self.model)
        with tempfile.TemporaryDirectory(prefix="hailoc-auto-", dir=self.ranges.parent) as tmp:
            path = self._quantized(qplan, Path(tmp) / QDQ)
            candidate = embed_at_sizes(
                path, self.cfg, self.inputs.eval_faces, self.cfg.gate.face_sizes
            )
        result = evaluate(self.reference(), candidate)
        per_size = {r.size: (r.agreement_mean, r.agreement_min) for r in result.sweep}
        at = (
            per_size.get(self.face_size)
            or per_size[min(per_size, key=lambda s: abs(s - self.face_size))]
        )
        metric = at[1] if self.metric == "worst" else at[0]
        score = Score(metric, result.agreement.mean, result.agreement.min, per_size)
        self.memo[key] = score.as_dict()
        self.computed += 1
        atomic_write_text(self.memo_path, json.dumps(self.memo, indent=0, sort_keys=True))
        return score
