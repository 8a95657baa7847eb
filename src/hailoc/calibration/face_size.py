"""Simulated viewing distance: a face seen at k pixels is downscaled to k and back up."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from PIL import Image

U8 = npt.NDArray[np.uint8]


def at_distance(face: U8, pixels: int) -> U8:
    """Return an (H, W, 3) uint8 face as if it had been captured `pixels` wide."""
    height, width = face.shape[:2]
    if pixels >= width:
        return face
    image = Image.fromarray(face)
    small = image.resize((pixels, max(1, round(pixels * height / width))), Image.Resampling.BOX)
    return np.asarray(small.resize((width, height), Image.Resampling.BILINEAR), dtype=np.uint8)


def batch_at_distance(faces: U8, pixels: int) -> U8:
    """Apply `at_distance` to an (N, H, W, 3) batch."""
    if len(faces) == 0 or pixels >= faces.shape[2]:
        return faces
    return np.stack([at_distance(f, pixels) for f in faces])
