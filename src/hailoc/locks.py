"""One build of a target (or one build of a calibration set) at a time, across processes."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from filelock import FileLock, Timeout

from hailoc.errors import HailocError


class Busy(HailocError):
    """Another hailoc process holds the lock and the user asked not to wait."""

    exit_code = 3


def lock_path(final: Path) -> Path:
    """The lock file guarding `final` (beside it, so publishing `final` never touches it)."""
    return final.parent / f".{final.name}.lock"


@contextmanager
def exclusive(
    final: Path, *, what: str, wait: bool = True, on_wait: Callable[[], None] | None = None
) -> Iterator[None]:
    """Hold the lock of `final`; wait for it (telling `on_wait`) or raise Busy."""
    path = lock_path(final)
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
