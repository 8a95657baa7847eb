"""Evaluation throughput: faces/s for embedding (fp32 and QDQ int8) plus metrics, on the
example eval faces repeated to --faces, at the default five simulated sizes.

Run: python3 bench/eval_throughput.py   (builds a throw-away calibration set first)
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import onnx

from hailoc.backends.onnxruntime.qdq_plan import QdqPlan
from hailoc.backends.onnxruntime.quantize import quantize
from hailoc.calibration import CalibParams, build_set
from hailoc.eval.gate import judge
from hailoc.eval.sweep import evaluate
from hailoc.faces import embed_sizes
from hailoc.inference.session import Embedder, open_session
from hailoc.manifest import load_manifest
from hailoc.manifest.schema import DetectorSpec

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--faces", type=int, default=120)
    parser.add_argument("--tiny", action="store_true", help="8 faces (CI)")
    args = parser.parse_args()
    if args.tiny:
        args.faces = 8
    cfg = load_manifest(REPO / "models.yaml").model("fr_feature")
    sizes = cfg.gate.face_sizes
    with tempfile.TemporaryDirectory() as tmp:
        calib = build_set(
            "bench",
            CalibParams(images=str(REPO / "examples" / "photos"), eval_split=0.3),
            project_root=REPO,
            calib_root=Path(tmp) / "calibration",
            detector=DetectorSpec(),
        )
        assert calib.eval is not None
        base = np.load(calib.eval)
        faces = np.concatenate([base] * (args.faces // len(base) + 1))[: args.faces]
        qdq = Path(tmp) / "int8.qdq.onnx"
        model = onnx.load(str(cfg.onnx))
        calib_faces = np.load(calib.calib)
        quantize(model, calib_faces, cfg, QdqPlan((), (), ()), qdq, calibset_size=1024)
        reference = Embedder(open_session(cfg.onnx), cfg)
        candidate = Embedder(open_session(qdq), cfg)
        n = len(faces) * len(sizes)
        started = time.perf_counter()
        ref = embed_sizes(reference, faces, sizes)
        t_ref = time.perf_counter() - started
        started = time.perf_counter()
        cand = embed_sizes(candidate, faces, sizes)
        t_cand = time.perf_counter() - started
        started = time.perf_counter()
        result = evaluate(ref, cand)
        judge(result, cfg.gate)
        t_metrics = time.perf_counter() - started
    print(f"{len(faces)} faces x {len(sizes)} sizes = {n} embeddings per model")
    print(f"fp32 embedding:  {n / t_ref:8.1f} faces/s ({t_ref:.2f} s)")
    print(f"int8 QDQ:        {n / t_cand:8.1f} faces/s ({t_cand:.2f} s)")
    print(f"metrics + gate:  {t_metrics * 1000:8.1f} ms")
    print(f"end to end:      {n / (t_ref + t_cand + t_metrics):8.1f} faces/s")


if __name__ == "__main__":
    main()
