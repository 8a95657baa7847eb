"""What the CPU-independent emulation costs: portable vs fused ONNX Runtime execution of a QDQ.

Builds fr_feature int8 and int16-final on the quickstart's calibration set, then embeds the
calibration faces at the gate's five sizes with each build under both executions
(hailoc/execution.py: PORTABLE, the one hailoc reports; FUSED, ORT's int8 kernels, which
depend on the CPU), 1 thread, then one session per core. Prints seconds, the slowdown ratio
and how far the two paths' agreement numbers are apart on this CPU.
Run: python3 bench/emulation.py [--faces N]   (CI runs it with --faces 4)
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench._project import demo_project  # noqa: E402
from hailoc.calibration.face_size import batch_at_distance  # noqa: E402
from hailoc.cli import run  # noqa: E402
from hailoc.eval.sweep import evaluate  # noqa: E402
from hailoc.inference.session import Embedder, Execution, open_session  # noqa: E402


def cpu_flags() -> str:
    try:
        flags = next(
            line
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("flags")
        ).split()
    except (OSError, StopIteration):
        return "unknown"
    wanted = ("avx2", "avx512f", "avx512_vnni", "avx_vnni")
    return " ".join(f for f in wanted if f in flags) or "no avx2"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--faces", type=int, default=56, help="calibration faces to embed")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        manifest = demo_project(root)
        m = str(root / "models.yaml")
        run(["-m", m, "build", "fr_feature", "-p", "int8,int16-final", "--skip-gate"])
        cfg = manifest.model("fr_feature")
        faces = np.load(root / "calibration" / "fr_demo" / "calib.npy")[: args.faces]
        views = {size: batch_at_distance(faces, size) for size in cfg.gate.face_sizes}
        print(f"CPU flags: {cpu_flags()}; {len(faces)} faces x {len(views)} sizes, batch 1")
        reference = {
            s: Embedder(open_session(cfg.onnx), cfg, cfg.embedding_output)(v)
            for s, v in views.items()
        }
        for precision in ("int8", "int16-final"):
            qdq = root / "hef" / "fr_feature" / "onnxruntime" / precision / "fr_feature.qdq.onnx"
            seconds: dict[Execution, float] = {}
            agreement = {}
            for execution in Execution:
                embed = Embedder(open_session(qdq, threads=1, execution=execution), cfg)
                started = time.perf_counter()
                got = {s: embed(v) for s, v in views.items()}
                seconds[execution] = time.perf_counter() - started
                agreement[execution] = evaluate(reference, got).agreement
            portable, fused = agreement[Execution.PORTABLE], agreement[Execution.FUSED]
            ratio = seconds[Execution.PORTABLE] / seconds[Execution.FUSED]
            gap = f"{abs(portable.mean - fused.mean):.4f}/{abs(portable.min - fused.min):.4f}"
            print(
                f"{precision:12s} portable {seconds[Execution.PORTABLE]:.2f} s, fused "
                f"{seconds[Execution.FUSED]:.2f} s (1 thread): portable costs {ratio:.2f}x; "
                f"agreement mean/worst portable {portable.mean:.4f}/{portable.min:.4f}, "
                f"fused {fused.mean:.4f}/{fused.min:.4f} "
                f"(|diff| {gap})"
            )


if __name__ == "__main__":
    main()
