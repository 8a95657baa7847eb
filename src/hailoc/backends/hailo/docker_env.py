"""Docker engine and image checks: reach the daemon, find the suite, build hailoc's DFC image."""

from __future__ import annotations

import hashlib
import io
import logging
import re
import tarfile
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from hailoc.errors import HailocError

log = logging.getLogger(__name__)

WORKER_FILES = ("worker.py", "dfc.py")
CONTAINER_SRC = "src/hailoc/backends/hailo/worker"


class BackendUnavailable(HailocError):
    """The chosen backend cannot run on this machine right now."""


@dataclass(frozen=True)
class DockerTarget:
    """Which Docker engine to talk to: DOCKER_HOST-style URL, a named context, or the default."""

    host: str | None = None
    context: str | None = None


def connect(target: DockerTarget) -> Any:
    """A docker.DockerClient that has answered a ping, or BackendUnavailable with the fix."""
    import docker
    from docker.errors import DockerException

    where = target.host or (f"context {target.context}" if target.context else "DOCKER_HOST")
    try:
        if target.host:
            # ssh:// goes through the system's ssh client (keys, agent, config) rather than
            # requiring paramiko.
            ssh = target.host.startswith("ssh://")
            client = docker.DockerClient(base_url=target.host, use_ssh_client=ssh)
        elif target.context:
            ctx = docker.ContextAPI.get_context(target.context)
            if ctx is None:
                raise BackendUnavailable(
                    f"no Docker context named {target.context!r}",
                    where="--docker-context",
                    fix="list contexts with `docker context ls`",
                )
            client = docker.DockerClient(base_url=ctx.Host, tls=ctx.TLSConfig)
        else:
            client = docker.from_env()
        client.ping()
    except BackendUnavailable:
        raise
    except DockerException as exc:
        reason = _short_reason(exc)
        raise BackendUnavailable(
            f"cannot reach the Docker daemon at {where} ({reason})",
            where="backend hailo",
            fix="start Docker (e.g. `sudo systemctl start docker`), pass --docker-host, "
            "or use --backend onnxruntime",
        ) from None
    return client


def suite_image_id(client: Any, ref: str) -> str:
    """The image id of the loaded suite image, or BackendUnavailable naming the load command."""
    from docker.errors import ImageNotFound

    try:
        return str(client.images.get(ref).id)
    except ImageNotFound:
        raise BackendUnavailable(
            f"suite image {ref} is not loaded in Docker",
            where="defaults.suite_image",
            fix="docker load -i <suite>.tar.gz (e.g. hailo8_ai_sw_suite_2025-10.tar.gz), "
            "or pass --suite-image with a tag from `docker images`, "
            "or use --backend onnxruntime",
        ) from None


def _container_dir() -> Path:
    return Path(str(resources.files("hailoc.backends.hailo"))) / "worker"


def _short_reason(exc: BaseException) -> str:
    """The OS-level reason buried in requests/urllib3 wrappers, e.g. 'Connection refused'."""
    text = str(exc)
    found = re.findall(r"\[Errno -?\d+\] ([^'\")\]]+)", text)
    found = found or re.findall(r"\w+Error\(-?\d+, '([^']+)'\)", text)
    if found:
        return str(found[-1]).strip()
    return text.splitlines()[0][:160] if text else type(exc).__name__


def dockerfile_path(project_root: Path) -> Path:
    """The project's Dockerfile, else the copy shipped with hailoc."""
    candidates = [
        project_root / "Dockerfile",
        Path(str(resources.files("hailoc.backends.hailo"))) / "Dockerfile",
        # An editable install has no packaged copy: use the source checkout's.
        Path(__file__).resolve().parents[4] / "Dockerfile",
    ]
    for path in candidates:
        if path.is_file():
            return path
    raise HailocError(
        "no Dockerfile for the DFC image",
        where=str(project_root),
        fix="reinstall hailoc, or put hailoc's Dockerfile in the project folder",
    )


def worker_digest() -> str:
    """sha256 over the in-container worker's files: part of every stage's cache key."""
    digest = hashlib.sha256()
    for name in WORKER_FILES:
        digest.update((_container_dir() / name).read_bytes())
    return digest.hexdigest()


def _context_tar(dockerfile: bytes) -> io.BytesIO:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        members = {"Dockerfile": dockerfile}
        for name in WORKER_FILES:
            members[f"{CONTAINER_SRC}/{name}"] = (_container_dir() / name).read_bytes()
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o644
            tar.addfile(info, io.BytesIO(data))
    buffer.seek(0)
    return buffer


def ensure_dfc_image(client: Any, suite_ref: str, suite_id: str, project_root: Path) -> str:
    """Tag of hailoc's DFC image for this suite and worker, built only when inputs changed."""
    from docker.errors import BuildError, ImageNotFound

    dockerfile = dockerfile_path(project_root).read_bytes()
    key = hashlib.sha256(dockerfile + worker_digest().encode() + suite_id.encode()).hexdigest()
    tag = f"hailoc-dfc:{key[:16]}"
    try:
        client.images.get(tag)
        return tag
    except ImageNotFound:
        pass
    log.info("building %s from %s", tag, suite_ref)
    try:
        client.images.build(
            fileobj=_context_tar(dockerfile),
            custom_context=True,
            tag=tag,
            buildargs={"SUITE_IMAGE": suite_ref},
            labels={"org.hailoc.suite": suite_ref, "org.hailoc.key": key},
            rm=True,
            pull=False,
        )
    except BuildError as exc:
        tail = " | ".join(
            str(c.get("stream", c.get("error", ""))).strip() for c in list(exc.build_log)[-3:]
        )
        raise BackendUnavailable(
            f"building hailoc's DFC image from {suite_ref} failed: {exc.msg} ({tail[:300]})",
            where="Dockerfile",
            fix="check that the suite image runs (`docker run --rm SUITE python3 -V`)",
        ) from None
    return tag


def has_gpu_runtime(client: Any) -> bool:
    """True when the engine offers the NVIDIA runtime (so --gpus would work)."""
    runtimes = client.info().get("Runtimes") or {}
    return "nvidia" in runtimes
