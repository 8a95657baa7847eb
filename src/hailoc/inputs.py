"""A model's build inputs, read once and hashed as read: the ONNX, calibration and eval faces.

Every later step (cache keys, records, the quantizer, containers) uses these bytes and these
hashes, never the files again: a file that changes on disk mid-run cannot slip into a build
under an old hash.
"""

from __future__ import annotations

import hashlib
import io
import platform
import threading
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

import numpy as np
import onnx

from hailoc import __version__
from hailoc.calibration.store import CalibSet, open_set
from hailoc.errors import HailocError
from hailoc.faces import Faces, faces_sha256
from hailoc.manifest import LoadedManifest, ModelConfig
from hailoc.model_check import check_model
from hailoc.onnxgraph import GraphInfo
from hailoc.records import InputsSection, Versions
from hailoc.records.schema import CanonicalSection

# Without a held-out split, the gate takes at most this many calibration faces.
FALLBACK_EVAL_FACES = 64


def toolchain_versions() -> Versions:
    """Versions of everything that changes a build's numbers."""

    def version(dist: str) -> str:
        try:
            return metadata.version(dist)
        except metadata.PackageNotFoundError:
            return "missing"

    return Versions(
        hailoc=__version__,
        python=platform.python_version(),
        numpy=version("numpy"),
        onnx=version("onnx"),
        onnxruntime=version("onnxruntime"),
        pillow=version("pillow"),
    )


@dataclass(frozen=True)
class BuildInputs:
    """A validated model and its calibration and evaluation data, as read and hashed."""

    config: ModelConfig
    graph: GraphInfo
    onnx_bytes: bytes = field(repr=False)
    onnx_proto: onnx.ModelProto = field(repr=False)
    onnx_sha256: str
    calib_path: Path
    calib: Faces = field(repr=False)
    calib_sha256: str
    eval_faces: Faces = field(repr=False)
    eval_sha256: str
    eval_source: str  # "eval.npy", or a warning that the faces overlap calibration
    versions: Versions
    # What canonicalization did (the bytes above are the canonical graph's when it applied).
    canonical: CanonicalSection | None = None

    def quantization_identity(self) -> dict[str, object]:
        """What any quantization of this model depends on (cache keys of the ORT quantizer
        and the auto search start from it): model and calibration bytes, input, normalization,
        toolchain versions."""
        cfg = self.config
        return {
            "onnx_sha256": self.onnx_sha256,
            "calibration_sha256": self.calib_sha256,
            "calibset_size": cfg.optimization.calibset_size,
            "input": cfg.input.model_dump(mode="json"),
            "normalization": cfg.normalization.model_dump(mode="json"),
            "versions": self.versions.model_dump(),
        }

    def describe(self, manifest: LoadedManifest) -> InputsSection:
        """The record's `inputs` section (backends add their own facts)."""
        cfg = self.config
        entry = manifest.data.models[cfg.name].model_dump(mode="json")
        return InputsSection(
            onnx=str(cfg.onnx),
            onnx_sha256=self.onnx_sha256,
            canonical=self.canonical,
            manifest_entry=entry,
            calibration=str(self.calib_path),
            calibration_sha256=self.calib_sha256,
            eval_faces=len(self.eval_faces),
            eval_sha256=self.eval_sha256,
            eval_source=self.eval_source,
            versions=self.versions,
        )


def _read_verified(calib_set: CalibSet, name: str) -> tuple[bytes, str]:
    """The bytes of one array of the set, refused when they are not the recorded ones."""
    path = calib_set.path / name
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise HailocError(
            f"cannot read {name}: {exc.strerror}",
            where=str(path),
            fix=f"rebuild the set with `hailoc calib build {calib_set.name} --images DIR`",
        ) from None
    actual = hashlib.sha256(data).hexdigest()
    recorded = calib_set.manifest.get("arrays", {}).get(name, {}).get("sha256")
    if actual != recorded:
        raise HailocError(
            f"array changed: {name} (sha256 {actual[:12]}... differs from manifest.json's "
            f"{str(recorded)[:12]}...)",
            where=str(path),
            fix=f"run `hailoc calib verify {calib_set.name}`, then rebuild the set with "
            "`hailoc calib build --all` (or restore the file)",
        )
    return data, actual


