"""StageRunner: every cached step of every backend runs through here.

Look the key up in the stage cache; on a miss (or when `--force`/`--from-stage` says so) run
the step in a private work folder, store its outputs as a new cache entry published whole,
and append the stage to the record. The work folder is removed whatever happens.
"""

from __future__ import annotations

import json
import shutil
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Literal

from hailoc.backends.protocol import StageFailure, StageOutput
from hailoc.cache import CachedFailure, Damage, StageCache
from hailoc.failures import WALL_CLASSES
from hailoc.locks import exclusive
from hailoc.options import BuildOptions
from hailoc.owned_files import owner_stamp
from hailoc.pipeline.progress import Reporter
from hailoc.records import BuildRecord, DamagedEntry, StageRecord
from hailoc.targets import BuildTarget

OWNER = "owner.json"
# Where the tools' own log files go in a build's folder (what Hailo support asks for).
LOGS_DIR = "dfc-logs"


def new_workdir(root: Path) -> Path:
    """A private scratch folder under .hailoc/work/, stamped with its owner for `hailoc gc`."""
    root.mkdir(parents=True, exist_ok=True)
    path = root / uuid.uuid4().hex[:12]
    path.mkdir()
    (path / OWNER).write_text(json.dumps(owner_stamp()), encoding="utf-8")
    return path


class BuildLog:
    """The lines of one build: kept for build.log and forwarded to the reporter."""

    def __init__(self, reporter: Reporter, target: BuildTarget) -> None:
        self.reporter = reporter
        self.target = target
        self.lines: list[str] = []
        self._lock = threading.Lock()

    def __call__(self, line: str) -> None:
        """Append one line."""
        with self._lock:
            self.lines.append(line)
        self.reporter.line(self.target, line)

    def text(self) -> str:
        """The whole log as build.log holds it."""
        return "\n".join(self.lines) + ("\n" if self.lines else "")


class StageRunner:
    """Runs one build's cached stages (implements the backends' `Stages` protocol)."""

    def __init__(
        self,
        *,
        cache: StageCache,
        work_root: Path,
        target: BuildTarget,
        stage_names: tuple[str, ...],
        options: BuildOptions,
        record: BuildRecord,
        log: BuildLog,
        reporter: Reporter,
        engine: str | None = None,
        gpu: int | None = None,
    ) -> None:
        self.cache = cache
        self.work_root = work_root
        self.target = target
        self.stage_names = stage_names
        self.options = options
        self.record = record
        self.log = log
        self.reporter = reporter
        self.engine = engine
        self.gpu = gpu
        # Tool logs of every stage (cached or run, passed or failed), published with the build.
        self.attachments: dict[str, Path | bytes] = {}

    def _attach(self, name: str, entry: Path) -> None:
        logs = entry / "logs"
        if logs.is_dir():
            for path in sorted(logs.iterdir()):
                self.attachments[f"{LOGS_DIR}/{name}/{path.name}"] = path

    def damaged(self, damage: Damage) -> None:
        """A damaged cache entry was moved aside: the record names it."""
        self.log(f"cache: damaged entry moved aside: {damage}")
        self.record.cache_damaged.append(
            DamagedEntry(
                kind=damage.kind,
                key=damage.key,
                reason=damage.reason,
                moved_to=str(damage.moved_to) if damage.moved_to else None,
            )
        )

    def phase(self, name: str) -> None:
        """An uncached step starts."""
        self.reporter.stage(self.target, name, False)
        self.log(f"== {name}")

    def run(self, name: str, key: str, produce: Callable[[Path], StageOutput]) -> Path:
        """The cache entry of stage `name` under `key`, produced on a miss."""
        rerun = self.options.rerun(name, self.stage_names)
        failure = None if rerun else self.cache.failure(name, key)
        if failure is not None:
            self._replay(name, key, failure)
        if not rerun and self.cache.lookup(name, key) is not None:
            return self._run(name, key, produce, rerun)
        # Builds that need the same stage at once (two precisions share a parse; two engines
        # build them) run it once: the others wait, then take the entry from the cache.
        # The lock lives outside the cache: a dot-file there would look like a half entry.
        with exclusive(
            self.cache.entry(name, key),
            what=f"the {name} stage",
            locks=self.cache.root.parent / "locks",
            on_wait=lambda: self.log(f"== {name}: waiting for another build running it"),
        ):
            return self._run(name, key, produce, rerun)

    def _cached(
        self,
        name: str,
        key: str,
        status: Literal["ok", "failed"],
        error_type: str | None = None,
        message: str | None = None,
    ) -> None:
        """A stage taken from the cache, in the record."""
        self.record.stages.append(
            StageRecord(
                name=name,
                status=status,
                cache_hit=True,
                cache_key=key,
                engine=self.engine,
                gpu=self.gpu,
                error_type=error_type,
                message=message,
            )
        )

    def _replay(self, name: str, key: str, failure: CachedFailure) -> None:
        """Raise the wall this stage hit before under the same key, as if it ran."""
        self.reporter.stage(self.target, name, True)
        self.log(f"== {name}: cached failure {key[:12]} ({failure.failure_class})")
        for log_name, text in failure.logs.items():
            self.attachments[f"{LOGS_DIR}/{name}/{log_name}"] = text.encode()
        self._cached(
            name,
            key,
            "failed",
            error_type=failure.error_type,
            message=failure.detail or failure.message,
        )
        raise StageFailure(
            failure.failure_class,
            failure.message,
            failure.hint,
            error_type=failure.error_type,
            detail=failure.detail,
            logs={n: t.encode() for n, t in failure.logs.items()},
        )

    def _run(
        self, name: str, key: str, produce: Callable[[Path], StageOutput], rerun: bool
    ) -> Path:
        # Checked again under the lock: the build it waited for may have met the wall.
        failure = None if rerun else self.cache.failure(name, key)
        if failure is not None:
            self._replay(name, key, failure)
        cached = None if rerun else self.cache.lookup(name, key)
        self.reporter.stage(self.target, name, cached is not None)
        if cached is not None:
            self.log(f"== {name}: cache hit {key[:12]}")
            self._cached(name, key, "ok")
            self._attach(name, cached)
            return cached
        self.log(f"== {name}: running (key {key[:12]})")
        workdir = new_workdir(self.work_root)
        started = time.monotonic()

        def done(status: Literal["ok", "failed"], **details: object) -> None:
            seconds = round(time.monotonic() - started, 3)
            self.record.stages.append(
                StageRecord.model_validate(
                    {
                        "name": name,
                        "status": status,
                        "seconds": seconds,
                        "cache_key": key,
                        "engine": self.engine,
                        "gpu": self.gpu,
                    }
                    | details
                )
            )

        try:
            output = produce(workdir)
            entry = self.cache.store(
                name, key, output.files, {"stage": name, "facts": output.facts}
            )
        except StageFailure as exc:
            for log_name, data in exc.logs.items():
                self.attachments[f"{LOGS_DIR}/{name}/{log_name}"] = data
            if exc.failure_class in WALL_CLASSES:
                self.cache.store_failure(name, key, _kept(exc))
            done(
                "failed",
                worker_seconds=exc.worker_seconds,
                peak_rss_mb=exc.peak_rss_mb,
                error_type=exc.error_type,
                message=exc.detail or exc.message,
                traceback_tail=list(exc.traceback_tail),
            )
            raise
        except BaseException as exc:
            done("failed", error_type=type(exc).__name__, message=str(exc)[:500] or None)
            raise
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
        done("ok", worker_seconds=output.worker_seconds, peak_rss_mb=output.peak_rss_mb)
        self._attach(name, entry)
        return entry


