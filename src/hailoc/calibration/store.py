"""Calibration sets on disk: calibration/<name>/ with calib.npy, eval.npy, manifest, preview."""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hailoc.calibration.images import list_images
from hailoc.errors import HailocError
from hailoc.manifest.schema import is_safe_name
from hailoc.owned_files import MARKER, NotOurs, publish_dir, sha256_file, staging_sibling

MANIFEST = "manifest.json"
CALIB = "calib.npy"
EVAL = "eval.npy"
PREVIEW = "preview.png"
HISTORY = ".history"


@dataclass(frozen=True)
class CalibSet:
    """A finished set and its manifest."""

    name: str
    path: Path
    manifest: dict[str, Any]

    @property
    def calib(self) -> Path:
        """The calibration array (N, 112, 112, 3) uint8 RGB."""
        return self.path / CALIB

    @property
    def eval(self) -> Path | None:
        """The held-out evaluation faces, when the set was built with --eval-split."""
        path = self.path / EVAL
        return path if path.is_file() else None

    @property
    def version(self) -> int:
        """Incremented each time the set's content changes."""
        return int(self.manifest.get("version", 1))


def open_set(root: Path, name: str) -> CalibSet:
    """Load calibration/<name>; a missing or unreadable set is a one-line error."""
    if not is_safe_name(name):
        raise HailocError(
            f"set name {name!r} may only use letters, digits, '_', '-' and '.'",
            where="NAME",
            fix="use a set name from `hailoc calib list`",
        )
    path = root / name
    manifest_path = path / MANIFEST
    if not manifest_path.is_file():
        raise HailocError(
            f"calibration set {name!r} not found at {path}",
            where=f"calibration/{name}",
            fix=f"build it with `hailoc calib build {name} --images DIR`",
        )
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise HailocError(
            f"unreadable set manifest: {exc}",
            where=str(manifest_path),
            fix=f"rebuild the set with `hailoc calib build {name} --images DIR`",
        ) from None
    return CalibSet(name, path, manifest)


def list_sets(root: Path) -> list[CalibSet]:
    """Every finished set under `root`, by name."""
    if not root.is_dir():
        return []
    return [
        open_set(root, p.name)
        for p in sorted(root.iterdir())
        if p.is_dir() and not p.name.startswith(".") and (p / MANIFEST).is_file()
    ]


def staging_dir(root: Path, name: str) -> Path:
    """A fresh hidden folder to build into (call with the set's lock held); the staging
    folders of killed builds of the same set are dropped: under the lock nobody else owns one."""
    for stale in root.glob(f".{name}.staging-*"):
        if (stale / MARKER).is_file():
            shutil.rmtree(stale, ignore_errors=True)
    return staging_sibling(root / name)


def _is_set(path: Path) -> bool:
    return (path / MANIFEST).is_file() or (path / MARKER).is_file()


def publish(staged: Path, root: Path, name: str, *, keep_previous: bool = True) -> Path:
    """Swap a complete staged set into calibration/<name>; the previous version goes to history."""
    final = root / name
    what = f"calibration/{name}"
    if final.is_symlink() or (final.exists() and not _is_set(final)):
        raise NotOurs(
            f"{final} exists and is not a calibration set hailoc built",
            where=what,
            fix="move it away or pick another set name",
        )
    if final.exists() and keep_previous:
        keep = root / HISTORY / name
        if keep.is_symlink() or (keep.exists() and not _is_set(keep)):
            raise NotOurs(f"{keep} is not a set hailoc kept", where=what, fix="move it away")
        if keep.exists():
            shutil.rmtree(keep)
        keep.parent.mkdir(parents=True, exist_ok=True)
        final.rename(keep)
    publish_dir(staged, final, what=what, checked=True)
    return final


@dataclass(frozen=True)
class Change:
    """One difference between a set's manifest and the files it was built from."""

    what: str
    path: str
    detail: str


def verify(calib_set: CalibSet, project_root: Path) -> list[Change]:
    """Compare recorded hashes with the files now on disk; empty when nothing changed."""
    changes: list[Change] = []
    for fname, info in calib_set.manifest.get("arrays", {}).items():
        path = calib_set.path / fname
        if not path.is_file():
            changes.append(Change("array missing", fname, "file is gone"))
        elif sha256_file(path) != info["sha256"]:
            changes.append(Change("array changed", fname, "sha256 differs from manifest.json"))
    images = _images_dir(calib_set, project_root)
    recorded: set[str] = set()
    for src in calib_set.manifest.get("sources", []):
        recorded.add(src["path"])
        path = images / src["path"]
        if not path.is_file():
            changes.append(Change("source missing", src["path"], f"not found under {images}"))
        elif sha256_file(path) != src["sha256"]:
            changes.append(Change("source changed", src["path"], "sha256 differs"))
    recorded |= {r["path"] for r in calib_set.manifest.get("rejected", [])}
    if images.is_dir():
        for rel in list_images(images).files:
            if rel not in recorded:
                changes.append(Change("source added", rel, "new file not in the set"))
    for key in ("detector", "landmarks"):
        info = calib_set.manifest.get("detector", {}).get(key)
        path = project_root / info["path"] if info else None
        if info and path and path.is_file() and sha256_file(path) != info["sha256"]:
            changes.append(Change("detector changed", info["path"], "sha256 differs"))
    return changes


def _images_dir(calib_set: CalibSet, project_root: Path) -> Path:
    images = Path(calib_set.manifest.get("params", {}).get("images", ""))
    return images if images.is_absolute() else project_root / images
