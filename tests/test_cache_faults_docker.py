"""Faults around the Hailo stages: damaged HARs, HEFs and blobs; an engine killed mid-stage and
started again; a daemon restarted between two builds of a batch."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from hailoc.cache import StageCache
from hailoc.locks import exclusive
from tests.conftest import CliResult
from tests.docker_support import add_models, engine_or_skip, ensure_standin_image, only_models
from tests.second_engine import SecondEngine, start_second_engine

pytestmark = pytest.mark.docker
Cli = Callable[..., CliResult]


@pytest.fixture(scope="module")
def suite() -> str:
    engine_or_skip().close()
    return ensure_standin_image()


@pytest.fixture
def remote(suite: str) -> Iterator[SecondEngine]:
    try:
        engine = start_second_engine([suite])
    except RuntimeError as exc:
        if os.environ.get("HAILOC_REQUIRE_DOCKER") == "1":
            pytest.fail(f"HAILOC_REQUIRE_DOCKER=1 but no second engine: {exc}")
        pytest.skip(str(exc))
    yield engine
    engine.stop()


def _build(cli: Cli, project: Path, suite: str, *args: str) -> CliResult:
    m = str(project / "models.yaml")
    return cli("-m", m, "build", *args, "-b", "hailo", "--suite-image", suite)


def _record(project: Path, model: str, precision: str) -> dict[str, Any]:
    path = project / "hef" / model / "hailo8" / precision / "record.json"
    return json.loads(path.read_text())  # type: ignore[no-any-return]


def test_damaged_hars_hef_and_calibration_blob_are_rebuilt(
    calibrated_project: Path, cli: Cli, suite: str
) -> None:
    project = calibrated_project
    res = _build(cli, project, suite, "fr_feature", "-p", "int16-final")
    assert res.code == 0, res.err
    cache = StageCache(project / ".hailoc" / "cache")
    entries = {kind: path for kind, _, path in cache.entries()}
    blobs = sorted((project / ".hailoc" / "cache" / "blobs").glob("*.npy"))
    assert blobs and {"parse", "optimize", "compile"} <= entries.keys()
    for damaged in (
        entries["parse"] / "parsed.har",
        entries["optimize"] / "optimized.har",
        entries["compile"] / "model.hef",
        blobs[0],
    ):
        data = damaged.read_bytes()
        damaged.write_bytes(data[: len(data) // 2])

    res = _build(cli, project, suite, "fr_feature", "-p", "int16-final")
    assert res.code == 0, res.err + res.out
    record = _record(project, "fr_feature", "int16-final")
    assert record["status"] == "ok"
    named = {d["kind"] for d in record["cache_damaged"]}
    assert {"parse", "optimize", "compile", "blobs"} <= named, named
    assert all(not s["cache_hit"] for s in record["stages"])
    moved = project / ".hailoc" / "cache" / "damaged"
    assert {p.name for p in moved.iterdir()} >= {"parse", "optimize", "compile", "blobs"}
    # The blob holds the bytes its name says again.
    import hashlib

    assert hashlib.sha256(blobs[0].read_bytes()).hexdigest() == blobs[0].stem


def _use_remote_only(project: Path, remote: SecondEngine) -> None:
    path = project / "models.yaml"
    data = yaml.safe_load(path.read_text())
    data["defaults"]["engines"] = [{"name": "remote", "host": remote.url}]
    path.write_text(yaml.safe_dump(data, sort_keys=False))


def test_engine_killed_mid_stage_then_back_finishes_from_the_cache(
    calibrated_project: Path, cli: Cli, suite: str, remote: SecondEngine
) -> None:
    project = calibrated_project
    _use_remote_only(project, remote)
    add_models(project, slow={"alls_extra": ["# standin-sleep: optimize 8"]})
    only_models(project, "slow")
    client = remote.client()
    killed = threading.Event()

    def killer() -> None:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            try:
                if client.containers.list(filters={"label": "org.hailoc.stage=optimize"}):
                    time.sleep(1)
                    remote.kill()
                    killed.set()
                    return
            except Exception:
                return
            time.sleep(0.1)

    thread = threading.Thread(target=killer, daemon=True)
    thread.start()
    res = _build(cli, project, suite, "slow", "-p", "int8")
    thread.join(timeout=300)
    assert killed.is_set()
    assert res.code == 1
    assert _record(project, "slow", "int8")["failure_class"] == "engine_lost"

    remote.restart()
    res = _build(cli, project, suite, "slow", "-p", "int8")
    assert res.code == 0, res.err + res.out
    stages = {s["name"]: s["cache_hit"] for s in _record(project, "slow", "int8")["stages"]}
    assert stages == {"parse": True, "optimize": False, "compile": False}


def test_daemon_restarted_between_two_builds_of_a_batch(
    calibrated_project: Path, suite: str, remote: SecondEngine
) -> None:
    project = calibrated_project
    _use_remote_only(project, remote)
    add_models(project, second={})
    only_models(project, "fr_feature", "second")
    second = project / "hef" / "second" / "hailo8" / "int8"
    locks = project / ".hailoc" / "locks"
    first_record = project / "hef" / "fr_feature" / "hailo8" / "int8" / "record.json"
    # Hold the second build's folder: the batch builds the first, then waits for it.
    with exclusive(second, what="test", locks=locks):
        proc = subprocess.Popen(
            [sys.executable, "-m", "hailoc", "-m", str(project / "models.yaml"), "build",
             "--all", "-p", "int8", "-b", "hailo", "--suite-image", suite],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )  # fmt: skip
        deadline = time.monotonic() + 300
        while not first_record.is_file():
            assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
            time.sleep(0.2)
        remote.restart()
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err + out
    assert _record(project, "second", "int8")["status"] == "ok"
    assert _record(project, "fr_feature", "int8")["status"] == "ok"
