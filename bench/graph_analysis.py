"""`models validate` + `plan -p int16-final` on ResNet-50/100-shaped face embedders (random
weights, real widths: the graph, not the weights, is what the analysis walks).

Target: <= 5 s for R100 on 2 cores; the analysis is linear in the graph size.
Run: python3 bench/graph_analysis.py [--tiny]   (--tiny: ResNet-18-shaped only, for CI)
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import onnx
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from hailoc.cli import run  # noqa: E402
from tests.corpus import resnet_shaped  # noqa: E402


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "models").mkdir()
        models = {}
        for depth in (18,) if "--tiny" in sys.argv else (50, 100):
            path = root / "models" / f"r{depth}.onnx"
            onnx.save(resnet_shaped(depth), str(path))
            models[f"r{depth}"] = {
                "onnx": f"models/r{depth}.onnx",
                "input": {"name": "input", "shape": [1, 3, 112, 112]},
                "normalization": {"mean": 127.5, "std": 127.5},
            }
        (root / "models.yaml").write_text(yaml.safe_dump({"version": 1, "models": models}))
        for name in models:
            size = (root / "models" / f"{name}.onnx").stat().st_size / 2**20
            nodes = len(
                onnx.load(
                    str(root / "models" / f"{name}.onnx"), load_external_data=False
                ).graph.node
            )
            started = time.perf_counter()
            code_v = run(["-m", str(root / "models.yaml"), "models", "validate", name])
            validate = time.perf_counter() - started
            started = time.perf_counter()
            code_p = run(["-m", str(root / "models.yaml"), "plan", name, "-p", "int16-final"])
            plan = time.perf_counter() - started
            print(
                f"{name}: {nodes} nodes, {size:.0f} MB: validate {validate:.2f} s, "
                f"plan {plan:.2f} s, total {validate + plan:.2f} s (exit {code_v}/{code_p})",
                file=sys.stderr,
            )


if __name__ == "__main__":
    main()
