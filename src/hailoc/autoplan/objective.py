"""The auto search's objective: a stated statistic of per-face agreement, with a bootstrap
interval; a plan reaches the target only when the interval's lower end does."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

import numpy as np
import numpy.typing as npt

from hailoc.eval.metrics import cosine_rows, interval, resample
from hailoc.faces import BySize

BOOTSTRAP_SAMPLES = 1000
SEED = 0  # the interval is part of the result: it must not change between runs


class Depth(StrEnum):
    """How far to measure a plan: what the search needs to know about it."""

    # Every face: the curve's two ends, which are reported.
    EVERY_FACE = "every-face"
    # Until it provably cannot reach the target, else every face: whether it reaches.
    DECIDED = "decided"
    # The hardest faces only, unless they already prove it cannot reach: whether it may.
    GLANCE = "glance"


@dataclass(frozen=True)
class Measure:
    """The statistic at the target size, its interval, and the overall mean agreement."""

    value: float
    low: float
    high: float
    mean_all_sizes: float
    per_size: dict[int, float]  # mean agreement per face size
    # Faces embedded when the evaluation stopped early (value and interval are then upper
    # bounds: every face not embedded taken as agreeing perfectly); None: every face.
    stopped_at: int | None = None

    def reaches(self, target: float) -> bool:
        """True when the whole interval, measured on every face, clears the target."""
        return self.stopped_at is None and self.low >= target

    def may_reach(self, target: float) -> bool:
        """False when the plan provably cannot reach `target` (its bound is below it)."""
        return self.low >= target

    def enough(self, depth: Depth, target: float) -> bool:
        """Whether this measure answers what `depth` asks (at `target`)."""
        if depth is Depth.EVERY_FACE:
            return self.stopped_at is None
        if depth is Depth.DECIDED:
            return self.stopped_at is None or self.low < target
        return True

    @classmethod
    def from_dict(cls, data: dict[str, object]) -> Measure:
        """Inverse of as_dict."""
        interval = data["interval"]
        per_size = data.get("per_size") or {}
        assert isinstance(interval, list) and isinstance(per_size, dict)
        return cls(
            float(data["value"]),  # type: ignore[arg-type]
            float(interval[0]),
            float(interval[1]),
            float(data["mean_all_sizes"]),  # type: ignore[arg-type]
            {int(k): float(v) for k, v in per_size.items()},
            int(data["stopped_at"]) if data.get("stopped_at") is not None else None,  # type: ignore[call-overload]
        )

    def as_dict(self) -> dict[str, object]:
        """JSON form for auto_plan.json."""
        return {
            "value": self.value,
            "interval": [self.low, self.high],
            "mean_all_sizes": self.mean_all_sizes,
            "per_size": {str(k): v for k, v in self.per_size.items()},
            **({"stopped_at": self.stopped_at} if self.stopped_at is not None else {}),
        }


def _statistic(
    values: npt.NDArray[np.float64], metric: str, axis: int = -1
) -> npt.NDArray[np.float64]:
    if metric == "p5":
        out: npt.NDArray[np.float64] = np.percentile(values, 5, axis=axis)
    elif metric == "mean":
        out = np.mean(values, axis=axis)
    else:
        out = np.min(values, axis=axis)
    return out


def measure(
    reference: BySize, candidate: BySize, *, metric: str, face_size: int, confidence: float
) -> Measure:
    """The statistic of cosine(fp32, candidate) per face at `face_size`, with its interval."""
    per_face = cosine_rows(reference[face_size], candidate[face_size])
    (picks,) = resample((len(per_face),), BOOTSTRAP_SAMPLES, SEED)
    low, high = interval(_statistic(per_face[picks], metric), confidence)
    per_size = {
        size: float(cosine_rows(reference[size], candidate[size]).mean()) for size in reference
    }
    everything = np.concatenate([cosine_rows(reference[s], candidate[s]) for s in reference])
    return Measure(
        float(_statistic(per_face, metric)),
        float(low),
        float(high),
        float(everything.mean()),
        per_size,
    )


def upper_bound(
    known: npt.NDArray[np.float64],
    total: int,
    *,
    metric: str,
    face_size: int,
    confidence: float,
    at: npt.NDArray[np.intp] | None = None,
) -> Measure:
    """With the agreements of some faces known (the faces `at`, default the first ones), the
    plan's best possible measure: every face not yet embedded taken as agreeing perfectly
    (cosine 1). Exact, not a guess: the statistic, and so each bootstrap sample's value and
    the interval's ends, never falls when a face's agreement rises, and the draws are the
    full evaluation's; so the full evaluation's interval lies at or below this one."""
    best = np.ones(total, np.float64)
    best[np.arange(len(known)) if at is None else at] = known
    (picks,) = resample((total,), BOOTSTRAP_SAMPLES, SEED)
    low, high = interval(_statistic(best[picks], metric), confidence)
    value = float(_statistic(best, metric))
    mean = float(best.mean())
    return Measure(value, float(low), float(high), mean, {face_size: mean}, len(known))
