"""The canonical graph hailoc builds: exporter patterns rewritten, each rewrite proven exact.

The rewrite (onnxgraph/canonical.py) is only used when the canonical graph's fp32 output
equals the original's on real inputs: within 1e-5 of the output's scale on the check faces
(the calibration faces when a build has them, seeded random faces otherwise). If the whole set
of rewrites fails the check, each rule is tried alone and the ones that fail are refused, with
a warning naming them; with none left the user's graph is used as given.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
import onnx

from hailoc.cache import StageCache
from hailoc.inference.session import Embedder, open_session
from hailoc.manifest import ModelConfig
from hailoc.onnxgraph.canonical import RULE_NAMES, RULES_VERSION, hailo_layers, rewrite
from hailoc.records.schema import CanonicalSection

log = logging.getLogger(__name__)

TOLERANCE = 1e-5
LABELS = {
    "prelu_decomposed": "decomposed PReLU -> PRelu",
    "relu6": "ReLU6 spelling -> Clip(0, 6)",
    "leaky_max": "Max(x, a*x) -> LeakyRelu",
    "hardswish": "HardSwish spelling -> HardSwish",
    "nhwc_transposes": "NHWC transpose pair removed",
    "conv_scale_bias": "Mul/Add folded into the Conv",
}
CHECK_FACES = 8


@dataclass(frozen=True)
class Canonical:
    """The graph to build and what the pass did (None: the user's graph, untouched)."""

    proto: onnx.ModelProto
    data: bytes
    sha256: str
    report: CanonicalSection | None


def check_faces(seed: int = 0, count: int = CHECK_FACES) -> npt.NDArray[np.uint8]:
    """Seeded random 112x112 faces: what the check uses without a calibration set."""
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (count, 112, 112, 3), dtype=np.uint8)


def canonicalize(
    cfg: ModelConfig,
    proto: onnx.ModelProto,
    data: bytes,
    sha256: str,
    faces: npt.NDArray[np.uint8] | None = None,
    cache_dir: Path | None = None,
) -> Canonical:
    """The canonical graph of `proto` (cached by the original's sha256 and the rule table)."""
    unchanged = Canonical(proto, data, sha256, None)
    if not cfg.canonicalize:
        return unchanged
    faces = check_faces() if faces is None else faces[:16]
    key = hashlib.sha256(
        f"{sha256}|{RULES_VERSION}|{cfg.input.model_dump_json()}|"
        f"{cfg.normalization.model_dump_json()}|{cfg.embedding_output}".encode()
        + np.ascontiguousarray(faces).tobytes()
    ).hexdigest()
    cached = _load(cache_dir, key) if cache_dir is not None else None
    if cached is not None:
        return cached
    result = _build(cfg, proto, data, sha256, faces)
    if cache_dir is not None and result.report is not None:
        _store(cache_dir, key, result)
    return result


def _build(
    cfg: ModelConfig,
    proto: onnx.ModelProto,
    data: bytes,
    sha256: str,
    faces: npt.NDArray[np.uint8],
) -> Canonical:
    rules = RULE_NAMES
    refused: dict[str, str] = {}
    reference: npt.NDArray[np.float32] | None = None
    while True:
        rw = rewrite(proto, rules)
        if not rw.applied:
            break
        if reference is None:
            reference = _outputs(cfg, data, faces)
        canonical_bytes = rw.model.SerializeToString()
        diff = _max_diff(reference, _outputs(cfg, canonical_bytes, faces))
        if diff is not None and diff <= TOLERANCE:
            report = CanonicalSection(
                source_sha256=sha256,
                rules_version=RULES_VERSION,
                applied=dict(rw.applied),
                refused=refused,
                layers_before=hailo_layers(proto),
                layers_after=hailo_layers(rw.model),
                max_diff=diff,
                check_faces=len(faces),
                merged={k: v for k, v in rw.merged.items() if len(v) > 1},
            )
            digest = hashlib.sha256(canonical_bytes).hexdigest()
            return Canonical(rw.model, canonical_bytes, digest, report)
        # Find the rules that break exactness, refuse them, keep the others.
        bad = [
            rule
            for rule in rw.applied
            if (alone := _max_diff(reference, _outputs(cfg, _bytes(proto, rule), faces))) is None
            or alone > TOLERANCE
        ] or list(rw.applied)
        for rule in bad:
            refused[rule] = f"fp32 output changed by more than {TOLERANCE:g}"
            log.warning(
                "%s: canonical rule %s not used: its rewrite changes the fp32 output by more "
                "than %g; building the graph as exported for that pattern",
                cfg.name,
                rule,
                TOLERANCE,
            )
        rules = tuple(r for r in rules if r not in bad)
    if not refused:
        return Canonical(proto, data, sha256, None)
    report = CanonicalSection(
        source_sha256=sha256,
        rules_version=RULES_VERSION,
        refused=refused,
        layers_before=hailo_layers(proto),
        layers_after=hailo_layers(proto),
        check_faces=len(faces),
    )
    return Canonical(proto, data, sha256, report)


def _bytes(proto: onnx.ModelProto, rule: str) -> bytes:
    data: bytes = rewrite(proto, (rule,)).model.SerializeToString()
    return data


def _outputs(
    cfg: ModelConfig, model: bytes, faces: npt.NDArray[np.uint8]
) -> npt.NDArray[np.float32]:
    return Embedder(open_session(model), cfg, cfg.embedding_output)(faces)


def _max_diff(a: npt.NDArray[np.float32], b: npt.NDArray[np.float32]) -> float | None:
    """Largest difference relative to the output's scale (None: not even the same shape)."""
    if a.shape != b.shape:
        return None
    scale = max(1.0, float(np.max(np.abs(a))) if a.size else 1.0)
    return float(np.max(np.abs(a - b))) / scale if a.size else 0.0


def _load(cache_dir: Path, key: str) -> Canonical | None:
    cache = StageCache(cache_dir)
    entry = cache.lookup("canonical", key)
    if entry is None:
        return None
    data = (entry / "model.onnx").read_bytes()
    report = CanonicalSection.model_validate_json((entry / "report.json").read_text())
    return Canonical(onnx.load_from_string(data), data, hashlib.sha256(data).hexdigest(), report)


def _store(cache_dir: Path, key: str, result: Canonical) -> None:
    assert result.report is not None
    report = json.dumps(result.report.model_dump(), indent=1).encode()
    StageCache(cache_dir).store(
        "canonical", key, {"model.onnx": result.data, "report.json": report}
    )


def describe(report: CanonicalSection) -> list[str]:
    """Lines for `models validate` and logs."""
    lines = []
    if report.applied:
        rules = ", ".join(
            f"{LABELS.get(rule, rule)} x{count}" for rule, count in report.applied.items()
        )
        lines.append(
            f"canonical graph: {rules}; Hailo layers {report.layers_before} -> "
            f"{report.layers_after}; fp32 max difference {report.max_diff:.1e} on "
            f"{report.check_faces} faces"
        )
    for rule, why in report.refused.items():
        lines.append(f"canonical rule {rule} refused: {why}; that pattern is built as exported")
    return lines
