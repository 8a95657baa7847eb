"""Verification at distance on labelled identities: a folder per person (LFW, CFP, AgeDB
exports, enrolment photos).

Genuine pairs: every two images of one person. Impostor pairs: a seeded sample of two
people's images, at least 10 / FAR where the data allows. The first image of a pair is the
gallery at full size; the second is the probe, simulated at each face size (the same
simulation as calibration). Per size, for fp32 and the build: TAR at FAR 1e-2 and 1e-3 (at
its own threshold and at fp32's), ROC AUC, score means and the genuine probes' pre_norm, each
with a bootstrap 95% interval over pairs.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from hailoc.calibration.face_size import batch_at_distance
from hailoc.calibration.images import IMAGE_SUFFIXES
from hailoc.errors import HailocError
from hailoc.eval.aligned import AlignedImages
from hailoc.eval.metrics import (
    ImpostorDraws,
    bootstrap_roc_auc,
    bootstrap_tar_at,
    bootstrap_tar_at_far,
    interval,
    normalize,
    pre_norm,
    resample,
    roc_auc,
    tar_at,
    tar_at_far,
    threshold_at_far,
)
from hailoc.faces import BatchEmbed, Embeddings, Faces
from hailoc.records.schema import (
    IdentitySide,
    IdentitySizeRow,
    IntervalNumbers,
    PreNormStats,
)

FARS = (1e-2, 1e-3)
BOOTSTRAP = 200
SEED = 0


@dataclass(frozen=True)
class LabelledFaces:
    """Aligned faces with the person each belongs to."""

    faces: Faces
    people: list[str]
    images: list[str]
    skipped: dict[str, str]
    reused: int  # faces that came from the aligned-face cache


def scan(root: Path) -> dict[str, list[Path]]:
    """Images per person (one sub-folder each), in name order."""
    if not root.is_dir():
        raise HailocError(
            "not a folder", where=str(root), fix="give a folder with one sub-folder per person"
        )
    people = {}
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        images = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if images:
            people[folder.name] = images
    if sum(len(v) >= 2 for v in people.values()) < 1 or len(people) < 2:
        raise HailocError(
            f"{len(people)} people found; genuine pairs need a person with two images and "
            "impostor pairs two people",
            where=str(root),
            fix="lay the photos out as DIR/<person>/<image> (LFW style)",
        )
    return people


def label_faces(people: dict[str, list[Path]], aligned: AlignedImages) -> LabelledFaces:
    """The aligned faces in people order, each with its person."""
    faces, who, names = [], [], []
    for person, images in people.items():
        for path in images:
            name = f"{person}/{path.name}"
            if name in aligned.faces:
                faces.append(aligned.faces[name])
                who.append(person)
                names.append(name)
    if not faces:
        raise HailocError(
            "no usable face in any image", where="--identities", fix="check the photos"
        )
    return LabelledFaces(np.stack(faces), who, names, aligned.skipped, aligned.reused)


def image_paths(people: dict[str, list[Path]]) -> dict[str, Path]:
    """Every image by its name person/file."""
    return {f"{person}/{path.name}": path for person, images in people.items() for path in images}


def make_pairs(
    people: list[str], far: float
) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.intp], str]:
    """Genuine pairs (all) and a seeded impostor sample (>= 10 / far where possible)."""
    index: dict[str, list[int]] = {}
    for i, person in enumerate(people):
        index.setdefault(person, []).append(i)
    genuine = [p for ids in index.values() for p in itertools.combinations(ids, 2)]
    cross = [
        (i, j) for a, b in itertools.combinations(index, 2) for i in index[a] for j in index[b]
    ]
    want = int(np.ceil(10 / far))
    rng = np.random.default_rng(SEED)
    if len(cross) > want:
        cross = [cross[k] for k in sorted(rng.choice(len(cross), want, replace=False))]
    note = (
        f"{len(cross)} impostor pairs (>= {want} for FAR {far:g})"
        if len(cross) >= want
        else f"only {len(cross)} impostor pairs: FAR {far:g} wants >= {want}; TAR at that FAR "
        "is measured at the highest impostor score and is optimistic"
    )
    return np.array(genuine, np.intp).reshape(-1, 2), np.array(cross, np.intp).reshape(-1, 2), note


@dataclass(frozen=True)
class Draws:
    """The bootstrap's resampled pair indices, drawn once and shared by every statistic,
    side and size (the same seed drew the same indices for each of them before)."""

    genuine: npt.NDArray[np.intp]
    impostor: npt.NDArray[np.intp]

    @classmethod
    def of(cls, genuine: int, impostor: int) -> Draws:
        picks_g, picks_i = resample((genuine, impostor), BOOTSTRAP, SEED)
        return cls(picks_g, picks_i)


def _numbers(value: float, samples: npt.NDArray[np.float64]) -> IntervalNumbers:
    low, high = interval(samples, 0.95)
    return IntervalNumbers(value=value, low=low, high=high)


def side_numbers(
    genuine: npt.NDArray[np.float64],
    impostor: npt.NDArray[np.float64],
    probe_norms: npt.NDArray[np.float64],
    fp32_thresholds: tuple[float, float] | None,
    draws: Draws,
) -> IdentitySide:
    """Every number of one side (fp32 or the build) at one face size."""
    picks_g = draws.genuine
    impostors = ImpostorDraws.of(impostor, draws.impostor)

    def at_far(far: float) -> IntervalNumbers:
        samples = bootstrap_tar_at_far(genuine, picks_g, impostors, far)
        return _numbers(tar_at_far(genuine, impostor, far), samples)

    def tar_fixed(threshold: float) -> IntervalNumbers:
        return _numbers(tar_at(genuine, threshold), bootstrap_tar_at(genuine, picks_g, threshold))

    return IdentitySide(
        tar_at_far_1e2=at_far(1e-2),
        tar_at_far_1e3=at_far(1e-3),
        threshold_at_far_1e2=threshold_at_far(impostor, 1e-2),
        threshold_at_far_1e3=threshold_at_far(impostor, 1e-3),
        tar_at_far_1e2_fp32_threshold=tar_fixed(fp32_thresholds[0]) if fp32_thresholds else None,
        tar_at_far_1e3_fp32_threshold=tar_fixed(fp32_thresholds[1]) if fp32_thresholds else None,
        roc_auc=_numbers(
            roc_auc(genuine, impostor), bootstrap_roc_auc(genuine, picks_g, impostors)
        ),
        genuine_mean=float(genuine.mean()),
        impostor_mean=float(impostor.mean()),
        pre_norm=PreNormStats(
            mean=float(probe_norms.mean()),
            p5=float(np.percentile(probe_norms, 5)),
            p50=float(np.percentile(probe_norms, 50)),
            p95=float(np.percentile(probe_norms, 95)),
        ),
    )


@dataclass(frozen=True)
class IdentityRun:
    """Rows per size, the pairs used, and (pre_norm, matched) of every genuine probe."""

    rows: list[IdentitySizeRow]
    genuine_pairs: int
    impostor_pairs: int
    note: str
    cliff: dict[str, list[tuple[float, bool]]]


def evaluate_identities(
    labelled: LabelledFaces, sizes: tuple[int, ...], fp32: BatchEmbed, build: BatchEmbed
) -> IdentityRun:
    """Per probe size, fp32 and the build side by side."""
    genuine, impostor, note = make_pairs(labelled.people, min(FARS))
    if len(genuine) == 0 or len(impostor) == 0:
        raise HailocError(
            "no genuine or no impostor pair among the usable faces",
            where="--identities",
            fix="give two or more people, one of them with two or more usable photos",
        )
    draws = Draws.of(len(genuine), len(impostor))
    batches = [labelled.faces] + [batch_at_distance(labelled.faces, size) for size in sizes]
    # A size at or above the aligned width is the gallery itself: embedded once per side.
    unique = list({id(batch): batch for batch in batches}.values())
    embedded: dict[str, list[Embeddings]] = {}
    for side, embed in (("fp32", fp32), ("build", build)):
        by_batch = dict(zip(map(id, unique), embed(unique), strict=True))
        embedded[side] = [by_batch[id(batch)] for batch in batches]
    rows: list[IdentitySizeRow] = []
    cliff: dict[str, list[tuple[float, bool]]] = {side: [] for side in embedded}
    for index, size in enumerate(sizes, start=1):
        found: dict[str, IdentitySide] = {}
        fp32_thresholds: tuple[float, float] | None = None
        for side, outputs in embedded.items():
            gallery, probe = normalize(outputs[0]), outputs[index]
            unit = normalize(probe)
            g = np.sum(gallery[genuine[:, 0]] * unit[genuine[:, 1]], axis=1)
            i = np.sum(gallery[impostor[:, 0]] * unit[impostor[:, 1]], axis=1)
            norms = pre_norm(probe)[genuine[:, 1]]
            found[side] = side_numbers(g, i, norms, fp32_thresholds, draws)
            if fp32_thresholds is None:
                fp32_thresholds = (threshold_at_far(i, 1e-2), threshold_at_far(i, 1e-3))
            threshold = threshold_at_far(i, 1e-3)
            cliff[side] += [(float(n), bool(s >= threshold)) for n, s in zip(norms, g, strict=True)]
        rows.append(IdentitySizeRow(size=size, fp32=found["fp32"], build=found["build"]))
    return IdentityRun(rows, len(genuine), len(impostor), note, cliff)
