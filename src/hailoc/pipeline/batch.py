"""Many targets: build them one after another (or N at once, one GPU slot each), surviving any
single failure, with the summary rewritten as each build ends."""

from __future__ import annotations

import logging
import threading
import traceback
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import replace

from hailoc.engines import EngineSlots, Slot
from hailoc.errors import HailocError
from hailoc.failures import ENGINE_LOST
from hailoc.locks import Busy
from hailoc.manifest import LoadedManifest
from hailoc.records import BuildRecord, SummaryRow
from hailoc.records.schema import FailureClassName
from hailoc.targets import BuildTarget

log = logging.getLogger(__name__)

BuildFn = Callable[[BuildTarget, Slot], BuildRecord]


def expand_targets(
    manifest: LoadedManifest,
    names: list[str],
    *,
    all_models: bool,
    precisions: list[str] | None,
    hw_archs: list[str] | None,
    backend: str | None,
) -> list[BuildTarget]:
    """The command line as build targets (model x hw_arch x precision), checked up front."""
    if all_models and names:
        raise HailocError(
            "give model names or --all, not both", where="hailoc build", fix="drop one"
        )
    if not all_models and not names:
        raise HailocError(
            "no models named",
            where="hailoc build",
            fix="name models (see `hailoc models list`) or pass --all",
        )
    if all_models and not manifest.names():
        raise HailocError(
            "the manifest lists no models",
            where=f"{manifest.path}: models",
            fix="add a model entry (see README, 'The manifest')",
        )
    targets: list[BuildTarget] = []
    for cfg in manifest.models(None if all_models else list(dict.fromkeys(names))):
        for arch in hw_archs or [cfg.hw_arch]:
            for chosen in precisions or [cfg.precision]:
                target = BuildTarget(cfg.name, arch, chosen, backend or cfg.backend)
                if target not in targets:
                    targets.append(target)
    return targets


class NoEngine(Exception):
    """No engine that is still up builds this target."""


class EnginePool:
    """GPU slots on every engine as one pool: a build takes a free slot on an engine that
    builds its hw_arch (the least busy one) and gives it back when it ends; an engine marked
    down takes no more builds. Targets of other backends, and every target of a pool with no
    engines, run outside it."""

    def __init__(self, engines: list[EngineSlots], backend: str = "hailo") -> None:
        self.backend = backend
        self._engines = {e.name: e for e in engines}
        self._free: dict[str, list[int]] = {
            e.name: [g for g in e.gpus for _ in range(e.per_gpu)] for e in engines
        }
        self._running: dict[str, int] = {e.name: 0 for e in engines}
        self._down: set[str] = set()
        self._cond = threading.Condition()

    def can_build(self, target: BuildTarget) -> bool:
        """True when an engine that is up builds the target."""
        with self._cond:
            return self._outside(target) or bool(self._candidates(target))

    def acquire(self, target: BuildTarget) -> Slot:
        """A slot for `target`, waiting for one to free up; NoEngine when none is left."""
        if self._outside(target):
            return Slot()
        with self._cond:
            while True:
                candidates = self._candidates(target)
                if not candidates:
                    down = ", ".join(sorted(self._down)) or "none"
                    raise NoEngine(f"no engine that is up builds {target.hw_arch} (down: {down})")
                ready = [e for e in candidates if self._has_room(e)]
                if ready:
                    engine = min(ready, key=lambda e: self._running[e.name])
                    self._running[engine.name] += 1
                    gpu = self._free[engine.name].pop(0) if engine.gpus else None
                    return Slot(engine.name, gpu)
                self._cond.wait()

    def release(self, slot: Slot) -> None:
        """Give a slot back."""
        with self._cond:
            if slot.engine in self._running:
                self._running[slot.engine] -= 1
                if slot.gpu is not None:
                    self._free[slot.engine].append(slot.gpu)
            self._cond.notify_all()

    def mark_down(self, name: str) -> None:
        """The engine stopped answering: no more builds go there."""
        with self._cond:
            self._down.add(name)
            self._cond.notify_all()

    def _outside(self, target: BuildTarget) -> bool:
        return target.backend != self.backend or not self._engines

    def _candidates(self, target: BuildTarget) -> list[EngineSlots]:
        return [
            e
            for e in self._engines.values()
            if e.name not in self._down and target.hw_arch in e.archs
        ]

    def _has_room(self, engine: EngineSlots) -> bool:
        if engine.gpus:
            return bool(self._free[engine.name])
        return engine.jobs is None or self._running[engine.name] < engine.jobs


def _blank(target: BuildTarget) -> BuildRecord:
    return BuildRecord(
        model=target.model,
        backend=target.backend,
        hw_arch=target.hw_arch,
        precision=target.precision,
    )


