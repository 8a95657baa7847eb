"""The ArcFace 112x112 five-point template and the similarity transform that maps onto it."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from PIL import Image

FloatArray = npt.NDArray[np.float64]

SIZE = 112

# Left eye, right eye, nose tip, left and right mouth corners (insightface arcface_dst).
ARCFACE_TEMPLATE: FloatArray = np.array(
    [
        [38.2946, 51.6963],
        [73.5318, 51.5014],
        [56.0252, 71.7366],
        [41.5493, 92.3655],
        [70.7299, 92.2041],
    ],
    dtype=np.float64,
)

# Where the detector's face box lands on an aligned face (mean over the example photos).
# Landmarks are re-measured in this fixed crop, so refinement and checks see the same input.
ALIGNED_BOX: tuple[float, float, float, float] = (18.6, 5.6, 98.7, 116.2)


def similarity_transform(src: FloatArray, dst: FloatArray) -> FloatArray:
    """Least-squares similarity (Umeyama, no reflection) mapping src points onto dst; 2x3."""
    src = np.asarray(src, np.float64)
    dst = np.asarray(dst, np.float64)
    n = len(src)
    src_mean, dst_mean = src.mean(0), dst.mean(0)
    src_c, dst_c = src - src_mean, dst - dst_mean
    cov = dst_c.T @ src_c / n
    u, s, vt = np.linalg.svd(cov)
    d = np.ones(2)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        d[-1] = -1.0
    rot = u @ np.diag(d) @ vt
    var = float((src_c**2).sum() / n)
    scale = float((s * d).sum() / var) if var > 0 else 1.0
    out = np.zeros((2, 3))
    out[:, :2] = scale * rot
    out[:, 2] = dst_mean - scale * rot @ src_mean
    return out


def invert(affine: FloatArray) -> FloatArray:
    """Inverse of a 2x3 affine transform."""
    full = np.vstack([affine, [0.0, 0.0, 1.0]])
    return np.linalg.inv(full)[:2]


def apply(affine: FloatArray, points: FloatArray) -> FloatArray:
    """Map (N, 2) points through a 2x3 affine transform."""
    return np.asarray(points) @ affine[:, :2].T + affine[:, 2]


def warp(image: Image.Image, affine: FloatArray, size: int = SIZE) -> Image.Image:
    """Resample `image` into a size x size face using the transform image -> face."""
    inv = invert(affine)
    return image.transform(
        (size, size),
        Image.Transform.AFFINE,
        data=tuple(float(v) for v in inv.ravel()),
        resample=Image.Resampling.BILINEAR,
    )
