"""Run one worker stage in a container: its files, user, logs, timeout, kill on Ctrl-C."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from hailoc.backends.hailo.transfer import BLOB_VOLUME, BlobStore, download_dir, stage_archive

log = logging.getLogger(__name__)

WORK = "/local/workspace/work"
BLOBS = "/local/workspace/blobs"  # the engine's blob volume, for engines without host files
NON_ROOT_UID = 10001
ALIVE_TIMEOUT = 20  # seconds an engine has to answer "are you there?"


@dataclass
class StageOutcome:
    """What happened to a stage container, as the host saw it."""

    result: dict[str, Any] | None
    exit_code: int | None
    timed_out: bool = False
    engine_lost: bool = False  # the Docker engine stopped answering mid-stage
    oom_killed: bool = False
    memory_limit: str | None = None
    log_tail: list[str] = field(default_factory=list)


def container_user() -> str:
    """Run as the invoking user, or as an unprivileged uid when hailoc itself runs as root."""
    uid = os.getuid()
    if uid == 0:
        return f"{NON_ROOT_UID}:{NON_ROOT_UID}"
    return f"{uid}:{os.getgid()}"


def prepare_workdir(path: Path, files: dict[str, bytes] | None = None) -> None:
    """Create the writable work folder (owned by the container's non-root user when hailoc runs
    as root) holding the host-prepared input `files`."""
    path.mkdir(parents=True, exist_ok=True)
    if os.getuid() == 0:
        os.chown(path, NON_ROOT_UID, NON_ROOT_UID)
    for name, data in (files or {}).items():
        (path / name).write_bytes(data)
        (path / name).chmod(0o644)


def kill_labelled(client: Any, labels: dict[str, str]) -> int:
    """Kill and remove every container carrying all `labels`; how many there were."""
    filters = {"label": [f"{k}={v}" for k, v in labels.items()]}
    try:
        found = client.containers.list(all=True, filters=filters)
    except _engine_errors():  # an engine that is down has nothing left to stop
        return 0
    for container in found:
        with contextlib.suppress(*_engine_errors()):
            container.remove(force=True)
    return len(found)


@dataclass(frozen=True)
class StageFiles:
    """What one stage reads: inputs by container path (host file and its sha256) and the
    small files of its work folder (job.json among them)."""

    inputs: dict[str, tuple[Path, str]]
    work: dict[str, bytes]


@dataclass(frozen=True)
class StageRun:
    """One stage container to run: the engine and image, the files it reads, and how."""

    client: Any
    image: str
    files: StageFiles
    blobs: BlobStore | None  # set for engines without this host's files
    timeout: float
    gpus: bool
    gpu_index: int | None = None
    labels: dict[str, str] = field(default_factory=dict)


# What the Hailo backend calls to run a stage: `run_stage`, or a fake in unit tests.
ContainerRunner = Callable[[StageRun, Path, Callable[[str], None]], StageOutcome]


def run_stage(run: StageRun, workdir: Path, on_line: Callable[[str], None]) -> StageOutcome:
    """Run the worker on the job in `run.files` and collect its result and outputs in
    `workdir`, each log line to `on_line`.

    With `blobs` (an engine without this host's files) nothing is bind-mounted: inputs live
    in the engine's blob volume and files travel as archives; else host files are mounted.
    """
    from docker.types import DeviceRequest

    client, files, blobs = run.client, run.files, run.blobs
    environment = {"HOME": "/tmp"}
    if not run.gpus:
        environment["CUDA_VISIBLE_DEVICES"] = ""
    workdir.mkdir(parents=True, exist_ok=True)
    common: dict[str, Any] = {
        "command": [f"{WORK}/job.json"],
        "environment": environment,
        "network_disabled": True,
        "labels": {"org.hailoc": "stage", **run.labels},
        "device_requests": [_gpu_request(DeviceRequest, run.gpu_index)] if run.gpus else None,
        # The optimizer calibrates in subprocesses that share memory through /dev/shm; the
        # suite's own run scripts give it 4g or more (DFC_NOTES: the suite container).
        "shm_size": "4g",
    }
    try:
        if blobs is None:
            container = _create_mounted(client, run.image, workdir, files, common)
        else:
            container = _create_copied(client, run.image, files, blobs, common)
        container.start()
    except _engine_errors():
        if _alive(client):
            raise
        return StageOutcome(result=None, exit_code=None, engine_lost=True)
    tail: deque[str] = deque(maxlen=40)
    reader = threading.Thread(target=_pump, args=(container, tail, on_line), daemon=True)
    reader.start()
    try:
        exit_code, timed_out, engine_lost = _wait(client, container, run.timeout)
        if blobs is not None and not engine_lost:
            engine_lost = _download(client, container.id, workdir)
    except BaseException:
        _kill(container)  # Ctrl-C or anything else: never leave a DFC container running
        raise
    finally:
        reader.join(timeout=10)
        state = _state(container)
        _remove(container)
    result_path = workdir / "out" / "result.json"
    result = None
    if result_path.is_file() and not engine_lost:
        try:
            result = json.loads(result_path.read_text(encoding="utf-8"))
        except ValueError:
            result = None
    limit = state.get("MemoryLimit")
    return StageOutcome(
        result=result,
        exit_code=None if timed_out else exit_code,
        timed_out=timed_out,
        engine_lost=engine_lost,
        oom_killed=bool(state.get("OOMKilled")),
        memory_limit=str(limit) if limit else None,
        log_tail=list(tail),
    )


def _pump(container: Any, tail: deque[str], on_line: Callable[[str], None]) -> None:
    """Follow the container's log stream line by line (keeping the last lines)."""
    buffer = b""
    with contextlib.suppress(*_engine_errors()):
        for chunk in container.logs(stream=True, follow=True):
            buffer += chunk
            *lines, buffer = buffer.split(b"\n")
            for raw in lines:
                line = raw.decode("utf-8", "replace")
                tail.append(line)
                on_line(line)
    if buffer:
        line = buffer.decode("utf-8", "replace")
        tail.append(line)
        on_line(line)


def _wait(client: Any, container: Any, timeout: float) -> tuple[int | None, bool, bool]:
    """(exit code, timed out, engine lost) once the container ends or `timeout` passes."""
    import requests

    try:
        return int(container.wait(timeout=timeout)["StatusCode"]), False, False
    except _engine_errors() as exc:
        # The SDK reports a wait timeout and a vanished engine alike (a read timeout, a
        # refused or cut connection, a truncated response): ask the engine.
        if not _alive(client):
            return None, False, True
        if isinstance(exc, requests.exceptions.ReadTimeout | requests.exceptions.ConnectionError):
            _kill(container)
            container.wait(timeout=60)
            return None, True, False
        raise


def _download(client: Any, container_id: str, workdir: Path) -> bool:
    """Copy out/ and cwd/ back from an engine without this host's files; True when the
    engine was lost on the way."""
    try:
        download_dir(client, container_id, f"{WORK}/out", workdir)
        download_dir(client, container_id, f"{WORK}/cwd", workdir)
    except _engine_errors():
        if not _alive(client):
            return True
        raise
    return False


def _create_mounted(
    client: Any, image: str, workdir: Path, files: StageFiles, common: dict[str, Any]
) -> Any:
    """A container that sees host files through read-only binds (the engine shares them)."""
    prepare_workdir(workdir, files.work)
    volumes = {
        str(host.resolve()): {"bind": path, "mode": "ro"}
        for path, (host, _) in files.inputs.items()
    }
    volumes[str(workdir.resolve())] = {"bind": WORK, "mode": "rw"}
    return client.containers.create(image, volumes=volumes, user=container_user(), **common)


def _create_copied(
    client: Any, image: str, files: StageFiles, blobs: BlobStore, common: dict[str, Any]
) -> Any:
    """A container with no bind mount: inputs from the engine's blob volume (sent there once),
    its work folder uploaded as an archive."""
    from docker.types import Mount as VolumeMount

    names = {path: f"{sha}{PurePosixPath(path).suffix}" for path, (_, sha) in files.inputs.items()}
    blobs.ensure({names[path]: host for path, (host, _) in files.inputs.items()})
    container = client.containers.create(
        image,
        user=f"{NON_ROOT_UID}:{NON_ROOT_UID}",
        mounts=[VolumeMount(BLOBS, BLOB_VOLUME, type="volume", read_only=True)],
        **common,
    )
    archive = stage_archive(
        WORK,
        files.work,
        {path: f"{BLOBS}/{name}" for path, name in names.items()},
        NON_ROOT_UID,
    )
    if not client.api.put_archive(container.id, "/", archive):
        _remove(container)
        raise OSError("the engine refused the stage's files")
    return container


def _gpu_request(request_type: Any, index: int | None) -> Any:
    if index is None:
        return request_type(count=-1, capabilities=[["gpu"]])
    return request_type(device_ids=[str(index)], capabilities=[["gpu"]])


def _alive(client: Any) -> bool:
    """Does the engine answer a ping within seconds (not the client's long upload timeout)?"""
    try:
        response = client.api.get(client.api._url("/_ping"), timeout=ALIVE_TIMEOUT)
    except Exception:  # any failure to answer is a lost engine
        return False
    return bool(response.status_code == 200)


# What a vanished engine raises besides the SDK's own errors.
def _engine_errors() -> tuple[type[BaseException], ...]:
    import requests
    from docker.errors import DockerException

    return (DockerException, requests.exceptions.RequestException)


def _kill(container: Any) -> None:
    with contextlib.suppress(*_engine_errors()):
        container.kill()


def _state(container: Any) -> dict[str, Any]:
    try:
        container.reload()
        state = dict(container.attrs.get("State", {}))
        memory = container.attrs.get("HostConfig", {}).get("Memory")
        if memory:
            state["MemoryLimit"] = f"{int(memory) / 2**30:.1f} GiB"
        return state
    except _engine_errors():
        return {}


def _remove(container: Any) -> None:
    with contextlib.suppress(*_engine_errors()):
        container.remove(force=True)