def _attempt(build: BuildFn, target: BuildTarget, slot: Slot) -> BuildRecord:
    record = _blank(target)
    try:
        return build(target, slot)
    except HailocError as exc:
        # Raised before the target's build began (e.g. another process holds its lock).
        klass: FailureClassName = "busy" if isinstance(exc, Busy) else "input"
        record.fail(klass, str(exc), exc.fix or "fix the input named in the message")
        return record
    except Exception as exc:  # one broken target must not end the batch
        log.debug("unexpected failure", exc_info=True)
        record.fail("internal", f"{type(exc).__name__}: {exc}", "report this as a hailoc bug")
        record.log_tail = traceback.format_exc().splitlines()[-12:]
        return record


def _guarded(build: BuildFn, target: BuildTarget, pool: EnginePool) -> BuildRecord:
    """Build on a free slot; a build lost with its engine runs once more on another engine."""
    lost: str | None = None
    while True:
        try:
            slot = pool.acquire(target)
        except NoEngine as exc:
            record = _blank(target)
            record.fail(ENGINE_LOST.name, str(exc), ENGINE_LOST.hint)
            record.requeued_from = lost
            return record
        try:
            record = _attempt(build, target, replace(slot, requeued_from=lost))
        finally:
            pool.release(slot)
        if record.failure_class == ENGINE_LOST.name and lost is None:
            pool.mark_down(slot.engine)
            log.warning("%s: engine %s was lost; building it again elsewhere", target, slot.engine)
            lost = slot.engine
            if pool.can_build(target):
                continue
        return record


def not_run(target: BuildTarget, why: str) -> SummaryRow:
    """The summary row of a target the batch never started."""
    return SummaryRow(
        model=target.model,
        backend=target.backend,
        hw_arch=target.hw_arch,
        precision=target.precision,
        status="skipped",
        failure_class="interrupted",
        message=why,
        hint="run the same command again, or `hailoc build --retry-failed`",
    )


def run_batch(
    targets: list[BuildTarget],
    build: BuildFn,
    *,
    jobs: int = 1,
    pool: EnginePool | None = None,
    cost: Callable[[BuildTarget], float] | None = None,
    on_record: Callable[[list[SummaryRow]], None] | None = None,
    cancel: Callable[[], None] | None = None,
) -> list[BuildRecord]:
    """Build every target; `on_record` hears the summary rows after each build ends.

    Targets start most expensive first (by `cost`); records and rows keep the given order.

    On Ctrl-C (or SIGTERM, raised as KeyboardInterrupt) `cancel` stops what is running, the
    running builds write their records, the rest are listed as not run, and the interrupt
    propagates.
    """
    pool = pool or EnginePool([])
    order = sorted(targets, key=lambda t: -cost(t)) if cost is not None else list(targets)
    done: dict[BuildTarget, BuildRecord] = {}

    def rows(pending_why: str | None = None) -> list[SummaryRow]:
        out = []
        for target in targets:
            if target in done:
                out.append(SummaryRow.of(done[target]))
            elif pending_why is not None:
                out.append(not_run(target, pending_why))
        return out

    def finished(target: BuildTarget, record: BuildRecord) -> None:
        done[target] = record
        if on_record is not None:
            on_record(rows())

    try:
        if jobs <= 1 or len(targets) <= 1:
            for target in order:
                finished(target, _guarded(build, target, pool))
        else:
            _parallel(order, build, jobs, pool, finished, cancel)
    except KeyboardInterrupt:
        if cancel is not None:
            cancel()
        if on_record is not None:
            on_record(rows("the batch was interrupted before this target started"))
        raise
    return [done[t] for t in targets]


def _parallel(
    targets: list[BuildTarget],
    build: BuildFn,
    jobs: int,
    pool: EnginePool,
    finished: Callable[[BuildTarget, BuildRecord], None],
    cancel: Callable[[], None] | None,
) -> None:
    executor = ThreadPoolExecutor(max_workers=jobs)
    futures: dict[Future[BuildRecord], BuildTarget] = {
        executor.submit(_guarded, build, t, pool): t for t in targets
    }
    pending = set(futures)
    try:
        while pending:
            ready, pending = wait(pending, return_when=FIRST_COMPLETED)
            for future in ready:
                finished(futures[future], future.result())
    except KeyboardInterrupt:
        for future in pending:
            future.cancel()
        if cancel is not None:
            cancel()
        # Running builds end once cancel() has stopped their work; their records land.
        executor.shutdown(wait=True)
        for future in pending:
            if future.done() and not future.cancelled():
                finished(futures[future], future.result())
        raise
    executor.shutdown(wait=True)
