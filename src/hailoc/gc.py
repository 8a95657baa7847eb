"""Find (and remove) what a killed hailoc run left: each item names its owner process."""

from __future__ import annotations

import json
import os
import shutil
import socket
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from hailoc.cache import StageCache, blob_intact, quarantine_blob
from hailoc.manifest import LoadedManifest
from hailoc.owned_files import MARKER


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
    """Stale work and staging folders (and containers) of dead hailoc processes, and cache
    entries earlier runs moved aside as damaged."""
    found = Garbage()
    for path in _stale_folders(manifest):
        found.items.append(str(path))
        if remove:
            shutil.rmtree(path, ignore_errors=True)
    for path in StageCache(manifest.cache_dir).damaged():
        found.items.append(f"damaged cache entry {path} ({_damage_reason(path)})")
        if remove and path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        elif remove:
            path.unlink(missing_ok=True)
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


def _damage_reason(path: Path) -> str:
    if path.parent.name == "blobs":
        return "its bytes did not hash to its name"
    try:
        return (path / "damage.txt").read_text(encoding="utf-8").strip()
    except OSError:
        return "reason not recorded"


@dataclass
class CacheCheck:
    """`hailoc gc --verify`: every entry and blob hashed."""

    entries: int = 0
    blobs: int = 0
    bytes: int = 0
    damaged: list[str] = field(default_factory=list)


def verify_cache(manifest: LoadedManifest, *, fix: bool) -> CacheCheck:
    """Hash every cache entry and blob against its index (its name, for a blob); with `fix`,
    move the damaged ones aside under damaged/ (the next build produces them again)."""
    cache = StageCache(manifest.cache_dir)
    found = CacheCheck()
    for kind, key, folder in list(cache.entries()):
        found.entries += 1
        found.bytes += sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
        reason = cache.verify(folder, full=True)
        if reason is not None:
            found.damaged.append(f"{kind} {key}: {reason}")
            if fix:
                cache.quarantine(kind, key, reason)
    blobs = manifest.cache_dir / "blobs"
    for blob in sorted(blobs.iterdir()) if blobs.is_dir() else []:
        if not blob.is_file() or blob.name.startswith("."):
            continue
        found.blobs += 1
        found.bytes += blob.stat().st_size
        if not blob_intact(blob):
            found.damaged.append(f"blob {blob.name}: its bytes do not hash to its name")
            if fix:
                quarantine_blob(blob, cache.root)
    return found


def cache_size(manifest: LoadedManifest) -> tuple[int, int]:
    """Bytes under the cache, and entries moved aside as damaged."""
    root = manifest.cache_dir
    size = sum(p.stat().st_size for p in root.rglob("*") if p.is_file()) if root.is_dir() else 0
    return size, len(StageCache(root).damaged())
