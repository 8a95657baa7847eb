"""Content-addressed stage cache: a stage's outputs keyed by a hash of exactly its inputs.

One key function serves every producer (builds of both backends, the auto search, the fp32
reference), so equal inputs always meet the same entry (DVC's stage cache is the model).
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path

from hailoc.fsutil import atomic_write_text


def cache_key(step: str, inputs: Mapping[str, object]) -> str:
    """sha256 over the step name and its inputs (hashes, settings, versions) in canonical JSON."""
    blob = json.dumps({"stage": step, "inputs": inputs}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()


@dataclass(frozen=True)
class CachedFailure:
    """A stage that failed on a 16-bit wall: the DFC gives the same answer to the same inputs,
    so the failure is kept like an output and replayed instead of run again."""

    failure_class: str
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
                failure_class=str(data["failure_class"]),
                message=str(data["message"]),
                hint=str(data["hint"]),
                error_type=data.get("error_type"),
                detail=data.get("detail"),
                logs={str(k): str(v) for k, v in dict(data.get("logs") or {}).items()},
            )
        except (ValueError, KeyError, TypeError, AttributeError):
            return None


@dataclass(frozen=True)
class StageCache:
    """Completed stage outputs under `<root>/<stage>/<key>/`; an entry exists only whole."""

    root: Path

    def entry(self, stage: str, key: str) -> Path:
        """Folder of a cache entry (which may not exist)."""
        return self.root / stage / key

    def lookup(self, stage: str, key: str) -> Path | None:
        """The entry folder when a completed entry exists."""
        path = self.entry(stage, key)
        return path if (path / "stage.json").is_file() else None

    def failure(self, stage: str, key: str) -> CachedFailure | None:
        """The wall this stage hit under `key`, when one was kept."""
        path = self.root / "walls" / stage / f"{key}.json"
        try:
            return CachedFailure.from_json(path.read_text(encoding="utf-8"))
        except OSError:
            return None

    def store_failure(self, stage: str, key: str, failure: CachedFailure) -> None:
        """Keep a wall's failure under `key` (one atomic write)."""
        path = self.root / "walls" / stage / f"{key}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(path, json.dumps(asdict(failure), indent=1))

    def store(
        self, stage: str, key: str, files: Mapping[str, Path], meta: Mapping[str, object]
    ) -> Path:
        """Copy `files` into a new entry and publish it with one rename."""
        final = self.entry(stage, key)
        final.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{key[:12]}.", dir=final.parent))
        try:
            # Entries are mounted read-only into containers that run as another, unprivileged
            # user: they must be world-readable (mkdtemp makes 0700).
            staging.chmod(0o755)
            for name, src in files.items():
                (staging / name).parent.mkdir(mode=0o755, parents=True, exist_ok=True)
                shutil.copyfile(src, staging / name)
                (staging / name).chmod(0o644)
            atomic_write_text(staging / "stage.json", json.dumps(meta, indent=1, default=str))
            try:
                staging.rename(final)
            except OSError:
                # Another process published the same key first: identical inputs, keep theirs.
                if self.lookup(stage, key) is None:
                    raise
                shutil.rmtree(staging, ignore_errors=True)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        return final
