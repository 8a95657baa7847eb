"""Precision plans over the real example model, resolved against an HN, rendered as .alls."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from hailoc.errors import PlanError
from hailoc.manifest import load_manifest
from hailoc.model_check import load_graph
from hailoc.plan import build_plan, hn_from_dict, read_hn, resolve_plan
from tests.conftest import FIXTURES, REPO
from tests.onnx_variants import with_in_graph_normalization

GOLDEN = Path(__file__).resolve().parent / "golden"
HN = FIXTURES / "fr_feature.hn.json"
ONNX_NAME = re.compile(r"\b[A-Z][A-Za-z]*_\d+\b")


@pytest.fixture(scope="module")
def fr_feature():
    manifest = load_manifest(REPO / "models.yaml")
    cfg = manifest.model("fr_feature")
    return manifest, cfg, load_graph(cfg)


def test_final_block_is_gdc_and_linear_conv(fr_feature) -> None:
    _, cfg, graph = fr_feature
    plan = build_plan(cfg, graph, "int16-final")
    assert plan.onnx_nodes == ("Conv_93", "Conv_94")
    assert plan.include_output


def test_int8_plan_is_empty(fr_feature) -> None:
    _, cfg, graph = fr_feature
    assert build_plan(cfg, graph, "int8").is_int8


def test_int16_all_covers_every_weight_layer(fr_feature) -> None:
    _, cfg, graph = fr_feature
    resolved = resolve_plan(build_plan(cfg, graph, "int16-all"), read_hn(HN), graph)
    hn = json.loads(HN.read_text())
    weight_layers = [
        k.split("/")[1] for k, v in hn["layers"].items() if v["type"] in ("conv", "dw", "fc")
    ]
    assert len(weight_layers) == 50
    assert set(weight_layers) <= set(resolved.a16_layers)
    assert "output_layer1" in resolved.a16_layers
    # int16-all is every tensor that can be 16-bit: the residual adds too (islands), not the
    # input layer (it only widens the input stream).
    assert {n for n in resolved.a16_layers if n.startswith("ew_add")} == {
        k.split("/")[1] for k, v in hn["layers"].items() if v["type"] == "ew_add"
    }
    assert not any(n.startswith("input_layer") for n in resolved.a16_layers)


@pytest.mark.parametrize("precision", ["int8", "int16-final", "int16-all"])
def test_golden_alls(cli, monkeypatch, precision: str) -> None:
    monkeypatch.chdir(REPO)
    result = cli("alls", "render", "fr_feature", "--precision", precision, "--hn", str(HN))
    assert result.code == 0, result.err
    golden = GOLDEN / f"fr_feature.{precision}.alls"
    assert result.out == golden.read_text(), f"re-generate {golden.name} if the change is intended"
    # Comments say which of the user's ONNX nodes each 16-bit layer carries; commands never
    # name an ONNX node.
    commands = "\n".join(x for x in result.out.splitlines() if not x.startswith("#"))
    assert not ONNX_NAME.search(commands), "ONNX names leaked into .alls"
    lines = [line for line in result.out.splitlines() if line.startswith("quantization_param")]
    if precision == "int8":
        assert lines == []
    else:
        assert len(lines) == 1 and lines[0].endswith("precision_mode=a16_w16)")


def test_int16_final_names_hn_layers(fr_feature) -> None:
    from hailoc.alls import render_alls

    manifest, cfg, graph = fr_feature
    resolved = resolve_plan(build_plan(cfg, graph, "int16-final"), read_hn(HN), graph)
    text = render_alls(cfg, resolved, manifest.templates_dir)
    assert text == (GOLDEN / "fr_feature.int16-final.alls").read_text()
    assert "quantization_param([dw17, conv33, output_layer1], precision_mode=a16_w16)" in text
    assert "normalization1 = normalization([127.0, 127.0, 127.0], [128.0, 128.0, 128.0])" in text


def test_render_to_file_is_atomic_and_complete(cli, monkeypatch, tmp_path: Path) -> None:
    monkeypatch.chdir(REPO)
    out = tmp_path / "sub" / "m.alls"
    result = cli(
        "alls", "render", "fr_feature", "-p", "int16-final", "--hn", str(HN), "-o", str(out)
    )
    assert result.code == 0, result.err
    assert out.read_text() == (GOLDEN / "fr_feature.int16-final.alls").read_text()
    assert [p.name for p in out.parent.iterdir()] == ["m.alls"]


def test_16bit_without_hn_needs_unresolved_flag(cli, monkeypatch) -> None:
    monkeypatch.chdir(REPO)
    refused = cli("alls", "render", "fr_feature", "-p", "int16-final")
    assert refused.code != 0
    assert "--unresolved" in refused.err
    preview = cli("alls", "render", "fr_feature", "-p", "int16-final", "--unresolved")
    assert preview.code == 0
    assert "NOT compilable" in preview.out
    assert "Conv_93" in preview.out
    assert cli("alls", "render", "fr_feature", "-p", "int8").code == 0


def test_in_graph_normalization_renders_no_normalization_line(cli, project: Path) -> None:
    with_in_graph_normalization(
        project / "models" / "fr_feature.onnx", project / "models" / "normed.onnx"
    )
    manifest = yaml.safe_load((project / "models.yaml").read_text())
    model = manifest["models"]["fr_feature"]
    model["onnx"] = "models/normed.onnx"
    model["normalization"] = {"in_graph": True}
    del model["sha256"]
    (project / "models.yaml").write_text(yaml.safe_dump(manifest))
    path = str(project / "models.yaml")
    assert cli("-m", path, "models", "validate", "fr_feature").code == 0
    result = cli("-m", path, "alls", "render", "fr_feature", "-p", "int8")
    assert result.code == 0, result.err
    assert "normalization(" not in result.out
    assert "applied inside the ONNX graph" in result.out


def test_unmapped_node_lists_nearest_hn_names(fr_feature) -> None:
    _, cfg, graph = fr_feature
    hn = json.loads(HN.read_text())
    for layer in hn["layers"].values():
        layer["original_names"] = [n for n in layer["original_names"] if n != "Conv_94"]
    with pytest.raises(PlanError) as info:
        resolve_plan(build_plan(cfg, graph, "int16-final"), hn_from_dict(hn))
    message = str(info.value)
    assert "'Conv_94' maps to no HN layer" in message
    assert "nearest HN layers:" in message
    assert "dw17" in message  # Conv_93 is the closest original name


def test_custom_plan_mixes_onnx_and_hn_names_and_excludes_unsupported(
    fr_feature, caplog: pytest.LogCaptureFixture
) -> None:
    _, cfg, graph = fr_feature
    from dataclasses import replace

    custom = replace(cfg, precision="custom", a16_layers=("Conv_91", "conv33", "Reshape_95"))
    plan = build_plan(custom, graph)
    assert plan.onnx_nodes == ("Conv_91",)
    assert plan.hn_names == ("conv33",)
    assert [e.name for e in plan.excluded] == ["Reshape_95"]
    assert "Reshape_95 (Reshape) stays 8-bit" in caplog.text
    resolved = resolve_plan(plan, read_hn(HN))
    assert resolved.a16_layers == ("conv32", "conv33")


def test_custom_hn_name_unknown(fr_feature) -> None:
    _, cfg, graph = fr_feature
    from dataclasses import replace

    custom = replace(cfg, precision="custom", a16_layers=("conv330",))
    with pytest.raises(PlanError, match=r"neither an ONNX node nor an HN layer.*conv33"):
        resolve_plan(build_plan(custom, graph), read_hn(HN))


def test_unsupported_hn_layer_type_is_excluded(fr_feature) -> None:
    _, cfg, graph = fr_feature
    from dataclasses import replace

    hn = json.loads(HN.read_text())
    hn["layers"]["fr_feature/softmax1"] = {"type": "softmax", "original_names": ["Softmax_1"]}
    custom = replace(cfg, precision="custom", a16_layers=("softmax1", "conv1"))
    resolved = resolve_plan(build_plan(custom, graph), hn_from_dict(hn))
    assert resolved.a16_layers == ("conv1",)
    assert resolved.excluded[0].name == "softmax1"
    assert "BackendAllocatorException" in resolved.excluded[0].why


def test_plan_command_shows_mapping(cli, monkeypatch) -> None:
    monkeypatch.chdir(REPO)
    result = cli("plan", "fr_feature", "--hn", str(HN))
    assert result.code == 0, result.err
    assert "Conv_93" in result.out and "dw17" in result.out
    assert "quantization_param layers: dw17, conv33, output_layer1" in result.out
