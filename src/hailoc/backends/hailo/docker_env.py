"""Docker engine and image checks: reach the daemon, find the suite, build hailoc's DFC image."""

from __future__ import annotations

import hashlib
import io
import json
import logging
import re
import tarfile
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from hailoc.cache import StageCache, cache_key
from hailoc.engines import LOCAL
from hailoc.errors import HailocError
from hailoc.manifest.schema import ARCH_FAMILIES, family_of

log = logging.getLogger(__name__)

WORKER_FILES = ("worker.py", "dfc.py")
CONTAINER_SRC = "src/hailoc/backends/hailo/worker"


class BackendUnavailable(HailocError):
    """The chosen backend cannot run on this machine right now."""


# Seconds one API call to a named engine may take: the SDK's 60 s default is shorter than
# sending a large ONNX over a slow link (250 MB at 10 Mbit/s is 200 s).
REMOTE_TIMEOUT = 1800


@dataclass(frozen=True)
class DockerTarget:
    """Which Docker engine to talk to: DOCKER_HOST-style URL, a named context, or the default."""

    host: str | None = None
    context: str | None = None


def connect(target: DockerTarget, name: str | None = None) -> Any:
    """A docker.DockerClient that has answered a ping, or BackendUnavailable with the fix."""
    import docker
    import requests
    from docker.errors import DockerException

    where = target.host or (f"context {target.context}" if target.context else "DOCKER_HOST")
    if name is not None and name not in (where, LOCAL):
        where = f"{where} (engine {name})"
    try:
        if target.host:
            # ssh:// goes through the system's ssh client (keys, agent, config) rather than
            # requiring paramiko.
            ssh = target.host.startswith("ssh://")
            client = docker.DockerClient(
                base_url=target.host, use_ssh_client=ssh, timeout=REMOTE_TIMEOUT
            )
        elif target.context:
            ctx = docker.ContextAPI.get_context(target.context)
            if ctx is None:
                raise BackendUnavailable(
                    f"no Docker context named {target.context!r}",
                    where="--docker-context",
                    fix="list contexts with `docker context ls`",
                )
            client = docker.DockerClient(
                base_url=ctx.Host, tls=ctx.TLSConfig, timeout=REMOTE_TIMEOUT
            )
        else:
            client = docker.from_env()
        client.ping()
    except BackendUnavailable:
        raise
    except (DockerException, requests.exceptions.RequestException) as exc:
        reason = _short_reason(exc)
        raise BackendUnavailable(
            f"cannot reach the Docker daemon at {where} ({reason})",
            where="backend hailo",
            fix="start Docker (e.g. `sudo systemctl start docker`), pass --docker-host, "
            "or use --backend onnxruntime",
        ) from None
    return client


