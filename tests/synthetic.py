"""Calibration sets made without photos: random faces, hashed like real sets."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np


def synthetic_set(
    root: Path, name: str = "tiny", faces: int = 8, eval_faces: int | None = None
) -> None:
    """A calibration set written by hand: random 112x112 faces, hashes in its manifest."""
    folder = root / name
    folder.mkdir(parents=True)
    rng = np.random.default_rng(1)
    arrays = {}
    for fname, n in (("calib.npy", faces), ("eval.npy", eval_faces or faces)):
        np.save(folder / fname, rng.integers(0, 255, (n, 112, 112, 3), dtype=np.uint8))
        digest = hashlib.sha256((folder / fname).read_bytes()).hexdigest()
        arrays[fname] = {"sha256": digest, "shape": [n, 112, 112, 3]}
    manifest = {"format": 1, "name": name, "version": 1, "arrays": arrays, "params": {}}
    (folder / "manifest.json").write_text(json.dumps(manifest))