# Enough of each DFC log to parse a wall's layers and read it later; a log is kept whole in
# the failed build's dfc-logs/ folder.
_LOG_TAIL = 256 * 1024


def _kept(exc: StageFailure) -> CachedFailure:
    return CachedFailure(
        failure_class=exc.failure_class,
        message=exc.message,
        hint=exc.hint,
        error_type=exc.error_type,
        detail=exc.detail,
        logs={n: d[-_LOG_TAIL:].decode("utf-8", "replace") for n, d in exc.logs.items()},
    )


class CacheStages:
    """Cached stages outside a build (e.g. `hailoc eval` on a Hailo build): the same cache
    and work folders as StageRunner, logged instead of recorded."""

    def __init__(self, cache: StageCache, work_root: Path, log: Callable[[str], None]) -> None:
        self.cache = cache
        self.work_root = work_root
        self._log = log

    def run(self, name: str, key: str, produce: Callable[[Path], StageOutput]) -> Path:
        """The cache entry of `name` under `key`, produced on a miss."""
        cached = self.cache.lookup(name, key)
        if cached is not None:
            self._log(f"{name}: cache hit {key[:12]}")
            return cached
        # The same lock as a build's StageRunner: an eval and a build that need one stage run
        # it once.
        with exclusive(
            self.cache.entry(name, key),
            what=f"the {name} stage",
            locks=self.cache.root.parent / "locks",
        ):
            cached = self.cache.lookup(name, key)
            if cached is not None:
                return cached
            workdir = new_workdir(self.work_root)
            try:
                output = produce(workdir)
                return self.cache.store(name, key, output.files, {"stage": name})
            finally:
                shutil.rmtree(workdir, ignore_errors=True)

    def damaged(self, damage: Damage) -> None:
        """Log it (the cache moved it aside)."""
        self._log(f"cache: damaged entry moved aside: {damage}")

    def phase(self, name: str) -> None:
        """Log the step."""
        self._log(f"== {name}")

    def log(self, line: str) -> None:
        """Log one line."""
        self._log(line)
