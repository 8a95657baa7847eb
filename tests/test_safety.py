"""Reliability and safety: nothing hailoc did not write is deleted, names never become paths,
builds follow the bytes they read, concurrent and interrupted runs leave consistent outputs."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import yaml

from hailoc.owned_files import sha256_file
from tests.conftest import CliResult

Cli = Callable[..., CliResult]


def _m(project: Path) -> str:
    return str(project / "models.yaml")


def _tree(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*")}


# -- 1. outputs are written, never cleared --------------------------------------------------


@pytest.fixture
def exported(calibrated_project: Path, cli: Cli) -> Path:
    return calibrated_project


def test_export_never_deletes_a_user_folder(exported: Path, cli: Cli, tmp_path: Path) -> None:
    project = exported
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "keep.txt").write_text("user data")
    res = cli(
        "-m",
        _m(project),
        "calib",
        "export",
        "fr_demo",
        "--model",
        "fr_feature",
        "-o",
        str(mine),
        "--per-image",
    )
    assert res.code == 2 and "did not create" in res.err
    assert len(res.err.strip().splitlines()) == 1
    assert (mine / "keep.txt").read_text() == "user data"


@pytest.mark.parametrize("where", ["project", "home", "root", "symlink"])
def test_export_refuses_dot_home_root_and_links(
    exported: Path, cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, where: str
) -> None:
    project = exported
    monkeypatch.chdir(project)
    home = tmp_path / "home"
    home.mkdir()
    (home / ".bashrc").write_text("x")
    target = {"project": ".", "home": str(home), "root": "/"}.get(where)
    if where == "symlink":
        (tmp_path / "link").symlink_to(home, target_is_directory=True)
        target = str(tmp_path / "link")
    before = _tree(project)
    res = cli(
        "-m",
        _m(project),
        "calib",
        "export",
        "fr_demo",
        "--model",
        "fr_feature",
        "-o",
        str(target),
        "--per-image",
    )
    assert res.code == 2, res.err
    assert "Traceback" not in res.err
    assert _tree(project) == before and (home / ".bashrc").read_text() == "x"


def test_export_replaces_only_its_own_folder_and_files_with_force(
    exported: Path, cli: Cli, tmp_path: Path
) -> None:
    project = exported
    out = tmp_path / "faces"
    args = ("-m", _m(project), "calib", "export", "fr_demo", "--model", "fr_feature")
    assert cli(*args, "-o", str(out), "--per-image").code == 0
    first = sorted(p.name for p in out.iterdir())
    assert cli(*args, "-o", str(out), "--per-image").code == 0  # its own folder: replaced
    assert sorted(p.name for p in out.iterdir()) == first
    single = tmp_path / "calib.npy"
    single.write_bytes(b"user file")
    assert cli(*args, "-o", str(single)).code == 2
    assert single.read_bytes() == b"user file"
    assert cli(*args, "-o", str(single), "--force").code == 0
    assert np.load(single).dtype == np.float32


# -- 2. names never become paths ------------------------------------------------------------


@pytest.mark.parametrize("backend", ["onnxruntime", "hailo"])
@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("-p", "../../x"),
        ("-p", "int8,../x"),
        ("--hw-arch", "../evil"),
        ("--hw-arch", "hailo99"),
        ("--from-stage", "../x"),
        ("--backend", "../x"),
    ],
)
def test_bad_names_are_refused_before_any_work(
    calibrated_project: Path, cli: Cli, backend: str, option: str, value: str
) -> None:
    project = calibrated_project
    before = _tree(project.parent)
    args = ["-m", _m(project), "build", "fr_feature", option, value]
    if option != "--backend":
        args += ["-b", backend]
    res = cli(*args)
    assert res.code == 2, res.err
    assert option in res.err and value.split(",")[-1] in res.err
    assert len(res.err.strip().splitlines()) == 1
    assert _tree(project.parent) == before  # nothing created, inside or outside


# -- 3. builds follow the bytes they read ---------------------------------------------------


def test_changed_calibration_bytes_are_refused_never_a_stale_cache_hit(
    calibrated_project: Path, cli: Cli
) -> None:
    project = calibrated_project
    m = _m(project)
    assert cli("-m", m, "build", "fr_feature", "-p", "int8").code == 0
    record_path = project / "hef" / "fr_feature" / "onnxruntime" / "int8" / "record.json"
    recorded = json.loads(record_path.read_text())["inputs"]["calibration_sha256"]
    calib = project / "calibration" / "fr_demo" / "calib.npy"
    assert recorded == sha256_file(calib)
    data = bytearray(calib.read_bytes())
    data[-1] ^= 0xFF
    calib.write_bytes(bytes(data))
    res = cli("-m", m, "build", "fr_feature", "-p", "int8")
    assert res.code == 2
    assert "array changed: calib.npy" in res.err and "calib verify" in res.err
    # The record on disk is still the one of the build that used the old bytes.
    assert json.loads(record_path.read_text())["inputs"]["calibration_sha256"] == recorded


# -- 4. one build of a target at a time -----------------------------------------------------


def test_ten_concurrent_builds_of_one_target_agree_with_their_artifact(
    calibrated_project: Path,
) -> None:
    project = calibrated_project
    env = {**os.environ, "COLUMNS": "120"}
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "hailoc",
                "-m",
                _m(project),
                "build",
                "fr_feature",
                "-p",
                "int8",
                "--force" if i % 2 else "--skip-gate",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            env=env,
        )
        for i in range(10)
    ]
    codes = [p.wait(timeout=600) for p in procs]
    assert codes == [0] * 10, [p.stderr.read() if p.stderr else "" for p in procs]
    folder = project / "hef" / "fr_feature" / "onnxruntime" / "int8"
    record = json.loads((folder / "record.json").read_text())
    artifact = record["artifacts"]["qdq_onnx"]
    assert sha256_file(folder / "fr_feature.qdq.onnx") == artifact["sha256"]
    assert not [p for p in folder.parent.iterdir() if ".staging-" in p.name or ".old-" in p.name]


def test_no_wait_exits_3_while_another_build_holds_the_target(
    calibrated_project: Path, cli: Cli
) -> None:
    from hailoc.locks import exclusive

    folder = calibrated_project / "hef" / "fr_feature" / "onnxruntime" / "int8"
    with exclusive(folder, what="test", locks=calibrated_project / ".hailoc" / "locks"):
        res = cli("-m", _m(calibrated_project), "build", "fr_feature", "-p", "int8", "--no-wait")
    assert res.code == 3 and "another hailoc process" in res.err


# -- 5. interruptions -----------------------------------------------------------------------


def test_sigterm_during_an_ort_build_records_interrupted_and_cleans_up(
    calibrated_project: Path,
) -> None:
    project = calibrated_project
    work = project / ".hailoc" / "work"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "hailoc",
            "-m",
            _m(project),
            "build",
            "fr_feature",
            "-p",
            "int16-all",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not (work.is_dir() and any(work.iterdir())):
        time.sleep(0.05)
    assert work.is_dir() and any(work.iterdir()), "the quantize stage never started"
    time.sleep(0.5)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=120) == 143
    folder = project / "hef" / "fr_feature" / "onnxruntime" / "int16-all"
    record = json.loads((folder / "record.json").read_text())
    assert record["status"] == "failed" and record["failure_class"] == "interrupted"
    assert not any(work.iterdir())
    assert not [p for p in folder.parent.iterdir() if ".staging-" in p.name]
    assert not list((project / ".hailoc" / "cache").glob("quantize/.*"))  # no half entry


def test_gc_removes_what_dead_runs_left_and_keeps_live_ones(project: Path, cli: Cli) -> None:
    from hailoc.owned_files import MARKER, owner_stamp

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stamp = owner_stamp()
    stale = project / ".hailoc" / "work" / "deadbeef0001"
    live = project / ".hailoc" / "work" / "live00000001"
    staging = project / "hef" / "m" / "onnxruntime" / ".int8.staging-1-abc"
    for folder, pid in ((stale, dead.pid), (live, os.getpid()), (staging, dead.pid)):
        folder.mkdir(parents=True)
        name = "owner.json" if "work" in folder.parts else MARKER
        (folder / name).write_text(json.dumps(stamp | {"pid": pid}))
    user = project / "hef" / "m" / ".mine.staging-1-x"
    user.mkdir(parents=True)  # no marker: not hailoc's, never touched
    res = cli("-m", _m(project), "gc", "--no-containers")
    assert res.code == 0
    assert not stale.exists() and not staging.exists()
    assert live.exists() and user.exists()


# -- 6. bad values end as one line, before any work -----------------------------------------


def test_auto_target_out_of_range_is_refused_before_the_search(
    calibrated_project: Path, cli: Cli
) -> None:
    for value in ("5", "nan", "0", "-1"):
        res = cli(
            "-m", _m(calibrated_project), "plan", "fr_feature", "-p", "auto", "--target", value
        )
        assert res.code == 2 and "--target" in res.err, (value, res.err)
    assert not (calibrated_project / ".hailoc").exists()


def _edit_manifest(project: Path, edit: Callable[[dict[str, object]], None]) -> None:
    path = project / "models.yaml"
    data = yaml.safe_load(path.read_text())
    edit(data)
    path.write_text(yaml.safe_dump(data, sort_keys=False))


@pytest.mark.parametrize("sizes", [[-5, 112], [112, 112], [], [200]])
def test_bad_face_sizes_are_a_manifest_error(project: Path, cli: Cli, sizes: list[int]) -> None:
    _edit_manifest(project, lambda d: d["defaults"].update(gate={"face_sizes": sizes}))  # type: ignore[attr-defined]
    res = cli("-m", _m(project), "models", "validate", "fr_feature")
    assert res.code == 2 and "face_sizes" in res.err


def test_empty_manifest_all_keeps_the_previous_summary(project: Path, cli: Cli) -> None:
    summary = project / "hef" / "summary.json"
    summary.parent.mkdir()
    summary.write_text('{"results": []}')
    _edit_manifest(project, lambda d: d.update(models={}))
    res = cli("-m", _m(project), "build", "--all")
    assert res.code == 2 and "no models" in res.err
    assert summary.read_text() == '{"results": []}'


def test_missing_onnx_in_a_batch_gives_every_target_a_record(project: Path, cli: Cli) -> None:
    def edit(data: dict[str, object]) -> None:
        models = data["models"]
        assert isinstance(models, dict)
        base = models["fr_feature"]
        data["models"] = {n: {**base, "onnx": f"models/{n}.onnx"} for n in ("a", "b", "c")}

    _edit_manifest(project, edit)
    res = cli("-m", _m(project), "build", "--all", "-p", "int8")
    assert res.code == 1
    summary = json.loads((project / "hef" / "summary.json").read_text())
    assert sorted(r["model"] for r in summary["results"]) == ["a", "b", "c"]
    for name in ("a", "b", "c"):
        record = json.loads(
            (project / "hef" / name / "onnxruntime" / "int8" / "record.json").read_text()
        )
        assert record["failure_class"] == "input" and "not found" in record["message"]
    assert "queued" not in res.err and "running" not in res.err.splitlines()[-1]


def test_report_skips_a_malformed_record(calibrated_project: Path, cli: Cli) -> None:
    project = calibrated_project
    assert cli("-m", _m(project), "build", "fr_feature", "-p", "int8").code == 0
    broken = project / "hef" / "x" / "hailo8" / "int8"
    broken.mkdir(parents=True)
    (broken / "record.json").write_text("{not json")
    res = cli("-m", _m(project), "report")
    assert res.code == 0 and "Traceback" not in res.err
    assert "record.json" in res.err and "skipped" in res.err


def test_pairs_with_non_ascii_digits_are_one_line(
    calibrated_project: Path, cli: Cli, tmp_path: Path
) -> None:
    project = calibrated_project
    assert cli("-m", _m(project), "build", "fr_feature", "-p", "int8").code == 0
    pairs = tmp_path / "pairs.txt"
    pairs.write_text("Abel \u00b2 3\n")
    res = cli(
        "-m",
        _m(project),
        "eval",
        "fr_feature",
        "-p",
        "int8",
        "--pairs",
        str(pairs),
        "--images",
        str(project / "photos"),
    )
    assert res.code == 2 and "line 1" in res.err and "Traceback" not in res.err


@pytest.mark.parametrize("url", ["http://[::1", "http://localhost", "tcp://", "unix://", "ftp://x"])
def test_bad_docker_host_is_one_line(calibrated_project: Path, cli: Cli, url: str) -> None:
    res = cli(
        "-m", _m(calibrated_project), "build", "fr_feature", "-b", "hailo", "--docker-host", url
    )
    assert res.code == 2 and "--docker-host" in res.err and "Traceback" not in res.err


def test_two_input_and_160px_models_fail_validation(project: Path, cli: Cli) -> None:
    import onnx
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("a", TensorProto.FLOAT, [1, 3, 112, 112])
    y = helper.make_tensor_value_info("b", TensorProto.FLOAT, [1, 3, 112, 112])
    z = helper.make_tensor_value_info("out", TensorProto.FLOAT, [1, 3, 112, 112])
    two = helper.make_model(
        helper.make_graph([helper.make_node("Add", ["a", "b"], ["out"])], "g", [x, y], [z])
    )
    onnx.save(two, str(project / "models" / "two.onnx"))

    def edit(data: dict[str, object]) -> None:
        models = data["models"]
        assert isinstance(models, dict)
        base = {k: v for k, v in models["fr_feature"].items() if k != "sha256"}
        models["two"] = {
            **base,
            "onnx": "models/two.onnx",
            "input": {"name": "a", "shape": [1, 3, 112, 112]},
        }
        models["big"] = {
            **base,
            "onnx": "models/big.onnx",
            "input": {"name": "input", "shape": [1, 3, 160, 160]},
        }

    big = onnx.load(str(project / "models" / "fr_feature.onnx"))
    for dim, size in zip(
        big.graph.input[0].type.tensor_type.shape.dim[2:], (160, 160), strict=True
    ):
        dim.dim_value = size
    onnx.save(big, str(project / "models" / "big.onnx"))
    _edit_manifest(project, edit)
    res = cli("-m", _m(project), "models", "validate", "two")
    assert res.code == 1 and "2 inputs" in res.err
    res = cli("-m", _m(project), "models", "validate", "big")
    assert res.code == 1 and "112x112" in res.err and "160" in res.err


def test_read_only_output_is_one_line_not_a_traceback(
    calibrated_project: Path, cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    import errno

    import hailoc.pipeline.runner as runner

    def full(*args: object, **kwargs: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device", "record.json")

    monkeypatch.setattr(runner, "write_record", full)
    res = cli("-m", _m(calibrated_project), "build", "fr_feature", "-p", "int8")
    assert res.code == 1 and "Traceback" not in res.err
    assert "no space left" in res.err.lower()


def test_report_never_replaces_a_users_report(
    calibrated_project: Path, cli: Cli, tmp_path: Path
) -> None:
    project = calibrated_project
    assert cli("-m", _m(project), "build", "fr_feature", "-p", "int8").code == 0
    mine = tmp_path / "docs"
    mine.mkdir()
    (mine / "report.md").write_text("# my notes\n")
    res = cli("-m", _m(project), "report", "-o", str(mine))
    assert res.code == 2 and "--force" in res.err
    assert (mine / "report.md").read_text() == "# my notes\n"
    # Its own report is replaced without asking; --force replaces the user's.
    assert cli("-m", _m(project), "report").code == 0
    assert cli("-m", _m(project), "report").code == 0
    assert cli("-m", _m(project), "report", "-o", str(mine), "--force").code == 0
