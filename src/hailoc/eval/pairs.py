"""LFW-style verification pairs: read pairs.txt, score fp32 vs a candidate on the aligned faces."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from hailoc.errors import HailocError
from hailoc.eval.metrics import Verification, cosine_rows, verification
from hailoc.faces import Embedder


@dataclass(frozen=True)
class Pair:
    """Two image paths (relative to the image root) and whether they show the same person."""

    a: str
    b: str
    same: bool


def _lfw_name(person: str, index: str) -> str:
    return f"{person}/{person}_{int(index):04d}.jpg"


def read_pairs(path: Path) -> list[Pair]:
    """Parse LFW's pairs.txt (`name i j` / `name1 i name2 j`) or `path_a path_b 0|1` lines."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise HailocError(
            f"cannot read pairs file: {exc}", where=str(path), fix="pass an LFW-style pairs.txt"
        ) from None
    pairs: list[Pair] = []

    def num(text: str) -> bool:
        # ASCII digits only: str.isdigit() also accepts superscripts that int() refuses.
        return text.isascii() and text.isdecimal()

    for number, line in enumerate(lines, 1):
        fields = line.split()
        if not fields or line.lstrip().startswith("#"):
            continue
        if number == 1 and all(num(f) for f in fields) and len(fields) <= 2:
            continue  # LFW header: folds and pairs per fold
        if len(fields) == 3 and num(fields[1]) and num(fields[2]):
            pairs.append(
                Pair(_lfw_name(fields[0], fields[1]), _lfw_name(fields[0], fields[2]), True)
            )
        elif len(fields) == 4 and num(fields[1]) and num(fields[3]):
            pairs.append(
                Pair(_lfw_name(fields[0], fields[1]), _lfw_name(fields[2], fields[3]), False)
            )
        elif len(fields) == 3 and fields[2] in ("0", "1"):
            pairs.append(Pair(fields[0], fields[1], fields[2] == "1"))
        else:
            raise HailocError(
                f"line {number} is not a pair: {line.strip()[:80]!r}",
                where=str(path),
                fix="use `name i j`, `name1 i name2 j` (LFW) or `path_a path_b 0|1`",
            )
    if not pairs:
        raise HailocError("no pairs found", where=str(path), fix="pass an LFW-style pairs.txt")
    return pairs


@dataclass(frozen=True)
class PairsResult:
    """Verification on real pairs for fp32 and the candidate."""

    pairs: int
    used: int
    skipped_images: dict[str, str]
    fp32: Verification
    candidate: Verification
    candidate_at_fp32_threshold: float


def score_pairs(
    pairs: list[Pair],
    faces: dict[str, npt.NDArray[np.uint8]],
    reference: Embedder,
    candidate: Embedder,
) -> PairsResult | None:
    """Similarities of every usable pair under both models; None if a class has no pair."""
    usable = [p for p in pairs if p.a in faces and p.b in faces]
    if not any(p.same for p in usable) or all(p.same for p in usable):
        return None
    names = sorted({n for p in usable for n in (p.a, p.b)})
    index = {n: i for i, n in enumerate(names)}
    stack = np.stack([faces[n] for n in names])
    result = []
    for embed in (reference, candidate):
        emb = embed(stack)
        a = emb[[index[p.a] for p in usable]]
        b = emb[[index[p.b] for p in usable]]
        sims = cosine_rows(a, b)
        same = np.array([p.same for p in usable])
        result.append((sims[same], sims[~same]))
    fp = verification(*result[0])
    cand = verification(*result[1])
    genuine, impostor = result[1]
    correct = np.sum(genuine >= fp.threshold) + np.sum(impostor < fp.threshold)
    return PairsResult(
        len(pairs), len(usable), {}, fp, cand, float(correct / (len(genuine) + len(impostor)))
    )
