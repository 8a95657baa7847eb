"""Evaluate a second QDQ build of a model from where it stops sharing the first build's graph.

Two plans of one model quantize most of the graph alike: int8 and int16-final differ only
from the input of the final layers on, so evaluating the second build runs the whole body
again to reach the part that differs. Every tensor of a QDQ graph gets a digest of what fixes
its value (the op, its attributes, its inputs' digests, its initializers' bytes; the graph
input by name and type). Fed the same faces, two builds' tensors with one digest hold the
same values (the same kernels under the same session options, run on the same bytes).

An evaluation keeps its build's quantized tensors at the last single-tensor cuts of the graph
(every later node depends on the faces only through that tensor), up to `CUT_BUDGET` bytes
per face, in the project cache under the digest and the faces' hash. The next build's
evaluation of the same faces starts from the deepest cut whose digest it finds there and runs
only the rest of its own graph: the same numbers (checked bit for bit on every corpus model),
a fraction of the work.
"""

from __future__ import annotations

import hashlib
import logging
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnx
from onnx import numpy_helper

from hailoc.cache import StageCache, cache_key
from hailoc.faces import Embeddings, Faces
from hailoc.inference.preprocess import input_identity, to_input
from hailoc.inference.session import SplitRunner, as_embeddings, pick_output
from hailoc.manifest import ModelConfig
from hailoc.records import Versions

log = logging.getLogger(__name__)

KIND = "activations"
FILE = "values.npy"
# Bytes per face kept at the graph's last cuts. MobileFaceNet's last two 512x7x7 cuts (the
# final block's output and its activation's) fit, so a plan that changes only the final
# layers' inputs finds the first of them; ~20 MB per 390 faces and size.
CUT_BUDGET = 64 * 1024
SUBGRAPHS = (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS)


def tensor_digests(model: onnx.ModelProto) -> dict[str, str]:
    """sha256 per tensor of what determines its value, given the graph's inputs."""
    digests: dict[str, str] = {}
    for init in model.graph.initializer:
        array = numpy_helper.to_array(init)
        digest = hashlib.sha256(f"init {array.dtype} {array.shape} ".encode())
        digest.update(np.ascontiguousarray(array).tobytes())
        digests[init.name] = digest.hexdigest()
    for value in model.graph.input:
        if value.name not in digests:
            digests[value.name] = hashlib.sha256(
                b"input " + value.name.encode() + value.type.SerializeToString()
            ).hexdigest()
    for node in model.graph.node:
        digest = hashlib.sha256(f"{node.domain}::{node.op_type}".encode())
        for attribute in sorted(node.attribute, key=lambda a: a.name):
            digest.update(attribute.SerializeToString())
        for name in node.input:
            digest.update(b"|" + (digests[name] if name else "-").encode())
        for index, name in enumerate(node.output):
            if name:
                digests[name] = hashlib.sha256(digest.digest() + bytes([index])).hexdigest()
    return digests


@dataclass(frozen=True)
class Cut:
    """A quantized tensor every later node reaches the faces through."""

    tensor: str
    digest: str
    bytes_per_face: int
    # Its inferred type and shape: the input of the graph that runs from it.
    value: onnx.ValueInfoProto = field(compare=False, repr=False)


def cuts(model: onnx.ModelProto) -> list[Cut]:
    """The graph's single-tensor cuts at QuantizeLinear outputs, in graph order, with a known
    size per face. Nodes that read only initializers (weight dequantization) are not data."""
    graph = model.graph
    if any(a.type in SUBGRAPHS for node in graph.node for a in node.attribute):
        return []  # a subgraph may read outer tensors its digest does not see: never cut
    initializers = {i.name for i in graph.initializer}
    outputs = {o.name for o in graph.output}
    data = {i.name for i in graph.input if i.name not in initializers}
    readers: Counter[str] = Counter(name for node in graph.node for name in node.input if name)
    live = set(data)
    found: list[str] = []
    for node in graph.node:
        reads = [name for name in node.input if name in data]
        if not reads:
            continue
        for name in reads:
            readers[name] -= 1
            if readers[name] == 0 and name not in outputs:
                live.discard(name)
        made = {name for name in node.output if name}
        data |= made
        live |= {name for name in made if readers[name] > 0 or name in outputs}
        if node.op_type == "QuantizeLinear" and live == {node.output[0]} and made <= live:
            found.append(node.output[0])
    if not found:
        return []
    shapes = _shapes(model)
    digests = tensor_digests(model)
    return [Cut(name, digests[name], *shapes[name]) for name in found if name in shapes]


def _shapes(model: onnx.ModelProto) -> dict[str, tuple[int, onnx.ValueInfoProto]]:
    """Bytes per face and inferred type of every tensor whose shape (after the batch axis)
    is known."""
    inferred = onnx.shape_inference.infer_shapes(model)
    found: dict[str, tuple[int, onnx.ValueInfoProto]] = {}
    for value in [*inferred.graph.value_info, *inferred.graph.output]:
        kind = value.type.tensor_type
        dims = [d.dim_value if d.HasField("dim_value") else 0 for d in kind.shape.dim]
        if len(dims) < 2 or min(dims[1:]) <= 0 or not kind.elem_type:
            continue
        itemsize = onnx.helper.tensor_dtype_to_np_dtype(kind.elem_type).itemsize
        found[value.name] = (int(np.prod(dims[1:])) * itemsize, value)
    return found


