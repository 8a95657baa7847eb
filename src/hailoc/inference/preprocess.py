"""Aligned uint8 RGB faces -> the tensor a model's manifest entry says it takes."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from hailoc.faces import Faces, faces_sha256
from hailoc.manifest import ModelConfig
from hailoc.records import Versions

F32 = npt.NDArray[np.float32]


def to_input(faces: npt.NDArray[np.uint8], cfg: ModelConfig, *, normalize: bool = True) -> F32:
    """Colour order, normalization (unless in the graph) and layout, as float32."""
    x = np.asarray(faces, dtype=np.float32)
    if cfg.input.color == "BGR":
        x = x[..., ::-1]
    norm = cfg.normalization
    if normalize and not norm.in_graph:
        assert norm.mean is not None and norm.std is not None
        mean = np.asarray(norm.mean, dtype=np.float32)
        std = np.asarray(norm.std, dtype=np.float32)
        x = np.divide(np.subtract(x, mean), std, dtype=np.float32)
    if cfg.input.layout == "NCHW":
        x = x.transpose(0, 3, 1, 2)
    return np.ascontiguousarray(x, dtype=np.float32)


def input_identity(faces: Faces, cfg: ModelConfig, versions: Versions) -> dict[str, object]:
    """What fixes the graph input `to_input` makes of `faces` (and the runtime that reads it):
    the part every cache key of values computed from faces shares."""
    return {
        "faces_sha256": faces_sha256(faces),
        "input": cfg.input.model_dump(mode="json"),
        "normalization": cfg.normalization.model_dump(mode="json"),
        "versions": versions.model_dump(),
    }
