"""`--precision auto`: the fewest 16-bit layers whose agreement interval clears the target.

Layers are ranked once by the noise each adds in the int8 model (fp32 vs int8 activations);
the search bisects on k (the k noisiest layers in 16-bit) and then tries to drop a few of the
chosen layers again: O(log L) evaluations instead of one per layer. Every evaluation toggles
layers in a model quantized once (no quantizer run), and is memoised. The bisection glances
at plans (their hardest faces only): measuring a plan that reaches on every face costs ~8x a
glance, and only the plan returned needs it.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from hailoc import __version__
from hailoc.autoplan.cost import plan_cost, tensor_elements
from hailoc.autoplan.evaluator import Evaluator
from hailoc.autoplan.objective import Depth, Measure
from hailoc.backends.onnxruntime.qdq_plan import render_qdq
from hailoc.backends.onnxruntime.quantize import quantize_key
from hailoc.cache import cache_key
from hailoc.errors import HailocError, PlanError
from hailoc.inputs import BuildInputs
from hailoc.manifest.schema import AutoSearch
from hailoc.owned_files import atomic_write_text
from hailoc.plan import PrecisionPlan
from hailoc.plan.support import a16_refusal, kind_for_onnx
from hailoc.records.layout import AUTO_PLAN_FILES

NON_CONV = frozenset({"Gemm", "MatMul"})


class EvalSetTooSmall(HailocError):
    """Too few eval faces for the objective's interval to mean anything."""

    exit_code = 1


class SearchProgress(Protocol):
    """Receives progress while the search evaluates layer sets."""

    def start(self, total: int, what: str) -> None:
        """A phase begins with `total` evaluations planned."""

    def advance(self) -> None:
        """One evaluation done."""

    def finish(self) -> None:
        """The phase ended (possibly before `total`)."""


class Scorer(Protocol):
    """Ranks layers once and measures layer sets: the ONNX Runtime toggle (evaluator.py) or a
    backend's own quantizer and noise analysis (Hailo: the DFC's optimize stages)."""

    source: str  # "ort" | "dfc": where the ranking and the scores come from
    unit: str  # what a ranking value is: "noise_added" (higher = worse) or "snr_db" (lower)
    polish: int  # chosen layers the search may try to drop again after bisection
    computed: int
    reused: int

    def ranking(self) -> list[tuple[str, float]]:
        """(layer, value), most harmful first."""

    def score(self, layers: tuple[str, ...], depth: Depth = Depth.DECIDED) -> Measure:
        """The objective with `layers` in 16-bit and every other layer in 8-bit, measured at
        least as far as `depth` asks: a scorer may measure every face whatever it asks. A
        measure of part of the faces (`Measure.stopped_at`) is an upper bound."""

    def materialize(self, layers: tuple[str, ...]) -> None:
        """Leave the chosen plan where the build that follows will look for it."""

    def runs(self) -> list[dict[str, Any]]:
        """Every expensive step the scorer ran (Hailo: optimize stages), for auto_plan.json."""


class _Silent:
    def start(self, total: int, what: str) -> None:
        pass

    def advance(self) -> None:
        pass

    def finish(self) -> None:
        pass


@dataclass
class AutoResult:
    """The chosen layer set, why, and every plan the search measured."""

    model: str
    target: float
    metric: str
    face_size: int
    confidence: float
    reached: bool
    layers: list[str]
    score: dict[str, Any]
    baseline: dict[str, Any]
    all_candidates: dict[str, Any]
    sensitivity: list[dict[str, Any]]  # the ranking: layer and the int8 noise it adds
    curve: list[dict[str, Any]]  # every evaluated plan, by layer count
    excluded: list[dict[str, str]]
    candidates: int
    budget: dict[str, Any]
    eval_faces: int
    ranking_source: str = "ort"
    stage_runs: list[dict[str, Any]] = field(default_factory=list)
    evaluations: int = 0
    reused_evaluations: int = 0
    seconds: float = 0.0
    objective: str = ""
    # 16-bit bytes of the chosen plan (weights + activations) and of int16-all (autoplan/cost.py)
    cost_bytes: int = 0
    int16_all_cost_bytes: int = 0
    hailoc_version: str = __version__
    notes: list[str] = field(default_factory=list)

    def plan(self) -> PrecisionPlan:
        """The precision plan the search chose, shared by both backends."""
        return PrecisionPlan(self.model, "auto", tuple(self.layers))

    @property
    def message(self) -> str:
        """One line: reached or not, with the numbers."""
        low = self.score["interval"][0]
        what = f"{self.objective} (interval low {low:.4f})"
        if self.reached:
            return (
                f"{len(self.layers)} of {self.candidates} layers in 16-bit reach {what} "
                f">= {self.target}"
            )
        return (
            f"target {self.target} not reached: the best plan found, {len(self.layers)} layers "
            f"in 16-bit, gives {what}"
        )

    def write(self, path: Path) -> None:
        """auto_plan.json, atomically."""
        atomic_write_text(path, json.dumps(asdict(self), indent=1) + "\n")


