"""One fp32 embedding per model, face and size in the project cache: the gate and auto
(`References`) and `hailoc eval` (`cached_fp32`) read each other's entries."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import hailoc.reference
from hailoc.calibration.face_size import batch_at_distance
from hailoc.inference.session import SplitEmbedder
from hailoc.inputs import gather
from hailoc.manifest import load_manifest
from hailoc.reference import References, cached_fp32


def test_the_gate_and_eval_share_fp32_entries(
    calibrated_project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    manifest = load_manifest(calibrated_project / "models.yaml")
    inputs = gather(manifest, "fr_feature")
    assert inputs.config.family != "insightface"
    by_size = References(manifest.cache_dir).get(inputs, (112, 24))
    runs: list[int] = []

    class Counting(SplitEmbedder):
        def __call__(self, faces: np.ndarray) -> np.ndarray:  # type: ignore[type-arg]
            runs.append(len(faces))
            return super().__call__(faces)

    monkeypatch.setattr(hailoc.reference, "SplitEmbedder", Counting)
    embed = cached_fp32(manifest.cache_dir, inputs.config, inputs.versions)
    faces = inputs.eval_faces
    at_24 = batch_at_distance(faces, 24)
    got = embed([faces, at_24])
    assert runs == []  # both read from the gate's entries
    assert np.array_equal(got[0], by_size[112]) and np.array_equal(got[1], by_size[24])
    # And the other way: a size eval embedded first is what the gate then reads.
    at_40 = embed([batch_at_distance(faces, 40)])[0]
    assert runs == [len(faces)]
    monkeypatch.setattr(hailoc.reference, "embed_at_sizes", None)  # must not be called
    assert np.array_equal(References(manifest.cache_dir).get(inputs, (40,))[40], at_40)
