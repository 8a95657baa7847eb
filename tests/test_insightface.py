"""insightface as the reference (issue #20): hailoc aligns faces with insightface's norm_crop
and, for `family: insightface`, takes its fp32 embeddings from ArcFaceONNX.get_feat. These
tests compare against insightface itself (a runtime dependency of hailoc)."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx
import pytest
import yaml
from PIL import Image

from hailoc.calibration.align import AlignParams, align_all
from hailoc.calibration.detect import make_detector
from hailoc.inference.session import Embedder, open_session
from hailoc.inputs import gather
from hailoc.manifest import load_manifest
from hailoc.manifest.schema import DetectorSpec
from hailoc.reference import References
from tests.conftest import REPO, CliResult, scaffold
from tests.corpus import CORPUS, build

PHOTOS = sorted((REPO / "examples" / "photos").glob("*.jpg"))


def _insightface_crop(pixels: np.ndarray, points: np.ndarray) -> np.ndarray:
    from insightface.utils import face_align

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # skimage 0.26 deprecation inside
        return face_align.norm_crop(pixels, points.astype(np.float32), image_size=112)  # type: ignore[no-any-return]


def test_aligned_crops_are_insightface_norm_crop() -> None:
    detector = make_detector(DetectorSpec(), REPO)
    compared = 0
    for photo in PHOTOS:
        image = Image.open(photo).convert("RGB")
        faces, _ = align_all(image, detector, AlignParams())
        for face in faces:
            expected = _insightface_crop(np.asarray(image), face.landmarks)
            # Identical: the crop is insightface's own warp of the final landmarks.
            assert np.array_equal(face.pixels, expected), photo.name
            compared += 1
    assert compared >= len(PHOTOS)


def _insightface_feats(model: Path, faces: np.ndarray) -> np.ndarray:
    from insightface.model_zoo.arcface_onnx import ArcFaceONNX

    arc = ArcFaceONNX(model_file=str(model))
    # cv2 images are BGR: insightface's swapRB turns them back into RGB.
    return np.concatenate([arc.get_feat([face[..., ::-1]]) for face in faces])


@pytest.fixture
def insightface_project(tmp_path: Path, demo_calibration: Path) -> Path:
    root = scaffold(tmp_path, demo_calibration)
    onnx.save(build(CORPUS[0]), str(root / "models" / "r18.onnx"))
    data = yaml.safe_load((root / "models.yaml").read_text())
    base = data["models"]["fr_feature"]
    insight = {"family": "insightface", "normalization": {"mean": 127.5, "std": 127.5}}
    data["models"] = {
        # The vendored model read as insightface reads it (its own package uses 127 / 128).
        "fr_insight": {**base, **insight},
        "r18": {
            **base,
            **insight,
            "onnx": "models/r18.onnx",
            "sha256": None,
            "embedding_output": None,
        },
    }
    data["models"]["r18"] = {k: v for k, v in data["models"]["r18"].items() if v is not None}
    (root / "models.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    return root


@pytest.mark.parametrize("model", ["fr_insight", "r18"])
def test_fp32_reference_is_insightface_get_feat(insightface_project: Path, model: str) -> None:
    manifest = load_manifest(insightface_project / "models.yaml")
    inputs = gather(manifest, model)
    sizes = inputs.config.gate.face_sizes
    reference = References(manifest.cache_dir).get(inputs, sizes)
    cfg = inputs.config
    for size in (112, 24):
        from hailoc.calibration.face_size import batch_at_distance

        faces = batch_at_distance(inputs.eval_faces, size)
        theirs = _insightface_feats(cfg.onnx, faces)
        assert np.abs(reference[size] - theirs).max() <= 1e-5 * max(1.0, np.abs(theirs).max())
        # Candidates are embedded by hailoc with the manifest's preprocessing: the same input.
        ours = Embedder(open_session(cfg.onnx), cfg, cfg.embedding_output)(faces)
        assert np.abs(ours - theirs).max() <= 1e-4 * max(1.0, np.abs(theirs).max())


def test_validate_names_the_convention_insightface_applies(
    insightface_project: Path, cli: Callable[..., CliResult]
) -> None:
    path = insightface_project / "models.yaml"
    res = cli("-m", str(path), "models", "validate", "fr_insight")
    assert res.code == 0, res.err
    said = " ".join((res.out + res.err).split())
    assert "insightface ArcFaceONNX.get_feat" in said and "mean 127.5 / std 127.5" in said
    data = yaml.safe_load(path.read_text())
    data["models"]["fr_insight"]["normalization"] = {"mean": 127.0, "std": 128.0}
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    res = cli("-m", str(path), "models", "validate", "fr_insight")
    assert res.code == 1  # validate's "problems found"
    assert "insightface feeds this graph {mean: 127.5, std: 127.5}" in " ".join(res.err.split())


def test_graph_that_normalizes_itself_is_read_as_insightface_reads_it(tmp_path: Path) -> None:
    from hailoc.interop.insightface import convention

    mxnet = next(v for v in CORPUS if v.arch == "mxnet")
    path = tmp_path / "mx.onnx"
    onnx.save(build(mxnet), str(path))
    conv = convention(path)
    assert conv.in_graph and (conv.mean, conv.std) == (0.0, 1.0)
