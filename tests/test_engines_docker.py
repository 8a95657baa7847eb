"""Two Docker engines on one machine: the second (its own dockerd) is treated as a remote GPU
host that shares no files with this one."""

from __future__ import annotations

import io
import json
import os
import re
import tarfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import CliResult
from tests.docker_support import add_models, engine_or_skip, ensure_standin_image, start_hailoc
from tests.second_engine import SecondEngine, created_containers, start_second_engine

pytestmark = pytest.mark.docker

Cli = Callable[..., CliResult]
TARGETS = ("-p", "int8,int16-final", "--hw-arch", "hailo8,hailo8l")


def _second_engine(suite: str) -> SecondEngine:
    try:
        return start_second_engine([suite])
    except RuntimeError as exc:
        if os.environ.get("HAILOC_REQUIRE_DOCKER") == "1":
            pytest.fail(f"HAILOC_REQUIRE_DOCKER=1 but no second engine: {exc}")
        pytest.skip(str(exc))


@pytest.fixture(scope="module")
def suite() -> str:
    engine_or_skip().close()
    return ensure_standin_image()


@pytest.fixture(scope="module")
def remote(suite: str) -> Iterator[SecondEngine]:
    engine = _second_engine(suite)
    yield engine
    engine.stop()


@pytest.fixture
def doomed_remote(suite: str) -> Iterator[SecondEngine]:
    """A second engine of its own, for a test that kills it."""
    engine = _second_engine(suite)
    yield engine
    engine.stop()


def _use_engines(project: Path, remote: SecondEngine) -> None:
    path = project / "models.yaml"
    data = yaml.safe_load(path.read_text())
    data["defaults"]["engines"] = [{"name": "local"}, {"name": "remote", "host": remote.url}]
    path.write_text(yaml.safe_dump(data, sort_keys=False))


def _summary(project: Path) -> list[dict[str, Any]]:
    rows = json.loads((project / "hef" / "summary.json").read_text())["results"]
    return rows  # type: ignore[no-any-return]


def _artifacts(project: Path) -> dict[tuple[str, str, str], dict[str, str]]:
    out = {}
    for path in sorted((project / "hef").glob("*/*/*/record.json")):
        record = json.loads(path.read_text())
        key = (record["model"], record["hw_arch"], record["precision"])
        out[key] = {k: a["sha256"] for k, a in record["artifacts"].items() if k != "report"}
    return out


def _volume_files(client: Any) -> list[str]:
    helper = client.containers.create(
        ensure_standin_image(),
        entrypoint=["/bin/true"],
        command=[],
        volumes={"hailoc-blobs": {"bind": "/blobs", "mode": "ro"}},
    )
    try:
        stream, _ = helper.get_archive("/blobs")
        with tarfile.open(fileobj=io.BytesIO(b"".join(stream))) as tar:
            return [m.name for m in tar.getmembers() if m.isfile()]
    finally:
        helper.remove(force=True)


def _watch_stage_containers(client: Any, stop: threading.Event, seen: dict[str, Any]) -> None:
    """Inspect every stage container while it exists (they last seconds)."""
    while not stop.is_set():
        try:
            for c in client.containers.list(all=True, filters={"label": "org.hailoc=stage"}):
                seen.setdefault(c.id, c.attrs["HostConfig"])
        except Exception:
            pass
        time.sleep(0.05)


