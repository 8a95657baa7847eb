"""Align detected faces to the ArcFace template, refine, and reject the ones that do not fit.

The crop is insightface's own: `face_align.norm_crop(img, landmarks, 112)` (skimage similarity
estimate, OpenCV bilinear warp, black border), so calibration, eval and pairs faces are the
faces users' insightface pipelines feed their models.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from PIL import Image

from hailoc.calibration.detect import Detector, Face
from hailoc.calibration.template import ARCFACE_TEMPLATE, SIZE, FloatArray, apply, invert

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
    landmarks: FloatArray  # the five points in the photo that norm_crop aligned
    score: float
    width_px: float
    eye_error_px: float | None


def eye_error(points: FloatArray) -> float:
    """Distance (px) of the worse measured eye from the template's eye."""
    return float(np.linalg.norm(points[:2] - ARCFACE_TEMPLATE[:2], axis=1).max())


def norm_crop(pixels: npt.NDArray[np.uint8], points: FloatArray) -> npt.NDArray[np.uint8]:
    """insightface's alignment of one face (any channel order in, the same order out)."""
    from insightface.utils import face_align

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # see _to_face
        crop = face_align.norm_crop(pixels, np.asarray(points, np.float32), image_size=SIZE)
    return np.asarray(crop, dtype=np.uint8)


def _to_face(points: FloatArray) -> FloatArray:
    """The photo -> aligned-face transform norm_crop uses for `points` (2x3)."""
    from insightface.utils import face_align

    with warnings.catch_warnings():
        # insightface calls skimage's SimilarityTransform.estimate, deprecated since
        # scikit-image 0.26 (FutureWarning): the numbers are unchanged, the call is not ours.
        warnings.simplefilter("ignore", FutureWarning)
        matrix = face_align.estimate_norm(np.asarray(points, np.float32), SIZE)
    return np.asarray(matrix, np.float64)


def align_face(
    image: Image.Image, face: Face, detector: Detector
) -> tuple[Image.Image, FloatArray, float | None]:
    """Align one face with norm_crop; refine its landmarks with points re-measured on the
    aligned face when the detector can. Returns the face, its photo landmarks, eye error."""
    pixels = np.asarray(image.convert("RGB"), dtype=np.uint8)
    points = np.asarray(face.points, np.float64)
    aligned = Image.fromarray(norm_crop(pixels, points))
    measured = detector.measure(aligned)
    if measured is None:
        return aligned, points, None
    for _ in range(REFINE_PASSES):
        # Points measured on the aligned face, mapped back, give a better fit in the photo.
        points = apply(invert(_to_face(points)), measured)
        aligned = Image.fromarray(norm_crop(pixels, points))
        measured = detector.measure(aligned)
        assert measured is not None
    return aligned, points, eye_error(measured)


def size_reason(face: Face, params: AlignParams) -> str | None:
    """Why a detected face is too small to keep, or None."""
    if face.width < params.min_face_px:
        return f"face too small ({face.width:.0f} px < {params.min_face_px} px)"
    return None


def eye_error_reason(error: float | None, params: AlignParams) -> str | None:
    """Why an aligned face sits too far from the template at the eyes, or None."""
    if error is not None and error > params.max_eye_error_px:
        return (
            f"alignment off by {error:.1f} px at the eyes (> {params.max_eye_error_px} px): "
            "profile, occluded or mis-detected face"
        )
    return None


def align_all(
    image: Image.Image, detector: Detector, params: AlignParams
) -> tuple[list[AlignedFace], list[str]]:
    """Aligned faces kept, and one reason per face rejected."""
    kept: list[AlignedFace] = []
    rejected: list[str] = []
    for face in detector.detect(image):
        too_small = size_reason(face, params)
        if too_small is not None:
            rejected.append(too_small)
            continue
        aligned, points, error = align_face(image, face, detector)
        misaligned = eye_error_reason(error, params)
        if misaligned is not None:
            rejected.append(misaligned)
            continue
        pixels = np.asarray(aligned, dtype=np.uint8)
        kept.append(AlignedFace(pixels, points, face.score, face.width, error))
    return kept, rejected
