"""Checks a real overnight Hailo run needs, each with its fix: `hailoc doctor` and the build's
own pre-flight (cached per suite image id)."""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from hailoc.backends.hailo import docker_env
from hailoc.engines import LOCAL, EngineSpec
from hailoc.errors import HailocError
from hailoc.gc import cache_size
from hailoc.manifest import LoadedManifest
from hailoc.manifest.schema import ARCH_FAMILIES

Level = Literal["ok", "warning", "fail"]
MIN_FREE_GB = 20.0
MIN_SHM_MB = 1024


@dataclass(frozen=True)
class Check:
    """One row of the doctor's table."""

    name: str
    level: Level
    detail: str
    fix: str = ""


def _free_gb(path: Path) -> float:
    probe = path
    while not probe.exists():
        probe = probe.parent
    return shutil.disk_usage(probe).free / 2**30


def _writable(path: Path) -> bool:
    probe = path
    while not probe.exists():
        probe = probe.parent
    try:
        with tempfile.NamedTemporaryFile(dir=probe, prefix=".hailoc-doctor-"):
            return True
    except OSError:
        return False


def _local(manifest: LoadedManifest) -> list[Check]:
    checks = []
    for label, path in (("hef/", manifest.hef_dir), (".hailoc/", manifest.state_dir)):
        free = _free_gb(path)
        checks.append(
            Check(
                f"disk under {label}",
                "ok" if free >= MIN_FREE_GB else "warning",
                f"{free:.1f} GB free",
                ""
                if free >= MIN_FREE_GB
                else f"free {MIN_FREE_GB:.0f} GB: HARs of big models are large",
            )
        )
        ok = _writable(path)
        checks.append(
            Check(
                f"write access to {label}",
                "ok" if ok else "fail",
                "writable" if ok else "not writable",
                "" if ok else f"fix the permissions of {path}",
            )
        )
    return checks


def _in_container(client: Any, image: str, script: str) -> tuple[int, str]:
    container = client.containers.run(
        image,
        entrypoint=["/bin/sh", "-c", script],
        command=[],
        detach=True,
        network_disabled=True,
        shm_size="4g",
        working_dir="/tmp",
    )
    try:
        code = int(container.wait(timeout=120)["StatusCode"])
        return code, container.logs().decode("utf-8", "replace")
    finally:
        container.remove(force=True)


def _suite(client: Any, manifest: LoadedManifest, family: str, ref: str) -> list[Check]:
    checks: list[Check] = []
    try:
        image_id = docker_env.suite_image_id(client, ref)
    except HailocError as exc:
        return [Check(f"suite image ({family})", "fail", f"{ref}: not loaded", exc.fix or "")]
    checks.append(Check(f"suite image ({family})", "ok", f"{ref} ({image_id[:19]})"))
    info = docker_env.probe_suite(client, ref, image_id, manifest.cache_dir)
    if info.python is None:
        checks.append(
            Check(
                f"hailo_sdk_client ({family})",
                "fail",
                f"no Python in {ref} imports it (tried {', '.join(docker_env.PYTHON_CANDIDATES)})",
                "load the Hailo AI Software Suite image, not a plain base image",
            )
        )
        return checks
    checks.append(Check(f"worker Python ({family})", "ok", info.python))
    builds = set(ARCH_FAMILIES[family]) <= set(info.archs)
    checks.append(
        Check(
            f"DFC ({family})",
            "ok" if builds else "fail",
            f"{info.dfc_version}; builds {', '.join(info.archs)}",
            "" if builds else f"map a suite of the {family} family in defaults.suite_images",
        )
    )
    checks.append(
        Check(
            f"HailoRT ({family})",
            "ok" if info.hailort_version else "warning",
            info.hailort_version or "not in the image",
            "" if info.hailort_version else "only needed to run HEFs on a device in this image",
        )
    )
    code, out = _in_container(client, ref, "df -m /dev/shm | tail -1")
    fields = out.split()
    shm = int(fields[1]) if code == 0 and len(fields) > 1 and fields[1].isdecimal() else 0
    checks.append(
        Check(
            f"/dev/shm in a stage ({family})",
            "ok" if shm >= MIN_SHM_MB else "fail",
            f"{shm} MB",
            "" if shm >= MIN_SHM_MB else "the engine refused shm_size=4g: check its configuration",
        )
    )
    return checks


def _gpu(client: Any, ref: str) -> Check:
    if not docker_env.has_gpu_runtime(client):
        return Check(
            "GPU",
            "warning",
            "the engine has no NVIDIA runtime: optimization runs on the CPU at level 0",
            "install the NVIDIA container toolkit for level-2 optimization (AdaRound, finetune)",
        )
    try:
        gpus = docker_env.list_gpus(client, ref)
    except Exception as exc:
        return Check(
            "GPU", "warning", f"nvidia-smi failed in a container ({exc})", "check the toolkit"
        )
    return Check("GPU", "ok" if gpus else "warning", f"{len(gpus)} visible in a container")


def cache_check(manifest: LoadedManifest) -> Check:
    """The cache's size and the damaged entries builds moved aside."""
    size, damaged = cache_size(manifest)
    return Check(
        "cache",
        "warning" if damaged else "ok",
        f"{size / 1e6:.1f} MB under {manifest.cache_dir}; {damaged} damaged entries moved aside",
        "`hailoc gc` removes them (`hailoc gc --verify` hashes every entry)" if damaged else "",
    )


def diagnose(manifest: LoadedManifest, engines: tuple[EngineSpec, ...] = ()) -> list[Check]:
    """Every check, in order, for each engine (this machine's default one when none is
    named); an engine that cannot be reached ends its own list early."""
    checks = [*_local(manifest), cache_check(manifest)]
    specs = engines or (EngineSpec(LOCAL),)
    for spec in specs:
        prefix = f"{spec.name}: " if len(specs) > 1 or spec.name != LOCAL else ""
        checks += [
            Check(f"{prefix}{c.name}", c.level, c.detail, c.fix) for c in _engine(manifest, spec)
        ]
    return checks


def _engine(manifest: LoadedManifest, spec: EngineSpec) -> list[Check]:
    try:
        client = docker_env.connect(docker_env.DockerTarget(spec.host, spec.context), spec.name)
    except HailocError as exc:
        return [Check("Docker engine", "fail", exc.message, exc.fix or "")]
    files = "files mounted" if spec.file_mode == "mount" else "files copied (no shared folders)"
    checks = [Check("Docker engine", "ok", f"{spec.host or spec.context or 'default'}, {files}")]
    defaults = manifest.data.defaults
    wanted: dict[str, str] = {"hailo8": defaults.suite_image}
    wanted.update({str(f): str(r) for f, r in defaults.suite_images.items()})
    wanted.update(spec.suite_images)
    for family, ref in wanted.items():
        checks += _suite(client, manifest, family, ref)
    if spec.gpus is not None:
        checks.append(Check("GPU", "ok", f"configured: {list(spec.gpus)}"))
    else:
        checks.append(_gpu(client, wanted["hailo8"]))
    client.close()
    return checks


def preflight(manifest: LoadedManifest) -> None:
    """The local checks a Hailo build cannot run without, as one-line errors before it starts."""
    for check in _local(manifest):
        if check.level == "fail":
            raise HailocError(check.detail, where=check.name, fix=check.fix)
