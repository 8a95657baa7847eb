"""`--precision auto` cost on fr_feature: search time and model evaluations, cold and cached.

Run: python3 bench/auto_precision.py
"""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path

from hailoc.autoplan import search_plan
from hailoc.build.inputs import gather
from hailoc.calibration import CalibParams, build_set
from hailoc.manifest import load_manifest

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        project = Path(tmp)
        (project / "models").mkdir()
        for name in ("fr_feature.onnx", "fr_detect.onnx", "fr_landmark.onnx"):
            shutil.copy(REPO / "models" / name, project / "models")
        shutil.copy(REPO / "models.yaml", project / "models.yaml")
        manifest = load_manifest(project / "models.yaml")
        build_set(
            "fr_demo",
            CalibParams(images=str(REPO / "examples" / "photos"), eval_split=0.3),
            project_root=project,
            calib_root=manifest.calibration_dir,
            detector=manifest.data.defaults.detector,
        )
        inputs = gather(manifest, "fr_feature")
        spec = inputs.config.auto
        for label in ("cold", "cached"):
            started = time.perf_counter()
            result = search_plan(inputs, project / ".hailoc" / "cache", spec=spec)
            seconds = time.perf_counter() - started
            print(
                f"{label:6s}: {seconds:6.1f} s, {result.evaluations} model evaluations "
                f"({result.reused_evaluations} reused), {len(result.layers)}/{result.candidates} "
                f"layers in 16-bit, {result.metric} agreement at {result.face_size} px "
                f"{result.score['metric']:.4f} (int8 {result.baseline['metric']:.4f})"
            )


if __name__ == "__main__":
    main()