def _weights(model: Any) -> dict[str, int]:
    sizes = {i.name: int(np.prod(i.dims)) if i.dims else 1 for i in model.graph.initializer}
    return {n.name: sizes.get(n.input[1], 0) if len(n.input) > 1 else 0 for n in model.graph.node}


def _candidates(
    inputs: BuildInputs, spec: AutoSearch, avoid: Mapping[str, str] | None = None
) -> tuple[list[str], list[dict[str, str]]]:
    """Weight layers that may run 16-bit on Hailo, minus the ones known to trip the DFC
    (by rule, or `avoid`: layers a wall of an earlier build named, with why)."""
    keep, excluded = [], []
    for node in inputs.graph.weight_nodes:
        why = a16_refusal(kind_for_onnx(node.op_type)) or (avoid or {}).get(node.name)
        if why is None and node.op_type in NON_CONV:
            width = node.out_shape[-1] if node.out_shape else 0
            if width > spec.max_non_conv_width:
                why = (
                    f"non-conv layer {width} wide > {spec.max_non_conv_width}: 16-bit trips "
                    "the allocator (needs super-defuse)"
                )
        if why is None:
            keep.append(node.name)
        else:
            excluded.append({"layer": node.name, "op": node.op_type, "why": why})
    if not keep:
        raise PlanError(
            "no layer may run in 16-bit",
            where=f"models.{inputs.config.name}",
            fix="use --precision int8",
        )
    return keep, excluded


def _check(inputs: BuildInputs, spec: AutoSearch) -> None:
    cfg = inputs.config
    if spec.face_size not in cfg.gate.face_sizes:
        raise PlanError(
            f"auto.face_size {spec.face_size} is not one of gate.face_sizes "
            f"{list(cfg.gate.face_sizes)}",
            where=f"models.{cfg.name}.auto.face_size",
            fix="pick a size the gate evaluates, or add it to gate.face_sizes",
        )
    faces = len(inputs.eval_faces)
    if faces < spec.min_eval_faces:
        raise EvalSetTooSmall(
            f"the eval set has {faces} faces; deciding a plan needs at least "
            f"{spec.min_eval_faces} ({spec.min_eval_faces - faces} more): with fewer, the "
            f"{spec.metric} agreement's interval is too wide to choose layers",
            where=f"calibration/{cfg.calib_set}/eval.npy",
            fix="rebuild the set from more photos (or a larger --eval-split) with "
            "`hailoc calib build`",
        )


def _search_key(inputs: BuildInputs, spec: AutoSearch, candidates: list[str]) -> str:
    """What a search's evaluations depend on: model, calibration, eval faces, settings."""
    return cache_key(
        "auto",
        inputs.quantization_identity()
        | {
            "eval_sha256": inputs.eval_sha256,
            "metric": spec.metric,
            "face_size": spec.face_size,
            "confidence": spec.confidence,
            "candidates": candidates,
        },
    )


def _order(
    ranking: list[tuple[str, float]],
    candidates: list[str],
    weights: Mapping[str, int],
    max_weight_share: float | None,
) -> list[str]:
    """Candidates most sensitive first; layers the ranking does not name (none on the ORT
    side) go last, in graph order; cut where the weight budget runs out."""
    ranked = {layer for layer, _ in ranking}
    order = [layer for layer, _ in ranking] + [c for c in candidates if c not in ranked]
    if max_weight_share is None:
        return order
    total = sum(weights.get(c, 0) for c in candidates) or 1
    kept, share = [], 0.0
    for layer in order:
        part = weights.get(layer, 0) / total
        if share + part <= max_weight_share:
            kept.append(layer)
            share += part
    return kept


def bisection_probes(n: int) -> int:
    """The most plans one round of the boundary search probes on `n` layers."""
    return math.ceil(math.log2(n)) if n > 1 else 0


