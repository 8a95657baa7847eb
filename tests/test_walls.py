"""16-bit walls: the field's messages parsed into class and layer, plans narrowed past them, and
walls kept in the stage cache (the end-to-end path is tests/test_walls_docker.py)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest

from hailoc.alls import render_alls
from hailoc.backends.protocol import StageFailure, StageOutput
from hailoc.cache import CachedFailure, Damage, StageCache
from hailoc.failures import WALL_CLASSES, classify, wall_layers
from hailoc.manifest import load_manifest
from hailoc.model_check import load_graph
from hailoc.onnxgraph import GraphInfo
from hailoc.options import BuildOptions
from hailoc.pipeline.progress import SilentReporter
from hailoc.pipeline.stages import BuildLog, StageRunner
from hailoc.pipeline.walls import WallRecovery
from hailoc.plan import PrecisionPlan, build_plan, read_hn, resolve_plan
from hailoc.plan.hn import HnNetwork
from hailoc.plan.narrow import drop_layers, weight_seeds
from hailoc.records import BuildRecord
from hailoc.targets import BuildTarget
from tests.conftest import FIXTURES, REPO

HN = FIXTURES / "fr_feature.hn.json"
FrFeature = tuple[Any, GraphInfo, HnNetwork]

# The texts of community.hailo.ai threads 19530 (DFC 5.3, Hailo-10H) and 9698, as the worker
# reports them (`<ExceptionType>: <message>`), with the layer each names.
FIELD = [
    ("BackendAllocatorException", "Compilation failed with unexpected crash", "allocator", ()),
    (
        "BackendAllocatorException",
        "Compilation failed: could not find a valid partition to contexts",
        "allocator",
        (),
    ),
    ("ValueError", "arange: cannot compute length", "nan_exponent", ()),
    (
        "AccelerasNegativeSlopesError",
        "the exponent [[nan]] is not in range [ 7 22] for layer "
        "encoder/conv4/conv_low_sub_layer/act_op",
        "nan_exponent",
        ("conv4",),
    ),
    (
        "BackendAllocatorException",
        "Compilation failed: Assignment of normalization1 needs super-defuse",
        "super_defuse",
        ("normalization1",),
    ),
    (
        "BackendAllocatorException",
        "Compilation failed: Assignment of mul_and_add1 needs super-defuse",
        "super_defuse",
        ("mul_and_add1",),
    ),
]
LOG_9698 = """[info] Starting LayerNorm Decomposition
[error] Unsupported layers for the target sage: tiny_vit_5m_224_from_microsoft/precision_change14:
bias_mode: single_scale_decomposition
precision_mode: a16_w16_a8
quantization_groups: 1
signed_output: true
tiny_vit_5m_224_from_microsoft/precision_change21:
bias_mode: single_scale_decomposition
precision_mode: a16_w16_a8
quantization_groups: 1
signed_output: true
"""


@pytest.mark.parametrize(("error_type", "message", "klass", "layers"), FIELD)
def test_field_messages_parse_into_class_and_layer(
    error_type: str, message: str, klass: str, layers: tuple[str, ...]
) -> None:
    found = classify(error_type, message, "compile")
    assert found.name == klass
    assert klass in WALL_CLASSES
    # As the backend puts it into the StageFailure.
    assert wall_layers(klass, f"compile: {error_type}: {message}", "", "encoder") == layers


def test_unsupported_layers_are_read_from_the_log() -> None:
    message = (
        "AccelerasUnsupportedError: Unsupported layers for the provided optimization target. "
        "Review the log to see exact layers and configurations"
    )
    assert classify("AccelerasUnsupportedError", message).name == "unsupported_16bit"
    assert wall_layers("unsupported_16bit", message, LOG_9698) == (
        "precision_change14",
        "precision_change21",
    )
    assert wall_layers("unsupported_16bit", message, "") == ()


def test_a_dropped_request_names_its_layers() -> None:
    text = "optimize: planned a16_w16 but 8-bit after optimization: fc1, output_layer1"
    assert wall_layers("plan_not_applied", text) == ("fc1", "output_layer1")


@pytest.fixture(scope="module")
def fr_feature() -> FrFeature:
    cfg = load_manifest(REPO / "models.yaml").model("fr_feature")
    graph = load_graph(cfg)
    return cfg, graph, read_hn(HN)


def _failure(klass: str, message: str) -> StageFailure:
    return StageFailure(klass, message, "hint", detail=message)


def test_a_named_layer_leaves_with_what_its_island_carried(fr_feature: FrFeature) -> None:
    cfg, graph, hn = fr_feature
    plan = build_plan(cfg, graph, "int16-all")
    before = resolve_plan(plan, hn, graph).a16_layers
    assert {"ew_add3", "conv4", "output_layer1"} <= set(before)
    narrowed = drop_layers(plan, hn, ["ew_add3", "output_layer1"], "super_defuse")
    after = resolve_plan(narrowed, hn, graph).a16_layers
    assert "ew_add3" not in after and "output_layer1" not in after
    assert set(after) < set(before)
    assert [e.name for e in narrowed.excluded[-2:]] == ["ew_add3", "output_layer1"]
    # A weight layer: its conv and fused chain are barred, its neighbours stay.
    no_conv4 = resolve_plan(drop_layers(plan, hn, ["conv4"], "nan"), hn, graph).a16_layers
    assert "conv4" not in no_conv4 and "conv5" in no_conv4


def test_nan_exponent_tries_a16_w8_only_where_the_dfc_has_it(fr_feature: FrFeature) -> None:
    cfg, graph, hn = fr_feature
    plan = build_plan(cfg, graph, "int16-all")
    text = "AccelerasNegativeSlopesError: ... for layer fr_feature/conv4/conv_low_sub_layer/act_op"
    hailo8 = WallRecovery(hn, graph, "hailo8", list)
    step = hailo8.after_wall(plan, _failure("nan_exponent", text), "optimize")
    assert not step.probe and [e.name for e in step.removed] == ["conv4"]

    hailo10 = WallRecovery(hn, graph, "hailo10h", list)
    first = hailo10.after_wall(plan, _failure("nan_exponent", text), "optimize")
    assert first.plan.a16_w8 == ("conv4",) and not first.removed
    resolved = resolve_plan(first.plan, hn, graph)
    alls = render_alls(cfg, resolved, REPO / "alls_templates")
    assert "quantization_param([conv4], precision_mode=a16_w8)" in alls
    assert "conv4," not in alls.split("precision_mode=a16_w16")[0].split("quantization_param")[-1]
    second = hailo10.after_wall(first.plan, _failure("nan_exponent", text), "optimize")
    assert [e.name for e in second.removed] == ["conv4"]
    assert "conv4" not in resolve_plan(second.plan, hn, graph).a16_layers


@pytest.mark.parametrize("limit", [0, 1, 7, 20, 49])
def test_an_unnamed_wall_bisects_to_the_longest_prefix_that_compiles(
    fr_feature, limit: int
) -> None:  # type: ignore[no-untyped-def]
    """A monotone allocator: more than `limit` 16-bit weight layers do not compile."""
    cfg, graph, hn = fr_feature
    plan = build_plan(cfg, graph, "int16-all")
    units = weight_seeds(plan, graph)
    ranked = list(reversed(units))  # any ranking: the recovery keeps its head
    walls = WallRecovery(hn, graph, "hailo8", lambda layers: [u for u in ranked if u in layers])
    allocator = _failure("allocator", "compile: BackendAllocatorException: Compilation failed")
    compiles = 1
    step = walls.after_wall(plan, allocator, "compile")
    while step.probe:
        compiles += 1
        if len(weight_seeds(step.plan, graph)) > limit:
            step = walls.after_wall(step.plan, allocator, "compile")
        else:
            nxt = walls.after_compile(step.plan)
            assert nxt is not None
            step = nxt
    kept = weight_seeds(step.plan, graph)
    assert len(kept) == min(limit, len(units) - 1)
    assert kept == [u for u in units if u in ranked[: len(kept)]]
    assert compiles <= math.ceil(math.log2(len(units))) + 1
    if limit == 0:
        assert step.plan.is_int8
        # A wall the int8 plan meets too ends the build with it.
        with pytest.raises(StageFailure):
            walls.after_wall(step.plan, allocator, "compile")


def _runner(tmp_path: Path, cache: StageCache) -> StageRunner:
    target = BuildTarget("m", "hailo8", "int16-all", "hailo")
    return StageRunner(
        cache=cache,
        work_root=tmp_path / "work",
        target=target,
        stage_names=("parse", "optimize", "compile"),
        options=BuildOptions(),
        record=BuildRecord(model="m", backend="hailo", hw_arch="hailo8", precision="int16-all"),
        log=BuildLog(SilentReporter(), target),
        reporter=SilentReporter(),
    )


def test_walls_are_kept_and_replayed_other_failures_are_not(tmp_path: Path) -> None:
    cache = StageCache(tmp_path / "cache")
    calls: list[str] = []

    def wall(workdir: Path) -> StageOutput:
        calls.append("wall")
        raise StageFailure(
            "super_defuse",
            "compile: Assignment of ew_add3 needs super-defuse",
            "hint",
            logs={"allocator.log": b"[error] x\n"},
        )

    def lost(workdir: Path) -> StageOutput:
        calls.append("lost")
        raise StageFailure("engine_lost", "gone", "again")

    for _ in range(2):
        runner = _runner(tmp_path, cache)
        with pytest.raises(StageFailure) as info:
            runner.run("compile", "k1", wall)
        assert info.value.failure_class == "super_defuse"
        assert "ew_add3" in info.value.message
        assert info.value.logs == {"allocator.log": b"[error] x\n"}
        with pytest.raises(StageFailure):
            runner.run("compile", "k2", lost)
    assert calls == ["wall", "lost", "lost"]
    assert runner.record.stages[0].cache_hit and runner.record.stages[0].status == "failed"
    kept = cache.failure("compile", "k1")
    assert isinstance(kept, CachedFailure) and cache.failure("compile", "k2") is None
    # --force runs it again.
    forced = _runner(tmp_path, cache)
    forced.options = BuildOptions(force=True)
    with pytest.raises(StageFailure):
        forced.run("compile", "k1", wall)
    assert calls[-1] == "wall"


def test_an_int8_plan_has_nothing_to_narrow(fr_feature: FrFeature) -> None:
    _, graph, hn = fr_feature
    walls = WallRecovery(hn, graph, "hailo8", list)
    with pytest.raises(StageFailure):
        walls.after_wall(
            PrecisionPlan("fr_feature", "int8", ()), _failure("allocator", "x"), "compile"
        )


def test_named_walls_are_remembered_and_auto_does_not_choose_them(
    fr_feature,
    tmp_path: Path,  # type: ignore[no-untyped-def]
) -> None:
    from types import SimpleNamespace

    from hailoc.autoplan.search import _candidates
    from hailoc.pipeline.walls import KnownWalls
    from hailoc.plan.model import Excluded

    cfg, graph, hn = fr_feature
    known = KnownWalls.of(tmp_path, "a" * 64, "hailo8", "sha256:x")
    assert known.read() == {}
    known.add(
        hn,
        [
            Excluded("conv4", "conv", "nan_exponent in optimize"),
            Excluded("conv9", "bisected", "allocator: kept 12"),
        ],
    )
    avoid = known.read()
    assert avoid and all("nan_exponent" in why for why in avoid.values())
    keep, excluded = _candidates(SimpleNamespace(graph=graph), cfg.auto, avoid)  # type: ignore[arg-type]
    assert not set(avoid) & set(keep)
    assert {e["layer"] for e in excluded} == {"Conv_9"}  # conv4's conv (its PReLU is fused)
    # Another DFC (suite image) knows nothing of it.
    assert KnownWalls.of(tmp_path, "a" * 64, "hailo8", "sha256:y").read() == {}


def test_auto_on_the_dfc_never_chooses_a_set_the_dfc_refused() -> None:
    """A 16-bit set that meets a wall during the search scores below any target; a failure
    of the int8 model, or one that is not a wall, still ends the search."""
    from types import SimpleNamespace

    from hailoc.pipeline.backend_scorer import REFUSED, BackendScorer

    class Walled:
        name = "hailo"

        def quantize(self, job: Any, plan: PrecisionPlan, prepared: Any, stages: Any) -> Any:
            if "Conv_9" in plan.onnx_nodes:
                raise StageFailure("nan_exponent", "for layer net/conv4/x", "hint")
            if "Conv_1" in plan.onnx_nodes:
                raise StageFailure("engine_lost", "gone", "again")
            raise AssertionError("not reached in this test")

    class Quiet:
        def run(self, *args: Any) -> Any:
            raise AssertionError

        def phase(self, name: str) -> None:
            pass

        def log(self, line: str) -> None:
            pass

        def damaged(self, damage: Damage) -> None:
            pass

    job = SimpleNamespace(inputs=SimpleNamespace(config=SimpleNamespace(name="m", auto=None)))
    scorer = BackendScorer(Walled(), job, None, Quiet(), None)  # type: ignore[arg-type]
    assert scorer.score(("Conv_9", "Conv_20")) is REFUSED
    assert not REFUSED.reaches(0.0)
    with pytest.raises(StageFailure):
        scorer.score(("Conv_1",))
