"""End to end: the Hailo backend drives real containers from the stand-in suite image."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from tests.conftest import REPO, CliResult
from tests.docker_support import (
    add_models,
    engine_or_skip,
    ensure_standin_image,
    only_models,
    start_hailoc,
)

pytestmark = pytest.mark.docker

Cli = Callable[..., CliResult]


@pytest.fixture(scope="module")
def engine() -> Iterator[Any]:
    client = engine_or_skip()
    yield client
    client.close()


@pytest.fixture(scope="module")
def suite(engine: Any) -> str:
    return ensure_standin_image()


def _build(cli: Cli, project: Path, suite: str, *args: str) -> CliResult:
    return cli(
        "-m", str(project / "models.yaml"), "build", *args, "-b", "hailo", "--suite-image", suite
    )


def _record(project: Path, model: str, precision: str = "int16-final") -> dict[str, Any]:
    path = project / "hef" / model / "hailo8" / precision / "record.json"
    return json.loads(path.read_text())  # type: ignore[no-any-return]


def test_build_cache_and_precision_switch(calibrated_project: Path, cli: Cli, suite: str) -> None:
    project = calibrated_project
    res = _build(cli, project, suite, "fr_feature", "-p", "int16-final")
    assert res.code == 0, res.err + res.out
    record = _record(project, "fr_feature")
    assert record["status"] == "ok"
    assert [(s["name"], s["status"], s["cache_hit"]) for s in record["stages"]] == [
        ("parse", "ok", False),
        ("optimize", "ok", False),
        ("compile", "ok", False),
    ]
    alls = record["inputs"]["alls"]
    assert "quantization_param([dw17, conv33, output_layer1], precision_mode=a16_w16)" in alls
    # ONNX names appear only in comments (which user nodes a 16-bit layer carries).
    assert "Conv_" not in "\n".join(x for x in alls.splitlines() if not x.startswith("#"))
    assert "# conv33 <- Conv_94" in alls
    out = project / "hef" / "fr_feature" / "hailo8" / "int16-final"
    assert (out / "model.alls").read_text() == alls
    # The stand-in's output is never presented as a HEF.
    assert not list(out.glob("*.hef"))
    assert "standin_output" in record["artifacts"]
    assert (out / "fr_feature.standin-not-a-hef").is_file()
    assert "@@hailoc stage=compile event=end status=ok" in (out / "build.log").read_text()
    assert record["accuracy"]["gate"]["passed"]
    assert (out / "report.md").is_file()
    # deploy.json: a HEF takes uint8 NHWC with the normalization on the chip.
    deploy = json.loads((out / "deploy.json").read_text())
    jsonschema.validate(deploy, json.loads((REPO / "docs" / "deploy.schema.json").read_text()))
    assert deploy["artifact"]["kind"] == "standin_output"
    assert deploy["input"]["dtype"] == "uint8" and deploy["input"]["layout"] == "NHWC"
    assert (
        deploy["input"]["normalization_inside"] and deploy["output"]["request_format"] == "FLOAT32"
    )
    assert "Deployment" in (out / "report.md").read_text()

    res = _build(cli, project, suite, "fr_feature", "-p", "int16-final")
    assert res.code == 0
    again = _record(project, "fr_feature")
    assert all(s["cache_hit"] for s in again["stages"])
    assert "(cached)" in res.out
    assert "@@hailoc" not in (out / "build.log").read_text()  # no container ran

    res = _build(cli, project, suite, "fr_feature", "-p", "int8")
    assert res.code == 0, res.err
    int8 = _record(project, "fr_feature", "int8")
    assert [s["cache_hit"] for s in int8["stages"]] == [True, False, False]
    assert "quantization_param" not in int8["inputs"]["alls"]


def test_batch_survives_two_different_dfc_errors(
    calibrated_project: Path, cli: Cli, suite: str
) -> None:
    project = calibrated_project
    add_models(
        project,
        wide16={"alls_extra": ["# standin-fail: optimize super_defuse"]},
        tight={"alls_extra": ["# standin-fail: compile allocator"]},
    )
    only_models(project, "fr_feature", "wide16", "tight")
    res = _build(cli, project, suite, "--all")
    assert res.code == 1
    summary = json.loads((project / "hef" / "summary.json").read_text())
    by_model = {r["model"]: r for r in summary["results"]}
    assert by_model["fr_feature"]["status"] == "ok"
    assert by_model["wide16"]["failure_class"] == "super_defuse"
    assert "16-bit" in by_model["wide16"]["hint"]
    assert by_model["tight"]["failure_class"] == "allocator"
    for model in ("wide16", "tight"):
        record = _record(project, model)
        assert record["status"] == "failed" and record["hint"]
        folder = project / "hef" / model / "hailo8" / "int16-final"
        assert not list(folder.glob("*.hef")) and not list(folder.glob("*not-a-hef"))
    assert "super_defuse" in (project / "hef" / "summary.md").read_text()

    res = _build(cli, project, suite, "--retry-failed")
    assert res.code == 1
    retried = json.loads((project / "hef" / "summary.json").read_text())
    assert sorted(r["model"] for r in retried["results"]) == ["tight", "wide16"]


def test_missing_suite_image_is_one_line(calibrated_project: Path, cli: Cli, engine: Any) -> None:
    m = str(calibrated_project / "models.yaml")
    res = cli("-m", m, "build", "fr_feature", "-b", "hailo", "--suite-image", "no-such-suite:1")
    assert res.code == 2
    assert "docker load -i" in res.err
    assert not (calibrated_project / "hef").exists()


def _wait_for_container(engine: Any, stage: str, timeout: float = 60) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = engine.containers.list(filters={"label": f"org.hailoc.stage={stage}"})
        if found:
            return found[0]
        time.sleep(0.1)
    raise AssertionError(f"no {stage} container appeared")


def _failed_cleanly(project: Path, engine: Any, model: str, klass: str, text: str) -> None:
    """Failed with `klass`, only the record and log in its folder, no container left."""
    record = _record(project, model)
    assert record["failure_class"] == klass and text in record["message"]
    folder = project / "hef" / model / "hailo8" / "int16-final"
    # The record, the log and the DFC's own logs: no artifact, nothing half-written.
    assert sorted(p.name for p in folder.iterdir() if not p.name.startswith(".")) == [
        "build.log",
        "dfc-logs",
        "record.json",
    ]
    assert not engine.containers.list(all=True, filters={"label": f"org.hailoc.model={model}"})


def test_container_killed_mid_stage(
    calibrated_project: Path, cli: Cli, suite: str, engine: Any
) -> None:
    project = calibrated_project
    add_models(project, slow={"alls_extra": ["# standin-sleep: optimize 60"]})
    seen: dict[str, Any] = {}

    def killer() -> None:
        container = _wait_for_container(engine, "optimize")
        time.sleep(1)  # let the worker start writing
        container.reload()
        seen["user"] = container.attrs["Config"]["User"]
        seen["mounts"] = {m["Destination"]: m["RW"] for m in container.attrs["Mounts"]}
        probe = container.exec_run(["sh", "-c", "touch /local/workspace/inputs/x"])
        seen["write_input"] = probe.exit_code
        container.kill()

    thread = threading.Thread(target=killer)
    thread.start()
    res = _build(cli, project, suite, "slow")
    thread.join()
    assert res.code == 1
    _failed_cleanly(project, engine, "slow", "killed", "died without a result")
    # Non-root, and the inputs are read-only inside the container.
    assert seen["user"] not in ("", "0", "root") and not seen["user"].startswith("0:")
    inputs = {d: rw for d, rw in seen["mounts"].items() if d != "/local/workspace/work"}
    assert any(d.startswith("/local/workspace/inputs/") for d in inputs)
    assert any(d.startswith("/local/workspace/in/") for d in inputs)
    assert not any(inputs.values()), inputs
    assert seen["mounts"]["/local/workspace/work"] is True
    assert seen["write_input"] != 0


def test_stage_timeout(calibrated_project: Path, cli: Cli, suite: str, engine: Any) -> None:
    project = calibrated_project
    add_models(project, stuck={"alls_extra": ["# standin-sleep: optimize 120"]})
    res = _build(cli, project, suite, "stuck", "--stage-timeout", "5")
    assert res.code == 1
    _failed_cleanly(project, engine, "stuck", "timeout", "exceeded its 5 s timeout")


def test_path_like_model_name_is_rejected_before_anything_runs(
    calibrated_project: Path, cli: Cli, suite: str
) -> None:
    project = calibrated_project
    add_models(project, **{"../../x": {}})
    res = _build(cli, project, suite, "../../x")
    assert res.code == 2
    assert "models.../../x" in res.err or "../../x" in res.err
    assert not (project / "hef").exists() and not (project.parent / "x").exists()


def test_degenerate_emulation_fails_the_gate_before_compile(
    calibrated_project: Path, cli: Cli, suite: str
) -> None:
    project = calibrated_project
    add_models(project, collapsed={"alls_extra": ["# standin-degenerate: quantized"]})
    res = _build(cli, project, suite, "collapsed")
    assert res.code == 1
    record = _record(project, "collapsed")
    assert record["status"] == "failed" and record["failure_class"] == "degenerate"
    assert [s["name"] for s in record["stages"]] == ["parse", "optimize"]  # compile never ran
    accuracy = record["accuracy"]
    assert accuracy["candidate"]["degeneracy"]["mean_pairwise_similarity"] > 0.9
    assert accuracy["emulator_fp_agreement"]["mean"] > 0.99  # the .alls normalization is right
    assert not accuracy["gate"]["passed"]
    folder = project / "hef" / "collapsed" / "hailo8" / "int16-final"
    assert not list(folder.glob("*.hef")) and not list(folder.glob("*not-a-hef"))
    assert "FAILED (degenerate)" in (folder / "report.md").read_text()


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_sigterm_mid_stage_stops_containers_and_records_interrupted(
    calibrated_project: Path, suite: str, engine: Any, jobs: str
) -> None:
    import signal

    project = calibrated_project
    slow = {"alls_extra": ["# standin-sleep: optimize 120"]}
    add_models(project, slow1=slow, slow2=slow)
    only_models(project, "slow1", "slow2")
    proc = start_hailoc(
        project, "build", "--all", "-b", "hailo", "--suite-image", suite, "-j", jobs, "--cpu"
    )
    _wait_for_container(engine, "optimize", timeout=120)
    time.sleep(1)
    proc.send_signal(signal.SIGTERM)
    code = proc.wait(timeout=120)
    err = proc.stderr.read() if proc.stderr else ""
    assert code == 143, err
    assert "Traceback" not in err
    assert not engine.containers.list(all=True, filters={"label": "org.hailoc.model=slow1"})
    assert not engine.containers.list(all=True, filters={"label": "org.hailoc.model=slow2"})
    work = project / ".hailoc" / "work"
    assert not work.exists() or not any(work.iterdir())
    record = _record(project, "slow1")
    assert record["status"] == "failed" and record["failure_class"] == "interrupted"
    summary = json.loads((project / "hef" / "summary.json").read_text())
    assert {r["model"] for r in summary["results"]} == {"slow1", "slow2"}
    assert all(r["status"] != "ok" for r in summary["results"])


def test_verify_runs_the_build_on_the_standin_hailort(
    calibrated_project: Path, cli: Cli, suite: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`hailoc verify` end to end with the stand-in hailo_platform: HEF vs emulator vs fp32
    per face size, written to verify.json (the stand-in runs no HEF: numbers are not checked)."""
    project = calibrated_project
    res = _build(cli, project, suite, "fr_feature", "-p", "int16-final")
    assert res.code == 0, res.err
    monkeypatch.syspath_prepend(str(REPO / "tests" / "standin_hailort"))
    m = str(project / "models.yaml")
    res = cli("-m", m, "verify", "fr_feature", "-p", "int16-final")
    assert res.code == 0, res.err
    out = project / "hef" / "fr_feature" / "hailo8" / "int16-final"
    report = json.loads((out / "verify.json").read_text())
    assert report["ran_on"].startswith("stand-in")
    assert [row["size"] for row in report["rows"]] == [112, 64, 40, 24, 16]
    assert all(row["emulator_vs_fp32"] is not None for row in report["rows"])
    monkeypatch.setenv("HAILO_STANDIN_NO_DEVICE", "1")
    res = cli("-m", m, "verify", "fr_feature", "-p", "int16-final")
    assert res.code == 3 and "no Hailo device" in res.err


