"""Face-verification metrics on embeddings: pure numpy, no plotting, no model code."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from hailoc.records import VerificationNumbers

Array = npt.NDArray[np.floating[Any]]
_EPS = 1e-12


def normalize(emb: Array) -> npt.NDArray[np.float64]:
    """Rows scaled to unit L2 norm (zero rows stay zero)."""
    emb = np.asarray(emb, dtype=np.float64)
    norms = np.linalg.norm(emb, axis=1, keepdims=True)
    out: npt.NDArray[np.float64] = emb / np.maximum(norms, _EPS)
    return out


def pre_norm(emb: Array) -> npt.NDArray[np.float64]:
    """L2 norm of each embedding before normalisation (low for weak-signal faces)."""
    out: npt.NDArray[np.float64] = np.linalg.norm(np.asarray(emb, dtype=np.float64), axis=1)
    return out


def cosine_rows(a: Array, b: Array) -> npt.NDArray[np.float64]:
    """Cosine similarity of row i of `a` with row i of `b`."""
    out: npt.NDArray[np.float64] = np.sum(normalize(a) * normalize(b), axis=1)
    return out


@dataclass(frozen=True)
class Agreement:
    """How closely a candidate's embeddings follow fp32's for the same faces."""

    mean: float
    min: float
    p5: float

    @classmethod
    def of(cls, reference: Array, candidate: Array) -> Agreement:
        """Per-face cosine(reference, candidate), summarised."""
        cos = cosine_rows(reference, candidate)
        return cls(float(cos.mean()), float(cos.min()), float(np.percentile(cos, 5)))


@dataclass(frozen=True)
class Degeneracy:
    """Signals of collapsed embeddings: constant norm, everything similar, low rank."""

    norm_mean: float
    norm_std: float
    norm_cv: float
    mean_pairwise_similarity: float
    effective_rank: float

    @classmethod
    def of(cls, emb: Array) -> Degeneracy:
        """Compute every signal on a set of embeddings of different faces."""
        norms = pre_norm(emb)
        unit = normalize(emb)
        n = len(unit)
        gram = unit @ unit.T
        off = (gram.sum() - np.trace(gram)) / (n * (n - 1)) if n > 1 else 1.0
        return cls(
            float(norms.mean()),
            float(norms.std()),
            float(norms.std() / max(norms.mean(), _EPS)),
            float(off),
            effective_rank(unit),
        )


def effective_rank(emb: Array) -> float:
    """exp(entropy) of the normalised singular values (Roy & Vetterli): 1 for rank-1 data."""
    s = np.linalg.svd(np.asarray(emb, dtype=np.float64), compute_uv=False)
    total = s.sum()
    if total <= _EPS:
        return 0.0
    p = s[s > 0] / total
    return float(np.exp(-(p * np.log(p)).sum()))


# The record's type is the computation's type: one field list for both.
Verification = VerificationNumbers


def _roc(genuine: Array, impostor: Array) -> tuple[Array, Array, Array]:
    """scikit-learn's ROC over every distinct score (accept when score >= threshold)."""
    from sklearn.metrics import roc_curve

    scores = np.concatenate([genuine, impostor]).astype(np.float64)
    labels = np.concatenate([np.ones(len(genuine)), np.zeros(len(impostor))])
    fpr, tpr, thresholds = roc_curve(labels, scores, drop_intermediate=False)
    return fpr, tpr, thresholds


def best_threshold(genuine: Array, impostor: Array) -> tuple[float, float]:
    """(threshold, accuracy) maximising accuracy of `score >= threshold` means same person;
    the threshold sits halfway between the lowest accepted and the highest rejected score."""
    fpr, tpr, thresholds = _roc(genuine, impostor)
    correct = tpr * len(genuine) + (1.0 - fpr) * len(impostor)
    k = int(np.argmax(correct))  # the first maximum: the strictest threshold
    if not np.isfinite(thresholds[k]):
        threshold = float(np.max(np.concatenate([genuine, impostor])) + 1e-6)
    elif k + 1 < len(thresholds):
        threshold = float((thresholds[k] + thresholds[k + 1]) / 2)
    else:
        threshold = float(thresholds[k])
    return threshold, float(correct[k] / (len(genuine) + len(impostor)))


