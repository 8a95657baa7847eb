"""Run one worker stage in a container: mounts, user, logs, timeout, kill on Ctrl-C."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

WORK = "/local/workspace/work"
NON_ROOT_UID = 10001


@dataclass(frozen=True)
class Mount:
    """A host folder bound into the container."""

    host: Path
    target: str
    read_only: bool = True


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
    from docker.errors import APIError, DockerException

    filters = {"label": [f"{k}={v}" for k, v in labels.items()]}
    try:
        found = client.containers.list(all=True, filters=filters)
    except DockerException:
        return 0
    for container in found:
        with contextlib.suppress(APIError):
            container.remove(force=True)
    return len(found)


def run_stage(
    client: Any,
    image: str,
    job: dict[str, Any],
    workdir: Path,
    mounts: list[Mount],
    *,
    files: dict[str, bytes] | None = None,
    timeout: float,
    gpus: bool,
    gpu_index: int | None = None,
    on_line: Callable[[str], None],
    labels: dict[str, str] | None = None,
) -> StageOutcome:
    """Run the worker on `job` (written to workdir/job.json) and collect its result."""
    import requests
    from docker.types import DeviceRequest

    prepare_workdir(workdir, files)
    job_path = workdir / "job.json"
    job_path.write_text(json.dumps(job, indent=1), encoding="utf-8")
    volumes = {
        str(m.host.resolve()): {"bind": m.target, "mode": "ro" if m.read_only else "rw"}
        for m in mounts
    }
    volumes[str(workdir.resolve())] = {"bind": WORK, "mode": "rw"}
    environment = {"HOME": "/tmp"}
    if not gpus:
        environment["CUDA_VISIBLE_DEVICES"] = ""
    container = client.containers.run(
        image,
        command=[f"{WORK}/job.json"],
        detach=True,
        volumes=volumes,
        user=container_user(),
        environment=environment,
        network_disabled=True,
        labels={"org.hailoc": "stage", **(labels or {})},
        device_requests=[_gpu_request(DeviceRequest, gpu_index)] if gpus else None,
        # The optimizer calibrates in subprocesses that share memory through /dev/shm; the
        # suite's own run scripts give it 4g or more (DFC_NOTES: the suite container).
        shm_size="4g",
    )
    tail: deque[str] = deque(maxlen=40)

    def pump() -> None:
        buffer = b""
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

    reader = threading.Thread(target=pump, daemon=True)
    reader.start()
    timed_out = False
    engine_lost = False
    exit_code: int | None = None
    try:
        try:
            exit_code = int(container.wait(timeout=timeout)["StatusCode"])
        except (requests.exceptions.ReadTimeout, requests.exceptions.ConnectionError):
            # The SDK reports a wait timeout and a vanished engine alike: ask the engine.
            if _alive(client):
                timed_out = True
                _kill(container)
                container.wait(timeout=60)
            else:
                engine_lost = True
    except BaseException:
        _kill(container)  # Ctrl-C or anything else: never leave a DFC container running
        raise
    finally:
        reader.join(timeout=10)
        state = _state(container)
        _remove(container)
    result_path = workdir / "out" / "result.json"
    result = None
    if result_path.is_file():
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


def _gpu_request(request_type: Any, index: int | None) -> Any:
    if index is None:
        return request_type(count=-1, capabilities=[["gpu"]])
    return request_type(device_ids=[str(index)], capabilities=[["gpu"]])


def _alive(client: Any) -> bool:
    try:
        client.ping()
    except Exception:  # any failure to answer is a lost engine
        return False
    return True


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
