"""Align detected faces to the ArcFace template, refine, and reject the ones that do not fit."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from PIL import Image

from hailoc.calibration.detect import Detector, Face
from hailoc.calibration.template import (
    ARCFACE_TEMPLATE,
    FloatArray,
    apply,
    invert,
    similarity_transform,
    warp,
)

# Two passes of "measure on the aligned face, map back, re-fit" converge on the example set.
REFINE_PASSES = 2


@dataclass(frozen=True)
class AlignParams:
    """Quality thresholds for aligned faces."""

    min_face_px: int = 40
    max_eye_error_px: float = 3.0


@dataclass(frozen=True)
class AlignedFace:
    """A 112x112 RGB face and what is known about it."""

    pixels: npt.NDArray[np.uint8]
    score: float
    width_px: float
    eye_error_px: float | None


def eye_error(points: FloatArray) -> float:
    """Distance (px) of the worse measured eye from the template's eye."""
    return float(np.linalg.norm(points[:2] - ARCFACE_TEMPLATE[:2], axis=1).max())


def align_face(
    image: Image.Image, face: Face, detector: Detector
) -> tuple[Image.Image, float | None]:
    """Warp one face onto the template; refine with re-measured points when the detector can."""
    affine = similarity_transform(face.points, ARCFACE_TEMPLATE)
    aligned = warp(image, affine)
    measured = detector.measure(aligned)
    if measured is None:
        return aligned, None
    for _ in range(REFINE_PASSES):
        # Points measured on the aligned face, mapped back, give a better fit in the photo.
        in_photo = apply(invert(affine), measured)
        affine = similarity_transform(in_photo, ARCFACE_TEMPLATE)
        aligned = warp(image, affine)
        measured = detector.measure(aligned)
        assert measured is not None
    return aligned, eye_error(measured)


def align_all(
    image: Image.Image, detector: Detector, params: AlignParams
) -> tuple[list[AlignedFace], list[str]]:
    """Aligned faces kept, and one reason per face rejected."""
    kept: list[AlignedFace] = []
    rejected: list[str] = []
    for face in detector.detect(image):
        if face.width < params.min_face_px:
            rejected.append(f"face too small ({face.width:.0f} px < {params.min_face_px} px)")
            continue
        aligned, error = align_face(image, face, detector)
        if error is not None and error > params.max_eye_error_px:
            rejected.append(
                f"alignment off by {error:.1f} px at the eyes (> {params.max_eye_error_px} px): "
                "profile, occluded or mis-detected face"
            )
            continue
        kept.append(AlignedFace(np.asarray(aligned, dtype=np.uint8), face.score, face.width, error))
    return kept, rejected
