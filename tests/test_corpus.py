"""Every export variant of the corpus (tests/corpus.py) validates, plans, and builds on ONNX
Runtime with int16-final different from int8 and 16-bit exactly on the plan, at any batch and
with an odd number of eval faces."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import onnx
import pytest
import yaml

from hailoc.onnxgraph import inspect_model
from hailoc.records import read_record
from tests.conftest import REPO, CliResult
from tests.corpus import CORPUS, NAMED, Variant, build, calibrated_corpus
from tests.test_ort_backend import _sixteen_bit_tensors

Cli = Callable[..., CliResult]


@pytest.fixture(scope="module")
def corpus_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("corpus")
    # 7 eval faces: an odd count against a static batch of 2.
    return calibrated_corpus(
        root, REPO / "alls_templates", faces=24, eval_faces=7, gate_sizes=[112, 40, 24]
    )


@pytest.mark.parametrize("variant", CORPUS, ids=[v.name for v in CORPUS])
def test_variant_validates_plans_and_builds(
    corpus_project: Path, cli: Cli, variant: Variant
) -> None:
    m = str(corpus_project / "models.yaml")
    res = cli("-m", m, "models", "validate", variant.name)
    assert res.code == 0, res.err + res.out
    graph = inspect_model(build(variant), corpus_project, None)
    assert graph.final_block, "int16-final must find the final block"
    assert f"final block (int16-final): {', '.join(graph.final_block)}" in res.out
    said = res.out + res.err
    if variant.arch == "tf" and variant.prelu_half in (None, 0.5):
        # Canonicalized: decomposed PReLU and NHWC transpose pairs rewritten, proven exact,
        # and as many Hailo layers as the PyTorch-style twin (mobilefacenet: 18).
        assert "decomposed PReLU -> PRelu x11" in said and "NHWC" in said
        assert "-> 18; fp32 max difference" in said
    elif variant.arch == "tf":
        # alpha * (x - |x|) * 0.4 is not the PReLU spelling: left as exported, still builds.
        assert "decomposed PReLU -> PRelu" not in said
        assert "PReLU decomposed into Relu/Abs/Sub/Mul: 11" in said
        # The GDC conv, not the Reshape after the NHWC Transpose, ends the spatial part.
        assert graph.node(graph.final_block[0]).op_type == "Conv"  # type: ignore[union-attr]
    if variant.in_graph_normalization:
        assert "normalization inside the graph" in res.out
    if variant.arch in ("iresnet", "mxnet"):
        assert "Flatten -> Gemm -> BatchNormalization" in res.out

    res = cli("-m", m, "plan", variant.name, "-p", "int16-final")
    assert res.code == 0, res.err
    for node in graph.final_block:
        assert node in res.out

    res = cli("-m", m, "build", variant.name, "-p", "int8,int16-final", "--skip-gate")
    assert res.code == 0, res.err
    out = corpus_project / "hef" / variant.name / "onnxruntime"
    int8 = read_record(out / "int8" / "record.json")
    int16 = read_record(out / "int16-final" / "record.json")
    assert int8.status == int16.status == "ok"
    assert int8.accuracy is not None and int8.accuracy.faces == 7
    # The planned layers are the final block's weight layers; the batch norms and activations
    # after them are fused into them (and 16-bit with them: their tensors are planned).
    assert int16.plan is not None and set(int16.plan.onnx_nodes) <= set(graph.final_block)
    assert {n for n in graph.final_block if n in int16.plan.onnx_nodes}
    assert {graph.node(n).outputs[0] for n in graph.final_block} <= set(int16.plan.a16_layers)  # type: ignore[union-attr]
    planned = set(int16.plan.a16_layers)
    q8 = out / "int8" / f"{variant.name}.qdq.onnx"
    q16 = out / "int16-final" / f"{variant.name}.qdq.onnx"
    assert _sixteen_bit_tensors(q8) == set()
    assert planned and _sixteen_bit_tensors(q16) == planned
    assert int8.artifacts["qdq_onnx"].sha256 != int16.artifacts["qdq_onnx"].sha256


def test_a_preset_that_finds_nothing_refuses_instead_of_building_int8(
    corpus_project: Path, cli: Cli
) -> None:
    m = corpus_project / "models.yaml"
    data = yaml.safe_load(m.read_text())
    name = CORPUS[1].name
    # An embedding path with no weight layer on it: nothing for int16-final to take.
    data["models"][name]["embedding_output"] = "input"
    m.write_text(yaml.safe_dump(data, sort_keys=False))
    res = cli("-m", str(m), "plan", name, "-p", "int16-final")
    assert res.code == 2 and "would build the int8 model" in res.err
    assert "-p" in res.err or "--precision auto" in res.err


@pytest.mark.parametrize("entry", sorted(NAMED))
def test_named_entries_validate_and_plan_a_generated_model_of_their_architecture(
    project: Path, cli: Cli, entry: str
) -> None:
    """Dropping the real ONNX of a listed model in works: a generated graph with its
    structure and input name validates against the shipped entry and plans int16-final."""
    variant = NAMED[entry]
    onnx.save(build(variant), str(project / "models" / f"{entry}.onnx"))
    m = str(project / "models.yaml")
    res = cli("-m", m, "models", "validate", entry)
    assert res.code == 0, res.err + res.out
    graph = inspect_model(build(variant), project, None)
    assert "BatchNormalization" in graph.node(graph.final_block[-1]).op_type  # type: ignore[union-attr]
    res = cli("-m", m, "plan", entry, "-p", "int16-final")
    assert res.code == 0, res.err
    assert all(node in res.out for node in graph.final_block)
