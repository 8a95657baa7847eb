"""ONNX Runtime build cost for fr_feature: wall time and peak RSS of calibration-set build,
quantization and the accuracy gate, for int8 and int16-final (stage cache disabled).

Run: python3 bench/ort_build.py
"""

from __future__ import annotations

import resource
import tempfile
import time
from pathlib import Path

from _project import demo_project

from hailoc.backends.onnxruntime.backend import OrtBackend
from hailoc.options import BuildOptions
from hailoc.pipeline.progress import SilentReporter
from hailoc.pipeline.runner import RunContext, build_one
from hailoc.targets import BuildTarget


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        manifest = demo_project(Path(tmp))
        print(
            f"calibration set: {time.perf_counter() - started:6.2f} s  peak RSS {_rss_mb():.0f} MB"
        )
        context = RunContext.create(manifest, BuildOptions(force=True), SilentReporter())
        backend = OrtBackend()
        for precision in ("int8", "int16-final"):
            started = time.perf_counter()
            target = BuildTarget("fr_feature", "hailo8", precision, "onnxruntime")
            record = build_one(context, backend, target)
            seconds = time.perf_counter() - started
            stages = ", ".join(f"{s.name} {s.seconds:.2f} s" for s in record.stages)
            print(
                f"{precision:12s} {seconds:6.2f} s ({stages}, report "
                f"{seconds - sum(s.seconds for s in record.stages):.2f} s)  "
                f"peak RSS {_rss_mb():.0f} MB  status {record.status}"
            )


if __name__ == "__main__":
    main()
