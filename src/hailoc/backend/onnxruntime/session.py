"""ONNX Runtime sessions that embed aligned faces with a model's own preprocessing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from hailoc.backend.onnxruntime.preprocess import to_input
from hailoc.errors import OnnxError
from hailoc.eval.sweep import BySize, embed_sizes
from hailoc.manifest import ModelConfig


def open_session(model: Path | bytes, threads: int = 0) -> Any:
    """A CPU session; a model ORT cannot load is a one-line error."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    if threads:
        options.intra_op_num_threads = threads
    try:
        source = model if isinstance(model, bytes) else str(model)
        return ort.InferenceSession(source, options, providers=["CPUExecutionProvider"])
    except Exception as exc:
        raise OnnxError(
            f"onnxruntime cannot load the model: {str(exc).splitlines()[0][:200]}",
            where=str(model) if isinstance(model, Path) else "model",
            fix="re-export the ONNX file",
        ) from None


class Embedder:
    """Callable: (N, H, W, 3) uint8 RGB faces -> (N, D) raw embeddings (pre-normalisation)."""

    def __init__(self, session: Any, cfg: ModelConfig, output: str | None = None) -> None:
        self.session = session
        self.cfg = cfg
        self.input = cfg.input.name
        names = [o.name for o in session.get_outputs()]
        self.output = output if output in names else names[0]
        batch = session.get_inputs()[0].shape[0]
        self.batch = batch if isinstance(batch, int) and batch > 0 else 64

    def __call__(self, faces: npt.NDArray[np.uint8]) -> npt.NDArray[np.float32]:
        """Embed faces in chunks the model's (often static) batch size allows."""
        x = to_input(faces, self.cfg)
        out = [
            self.session.run([self.output], {self.input: x[i : i + self.batch]})[0]
            for i in range(0, len(x), self.batch)
        ]
        return np.concatenate(out).reshape(len(x), -1).astype(np.float32)


def embed_at_sizes(
    model: Path, cfg: ModelConfig, faces: npt.NDArray[np.uint8], sizes: tuple[int, ...]
) -> BySize:
    """Embeddings of `faces` at each simulated size under `model` (fp32 ONNX or a QDQ build)."""
    return embed_sizes(Embedder(open_session(model), cfg, cfg.embedding_output), faces, sizes)
