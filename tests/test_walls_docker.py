"""16-bit walls end to end: the stand-in raises the field's walls, hailoc narrows and builds."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import CliResult
from tests.docker_support import add_models, only_models, suite_fixture

pytestmark = pytest.mark.docker
suite = suite_fixture

Cli = Callable[..., CliResult]
K = 12  # the stand-in allocator's limit of 16-bit conv layers
WALLS = [
    "# standin-wall: nan_exponent conv4",
    "# standin-wall: super_defuse ew_add3",
    "# standin-wall: super_defuse ew_add7",
    f"# standin-wall: allocator {K}",
]
NAMED = {"conv4", "ew_add3", "ew_add7"}


def _build(cli: Cli, project: Path, suite: str, *args: str) -> CliResult:
    return cli(
        "-m",
        str(project / "models.yaml"),
        "build",
        "walled",
        "-p",
        "int16-all",
        "-b",
        "hailo",
        "--suite-image",
        suite,
        *args,
    )


def _folder(project: Path) -> Path:
    return project / "hef" / "walled" / "hailo8" / "int16-all"


def _record(project: Path) -> dict[str, Any]:
    return json.loads((_folder(project) / "record.json").read_text())  # type: ignore[no-any-return]


@pytest.fixture
def walled(calibrated_project: Path) -> Path:
    """A project whose only model is fr_feature behind the stand-in's WALLS."""
    add_models(calibrated_project, walled={"alls_extra": WALLS})
    only_models(calibrated_project, "walled")
    return calibrated_project


def test_walls_are_narrowed_to_a_plan_that_compiles(walled: Path, cli: Cli, suite: str) -> None:
    project = walled
    res = _build(cli, project, suite)
    assert res.code == 0, res.err + res.out
    record = _record(project)
    assert record["status"] == "ok"
    a16 = set(record["plan"]["a16_layers"])
    assert not a16 & NAMED
    hn = json.loads((_folder(project) / "parsed.hn.json").read_text())
    types = {k.split("/", 1)[1]: v["type"] for k, v in hn["layers"].items()}
    convs = [layer for layer in a16 if types.get(layer) == "conv"]
    assert 0.8 * K <= len(convs) <= K, convs
    # The .alls published is the plan compiled.
    alls = (_folder(project) / "model.alls").read_text()
    assert all(layer in alls for layer in a16)
    assert "conv4," not in alls and "ew_add3" not in alls.split("precision_mode")[0][-2000:]

    attempts = record["attempts"]
    classes = [a["failure_class"] for a in attempts if a["outcome"] == "wall"]
    assert classes[:3] == ["nan_exponent", "super_defuse", "super_defuse"]
    assert "allocator" in classes
    removed = {r["name"] for a in attempts for r in a["removed"]}
    assert removed >= NAMED
    assert attempts[-1]["kind"] == "build" and attempts[-1]["outcome"] == "ok"
    weight_layers = sum(1 for t in types.values() if t in ("conv", "dw", "fc"))
    compiles = [s for s in record["stages"] if s["name"] == "compile" and not s["cache_hit"]]
    assert len(compiles) <= math.ceil(math.log2(weight_layers)) + 4
    assert record["recovery"]["compiles"] == len(compiles)
    assert record["recovery"]["kept"] == len(a16)
    line = f"recovered: {len(a16)} of {record['recovery']['planned']} 16-bit layers kept"
    assert line in res.out
    summary = json.loads((project / "hef" / "summary.json").read_text())
    assert summary["results"][0]["recovery"].startswith(line)
    assert record["accuracy"]["gate"]["passed"]
    deploy = json.loads((_folder(project) / "deploy.json").read_text())
    assert deploy["artifact"]["kind"] == "standin_output"

    # Every attempt is cached, the failed ones too: the same command runs no stage.
    again = _build(cli, project, suite)
    assert again.code == 0, again.err
    second = _record(project)
    assert second["stages"] and all(s["cache_hit"] for s in second["stages"])
    assert "@@hailoc" not in (_folder(project) / "build.log").read_text()
    assert second["plan"]["a16_layers"] == record["plan"]["a16_layers"]
    assert len(second["attempts"]) == len(attempts)


def test_on_wall_fail_ends_as_before_and_shows_the_dfc_text(
    walled: Path, cli: Cli, suite: str
) -> None:
    project = walled
    res = _build(cli, project, suite, "--on-wall", "fail")
    assert res.code == 1
    record = _record(project)
    assert record["failure_class"] == "nan_exponent"
    assert not record["attempts"] and record["recovery"] is None
    # rich markup must not swallow the DFC's brackets.
    assert "the exponent [[nan]] is not in range [ 7 22]" in " ".join(res.err.split())
