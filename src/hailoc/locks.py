"""One build of a target (or one build of a calibration set) at a time, across processes."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from filelock import FileLock, Timeout

from hailoc.errors import HailocError


class Busy(HailocError):
    """Another hailoc process holds the lock and the user asked not to wait."""

    exit_code = 3


def lock_path(final: Path, locks: Path) -> Path:
    """The lock file guarding `final`: under the project's .hailoc/locks/, never inside an
    output folder (named after `final` and a hash of its full path, so the same folder
    always takes the same lock)."""
    digest = hashlib.sha256(str(final.absolute()).encode()).hexdigest()[:16]
    return locks / f"{final.name}-{digest}.lock"


@contextmanager
def exclusive(
    final: Path,
    *,
    what: str,
    locks: Path,
    wait: bool = True,
    on_wait: Callable[[], None] | None = None,
) -> Iterator[None]:
    """Hold the lock of `final` (a file under `locks`); wait for it (telling `on_wait`) or
    raise Busy."""
    path = lock_path(final, locks)
    path.parent.mkdir(parents=True, exist_ok=True)
    # fcntl locks are released by the kernel when their process dies: never stale.
    lock = FileLock(path, thread_local=False)
    try:
        lock.acquire(timeout=0)
    except Timeout:
        if not wait:
            raise Busy(
                f"another hailoc process is writing {final}",
                where=what,
                fix="wait for it, or drop --no-wait to queue behind it",
            ) from None
        if on_wait is not None:
            on_wait()
        lock.acquire()
    try:
        yield
    finally:
        lock.release()
