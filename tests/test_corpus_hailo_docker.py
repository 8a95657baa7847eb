"""Every export in the corpus through the Hailo path (stand-in suite, real Docker): int8 and
int16-final build, the TF exports as their canonical graphs."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import CliResult
from tests.corpus import CORPUS, Variant
from tests.docker_support import suite_fixture  # noqa: F401  (the `suite` fixture)
from tests.test_corpus import corpus_project  # noqa: F401  (the corpus project fixture)

pytestmark = pytest.mark.docker
Cli = Callable[..., CliResult]


@pytest.mark.parametrize("variant", CORPUS, ids=[v.name for v in CORPUS])
def test_corpus_model_builds_through_the_hailo_path(
    corpus_project: Path,  # noqa: F811
    cli: Cli,
    suite: str,
    variant: Variant,
) -> None:
    m = str(corpus_project / "models.yaml")
    res = cli("-m", m, "build", variant.name, "-p", "int8,int16-final", "-b", "hailo",
              "--suite-image", suite, "--skip-gate")  # fmt: skip
    assert res.code == 0, res.err + res.out
    for precision in ("int8", "int16-final"):
        out = corpus_project / "hef" / variant.name / "hailo8" / precision
        record: dict[str, Any] = json.loads((out / "record.json").read_text())
        assert record["status"] == "ok", record.get("message")
        hn = json.loads((out / "parsed.hn.json").read_text())
        types = {layer["type"] for layer in hn["layers"].values()}
        canonical = record["inputs"]["canonical"]
        if variant.arch == "tf" and variant.prelu_half in (None, 0.5):
            assert not {"abs", "ew_sub", "ew_mult"} & types
            assert canonical["applied"]["prelu_decomposed"] == 11
            assert canonical["layers_after"] < canonical["layers_before"]
        elif variant.arch == "tf":
            assert "abs" in types  # not the PReLU spelling: parsed as exported
        # The runtime contract: the stream HailoRT will name (the layer feeding the output
        # layer), UINT16 when the output layer is 16-bit, FLOAT32 requested.
        deploy = json.loads((out / "deploy.json").read_text())["output"]
        feeding = hn["net_params"]["output_layers_order"][0]
        assert deploy["name"] == feeding and not feeding.endswith("output_layer1")
        assert deploy["native_format"] == ("UINT16" if precision == "int16-final" else "UINT8")
        assert deploy["request_format"] == "FLOAT32"


def test_a_planned_layer_that_ends_8_bit_is_a_wall(
    corpus_project: Path,  # noqa: F811
    cli: Cli,
    suite: str,
) -> None:
    """The stand-in drops the a16 request on the fc (as the DFC loses one on a layer it fuses
    away): hailoc reads the optimized HAR back; with --on-wall fail the build fails instead of
    shipping it, by default the layer leaves the plan and the record says so."""
    import yaml

    name = "iresnet_r18_b1_op13_e512"
    path = corpus_project / "models.yaml"
    data = yaml.safe_load(path.read_text())
    data["models"][name]["alls_extra"] = ["# standin-drop-a16: fc1"]
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    try:
        build = ("-m", str(path), "build", name, "-p", "int16-final", "-b", "hailo",
                 "--suite-image", suite, "--skip-gate")  # fmt: skip
        res = cli(*build, "--on-wall", "fail")
        assert res.code == 1, res.err + res.out
        out = corpus_project / "hef" / name / "hailo8" / "int16-final"
        record = json.loads((out / "record.json").read_text())
        assert record["status"] == "failed" and record["failure_class"] == "plan_not_applied"
        assert "fc1" in record["message"]
        res = cli(*build)
        assert res.code == 0, res.err + res.out
        record = json.loads((out / "record.json").read_text())
        assert record["status"] == "ok" and "fc1" not in record["plan"]["a16_layers"]
        first = record["attempts"][0]
        assert first["failure_class"] == "plan_not_applied"
        assert [r["name"] for r in first["removed"]] == ["fc1"]
        a16_lines = [x for x in (out / "model.alls").read_text().splitlines() if "a16_w16" in x]
        assert a16_lines and not any("fc1" in x for x in a16_lines)
    finally:
        del data["models"][name]["alls_extra"]
        path.write_text(yaml.safe_dump(data, sort_keys=False))