def suite_image_id(client: Any, ref: str, engine: str = LOCAL) -> str:
    """The image id of the loaded suite image, or BackendUnavailable naming the load command."""
    from docker.errors import ImageNotFound

    try:
        return str(client.images.get(ref).id)
    except ImageNotFound:
        on = "" if engine == LOCAL else f" on engine {engine}"
        raise BackendUnavailable(
            f"suite image {ref} is not loaded in Docker{on}",
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


# Where suites keep the Python that has hailo_sdk_client (DFC_NOTES: the suite container);
# the first one that imports it is used.
PYTHON_CANDIDATES = (
    "/local/workspace/hailo_virtualenv/bin/python",
    "/local/workspace/hailo_venv/bin/python",
    "python3",
    "python",
)
_PROBE = """
for p in {candidates}; do
  if [ -x "$p" ] || command -v "$p" >/dev/null 2>&1; then
    if "$p" -c "import sys, hailo_sdk_client as h; print('HAILOC-DFC', sys.executable, \
getattr(h, '__version__', 'unknown'))" 2>/dev/null; then
      "$p" -c "import hailo_platform as r; print('HAILOC-HAILORT', getattr(r, '__version__', \
'unknown'))" 2>/dev/null || echo "HAILOC-HAILORT none"
      exit 0
    fi
  fi
done
echo HAILOC-DFC none
"""


@dataclass(frozen=True)
class SuiteInfo:
    """What a suite image holds, read once per image id by a probe container."""

    ref: str
    image_id: str
    python: str | None  # the interpreter that imports hailo_sdk_client
    dfc_version: str | None
    hailort_version: str | None

    @property
    def archs(self) -> tuple[str, ...]:
        """The hw_archs this DFC builds (its family); all when the version is unknown."""
        major = (self.dfc_version or "").split(".", 1)[0]
        if major in ("2", "3"):
            return ARCH_FAMILIES["hailo8"]
        if major in ("4", "5"):
            return ARCH_FAMILIES["hailo10h"]
        return tuple(a for family in ARCH_FAMILIES.values() for a in family)


def probe_suite(client: Any, ref: str, image_id: str, cache_dir: Path) -> SuiteInfo:
    """The suite's Python, DFC and HailoRT versions (cached by image id under cache_dir)."""
    cache = StageCache(cache_dir)
    key = cache_key("probe", {"image_id": image_id})
    cached = cache.read_bytes("probe", key, "probe.json")
    if cached is not None:
        try:
            data = json.loads(cached)
            return SuiteInfo(
                ref=ref,
                **{
                    k: data.get(k) for k in ("image_id", "python", "dfc_version", "hailort_version")
                },
            )
        except (OSError, ValueError, TypeError):
            pass  # a damaged entry is probed again
    script = _PROBE.format(candidates=" ".join(PYTHON_CANDIDATES))
    try:
        output = client.containers.run(
            ref,
            entrypoint=["/bin/sh", "-c", script],
            command=[],
            remove=True,
            network_disabled=True,
            environment={"HOME": "/tmp"},
            working_dir="/tmp",
        ).decode("utf-8", "replace")
    except Exception as exc:  # an image that cannot even start a shell
        raise BackendUnavailable(
            f"cannot run suite image {ref} ({_short_reason(exc)})",
            where="suite image",
            fix=f"check it starts: `docker run --rm {ref} sh -c true`",
        ) from None
    python = dfc = hailort = None
    for line in output.splitlines():
        fields = line.split()
        if fields[:1] == ["HAILOC-DFC"] and len(fields) >= 3:
            python, dfc = fields[1], fields[2]
        elif fields[:1] == ["HAILOC-HAILORT"] and len(fields) >= 2 and fields[1] != "none":
            hailort = fields[1]
    info = SuiteInfo(ref, image_id, python, dfc, hailort)
    if python is not None:
        found = {
            "image_id": image_id,
            "python": python,
            "dfc_version": dfc,
            "hailort_version": hailort,
        }
        cache.store("probe", key, {"probe.json": json.dumps(found).encode()})
    return info


def check_suite(info: SuiteInfo, hw_arch: str) -> None:
    """Refuse, before any stage runs, a suite that cannot build `hw_arch`."""
    if info.python is None:
        raise BackendUnavailable(
            f"suite image {info.ref} has no Python that imports hailo_sdk_client "
            f"(tried {', '.join(PYTHON_CANDIDATES)})",
            where="suite image",
            fix="load the Hailo AI Software Suite image (docker load -i ...) and name it in "
            "defaults.suite_image / suite_images",
        )
    if hw_arch not in info.archs:
        family = family_of(hw_arch)
        raise BackendUnavailable(
            f"suite image {info.ref} has DFC {info.dfc_version}, which builds "
            f"{', '.join(info.archs)}, not {hw_arch}",
            where="--hw-arch",
            fix=f"load a suite for the {family} family and map it in the manifest: "
            f"defaults.suite_images: {{{family}: <image>}}",
        )


def ensure_dfc_image(
    client: Any, suite_ref: str, suite_id: str, project_root: Path, python: str = "python3"
) -> str:
    """Tag of hailoc's DFC image for this suite and worker, built only when inputs changed."""
    from docker.errors import BuildError, ImageNotFound

    dockerfile = dockerfile_path(project_root).read_bytes()
    key = cache_key(
        "dfc_image",
        {
            "dockerfile_sha256": hashlib.sha256(dockerfile).hexdigest(),
            "worker_sha256": worker_digest(),
            "suite_image_id": suite_id,
            "python": python,
        },
    )
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
            buildargs={"SUITE_IMAGE": suite_ref, "WORKER_PYTHON": python},
            labels={"org.hailoc.suite": suite_ref, "org.hailoc.key": key},
            rm=True,
            pull=False,
            # Nothing in the Dockerfile downloads; engines may have no bridge network at all.
            network_mode="none",
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


def parse_gpu_list(text: str) -> tuple[int, ...]:
    """GPU indices from `nvidia-smi -L` ("GPU 0: NVIDIA A100 (UUID: ...)" per line)."""
    return tuple(int(m) for m in re.findall(r"^GPU (\d+):", text, flags=re.MULTILINE))


def list_gpus(client: Any, image: str) -> tuple[int, ...]:
    """The GPUs a container of `image` on this engine sees (`nvidia-smi -L`); raises when
    the probe cannot run."""
    from docker.types import DeviceRequest

    output = client.containers.run(
        image,
        entrypoint=["nvidia-smi", "-L"],
        command=[],
        remove=True,
        network_disabled=True,
        device_requests=[DeviceRequest(count=-1, capabilities=[["gpu"]])],
    )
    return parse_gpu_list(output.decode("utf-8", "replace"))


def probe_gpus(client: Any, image: str) -> tuple[int, ...]:
    """The GPUs a container on this engine sees; none when the probe fails."""
    try:
        return list_gpus(client, image)
    except Exception as exc:  # no driver, no nvidia-smi in the image: build on the CPU
        log.warning("the engine has the NVIDIA runtime but nvidia-smi failed (%s)", exc)
        return ()


def has_gpu_runtime(client: Any) -> bool:
    """True when the engine offers the NVIDIA runtime (so --gpus would work)."""
    runtimes = client.info().get("Runtimes") or {}
    return "nvidia" in runtimes
