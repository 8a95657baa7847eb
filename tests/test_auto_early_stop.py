"""A plan's evaluation stops early only when the full evaluation could not reach the target:
the bound decides `reaches` exactly as measuring every face would."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hailoc.autoplan.objective import Measure, bound_if_unreachable, measure
from hailoc.autoplan.search import probe_bound, probe_table
from hailoc.execution import Background


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.floats(0.5, 1.0), min_size=8, max_size=60),
    st.floats(0.05, 1.0),
    st.sampled_from(["p5", "mean", "min"]),
    st.floats(0.8, 0.999),
    st.integers(0, 2**16),
)
def test_a_stopped_evaluation_never_changes_the_decision(
    agreements: list[float], share: float, metric: str, target: float, seed: int
) -> None:
    """Whichever faces were embedded first (the search takes the hardest first)."""
    values = np.array(agreements)
    known = max(1, int(len(values) * share))
    at = np.random.default_rng(seed).permutation(len(values))[:known]
    # Embeddings whose cosine with the reference is each face's agreement.
    angle = np.arccos(values)
    reference = {24: np.stack([np.ones_like(angle), np.zeros_like(angle)], 1)}
    candidate = {24: np.stack([np.cos(angle), np.sin(angle)], 1)}
    full = measure(reference, candidate, metric=metric, face_size=24, confidence=0.95)
    bound = bound_if_unreachable(
        values[at],
        len(values),
        metric=metric,
        face_size=24,
        confidence=0.95,
        target=target,
        at=at,
    )
    if bound is not None:
        assert not full.reaches(target) and not bound.reaches(target)
        assert bound.low >= full.low - 1e-9 and bound.value >= full.value - 1e-9
        assert bound.stopped_at == known
        again = Measure.from_dict(bound.as_dict())
        assert again == bound
    if known == len(values):  # nothing left unknown: the bound is the decision itself
        assert (bound is None) == full.reaches(target)


@settings(max_examples=80, deadline=None)
@given(st.integers(2, 120), st.data(), st.sampled_from([1.0, 2.0, 3.0, 5.0]))
def test_the_boundary_search_finds_the_boundary_whatever_the_probe_costs(
    n: int, data: st.DataObject, reach_cost: float
) -> None:
    """Where plans reach from the k-th prefix on, the search returns exactly k, within
    `probe_bound` probes; at equal costs it probes the middle (plain bisection)."""
    k = data.draw(st.integers(1, n))
    table = probe_table(n, reach_cost)
    lo, hi, probes = 0, n, []
    while hi - lo > 1:
        mid = lo + table[hi - lo]
        assert lo < mid < hi
        probes.append(mid)
        if mid >= k:
            hi = mid
        else:
            lo = mid
    assert hi == k or (k == 1 and hi == 1)
    assert len(probes) <= probe_bound(n, reach_cost)
    if reach_cost == 1.0:
        assert all(table[length] == length // 2 for length in range(2, n + 1))


def test_probes_lean_low_when_reaching_costs_more() -> None:
    """R50-shaped (54 layers, boundary at 32): plain bisection measures 3 plans that reach
    in full; at reach_cost 3 the search measures one, and stays within 1.5 log2 L probes."""

    def outcome(reach_cost: float) -> list[bool]:
        table, lo, hi, found = probe_table(54, reach_cost), 0, 54, []
        while hi - lo > 1:
            mid = lo + table[hi - lo]
            found.append(mid >= 32)
            hi, lo = (mid, lo) if mid >= 32 else (hi, mid)
        return found

    assert sum(outcome(1.0)) == 3 and sum(outcome(3.0)) == 1
    assert probe_bound(54, 3.0) <= 1.5 * math.log2(54) + 1


def test_background_work_hands_back_its_value_or_its_error() -> None:
    """What a cold search starts beside the quantization (the fp32 references, the
    all-16-bit model) reaches the caller, errors included, whenever it asks."""
    assert Background(lambda: 41 + 1).result() == 42

    def fails() -> int:
        raise ValueError("onnxruntime quantization failed")

    job = Background(fails)
    with pytest.raises(ValueError, match="quantization failed"):
        job.result()
