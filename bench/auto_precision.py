"""`--precision auto` cost on fr_feature: search time and full evaluations, cold and cached.

The eval set (>= 50 faces, as the search requires) is built from the vendored photos mirrored,
rotated and relit (tests/photos.py). Target (issue #17): cold <= 20 s on 2 cores.
Run: python3 bench/auto_precision.py
"""

from __future__ import annotations

import shutil
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from hailoc.autoplan import search_plan  # noqa: E402
from hailoc.calibration import CalibParams, build_set  # noqa: E402
from hailoc.inputs import gather  # noqa: E402
from hailoc.manifest import load_manifest  # noqa: E402
from tests.photos import augmented_photos  # noqa: E402


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "models").mkdir()
        for name in ("fr_feature.onnx", "fr_detect.onnx", "fr_landmark.onnx"):
            shutil.copy(REPO / "models" / name, root / "models")
        data = yaml.safe_load((REPO / "models.yaml").read_text())
        data["models"] = {"fr_feature": {**data["models"]["fr_feature"], "calib_set": "many"}}
        (root / "models.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
        manifest = load_manifest(root / "models.yaml")
        build_set(
            "many",
            CalibParams(images=str(augmented_photos(root / "photos")), eval_split=0.6),
            project_root=root,
            calib_root=manifest.calibration_dir,
            detector=manifest.data.defaults.detector,
        )
        inputs = gather(manifest, "fr_feature")
        spec = inputs.config.auto
        for label in ("cold", "cached"):
            started = time.perf_counter()
            result = search_plan(inputs, manifest.cache_dir, spec=spec)
            seconds = time.perf_counter() - started
            low, high = result.score["interval"]
            print(
                f"{label:6s}: {seconds:6.1f} s, {result.evaluations} full evaluations "
                f"({result.reused_evaluations} reused), {len(result.layers)}/{result.candidates} "
                f"layers in 16-bit, {result.objective}: {result.score['value']:.4f} "
                f"[{low:.4f}, {high:.4f}] (int8 {result.baseline['value']:.4f}), "
                f"{len(inputs.eval_faces)} eval faces, reached={result.reached}"
            )


if __name__ == "__main__":
    main()
