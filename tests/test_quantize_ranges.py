"""One calibration per model and calibration set: the activation ranges kept in the cache
give the same QDQ bytes as calibrating again, for any plan."""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path

import pytest

from hailoc.backends.onnxruntime.qdq_plan import render_qdq
from hailoc.backends.onnxruntime.quantize import RANGES_KIND, quantize_inputs
from hailoc.cache import StageCache
from hailoc.inputs import gather
from hailoc.manifest import load_manifest
from hailoc.plan import PrecisionPlan


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_cached_ranges_give_the_same_qdq_bytes(calibrated_project: Path, tmp_path: Path) -> None:
    manifest = load_manifest(calibrated_project / "models.yaml")
    inputs = gather(manifest, "fr_feature")
    layers = tuple(n.name for n in inputs.graph.nodes if n.op_type == "Conv")[:5]
    cache = StageCache(tmp_path / "cache")
    for name, chosen in (("int8", ()), ("some16", layers)):
        qplan = render_qdq(PrecisionPlan("fr_feature", "auto", chosen), inputs.onnx_proto)
        plain, cached = tmp_path / f"{name}.onnx", tmp_path / f"{name}.cached.onnx"
        quantize_inputs(inputs, qplan, plain)
        quantize_inputs(inputs, qplan, cached, cache)
        assert _sha(plain) == _sha(cached), name
    # The first cached call kept the ranges; the second plan read them (one entry).
    assert len([p for p in (tmp_path / "cache" / RANGES_KIND).iterdir() if p.is_dir()]) == 1
    assert not list(tmp_path.glob(".*ranges*"))  # the working copy is removed


def test_the_quantizers_advice_is_dropped_and_nothing_else(
    calibrated_project: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """ORT's quantizer logs the same pre-processing advice on every call; hailoc drops it with
    a filter, not by raising the root level (a search quantizes on one thread while another
    logs), so hailoc's own warnings still reach the user, during and after."""
    inputs = gather(load_manifest(calibrated_project / "models.yaml"), "fr_feature")
    qplan = render_qdq(PrecisionPlan("fr_feature", "int8", ()), inputs.onnx_proto)
    level = logging.getLogger().level
    with caplog.at_level(logging.WARNING):
        quantize_inputs(inputs, qplan, tmp_path / "int8.onnx")
        logging.getLogger("hailoc.test").warning("still heard")
        logging.warning("a direct root warning from elsewhere")
    assert logging.getLogger().level == level
    assert not [r for r in caplog.records if "onnxruntime" in r.pathname]
    assert [r.getMessage() for r in caplog.records] == [
        "still heard",
        "a direct root warning from elsewhere",
    ]
