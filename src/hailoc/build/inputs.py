"""Inputs every backend needs, checked before any work: model, calibration and eval faces."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from hailoc import __version__
from hailoc.calibration.store import open_set
from hailoc.errors import HailocError
from hailoc.fsutil import sha256_file
from hailoc.manifest import LoadedManifest, ModelConfig
from hailoc.onnxgraph import GraphInfo
from hailoc.validate import check_model


@dataclass(frozen=True)
class BuildInputs:
    """A validated model and its calibration and evaluation data."""

    config: ModelConfig
    graph: GraphInfo
    onnx_sha256: str
    calib: Path
    calib_sha256: str
    eval_faces: npt.NDArray[np.uint8]
    eval_source: str  # "eval.npy", or a warning that the faces overlap calibration

    def describe(self, manifest: LoadedManifest) -> dict[str, Any]:
        """The record's `inputs` entries every backend shares."""
        cfg = self.config
        return {
            "onnx": str(cfg.onnx),
            "onnx_sha256": self.onnx_sha256,
            "manifest_entry": manifest.data.models[cfg.name].model_dump(mode="json"),
            "calibration": str(self.calib),
            "calibration_sha256": self.calib_sha256,
            "eval_faces": len(self.eval_faces),
            "eval_source": self.eval_source,
            "hailoc_version": __version__,
        }


def gather(manifest: LoadedManifest, model: str) -> BuildInputs:
    """Check the model and load its calibration set; any problem is a one-line HailocError."""
    cfg = manifest.model(model)
    check = check_model(cfg)
    if check.problems:
        raise check.problems[0]
    assert check.graph is not None
    if cfg.calib_set is None:
        raise HailocError(
            "no calibration set",
            where=f"models.{cfg.name}.calib_set",
            fix="name a set under calibration/ (build one with `hailoc calib build`)",
        )
    calib_set = open_set(manifest.calibration_dir, cfg.calib_set)
    calib = np.load(calib_set.calib, mmap_mode="r")
    height, width = cfg.input.height_width
    if calib.ndim != 4 or calib.shape[1:] != (height, width, 3) or calib.dtype != np.uint8:
        raise HailocError(
            f"calibration array has shape {calib.shape} {calib.dtype}, the model takes "
            f"({height}, {width}) RGB faces as (N, {height}, {width}, 3) uint8",
            where=str(calib_set.calib),
            fix=f"rebuild it with `hailoc calib build {cfg.calib_set} --images DIR`",
        )
    if len(calib) == 0:
        raise HailocError(
            "calibration set is empty",
            where=str(calib_set.calib),
            fix=f"rebuild it from photos with faces: `hailoc calib build {cfg.calib_set} "
            "--images DIR`",
        )
    if calib_set.eval is not None:
        faces = np.load(calib_set.eval)
        source = "eval.npy"
    else:
        # Without a held-out split the gate still runs, on faces the quantizer has seen.
        step = len(calib_set.manifest.get("params", {}).get("distances", [1])) or 1
        faces = np.asarray(calib[::step][:64])
        source = "calib.npy (no eval split: these faces were also used to calibrate)"
    return BuildInputs(
        cfg,
        check.graph,
        sha256_file(cfg.onnx),
        calib_set.calib,
        calib_set.manifest["arrays"]["calib.npy"]["sha256"],
        faces,
        source,
    )


class InputsCache:
    """`gather` once per model for one invocation: a model built at several precisions or
    targets is checked, hashed and loaded once (big ONNX files make that cost seconds)."""

    def __init__(self, manifest: LoadedManifest) -> None:
        self.manifest = manifest
        self._gathered: dict[str, BuildInputs] = {}

    def get(self, model: str) -> BuildInputs:
        """The model's inputs, gathered on first use."""
        if model not in self._gathered:
            self._gathered[model] = gather(self.manifest, model)
        return self._gathered[model]