def threshold_at_far(impostor: Array, far: float) -> float:
    """The lowest threshold that accepts at most `far` of the impostor scores (just above
    the highest impostor when there are fewer than 1 / far of them)."""
    scores = np.sort(np.asarray(impostor, np.float64))
    allowed = int(np.floor(far * len(scores)))  # impostors that may score at or above it
    if not len(scores):
        return 1.0
    return float(np.nextafter(scores[len(scores) - 1 - allowed], np.inf))


@dataclass(frozen=True)
class NormBin:
    """Genuine probes whose pre_norm lies in [low, high], and how many of them matched."""

    low: float
    high: float
    count: int
    mean_norm: float
    match_rate: float  # nan when the bin is empty


def match_rate_by_pre_norm(
    norms: npt.ArrayLike, matched: npt.ArrayLike, bins: int
) -> list[NormBin]:
    """Probes in `bins` quantile bins of pre_norm, lowest first (a bin may be empty when
    few probes share values): the far-face cliff as numbers."""
    values = np.asarray(norms, np.float64)
    hits = np.asarray(matched, np.float64)
    edges = np.quantile(values, np.linspace(0, 1, bins + 1))
    found = []
    for low, high in itertools.pairwise(edges):
        inside = (values >= low) & (values <= high)
        count = int(inside.sum())
        found.append(
            NormBin(
                float(low),
                float(high),
                count,
                float(values[inside].mean()) if count else float("nan"),
                float(hits[inside].mean()) if count else float("nan"),
            )
        )
    return found


def tar_at(genuine: Array, threshold: float) -> float:
    """Share of genuine pairs accepted at `threshold` (score >= threshold)."""
    return float(np.mean(np.asarray(genuine) >= threshold)) if len(genuine) else 0.0


def tar_at_far(genuine: Array, impostor: Array, far: float) -> float:
    """Share of genuine pairs accepted at the strictest threshold whose FAR is <= `far`:
    the one TAR@FAR (pairs, identities, the gate and deploy.json use it)."""
    return tar_at(genuine, threshold_at_far(impostor, far))


def resample(sizes: tuple[int, ...], samples: int, seed: int) -> list[npt.NDArray[np.intp]]:
    """The one bootstrap's draws: per sample, indices resampling each array in turn (one
    array: one (samples, n) draw, the same stream)."""
    rng = np.random.default_rng(seed)
    if len(sizes) == 1:
        return [rng.integers(0, sizes[0], (samples, sizes[0]))]
    draws = [np.empty((samples, n), np.intp) for n in sizes]
    for sample in range(samples):
        for k, n in enumerate(sizes):
            draws[k][sample] = rng.integers(0, n, n)
    return draws


def interval(values: npt.ArrayLike, confidence: float) -> tuple[float, float]:
    """The central `confidence` interval of bootstrap values (percentile method)."""
    # Rounded so 0.95 gives exactly the 2.5th and 97.5th percentiles.
    tail = round((1 - confidence) * 50, 10)
    low, high = np.percentile(np.asarray(values, np.float64), [tail, 100 - tail])
    return float(low), float(high)


def roc_auc(genuine: Array, impostor: Array) -> float:
    """Probability a genuine score beats an impostor score (ties count half)."""
    once = ImpostorDraws.of(impostor, np.arange(len(impostor), dtype=np.intp)[None, :])
    picks = np.arange(len(genuine), dtype=np.intp)[None, :]
    return float(bootstrap_roc_auc(genuine, picks, once)[0])


def _counts(picks: npt.NDArray[np.intp], n: int) -> npt.NDArray[np.int64]:
    """(samples, n): how often each of n items was drawn in each sample."""
    rows = np.arange(len(picks), dtype=np.int64)[:, None] * n
    return np.bincount((rows + picks).ravel(), minlength=len(picks) * n).reshape(len(picks), n)


