"""One calibration per model and calibration set: the activation ranges kept in the cache
give the same QDQ bytes as calibrating again, for any plan; collected on every core, they are
ONNX Runtime's own."""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path

import pytest

from hailoc.backends.onnxruntime.qdq_plan import render_qdq
from hailoc.backends.onnxruntime.quantize import (
    OPSET,
    RANGES_KIND,
    _Reader,
    collect_ranges,
    quantize_inputs,
    upgrade_opset,
)
from hailoc.cache import StageCache
from hailoc.inputs import gather
from hailoc.manifest import load_manifest
from hailoc.plan import PrecisionPlan
from tests.corpus import CORPUS


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


@pytest.mark.parametrize("variant", CORPUS, ids=[v.name for v in CORPUS])
def test_ranges_collected_on_every_core_are_onnxruntimes_own(
    corpus_project: Path, tmp_path: Path, variant: object
) -> None:
    """hailoc collects the calibration ranges on one single-threaded session per core; they
    must be exactly what ONNX Runtime's calibrator computes (one session, its own threads),
    for every export shape users bring: a build and the auto search quantize with them."""
    import onnx
    from onnxruntime.quantization import CalibrationDataReader, CalibrationMethod, quantize_static

    inputs = gather(load_manifest(corpus_project / "models.yaml"), variant.name)  # type: ignore[attr-defined]
    cfg = inputs.config
    model = tmp_path / "fp32.onnx"
    onnx.save(upgrade_opset(inputs.onnx_proto, OPSET), str(model))
    batch = onnx.load(str(model)).graph.input[0].type.tensor_type.shape.dim[0].dim_value

    class Reader(_Reader, CalibrationDataReader):  # type: ignore[misc]
        pass

    reader = Reader(inputs.calib[:40], cfg, batch)
    assert len(reader) > 2, "more feeds than cores: each core runs a share"
    theirs, ours = tmp_path / "theirs.json", tmp_path / "ours.json"
    quantize_static(
        str(model),
        str(tmp_path / "qdq.onnx"),
        reader,
        calibrate_method=CalibrationMethod.MinMax,
        calibration_cache_path=str(theirs),
    )
    assert collect_ranges(model, Reader(inputs.calib[:40], cfg, batch), ours, tmp_path, 2)
    assert json.loads(ours.read_text()) == json.loads(theirs.read_text())
    assert not (tmp_path / "augmented.onnx").exists()
