"""insightface as the fp32 reference: its reading of a recognition graph and its embeddings.

For `family: insightface` entries the fp32 embeddings hailoc compares every build with are
`insightface.model_zoo.ArcFaceONNX(model_file).get_feat(aligned_bgr_faces)`, the call users'
pipelines make; and the manifest's normalization must be the one ArcFaceONNX decides for the
graph (model_zoo/arcface_onnx.py: mean 0 / std 1 when a Sub and a Mul are among the first 8
nodes, the graph normalizing itself; 127.5 / 127.5 otherwise; RGB via swapRB, NCHW).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from hailoc.errors import HailocError
from hailoc.manifest import ModelConfig

SOURCE = "insightface python-package model_zoo/arcface_onnx.py (ArcFaceONNX.__init__)"


@dataclass(frozen=True)
class Convention:
    """How insightface feeds a recognition graph."""

    mean: float
    std: float
    in_graph: bool  # the graph normalizes its own input (insightface feeds 0..255 as is)
    why: str


def _arcface(model: Path) -> object:
    from insightface.model_zoo.arcface_onnx import ArcFaceONNX

    from hailoc.inference.session import open_session

    try:
        return ArcFaceONNX(model_file=str(model), session=open_session(model))
    except AssertionError:
        raise HailocError(
            f"insightface cannot use {model} as a recognition model (it needs one output)",
            where=str(model),
            fix="declare another family, or export the embedding as the only output",
        ) from None


def convention(model: Path) -> Convention:
    """insightface's input_mean / input_std for this graph, and why."""
    arc = _arcface(model)
    mean, std = float(arc.input_mean), float(arc.input_std)  # type: ignore[attr-defined]
    if mean == 0.0 and std == 1.0:
        why = "a Sub and a Mul among its first 8 nodes: the graph normalizes itself"
        return Convention(mean, std, True, why)
    why = "no Sub and Mul among its first 8 nodes: insightface feeds (x - 127.5) / 127.5"
    return Convention(mean, std, False, why)


def _said(in_graph: bool, mean: object, std: object) -> str:
    return "{in_graph: true}" if in_graph else f"{{mean: {mean}, std: {std}}}"


def mismatch(cfg: ModelConfig, model: Path) -> HailocError | None:
    """An error when the entry's input settings differ from what insightface feeds."""
    conv = convention(model)
    norm = cfg.normalization
    where = f"models.{cfg.name}.normalization"
    if conv.in_graph:
        ok = norm.in_graph
        want = "{in_graph: true}"
    else:
        ok = (
            not norm.in_graph
            and norm.mean is not None
            and norm.std is not None
            and all(abs(m - conv.mean) < 1e-6 for m in norm.mean)
            and all(abs(s - conv.std) < 1e-6 for s in norm.std)
        )
        want = f"{{mean: {conv.mean:g}, std: {conv.std:g}}}"
    if not ok:
        return HailocError(
            f"family insightface: insightface feeds this graph {want} ({conv.why}; "
            f"{SOURCE}), the entry says {_said(norm.in_graph, norm.mean, norm.std)}",
            where=where,
            fix=f"set normalization to {want}, or declare the family the model comes from",
        )
    if cfg.input.color != "RGB" or cfg.input.layout != "NCHW":
        return HailocError(
            f"family insightface: insightface feeds RGB NCHW (blobFromImages with swapRB), "
            f"the entry says {cfg.input.color} {cfg.input.layout}",
            where=f"models.{cfg.name}.input",
            fix="set input.color: RGB and input.layout: NCHW, or declare another family",
        )
    return None


def get_feat(model: Path, faces_rgb: npt.NDArray[np.uint8]) -> npt.NDArray[np.float32]:
    """`ArcFaceONNX(model).get_feat` of aligned RGB faces (given to it as cv2's BGR), in
    chunks of the graph's static batch (get_feat feeds all the images it is given at once)."""
    from hailoc.inference.session import DYNAMIC_BATCH, static_batch

    arc = _arcface(model)
    session = arc.session  # type: ignore[attr-defined]
    batch = static_batch(session) or DYNAMIC_BATCH
    bgr = np.ascontiguousarray(np.asarray(faces_rgb, np.uint8)[..., ::-1])
    out = []
    for start in range(0, len(bgr), batch):
        chunk = list(bgr[start : start + batch])
        real = len(chunk)
        chunk += [chunk[-1]] * (batch - real) if static_batch(session) else []
        feats = np.asarray(arc.get_feat(chunk), np.float32)  # type: ignore[attr-defined]
        out.append(feats.reshape(len(chunk), -1)[:real])
    if not out:
        return np.zeros((0, 0), np.float32)
    return np.concatenate(out)
