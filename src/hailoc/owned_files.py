"""Files hailoc writes: atomic writes, hashing, and folders published whole by one rename.

hailoc never deletes or replaces what it did not write. Every folder it publishes carries a
marker listing its files; an existing folder without one (or holding files the marker does
not list) is refused, not replaced.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
import tempfile
import uuid
from pathlib import Path

from hailoc.errors import HailocError

_CHUNK = 1 << 20
MARKER = ".hailoc-output"
# Files hailoc 0.1 wrote into a build folder before markers existed.
_LEGACY_SUFFIXES = (".json", ".log", ".md", ".png", ".alls", ".hef", ".standin-not-a-hef", ".onnx")


class NotOurs(HailocError):
    """An output path holds something hailoc did not write."""


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write `data` to `path` through a temp file in the same folder and a rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        # mkstemp creates 0600; outputs are shared artifacts (and container inputs).
        Path(tmp).chmod(0o644)
        Path(tmp).replace(path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    """Write UTF-8 `text` to `path` atomically."""
    atomic_write_bytes(path, text.encode("utf-8"))


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def owner_stamp() -> dict[str, object]:
    """Who is writing: lets `hailoc gc` tell a live run's folders from a dead one's."""
    return {"written_by": "hailoc", "pid": os.getpid(), "host": socket.gethostname()}


def _listed(folder: Path) -> set[str]:
    """Every file below `folder`, as relative POSIX paths (the marker excluded)."""
    return {
        p.relative_to(folder).as_posix()
        for p in folder.rglob("*")
        if (p.is_file() or p.is_symlink()) and p.name != MARKER
    }


def _marker_files(folder: Path) -> set[str] | None:
    try:
        data = json.loads((folder / MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    files = data.get("files") if isinstance(data, dict) else None
    return {str(f) for f in files} if isinstance(files, list) else None


def _legacy_owned(folder: Path) -> bool:
    if not (folder / "record.json").is_file():
        return False
    return all(name.endswith(_LEGACY_SUFFIXES) for name in _listed(folder))


def check_replaceable(path: Path, *, what: str, force_file: bool = False) -> None:
    """Refuse (exit 2) to replace `path` unless hailoc wrote it.

    A folder is hailoc's when its marker lists every file in it. A plain file may be replaced
    only with `force_file` (`--force`); a symlink never is.
    """
    if path.is_symlink():
        raise NotOurs(
            f"{path} is a symbolic link; hailoc writes only real paths",
            where=what,
            fix="give the link's target, or another path",
        )
    if not path.exists():
        return
    if path.is_dir():
        listed = _marker_files(path)
        if listed is None and not _legacy_owned(path):
            raise NotOurs(
                f"{path} is a folder hailoc did not create; it is never replaced",
                where=what,
                fix="give a new or empty path",
            )
        extra = sorted(_listed(path) - (listed or set())) if listed is not None else []
        if extra:
            shown = ", ".join(extra[:3]) + (" ..." if len(extra) > 3 else "")
            raise NotOurs(
                f"{path} holds files hailoc did not write ({shown})",
                where=what,
                fix="move those files out, or give another path",
            )
        return
    if not force_file:
        raise NotOurs(
            f"{path} already exists", where=what, fix="pass --force to replace it, or another path"
        )


def staging_sibling(final: Path) -> Path:
    """A new hidden folder beside `final` to build its replacement in."""
    final.parent.mkdir(parents=True, exist_ok=True)
    path = final.parent / f".{final.name}.staging-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    path.mkdir()
    (path / MARKER).write_text(json.dumps(owner_stamp()), encoding="utf-8")
    return path


def publish_dir(staged: Path, final: Path, *, what: str, checked: bool = False) -> None:
    """Swap a complete staged folder into `final` (which must be hailoc's, or absent;
    `checked` when the caller has established that by its own rules)."""
    if not checked:
        check_replaceable(final, what=what)
    stamp = owner_stamp() | {"files": sorted(_listed(staged))}
    atomic_write_text(staged / MARKER, json.dumps(stamp, indent=1) + "\n")
    staged.chmod(0o755)
    if final.exists():
        old = final.parent / f".{final.name}.old-{uuid.uuid4().hex[:8]}"
        final.rename(old)
        staged.rename(final)
        shutil.rmtree(old, ignore_errors=True)
    else:
        staged.rename(final)


def add_owned_file(folder: Path, name: str, data: bytes) -> None:
    """Write `name` into a folder hailoc published and list it in the folder's marker."""
    atomic_write_bytes(folder / name, data)
    listed = _marker_files(folder)
    if listed is not None:
        stamp = owner_stamp() | {"files": sorted(listed | {name})}
        atomic_write_text(folder / MARKER, json.dumps(stamp, indent=1) + "\n")


def remove_staging(path: Path) -> None:
    """Remove a staging folder this process created (it carries our marker)."""
    if path.is_dir() and (path / MARKER).is_file():
        shutil.rmtree(path, ignore_errors=True)
