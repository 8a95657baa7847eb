"""fp32 reference embeddings: what every candidate is compared with, computed once per inputs.

Kept in the stage cache, keyed by the ONNX bytes, the faces' content (as simulated at each
size), the preprocessing and the toolchain versions: a batch of precisions, the gate of
either backend, the auto search and `hailoc eval` all read the same entries (insightface's
family keeps its own, computed by insightface's get_feat).
"""

from __future__ import annotations

import hashlib
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path

import numpy as np

from hailoc.cache import Damage, StageCache, cache_key
from hailoc.calibration.face_size import batch_at_distance
from hailoc.faces import BatchEmbed, BySize, Embeddings, Faces
from hailoc.inference.preprocess import input_identity
from hailoc.inference.session import SplitEmbedder, embed_at_sizes
from hailoc.inputs import BuildInputs
from hailoc.manifest import ModelConfig
from hailoc.records import Versions

KIND = "reference"
FILE = "embeddings.npy"


def reference_key(inputs: BuildInputs, size: int) -> str:
    """Cache key of the fp32 embeddings of `inputs`' eval faces at one simulated size."""
    cfg = inputs.config
    return cache_key(
        "reference",
        {
            "onnx_sha256": inputs.onnx_sha256,
            "eval_sha256": inputs.eval_sha256,
            "size": size,
            "input": cfg.input.model_dump(mode="json"),
            "normalization": cfg.normalization.model_dump(mode="json"),
            "embedding_output": cfg.embedding_output,
            # insightface's get_feat for that family, hailoc's own session otherwise.
            "reference": "insightface.get_feat" if cfg.family == "insightface" else "hailoc",
            "versions": inputs.versions.model_dump(),
        },
    )


class References:
    """fp32 embeddings per inputs, memoised in memory and on disk under the cache root."""

    def __init__(self, cache_root: Path) -> None:
        self.cache_root = cache_root
        self._memo: dict[str, Embeddings] = {}
        self._lock = threading.Lock()

    def get(
        self,
        inputs: BuildInputs,
        sizes: tuple[int, ...],
        on_damage: Callable[[Damage], None] | None = None,
    ) -> BySize:
        """fp32 embeddings of the eval faces at each size.

        Stored per size, so the auto search (one size) and the gate (every size) share the
        work instead of each computing its own set. A damaged entry is reported to
        `on_damage` and computed again.
        """
        cache = StageCache(self.cache_root, on_damage)
        kind = KIND if inputs.config.family == "insightface" else FACES_KIND
        with self._lock:
            keys = {size: self._key(inputs, size) for size in sizes}
            for key in keys.values():
                if key not in self._memo:
                    found = cache.read_array(kind, key, FILE)
                    if found is not None:
                        self._memo[key] = np.asarray(found, np.float32)
            missing = tuple(size for size, key in keys.items() if key not in self._memo)
            if missing:
                for size, emb in self._compute(inputs, missing).items():
                    self._memo[keys[size]] = emb
                    cache.store_array(kind, keys[size], FILE, emb)
            return {size: self._memo[keys[size]] for size in sizes}

    @staticmethod
    def _key(inputs: BuildInputs, size: int) -> str:
        # insightface's own get_feat computes that family's numbers: its own entries. Every
        # other family's are hailoc's session on the faces as simulated at `size`: the very
        # entries `cached_fp32` (eval --pairs / --identities) reads and writes.
        if inputs.config.family == "insightface":
            return reference_key(inputs, size)
        faces = batch_at_distance(inputs.eval_faces, size)
        return faces_key(inputs.onnx_sha256, inputs.config, faces, inputs.versions)

    def _compute(self, inputs: BuildInputs, sizes: tuple[int, ...]) -> BySize:
        cfg = inputs.config
        if cfg.family != "insightface":
            return embed_at_sizes(inputs.onnx_bytes, cfg, inputs.eval_faces, sizes)
        # What the user's insightface pipeline computes, from the very bytes hailoc hashed.
        from hailoc.interop import insightface

        with tempfile.TemporaryDirectory(prefix="hailoc-ref-") as tmp:
            model = Path(tmp) / "model.onnx"
            model.write_bytes(inputs.onnx_bytes)
            problem = insightface.mismatch(cfg, model)
            if problem is not None:
                raise problem
            return {
                size: insightface.get_feat(model, batch_at_distance(inputs.eval_faces, size))
                for size in sizes
            }


FACES_KIND = "reference/faces"


def faces_key(model_sha256: str, cfg: ModelConfig, faces: Faces, versions: Versions) -> str:
    """Cache key of fp32 embeddings of one batch of faces (aligned by a detector, simulated at
    a size: both are in the faces' bytes) under hailoc's session of a model."""
    model = {"onnx_sha256": model_sha256, "embedding_output": cfg.embedding_output}
    return cache_key("reference-faces", model | input_identity(faces, cfg, versions))


def cached_fp32(cache_root: Path, cfg: ModelConfig, versions: Versions) -> BatchEmbed:
    """fp32 embeddings of batches of faces, each batch kept in the project's cache: every
    evaluation of the same faces (the next build's, another precision's) reads them back
    instead of running the fp32 model again. The session opens on the first miss."""
    cache = StageCache(cache_root)
    model = cfg.onnx.read_bytes()
    model_sha256 = hashlib.sha256(model).hexdigest()
    session = SplitEmbedder(model, cfg)  # opens on the first miss

    def embed(batches: list[Faces]) -> list[Embeddings]:
        out = []
        for batch in batches:
            key = faces_key(model_sha256, cfg, batch, versions)
            found = cache.read_array(FACES_KIND, key, FILE)
            if found is not None:
                out.append(np.asarray(found, np.float32))
                continue
            emb = session(batch)
            cache.store_array(FACES_KIND, key, FILE, emb)
            out.append(emb)
        return out

    return embed
