"""The one detect -> align -> cache loop of every evaluation (pairs and identities): the
largest face of each image, held to calibration's face filters, cached by content."""

from __future__ import annotations

import hashlib
import io
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from hailoc.cache import StageCache, cache_key
from hailoc.calibration.align import AlignParams, align_face, eye_error_reason, size_reason
from hailoc.calibration.detect import Detector
from hailoc.calibration.images import ImageRejected, decode_rgb, read_source
from hailoc.faces import Faces


class AlignedCache:
    """Aligned faces by the image's content hash, the detector's identity and the face
    filters (verified cache entries): a second build's evaluation re-runs only embedders."""

    def __init__(self, root: Path, detector_key: str, params: AlignParams) -> None:
        self.cache = StageCache(root)
        key = cache_key("aligned", {"detector": detector_key, "filters": asdict(params)})
        self.kind = f"aligned/{key[:16]}"

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


def align_largest(data: bytes, detector: Detector, params: AlignParams) -> Faces | str:
    """The largest face of an image's bytes aligned to 112x112, or why there is none (no
    face, or one calibration would reject: too small, or misaligned at the eyes)."""
    try:
        image = decode_rgb(data)
    except ImageRejected as exc:
        return str(exc)
    found = detector.detect(image)
    if not found:
        return "no face found"
    face = max(found, key=lambda f: f.width)
    too_small = size_reason(face, params)
    if too_small is not None:
        return too_small
    aligned, _, error = align_face(image, face, detector)
    misaligned = eye_error_reason(error, params)
    if misaligned is not None:
        return misaligned
    return np.asarray(aligned, dtype=np.uint8)


@dataclass(frozen=True)
class AlignedImages:
    """Aligned faces by image name, a reason per image without one, and how many came from
    the cache."""

    faces: dict[str, Faces]
    skipped: dict[str, str]
    reused: int


def align_images(
    images: dict[str, Path],
    align: Callable[[bytes], Faces | str],
    cache: AlignedCache,
) -> AlignedImages:
    """Every named image's face, aligned once and cached by the image's content hash."""
    faces: dict[str, Faces] = {}
    skipped: dict[str, str] = {}
    reused = 0
    for name, path in images.items():
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
        else:
            faces[name] = found
    return AlignedImages(faces, skipped, reused)
