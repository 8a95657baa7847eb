"""A plan measured on part of the faces gives an upper bound: it stops early only when the
full evaluation could not reach the target, and a search that glances at plans (their hardest
faces only) still returns a plan that reaches, where the prefix one shorter cannot."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hailoc.autoplan.objective import Depth, Measure, measure, upper_bound
from hailoc.autoplan.search import _bisect, bisection_probes
from hailoc.execution import Background


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.floats(0.5, 1.0), min_size=8, max_size=60),
    st.floats(0.05, 1.0),
    st.sampled_from(["p5", "mean", "min"]),
    st.floats(0.8, 0.999),
    st.integers(0, 2**16),
)
def test_a_partial_evaluation_is_an_upper_bound_that_never_changes_the_decision(
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
    bound = upper_bound(
        values[at], len(values), metric=metric, face_size=24, confidence=0.95, at=at
    )
    assert bound.low >= full.low - 1e-9 and bound.value >= full.value - 1e-9
    assert bound.high >= full.high - 1e-9
    assert bound.stopped_at == known and not bound.reaches(target)  # a bound never reaches
    if not bound.may_reach(target):
        assert not full.reaches(target)
    assert Measure.from_dict(bound.as_dict()) == bound
    if known == len(values):  # nothing left unknown: the bound is the decision itself
        assert bound.may_reach(target) == full.reaches(target)


class _Plans:
    """A scorer over `n` ranked layers: a plan reaches when it spans the first `k` (holds one
    of rank >= k - 1) and holds every layer of `needed` it spans; a glance at a plan of a
    size in `misjudged` cannot tell (its hardest faces look fine, others do not). Counts
    what the search asked for."""

    def __init__(self, n: int, k: int, needed: set[int], misjudged: set[int]) -> None:
        self.order = [f"L{i}" for i in range(n)]
        self.k, self.needed, self.misjudged = k, needed, misjudged
        self.asked: list[tuple[int, Depth]] = []

    def reaches(self, layers: list[str]) -> bool:
        held = {self.order.index(layer) for layer in layers}
        span = max(held) + 1 if held else 0
        return span >= self.k and self.needed & set(range(span)) <= held

    def __call__(self, layers: list[str], depth: Depth = Depth.DECIDED) -> Measure:
        self.asked.append((len(layers), depth))
        if self.reaches(layers):
            return Measure(0.99, 0.99, 0.99, 0.99, {})
        if depth is Depth.GLANCE and len(layers) in self.misjudged:
            return Measure(1.0, 0.99, 1.0, 1.0, {}, stopped_at=8)  # a bound that may reach
        return Measure(0.5, 0.5, 0.5, 0.5, {}, stopped_at=8)


@settings(max_examples=120, deadline=None)
@given(st.integers(2, 120), st.data())
def test_the_search_returns_a_plan_that_reaches_even_when_glances_misjudge(
    n: int, data: st.DataObject
) -> None:
    """Whatever glances say, the plan returned reaches, and the prefix its polish started from
    is the shortest that reaches; when not even every candidate in 16-bit reaches, that plan
    is returned. With glances that never misjudge, the bisection probes at most ceil(log2 L)
    plans and only the plan returned is measured on every face."""
    k = data.draw(st.integers(1, n + 1))  # n + 1: no plan reaches
    misjudged = set(data.draw(st.lists(st.integers(1, n), max_size=4)))
    needed = set(data.draw(st.lists(st.integers(0, n - 1), max_size=2)))
    plans = _Plans(n, k, needed, misjudged)
    below = Measure(0.5, 0.5, 0.5, 0.5, {})
    full = plans(plans.order, Depth.GLANCE)
    plans.asked.clear()
    chosen = _bisect(plans, plans.order, n, 0.9, 3, below, full)
    if k > n:
        assert chosen == plans.order
        return
    assert plans.reaches(chosen)
    start = max(plans.order.index(layer) for layer in chosen) + 1  # the prefix polished
    assert start == k
    dropped = set(range(max(0, k - 3), k - 1)) - needed  # the polish's trials that reach
    assert len(chosen) == k - len(dropped)
    if not misjudged & set(range(1, k)):
        glances = [size for size, depth in plans.asked if depth is Depth.GLANCE]
        assert len(glances) <= bisection_probes(n)
        decided = [size for size, depth in plans.asked if depth is Depth.DECIDED]
        assert len(decided) <= 3 + 1


def test_a_search_measures_every_face_only_of_the_plan_it_returns() -> None:
    """As the R50-shaped search runs (54 layers, the boundary at 32, the polish dropping the
    third-last layer): six glances, and only the polished plan measured on every face (a
    search that measured each probe in full also measured the 32 layers and one more)."""
    plans = _Plans(54, 32, {30}, set())
    whole = Measure(0.99, 0.99, 0.99, 0.99, {})
    below = Measure(0.5, 0.5, 0.5, 0.5, {})
    chosen = _bisect(plans, plans.order, 54, 0.9, 3, below, whole)
    assert chosen == plans.order[:29] + plans.order[30:32]
    glances = [size for size, depth in plans.asked if depth is Depth.GLANCE]
    assert len(glances) == bisection_probes(54) == 6
    decided = [size for size, depth in plans.asked if depth is Depth.DECIDED]
    # The polish: the 31-prefix (the lower end: in a search, already known), a trial that
    # cannot reach, one that does.
    assert decided == [31, 31, 31]
    assert [plans.reaches(p) for p in (plans.order[:30] + plans.order[31:32], chosen)] == [
        False,
        True,
    ]


def test_background_work_hands_back_its_value_or_its_error() -> None:
    """What a cold search starts beside the quantization (the fp32 references, the
    all-16-bit model) reaches the caller, errors included, whenever it asks."""
    assert Background(lambda: 41 + 1).result() == 42

    def fails() -> int:
        raise ValueError("onnxruntime quantization failed")

    job = Background(fails)
    with pytest.raises(ValueError, match="quantization failed"):
        job.result()
