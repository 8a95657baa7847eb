"""Greedy search for the fewest 16-bit layers that reach a target agreement."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from hailoc import __version__
from hailoc.autoplan.evaluator import Evaluator, Score
from hailoc.cache import cache_key
from hailoc.errors import PlanError
from hailoc.fsutil import atomic_write_text
from hailoc.inputs import BuildInputs
from hailoc.manifest.schema import AutoSearch
from hailoc.plan import PrecisionPlan
from hailoc.plan.support import a16_refusal, kind_for_onnx

NON_CONV = frozenset({"Gemm", "MatMul"})


class SearchProgress(Protocol):
    """Receives progress while the search evaluates layer sets."""

    def start(self, total: int, what: str) -> None:
        """A phase begins with `total` evaluations planned."""

    def advance(self) -> None:
        """One evaluation done."""

    def finish(self) -> None:
        """The phase ended (possibly before `total`)."""


class _Silent:
    def start(self, total: int, what: str) -> None:
        pass

    def advance(self) -> None:
        pass

    def finish(self) -> None:
        pass


@dataclass
class AutoResult:
    """The chosen layer set, why, and how agreement grew with each added layer."""

    model: str
    target: float
    metric: str
    face_size: int
    reached: bool
    layers: list[str]
    score: dict[str, Any]
    baseline: dict[str, Any]
    sensitivity: list[dict[str, Any]]
    curve: list[dict[str, Any]]
    excluded: list[dict[str, str]]
    candidates: int
    budget: dict[str, Any]
    evaluations: int = 0
    reused_evaluations: int = 0
    hailoc_version: str = __version__
    notes: list[str] = field(default_factory=list)

    def plan(self) -> PrecisionPlan:
        """The precision plan the search chose, shared by both backends."""
        return PrecisionPlan(self.model, "auto", tuple(self.layers))

    @property
    def message(self) -> str:
        """One line: reached or not, with the numbers."""
        got = self.score["metric"]
        what = f"{self.metric} agreement at {self.face_size} px"
        if self.reached:
            return (
                f"{len(self.layers)} of {self.candidates} layers in 16-bit reach {what} "
                f"{got:.4f} >= {self.target}"
            )
        return (
            f"target {what} >= {self.target} not reached: the best plan found, "
            f"{len(self.layers)} layers in 16-bit, reaches {got:.4f}"
        )

    def write(self, path: Path) -> None:
        """auto_plan.json, atomically."""
        atomic_write_text(path, json.dumps(asdict(self), indent=1) + "\n")


def _weights(model: Any) -> dict[str, int]:
    sizes = {i.name: int(np.prod(i.dims)) if i.dims else 1 for i in model.graph.initializer}
    return {n.name: sizes.get(n.input[1], 0) if len(n.input) > 1 else 0 for n in model.graph.node}


def _candidates(inputs: BuildInputs, spec: AutoSearch) -> tuple[list[str], list[dict[str, str]]]:
    """Weight layers that may run 16-bit on Hailo, minus the ones known to trip the DFC."""
    keep, excluded = [], []
    for node in inputs.graph.weight_nodes:
        why = a16_refusal(kind_for_onnx(node.op_type))
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
    return keep, excluded


def search_plan(
    inputs: BuildInputs,
    cache_root: Path,
    *,
    spec: AutoSearch,
    progress: SearchProgress | None = None,
) -> AutoResult:
    """Rank layers by the agreement they add in 16-bit, then add them greedily until the target
    (or the budget) is reached. Deterministic for a given model, calibration and eval set."""
    progress = progress or _Silent()
    cfg = inputs.config
    if spec.face_size not in cfg.gate.face_sizes:
        raise PlanError(
            f"auto.face_size {spec.face_size} is not one of gate.face_sizes "
            f"{list(cfg.gate.face_sizes)}",
            where=f"models.{cfg.name}.auto.face_size",
            fix="pick a size the gate evaluates, or add it to gate.face_sizes",
        )
    candidates, excluded = _candidates(inputs, spec)
    if not candidates:
        raise PlanError(
            "no layer may run in 16-bit", where=f"models.{cfg.name}", fix="use --precision int8"
        )
    key = cache_key(
        "auto",
        {
            "onnx_sha256": inputs.onnx_sha256,
            "calibration_sha256": inputs.calib_sha256,
            "calibset_size": cfg.optimization.calibset_size,
            "eval_sha256": inputs.eval_sha256,
            "sizes": list(cfg.gate.face_sizes),
            "input": cfg.input.model_dump(mode="json"),
            "normalization": cfg.normalization.model_dump(mode="json"),
            "metric": spec.metric,
            "face_size": spec.face_size,
            "versions": inputs.versions.model_dump(),
        },
    )
    evaluator = Evaluator(
        inputs, cache_root, cache_root / "auto" / key, spec.metric, spec.face_size
    )
    weights = _weights(inputs.onnx_proto)
    total_weights = sum(weights.get(c, 0) for c in candidates) or 1
    max_layers = spec.max_layers or len(candidates) - 1

    progress.start(len(candidates) + 1, "sensitivity")
    baseline = evaluator.score(())
    progress.advance()
    sensitivity: list[dict[str, Any]] = []
    for layer in candidates:
        alone = evaluator.score((layer,))
        progress.advance()
        sensitivity.append(
            {
                "layer": layer,
                "gain": alone.metric - baseline.metric,
                "mean_gain": alone.mean - baseline.mean,
                "per_size": {str(k): v[0] for k, v in alone.per_size.items()},
            }
        )
    # Most helpful first; graph order breaks ties, so the search is deterministic.
    gains = [float(s["gain"]) for s in sensitivity]
    order = sorted(range(len(candidates)), key=lambda i: (-gains[i], i))

    chosen: list[str] = []
    current = baseline
    curve = [_point(0, None, baseline)]
    reached = baseline.metric >= spec.target
    # At most one trial per ranked layer; the bar completes when the search stops early.
    progress.start(len(order), "greedy")
    for i in order:
        if reached or len(chosen) >= max_layers:
            break
        layer = candidates[i]
        share = sum(weights.get(c, 0) for c in [*chosen, layer]) / total_weights
        if spec.max_weight_share is not None and share > spec.max_weight_share:
            continue
        trial = evaluator.score(tuple([*chosen, layer]))
        progress.advance()
        # Keep a layer only when it helps the target metric (or overall agreement on a tie).
        if (trial.metric, trial.mean) > (current.metric, current.mean):
            chosen.append(layer)
            current = trial
            curve.append(_point(len(chosen), layer, trial))
            reached = current.metric >= spec.target
    progress.finish()
    # The build that follows a search quantizes exactly this plan: have it ready in the cache.
    evaluator.materialize(tuple(chosen))
    # Fewer layers than int16-all is the point: every candidate in 16-bit is not a plan.
    result = AutoResult(
        model=cfg.name,
        target=spec.target,
        metric=spec.metric,
        face_size=spec.face_size,
        reached=reached,
        layers=[c for c in candidates if c in chosen],
        score=current.as_dict(),
        baseline=baseline.as_dict(),
        sensitivity=[sensitivity[i] for i in order],
        curve=curve,
        excluded=excluded,
        candidates=len(candidates),
        budget={"max_layers": max_layers, "max_weight_share": spec.max_weight_share},
        evaluations=evaluator.computed,
        reused_evaluations=evaluator.reused,
    )
    if not reached and len(chosen) >= max_layers:
        result.notes.append(f"stopped at the budget of {max_layers} layers")
    return result


def _point(n: int, layer: str | None, score: Score) -> dict[str, Any]:
    return {
        "layers": n,
        "added": layer,
        "metric": score.metric,
        "mean": score.mean,
        "worst": score.worst,
    }


def save_outputs(result: AutoResult, folder: Path) -> Path:
    """Write auto_plan.json and auto_curve.png into `folder` (hef/<model>/)."""
    from hailoc.eval.plots import auto_curve

    folder.mkdir(parents=True, exist_ok=True)
    result.write(folder / "auto_plan.json")
    label = f"{result.metric} agreement at {result.face_size} px"
    auto_curve(result.curve, result.target, label, folder / "auto_curve.png")
    return folder / "auto_plan.json"


def with_overrides(spec: AutoSearch, target: float | None, budget: int | None) -> AutoSearch:
    """The manifest's search settings with the command line's --target/--budget applied."""
    update: dict[str, Any] = {}
    if target is not None:
        update["target"] = target
    if budget is not None:
        update["max_layers"] = budget
    return spec.model_copy(update=update) if update else spec
