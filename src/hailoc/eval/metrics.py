"""Face-verification metrics on embeddings: pure numpy, no plotting, no model code."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

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


@dataclass(frozen=True)
class Verification:
    """Genuine/impostor statistics, the best threshold and ROC numbers."""

    genuine_mean: float
    genuine_std: float
    impostor_mean: float
    impostor_std: float
    threshold: float
    accuracy: float
    tar_at_far_1e2: float
    tar_at_far_1e3: float
    roc_auc: float

    def as_dict(self) -> dict[str, float]:
        """Plain dict for records."""
        return asdict(self)


def best_threshold(genuine: Array, impostor: Array) -> tuple[float, float]:
    """(threshold, accuracy) maximising accuracy of `score >= threshold` means same person."""
    scores = np.concatenate([genuine, impostor]).astype(np.float64)
    labels = np.concatenate([np.ones(len(genuine)), np.zeros(len(impostor))])
    order = np.argsort(-scores, kind="stable")
    s, y = scores[order], labels[order]
    # Accepting the top k scores: correct = genuine among them + impostors outside them.
    tp = np.concatenate([[0.0], np.cumsum(y)])
    fp = np.concatenate([[0.0], np.cumsum(1 - y)])
    correct = tp + (len(impostor) - fp)
    # Only cut between distinct scores, so the threshold is realisable.
    cut_ok = np.concatenate([[True], s[:-1] > s[1:], [True]])
    correct = np.where(cut_ok, correct, -1)
    k = int(np.argmax(correct))
    if k == 0:
        threshold = float(s[0] + 1e-6)
    elif k == len(s):
        threshold = float(s[-1])
    else:
        threshold = float((s[k - 1] + s[k]) / 2)
    return threshold, float(correct[k] / len(s))


def tar_at_far(genuine: Array, impostor: Array, far: float) -> float:
    """Share of genuine pairs accepted at the strictest threshold whose FAR is <= `far`."""
    imp = np.sort(np.asarray(impostor, dtype=np.float64))[::-1]
    allowed = int(np.floor(far * len(imp)))
    # Threshold strictly above the (allowed+1)-th highest impostor score.
    threshold = imp[allowed] if allowed < len(imp) else -np.inf
    return float(np.mean(np.asarray(genuine) > threshold))


def roc_auc(genuine: Array, impostor: Array) -> float:
    """Probability a genuine score beats an impostor score (ties count half)."""
    g = np.asarray(genuine, dtype=np.float64)
    i = np.asarray(impostor, dtype=np.float64)
    scores = np.concatenate([g, i])
    ranks = _average_ranks(scores)
    rank_sum = ranks[: len(g)].sum()
    return float((rank_sum - len(g) * (len(g) + 1) / 2) / (len(g) * len(i)))


def _average_ranks(x: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    order = np.argsort(x, kind="stable")
    ranks = np.empty(len(x))
    sorted_x = x[order]
    i = 0
    while i < len(x):
        j = i
        while j + 1 < len(x) and sorted_x[j + 1] == sorted_x[i]:
            j += 1
        ranks[order[i : j + 1]] = (i + j) / 2 + 1
        i = j + 1
    return ranks


def verification(genuine: Array, impostor: Array) -> Verification:
    """All verification numbers for one set of genuine and impostor similarities."""
    threshold, accuracy = best_threshold(genuine, impostor)
    return Verification(
        float(np.mean(genuine)),
        float(np.std(genuine)),
        float(np.mean(impostor)),
        float(np.std(impostor)),
        threshold,
        accuracy,
        tar_at_far(genuine, impostor, 1e-2),
        tar_at_far(genuine, impostor, 1e-3),
        roc_auc(genuine, impostor),
    )
