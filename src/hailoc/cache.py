"""The project's one cache: outputs keyed by a hash of exactly their inputs, verified on read.

One key function and one store serve every producer (the stages of both backends, the fp32
references, aligned faces, suite probes, the auto search's memo, canonical graphs, walls), so
equal inputs always meet the same entry and every entry is checked the same way: each lists
the sha256 and size of its files, and one that no longer matches is moved aside, reported and
produced again (DVC's cache is the model: content-hashed, verified).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import logging
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from hailoc.errors import HailocError
from hailoc.failures import failure_class_of
from hailoc.owned_files import atomic_write_bytes, atomic_write_text, sha256_file
from hailoc.records.schema import FailureClassName

log = logging.getLogger(__name__)


def cache_key(step: str, inputs: Mapping[str, object]) -> str:
    """sha256 over the step name and its inputs (hashes, settings, versions) in canonical JSON."""
    blob = json.dumps({"stage": step, "inputs": inputs}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()


@dataclass(frozen=True)
class CachedFailure:
    """A stage that failed on a 16-bit wall: the DFC gives the same answer to the same inputs,
    so the failure is kept like an output and replayed instead of run again."""

    failure_class: FailureClassName
    message: str
    hint: str
    error_type: str | None = None
    detail: str | None = None
    logs: dict[str, str] = field(default_factory=dict)  # the DFC's logs (tails), by file name

    @classmethod
    def from_json(cls, text: str) -> CachedFailure | None:
        """The failure stored as JSON; None when it is not one."""
        try:
            data = json.loads(text)
            return cls(
                failure_class=failure_class_of(str(data["failure_class"])),
                message=str(data["message"]),
                hint=str(data["hint"]),
                error_type=data.get("error_type"),
                detail=data.get("detail"),
                logs={str(k): str(v) for k, v in dict(data.get("logs") or {}).items()},
            )
        except (ValueError, KeyError, TypeError, AttributeError):
            return None


@dataclass(frozen=True)
class Damage:
    """A cache entry that failed verification, and where it was moved."""

    kind: str
    key: str
    reason: str
    moved_to: Path | None

    def __str__(self) -> str:
        return f"{self.kind} {self.key[:12]}: {self.reason}"


ENTRY = "stage.json"  # an entry's index: its metadata and each file's sha256 and size
DAMAGED = "damaged"
# Top-level folders of the cache root that are not entry kinds.
NOT_KINDS = frozenset({DAMAGED, "blobs"})


@dataclass(frozen=True)
class StageCache:
    """The project's one cache: entries under `<root>/<kind>/<key>/`, each published whole and
    listing the sha256 and size of every file it holds. A lookup verifies the entry (sizes
    always; contents hashed once per cache object, so once per build); a damaged entry is
    moved to `<root>/damaged/` (never deleted), reported to `on_damage`, and missed."""

    root: Path
    on_damage: Callable[[Damage], None] | None = field(default=None, compare=False)
    # (file, size, mtime_ns) already hashed by this object: its contents matched.
    _hashed: set[tuple[Path, int, int]] = field(default_factory=set, compare=False, repr=False)

    def entry(self, kind: str, key: str) -> Path:
        """Folder of a cache entry (which may not exist)."""
        return self.root / kind / key

    def lookup(self, kind: str, key: str) -> Path | None:
        """The entry folder when a complete, verified entry exists."""
        path = self.entry(kind, key)
        if not (path / ENTRY).is_file():
            return None
        reason = self.verify(path)
        if reason is None:
            return path
        self.quarantine(kind, key, reason)
        return None

    def verify(self, path: Path, *, full: bool = False) -> str | None:
        """Why the entry at `path` cannot be trusted, or None. `full`: hash every file even
        when this object hashed it before (`hailoc gc --verify`)."""
        try:
            meta = json.loads((path / ENTRY).read_text(encoding="utf-8"))
            files = meta["files"]
            if not isinstance(files, dict):
                raise TypeError("files")
        except OSError as exc:
            return f"unreadable index: {exc.strerror}"
        except (ValueError, KeyError, TypeError):
            return "no checksums in its index (damaged, or written by an older hailoc)"
        for name, want in files.items():
            file = path / name
            try:
                stat = file.stat()
            except OSError:
                return f"{name} is missing"
            if stat.st_size != int(want["size"]):
                return f"{name} holds {stat.st_size} bytes, its index says {want['size']}"
            seen = (file, stat.st_size, stat.st_mtime_ns)
            if full or seen not in self._hashed:
                if sha256_file(file) != want["sha256"]:
                    return f"{name} does not hash to the sha256 its index lists"
                self._hashed.add(seen)
        return None

    def quarantine(self, kind: str, key: str, reason: str) -> Damage:
        """Move a damaged entry aside under damaged/ (the user may inspect it; `hailoc gc`
        reports and removes it) and report it."""
        source = self.entry(kind, key)
        target = self.root / DAMAGED / kind.replace("/", "_") / f"{key}-{time.time_ns()}"
        moved: Path | None = target
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            source.rename(target)
            atomic_write_text(target / "damage.txt", reason + "\n")
        except OSError:
            moved = None  # another process moved it first, or the disk refuses: missed anyway
        damage = Damage(kind, key, reason, moved)
        log.warning("cache entry damaged, moved aside: %s", damage)
        if self.on_damage is not None:
            self.on_damage(damage)
        return damage

    def failure(self, stage: str, key: str) -> CachedFailure | None:
        """The wall this stage hit under `key`, when one was kept."""
        data = self.read_bytes(f"walls/{stage}", key, "failure.json")
        return CachedFailure.from_json(data.decode()) if data is not None else None

    def store_failure(self, stage: str, key: str, failure: CachedFailure) -> None:
        """Keep a wall's failure under `key`, as an entry like any other."""
        data = json.dumps(asdict(failure), indent=1).encode()
        self.store(f"walls/{stage}", key, {"failure.json": data})

    def read_bytes(self, kind: str, key: str, name: str) -> bytes | None:
        """One file of a verified entry (None: no such entry, or it was damaged)."""
        path = self.lookup(kind, key)
        return (path / name).read_bytes() if path is not None else None

    def read_array(self, kind: str, key: str, name: str) -> npt.NDArray[Any] | None:
        """One .npy file of a verified entry as an array (None: no such entry, or damaged)."""
        found = self.read_bytes(kind, key, name)
        return None if found is None else np.load(io.BytesIO(found), allow_pickle=False)

    def store_array(self, kind: str, key: str, name: str, array: npt.NDArray[Any]) -> Path:
        """An entry holding one array as a .npy file (see `store`)."""
        buffer = io.BytesIO()
        np.save(buffer, np.ascontiguousarray(array), allow_pickle=False)
        return self.store(kind, key, {name: buffer.getvalue()})

    def store(
        self,
        kind: str,
        key: str,
        files: Mapping[str, Path | bytes],
        meta: Mapping[str, object] | None = None,
    ) -> Path:
        """Copy `files` (paths, or bytes) into a new entry and publish it with one rename;
        a full disk leaves no trace of it."""
        final = self.entry(kind, key)
        final.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{key[:12]}.", dir=final.parent))
        try:
            # Entries are mounted read-only into containers that run as another, unprivileged
            # user: they must be world-readable (mkdtemp makes 0700).
            staging.chmod(0o755)
            listed: dict[str, dict[str, object]] = {}
            for name, src in files.items():
                (staging / name).parent.mkdir(mode=0o755, parents=True, exist_ok=True)
                if isinstance(src, bytes):
                    (staging / name).write_bytes(src)
                else:
                    shutil.copyfile(src, staging / name)
                (staging / name).chmod(0o644)
                listed[name] = {
                    "sha256": sha256_file(staging / name),
                    "size": (staging / name).stat().st_size,
                }
            index = {**(meta or {}), "files": listed}
            atomic_write_text(staging / ENTRY, json.dumps(index, indent=1, default=str))
            try:
                staging.rename(final)
            except OSError:
                # Another process published the same key first: identical inputs, keep theirs
                # (unless theirs is damaged: then it is moved aside and ours takes its place).
                if self.lookup(kind, key) is None:
                    staging.rename(final)
                else:
                    shutil.rmtree(staging, ignore_errors=True)
                    return final
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        for name in listed:  # just hashed: a lookup by this object need not hash them again
            stat = (final / name).stat()
            self._hashed.add((final / name, stat.st_size, stat.st_mtime_ns))
        return final

    def blob(self, name: str, sha256: str, data: Callable[[], bytes]) -> Path:
        """The content-addressed blob `<root>/blobs/<name>` whose bytes hash to `sha256`:
        a damaged one is moved aside (reported like an entry) and written again; a missing
        one is written from `data()`, which runs only then."""
        path = self.root / "blobs" / name
        present = path.exists()
        if not check_blob(path, self.root) and present:
            damage = Damage("blobs", name, "its bytes do not hash to its name", None)
            log.warning("cache blob damaged, moved aside: %s", damage)
            if self.on_damage is not None:
                self.on_damage(damage)
        if not path.is_file():
            content = data()
            got = hashlib.sha256(content).hexdigest()
            if got != sha256:
                raise HailocError(
                    f"{name}: the source changed while hailoc read it (sha256 {got[:12]})",
                    where=str(path),
                    fix="run the command again",
                )
            atomic_write_bytes(path, content)
        return path

    def entries(self) -> Iterator[tuple[str, str, Path]]:
        """Every published entry: (kind, key, folder)."""
        if not self.root.is_dir():
            return
        for index in sorted(self.root.rglob(ENTRY)):
            folder = index.parent
            relative = folder.relative_to(self.root)
            if relative.parts[0] in NOT_KINDS or folder.name.startswith("."):
                continue
            yield str(relative.parent), folder.name, folder

    def damaged(self) -> list[Path]:
        """Entries moved aside as damaged, not yet removed."""
        root = self.root / DAMAGED
        return sorted(root.glob("*/*")) if root.is_dir() else []


def blob_intact(path: Path) -> bool:
    """Whether a blob holds exactly the bytes its name (`<sha256>.<ext>`) says."""
    return sha256_file(path) == path.name.split(".", 1)[0]


def quarantine_blob(path: Path, cache_root: Path) -> Path:
    """Move a blob whose bytes do not match its name under `cache_root/damaged/blobs/`."""
    target = cache_root / DAMAGED / "blobs" / f"{path.name}-{time.time_ns()}"
    target.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(FileNotFoundError):
        path.rename(target)
    log.warning("blob %s does not hash to its name: moved to %s", path.name, target)
    return target


def check_blob(path: Path, cache_root: Path) -> bool:
    """Whether the blob at `path` is there and intact; a damaged one is moved aside (the
    caller writes it again)."""
    if not path.is_file():
        return False
    if blob_intact(path):
        return True
    quarantine_blob(path, cache_root)
    return False
