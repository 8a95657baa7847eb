"""Find (and remove) what a killed hailoc run left: each item names its owner process."""

from __future__ import annotations

import json
import os
import shutil
import socket
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from hailoc.fsutil import MARKER
from hailoc.manifest import LoadedManifest


@dataclass
class Garbage:
    """What was (or would be) removed, and why something could not be checked."""

    items: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _dead_owner(stamp: Path) -> bool:
    """True when `stamp` (owner.json or a marker) names a process of this host that is gone."""
    try:
        data = json.loads(stamp.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False  # not ours to judge
    if not isinstance(data, dict) or data.get("written_by") != "hailoc":
        return False
    if data.get("host") != socket.gethostname() or not isinstance(data.get("pid"), int):
        return False
    return not _alive(int(data["pid"]))


def _stale_folders(manifest: LoadedManifest) -> Iterator[Path]:
    work = manifest.work_dir
    if work.is_dir():
        for path in sorted(work.iterdir()):
            if path.is_dir() and _dead_owner(path / "owner.json"):
                yield path
    for root in (manifest.hef_dir, manifest.calibration_dir):
        if not root.is_dir():
            continue
        for path in sorted(root.rglob(".*.staging-*")):
            if path.is_dir() and _dead_owner(path / MARKER):
                yield path


def collect(manifest: LoadedManifest, *, remove: bool, containers: bool) -> Garbage:
    """Stale work and staging folders (and containers) of dead hailoc processes."""
    found = Garbage()
    for path in _stale_folders(manifest):
        found.items.append(str(path))
        if remove:
            shutil.rmtree(path, ignore_errors=True)
    if containers:
        _containers(found, remove)
    return found


def _containers(found: Garbage, remove: bool) -> None:
    try:
        import docker
        from docker.errors import DockerException

        client = docker.from_env()
        listed = client.containers.list(
            all=True, filters={"label": f"org.hailoc.host={socket.gethostname()}"}
        )
    except Exception as exc:  # no engine: nothing of ours can be running there
        found.notes.append(f"containers not checked: no Docker engine ({type(exc).__name__})")
        return
    for container in listed:
        pid = container.labels.get("org.hailoc.pid", "")
        if pid.isdecimal() and not _alive(int(pid)):
            found.items.append(
                f"container {container.name} ({container.labels.get('org.hailoc.stage')})"
            )
            if remove:
                try:
                    container.remove(force=True)
                except DockerException as exc:
                    found.notes.append(f"could not remove {container.name}: {exc}")
