"""A plan's evaluation stops early only when the full evaluation could not reach the target:
the bound decides `reaches` exactly as measuring every face would."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from hailoc.autoplan.objective import Measure, bound_if_unreachable, measure


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.floats(0.5, 1.0), min_size=8, max_size=60),
    st.floats(0.05, 1.0),
    st.sampled_from(["p5", "mean", "min"]),
    st.floats(0.8, 0.999),
)
def test_a_stopped_evaluation_never_changes_the_decision(
    agreements: list[float], share: float, metric: str, target: float
) -> None:
    values = np.array(agreements)
    known = max(1, int(len(values) * share))
    # Embeddings whose cosine with the reference is each face's agreement.
    angle = np.arccos(values)
    reference = {24: np.stack([np.ones_like(angle), np.zeros_like(angle)], 1)}
    candidate = {24: np.stack([np.cos(angle), np.sin(angle)], 1)}
    full = measure(reference, candidate, metric=metric, face_size=24, confidence=0.95)
    bound = bound_if_unreachable(
        values[:known], len(values), metric=metric, face_size=24, confidence=0.95, target=target
    )
    if bound is not None:
        assert not full.reaches(target) and not bound.reaches(target)
        assert bound.low >= full.low - 1e-9 and bound.value >= full.value - 1e-9
        assert bound.stopped_at == known
        again = Measure.from_dict(bound.as_dict())
        assert again == bound
    if known == len(values):  # nothing left unknown: the bound is the decision itself
        assert (bound is None) == full.reaches(target)
