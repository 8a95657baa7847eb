"""The stand-in is as strict as the public evidence about the real DFC (docs/dfc-behaviour.md);
each test shows what hailoc's earlier behaviour would have hit, and that hailoc now passes."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from hailoc.failures import classify
from hailoc.plan import hn_from_dict
from tests.conftest import FIXTURES, CliResult
from tests.docker_support import (
    STANDIN_IMAGE,
    STANDIN_V5_IMAGE,
    engine_or_skip,
    ensure_standin_image,
)

Cli = Callable[..., CliResult]
VENV_PYTHON = "/local/workspace/hailo_virtualenv/bin/python"


# -- without Docker: the classifier and the stand-in in-process -----------------------------


@pytest.mark.parametrize(
    ("error_type", "message", "stage", "klass"),
    [
        (
            "HailoNNException",
            "The layer named conv99 doesn't exist in the HN",
            "optimize",
            "script",
        ),
        (
            "ParsingWithRecommendationException",
            "Parsing failed. The errors found in the "
            "graph are: ... Please try to parse the model again, using these end node names: "
            "Reshape_95",
            "parse",
            "parse",
        ),
        ("MisspellNodeError", "Unable to find node Conv_999 in the ONNX graph", "parse", "parse"),
        (
            "BackendAllocatorException",
            "Compilation failed: could not find a valid partition to contexts",
            "compile",
            "allocator",
        ),
        ("ValueError", "arange: cannot compute length", "optimize", "nan_exponent"),
        (
            "AccelerasUnsupportedError",
            "Unsupported layers for the provided optimization target: softmax1",
            "optimize",
            "unsupported_16bit",
        ),
        (
            "BackendValueError",
            "Unsupported NaN values were found in params",
            "optimize",
            "nan_params",
        ),
        ("SomethingNew", "never seen", "compile", "unknown"),
    ],
)
def test_classifier_on_verbatim_messages(
    error_type: str, message: str, stage: str, klass: str
) -> None:
    found = classify(error_type, message, stage)
    assert found.name == klass
    if klass == "unknown":
        assert "compile stage" in found.hint  # the stage says where to look


def test_output_layers_are_found_by_type_not_by_output_layers_order() -> None:
    hn = json.loads((FIXTURES / "fr_feature.hn.json").read_text())
    # As in a real HN, the order lists the layer that feeds the output ...
    assert hn["net_params"]["output_layers_order"] == ["fr_feature/conv33"]
    # ... so reading it (hailoc's earlier code) would have put conv33, not the output, in 16-bit.
    assert hn_from_dict(hn).output_layers == ("output_layer1",)


def test_standin_refuses_redeclared_and_unknown_layers(
    standin_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from hailo_sdk_client import ClientRunner
    from hailo_sdk_client.exceptions import HailoNNException

    from hailoc.alls.render import normalization_name

    monkeypatch.chdir(tmp_path)  # the SDK writes its log into the cwd
    runner = ClientRunner(hw_arch="hailo8")
    runner._hn = json.loads((FIXTURES / "fr_feature.hn.json").read_text())
    runner._hn["layers"]["fr_feature/normalization1"] = {"type": "normalization"}
    with pytest.raises(HailoNNException, match="already exists"):
        runner.load_model_script("normalization1 = normalization([0.0], [1.0])\n")
    with pytest.raises(HailoNNException, match="The layer named conv99 doesn't exist in the HN"):
        runner.load_model_script("quantization_param([conv99], precision_mode=a16_w16)\n")
    taken = frozenset(k.split("/")[1] for k in runner._hn["layers"])
    name = normalization_name(taken)
    assert name == "new_normalization1"
    runner.load_model_script(f"{name} = normalization([0.0], [1.0])\n")


def test_standin_refuses_archs_outside_its_family(
    standin_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from hailo_sdk_client import ClientRunner
    from hailo_sdk_client.exceptions import UnsupportedHwArchError

    monkeypatch.chdir(tmp_path)
    ClientRunner(hw_arch="hailo8l")
    with pytest.raises(UnsupportedHwArchError, match="hailo10h"):
        ClientRunner(hw_arch="hailo10h")
    assert (tmp_path / "hailo_sdk.client.log").is_file()  # the SDK logs into the cwd


# -- with Docker: the stricter stand-in images ------------------------------------------------


@pytest.fixture(scope="module")
def engine() -> Iterator[Any]:
    client = engine_or_skip()
    yield client
    client.close()


@pytest.fixture(scope="module")
def suites(engine: Any) -> tuple[str, str]:
    return ensure_standin_image(STANDIN_IMAGE), ensure_standin_image(STANDIN_V5_IMAGE)


def _manifest(project: Path, **defaults: object) -> None:
    path = project / "models.yaml"
    data = yaml.safe_load(path.read_text())
    data["defaults"].update(defaults)
    path.write_text(yaml.safe_dump(data, sort_keys=False))


@pytest.mark.docker
def test_earlier_assumptions_fail_against_the_standin(engine: Any, suites: tuple[str, str]) -> None:
    v3, _ = suites

    def run(entrypoint: list[str], **kwargs: object) -> tuple[int, str]:
        container = engine.containers.run(
            v3, entrypoint=entrypoint, command=[], detach=True, network_disabled=True, **kwargs
        )
        try:
            code = int(container.wait(timeout=60)["StatusCode"])
            return code, container.logs().decode()
        finally:
            container.remove(force=True)

    # The suite's python3 has no hailo_sdk_client: only its venv has (WORKER_PYTHON=python3 was
    # hailoc's earlier default).
    code, out = run(["python3", "-c", "import hailo_sdk_client"])
    assert code != 0 and "No module named 'hailo_sdk_client'" in out
    # The SDK logs into its working directory; the non-root stage user cannot write the
    # suite's /local/workspace, where hailoc's worker used to run.
    code, out = run(
        [VENV_PYTHON, "-c", "from hailo_sdk_client import ClientRunner; ClientRunner()"],
        user="10001:10001",
        working_dir="/local/workspace",
    )
    assert code != 0 and "PermissionError" in out


@pytest.mark.docker
def test_int16_final_build_against_the_v3_standin(
    calibrated_project: Path, cli: Cli, suites: tuple[str, str]
) -> None:
    project = calibrated_project
    _manifest(project, suite_image=suites[0], optimization={"compiler_optimization_level": "max"})
    res = cli(
        "-m",
        str(project / "models.yaml"),
        "build",
        "fr_feature",
        "-b",
        "hailo",
        "-p",
        "int16-final",
        "--cpu",
    )
    assert res.code == 0, res.err
    out = project / "hef" / "fr_feature" / "hailo8" / "int16-final"
    record = json.loads((out / "record.json").read_text())
    # The DFC's own logs, from every stage, kept for support.
    for stage in ("parse", "optimize", "compile"):
        assert (out / "dfc-logs" / stage / "hailo_sdk.client.log").is_file(), stage
    assert (out / "dfc-logs" / "compile" / "allocator.log").is_file()
    hn = json.loads((out / "parsed.hn.json").read_text())
    layers = {k.split("/")[1] for k in hn["layers"]}
    alls = (out / "model.alls").read_text()
    declared = [
        line.split("=")[0].strip() for line in alls.splitlines() if "= normalization(" in line
    ]
    assert declared and not set(declared) & layers
    a16 = next(line for line in alls.splitlines() if line.startswith("quantization_param"))
    assert "output_layer1" in a16
    # No GPU: level 0, and the record says why.
    assert "model_optimization_flavor(optimization_level=0," in alls
    assert record["plan"]["optimization_level"] == 0
    assert "no GPU" in record["plan"]["optimization_reason"]
    # The script is loaded again before compile: performance_param reaches the compiler.
    summary = json.loads((out / "fr_feature.standin-not-a-hef").read_bytes().split(b"\n", 1)[1])
    assert summary["performance_param"] == ["compiler_optimization_level=max"]
    backend = record["inputs"]["backend"]
    assert backend["dfc_version"].startswith("3.") and backend["worker_python"] == VENV_PYTHON
    assert record["engine"] == "local"
    assert all(s["engine"] == "local" for s in record["stages"])


@pytest.mark.docker
def test_hw_arch_outside_the_suite_family_is_refused_then_mapped(
    calibrated_project: Path, cli: Cli, suites: tuple[str, str], engine: Any
) -> None:
    project = calibrated_project
    v3, v5 = suites
    _manifest(project, suite_image=v3)
    before = len(engine.containers.list(all=True))
    m = str(project / "models.yaml")
    res = cli("-m", m, "build", "fr_feature", "-b", "hailo", "--hw-arch", "hailo10h", "--cpu")
    assert res.code == 2
    lines = [line for line in res.err.splitlines() if line.strip()]
    assert len(lines) == 1, res.err
    assert v3 in lines[0] and "3.33.0" in lines[0] and "hailo10h" in lines[0]
    assert "suite_images" in lines[0]
    assert not (project / "hef").exists()
    assert len(engine.containers.list(all=True)) == before  # no stage container ran
    _manifest(project, suite_image=v3, suite_images={"hailo10h": v5})
    res = cli(
        "-m",
        m,
        "build",
        "fr_feature",
        "-b",
        "hailo",
        "--hw-arch",
        "hailo8,hailo10h",
        "-p",
        "int8",
        "--cpu",
    )
    assert res.code == 0, res.err
    for arch, image, major in (("hailo8", v3, "3."), ("hailo10h", v5, "5.")):
        record = json.loads(
            (project / "hef" / "fr_feature" / arch / "int8" / "record.json").read_text()
        )
        assert record["inputs"]["backend"]["suite_image"] == image
        assert record["inputs"]["backend"]["dfc_version"].startswith(major)


@pytest.mark.docker
def test_doctor_passes_on_the_standin_and_names_each_fix(
    project: Path, cli: Cli, suites: tuple[str, str], engine: Any
) -> None:
    m = str(project / "models.yaml")
    _manifest(project, suite_image=suites[0])
    res = cli("-m", m, "doctor")
    assert res.code == 0, res.out
    assert "3.33.0+standin" in res.out and VENV_PYTHON in res.out
    assert "GPU" in res.out and "warning" in res.out  # no GPU: a warning, not a failure
    res = cli("-m", m, "doctor", "--docker-host", "unix:///nonexistent/docker.sock")
    assert res.code == 1 and "start Docker" in res.out
    _manifest(project, suite_image="no-such-suite:1")
    res = cli("-m", m, "doctor")
    assert res.code == 1 and "docker load" in res.out
    # An image without hailo_sdk_client: the stand-in's bare base.
    _manifest(project, suite_image="hailoc-standin-base:bookworm-3")
    res = cli("-m", m, "doctor")
    assert res.code == 1 and "hailo_sdk_client" in res.out and "Suite image" in res.out
