"""Batch policy without Docker: GPU slots as a pool, summary rows as builds finish."""

from __future__ import annotations

import itertools
import threading
import time

import pytest

from hailoc.engines import EngineSlots, Slot
from hailoc.pipeline.batch import EnginePool, NoEngine, run_batch
from hailoc.records import BuildRecord, SummaryRow
from hailoc.targets import BuildTarget


def test_no_slot_is_ever_held_by_two_running_builds() -> None:
    """--jobs 2, two GPUs, five targets of different lengths: a build takes a free slot and
    gives it back; round-robin assignment up front would double-book GPU 0."""
    targets = [BuildTarget(f"m{i}", "hailo8", "int8", "hailo") for i in range(5)]
    lengths = {"m0": 0.6, "m1": 0.05, "m2": 0.05, "m3": 0.3, "m4": 0.05}
    spans: list[tuple[int | None, float, float]] = []
    lock = threading.Lock()

    def build(target: BuildTarget, slot: Slot) -> BuildRecord:
        started = time.monotonic()
        time.sleep(lengths[target.model])
        with lock:
            spans.append((slot.gpu, started, time.monotonic()))
        record = BuildRecord(
            model=target.model, backend="hailo", hw_arch="hailo8", precision="int8"
        )
        record.status = "ok"
        return record

    seen: list[list[SummaryRow]] = []
    pool = EnginePool([EngineSlots("gpu-box", frozenset({"hailo8"}), gpus=(0, 1))])
    records = run_batch(targets, build, jobs=2, pool=pool, on_record=seen.append)
    assert [r.model for r in records] == [t.model for t in targets]
    assert {slot for slot, _, _ in spans} == {0, 1}
    for slot in (0, 1):
        mine = sorted((s, e) for sl, s, e in spans if sl == slot)
        for (_, end), (start, _) in itertools.pairwise(mine):
            assert start >= end, f"GPU {slot} held by two builds at once"
    # The summary is rewritten as each build ends, not only at the end.
    assert [len(rows) for rows in seen] == [1, 2, 3, 4, 5]


def test_slots_per_gpu() -> None:
    target = BuildTarget("m", "hailo8", "int8", "hailo")
    pool = EnginePool([EngineSlots("e", frozenset({"hailo8"}), gpus=(0,), per_gpu=2)])
    assert {pool.acquire(target).gpu, pool.acquire(target).gpu} == {0}
    # By default every slot is busy: one build per GPU slot, else per engine (or its cap).
    assert EngineSlots("e", frozenset(), gpus=(0, 1), per_gpu=2).capacity == 4
    assert EngineSlots("e", frozenset()).capacity == 1
    assert EngineSlots("e", frozenset(), jobs=3).capacity == 3
    assert EnginePool([]).acquire(BuildTarget("m", "hailo8", "int8", "onnxruntime")) == Slot()


def test_dispatch_by_arch_load_and_engine_down() -> None:
    """A target goes to an engine whose suites build its hw_arch, the least busy first; an
    engine marked down takes nothing more, and a target no engine left builds is refused."""
    h8 = BuildTarget("m", "hailo8", "int8", "hailo")
    h10 = BuildTarget("m", "hailo10h", "int8", "hailo")
    pool = EnginePool(
        [
            EngineSlots("a", frozenset({"hailo8"})),
            EngineSlots("b", frozenset({"hailo8", "hailo10h"})),
        ]
    )
    first, second = pool.acquire(h8), pool.acquire(h8)
    assert {first.engine, second.engine} == {"a", "b"}
    assert pool.acquire(h10).engine == "b"
    pool.mark_down("b")
    assert pool.acquire(h8).engine == "a"
    with pytest.raises(NoEngine):
        pool.acquire(h10)


def test_engine_lost_is_built_once_more_elsewhere() -> None:
    """A build lost with its engine runs again on another engine; the record says both."""
    targets = [BuildTarget(f"m{i}", "hailo8", "int8", "hailo") for i in range(3)]
    pool = EnginePool(
        [EngineSlots("a", frozenset({"hailo8"}), jobs=1), EngineSlots("b", frozenset({"hailo8"}))]
    )
    calls: list[tuple[str, str]] = []
    lock = threading.Lock()

    def build(target: BuildTarget, slot: Slot) -> BuildRecord:
        with lock:
            calls.append((target.model, slot.engine))
        time.sleep(0.05)
        record = BuildRecord(
            model=target.model, backend="hailo", hw_arch="hailo8", precision="int8"
        )
        record.engine, record.requeued_from = slot.engine, slot.requeued_from
        if slot.engine == "b":
            record.fail("engine_lost", "gone", "again")
        else:
            record.status = "ok"
        return record

    records = run_batch(targets, build, jobs=2, pool=pool)
    assert all(r.status == "ok" and r.engine == "a" for r in records)
    lost = [r for r in records if r.requeued_from == "b"]
    assert len(lost) >= 1
    assert len(calls) == len(targets) + len(lost)


def test_most_expensive_target_starts_first() -> None:
    targets = [BuildTarget(f"m{i}", "hailo8", "int8", "hailo") for i in range(4)]
    started: list[str] = []

    def build(target: BuildTarget, slot: Slot) -> BuildRecord:
        started.append(target.model)
        return BuildRecord(model=target.model, backend="hailo", hw_arch="hailo8", precision="int8")

    sizes = {"m0": 1.0, "m1": 30.0, "m2": 5.0, "m3": 20.0}
    records = run_batch(targets, build, cost=lambda t: sizes[t.model])
    assert started == ["m1", "m3", "m2", "m0"]
    assert [r.model for r in records] == ["m0", "m1", "m2", "m3"]
