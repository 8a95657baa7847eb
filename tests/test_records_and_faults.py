"""Records of the previous schema stay readable; a vanished Docker engine is a class, not a
traceback."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any, ClassVar

import pytest
import requests

from hailoc.records import RecordError, read_record

V1 = {
    "model": "fr_feature",
    "backend": "onnxruntime",
    "hw_arch": "hailo8",
    "precision": "int16-final",
    "status": "ok",
    "inputs": {
        "onnx": "models/fr_feature.onnx",
        "onnx_sha256": "a" * 64,
        "calibration": "calibration/fr_demo/calib.npy",
        "calibration_sha256": "b" * 64,
        "eval_faces": 6,
        "eval_source": "eval.npy",
        "hailoc_version": "0.1.0",
        "onnxruntime_version": "1.32.0",
    },
    "plan": {"onnx_nodes": ["Conv_93"], "a16_tensors": ["t1", "t2"], "excluded": []},
    "stages": [{"name": "quantize", "status": "ok", "seconds": 1.0, "cache_hit": False}],
    "artifacts": {"qdq_onnx": {"path": "x.qdq.onnx", "sha256": "c" * 64, "note": "NOT a HEF"}},
    "accuracy": None,
}


def test_version_1_records_are_read_and_upgraded(tmp_path: Path) -> None:
    path = tmp_path / "record.json"
    path.write_text(json.dumps(V1))
    record = read_record(path)
    assert record.schema_version == 2
    assert record.plan is not None and record.plan.a16_kind == "qdq_tensors"
    assert record.plan.a16_layers == ["t1", "t2"]
    assert record.inputs is not None and record.inputs.backend["onnxruntime_version"] == "1.32.0"
    assert record.artifacts["qdq_onnx"].sha256 == "c" * 64


@pytest.mark.parametrize("text", ["{not json", "[]", '{"model": 3}'])
def test_malformed_records_are_one_line_errors(tmp_path: Path, text: str) -> None:
    path = tmp_path / "record.json"
    path.write_text(text)
    with pytest.raises(RecordError) as info:
        read_record(path)
    assert str(path) in str(info.value) and "\n" not in str(info.value)


class _Gone:
    """A container whose engine has vanished: every call fails to connect."""

    attrs: ClassVar[dict[str, Any]] = {}

    def logs(self, **kwargs: Any) -> Any:
        return iter([b"@@hailoc stage=optimize event=start\n"])

    def _fail(self, *args: Any, **kwargs: Any) -> Any:
        raise requests.exceptions.ConnectionError("Connection aborted")

    def start(self) -> None:
        pass

    wait = kill = reload = remove = _fail


def test_engine_gone_mid_stage_is_engine_lost(tmp_path: Path) -> None:
    from hailoc.backends.hailo.container import StageFiles, StageRun, run_stage
    from hailoc.backends.hailo.outcome import raise_if_failed
    from hailoc.backends.protocol import StageFailure

    client = SimpleNamespace(
        containers=SimpleNamespace(create=lambda *a, **k: _Gone()),
        api=SimpleNamespace(get=_Gone()._fail, _url=lambda path: path),
    )
    run = StageRun(client, "img", StageFiles({}, {"job.json": b"{}"}), None, 5, False)
    outcome = run_stage(run, tmp_path / "w", lambda line: None)
    assert outcome.engine_lost and not outcome.timed_out
    with pytest.raises(StageFailure) as info:
        raise_if_failed("optimize", outcome, 5, {})
    assert info.value.failure_class == "engine_lost"