def _bisect(
    score: Callable[[list[str], Depth], Measure],
    order: list[str],
    limit: int,
    target: float,
    polish: int,
    baseline: Measure,
    full: Measure,
) -> list[str]:
    """The shortest prefix of `order` that reaches `target`, then up to `polish` of its last
    layers dropped where it still does.

    Agreement grows with the prefix, so the search bisects for the boundary, glancing at each
    probe (`Depth.GLANCE`): one that provably cannot reach moves the lower end, one that may
    the upper. Only the plan returned is measured on every face. Should the upper end's plan
    turn out not to reach after all (its hardest faces looked fine, others do not), the
    search goes on above it: the returned plan always reaches, where the prefix one shorter
    provably cannot. `full`: a glance at every candidate in 16-bit; when even that cannot
    reach, the search returns it."""
    if baseline.reaches(target):
        return []
    if not full.may_reach(target):
        return order[:limit]
    lo, may = 0, [limit]  # order[:lo] cannot reach; each prefix length in `may` may
    while may:
        hi = may[-1]
        while hi - lo > 1:
            mid = (lo + hi) // 2
            if score(order[:mid], Depth.GLANCE).may_reach(target):
                may.append(mid)
                hi = mid
            else:
                lo = mid
        chosen = order[:hi]
        for layer in list(reversed(order[:hi]))[:polish]:
            trial = [c for c in chosen if c != layer]
            if trial and score(trial, Depth.DECIDED).reaches(target):
                chosen = trial
        if len(chosen) < hi or score(chosen, Depth.DECIDED).reaches(target):
            return chosen
        lo = may.pop()
    return order[:limit]


class _Scores:
    """Each plan measured once (in candidate order), the progress told of each new one."""

    def __init__(
        self, scorer: Scorer, candidates: list[str], target: float, progress: SearchProgress
    ) -> None:
        self.scorer = scorer
        self.candidates = candidates
        self.target = target
        self.progress = progress
        self.evaluated: dict[tuple[str, ...], Measure] = {}

    def __call__(self, layers: list[str], depth: Depth = Depth.DECIDED) -> Measure:
        chosen = tuple(sorted(layers, key=self.candidates.index))
        known = self.evaluated.get(chosen)
        if known is None or not known.enough(depth, self.target):
            self.evaluated[chosen] = self.scorer.score(chosen, depth)
            if known is None:
                self.progress.advance()
        return self.evaluated[chosen]


def _curve(
    evaluated: Mapping[tuple[str, ...], Measure], cost: Callable[[tuple[str, ...]], int]
) -> list[dict[str, Any]]:
    """Every evaluated plan, fewest layers first: the curve auto_plan.json and the plot show."""
    points = sorted(evaluated.items(), key=lambda item: (len(item[0]), item[1].value))
    return [
        {"layers": len(layers), "plan": list(layers), **m.as_dict(), "cost_bytes": cost(layers)}
        for layers, m in points
    ]


