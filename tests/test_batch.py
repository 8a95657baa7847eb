"""Batch policy without Docker: GPU slots as a pool, summary rows as builds finish."""

from __future__ import annotations

import itertools
import threading
import time

from hailoc.pipeline.batch import SlotPool, run_batch
from hailoc.records import BuildRecord, SummaryRow
from hailoc.targets import BuildTarget


def test_no_slot_is_ever_held_by_two_running_builds() -> None:
    """--jobs 2, two GPUs, five targets of different lengths: a build takes a free slot and
    gives it back; round-robin assignment up front would double-book GPU 0."""
    targets = [BuildTarget(f"m{i}", "hailo8", "int8", "hailo") for i in range(5)]
    lengths = {"m0": 0.6, "m1": 0.05, "m2": 0.05, "m3": 0.3, "m4": 0.05}
    spans: list[tuple[int | None, float, float]] = []
    lock = threading.Lock()

    def build(target: BuildTarget, slot: int | None) -> BuildRecord:
        started = time.monotonic()
        time.sleep(lengths[target.model])
        with lock:
            spans.append((slot, started, time.monotonic()))
        record = BuildRecord(
            model=target.model, backend="hailo", hw_arch="hailo8", precision="int8"
        )
        record.status = "ok"
        return record

    seen: list[list[SummaryRow]] = []
    records = run_batch(targets, build, jobs=2, slots=SlotPool([0, 1]), on_record=seen.append)
    assert [r.model for r in records] == [t.model for t in targets]
    assert {slot for slot, _, _ in spans} == {0, 1}
    for slot in (0, 1):
        mine = sorted((s, e) for sl, s, e in spans if sl == slot)
        for (_, end), (start, _) in itertools.pairwise(mine):
            assert start >= end, f"GPU {slot} held by two builds at once"
    # The summary is rewritten as each build ends, not only at the end.
    assert [len(rows) for rows in seen] == [1, 2, 3, 4, 5]


def test_slots_per_gpu() -> None:
    pool = SlotPool([0], per_gpu=2)
    assert {pool.acquire(), pool.acquire()} == {0}
    assert SlotPool([]).acquire() is None