def kept(all_cuts: list[Cut], budget: int = CUT_BUDGET) -> list[Cut]:
    """The last cuts whose values fit in `budget` bytes per face together."""
    chosen: list[Cut] = []
    total = 0
    for cut in reversed(all_cuts):
        if total + cut.bytes_per_face > budget:
            break
        chosen.append(cut)
        total += cut.bytes_per_face
    return chosen[::-1]


def activation_key(digest: str, faces: Faces, cfg: ModelConfig, versions: Versions) -> str:
    """Cache key of one tensor's values for one batch of faces (the preprocessing turns the
    faces into the graph input the digest names)."""
    return cache_key(
        "activations", {"tensor_digest": digest} | input_identity(faces, cfg, versions)
    )


def _with_outputs(model: onnx.ModelProto, names: list[str]) -> bytes:
    extra = onnx.ModelProto()
    extra.CopyFrom(model)
    have = {o.name for o in extra.graph.output}
    for name in names:
        if name not in have:
            extra.graph.output.append(onnx.helper.make_empty_tensor_value_info(name))
    data: bytes = extra.SerializeToString()
    return data


def _suffix(model: onnx.ModelProto, cut: Cut, output: str) -> bytes | None:
    """The part of the graph from `cut` to `output` (every node `output` needs that is not
    upstream of `cut`, with its initializers), or None when `output` needs the graph input
    other than through `cut`."""
    graph = model.graph
    producer = {name: node for node in graph.node for name in node.output if name}
    inits = {i.name: i for i in graph.initializer}
    needed: dict[int, onnx.NodeProto] = {}
    used_inits: dict[str, onnx.TensorProto] = {}
    stack = [output]
    seen = {cut.tensor}
    while stack:
        name = stack.pop()
        if name in seen or not name:
            continue
        seen.add(name)
        if name in inits:
            used_inits[name] = inits[name]
        elif name in producer:
            node = producer[name]
            needed[id(node)] = node
            stack.extend(node.input)
        else:
            return None  # the graph input itself, past the cut
    part = onnx.helper.make_graph(
        [node for node in graph.node if id(node) in needed],
        f"{graph.name}_from_cut",
        [cut.value],
        [o for o in graph.output if o.name == output],
        list(used_inits.values()),
    )
    extracted = onnx.helper.make_model(
        part, opset_imports=list(model.opset_import), ir_version=model.ir_version
    )
    data: bytes = extracted.SerializeToString()
    return data


class SharedPrefixEmbedder:
    """A BatchEmbed of a QDQ build that starts each batch from the deepest cut the project
    cache holds for it (see the module's note), and keeps its own last cuts for the next
    build. Sessions open on first use; the graph is read once."""

    def __init__(
        self,
        model: Path,
        cfg: ModelConfig,
        cache: StageCache,
        versions: Versions,
        workers: int = 0,
    ) -> None:
        self.path = model
        self.cfg = cfg
        self.cache = cache
        self.versions = versions
        self.workers = workers
        self._proto: onnx.ModelProto | None = None
        self._cuts: list[Cut] | None = None
        self._full: SplitRunner | None = None
        self._suffixes: dict[str, SplitRunner | None] = {}
        self.reused: list[str] = []  # the cut each batch started from ("" = the input)

    def _graph(self) -> tuple[onnx.ModelProto, list[Cut], str]:
        if self._proto is None:
            self._proto = onnx.load(str(self.path))
            self._cuts = cuts(self._proto)
        assert self._cuts is not None
        output = pick_output([o.name for o in self._proto.graph.output], self.cfg.embedding_output)
        return self._proto, self._cuts, output

    def __call__(self, batches: list[Faces]) -> list[Embeddings]:
        return [self._embed(batch) for batch in batches]

    def _embed(self, faces: Faces) -> Embeddings:
        if len(faces) == 0:
            return np.zeros((0, 0), dtype=np.float32)
        model, found, output = self._graph()
        for cut in reversed(found):
            key = activation_key(cut.digest, faces, self.cfg, self.versions)
            try:
                stored = self.cache.read_array(KIND, key, FILE)
            except (ValueError, OSError):  # verified bytes that are not an array: pass over
                continue
            if stored is None:
                continue
            runner = self._suffix_runner(model, cut, output)
            if runner is None or len(stored) != len(faces):
                continue
            self.reused.append(cut.tensor)
            (y,) = runner.run(stored, [output])
            return as_embeddings(y)
        self.reused.append("")
        keep = kept(found)
        if self._full is None:
            self._full = SplitRunner(
                _with_outputs(model, [c.tensor for c in keep]), self.workers, self.cfg.input.name
            )
        y, *values = self._full.run(to_input(faces, self.cfg), [output, *(c.tensor for c in keep)])
        for cut, value in zip(keep, values, strict=True):
            key = activation_key(cut.digest, faces, self.cfg, self.versions)
            self.cache.store_array(KIND, key, FILE, value)
        return as_embeddings(y)

    def _suffix_runner(self, model: onnx.ModelProto, cut: Cut, output: str) -> SplitRunner | None:
        if cut.tensor not in self._suffixes:
            part = _suffix(model, cut, output)
            self._suffixes[cut.tensor] = (
                None if part is None else SplitRunner(part, self.workers, cut.tensor)
            )
        return self._suffixes[cut.tensor]
