"""What the manifest and a set's manifest.json say about calibration sets: which models use
which set, what `calib build --all` rebuilds from, and a set's face-size and source tables."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from hailoc.calibration.builder import CalibParams
from hailoc.calibration.store import open_set
from hailoc.manifest import LoadedManifest

# Face width in the photos (px): the bins of `calib show`'s histogram.
SIZE_BINS = ((0, 64), (64, 96), (96, 128), (128, 192), (192, 256), (256, None))


def models_by_set(manifest: LoadedManifest) -> dict[str, list[str]]:
    """Each calibration set the manifest references, with the models that use it."""
    users: dict[str, list[str]] = {}
    for cfg in manifest.models():
        if cfg.calib_set:
            users.setdefault(cfg.calib_set, []).append(cfg.name)
    return users


@dataclass
class Rebuild:
    """`calib build --all`: each set with its recorded parameters, and the referenced sets
    that were never built (nothing recorded to rebuild from), with their users."""

    jobs: list[tuple[str, CalibParams]] = field(default_factory=list)
    never_built: list[tuple[str, list[str]]] = field(default_factory=list)


def recorded_rebuild(manifest: LoadedManifest) -> Rebuild:
    """Every referenced set with the parameters its manifest.json recorded."""
    found = Rebuild()
    for name, users in sorted(models_by_set(manifest).items()):
        if not (manifest.calibration_dir / name / "manifest.json").is_file():
            found.never_built.append((name, users))
            continue
        recorded = open_set(manifest.calibration_dir, name).manifest["params"]
        recorded["distances"] = tuple(recorded["distances"])
        found.jobs.append((name, CalibParams(**recorded)))
    return found


def size_histogram(set_manifest: dict[str, Any]) -> list[tuple[str, int]]:
    """Faces per box-width bin, as (label, count)."""
    widths = [f["width_px"] for f in set_manifest["faces"]]
    rows = []
    for low, high in SIZE_BINS:
        count = sum(low <= w and (high is None or w < high) for w in widths)
        rows.append((f">= {low}" if high is None else f"{low}-{high}", count))
    return rows


def source_coverage(set_manifest: dict[str, Any]) -> list[tuple[str, int, int, int]]:
    """Per source photo: (path, faces found, faces in calib, faces in eval)."""
    split = Counter((f["source"], f.get("split")) for f in set_manifest["faces"])
    return [
        (s["path"], s["faces"], split[(s["path"], "calib")], split[(s["path"], "eval")])
        for s in set_manifest["sources"]
    ]
