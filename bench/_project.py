"""A throw-away project around the vendored example model, shared by the benchmarks."""

from __future__ import annotations

import shutil
from pathlib import Path

from hailoc.calibration import CalibParams, build_set
from hailoc.manifest import LoadedManifest, load_manifest

REPO = Path(__file__).resolve().parents[1]


def demo_project(root: Path) -> LoadedManifest:
    """Copy models, templates and manifest into `root` and build fr_demo (30% held out)."""
    (root / "models").mkdir()
    for name in ("fr_feature.onnx", "fr_detect.onnx", "fr_landmark.onnx"):
        shutil.copy(REPO / "models" / name, root / "models")
    shutil.copytree(REPO / "alls_templates", root / "alls_templates")
    shutil.copy(REPO / "models.yaml", root / "models.yaml")
    manifest = load_manifest(root / "models.yaml")
    build_set(
        "fr_demo",
        CalibParams(images=str(REPO / "examples" / "photos"), eval_split=0.3),
        project_root=root,
        calib_root=manifest.calibration_dir,
        detector=manifest.data.defaults.detector,
    )
    return manifest
