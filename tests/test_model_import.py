"""`hailoc models import` on generated stand-ins named and shaped like buffalo_l's files, and
the SCRFD detector through insightface (issue #20). No weights are downloaded: every model
here is generated (tests/insightface_pack.py)."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import yaml

from hailoc.calibration import CalibParams, build_set
from hailoc.manifest import load_manifest
from hailoc.manifest.schema import DetectorSpec
from tests.conftest import REPO, CliResult
from tests.insightface_pack import buffalo_l

Cli = Callable[..., CliResult]


def _project(tmp_path: Path) -> Path:
    shutil.copy(REPO / "models.yaml", tmp_path / "models.yaml")
    (tmp_path / "models").mkdir()
    for name in ("fr_feature.onnx", "fr_detect.onnx", "fr_landmark.onnx"):
        shutil.copy(REPO / "models" / name, tmp_path / "models")
    return tmp_path


def test_import_buffalo_l_twice_adds_once_and_keeps_comments(tmp_path: Path, cli: Cli) -> None:
    root = _project(tmp_path)
    pack = buffalo_l(tmp_path / "packs" / "buffalo_l")
    (pack / "README.txt").write_text("not a model")
    manifest = root / "models.yaml"
    before = manifest.read_text()
    res = cli("-m", str(manifest), "models", "import", str(pack))
    assert res.code == 0, res.err
    data = yaml.safe_load(manifest.read_text())
    added = {n: e for n, e in data["models"].items() if "imported by" in str(e.get("notes"))}
    assert len(added) == 1
    ((name, entry),) = added.items()
    assert name.startswith("w600k_r50")
    assert entry["family"] == "insightface" and entry["onnx"] == "packs/buffalo_l/w600k_r50.onnx"
    assert entry["normalization"] == {"mean": 127.5, "std": 127.5}
    assert entry["input"] == {
        "name": "input.1", "shape": [1, 3, 112, 112], "layout": "NCHW", "color": "RGB"
    }  # fmt: skip
    assert len(entry["sha256"]) == 64 and entry["calib_set"] == "faces"
    assert data["defaults"]["detector"] == {
        "kind": "scrfd", "model": "packs/buffalo_l/det_10g.onnx", "landmarks": None
    }  # fmt: skip
    said = " ".join(res.out.split())
    for skipped in ("1k3d68.onnx: landmark", "2d106det.onnx: landmark", "genderage.onnx",
                    "README.txt: not an .onnx file"):  # fmt: skip
        assert f"skipped {skipped}" in said
    # The user's comments survive; the file still loads.
    text = manifest.read_text()
    assert "# The working example" in text and "# MagFace differs" in text
    assert len(text.splitlines()) > len(before.splitlines())
    load_manifest(manifest)
    # Idempotent.
    again = cli("-m", str(manifest), "models", "import", str(pack))
    assert again.code == 0 and "unchanged" in again.out
    assert manifest.read_text() == text
    # `models validate` accepts the entry and names insightface's convention.
    res = cli("-m", str(manifest), "models", "validate", name)
    assert res.code == 0, res.err


def test_import_refuses_a_non_onnx_file_with_one_line(tmp_path: Path, cli: Cli) -> None:
    root = _project(tmp_path)
    bad = tmp_path / "w600k_r50.onnx"
    bad.write_bytes(b"not protobuf at all")
    before = (root / "models.yaml").read_text()
    res = cli("-m", str(root / "models.yaml"), "models", "import", str(bad))
    assert res.code == 2
    lines = [line for line in res.err.splitlines() if line.strip()]
    assert len(lines) == 1 and "not an ONNX model" in lines[0] and str(bad) in lines[0]
    assert (root / "models.yaml").read_text() == before
    assert sorted(p.name for p in root.iterdir()) == ["models", "models.yaml", "w600k_r50.onnx"]


def test_calibration_with_scrfd_records_the_detector(tmp_path: Path) -> None:
    """Plumbing through insightface's SCRFD with a generated graph of SCRFD's I/O signature:
    its one fixed 'face' per photo is no face; the record is what is checked."""
    buffalo_l(tmp_path / "pack")
    spec = DetectorSpec(
        kind="scrfd", model="pack/det_10g.onnx", landmarks=None, score_threshold=0.5
    )
    build_set(
        "scrfd",
        CalibParams(images=str(REPO / "examples" / "photos"), max_eye_error_px=3.0),
        project_root=tmp_path,
        calib_root=tmp_path / "calibration",
        detector=spec,
    )
    folder = tmp_path / "calibration" / "scrfd"
    meta = json.loads((folder / "manifest.json").read_text())
    detector = meta["detector"]
    assert detector["kind"] == "scrfd"
    assert (
        detector["implementation"].startswith("insightface ")
        and "SCRFD" in detector["implementation"]
    )
    assert detector["detector"]["path"] == "pack/det_10g.onnx"
    assert len(detector["detector"]["sha256"]) == 64
    faces = np.load(folder / "calib.npy")
    photos = len(list((REPO / "examples" / "photos").glob("*.jpg")))
    assert faces.shape[1:] == (112, 112, 3) and len(faces) >= photos  # one per photo at least
