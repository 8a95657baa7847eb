"""Canonical graphs: exporter spellings rewritten into the ops the Hailo parser fuses, each
rewrite proven exact on real inputs, refused (with a warning) when it is not."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from hailoc import canonicalize as canon_module
from hailoc.inference.session import open_session
from hailoc.manifest import load_manifest
from hailoc.model_check import load_model
from hailoc.onnxgraph import canonical
from tests.corpus import CORPUS, build

TF = next(v for v in CORPUS if v.name == "tf_mobilefacenet_b2_op11_e192")
TWIN = next(v for v in CORPUS if v.name == "mobilefacenet_b1_op11_e128")
K04 = next(v for v in CORPUS if v.name == "tf_mobilefacenet_k04_op13_e128")


def _project(tmp_path: Path, variant_name: str, model: onnx.ModelProto, nhwc: bool) -> Path:
    import yaml

    (tmp_path / "models").mkdir(exist_ok=True)
    onnx.save(model, str(tmp_path / "models" / f"{variant_name}.onnx"))
    batch = model.graph.input[0].type.tensor_type.shape.dim[0].dim_value or 1
    shape = [batch, 112, 112, 3] if nhwc else [batch, 3, 112, 112]
    entry = {
        "onnx": f"models/{variant_name}.onnx",
        "input": {"name": "input", "shape": shape, "layout": "NHWC" if nhwc else "NCHW"},
        "normalization": {"mean": 127.5, "std": 127.5},
    }
    manifest = {"version": 1, "models": {variant_name: entry}}
    (tmp_path / "models.yaml").write_text(yaml.safe_dump(manifest))
    return tmp_path / "models.yaml"


def _run(model: onnx.ModelProto, x: np.ndarray) -> np.ndarray:
    session = open_session(model.SerializeToString())
    return np.asarray(session.run(None, {session.get_inputs()[0].name: x})[0])


def test_tf_export_parses_into_as_many_layers_as_its_pytorch_twin(
    tmp_path: Path, standin_path: Path
) -> None:
    from hailo_sdk_client._parser import translate

    cfg = load_manifest(_project(tmp_path, TF.name, build(TF), True)).model(TF.name)
    loaded = load_model(cfg, cache_dir=tmp_path / "cache")
    assert loaded.canonical is not None and loaded.canonical.max_diff is not None
    assert loaded.canonical.max_diff <= 1e-5
    assert loaded.canonical.applied["prelu_decomposed"] == 11
    hn = translate(loaded.proto, "tf", None, None, {"input": [1, 112, 112, 3]})
    twin = translate(build(TWIN), "twin", None, None, {"input": [1, 3, 112, 112]})
    types = [layer["type"] for layer in hn["layers"].values()]
    assert not {"abs", "ew_sub", "ew_mult"} & set(types)
    assert len(hn["layers"]) == len(twin["layers"])
    # The graph as exported parses into several times as many layers.
    raw = translate(build(TF), "raw", None, None, {"input": [1, 112, 112, 3]})
    assert len(raw["layers"]) > 3 * len(hn["layers"])
    # Every canonical PRelu names the user's five nodes it stands for.
    merged = loaded.canonical.merged
    assert any({"Relu", "Abs", "Sub", "Mul", "Add"} <= {n.split("_")[0] for n in v}
               for v in merged.values())  # fmt: skip
    # Cached by the original's sha256 and the rule table: the second read is the same graph.
    again = load_model(cfg, cache_dir=tmp_path / "cache")
    assert again.sha256 == loaded.sha256 and list((tmp_path / "cache" / "canonical").iterdir())


def test_a_pattern_with_another_constant_is_not_rewritten(tmp_path: Path) -> None:
    cfg = load_manifest(_project(tmp_path, K04.name, build(K04), True)).model(K04.name)
    loaded = load_model(cfg)
    assert loaded.canonical is not None
    assert "prelu_decomposed" not in loaded.canonical.applied
    ops = {n.op_type for n in loaded.proto.graph.node}
    assert "Abs" in ops and "PRelu" not in ops


def test_canonicalize_false_leaves_the_graph_as_exported(tmp_path: Path) -> None:
    import yaml

    path = _project(tmp_path, TF.name, build(TF), True)
    data = yaml.safe_load(path.read_text())
    data["models"][TF.name]["canonicalize"] = False
    path.write_text(yaml.safe_dump(data))
    cfg = load_manifest(path).model(TF.name)
    loaded = load_model(cfg)
    assert loaded.canonical is None
    assert loaded.data == (tmp_path / "models" / f"{TF.name}.onnx").read_bytes()


def test_an_inexact_rewrite_is_refused_with_a_warning(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A rule whose result changes the fp32 output is refused; the others still apply."""
    original = canonical._prelu_slope

    def off_by_ten_percent(*args: object) -> tuple[object, list[object]]:
        slope, chain = original(*args)  # type: ignore[arg-type]
        return (None if slope is None else slope * 1.1), chain

    monkeypatch.setattr(canonical, "_prelu_slope", off_by_ten_percent)
    cfg = load_manifest(_project(tmp_path, TF.name, build(TF), True)).model(TF.name)
    with caplog.at_level(logging.WARNING):
        loaded = load_model(cfg)
    assert loaded.canonical is not None
    assert "prelu_decomposed" in loaded.canonical.refused
    assert "prelu_decomposed" not in loaded.canonical.applied
    assert loaded.canonical.applied.get("nhwc_transposes")  # the exact rule still applied
    assert any("prelu_decomposed" in r.getMessage() for r in caplog.records)
    assert "Abs" in {n.op_type for n in loaded.proto.graph.node}


