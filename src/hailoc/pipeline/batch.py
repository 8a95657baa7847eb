"""Many targets: build them one after another (or N at once, one GPU slot each), surviving any
single failure, with the summary rewritten as each build ends."""

from __future__ import annotations

import logging
import threading
import traceback
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait

from hailoc.errors import HailocError
from hailoc.locks import Busy
from hailoc.manifest import LoadedManifest
from hailoc.records import BuildRecord, SummaryRow
from hailoc.targets import BuildTarget

log = logging.getLogger(__name__)

BuildFn = Callable[[BuildTarget, int | None], BuildRecord]


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


class SlotPool:
    """GPU slots as a pool: a build takes a free slot and gives it back when it ends.

    Each GPU index offers `per_gpu` slots; with no GPUs every build gets slot None.
    """

    def __init__(self, gpus: list[int], per_gpu: int = 1) -> None:
        self._free: list[int] = [g for g in gpus for _ in range(per_gpu)]
        self._cond = threading.Condition()
        self.enabled = bool(gpus)

    def acquire(self) -> int | None:
        """A free GPU index (waiting for one), or None when GPUs are not in use."""
        if not self.enabled:
            return None
        with self._cond:
            self._cond.wait_for(lambda: bool(self._free))
            return self._free.pop(0)

    def release(self, slot: int | None) -> None:
        """Give a slot back."""
        if slot is None:
            return
        with self._cond:
            self._free.append(slot)
            self._cond.notify()


def _guarded(build: BuildFn, target: BuildTarget, slots: SlotPool) -> BuildRecord:
    slot = slots.acquire()
    record = BuildRecord(
        model=target.model,
        backend=target.backend,
        hw_arch=target.hw_arch,
        precision=target.precision,
    )
    try:
        return build(target, slot)
    except HailocError as exc:
        # Raised before the target's build began (e.g. another process holds its lock).
        klass = "busy" if isinstance(exc, Busy) else "input"
        record.fail(klass, str(exc), exc.fix or "fix the input named in the message")
        return record
    except Exception as exc:  # one broken target must not end the batch
        log.debug("unexpected failure", exc_info=True)
        record.fail("internal", f"{type(exc).__name__}: {exc}", "report this as a hailoc bug")
        record.log_tail = traceback.format_exc().splitlines()[-12:]
        return record
    finally:
        slots.release(slot)


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
    slots: SlotPool | None = None,
    on_record: Callable[[list[SummaryRow]], None] | None = None,
    cancel: Callable[[], None] | None = None,
) -> list[BuildRecord]:
    """Build every target; `on_record` hears the summary rows after each build ends.

    On Ctrl-C (or SIGTERM, raised as KeyboardInterrupt) `cancel` stops what is running, the
    running builds write their records, the rest are listed as not run, and the interrupt
    propagates.
    """
    pool = slots or SlotPool([])
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
            for target in targets:
                finished(target, _guarded(build, target, pool))
        else:
            _parallel(targets, build, jobs, pool, finished, cancel)
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
    pool: SlotPool,
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
