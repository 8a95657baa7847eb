"""Simulated-distance evaluation: fp32 vs candidate embeddings of the same faces at each size."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from hailoc.eval.metrics import (
    Agreement,
    Degeneracy,
    Verification,
    cosine_rows,
    normalize,
    pre_norm,
    verification,
)
from hailoc.faces import BySize


@dataclass(frozen=True)
class SizeRow:
    """One line of the distance sweep."""

    size: int
    agreement_mean: float
    agreement_min: float
    pre_norm_fp32: float
    pre_norm_candidate: float
    match_rate_fp32: float | None
    match_rate_candidate: float | None


@dataclass
class PairScores:
    """Similarities behind the verification numbers (kept for plots, not for records)."""

    genuine: npt.NDArray[np.float64]
    impostor: npt.NDArray[np.float64]
    # The pre_norm of each genuine pair's probe (the smaller face), in `genuine`'s order.
    genuine_pre_norm: npt.NDArray[np.float64] = field(
        default_factory=lambda: np.zeros(0, np.float64)
    )


@dataclass(frozen=True)
class Side:
    """fp32's or the candidate's own numbers on the eval faces."""

    degeneracy: Degeneracy
    verification: Verification | None
    pre_norm_ratio: float | None = None


@dataclass
class EvalResult:
    """Every number the gate and the report need."""

    faces: int
    sizes: tuple[int, ...]
    agreement: Agreement
    sweep: list[SizeRow]
    fp32_threshold: float | None
    fp32: Side
    candidate: Side
    pairs: dict[str, PairScores] = field(default_factory=dict, repr=False)


def _pairs(by_size: BySize, close: int) -> PairScores:
    """Genuine: a face close vs the same face smaller. Impostor: different faces, any size."""
    base = normalize(by_size[close])
    genuine, impostor, norms = [], [], []
    n = len(base)
    off_diagonal = ~np.eye(n, dtype=bool)
    for size, emb in by_size.items():
        unit = normalize(emb)
        if size != close:
            genuine.append(np.sum(base * unit, axis=1))
            norms.append(pre_norm(emb))
        impostor.append((base @ unit.T)[off_diagonal])
    return PairScores(
        np.concatenate(genuine) if genuine else np.zeros(0),
        np.concatenate(impostor) if impostor else np.zeros(0),
        np.concatenate(norms) if norms else np.zeros(0),
    )


def genuine_impostor(by_size: BySize) -> PairScores:
    """Genuine and impostor similarities of one side's embeddings (largest size as gallery)."""
    return _pairs(by_size, max(by_size))


def _verification(pairs: PairScores) -> Verification | None:
    if len(pairs.genuine) == 0 or len(pairs.impostor) == 0:
        return None
    return verification(pairs.genuine, pairs.impostor)


def evaluate(reference: BySize, candidate: BySize) -> EvalResult:
    """Compare candidate embeddings with fp32's, size by size and on verification pairs."""
    sizes = tuple(sorted(reference, reverse=True))
    close = sizes[0]
    ref_pairs, cand_pairs = _pairs(reference, close), _pairs(candidate, close)
    ref_ver, cand_ver = _verification(ref_pairs), _verification(cand_pairs)
    threshold = ref_ver.threshold if ref_ver else None
    rows = []
    for size in sizes:
        cos = cosine_rows(reference[size], candidate[size])
        if size == close or threshold is None:
            rate_fp: float | None = None
            rate_cand: float | None = None
        else:
            same_fp = cosine_rows(reference[close], reference[size])
            same_cand = cosine_rows(candidate[close], candidate[size])
            rate_fp = float(np.mean(same_fp >= threshold))
            rate_cand = float(np.mean(same_cand >= threshold))
        rows.append(
            SizeRow(
                size,
                float(cos.mean()),
                float(cos.min()),
                float(pre_norm(reference[size]).mean()),
                float(pre_norm(candidate[size]).mean()),
                rate_fp,
                rate_cand,
            )
        )
    all_ref = np.concatenate([reference[s] for s in sizes])
    all_cand = np.concatenate([candidate[s] for s in sizes])

    pre_ref = pre_norm(all_ref).mean()
    pre_cand = pre_norm(all_cand).mean()
    return EvalResult(
        faces=len(reference[close]),
        sizes=sizes,
        agreement=Agreement.of(all_ref, all_cand),
        sweep=rows,
        fp32_threshold=threshold,
        fp32=Side(Degeneracy.of(reference[close]), ref_ver),
        candidate=Side(
            Degeneracy.of(candidate[close]),
            cand_ver,
            float(pre_cand / pre_ref) if pre_ref > 0 else None,
        ),
        pairs={"fp32": ref_pairs, "candidate": cand_pairs},
    )
