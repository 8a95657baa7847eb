"""16-bit islands: a plan reaches every tensor that carries the signal, and the ONNX Runtime and
DFC renderings make the same tensors 16-bit."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest

from hailoc.backends.onnxruntime.qdq_plan import render_qdq
from hailoc.backends.onnxruntime.quantize import OPSET, _Reader, quantize, upgrade_opset
from hailoc.calibration.face_size import batch_at_distance
from hailoc.eval.sweep import cosine_rows
from hailoc.inference.session import Embedder, open_session
from hailoc.inputs import gather
from hailoc.manifest import load_manifest
from hailoc.onnxgraph.canonical import SHAPE_ONLY
from hailoc.plan import build_plan, hn_from_dict, resolve_plan
from hailoc.plan.islands import components, of_graph, plan_nodes
from tests.conftest import REPO
from tests.corpus import CORPUS, calibrated_corpus
from tests.synthetic import synthetic_set


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("islands")
    return calibrated_corpus(root, REPO / "alls_templates", faces=32, eval_faces=12)


def _agreement_at_24(inputs: object, model: Path | bytes) -> float:
    cfg = inputs.config  # type: ignore[attr-defined]
    faces = batch_at_distance(inputs.eval_faces, 24)  # type: ignore[attr-defined]
    ref = Embedder(open_session(inputs.onnx_bytes), cfg, cfg.embedding_output)(faces)  # type: ignore[attr-defined]
    got = Embedder(open_session(model), cfg, cfg.embedding_output)(faces)
    return float(cosine_rows(ref, got).mean())


def test_int16_all_equals_every_tensor_in_16_bits_on_a_decomposed_prelu_export(
    project: Path, tmp_path: Path
) -> None:
    """TF's five-op PReLU: before islands (and canonical graphs) int16-all left every
    activation chain 8-bit (0.983 here, where every tensor in 16 bits gives 1.0000)."""
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )

    inputs = gather(load_manifest(project / "models.yaml"), "tf_mobilefacenet_2mul_op13_e128")
    cfg = inputs.config
    plan = build_plan(cfg, inputs.graph, "int16-all")
    ours = tmp_path / "int16-all.onnx"
    quantize(inputs.onnx_proto, inputs.calib, cfg, render_qdq(plan, inputs.onnx_proto), ours,
             calibset_size=1024)  # fmt: skip

    class Reader(_Reader, CalibrationDataReader):  # type: ignore[misc]
        pass

    source = tmp_path / "fp32.onnx"
    onnx.save(upgrade_opset(onnx.load_from_string(inputs.onnx_bytes), OPSET), str(source))
    reference = tmp_path / "all16.onnx"
    quantize_static(
        str(source), str(reference), Reader(inputs.calib, cfg, 1), quant_format=QuantFormat.QDQ,
        per_channel=True, activation_type=QuantType.QUInt16, weight_type=QuantType.QInt16,
        calibrate_method=CalibrationMethod.MinMax,
    )  # fmt: skip
    theirs = _agreement_at_24(inputs, reference)
    assert theirs > 0.999
    assert abs(_agreement_at_24(inputs, ours) - theirs) <= 1e-3


@pytest.mark.parametrize("variant", CORPUS, ids=[v.name for v in CORPUS])
@pytest.mark.parametrize("precision", ["int16-final", "int16-all"])
def test_alls_and_qdq_make_the_same_nodes_16_bit(
    project: Path, standin_path: Path, variant: object, precision: str
) -> None:
    """Every ONNX node an HN layer in the .alls carries is in the QDQ model's islands, and every
    island node an HN layer carries is in the .alls (or excluded with a reason)."""
    from hailo_sdk_client._parser import translate

    name = variant.name  # type: ignore[attr-defined]
    inputs = gather(load_manifest(project / "models.yaml"), name)
    cfg, graph = inputs.config, inputs.graph
    plan = build_plan(cfg, graph, precision)
    shape = [1, *cfg.input.shape[1:]]
    hn = hn_from_dict(translate(inputs.onnx_proto, "net", None, None, {"input": shape}))
    resolved = resolve_plan(plan, hn, graph)
    members = set(plan_nodes(plan, of_graph(graph)))
    qdq = render_qdq(plan, inputs.onnx_proto)
    by_name = {n.name: n for n in graph.nodes}
    # The QDQ plan's activation tensors are exactly the island members' tensors.
    member_tensors = {t for m in members for t in (*by_name[m].inputs, *by_name[m].outputs)}
    extra = set(qdq.activations) - member_tensors - {i.name for i in inputs.onnx_proto.graph.input}
    # Beyond the members' own tensors, only an entry reached through a shape-only op (the
    # tensor before a Flatten that feeds a 16-bit Gemm shares the Flatten's quantization).
    for tensor in extra:
        assert any(
            n.op_type in SHAPE_ONLY and tensor in n.inputs and set(n.outputs) & set(qdq.activations)
            for n in graph.nodes
        ), tensor
    assert {t for m in members for t in by_name[m].outputs} <= set(qdq.activations)
    a16 = set(resolved.a16_layers)
    computing = {m for m in members if by_name[m].op_type not in SHAPE_ONLY}
    for layer in hn.layers:
        # Shape-only ops fold into whichever layer precedes them: they compute nothing.
        originals = set(layer.original_names) - {
            o for o in layer.original_names if o in by_name and by_name[o].op_type in SHAPE_ONLY
        }
        if layer.name in a16 and originals:
            # Folded shape ops may sit in a layer's original names without being members.
            assert originals & members, f"{layer.name} in the .alls but none of its nodes in QDQ"
        if originals & computing and layer.type != "input_layer":
            carried = layer.name in a16
            # ... or its nodes are carried by another layer in the .alls (BatchNorm1d by fc1)
            fused = all(set(resolved.mapping.get(o, ())) & a16 for o in originals & computing)
            assert carried or fused, f"{layer.name} carries 16-bit nodes but is not in the .alls"
    islands = components(of_graph(graph), members, graph.outputs)
    assert islands and all(i.nodes for i in islands)


def test_islands_close_over_activation_chains(project: Path) -> None:
    """int16-final's island on the k04 export (decomposed activations it cannot rewrite)
    stops where a node cannot be 16-bit, and says so by its exits."""
    inputs = gather(load_manifest(project / "models.yaml"), "tf_mobilefacenet_k04_op13_e128")
    plan = build_plan(inputs.config, inputs.graph, "int16-final")
    members = plan_nodes(plan, of_graph(inputs.graph))
    assert set(plan.onnx_nodes) <= set(members)
    ops = {inputs.graph.node(m).op_type for m in members}  # type: ignore[union-attr]
    assert "Abs" not in ops and "Conv" in ops
    np.testing.assert_equal(len(components(of_graph(inputs.graph), members)), 1)


def test_bn1d_is_carried_by_the_fc_and_never_named(
    project: Path, standin_path: Path, cli: object, tmp_path: Path
) -> None:
    """iresnet's head (Gemm -> BatchNorm1d): the parsed HN has a batch_norm layer, which the
    DFC fuses into the fc during optimization; the plan shows the fc carrying it and the .alls
    names the fc, never the batch_norm (a request there is silently lost in the field)."""
    import json

    from hailo_sdk_client._parser import translate

    name = "iresnet_r18_b1_op13_e512"
    inputs = gather(load_manifest(project / "models.yaml"), name)
    hn = translate(inputs.onnx_proto, "net", None, None, {"input": [1, 3, 112, 112]})
    assert any(layer["type"] == "batch_norm" for layer in hn["layers"].values())
    hn_path = tmp_path / "parsed.hn.json"
    hn_path.write_text(json.dumps(hn))
    m = str(project / "models.yaml")
    res = cli("-m", m, "plan", name, "-p", "int16-final", "--hn", str(hn_path))  # type: ignore[operator]
    assert res.code == 0, res.err
    bn = next(n for n in inputs.graph.final_block if n.startswith("BatchNormalization"))
    row = next(line for line in res.out.splitlines() if line.strip("│ ").startswith(bn))
    assert "fused into Gemm" in row and "fc1" in row
    res = cli("-m", m, "alls", "render", name, "-p", "int16-final", "--hn", str(hn_path))  # type: ignore[operator]
    assert res.code == 0, res.err
    lines = [x for x in res.out.splitlines() if x.startswith("quantization_param")]
    assert lines and "fc1" in lines[0] and "batch_norm" not in lines[0]


@pytest.fixture(scope="module")
def auto_project(tmp_path_factory: pytest.TempPathFactory, project: Path) -> Path:
    """The corpus with 50 eval faces (what -p auto asks for)."""
    import shutil

    root = tmp_path_factory.mktemp("islands_auto")
    shutil.copytree(project / "models", root / "models")
    shutil.copytree(project / "alls_templates", root / "alls_templates")
    shutil.copy(project / "models.yaml", root / "models.yaml")
    synthetic_set(root / "calibration", "tiny", faces=24, eval_faces=50)
    return root


@pytest.mark.parametrize("variant", CORPUS, ids=[v.name for v in CORPUS])
def test_auto_reaches_what_full_16_bit_reaches_at_no_higher_cost(
    auto_project: Path, variant: object
) -> None:
    from hailoc.autoplan.search import search_plan, with_overrides

    inputs = gather(load_manifest(auto_project / "models.yaml"), variant.name)  # type: ignore[attr-defined]
    cache = auto_project / ".hailoc" / "cache"
    spec = with_overrides(inputs.config.auto, 0.9999, None)
    first = search_plan(inputs, cache, spec=spec)
    full = first.all_candidates["interval"][0]
    target = round(full - 0.002, 4)
    result = search_plan(inputs, cache, spec=with_overrides(inputs.config.auto, target, None))
    assert result.reached, result.message
    assert 0 < result.cost_bytes <= result.int16_all_cost_bytes
    assert all("cost_bytes" in point for point in result.curve)
