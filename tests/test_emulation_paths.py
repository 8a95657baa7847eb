"""The emulation's numbers: one CPU-independent path, the same at any thread count.

ONNX Runtime fuses Q/DQ pairs into int8 kernels chosen by instruction set (VPMADDUBSW without
VNNI can saturate), so the fused path's numbers move between two x86-64 CPUs with the same
versions. Every number hailoc reports must come from the portable path (hailoc/execution.py).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from hailoc.calibration.face_size import batch_at_distance
from hailoc.eval.sweep import evaluate
from hailoc.faces import BySize
from hailoc.inference.session import Embedder, Execution, open_session
from hailoc.manifest import load_manifest


@pytest.fixture(scope="module")
def built_int8(tmp_path_factory: pytest.TempPathFactory, demo_calibration: Path) -> Path:
    from hailoc.cli import run
    from tests.conftest import scaffold

    project = scaffold(tmp_path_factory.mktemp("paths"), demo_calibration)
    code = run(["-m", str(project / "models.yaml"), "build", "fr_feature", "-p", "int8"])
    assert code in (0, 1)
    return project


def _embed(model: Path, project: Path, threads: int, execution: Execution) -> BySize:
    cfg = load_manifest(project / "models.yaml").model("fr_feature")
    faces = np.load(project / "calibration" / "fr_demo" / "eval.npy")
    session = open_session(model, threads=threads, execution=execution)
    embed = Embedder(session, cfg, cfg.embedding_output)
    return {size: embed(batch_at_distance(faces, size)) for size in cfg.gate.face_sizes}


def test_reported_numbers_come_from_the_portable_path_at_any_thread_count(
    built_int8: Path,
) -> None:
    out = built_int8 / "hef" / "fr_feature" / "onnxruntime" / "int8"
    record = json.loads((out / "record.json").read_text())
    qdq = out / "fr_feature.qdq.onnx"
    fp32 = built_int8 / "models" / "fr_feature.onnx"

    reference = _embed(fp32, built_int8, 1, Execution.PORTABLE)
    portable = {t: _embed(qdq, built_int8, t, Execution.PORTABLE) for t in (1, 2)}
    fused = {t: _embed(qdq, built_int8, t, Execution.FUSED) for t in (1, 2)}

    # Deterministic whatever the thread count.
    for size in reference:
        np.testing.assert_allclose(portable[1][size], portable[2][size], rtol=0, atol=1e-6)
    one = evaluate(reference, portable[1]).agreement
    two = evaluate(reference, portable[2]).agreement
    assert abs(one.mean - two.mean) <= 1e-6 and abs(one.min - two.min) <= 1e-6

    # The record's numbers are the portable path's (a build that measured with the fused
    # int8 kernels reports another CPU's numbers on another CPU).
    reported = record["accuracy"]["agreement"]
    assert abs(reported["mean"] - one.mean) <= 1e-6
    assert abs(reported["min"] - one.min) <= 1e-6
    assert abs(reported["p5"] - one.p5) <= 1e-6

    # The two paths really are different executions: the fused one runs int8 kernels whose
    # rounding differs from float fake-quantization on every CPU.
    assert any(not np.array_equal(fused[1][s], portable[1][s]) for s in reference)
    fused_mean = evaluate(reference, fused[1]).agreement.mean
    assert abs(fused_mean - one.mean) < 0.05  # the same model, not another one