def search_plan(
    inputs: BuildInputs,
    cache_root: Path,
    *,
    spec: AutoSearch,
    progress: SearchProgress | None = None,
    scorer: Scorer | None = None,
    avoid: Mapping[str, str] | None = None,
) -> AutoResult:
    """Rank once, bisect on the ranked list, polish; deterministic for given inputs.

    Without `scorer`, plans are measured on the ONNX Runtime emulation (toggling one
    quantized model); a backend scorer spends one quantization per plan, so the search
    stays within 2 + ceil(log2 L) + its polish (`_bisect`).
    """
    started = time.monotonic()
    progress = progress or _Silent()
    cfg = inputs.config
    _check(inputs, spec)
    candidates, excluded = _candidates(inputs, spec, avoid)
    evaluator: Scorer = scorer or Evaluator(
        inputs,
        cache_root,
        cache_root / "auto" / _search_key(inputs, spec, candidates),
        spec,
        candidates,
    )
    weights = _weights(inputs.onnx_proto)
    max_layers = min(spec.max_layers or len(candidates), len(candidates))

    progress.start(2 + bisection_probes(max_layers) + evaluator.polish, "search")
    ranking = [(layer, value) for layer, value in evaluator.ranking() if layer in candidates]
    order = _order(ranking, candidates, weights, spec.max_weight_share)
    score = _Scores(evaluator, candidates, spec.target, progress)
    # int8 on every face (it orders the faces); all candidates glanced at, like any probe.
    baseline = score([], Depth.EVERY_FACE)
    limit = min(max_layers, len(order))
    full = score(order[:limit], Depth.GLANCE)
    chosen = _bisect(score, order, limit, spec.target, evaluator.polish, baseline, full)
    progress.finish()
    final = score(chosen, Depth.EVERY_FACE)  # a plan that cannot reach: the best numbers
    full = score(order[:limit], Depth.GLANCE)  # as far as the search measured it
    reached = final.reaches(spec.target)
    sizes = tensor_elements(inputs)

    def cost(layers: tuple[str, ...] | list[str], precision: str = "auto") -> int:
        return plan_cost(inputs, PrecisionPlan(cfg.name, precision, tuple(layers)), sizes)

    result = AutoResult(
        model=cfg.name,
        target=spec.target,
        metric=spec.metric,
        face_size=spec.face_size,
        confidence=spec.confidence,
        reached=reached,
        layers=[c for c in candidates if c in chosen],
        score=final.as_dict(),
        baseline=baseline.as_dict(),
        all_candidates=full.as_dict() | {"layers": limit},
        sensitivity=[{"layer": layer, evaluator.unit: round(v, 6)} for layer, v in ranking],
        curve=_curve(score.evaluated, cost),
        excluded=excluded,
        candidates=len(candidates),
        budget={"max_layers": max_layers, "max_weight_share": spec.max_weight_share},
        eval_faces=len(inputs.eval_faces),
        ranking_source=evaluator.source,
        stage_runs=evaluator.runs(),
        evaluations=evaluator.computed,
        reused_evaluations=evaluator.reused,
        seconds=round(time.monotonic() - started, 3),
        objective=f"{spec.metric} agreement at {spec.face_size} px, "
        f"{spec.confidence:.0%} bootstrap interval",
        cost_bytes=cost(chosen),
        int16_all_cost_bytes=cost(candidates, "int16-all"),
    )
    if not reached and limit < len(candidates):
        result.notes.append(f"stopped at the budget of {limit} layers")
    # The build that follows a search quantizes exactly this plan: have it in the cache.
    evaluator.materialize(tuple(result.layers))
    return result


def save_outputs(result: AutoResult, folder: Path) -> Path:
    """Write auto_plan[.dfc].json into `folder` (hef/<model>/) and redraw auto_curve.png
    with every source's curve side by side."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / AUTO_PLAN_FILES[result.ranking_source]
    result.write(path)
    draw_curves(folder)
    return path


def draw_curves(folder: Path) -> Path | None:
    """auto_curve.png from the auto_plan files in `folder` (one panel per source)."""
    from hailoc.eval.plots import AutoPanel, auto_curves

    panels = []
    for source, name in AUTO_PLAN_FILES.items():
        try:
            data = json.loads((folder / name).read_text(encoding="utf-8"))
            label = f"{data['metric']} agreement at {data['face_size']} px"
            panels.append(AutoPanel(source, data["curve"], float(data["target"]), label))
        except (OSError, ValueError, KeyError, TypeError):
            continue
    if not panels:
        return None
    auto_curves(panels, folder / "auto_curve.png")
    return folder / "auto_curve.png"


def with_overrides(spec: AutoSearch, target: float | None, budget: int | None) -> AutoSearch:
    """The manifest's search settings with the command line's --target/--budget applied."""
    update: dict[str, Any] = {}
    if target is not None:
        update["target"] = target
    if budget is not None:
        update["max_layers"] = budget
    return spec.model_copy(update=update) if update else spec


def rank_layers(inputs: BuildInputs, cache_root: Path, layers: list[str]) -> list[str]:
    """`layers` ordered as auto ranks them on the ONNX Runtime emulation, the layers int8
    harms most first (one fp32 and one int8 pass over the ranking faces, memoised)."""
    if not layers:
        return []
    cfg = inputs.config
    # The ranking compares fp32 with the int8 QDQ model: its key is that model's key.
    int8 = quantize_key(inputs, render_qdq(PrecisionPlan(cfg.name, "int8", ()), inputs.onnx_proto))
    key = cache_key("rank", {"int8": int8, "candidates": sorted(layers)})
    evaluator = Evaluator(inputs, cache_root, cache_root / "auto" / key, cfg.auto, list(layers))
    ranked = [layer for layer, _ in evaluator.ranking() if layer in layers]
    return ranked + [layer for layer in layers if layer not in ranked]
