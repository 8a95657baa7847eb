"""The face and embedding types every evaluation shares, and the face-size stacking."""

from __future__ import annotations

import hashlib
from collections.abc import Callable

import numpy as np
import numpy.typing as npt

from hailoc.calibration.face_size import batch_at_distance

Faces = npt.NDArray[np.uint8]  # (N, 112, 112, 3) aligned RGB faces
Embeddings = npt.NDArray[np.float32]  # (N, D), as the model wrote them (not normalised)
Embedder = Callable[[Faces], Embeddings]
# Embeds several batches of faces at once (a container stage takes them in one go).
BatchEmbed = Callable[[list[Faces]], list[Embeddings]]
BySize = dict[int, Embeddings]  # face size in px -> embeddings of the same faces


def embed_sizes(embed: Embedder, faces: Faces, sizes: tuple[int, ...]) -> BySize:
    """Embeddings of the faces as seen at each simulated size (112 = as aligned)."""
    return {size: np.asarray(embed(batch_at_distance(faces, size))) for size in sizes}


def stack_sizes(faces: Faces, sizes: tuple[int, ...]) -> Faces:
    """All sizes in one array, size-major: what a remote emulator embeds in one go."""
    return np.concatenate([batch_at_distance(faces, s) for s in sizes])


def split_sizes(emb: Embeddings, sizes: tuple[int, ...]) -> BySize:
    """Inverse of `stack_sizes` applied to embeddings."""
    n = len(emb) // len(sizes)
    return {s: emb[i * n : (i + 1) * n] for i, s in enumerate(sizes)}


def faces_sha256(faces: Faces) -> str:
    """sha256 of a face array's shape, dtype and bytes."""
    digest = hashlib.sha256(f"{faces.shape}{faces.dtype}".encode())
    digest.update(np.ascontiguousarray(faces).tobytes())
    return digest.hexdigest()
