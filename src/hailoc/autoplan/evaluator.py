"""Score one 16-bit layer set on the ONNX Runtime emulation, with a persistent memo."""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hailoc.backend.onnxruntime.qdq_plan import render_qdq
from hailoc.backend.onnxruntime.quantize import quantize
from hailoc.backend.onnxruntime.session import embed_at_sizes
from hailoc.build.inputs import BuildInputs
from hailoc.eval.sweep import BySize, evaluate
from hailoc.fsutil import atomic_write_text
from hailoc.plan import PrecisionPlan


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

    def __init__(self, inputs: BuildInputs, memo: Path, metric: str, face_size: int) -> None:
        import onnx

        self.inputs = inputs
        self.cfg = inputs.config
        self.metric = metric
        self.face_size = face_size
        self.memo_path = memo / "evaluations.json"
        self.ranges = memo / "ranges.cache"
        memo.mkdir(parents=True, exist_ok=True)
        self.memo: dict[str, dict[str, Any]] = (
            json.loads(self.memo_path.read_text()) if self.memo_path.is_file() else {}
        )
        self.model = onnx.load(str(self.cfg.onnx), load_external_data=False)
        self._reference: BySize | None = None
        self.computed = 0
        self.reused = 0

    def reference(self) -> BySize:
        """fp32 embeddings of the eval faces at every size (computed once)."""
        if self._reference is None:
            self._reference = embed_at_sizes(
                self.cfg.onnx, self.cfg, self.inputs.eval_faces, self.cfg.gate.face_sizes
            )
        return self._reference

    def score(self, layers: tuple[str, ...]) -> Score:
        """Score of running `layers` in 16-bit and everything else in int8."""
        key = ",".join(sorted(layers)) or "<int8>"
        if key in self.memo:
            self.reused += 1
            return Score.from_dict(self.memo[key])
        plan = PrecisionPlan(self.cfg.name, "auto", tuple(layers))
        qplan = render_qdq(plan, self.model)
        with tempfile.TemporaryDirectory(prefix="hailoc-auto-") as tmp:
            path = Path(tmp) / "q.onnx"
            quantize(
                self.cfg.onnx,
                self.inputs.calib,
                self.cfg,
                qplan,
                path,
                calibset_size=self.cfg.optimization.calibset_size,
                ranges_cache=self.ranges,
            )
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
