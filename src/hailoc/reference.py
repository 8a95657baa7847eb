"""fp32 reference embeddings: what every candidate is compared with, computed once per inputs.

Kept beside the stage cache (keyed by the ONNX and eval-face hashes, the preprocessing and
the toolchain versions), so a batch of precisions, the gate of either backend and the auto
search all read the same numbers.
"""

from __future__ import annotations

import io
import threading
from pathlib import Path

import numpy as np

from hailoc.cache import cache_key
from hailoc.eval.sweep import BySize
from hailoc.fsutil import atomic_write_bytes
from hailoc.inference.session import embed_at_sizes
from hailoc.inputs import BuildInputs


def reference_key(inputs: BuildInputs, sizes: tuple[int, ...]) -> str:
    """Cache key of the fp32 embeddings of `inputs`' eval faces at `sizes`."""
    cfg = inputs.config
    return cache_key(
        "reference",
        {
            "onnx_sha256": inputs.onnx_sha256,
            "eval_sha256": inputs.eval_sha256,
            "sizes": list(sizes),
            "input": cfg.input.model_dump(mode="json"),
            "normalization": cfg.normalization.model_dump(mode="json"),
            "embedding_output": cfg.embedding_output,
            "versions": inputs.versions.model_dump(),
        },
    )


class References:
    """fp32 embeddings per inputs, memoised in memory and on disk under the cache root."""

    def __init__(self, cache_root: Path) -> None:
        self.root = cache_root / "reference"
        self._memo: dict[str, BySize] = {}
        self._lock = threading.Lock()

    def get(self, inputs: BuildInputs, sizes: tuple[int, ...]) -> BySize:
        """fp32 embeddings of the eval faces at each size."""
        key = reference_key(inputs, sizes)
        with self._lock:
            if key not in self._memo:
                self._memo[key] = self._load(key) or self._compute(key, inputs, sizes)
            return self._memo[key]

    def _load(self, key: str) -> BySize | None:
        path = self.root / f"{key}.npz"
        if not path.is_file():
            return None
        try:
            with np.load(path, allow_pickle=False) as data:
                return {int(name): np.asarray(data[name], np.float32) for name in data.files}
        except (OSError, ValueError):
            return None  # a damaged entry is recomputed

    def _compute(self, key: str, inputs: BuildInputs, sizes: tuple[int, ...]) -> BySize:
        cfg = inputs.config
        result = embed_at_sizes(inputs.onnx_bytes, cfg, inputs.eval_faces, sizes)
        buffer = io.BytesIO()
        arrays: dict[str, np.ndarray[tuple[int, ...], np.dtype[np.float32]]] = {
            str(size): emb for size, emb in result.items()
        }
        np.savez(buffer, allow_pickle=False, **arrays)
        atomic_write_bytes(self.root / f"{key}.npz", buffer.getvalue())
        return result
