"""deploy.json beside every artifact, the reference application and `hailoc verify` (#18).

The reference program runs against a stand-in `hailo_platform` (tests/standin_hailort, API
shape from hailo-ai/hailort's pyhailort.py): it checks the program's logic (deploy.json
read, UINT8 in, FLOAT32 out requested), not any accuracy."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jsonschema
import numpy as np
import pytest
from PIL import Image

from hailoc.deploy import json_schema
from tests.conftest import REPO, CliResult, scaffold

Cli = Callable[..., CliResult]
STANDIN_HAILORT = REPO / "tests" / "standin_hailort"


def _schema() -> dict[str, Any]:
    return json.loads((REPO / "docs" / "deploy.schema.json").read_text())  # type: ignore[no-any-return]


def test_committed_schema_is_the_models_schema() -> None:
    assert (REPO / "docs" / "deploy.schema.json").read_text() == json_schema()


@pytest.fixture(scope="module")
def ort_build(tmp_path_factory: pytest.TempPathFactory, demo_calibration: Path) -> Path:
    from hailoc.cli import run

    project = scaffold(tmp_path_factory.mktemp("deploy"), demo_calibration)
    run(["-m", str(project / "models.yaml"), "build", "fr_feature", "-p", "int8", "--skip-gate"])
    return project / "hef" / "fr_feature" / "onnxruntime" / "int8"


def test_ort_deploy_json_validates_and_is_measured(ort_build: Path) -> None:
    deploy = json.loads((ort_build / "deploy.json").read_text())
    jsonschema.validate(deploy, _schema())
    record = json.loads((ort_build / "record.json").read_text())
    assert record["artifacts"]["deploy"]["sha256"]
    assert deploy["artifact"]["file"] == "fr_feature.qdq.onnx"
    assert deploy["artifact"]["sha256"] == record["artifacts"]["qdq_onnx"]["sha256"]
    # The QDQ model is the original graph: the application normalizes, as the manifest says.
    assert deploy["input"]["dtype"] == "float32" and not deploy["input"]["normalization_inside"]
    assert deploy["input"]["application_normalizes"] == {"mean": [127.0] * 3, "std": [128.0] * 3}
    assert (
        deploy["output"]["dimension"] == 512 and "L2-normalize" in deploy["output"]["postprocess"]
    )
    threshold = deploy["threshold"]
    assert threshold["source"].startswith("this build's embeddings of")
    # Six photos give far fewer than 1000 impostor pairs: said, not hidden.
    assert not threshold["resolved"] and threshold["impostor_pairs"] < 1000
    assert "impostor pairs" in threshold["source"]
    assert -1.0 <= threshold["value"] <= 1.01
    assert "this build at its threshold" in deploy["pre_norm_floor"]["source"]


def _hef_folder(tmp_path: Path, ort_build: Path) -> Path:
    """A build folder shaped like a Hailo stand-in build: deploy.json for a uint8 HEF."""
    folder = tmp_path / "build"
    folder.mkdir()
    deploy = json.loads((ort_build / "deploy.json").read_text())
    hef = folder / "fr_feature.standin-not-a-hef"
    hef.write_bytes(b"HAILOC-STANDIN-NOT-A-HEF\n" + json.dumps({"net": "fr_feature"}).encode())
    deploy["backend"] = "hailo"
    deploy["artifact"] = {"file": hef.name, "sha256": "0" * 64, "kind": "standin_output"}
    deploy["input"].update(
        shape=[1, 112, 112, 3], layout="NHWC", dtype="uint8", normalization_inside=True,
        application_normalizes=None,
    )  # fmt: skip
    jsonschema.validate(deploy, _schema())
    (folder / "deploy.json").write_text(json.dumps(deploy))
    return folder


def _run_reference(folder: Path, a: Path, b: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """examples/run_hef.py on two faces against the stand-in HailoRT."""
    return subprocess.run(
        [sys.executable, str(REPO / "examples" / "run_hef.py"), str(folder), str(a), str(b)],
        capture_output=True, text=True, check=False,
        env={**os.environ, "PYTHONPATH": str(STANDIN_HAILORT), **env},
    )  # fmt: skip


def test_reference_program_follows_deploy_json(tmp_path: Path, ort_build: Path) -> None:
    folder = _hef_folder(tmp_path, ort_build)
    faces = np.load(ort_build.parents[3] / "calibration" / "fr_demo" / "eval.npy")
    a, b = tmp_path / "a.png", tmp_path / "b.png"
    Image.fromarray(faces[0]).save(a)
    Image.fromarray(faces[0]).save(b)
    log = tmp_path / "hailort.log"
    proc = _run_reference(folder, a, b, HAILO_STANDIN_LOG=str(log))
    assert proc.returncode == 0, proc.stderr
    assert "similarity 1.0000: same person" in proc.stdout
    calls = [json.loads(line) for line in log.read_text().splitlines()]
    assert calls == [{"input_format": "UINT8", "output_format": "FLOAT32", "faces": 2}]


def test_verify_without_hailort_exits_3_with_one_line(
    tmp_path: Path, cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "hailo_platform", None)  # import fails, as on a laptop
    project = scaffold(tmp_path)
    res = cli("-m", str(project / "models.yaml"), "verify", "fr_feature", "-p", "int8")
    assert res.code == 3
    lines = [line for line in res.err.splitlines() if line.strip()]
    assert len(lines) == 1 and "hailo_platform" in lines[0]


@pytest.mark.parametrize(
    ("device", "hef_arch", "api"),
    [("hailo8", "hailo8", "vstreams"), ("hailo10h", "hailo10h", "infer_model")],
)
def test_reference_program_and_verify_on_both_api_families(
    tmp_path: Path, ort_build: Path, monkeypatch: pytest.MonkeyPatch, device: str,
    hef_arch: str, api: str,
) -> None:  # fmt: skip
    """Hailo-10H answers HAILO_NOT_IMPLEMENTED to VStreams: both programs fall back to
    VDevice.create_infer_model, with FLOAT32 outputs, and get the same embeddings."""
    folder = _hef_folder(tmp_path, ort_build)
    hef = folder / "fr_feature.standin-not-a-hef"
    hef.write_bytes(
        b"HAILOC-STANDIN-NOT-A-HEF\n"
        + json.dumps({"net": "fr_feature", "hw_arch": hef_arch}).encode()
    )
    faces = np.load(ort_build.parents[3] / "calibration" / "fr_demo" / "eval.npy")
    a, b = tmp_path / "a.png", tmp_path / "b.png"
    Image.fromarray(faces[0]).save(a)
    Image.fromarray(faces[1]).save(b)
    proc = _run_reference(folder, a, b, HAILO_STANDIN_DEVICE_ARCH=device)
    assert proc.returncode == 0, proc.stderr
    assert "similarity" in proc.stdout
    monkeypatch.syspath_prepend(str(STANDIN_HAILORT))
    monkeypatch.delitem(sys.modules, "hailo_platform", raising=False)
    monkeypatch.setenv("HAILO_STANDIN_DEVICE_ARCH", device)
    import hailo_platform

    from hailoc.deploy.hailort import embed_hef

    got = embed_hef(hef, faces[:3])
    assert got.shape[0] == 3 and got.dtype == np.float32
    with hailo_platform.VDevice() as vdevice:
        if api == "vstreams":
            params = hailo_platform.ConfigureParams.create_from_hef(
                hailo_platform.HEF(str(hef)), interface=hailo_platform.HailoStreamInterface.PCIe
            )
            assert isinstance(params, dict)
        else:
            with pytest.raises(hailo_platform.HailoRTException, match="HAILO_NOT_IMPLEMENTED"):
                hef_obj = hailo_platform.HEF(str(hef))
                params = hailo_platform.ConfigureParams.create_from_hef(
                    hef_obj, interface=hailo_platform.HailoStreamInterface.PCIe
                )
                group = vdevice.configure(hef_obj, params)[0]
                hailo_platform.InferVStreams(
                    group,
                    hailo_platform.InputVStreamParams.make(group),
                    hailo_platform.OutputVStreamParams.make(group),
                )


def test_a_hef_for_another_arch_is_refused_in_hailorts_words(
    tmp_path: Path, ort_build: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = _hef_folder(tmp_path, ort_build)  # built for hailo8
    monkeypatch.syspath_prepend(str(STANDIN_HAILORT))
    monkeypatch.delitem(sys.modules, "hailo_platform", raising=False)
    monkeypatch.setenv("HAILO_STANDIN_DEVICE_ARCH", "hailo8l")
    import hailo_platform

    from hailoc.deploy.hailort import embed_hef
    from hailoc.errors import HailocError

    expected = "HEF format is not compatible with device. Device arch: HAILO8L, HEF arch: HAILO8"
    hef = folder / "fr_feature.standin-not-a-hef"
    with pytest.raises(HailocError, match=expected):
        embed_hef(hef, np.zeros((1, 112, 112, 3), np.uint8))
    # The stand-in's own answer is the same text (what HailoRT prints on such a host).
    with hailo_platform.VDevice() as vdevice, pytest.raises(hailo_platform.HailoRTException,
                                                          match=expected):  # fmt: skip
        vdevice.create_infer_model(str(hef))
