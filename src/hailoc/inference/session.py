"""ONNX Runtime sessions that embed aligned faces with a model's own preprocessing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from hailoc.errors import OnnxError
from hailoc.execution import Execution, session_options, usable_cores
from hailoc.faces import BySize, embed_sizes
from hailoc.inference.preprocess import to_input
from hailoc.manifest import ModelConfig

# Chunk size for models with a dynamic batch: large enough to amortise, small enough for R100.
DYNAMIC_BATCH = 32


def open_session(
    model: Path | bytes, threads: int = 0, execution: Execution = Execution.PORTABLE
) -> Any:
    """A CPU session; a model ORT cannot load is a one-line error."""
    import onnxruntime as ort

    options = session_options(threads, execution)
    try:
        source = model if isinstance(model, bytes) else str(model)
        return ort.InferenceSession(source, options, providers=["CPUExecutionProvider"])
    except Exception as exc:
        raise OnnxError(
            f"onnxruntime cannot load the model: {str(exc).splitlines()[0][:200]}",
            where=str(model) if isinstance(model, Path) else "model",
            fix="re-export the ONNX file",
        ) from None


def static_batch(session: Any) -> int | None:
    """The model's fixed batch size, or None when the batch dimension is dynamic."""
    dim = session.get_inputs()[0].shape[0]
    return dim if isinstance(dim, int) and dim > 0 else None


def pick_output(names: list[str], wanted: str | None) -> str:
    """The manifest's embedding output when the graph has it, else the graph's first output."""
    return wanted if wanted is not None and wanted in names else names[0]


def as_embeddings(y: npt.NDArray[Any]) -> npt.NDArray[np.float32]:
    """One flat float32 row per face, whatever the output's own shape."""
    return y.reshape(len(y), -1).astype(np.float32)


class Runner:
    """One session: runs an array of any length through the model's batch, any outputs.

    A static batch B takes chunks of exactly B, the last one padded with copies of its final
    row and the padding dropped from the outputs; a dynamic batch takes chunks of
    DYNAMIC_BATCH. Each output comes back with one row per input row, in its own dtype.
    """

    def __init__(self, session: Any, input_name: str | None = None) -> None:
        self.session = session
        self.input = input_name or session.get_inputs()[0].name
        self.fixed = static_batch(session)
        self.batch = self.fixed or DYNAMIC_BATCH

    def run(self, x: npt.NDArray[Any], outputs: list[str]) -> list[npt.NDArray[Any]]:
        """`outputs` of the model for the rows of `x`."""
        parts: list[list[npt.NDArray[Any]]] = [[] for _ in outputs]
        for start in range(0, len(x), self.batch):
            chunk = x[start : start + self.batch]
            real = len(chunk)
            if self.fixed is not None and real < self.fixed:
                pad = np.repeat(chunk[-1:], self.fixed - real, axis=0)
                chunk = np.concatenate([chunk, pad])
            found = self.session.run(outputs, {self.input: chunk})
            for part, y in zip(parts, found, strict=True):
                y = np.asarray(y)
                part.append(y.reshape(len(chunk), *y.shape[1:])[:real])
        return [np.concatenate(part) if part else np.zeros((0,)) for part in parts]


class Embedder:
    """Callable: (N, H, W, 3) uint8 RGB faces -> (N, D) raw embeddings (pre-normalisation).

    Any N works whatever the model's batch (see `Runner`).
    """

    def __init__(self, session: Any, cfg: ModelConfig, output: str | None = None) -> None:
        self.session = session
        self.cfg = cfg
        self.output = pick_output([o.name for o in session.get_outputs()], output)
        self.runner = Runner(session, cfg.input.name)

    def __call__(self, faces: npt.NDArray[np.uint8]) -> npt.NDArray[np.float32]:
        """Embed faces in chunks the model's batch size allows."""
        if len(faces) == 0:
            return np.zeros((0, 0), dtype=np.float32)
        (y,) = self.runner.run(to_input(faces, self.cfg), [self.output])
        return as_embeddings(y)


class SplitRunner:
    """`Runner` over one single-threaded session per worker, each running a contiguous share
    of the rows.

    Face recognition models at batch 1 keep ONNX Runtime's intra-op threads poorly busy:
    one session per core over separate faces is ~1.3-1.6x faster on 2 cores. Each row's
    outputs do not depend on how the rows are split (one row per run, or the model's own
    batch, the same kernels). The sessions open together on the first call and are reused for
    every later call (from a file ORT builds them in parallel, two in the time of one; from
    bytes it copies and parses them holding the GIL, one after the other).
    """

    def __init__(self, model: Path | bytes, workers: int = 0, input_name: str | None = None):
        self.model = model
        self.workers = max(1, workers or usable_cores())
        self.input_name = input_name
        self.parts: list[Runner] = []

    def _open(self, count: int) -> list[Runner]:
        missing = count - len(self.parts)
        if missing > 0:
            threads = 1 if self.workers > 1 else 0
            if missing == 1:
                sessions = [open_session(self.model, threads=threads)]
            else:
                from concurrent.futures import ThreadPoolExecutor

                with ThreadPoolExecutor(missing) as pool:
                    sessions = list(
                        pool.map(
                            lambda _: open_session(self.model, threads=threads), range(missing)
                        )
                    )
            self.parts += [Runner(session, self.input_name) for session in sessions]
        return self.parts[:count]

    def open(self) -> None:
        """Open every worker's session now, together (the first run needs them all anyway):
        e.g. while the model's file still exists."""
        self._open(self.workers)

    def output_names(self) -> list[str]:
        """The model's outputs, in order (opens the sessions)."""
        self.open()
        return [o.name for o in self.parts[0].session.get_outputs()]

    def run(self, x: npt.NDArray[Any], outputs: list[str]) -> list[npt.NDArray[Any]]:
        """`outputs` for the rows of `x`, split over the workers."""
        count = max(1, min(self.workers, len(x)))
        parts = self._open(count)
        if count == 1:
            return parts[0].run(x, outputs)
        from concurrent.futures import ThreadPoolExecutor

        shares = np.array_split(np.arange(len(x)), count)
        with ThreadPoolExecutor(count) as pool:
            found = list(pool.map(lambda part, share: part.run(x[share], outputs), parts, shares))
        return [np.concatenate(column) for column in zip(*found, strict=True)]


class SplitEmbedder:
    """Callable like `Embedder`, over a `SplitRunner`."""

    def __init__(self, model: Path | bytes, cfg: ModelConfig, workers: int = 0) -> None:
        self.cfg = cfg
        self.runner = SplitRunner(model, workers, cfg.input.name)
        self.workers = self.runner.workers
        self._output: str | None = None

    def __call__(self, faces: npt.NDArray[np.uint8]) -> npt.NDArray[np.float32]:
        """Embed `faces`, split over the workers."""
        if len(faces) == 0:
            return np.zeros((0, 0), dtype=np.float32)
        if self._output is None:
            self._output = pick_output(self.runner.output_names(), self.cfg.embedding_output)
        (y,) = self.runner.run(to_input(faces, self.cfg), [self._output])
        return as_embeddings(y)


def embed_at_sizes(
    model: Path | bytes, cfg: ModelConfig, faces: npt.NDArray[np.uint8], sizes: tuple[int, ...]
) -> BySize:
    """Embeddings of `faces` at each simulated size under `model` (fp32 ONNX or a QDQ build),
    one single-threaded session per core (`SplitEmbedder`)."""
    return embed_sizes(SplitEmbedder(model, cfg), faces, sizes)
