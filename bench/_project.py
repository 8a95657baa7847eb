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


def machine_probe(runs: int = 60) -> str:
    """One fixed workload (the vendored fr_feature, fp32, batch 1, one thread, portable
    execution), timed: this VM's speed drifts by up to ~1.5x within a day, so absolute
    seconds from two runs compare only next to this line."""
    import time

    import numpy as np

    from hailoc.inference.session import open_session

    session = open_session(REPO / "models" / "fr_feature.onnx", threads=1)
    name = session.get_inputs()[0].name
    x = np.zeros((1, 3, 112, 112), np.float32)
    session.run(None, {name: x})
    started = time.perf_counter()
    for _ in range(runs):
        session.run(None, {name: x})
    per_face = (time.perf_counter() - started) / runs * 1000
    return f"machine probe: {per_face:.1f} ms per fr_feature face (fp32, 1 thread)"
