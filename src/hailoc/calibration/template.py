"""The ArcFace 112x112 five-point template and small affine helpers (the warp is insightface's)."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

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


def invert(affine: FloatArray) -> FloatArray:
    """Inverse of a 2x3 affine transform."""
    full = np.vstack([affine, [0.0, 0.0, 1.0]])
    return np.linalg.inv(full)[:2]


def apply(affine: FloatArray, points: FloatArray) -> FloatArray:
    """Map (N, 2) points through a 2x3 affine transform."""
    return np.asarray(points) @ affine[:, :2].T + affine[:, 2]
