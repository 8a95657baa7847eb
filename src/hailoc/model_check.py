"""Check a manifest entry against its ONNX graph: inputs, normalization, parser nodes."""

from __future__ import annotations

import dataclasses
import hashlib
import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import numpy.typing as npt
import onnx

from hailoc.canonicalize import canonicalize
from hailoc.canonicalize import describe as describe_canonical
from hailoc.errors import HailocError, ManifestError, OnnxError
from hailoc.manifest import ModelConfig
from hailoc.manifest.families import FAMILIES
from hailoc.manifest.schema import ALIGNED_SIZE
from hailoc.onnxgraph import GraphInfo, inspect_model, load_onnx
from hailoc.records.schema import CanonicalSection

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LoadedModel:
    """An ONNX file read once, as hailoc builds it: the canonical graph's bytes, their sha256,
    the parsed proto and graph facts, with what canonicalization did (None: untouched)."""

    data: bytes
    sha256: str
    proto: onnx.ModelProto
    graph: GraphInfo
    canonical: CanonicalSection | None = None


@dataclass
class ModelCheck:
    """The outcome of validating one model: graph facts, problems, warnings."""

    config: ModelConfig
    loaded: LoadedModel | None = None
    problems: list[HailocError] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def graph(self) -> GraphInfo | None:
        """Graph facts, when the file could be read."""
        return self.loaded.graph if self.loaded else None

    @property
    def ok(self) -> bool:
        """True when nothing blocks compiling this model."""
        return self.graph is not None and not self.problems


def _where(cfg: ModelConfig, key: str) -> str:
    return f"models.{cfg.name}.{key}"


def load_model(
    cfg: ModelConfig,
    faces: npt.NDArray[np.uint8] | None = None,
    cache_dir: Path | None = None,
) -> LoadedModel:
    """Read the model's ONNX once, hash those bytes, canonicalize and inspect them, or raise
    one clear error. `faces` check the canonical graph's exactness (seeded random faces when
    None); `cache_dir` keeps the canonical graph between runs."""
    where = f"{_where(cfg, 'onnx')} ({cfg.onnx_field})"
    if not cfg.onnx.is_file():
        raise OnnxError(
            f"file {cfg.onnx} not found",
            where=where,
            fix="put the model there or correct the path in models.yaml",
        )
    try:
        data = cfg.onnx.read_bytes()
    except OSError as exc:
        raise OnnxError(
            f"cannot read {cfg.onnx}: {exc.strerror}", where=where, fix="check the file"
        ) from None
    actual = hashlib.sha256(data).hexdigest()
    if cfg.sha256 is not None and actual != cfg.sha256:
        raise OnnxError(
            f"sha256 is {actual[:12]}..., manifest says {cfg.sha256[:12]}...",
            where=_where(cfg, "sha256"),
            fix="restore the original file, or update sha256 if the model changed on purpose",
        )
    model = load_onnx(cfg.onnx, where=where, data=data)
    found = canonicalize(cfg, model, data, actual, faces, cache_dir)
    graph = inspect_model(found.proto, cfg.onnx, cfg.embedding_output)
    if found.report is not None and found.report.merged:
        merged = {k: tuple(v) for k, v in found.report.merged.items()}
        graph = dataclasses.replace(graph, merged=merged)
    return LoadedModel(found.data, found.sha256, found.proto, graph, found.report)


def load_graph(cfg: ModelConfig) -> GraphInfo:
    """The model's graph facts (see load_model)."""
    return load_model(cfg).graph


def check_model(
    cfg: ModelConfig,
    faces: npt.NDArray[np.uint8] | None = None,
    cache_dir: Path | None = None,
) -> ModelCheck:
    """Validate one model entry against its graph; never raises for model problems."""
    check = ModelCheck(cfg)
    try:
        check.loaded = load_model(cfg, faces, cache_dir)
    except HailocError as exc:
        check.problems.append(exc)
        return check
    graph = check.loaded.graph
    if check.loaded.canonical is not None:
        check.notes.extend(describe_canonical(check.loaded.canonical))
    check.problems.extend(_input_problems(cfg, graph))
    check.problems.extend(_normalization_problems(cfg, graph))
    check.problems.extend(_node_problems(cfg, graph))
    check.warnings.extend(_family_warnings(cfg))
    if cfg.family == "insightface":
        from hailoc.interop import insightface

        problem = insightface.mismatch(cfg, cfg.onnx)
        if problem is not None:
            check.problems.append(problem)
        else:
            conv = insightface.convention(cfg.onnx)
            check.notes.append(
                f"fp32 reference: insightface ArcFaceONNX.get_feat, which feeds this graph "
                f"mean {conv.mean:g} / std {conv.std:g} ({conv.why})"
            )
    batch = graph.static_batch(cfg.input.name)
    if batch not in (None, 1):
        check.notes.append(
            f"static batch {batch}: evaluation pads the last chunk; the DFC is given batch 1"
        )
    return check


