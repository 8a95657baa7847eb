"""The stand-in and hailoc against the newest public evidence (docs/dfc-behaviour.md rows 4-5 and
11-19): each test drives the stand-in DFC in-process through hailoc's own adapter
(`worker/dfc.py`) and the `.alls` hailoc renders, so a hailoc that relied on the old, more
lenient stand-in fails here."""

from __future__ import annotations

import importlib.util
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

from hailoc.alls import render_alls
from hailoc.alls.flavor import Flavor, applied_level, choose_flavor
from hailoc.manifest import ModelConfig, load_manifest
from hailoc.model_check import load_graph
from hailoc.plan import build_plan, hn_from_dict, resolve_plan
from tests.conftest import FIXTURES, REPO

WORKER = REPO / "src" / "hailoc" / "backends" / "hailo" / "worker" / "dfc.py"
ENTRIES = 24


@pytest.fixture
def dfc(
    standin_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[ModuleType]:
    """hailoc's DFC adapter, importing the stand-in, running in a private cwd without a GPU."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    spec = importlib.util.spec_from_file_location("hailoc_worker_dfc", WORKER)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    yield module
    sys.modules.pop("hailoc_worker_dfc", None)


@pytest.fixture
def cfg() -> ModelConfig:
    return load_manifest(REPO / "models.yaml").model("fr_feature")


def _calib(count: int = ENTRIES) -> np.ndarray:
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (count, 112, 112, 3)).astype(np.float32)


def _parsed(dfc: ModuleType, tmp_path: Path, hw_arch: str = "hailo8") -> tuple[str, dict]:  # type: ignore[type-arg]
    har = str(tmp_path / "parsed.har")
    hn = dfc.parse(
        str(REPO / "models" / "fr_feature.onnx"), "fr_feature", hw_arch, [], [], "input",
        [1, 3, 112, 112], har,
    )  # fmt: skip
    return har, hn


def _alls(cfg: ModelConfig, hn: dict, precision: str = "int8", entries: int = ENTRIES) -> str:  # type: ignore[type-arg]
    plan = build_plan(cfg, load_graph(cfg), precision)
    resolved = resolve_plan(plan, hn_from_dict(hn))
    flavor = choose_flavor(cfg.optimization.optimization_level, gpu=False, entries=entries)
    return render_alls(cfg, resolved, REPO / "alls_templates", flavor, entries)


def test_hailoc_script_states_the_calibset_it_hands_over_and_no_implicit_compression(
    dfc: ModuleType, cfg: ModelConfig, tmp_path: Path
) -> None:
    har, hn = _parsed(dfc, tmp_path)
    alls = _alls(cfg, hn)
    # calibset_size matches the set hailoc built (the manifest's 1024 is a cap) ...
    assert f"calibset_size={ENTRIES})" in alls
    # ... and compression is off explicitly, both switches (DFC_FIELD_NOTES section 3).
    assert "compression_level=0" in alls
    assert "model_optimization_config(compression_params, auto_4bit_weights_ratio=0)" in alls
    runner = dfc.optimize(har, "hailo8", alls, _calib(), str(tmp_path / "optimized.har"))
    assert runner._quant["w4_nodes"] == []
    # A script claiming more entries than it gets is refused by the stand-in (strict).
    from hailo_sdk_client.exceptions import SDKException

    with pytest.raises(SDKException, match="calibset_size=1024 is larger than the 24"):
        dfc.optimize(har, "hailo8", alls.replace(f"calibset_size={ENTRIES}", "calibset_size=1024"),
                     _calib(), str(tmp_path / "other.har"))  # fmt: skip


def test_standin_compresses_large_layers_unless_told_not_to(
    dfc: ModuleType, standin_path: Path
) -> None:
    from hailo_sdk_client import _runner

    runner = _runner.ClientRunner(hw_arch="hailo8")
    runner._hn = json.loads((FIXTURES / "fr_feature.hn.json").read_text())
    runner._onnx = (REPO / "models" / "fr_feature.onnx").read_bytes()
    largest = max(
        int(np.prod(i.dims))
        for i in __import__("onnx").load(str(REPO / "models" / "fr_feature.onnx")).graph.initializer
    )
    _runner.IMPLICIT_4BIT_WEIGHTS = largest  # fr_feature is small: lower the bar to its largest
    runner._script = "model_optimization_flavor(compression_level=0)\n"
    assert len(runner._implicit_4bit()) >= 1  # one switch is not enough
    runner._script += "model_optimization_config(compression_params, auto_4bit_weights_ratio=0)\n"
    assert runner._implicit_4bit() == []


def test_optimize_adds_normalization_and_compile_reloads_the_script(
    dfc: ModuleType, cfg: ModelConfig, tmp_path: Path
) -> None:
    har, hn = _parsed(dfc, tmp_path)
    alls = _alls(cfg, hn, "int16-final")
    optimized = str(tmp_path / "optimized.har")
    dfc.optimize(har, "hailo8", alls, _calib(), optimized)
    from hailo_sdk_client import ClientRunner

    layers = ClientRunner(har=optimized).get_hn_dict()["layers"]
    assert layers["fr_feature/normalization1"]["type"] == "normalization"
    assert layers["fr_feature/normalization1"]["input"] == ["fr_feature/input_layer1"]
    # hailomz-style compile: the full script again onto a HAR that holds normalization1.
    assert dfc.compile_hef(optimized, "hailo8", alls).startswith(b"HAILOC-STANDIN")
    # The noise analysis walks the optimized HN (normalization1 included) without tripping.
    snr = dfc.analyze_noise(optimized, "hailo8", _calib(), 8, "simple")
    assert snr and "fr_feature/normalization1" not in snr


def test_standin_takes_hw_arch_from_the_har_and_checks_calibration_keys(
    dfc: ModuleType, tmp_path: Path
) -> None:
    har, _ = _parsed(dfc, tmp_path, "hailo8l")
    from hailo_sdk_client import ClientRunner
    from hailo_sdk_client.exceptions import SDKException

    runner = ClientRunner(har=har)
    assert runner.hw_arch == "hailo8l"
    runner.load_model_script(
        "model_optimization_config(calibration, batch_size=8, calibset_size=8)"
    )
    with pytest.raises(SDKException, match="do not match the input layers"):
        runner.optimize({"input": _calib(8)})  # an ONNX name, not the HN input layer
    runner.optimize({"fr_feature/input_layer1": _calib(8)})
    with pytest.raises(TypeError):
        runner.analyze_noise(_calib(8), data_count=4)  # public callers pass dataset=


def test_model_script_is_validated_at_load(
    dfc: ModuleType, cfg: ModelConfig, tmp_path: Path
) -> None:
    har, hn = _parsed(dfc, tmp_path)
    from hailo_sdk_client import ClientRunner
    from hailo_sdk_client.exceptions import HailoNNException

    runner = ClientRunner(har=har)
    runner.load_model_script(_alls(cfg, hn, "int16-all"))  # what hailoc writes loads
    bad = {
        "model_optimization_flavour(optimization_level=0)": "unknown command",
        "model_optimization_flavor(optimisation_level=0)": "unexpected argument",
        "quantization_param([conv1], precision_mode=a16_w17)": "Unsupported value",
        "quantization_param([output_layer1], precision_mode=a8_w4)": "Unsupported value",
        "quantization_param([conv1], precision_mode=a16_w8)": "on hailo8",
        "quantization_param({fc*}, precision_mode=a16_w16)": "matches the pattern",
    }
    for line, message in bad.items():
        with pytest.raises(HailoNNException, match=message):
            runner.load_model_script(line)
    runner.load_model_script("quantization_param({conv*}, precision_mode=a16_w16)")
    alls = tmp_path / "model.alls"
    alls.write_text("quantization_param([conv1, dw1], precision_mode=a16_w16)\n")
    runner.load_model_script(str(alls))  # a path is accepted as well as text
    assert "dw1" in runner.model_script


def test_end_nodes_are_node_names(
    dfc: ModuleType, tmp_path: Path, cli: object, project: Path
) -> None:
    import onnx
    from hailo_sdk_client.exceptions import MisspellNodeError

    model = onnx.load(str(REPO / "models" / "fr_feature.onnx"))
    last = model.graph.node[-1]
    with pytest.raises(MisspellNodeError, match="Unable to find end node names"):
        dfc.parse(str(REPO / "models" / "fr_feature.onnx"), "fr_feature", "hailo8", [],
                  [last.output[0]], "input", [1, 3, 112, 112], str(tmp_path / "p.har"))  # fmt: skip
    # hailoc refuses the tensor name when it reads the manifest, naming the node to use.
    import yaml

    manifest = yaml.safe_load((project / "models.yaml").read_text())
    manifest["models"]["fr_feature"]["end_nodes"] = [last.output[0]]
    (project / "models.yaml").write_text(yaml.safe_dump(manifest))
    result = cli("-m", str(project / "models.yaml"), "models", "validate", "fr_feature")  # type: ignore[operator]
    assert result.code == 1  # validate's answer for a model with problems
    assert f"{last.output[0]!r} is a tensor, not a node" in result.err + result.out
    result = cli("-m", str(project / "models.yaml"), "build", "fr_feature")  # type: ignore[operator]
    assert result.code == 2, result.err  # refused before any stage
    assert "is a tensor, not a node" in result.err
    assert not (project / "hef").exists()
    assert f"{last.output[0]!r} is a tensor, not a node" in result.err + result.out
    assert repr(last.name) in result.err + result.out


def test_applied_level_comes_from_the_dfc_log(tmp_path: Path) -> None:
    log = tmp_path / "acceleras.log"
    log.write_text(
        "[warning] Reducing optimization level to 1 (the accuracy won't be optimized and "
        "compression won't be used) because there's less data than the recommended amount (1024)\n"
    )
    assert applied_level(Flavor(None, "auto"), [log]) == 1
    assert applied_level(Flavor(0, "set"), [log]) == 0
    assert applied_level(Flavor(None, "auto"), []) is None


def test_standin_level_drops_only_when_implicit(
    standin_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from hailo_sdk_client import _runner

    monkeypatch.chdir(tmp_path)
    runner = _runner.ClientRunner(hw_arch="hailo8")
    monkeypatch.setattr(_runner, "_has_gpu", lambda: True)
    assert runner._optimization_level(100)[0] == 1
    assert "Reducing optimization level to 1" in (tmp_path / "acceleras.log").read_text()
    assert runner._optimization_level(2000)[0] == 2
    monkeypatch.setattr(_runner, "_has_gpu", lambda: False)
    assert runner._optimization_level(2000)[0] == 0
    runner._script = "model_optimization_flavor(optimization_level=2, compression_level=0)"
    assert runner._optimization_level(100)[0] == 2
    # hailoc's auto writes the level the DFC would pick, so the record's plan and run agree.
    assert choose_flavor("auto", gpu=True, entries=100).level == 1
    assert choose_flavor("auto", gpu=False, entries=2000).level == 0
    assert choose_flavor("auto", gpu=True, entries=2000).level is None


def test_standin_walls_raise_the_field_texts_and_hailoc_reads_their_layers(
    dfc: ModuleType, cfg: ModelConfig, tmp_path: Path
) -> None:
    """docs/dfc-behaviour.md rows 26-27: each wall fires only when the 16-bit set reaches
    it, with the field's exception class and text; hailoc's parser names the layer."""
    from hailo_sdk_client.exceptions import (
        AccelerasNegativeSlopesError,
        AccelerasUnsupportedError,
        BackendAllocatorException,
    )

    from hailoc.failures import classify, wall_layers

    har, hn = _parsed(dfc, tmp_path)
    alls = _alls(cfg, hn, "int16-final")  # dw17, conv33, output_layer1 in 16-bit
    out = str(tmp_path / "o.har")
    # A wall on a layer the set does not hold does not fire.
    dfc.optimize(har, "hailo8", alls + "# standin-wall: nan_exponent conv4\n", _calib(), out)
    with pytest.raises(AccelerasNegativeSlopesError) as nan:
        dfc.optimize(har, "hailo8", alls + "# standin-wall: nan_exponent conv33\n", _calib(), out)
    assert "[[nan]]" in str(nan.value)
    assert wall_layers("nan_exponent", str(nan.value), "", "fr_feature") == ("conv33",)
    with pytest.raises(AccelerasUnsupportedError) as unsupported:
        dfc.optimize(har, "hailo8", alls + "# standin-wall: unsupported dw17\n", _calib(), out)
    log = (tmp_path / "acceleras.log").read_text()
    assert "fr_feature/dw17:\nbias_mode" in log
    message = f"AccelerasUnsupportedError: {unsupported.value}"
    assert classify("AccelerasUnsupportedError", str(unsupported.value)).name == "unsupported_16bit"
    assert wall_layers("unsupported_16bit", message, log, "fr_feature") == ("dw17",)
    walled = alls + "# standin-wall: super_defuse output_layer1\n# standin-wall: allocator 0\n"
    dfc.optimize(har, "hailo8", walled, _calib(), out)
    with pytest.raises(BackendAllocatorException, match="output_layer1 needs super-defuse"):
        dfc.compile_hef(out, "hailo8", walled)
    with pytest.raises(BackendAllocatorException, match="unexpected crash"):
        dfc.compile_hef(out, "hailo8", alls + "# standin-wall: allocator 0\n")
    assert dfc.compile_hef(out, "hailo8", alls + "# standin-wall: allocator 1\n")