def _array(data: bytes, path: Path, set_name: str) -> Faces:
    try:
        array = np.load(io.BytesIO(data), allow_pickle=False)
    except (ValueError, OSError) as exc:
        raise HailocError(
            f"not a numpy array ({exc})",
            where=str(path),
            fix=f"rebuild it with `hailoc calib build {set_name} --images DIR`",
        ) from None
    return np.asarray(array)


def gather(manifest: LoadedManifest, model: str) -> BuildInputs:
    """Check the model and load its calibration set; any problem is a one-line HailocError."""
    cfg = manifest.model(model)
    check = check_model(cfg, cache_dir=manifest.cache_dir)
    if check.problems:
        raise check.problems[0]
    assert check.loaded is not None
    if cfg.calib_set is None:
        raise HailocError(
            "no calibration set",
            where=f"models.{cfg.name}.calib_set",
            fix="name a set under calibration/ (build one with `hailoc calib build`)",
        )
    calib_set = open_set(manifest.calibration_dir, cfg.calib_set)
    data, calib_sha = _read_verified(calib_set, "calib.npy")
    calib = _array(data, calib_set.calib, calib_set.name)
    del data  # the raw bytes of a large set: only the array is kept
    height, width = cfg.input.height_width
    if calib.ndim != 4 or calib.shape[1:] != (height, width, 3) or calib.dtype != np.uint8:
        raise HailocError(
            f"calibration array has shape {calib.shape} {calib.dtype}, expected "
            f"(N, {height}, {width}, 3) uint8 aligned RGB faces",
            where=str(calib_set.calib),
            fix=f"rebuild it with `hailoc calib build {cfg.calib_set} --images DIR`",
        )
    if len(calib) == 0:
        raise HailocError(
            "calibration set is empty",
            where=str(calib_set.calib),
            fix=f"rebuild it from photos with faces: `hailoc calib build {cfg.calib_set} "
            "--images DIR`",
        )
    if calib_set.eval is not None:
        eval_data, _ = _read_verified(calib_set, "eval.npy")
        faces = _array(eval_data, calib_set.eval, calib_set.name)
        source = "eval.npy"
    else:
        # Without a held-out split the gate still runs, on faces the quantizer has seen.
        step = len(calib_set.manifest.get("params", {}).get("distances", [1])) or 1
        faces = np.ascontiguousarray(calib[::step][:FALLBACK_EVAL_FACES])
        source = "calib.npy (no eval split: these faces were also used to calibrate)"
    loaded = check.loaded
    if loaded.canonical is not None and loaded.canonical.applied:
        # Proven on seeded random faces when the manifest was read; prove it again on the
        # calibration faces the build will use (cached by those faces).
        again = check_model(cfg, calib[:16], manifest.cache_dir)
        if again.problems:
            raise again.problems[0]
        assert again.loaded is not None
        loaded = again.loaded
    return BuildInputs(
        config=cfg,
        graph=loaded.graph,
        onnx_bytes=loaded.data,
        onnx_proto=loaded.proto,
        onnx_sha256=loaded.sha256,
        calib_path=calib_set.calib,
        calib=calib,
        calib_sha256=calib_sha,
        eval_faces=faces,
        eval_sha256=faces_sha256(faces),
        eval_source=source,
        versions=toolchain_versions(),
        canonical=loaded.canonical,
    )


class InputsCache:
    """`gather` once per model for one invocation: a model built at several precisions or
    targets is checked, hashed and loaded once (big ONNX files make that cost seconds)."""

    def __init__(self, manifest: LoadedManifest) -> None:
        self.manifest = manifest
        self._gathered: dict[str, BuildInputs] = {}
        self._lock = threading.Lock()

    def get(self, model: str) -> BuildInputs:
        """The model's inputs, gathered on first use (thread-safe: batches run in threads)."""
        with self._lock:
            if model not in self._gathered:
                self._gathered[model] = gather(self.manifest, model)
            return self._gathered[model]