def _input_problems(cfg: ModelConfig, graph: GraphInfo) -> list[HailocError]:
    declared = cfg.input
    if len(graph.inputs) != 1:
        return [
            ManifestError(
                f"the graph has {len(graph.inputs)} inputs ({', '.join(graph.inputs) or 'none'});"
                " hailoc compiles single-input face embedders",
                where=_where(cfg, "onnx"),
                fix="export the embedder with one image input (fold constants into the graph)",
            )
        ]
    if declared.name not in graph.inputs:
        return [
            ManifestError(
                f"input {declared.name!r} is not in the graph (graph inputs: "
                f"{', '.join(graph.inputs) or 'none'})",
                where=_where(cfg, "input.name"),
                fix="set input.name to one of the graph inputs",
            )
        ]
    dims = graph.inputs[declared.name]
    mismatch = len(dims) != len(declared.shape) or any(
        isinstance(g, int) and g > 0 and g != d for g, d in zip(dims, declared.shape, strict=False)
    )
    if mismatch:
        shown = "[" + ", ".join(str(d) for d in dims) + "]"
        return [
            ManifestError(
                f"shape {list(declared.shape)} does not match the graph's {shown}",
                where=_where(cfg, "input.shape"),
                fix=f"set input.shape to {shown} (symbolic dims may be any positive size)",
            )
        ]
    if declared.height_width != (ALIGNED_SIZE, ALIGNED_SIZE):
        return [
            ManifestError(
                f"input {declared.height_width[0]}x{declared.height_width[1]}: calibration and "
                f"eval faces are aligned to the {ALIGNED_SIZE}x{ALIGNED_SIZE} ArcFace template",
                where=_where(cfg, "input.shape"),
                fix=f"use a {ALIGNED_SIZE}x{ALIGNED_SIZE} export of the embedder",
            )
        ]
    return []


def _normalization_problems(cfg: ModelConfig, graph: GraphInfo) -> list[HailocError]:
    baked = graph.in_graph_normalization
    if baked and not cfg.normalization.in_graph:
        return [
            ManifestError(
                f"double normalization: the graph already normalizes its input "
                f"({', '.join(baked)}) and the manifest adds mean/std",
                where=_where(cfg, "normalization"),
                fix="set normalization: {in_graph: true}",
            )
        ]
    if cfg.normalization.in_graph and not baked:
        return [
            ManifestError(
                "in_graph: true, but the graph has no Sub/Add/Mul/Div on its input before the "
                "first Conv, so raw pixels would reach the network",
                where=_where(cfg, "normalization"),
                fix="declare the mean and std the model was trained with",
            )
        ]
    return []


def _node_problems(cfg: ModelConfig, graph: GraphInfo) -> list[HailocError]:
    problems: list[HailocError] = []
    names = set(graph.node_names) | set(graph.inputs)
    producer = {t: n.name for n in graph.nodes for t in n.outputs}
    for key, wanted in (("start_nodes", cfg.start_nodes), ("end_nodes", cfg.end_nodes)):
        missing = [n for n in wanted if n not in names]
        # The DFC's parser takes node names only: a tensor name fails there with
        # "MisspellNodeError: Unable to find end node names" (docs/dfc-behaviour.md).
        tensors = [n for n in missing if n in producer]
        if tensors:
            problems.append(
                ManifestError(
                    ", ".join(f"{t!r} is a tensor, not a node" for t in tensors)
                    + " (the Hailo parser takes node names)",
                    where=_where(cfg, key),
                    fix="use the node that produces it: "
                    + ", ".join(f"{producer[t]!r}" for t in tensors),
                )
            )
        missing = [n for n in missing if n not in producer]
        if missing:
            problems.append(
                ManifestError(
                    f"{', '.join(missing)} not found among the graph's nodes",
                    where=_where(cfg, key),
                    fix="use node names as shown by Netron or `hailoc models validate -v`",
                )
            )
    if cfg.embedding_output is not None and cfg.embedding_output not in graph.tensors:
        problems.append(
            ManifestError(
                f"tensor {cfg.embedding_output!r} is not produced by the graph (outputs: "
                f"{', '.join(graph.outputs)})",
                where=_where(cfg, "embedding_output"),
                fix="name the tensor that holds the embedding, or remove the key",
            )
        )
    return problems


def _family_warnings(cfg: ModelConfig) -> list[str]:
    family = FAMILIES.get(cfg.family)
    norm = cfg.normalization
    if family is None or norm.in_graph or norm.mean is None or norm.std is None:
        return []
    warnings = []
    if any(abs(m - family.mean) > 1e-6 for m in norm.mean) or any(
        abs(s - family.std) > 1e-6 for s in norm.std
    ):
        warnings.append(
            f"normalization mean {list(norm.mean)} / std {list(norm.std)} differs from the "
            f"{cfg.family} family's {family.mean} / {family.std} ({family.source})"
        )
    if cfg.input.color != family.color:
        warnings.append(
            f"input.color {cfg.input.color} differs from the {cfg.family} family's {family.color}"
        )
    return warnings
