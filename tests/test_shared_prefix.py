"""A second build's evaluation starts from the tensors it shares with the first build, and
prints the same embeddings as running the whole build."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest

from hailoc.backends.onnxruntime.qdq_plan import render_qdq
from hailoc.backends.onnxruntime.quantize import quantize
from hailoc.cache import StageCache
from hailoc.calibration.face_size import batch_at_distance
from hailoc.inference.session import SplitEmbedder
from hailoc.inference.shared_prefix import KIND, SharedPrefixEmbedder, cuts, kept
from hailoc.inputs import gather
from hailoc.manifest import load_manifest
from hailoc.plan import build_plan
from tests.corpus import CORPUS


@pytest.mark.parametrize("variant", CORPUS, ids=[v.name for v in CORPUS])
def test_a_second_build_from_the_shared_cut_embeds_exactly_as_the_whole_build(
    corpus_project: Path, tmp_path: Path, variant: object
) -> None:
    name = variant.name  # type: ignore[attr-defined]
    inputs = gather(load_manifest(corpus_project / "models.yaml"), name)
    cfg = inputs.config
    models = {}
    for precision in ("int8", "int16-final"):
        plan = render_qdq(build_plan(cfg, inputs.graph, precision), inputs.onnx_proto)
        models[precision] = tmp_path / f"{precision}.onnx"
        quantize(inputs.onnx_proto, inputs.calib, cfg, plan, models[precision], calibset_size=16)
    found = cuts(onnx.load(str(models["int8"])))
    assert found and kept(found), "every corpus export has a cut before its embedding"
    faces = np.asarray(inputs.eval_faces)
    batches = [faces, batch_at_distance(faces, 24)]
    cache = StageCache(tmp_path / "cache")
    reused = {}
    for precision, model in models.items():
        whole = [SplitEmbedder(model, cfg)(batch) for batch in batches]
        shared = SharedPrefixEmbedder(model, cfg, cache, inputs.versions)
        got = shared(batches)
        for a, b in zip(whole, got, strict=True):
            assert a.dtype == b.dtype and np.array_equal(a, b), precision
        reused[precision] = shared.reused
    # The first build found nothing to start from and kept its cuts; the second starts from
    # the deepest cut it shares, and every batch of it does.
    assert reused["int8"] == ["", ""]
    assert all(reused["int16-final"]) and len(set(reused["int16-final"])) == 1
    assert any((tmp_path / "cache" / KIND).iterdir())


def test_a_damaged_or_foreign_entry_is_not_used(corpus_project: Path, tmp_path: Path) -> None:
    """An entry of another length (or one the cache rejects as damaged) is passed over: the
    build runs whole and still gives its own embeddings."""
    inputs = gather(load_manifest(corpus_project / "models.yaml"), CORPUS[1].name)
    cfg = inputs.config
    plan = render_qdq(build_plan(cfg, inputs.graph, "int8"), inputs.onnx_proto)
    model = tmp_path / "int8.onnx"
    quantize(inputs.onnx_proto, inputs.calib, cfg, plan, model, calibset_size=16)
    faces = np.asarray(inputs.eval_faces)
    cache = StageCache(tmp_path / "cache")
    first = SharedPrefixEmbedder(model, cfg, cache, inputs.versions)([faces])[0]
    for entry in (tmp_path / "cache" / KIND).iterdir():
        values = entry / "values.npy"
        values.write_bytes(values.read_bytes()[:-7] + b"garbage")
    again = SharedPrefixEmbedder(model, cfg, cache, inputs.versions)
    assert np.array_equal(again([faces])[0], first)
    assert again.reused == [""]


def test_a_graph_with_subgraphs_is_never_cut() -> None:
    """An If's branches may read tensors from outside: the digests do not see those reads,
    so such a graph is run whole."""
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])
    scale = helper.make_tensor("s", TensorProto.FLOAT, [], [0.1])
    zero = helper.make_tensor("z", TensorProto.UINT8, [], [128])
    branch = helper.make_graph([helper.make_node("Identity", ["d"], ["b"])], "branch", [], [y])
    nodes = [
        helper.make_node("QuantizeLinear", ["x", "s", "z"], ["q"]),
        helper.make_node("DequantizeLinear", ["q", "s", "z"], ["d"]),
        helper.make_node(
            "Constant", [], ["c"], value=helper.make_tensor("v", TensorProto.BOOL, [], [True])
        ),
        helper.make_node("If", ["c"], ["y"], then_branch=branch, else_branch=branch),
    ]
    graph = helper.make_graph(nodes, "g", [x], [y], [scale, zero])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)])
    plain = onnx.ModelProto()
    plain.CopyFrom(model)
    del plain.graph.node[2:]
    plain.graph.output[0].name = "d"
    assert [c.tensor for c in cuts(plain)] == ["q"]
    assert cuts(model) == []
