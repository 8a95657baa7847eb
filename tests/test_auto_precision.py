"""`--precision auto` on the real example model: a stated objective with a bootstrap interval,
a search that bisects a ranked list, honest about small eval sets and unreachable targets.

The larger eval set is made from the vendored photos mirrored, rotated and relit
(tests/photos.py): more views of the same people, enough for a 5th-percentile interval."""

from __future__ import annotations

import json
import math
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pytest
import yaml

from hailoc.autoplan.evaluator import Evaluator
from hailoc.autoplan.search import bisection_probes
from hailoc.calibration import CalibParams, build_set
from hailoc.cli import run
from hailoc.manifest.schema import DetectorSpec
from tests.conftest import REPO, scaffold
from tests.photos import augmented_photos


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory, demo_calibration: Path) -> Path:
    root = scaffold(tmp_path_factory.mktemp("auto"), demo_calibration)
    build_set(
        "many",
        CalibParams(images=str(augmented_photos(root / "many")), eval_split=0.6),
        project_root=REPO,
        calib_root=root / "calibration",
        detector=DetectorSpec(),
    )
    data = yaml.safe_load((root / "models.yaml").read_text())
    data["models"]["fr_feature"]["calib_set"] = "many"
    data["models"]["small"] = {**data["models"]["fr_feature"], "calib_set": "fr_demo"}
    (root / "models.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    return root


def _hailoc(project: Path, *args: str) -> int:
    return run(["-m", str(project / "models.yaml"), *args])


def _auto_plan(project: Path) -> dict[str, Any]:
    return json.loads((project / "hef" / "fr_feature" / "auto_plan.json").read_text())  # type: ignore[no-any-return]


def _record(project: Path, precision: str) -> dict[str, Any]:
    path = project / "hef" / "fr_feature" / "onnxruntime" / precision / "record.json"
    return json.loads(path.read_text())  # type: ignore[no-any-return]


def test_six_eval_faces_are_too_few_to_decide(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _hailoc(project, "plan", "small", "-p", "auto") == 1
    err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error")]
    assert len(err) == 1
    import numpy as np

    faces = len(np.load(project / "calibration" / "fr_demo" / "eval.npy"))
    assert faces < 50
    assert f"has {faces} faces" in err[0] and f"at least 50 ({50 - faces} more)" in err[0]


def test_auto_reaches_its_target_with_fewer_layers_or_says_not_reached(project: Path) -> None:
    """Holds on every supported version: which layers depend on the last digits of the
    numeric stack, the contract does not."""
    code = _hailoc(project, "plan", "fr_feature", "-p", "auto")
    plan = _auto_plan(project)
    assert plan["metric"] == "p5" and plan["face_size"] == 24 and plan["eval_faces"] >= 50
    assert plan["ranking_source"] == "ort" and len(plan["sensitivity"]) == plan["candidates"]
    low, high = plan["score"]["interval"]
    assert low <= plan["score"]["value"] <= high
    # O(log L) evaluations: the boundary search plus a short polish, not one per layer.
    # Only the plan chosen is measured on every face; a glance that misjudged a plan (its
    # hardest faces fine, others not) would cost one more round of bisection.
    glances = bisection_probes(plan["candidates"])
    assert glances <= math.log2(plan["candidates"]) + 1
    assert plan["evaluations"] <= 2 + glances + Evaluator.polish
    full = [p for p in plan["curve"] if "stopped_at" not in p]
    assert len(full) <= 2 + Evaluator.polish
    assert (project / "hef" / "fr_feature" / "auto_curve.png").is_file()
    if code == 0:
        assert plan["reached"] and low >= plan["target"]
        assert 0 < len(plan["layers"]) < plan["candidates"]
    else:
        assert code == 1 and not plan["reached"] and low < plan["target"]

    # Build it: the search left exactly this plan's QDQ model in the stage cache.
    _hailoc(project, "build", "fr_feature", "-p", "auto")
    auto = _record(project, "auto")
    assert auto["plan"]["onnx_nodes"] == plan["layers"]
    assert auto["plan"]["auto"]["reached"] == plan["reached"]
    if plan["reached"]:
        assert [s["cache_hit"] for s in auto["stages"]] == [True]
        report = project / "hef" / "fr_feature" / "onnxruntime" / "auto" / "report.md"
        assert "](../../auto_curve.png)" in report.read_text()
    else:
        assert auto["failure_class"] == "auto_target"


@pytest.mark.parametrize("target", ["0.98", "0.99", "0.995"])
def test_whenever_int16_all_reaches_the_target_auto_does_with_fewer_layers(
    project: Path, target: str
) -> None:
    code = _hailoc(project, "plan", "fr_feature", "-p", "auto", "--target", target)
    plan = _auto_plan(project)
    every = plan["all_candidates"]
    if every["interval"][0] >= float(target):
        assert code == 0 and plan["reached"]
        assert len(plan["layers"]) < plan["candidates"]
    else:
        assert code == 1 and not plan["reached"]


def test_second_search_is_deterministic_and_cached(project: Path) -> None:
    _hailoc(project, "plan", "fr_feature", "-p", "auto")
    first = _auto_plan(project)
    _hailoc(project, "plan", "fr_feature", "-p", "auto")
    second = _auto_plan(project)
    assert second["layers"] == first["layers"] and second["score"] == first["score"]
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
    assert plan["score"]["interval"][0] < 0.9999
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


def test_plans_are_stable_across_calibration_seeds(
    tmp_path_factory: pytest.TempPathFactory, demo_calibration: Path
) -> None:
    """Seeds 0, 1, 2 draw different calibration and eval faces from the same photos: the
    searches agree on the plan, or their chosen plans' intervals overlap (issue #17)."""
    root = scaffold(tmp_path_factory.mktemp("seeds"), demo_calibration)
    photos = augmented_photos(root / "photos")
    data = yaml.safe_load((root / "models.yaml").read_text())
    base = data["models"]["fr_feature"]
    data["models"] = {}
    for seed in (0, 1, 2):
        build_set(
            f"seed{seed}",
            CalibParams(images=str(photos), eval_split=0.6, seed=seed),
            project_root=REPO,
            calib_root=root / "calibration",
            detector=DetectorSpec(),
        )
        data["models"][f"m{seed}"] = {**base, "calib_set": f"seed{seed}"}
    (root / "models.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    plans = []
    for seed in (0, 1, 2):
        _hailoc(root, "plan", f"m{seed}", "-p", "auto")
        plans.append(json.loads((root / "hef" / f"m{seed}" / "auto_plan.json").read_text()))
    assert min(p["eval_faces"] for p in plans) >= 50
    # The seeds really drew different faces (else the test could not fail).
    evals = {(root / "calibration" / f"seed{s}" / "eval.npy").read_bytes() for s in (0, 1, 2)}
    assert len(evals) == 3
    for a, b in ((0, 1), (0, 2), (1, 2)):
        first, second = plans[a], plans[b]
        if first["layers"] == second["layers"]:
            continue
        (lo1, hi1), (lo2, hi2) = first["score"]["interval"], second["score"]["interval"]
        assert lo1 <= hi2 and lo2 <= hi1, (a, b, first["score"], second["score"])
        assert first["reached"] == second["reached"], (a, b)


def test_curve_shows_both_sources_side_by_side(tmp_path: Path) -> None:
    from PIL import Image

    from hailoc.autoplan.search import draw_curves

    point = {"layers": 3, "plan": ["a"], "value": 0.97, "interval": [0.96, 0.98]}
    plan = {"metric": "p5", "face_size": 24, "target": 0.98, "curve": [point]}
    (tmp_path / "auto_plan.json").write_text(json.dumps(plan))
    one = draw_curves(tmp_path)
    assert one is not None
    single = Image.open(one).size[0]
    (tmp_path / "auto_plan.dfc.json").write_text(json.dumps(plan))
    both = draw_curves(tmp_path)
    assert both is not None and Image.open(both).size[0] == 2 * single


def test_the_plan_table_never_calls_a_glanced_plan_reaching(tmp_path: Path) -> None:
    """A plan measured on its 8 hardest faces has upper bounds: above the target they leave
    it open, they do not show it reaching; below it they rule it out."""
    from rich.console import Console

    from hailoc.autoplan.search import AutoResult, draw_curves
    from hailoc.cli.plan_tables import print_auto

    def point(layers: int, low: float, stopped: int | None) -> dict[str, Any]:
        found = {
            "layers": layers,
            "plan": [],
            "value": low + 0.001,
            "interval": [low, 0.999],
            "mean_all_sizes": low + 0.001,
            "per_size": {},
        }
        return found | ({"stopped_at": stopped} if stopped is not None else {})

    curve = [point(0, 0.95, None), point(2, 0.97, 8), point(3, 0.985, 8), point(4, 0.982, None)]
    result = AutoResult(
        "m", 0.98, "p5", 24, 0.95, True, ["a"], curve[3], curve[0], curve[3], [], curve, [],
        4, {}, 70,
    )  # fmt: skip
    out = Console(record=True, width=200)
    print_auto(out, result)
    rows = [line for line in out.export_text().splitlines() if "[" in line and "0." in line]
    assert ["open (8 faces)" in r for r in rows] == [False, False, True, False]
    assert ["yes" in r for r in rows] == [False, False, False, True]
    assert [r.count("<= ") for r in rows] == [0, 2, 2, 0]  # value and interval: bounds
    (tmp_path / "auto_plan.json").write_text(json.dumps(asdict(result)))
    assert draw_curves(tmp_path) is not None  # hollow markers for the two bounds
