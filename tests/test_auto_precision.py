"""`--precision auto` on the real example model: target met with fewer layers, cached, honest
about unreachable targets."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from hailoc.cli import run
from tests.conftest import scaffold


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory, demo_calibration: Path) -> Path:
    return scaffold(tmp_path_factory.mktemp("auto"), demo_calibration)


def _hailoc(project: Path, *args: str) -> int:
    return run(["-m", str(project / "models.yaml"), *args])


def _auto_plan(project: Path) -> dict[str, Any]:
    return json.loads((project / "hef" / "fr_feature" / "auto_plan.json").read_text())  # type: ignore[no-any-return]


def _record(project: Path, precision: str) -> dict[str, Any]:
    path = project / "hef" / "fr_feature" / "onnxruntime" / precision / "record.json"
    return json.loads(path.read_text())  # type: ignore[no-any-return]


def test_auto_reaches_its_target_with_fewer_layers_or_says_not_reached(project: Path) -> None:
    """Holds on every supported version: which layers and how many depend on the last digits
    of the numeric stack, the contract does not."""
    code = _hailoc(project, "plan", "fr_feature", "-p", "auto")
    plan = _auto_plan(project)
    assert plan["metric"] == "worst" and plan["face_size"] == 24
    assert plan["evaluations"] > plan["candidates"]  # sensitivities + greedy steps
    # The curve starts at int8 and rises with every layer kept.
    metrics = [p["metric"] for p in plan["curve"]]
    assert plan["curve"][0]["layers"] == 0 and metrics == sorted(metrics)
    assert len(plan["layers"]) == len(plan["curve"]) - 1
    assert (project / "hef" / "fr_feature" / "auto_curve.png").is_file()
    if code == 0:
        assert plan["reached"] and plan["score"]["metric"] >= plan["target"]
        assert 0 < len(plan["layers"]) < plan["candidates"]  # int16-all runs every candidate
    else:
        assert code == 1 and not plan["reached"]
        assert plan["score"]["metric"] < plan["target"] and plan["layers"]

    # Build it next to int16-final: the search is reused and the build measures what it found.
    code = _hailoc(project, "build", "fr_feature", "-p", "auto,int16-final")
    auto = _record(project, "auto")
    assert auto["plan"]["onnx_nodes"] == plan["layers"]
    assert auto["plan"]["auto"]["reached"] == plan["reached"]
    if plan["reached"]:
        at_24 = {r["size"]: r for r in auto["accuracy"]["sweep"]}[24]
        assert at_24["agreement_min"] >= plan["target"]
        report = project / "hef" / "fr_feature" / "onnxruntime" / "auto" / "report.md"
        assert "](../../auto_curve.png)" in report.read_text()
        # The search left the chosen plan's QDQ model in the stage cache: no new quantize.
        assert [s["cache_hit"] for s in auto["stages"]] == [True]
    else:
        assert auto["failure_class"] == "auto_target"


def test_second_search_is_deterministic_and_cached(project: Path) -> None:
    assert _hailoc(project, "plan", "fr_feature", "-p", "auto") == 0
    first = _auto_plan(project)
    assert _hailoc(project, "plan", "fr_feature", "-p", "auto") == 0
    second = _auto_plan(project)
    assert second["layers"] == first["layers"] and second["curve"] == first["curve"]
    assert second["evaluations"] == 0 and second["reused_evaluations"] > 0


def test_unreachable_target_reports_best_plan(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = _hailoc(
        project, "plan", "fr_feature", "-p", "auto", "--target", "0.9999", "--budget", "2"
    )
    assert code == 1
    err = capsys.readouterr().err
    assert "not reached" in err and "2 layers" in err
    plan = _auto_plan(project)
    assert not plan["reached"] and len(plan["layers"]) == 2
    assert plan["score"]["metric"] < 0.9999
    assert (
        _hailoc(project, "build", "fr_feature", "-p", "auto", "--target", "0.9999", "--budget", "2")
        == 1
    )
    record = _record(project, "auto")
    assert record["status"] == "failed" and record["failure_class"] == "auto_target"
    assert not (
        project / "hef" / "fr_feature" / "onnxruntime" / "auto" / "fr_feature.qdq.onnx"
    ).exists()
    assert "--accept-best" in record["hint"]
    # --accept-best builds the best plan found; the gate, not the target, decides.
    code = _hailoc(
        project,
        "build",
        "fr_feature",
        "-p",
        "auto",
        "--target",
        "0.9999",
        "--budget",
        "2",
        "--accept-best",
    )
    record = _record(project, "auto")
    assert record["failure_class"] != "auto_target"
    assert record["plan"]["auto"]["reached"] is False
    assert len(record["plan"]["onnx_nodes"]) == 2
    assert code == (0 if record["status"] == "ok" else 1)