def test_batch_on_two_engines_copies_files_to_the_remote_one(
    calibrated_project: Path, cli: Cli, suite: str, remote: SecondEngine
) -> None:
    project = calibrated_project
    _use_engines(project, remote)
    m = str(project / "models.yaml")
    doctor = cli("-m", m, "doctor")  # every listed engine, each with how files reach it
    assert "local: Docker engine" in doctor.out and "remote: Docker engine" in doctor.out
    assert "mounted" in doctor.out and "copied" in doctor.out
    stop, seen = threading.Event(), {}
    watcher = threading.Thread(
        target=_watch_stage_containers, args=(remote.client(), stop, seen), daemon=True
    )
    watcher.start()
    res = cli("-m", m, "build", "fr_feature", "-b", "hailo", *TARGETS, "--suite-image", suite)
    stop.set()
    watcher.join()
    assert res.code in (0, 1), res.err
    rows = _summary(project)
    assert len(rows) == 4 and all(
        r["status"] != "failed" or r["failure_class"] == "gate" for r in rows
    ), rows
    assert {r["engine"] for r in rows} == {"local", "remote"}, rows
    remote_records = [
        json.loads(p.read_text())
        for p in (project / "hef").glob("*/*/*/record.json")
        if json.loads(p.read_text())["engine"] == "remote"
    ]
    assert all(r["inputs"]["backend"]["files"] == "copied" for r in remote_records)
    assert all(s["engine"] == "remote" for r in remote_records for s in r["stages"])

    # Every container the remote engine was asked to create, and every stage container seen
    # alive there: no bind mount, only the blob volume.
    bodies = created_containers(remote.log)
    stage_bodies = [b for b in bodies if b.get("Labels", {}).get("org.hailoc") == "stage"]
    assert stage_bodies, "no stage ran on the remote engine"
    for body in bodies:
        host = body.get("HostConfig", {})
        assert not host.get("Binds"), host
        assert all(mount["Type"] == "volume" for mount in host.get("Mounts") or []), host
    assert seen, "no stage container was seen on the remote engine"
    for host in seen.values():
        assert not host.get("Binds"), host
        assert all(mount["Type"] == "volume" for mount in host.get("Mounts") or []), host

    # Each input (ONNX, calibration array, HARs) went to the remote engine once, however
    # many stages and targets read it: one upload per blob in its volume.
    puts = re.findall(
        r"Calling PUT /v[\d.]+/containers/\w+/archive\?path=%2Fblobs", remote.log.read_text()
    )
    blobs = _volume_files(remote.client())
    ran = {s["name"] for r in remote_records for s in r["stages"] if not s["cache_hit"]}
    assert "optimize" in ran, ran
    assert any(name.endswith(".npy") for name in blobs), blobs  # the calibration array
    # A parse may have run on either engine (the other then waits and takes it from the cache).
    assert ("parse" in ran) == any(name.endswith(".onnx") for name in blobs), (ran, blobs)
    assert len(puts) == len(blobs), (puts, blobs)

    # The same targets built on this machine alone give the same bytes.
    both = _artifacts(project)
    local = cli(
        "-m",
        m,
        "build",
        "fr_feature",
        "-b",
        "hailo",
        *TARGETS,
        "--suite-image",
        suite,
        "--engine",
        "local",
        "--force",
    )
    assert local.code in (0, 1), local.err
    assert {r["engine"] for r in _summary(project)} == {"local"}
    assert _artifacts(project) == both
    assert len(both) == 4 and all("standin_output" in a for a in both.values()), both


def test_engine_killed_mid_batch_is_rebuilt_on_the_other(
    calibrated_project: Path, cli: Cli, suite: str, doomed_remote: SecondEngine
) -> None:
    project, remote = calibrated_project, doomed_remote
    _use_engines(project, remote)
    add_models(
        project,
        slow_a={"alls_extra": ["# standin-sleep: optimize 6"]},
        slow_b={"alls_extra": ["# standin-sleep: optimize 6"]},
    )
    client = remote.client()
    killed: dict[str, str] = {}

    def killer() -> None:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            try:
                found = client.containers.list(filters={"label": "org.hailoc.stage=optimize"})
            except Exception:
                return
            if found:
                killed["model"] = found[0].labels["org.hailoc.model"]
                time.sleep(1)
                remote.kill()
                return
            time.sleep(0.1)

    thread = threading.Thread(target=killer, daemon=True)
    thread.start()
    m = str(project / "models.yaml")
    res = cli(
        "-m",
        m,
        "build",
        "slow_a",
        "slow_b",
        "-b",
        "hailo",
        "-p",
        "int8",
        "--suite-image",
        suite,
        "--skip-gate",
    )
    thread.join(timeout=300)
    assert killed, "no optimize stage ran on the remote engine"
    rows = {r["model"]: r for r in _summary(project)}
    assert res.code == 0, res.err + json.dumps(rows, indent=1)
    assert all(r["status"] == "ok" and r["engine"] == "local" for r in rows.values()), rows
    lost = rows[killed["model"]]
    assert lost["requeued_from"] == "remote"
    record = json.loads(
        (project / "hef" / killed["model"] / "hailo8" / "int8" / "record.json").read_text()
    )
    assert record["requeued_from"] == "remote" and record["engine"] == "local"


def test_ctrl_c_stops_the_containers_on_every_engine(
    calibrated_project: Path, suite: str, remote: SecondEngine
) -> None:
    import signal

    project = calibrated_project
    _use_engines(project, remote)
    slow = {"alls_extra": ["# standin-sleep: optimize 120"]}
    add_models(project, slow1=slow, slow2=slow)
    local, far = engine_or_skip(), remote.client()
    proc = start_hailoc(project, "build", "slow1", "slow2", "-b", "hailo", "--suite-image", suite)
    stage = {"label": "org.hailoc.stage=optimize"}
    deadline = time.monotonic() + 180
    while not (local.containers.list(filters=stage) and far.containers.list(filters=stage)):
        assert time.monotonic() < deadline, "no optimize stage on both engines"
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
        time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    code = proc.wait(timeout=120)
    err = proc.stderr.read() if proc.stderr else ""
    assert code == 130, err
    assert "Traceback" not in err
    for client in (local, far):
        for model in ("slow1", "slow2"):
            labels = {"label": f"org.hailoc.model={model}"}
            assert not client.containers.list(all=True, filters=labels)
    rows = _summary(project)
    assert {r["model"] for r in rows} == {"slow1", "slow2"}
    assert {r["failure_class"] for r in rows} == {"interrupted"}
