"""`build -b hailo -p auto` against the stand-in DFC: the ranking comes from its layer noise
analysis, plans are measured with its SDK_QUANTIZED emulation, and the search spends at most
ceil(log2 L) + 3 optimize stages, every one in the build record (issue #17).

To keep the stand-in's numpy emulation affordable the test manifest evaluates two face sizes
and accepts 20 eval faces (the search's own floor, min_eval_faces, is lowered here only)."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from hailoc.calibration import CalibParams, build_set
from hailoc.manifest.schema import DetectorSpec
from tests.conftest import REPO, CliResult, scaffold
from tests.docker_support import suite_fixture  # noqa: F401  (the `suite` fixture)
from tests.photos import augmented_photos

pytestmark = pytest.mark.docker

Cli = Callable[..., CliResult]


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory, demo_calibration: Path) -> Path:
    root = scaffold(tmp_path_factory.mktemp("hailo-auto"), demo_calibration)
    build_set(
        "many",
        CalibParams(images=str(augmented_photos(root / "many")), eval_split=0.2),
        project_root=REPO,
        calib_root=root / "calibration",
        detector=DetectorSpec(),
    )
    data = yaml.safe_load((root / "models.yaml").read_text())
    entry = data["models"]["fr_feature"]
    entry["calib_set"] = "many"
    entry["optimization"] = {"calibset_size": 32}
    entry["gate"] = {"face_sizes": [112, 24]}
    entry["auto"] = {"min_eval_faces": 20, "target": 0.97}
    data["models"] = {"fr_feature": entry}
    (root / "models.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    return root


def test_hailo_auto_ranks_with_the_dfc_and_bounds_optimize_stages(
    project: Path, cli: Cli, suite: str
) -> None:
    res = cli(
        "-m", str(project / "models.yaml"), "build", "fr_feature", "-p", "auto",
        "-b", "hailo", "--suite-image", suite,
    )  # fmt: skip
    plan = json.loads((project / "hef" / "fr_feature" / "auto_plan.dfc.json").read_text())
    assert plan["ranking_source"] == "dfc"
    # Ranked by the stand-in's noise analysis: SNR in dB, lowest first.
    snr = [entry["snr_db"] for entry in plan["sensitivity"]]
    assert snr == sorted(snr) and len(snr) == plan["candidates"]
    folder = project / "hef" / "fr_feature" / "hailo8" / "auto"
    record: dict[str, Any] = json.loads((folder / "record.json").read_text())
    stages = record["stages"]
    ran = [s for s in stages if s["name"] == "optimize" and not s["cache_hit"]]
    bound = math.ceil(math.log2(plan["candidates"])) + 3
    assert 1 <= len(ran) <= bound, (len(ran), bound)
    assert [s["name"] for s in stages].count("noise") == 1
    # Every optimize the search ran is in the record, with its numbers in auto_plan.dfc.json.
    recorded = {s["cache_key"] for s in stages if s["name"] == "optimize"}
    runs = [r for r in plan["stage_runs"] if r["stage"] == "optimize"]
    assert {r["cache_key"] for r in runs} <= recorded
    assert all("value" in r and "interval" in r for r in runs)
    assert sum(not r["cache_hit"] for r in runs) == len(ran)
    # Reached means the interval cleared the target, with fewer layers than int16-all.
    every = plan["all_candidates"]
    if every["interval"][0] >= plan["target"]:
        assert plan["reached"] and len(plan["layers"]) < plan["candidates"]
        assert res.code in (0, 1) and record["plan"]["onnx_nodes"] == plan["layers"]
        # The build's own optimize is the search's: a cache hit, then compile.
        assert stages[-2]["name"] == "optimize" and stages[-2]["cache_hit"]
    else:
        assert not plan["reached"] and record["failure_class"] == "auto_target"
    # Both sources side by side once the ORT search ran too.
    assert cli("-m", str(project / "models.yaml"), "plan", "fr_feature", "-p", "auto").code in (
        0,
        1,
    )
    assert (project / "hef" / "fr_feature" / "auto_plan.json").is_file()
    assert (project / "hef" / "fr_feature" / "auto_curve.png").is_file()

    # A second build spends no optimize stage: every plan comes from the stage cache.
    cli(
        "-m", str(project / "models.yaml"), "build", "fr_feature", "-p", "auto",
        "-b", "hailo", "--suite-image", suite,
    )  # fmt: skip
    again = json.loads((folder / "record.json").read_text())
    assert all(s["cache_hit"] for s in again["stages"] if s["name"] != "compile")
