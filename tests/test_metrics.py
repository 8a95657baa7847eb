"""Metrics against hand-computed values, and the gate's verdicts."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from hailoc.eval.gate import judge
from hailoc.eval.metrics import (
    Agreement,
    Degeneracy,
    best_threshold,
    effective_rank,
    roc_auc,
    tar_at_far,
    verification,
)
from hailoc.eval.sweep import evaluate
from hailoc.manifest.schema import Gate


def test_identical_embeddings() -> None:
    rng = np.random.default_rng(0)
    emb = rng.normal(size=(10, 16))
    agreement = Agreement.of(emb, emb * 3.0)  # scale does not change cosine
    assert agreement.mean == pytest.approx(1.0) and agreement.min == pytest.approx(1.0)
    same = Degeneracy.of(np.tile(emb[:1], (5, 1)))
    assert same.norm_cv == pytest.approx(0.0, abs=1e-12)
    assert same.mean_pairwise_similarity == pytest.approx(1.0)
    assert same.effective_rank == pytest.approx(1.0)


def test_orthogonal_embeddings() -> None:
    emb = np.eye(4) * np.array([[1.0], [2.0], [3.0], [4.0]])
    deg = Degeneracy.of(emb)
    assert deg.mean_pairwise_similarity == pytest.approx(0.0)
    assert deg.norm_mean == pytest.approx(2.5)
    assert deg.norm_cv == pytest.approx(np.std([1, 2, 3, 4]) / 2.5)
    # Singular values 1..4: p = [.1,.2,.3,.4], exp(entropy) by hand.
    p = np.array([0.1, 0.2, 0.3, 0.4])
    assert effective_rank(emb) == pytest.approx(np.exp(-(p * np.log(p)).sum()))
    assert Agreement.of(np.eye(3), np.roll(np.eye(3), 1, axis=1)).mean == pytest.approx(0.0)


def test_known_roc() -> None:
    genuine = np.array([0.9, 0.8, 0.7, 0.4])
    impostor = np.array([0.6, 0.5, 0.3, 0.2])
    # 14 of the 16 (genuine, impostor) pairs are ordered correctly.
    assert roc_auc(genuine, impostor) == pytest.approx(14 / 16)
    threshold, accuracy = best_threshold(genuine, impostor)
    assert threshold == pytest.approx(0.65) and accuracy == pytest.approx(7 / 8)
    # FAR 1e-2 with 4 impostors allows none: threshold = the best impostor, 0.6.
    assert tar_at_far(genuine, impostor, 1e-2) == pytest.approx(0.75)
    assert tar_at_far(genuine, impostor, 0.5) == pytest.approx(1.0)  # threshold 0.3 -> all
    v = verification(genuine, impostor)
    assert v.genuine_mean == pytest.approx(0.7) and v.impostor_mean == pytest.approx(0.4)
    assert roc_auc(np.array([0.5, 0.5]), np.array([0.5])) == pytest.approx(0.5)  # ties count half


def _by_size(emb: np.ndarray, sizes: tuple[int, ...] = (112, 64)) -> dict[int, np.ndarray]:
    return {s: emb + 0.01 * i for i, s in enumerate(sizes)}


def test_gate_passes_faithful_and_flags_collapsed_embeddings() -> None:
    rng = np.random.default_rng(1)
    ref = rng.normal(size=(12, 64)) * rng.uniform(1, 3, size=(12, 1))
    good = evaluate(_by_size(ref), _by_size(ref + 0.01 * rng.normal(size=ref.shape)))
    assert judge(good, Gate()).passed

    collapsed = np.tile(ref.mean(0, keepdims=True), (12, 1)) + 1e-4 * ref
    verdict = judge(evaluate(_by_size(ref), _by_size(collapsed)), Gate())
    assert not verdict.passed and verdict.failure_class == "degenerate"

    noisy = evaluate(_by_size(ref), _by_size(ref + 0.8 * rng.normal(size=ref.shape) * 2))
    verdict = judge(noisy, Gate())
    assert not verdict.passed and verdict.failure_class == "accuracy"
    assert "mean agreement" in verdict.message


def test_scikit_learn_metrics_match_their_definitions() -> None:
    """The ROC numbers now come from scikit-learn; they equal the definitions hailoc used:
    pairwise AUC with ties counted half, TAR at the strictest threshold with FAR <= far, and
    the accuracy-maximising cut halfway between scores."""
    from hailoc.eval.metrics import best_threshold, roc_auc, tar_at_far

    rng = np.random.default_rng(7)
    for trial in range(20):
        genuine = np.round(rng.normal(0.6, 0.15, 40 + trial), 2)
        impostor = np.round(rng.normal(0.2, 0.15, 300), 2)
        pairwise = (genuine[:, None] > impostor[None, :]).mean() + 0.5 * (
            genuine[:, None] == impostor[None, :]
        ).mean()
        assert roc_auc(genuine, impostor) == pytest.approx(pairwise, abs=1e-12)
        for far in (1e-2, 1e-1):
            ranked = np.sort(impostor)[::-1]
            allowed = int(np.floor(far * len(ranked)))
            expected = float(np.mean(genuine > ranked[allowed]))
            assert tar_at_far(genuine, impostor, far) == pytest.approx(expected)
        threshold, accuracy = best_threshold(genuine, impostor)
        measured = (np.sum(genuine >= threshold) + np.sum(impostor < threshold)) / (
            len(genuine) + len(impostor)
        )
        assert accuracy == pytest.approx(measured)
        cuts = np.unique(np.concatenate([genuine, impostor, [np.inf]]))
        best = max(
            (np.sum(genuine >= c) + np.sum(impostor < c)) / (len(genuine) + len(impostor))
            for c in cuts
        )
        assert accuracy == pytest.approx(best)


@given(
    st.lists(st.floats(-1, 1, allow_nan=False), min_size=1, max_size=400),
    st.sampled_from([1e-1, 1e-2, 1e-3]),
)
def test_threshold_at_far_accepts_at_most_far_of_the_impostors(
    scores: list[float], far: float
) -> None:
    from hailoc.eval.metrics import threshold_at_far

    impostor = np.array(scores)
    threshold = threshold_at_far(impostor, far)
    accepted = int(np.sum(impostor >= threshold))
    assert accepted <= far * len(impostor)
    # The lowest such threshold: the next impostor score below it would accept too many.
    lower = impostor[impostor < threshold]
    if len(lower):
        assert int(np.sum(impostor >= lower.max())) > far * len(impostor)


@given(
    st.lists(st.floats(-1, 1, allow_nan=False), min_size=1, max_size=60),
    st.lists(st.floats(-1, 1, allow_nan=False), min_size=1, max_size=300),
    st.sampled_from([1e-1, 1e-2, 1e-3]),
)
def test_the_one_tar_at_far_equals_the_roc_definition(
    genuine: list[float], impostor: list[float], far: float
) -> None:
    """Pairs, identities and deploy.json share one TAR@FAR: the share of genuine scores at or
    above the strictest threshold whose FAR is <= far (the ROC curve's definition)."""
    from sklearn.metrics import roc_curve

    from hailoc.eval.metrics import tar_at_far

    g, i = np.array(genuine), np.array(impostor)
    labels = np.concatenate([np.ones(len(g)), np.zeros(len(i))])
    fpr, tpr, _ = roc_curve(labels, np.concatenate([g, i]), drop_intermediate=False)
    assert tar_at_far(g, i, far) == pytest.approx(float(np.max(tpr[fpr <= far + 1e-12])))


def test_the_one_bootstrap_draws_what_each_caller_drew_before() -> None:
    """One array: one (samples, n) draw; several: per sample, each array in turn (the
    identities evaluation's order), so intervals are unchanged by sharing the code."""
    from hailoc.eval.metrics import interval, resample

    (one,) = resample((7,), 50, 0)
    assert np.array_equal(one, np.random.default_rng(0).integers(0, 7, (50, 7)))
    rng = np.random.default_rng(0)
    g, i = resample((5, 9), 20, 0)
    for k in range(20):
        assert np.array_equal(g[k], rng.integers(0, 5, 5))
        assert np.array_equal(i[k], rng.integers(0, 9, 9))
    values = np.arange(101, dtype=np.float64)
    assert interval(values, 0.95) == (2.5, 97.5)


# Scores on a coarse grid so ties (between and within genuine and impostor) are common.
_scores = st.lists(st.integers(-20, 20).map(lambda v: v / 20), min_size=1, max_size=40)


@given(_scores, _scores, st.sampled_from([0.01, 0.1, 0.5]), st.integers(0, 2**16))
def test_bootstrap_statistics_equal_the_per_sample_loop(
    genuine: list[float], impostor: list[float], far: float, seed: int
) -> None:
    """The array-at-once bootstrap gives each sample exactly what the statistic gives on
    that sample's drawn scores (TARs bit for bit; AUC to float rounding: it is now the exact
    rank count, scikit-learn's integrates the ROC curve)."""
    from sklearn.metrics import roc_auc_score

    from hailoc.eval.metrics import (
        ImpostorDraws,
        bootstrap_roc_auc,
        bootstrap_tar_at,
        bootstrap_tar_at_far,
        resample,
        tar_at,
    )

    g, i = np.array(genuine), np.array(impostor)
    picks_g, picks_i = resample((len(g), len(i)), 12, seed)
    impostors = ImpostorDraws.of(i, picks_i)
    tars = bootstrap_tar_at_far(g, picks_g, impostors, far)
    fixed = bootstrap_tar_at(g, picks_g, 0.25)
    aucs = bootstrap_roc_auc(g, picks_g, impostors)
    for k in range(12):
        dg, di = g[picks_g[k]], i[picks_i[k]]
        assert tars[k] == tar_at_far(dg, di, far)
        assert fixed[k] == tar_at(dg, 0.25)
        labels = np.concatenate([np.ones(len(dg)), np.zeros(len(di))])
        assert aucs[k] == pytest.approx(roc_auc_score(labels, np.concatenate([dg, di])), abs=1e-12)
    labels = np.concatenate([np.ones(len(g)), np.zeros(len(i))])
    assert roc_auc(g, i) == pytest.approx(roc_auc_score(labels, np.concatenate([g, i])), abs=1e-12)
