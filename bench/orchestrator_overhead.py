"""hailoc's own overhead per model on the Hailo backend: image checks, container start,
cache lookups. A 5-model batch against the stand-in suite image, cold and with a warm cache.

Overhead = wall time - seconds the worker itself reported for its DFC calls.
Needs a Docker engine and `scripts/build-standin-image`. Run: python3 bench/orchestrator_overhead.py
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import yaml

from hailoc.backends.hailo.backend import HailoBackend
from hailoc.backends.hailo.sessions import open_session
from hailoc.calibration import CalibParams, build_set
from hailoc.manifest import load_manifest
from hailoc.manifest.schema import DetectorSpec
from hailoc.options import BuildOptions
from hailoc.pipeline.batch import expand_targets, run_batch
from hailoc.pipeline.progress import SilentReporter
from hailoc.pipeline.runner import RunContext, build_one

REPO = Path(__file__).resolve().parents[1]


def _project(tmp: Path, models: int) -> Path:
    (tmp / "models").mkdir()
    shutil.copy(REPO / "models" / "fr_feature.onnx", tmp / "models")
    shutil.copytree(REPO / "alls_templates", tmp / "alls_templates")
    data = yaml.safe_load((REPO / "models.yaml").read_text())
    base = data["models"]["fr_feature"]
    # Distinct names give distinct parse keys, so the cold run really parses five times.
    data["models"] = {f"m{i}": dict(base) for i in range(models)}
    (tmp / "models.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    build_set(
        "fr_demo",
        CalibParams(images=str(REPO / "examples" / "photos"), distances=(112,)),
        project_root=REPO,
        calib_root=tmp / "calibration",
        locks=tmp / ".hailoc" / "locks",
        detector=DetectorSpec(),
    )
    return tmp


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--models", type=int, default=5)
    parser.add_argument("--tiny", action="store_true", help="one model (CI)")
    parser.add_argument("--suite-image", default="hailoc-standin-suite:latest")
    args = parser.parse_args()
    if args.tiny:
        args.models = 1
    with tempfile.TemporaryDirectory() as tmp:
        project = _project(Path(tmp), args.models)
        manifest = load_manifest(project / "models.yaml")
        options = BuildOptions(suite_image=args.suite_image, gpus=False)
        started = time.perf_counter()
        session = open_session(manifest, options, ["hailo8"])
        print(
            f"session (daemon ping, suite image, DFC image): {time.perf_counter() - started:.2f} s"
        )
        targets = expand_targets(
            manifest, [], all_models=True, precisions=None, hw_archs=None, backend="hailo"
        )
        backend = HailoBackend(manifest, [session])
        for label in ("cold", "warm"):
            context = RunContext.create(manifest, options, SilentReporter())
            started = time.perf_counter()
            records = run_batch(
                targets, lambda target, slot, ctx=context: build_one(ctx, backend, target, slot)
            )
            wall = time.perf_counter() - started
            dfc = sum(s.worker_seconds or 0.0 for r in records for s in r.stages)
            failed = [r.model for r in records if r.status != "ok"]
            print(
                f"{label}: {len(records)} models in {wall:.2f} s, worker DFC time {dfc:.2f} s, "
                f"hailoc overhead {(wall - dfc) / len(records):.2f} s/model"
                + (f"  FAILED: {failed}" if failed else "")
            )


if __name__ == "__main__":
    main()
