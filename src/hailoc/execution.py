"""How ONNX Runtime executes every model hailoc measures: one CPU-independent path.

Its own module, below both calibration and inference, so the detector, the fp32 reference and
the emulated builds share the same options without an import cycle.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from enum import StrEnum
from typing import Any, Generic, TypeVar

T = TypeVar("T")


class Execution(StrEnum):
    """How ONNX Runtime executes a QDQ model.

    PORTABLE runs every Q/DQ pair as written (float "fake quantization": quantize, dequantize,
    float kernels) with no layout transforms. Nothing runs in int8 arithmetic, so the answer
    does not depend on which int8 kernels the host CPU has: ORT's fused U8S8 kernels use
    VPMADDUBSW on AVX2/AVX-512 CPUs without VNNI, which can saturate, and VNNI CPUs do not
    (ORT's quantization guide), so the fused path moves agreement in the second digit between
    two x86-64 machines with the same versions. The NCHWc layout transform is left out too: its
    block size follows the vector width (8 on AVX2, 16 on AVX-512), which reorders the float
    sums and, through quantization's rounding, the numbers. Every number hailoc reports comes
    from PORTABLE; FUSED exists to measure what the shortcut would cost (bench/emulation.py).
    """

    PORTABLE = "portable"
    FUSED = "fused"


def session_options(threads: int = 0, execution: Execution = Execution.PORTABLE) -> Any:
    """ORT session options for `execution` (no ORT log noise; `threads` 0 means ORT's default)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    if threads:
        options.intra_op_num_threads = threads
    if execution is Execution.PORTABLE:
        options.add_session_config_entry("session.disable_quant_qdq", "1")
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
    return options


def usable_cores() -> int:
    """Cores this process may run on (its affinity, not the machine's count)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1


class Background(Generic[T]):
    """`work()` on a daemon thread, started now; `result()` waits and returns it, or raises
    what it raised. Daemon: an interrupted command exits without waiting for it (nothing it
    does is published half-way: cache entries appear whole or not at all)."""

    def __init__(self, work: Callable[[], T]) -> None:
        self._value: T | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, args=(work,), daemon=True)
        self._thread.start()

    def _run(self, work: Callable[[], T]) -> None:
        try:
            self._value = work()
        except BaseException as exc:  # handed to the caller of result()
            self._error = exc

    def result(self) -> T:
        """The work's value, once it is done."""
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self._value  # type: ignore[return-value]