def test_identities_on_a_hailo_build_use_the_dfc_emulator(
    calibrated_project: Path, cli: Cli, suite: str
) -> None:
    """`eval --identities -b hailo`: the build column is the DFC's SDK_QUANTIZED emulation of
    the build's optimized HAR (one container stage for every face and size, cached)."""
    from tests.photos import identity_folders

    project = calibrated_project
    res = _build(cli, project, suite, "fr_feature", "-p", "int8")
    assert res.code in (0, 1), res.err
    people = identity_folders(project / "people")
    m = str(project / "models.yaml")
    args = ("-m", m, "eval", "fr_feature", "-p", "int8", "-b", "hailo", "--suite-image", suite,
            "--identities", str(people), "--face-sizes", "112,24")  # fmt: skip
    res = cli(*args)
    assert res.code == 0, res.err
    out = project / "hef" / "fr_feature" / "hailo8" / "int8"
    section = json.loads((out / "identities.json").read_text())
    assert section["build_source"].startswith("DFC emulator (SDK_QUANTIZED)")
    assert [row["size"] for row in section["rows"]] == [112, 24]
    record = json.loads((out / "record.json").read_text())
    assert record["accuracy"]["identities"]["build_source"] == section["build_source"]
    # Again: the emulation comes from the stage cache (no container).
    before = json.loads((out / "identities.json").read_text())["rows"]
    assert cli(*args).code == 0
    assert json.loads((out / "identities.json").read_text())["rows"] == before
