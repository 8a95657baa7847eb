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

import hashlib
import io
import itertools
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from hailoc.cache import StageCache, cache_key
from hailoc.calibration.distance import batch_at_distance
from hailoc.calibration.images import IMAGE_SUFFIXES, ImageRejected, read_source
from hailoc.errors import HailocError
from hailoc.eval.metrics import normalize, pre_norm, roc_auc, threshold_at_far
from hailoc.records.schema import (
    IdentitySide,
    IdentitySizeRow,
    IntervalNumbers,
    PreNormStats,
)

FARS = (1e-2, 1e-3)
BOOTSTRAP = 200
SEED = 0
Faces = npt.NDArray[np.uint8]
Embed = Callable[[Faces], npt.NDArray[np.float32]]
# Embeds several batches of faces at once (a container stage takes them in one go).
BatchEmbed = Callable[[list[Faces]], list[npt.NDArray[np.float32]]]


def batched(embed: Embed) -> BatchEmbed:
    """A per-array embedder as a BatchEmbed."""
    return lambda batches: [embed(batch) for batch in batches]


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


class AlignedCache:
    """Aligned faces by the image's content hash and the detector's identity (verified cache
    entries): a second build's evaluation re-runs only the embedder."""

    def __init__(self, root: Path, detector_key: str) -> None:
        self.cache = StageCache(root)
        self.kind = f"aligned/{detector_key[:16]}"

    def get(self, digest: str) -> Faces | str | None:
        """The face, the reason an image had none, or None when not cached."""
        entry = self.cache.lookup(self.kind, digest)
        if entry is None:
            return None
        if (entry / "none.txt").is_file():
            return (entry / "none.txt").read_text(encoding="utf-8")
        return np.asarray(np.load(entry / "face.npy", allow_pickle=False), np.uint8)

    def put(self, digest: str, value: Faces | str) -> None:
        """Store a face or the reason there was none."""
        if isinstance(value, str):
            self.cache.store(self.kind, digest, {"none.txt": value.encode()})
            return
        buffer = io.BytesIO()
        np.save(buffer, value, allow_pickle=False)
        self.cache.store(self.kind, digest, {"face.npy": buffer.getvalue()})


def detector_key(spec_json: str, files: list[Path]) -> str:
    """Identity of a detector setting: its parameters and its model files' bytes."""
    return cache_key(
        "detector",
        {"spec": spec_json, "files": [hashlib.sha256(p.read_bytes()).hexdigest() for p in files]},
    )


def align_people(
    people: dict[str, list[Path]],
    align: Callable[[bytes], Faces | str],
    cache: AlignedCache,
) -> LabelledFaces:
    """The largest face of every image, aligned once and cached by content hash."""
    faces, who, names, skipped, reused = [], [], [], {}, 0
    for person, images in people.items():
        for path in images:
            name = f"{person}/{path.name}"
            try:
                data, _ = read_source(path)
            except ImageRejected as exc:
                skipped[name] = str(exc)
                continue
            digest = hashlib.sha256(data).hexdigest()
            found = cache.get(digest)
            if found is None:
                found = align(data)
                cache.put(digest, found)
            else:
                reused += 1
            if isinstance(found, str):
                skipped[name] = found
                continue
            faces.append(found)
            who.append(person)
            names.append(name)
    if not faces:
        raise HailocError(
            "no usable face in any image", where="--identities", fix="check the photos"
        )
    return LabelledFaces(np.stack(faces), who, names, skipped, reused)


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


def _tar(genuine: npt.NDArray[np.float64], threshold: float) -> float:
    return float(np.mean(genuine >= threshold))


def _boot(
    genuine: npt.NDArray[np.float64],
    impostor: npt.NDArray[np.float64],
    stat: Callable[[npt.NDArray[np.float64], npt.NDArray[np.float64]], float],
) -> IntervalNumbers:
    rng = np.random.default_rng(SEED)
    values = []
    for _ in range(BOOTSTRAP):
        g = genuine[rng.integers(0, len(genuine), len(genuine))]
        i = impostor[rng.integers(0, len(impostor), len(impostor))]
        values.append(stat(g, i))
    low, high = np.percentile(values, [2.5, 97.5])
    return IntervalNumbers(value=stat(genuine, impostor), low=float(low), high=float(high))


def side_numbers(
    genuine: npt.NDArray[np.float64],
    impostor: npt.NDArray[np.float64],
    probe_norms: npt.NDArray[np.float64],
    fp32_thresholds: tuple[float, float] | None,
) -> IdentitySide:
    """Every number of one side (fp32 or the build) at one face size."""

    def tar_at(far: float) -> IntervalNumbers:
        return _boot(genuine, impostor, lambda g, i: _tar(g, threshold_at_far(i, far)))

    def tar_fixed(threshold: float) -> IntervalNumbers:
        return _boot(genuine, impostor, lambda g, i: _tar(g, threshold))

    return IdentitySide(
        tar_at_far_1e2=tar_at(1e-2),
        tar_at_far_1e3=tar_at(1e-3),
        threshold_at_far_1e2=threshold_at_far(impostor, 1e-2),
        threshold_at_far_1e3=threshold_at_far(impostor, 1e-3),
        tar_at_far_1e2_fp32_threshold=tar_fixed(fp32_thresholds[0]) if fp32_thresholds else None,
        tar_at_far_1e3_fp32_threshold=tar_fixed(fp32_thresholds[1]) if fp32_thresholds else None,
        roc_auc=_boot(genuine, impostor, roc_auc),
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
    batches = [labelled.faces] + [batch_at_distance(labelled.faces, size) for size in sizes]
    embedded = {side: embed(batches) for side, embed in (("fp32", fp32), ("build", build))}
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
            found[side] = side_numbers(g, i, norms, fp32_thresholds)
            if fp32_thresholds is None:
                fp32_thresholds = (threshold_at_far(i, 1e-2), threshold_at_far(i, 1e-3))
            threshold = threshold_at_far(i, 1e-3)
            cliff[side] += [(float(n), bool(s >= threshold)) for n, s in zip(norms, g, strict=True)]
        rows.append(IdentitySizeRow(size=size, fp32=found["fp32"], build=found["build"]))
    return IdentityRun(rows, len(genuine), len(impostor), note, cliff)