@dataclass(frozen=True)
class ImpostorDraws:
    """Bootstrap samples of impostor scores as cumulative draw counts over the sorted scores:
    what every bootstrap statistic of one side at one size reads, counted once."""

    ranked: npt.NDArray[np.float64]  # the impostor scores, ascending
    cum: npt.NDArray[np.int64]  # (samples, n + 1): draws among the k lowest, k = 0..n
    drawn: int  # draws per sample

    @classmethod
    def of(cls, impostor: Array, picks_i: npt.NDArray[np.intp]) -> ImpostorDraws:
        """Count the draws `picks_i` (one row per sample) of `impostor`."""
        order = np.argsort(impostor, kind="stable")
        ranked = np.asarray(impostor, np.float64)[order]
        cum = np.zeros((len(picks_i), len(ranked) + 1), np.int64)
        np.cumsum(_counts(picks_i, len(ranked))[:, order], axis=1, out=cum[:, 1:])
        return cls(ranked, cum, picks_i.shape[1])


def bootstrap_roc_auc(
    genuine: Array, picks_g: npt.NDArray[np.intp], impostors: ImpostorDraws
) -> npt.NDArray[np.float64]:
    """`roc_auc` of every bootstrap sample at once, in integers until the one division: per
    drawn genuine score, the drawn impostors below it plus half of those equal to it."""
    g = np.asarray(genuine, np.float64)
    below = np.searchsorted(impostors.ranked, g, side="left")
    not_above = np.searchsorted(impostors.ranked, g, side="right")
    cum = impostors.cum
    # 2 * below + equal = cum[below] + cum[not_above]
    twice = (_counts(picks_g, len(g)) * (cum[:, below] + cum[:, not_above])).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.asarray(twice / (2 * picks_g.shape[1] * impostors.drawn), np.float64)


def bootstrap_tar_at(
    genuine: Array, picks_g: npt.NDArray[np.intp], thresholds: npt.ArrayLike
) -> npt.NDArray[np.float64]:
    """`tar_at` of every bootstrap sample, each at its own threshold (or one for all)."""
    drawn = np.asarray(genuine)[picks_g]
    limit = np.broadcast_to(np.asarray(thresholds, np.float64), (len(picks_g),))
    return np.asarray((drawn >= limit[:, None]).mean(axis=1), np.float64)


def bootstrap_tar_at_far(
    genuine: Array, picks_g: npt.NDArray[np.intp], impostors: ImpostorDraws, far: float
) -> npt.NDArray[np.float64]:
    """`tar_at_far` of every bootstrap sample at once: each sample's threshold is the same
    order statistic `threshold_at_far` takes, read from the cumulative draw counts."""
    n = impostors.drawn
    if not n:
        return bootstrap_tar_at(genuine, picks_g, 1.0)
    kth = n - 1 - int(np.floor(far * n))
    # The kth lowest drawn score is the first ranked score with more than kth draws at or
    # below it (rows of cum never fall).
    at = (impostors.cum[:, 1:] <= kth).sum(axis=1)
    return bootstrap_tar_at(genuine, picks_g, np.nextafter(impostors.ranked[at], np.inf))


def verification(genuine: Array, impostor: Array) -> Verification:
    """All verification numbers for one set of genuine and impostor similarities."""
    threshold, accuracy = best_threshold(genuine, impostor)
    return Verification(
        genuine_mean=float(np.mean(genuine)),
        genuine_std=float(np.std(genuine)),
        impostor_mean=float(np.mean(impostor)),
        impostor_std=float(np.std(impostor)),
        threshold=threshold,
        accuracy=accuracy,
        tar_at_far_1e2=tar_at_far(genuine, impostor, 1e-2),
        tar_at_far_1e3=tar_at_far(genuine, impostor, 1e-3),
        roc_auc=roc_auc(genuine, impostor),
    )