def _graph(
    nodes: list[onnx.NodeProto], inits: list[onnx.TensorProto], opset: int = 14
) -> onnx.ModelProto:
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4, 6, 6])],
        [helper.make_tensor_value_info(nodes[-1].output[0], TensorProto.FLOAT, None)],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    return model


def _c(name: str, value: float | np.ndarray) -> onnx.TensorProto:
    return numpy_helper.from_array(np.asarray(value, np.float32), name)


@pytest.mark.parametrize(
    ("name", "nodes", "inits", "expect"),
    [
        (
            "relu6",
            [helper.make_node("Max", ["x", "zero"], ["a"], name="Max_1"),
             helper.make_node("Min", ["a", "six"], ["y"], name="Min_2")],
            [_c("zero", 0.0), _c("six", 6.0)],
            "Clip",
        ),
        (
            "hardswish",
            [helper.make_node("Add", ["x", "three"], ["a"], name="Add_1"),
             helper.make_node("Clip", ["a", "zero", "six"], ["b"], name="Clip_2"),
             helper.make_node("Mul", ["x", "b"], ["c"], name="Mul_3"),
             helper.make_node("Div", ["c", "six"], ["y"], name="Div_4")],
            [_c("three", 3.0), _c("zero", 0.0), _c("six", 6.0)],
            "HardSwish",
        ),
        (
            "conv_scale_bias",
            [helper.make_node("Conv", ["x", "w", "b"], ["a"], name="Conv_1", pads=[1, 1, 1, 1]),
             helper.make_node("Mul", ["a", "scale"], ["c"], name="Mul_2"),
             helper.make_node("Add", ["c", "shift"], ["y"], name="Add_3")],
            [_c("w", np.random.default_rng(0).normal(size=(4, 4, 3, 3))), _c("b", np.ones(4)),
             _c("scale", np.arange(1, 5).reshape(4, 1, 1)),
             _c("shift", np.arange(4).reshape(4, 1, 1))],
            "Conv",
        ),
    ],
)  # fmt: skip
def test_each_rule_rewrites_its_spelling_exactly(
    name: str, nodes: list[onnx.NodeProto], inits: list[onnx.TensorProto], expect: str
) -> None:
    model = _graph(nodes, inits)
    rw = canonical.rewrite(model)
    assert rw.applied == {name: 1}
    assert [n.op_type for n in rw.model.graph.node] == [expect]
    assert rw.model.graph.node[0].name == nodes[-1].name or name == "conv_scale_bias"
    x = np.random.default_rng(1).normal(0, 4, (1, 4, 6, 6)).astype(np.float32)
    np.testing.assert_allclose(_run(rw.model, x), _run(model, x), rtol=1e-5, atol=1e-5)


def test_relu6_with_another_bound_is_left_alone() -> None:
    nodes = [helper.make_node("Max", ["x", "zero"], ["a"], name="Max_1"),
             helper.make_node("Min", ["a", "five"], ["y"], name="Min_2")]  # fmt: skip
    rw = canonical.rewrite(_graph(nodes, [_c("zero", 0.0), _c("five", 5.0)]))
    assert rw.applied == {}


def test_validate_and_records_name_the_rules(tmp_path: Path) -> None:
    from hailoc.canonicalize import describe

    cfg = load_manifest(_project(tmp_path, TF.name, build(TF), True)).model(TF.name)
    report = load_model(cfg).canonical
    assert report is not None
    line = describe(report)[0]
    assert "decomposed PReLU -> PRelu x11" in line and "Hailo layers 73 -> 18" in line
    assert canon_module.TOLERANCE == 1e-5


def test_plans_speak_of_the_users_nodes(tmp_path: Path, cli: object) -> None:
    """A16 layers named by the user's node names reach the canonical op that carries them, and
    `hailoc plan` shows which of the user's nodes each planned op stands for."""
    import yaml

    model = build(TF)
    relu = next(n.name for n in model.graph.node if n.op_type == "Relu")
    path = _project(tmp_path, TF.name, model, True)
    data = yaml.safe_load(path.read_text())
    data["models"][TF.name].update(precision="custom", a16_layers=[relu, "Conv_103"])
    path.write_text(yaml.safe_dump(data))
    res = cli("-m", str(path), "plan", TF.name)  # type: ignore[operator]
    assert res.code == 0, res.err
    carrier = next(
        k for k, v in load_model(load_manifest(path).model(TF.name)).graph.merged.items()
        if relu in v
    )  # fmt: skip
    # The Relu the user named reached its canonical PRelu (which, alone, has no 16-bit row in
    # plan/support.py until plans are made of islands: it is said, not dropped silently).
    assert f"{carrier} (PRelu) stays 8-bit" in res.err
    assert "Conv_103" in res.out
