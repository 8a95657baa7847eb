"""Load an ONNX file and summarise the parts of its graph that matter for compiling it."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import onnx
from onnx import shape_inference

from hailoc.errors import OnnxError
from hailoc.onnxgraph.layout import Dims, Layout, NodeView, is_spatial, propagate, spatial_size

# Ops that only move or relabel data; they are looked through when searching the input's path.
PASS_THROUGH = frozenset({"Transpose", "Cast", "Identity", "Unsqueeze", "Squeeze", "Reshape"})
NORMALIZING = frozenset({"Sub", "Add", "Mul", "Div", "BatchNormalization"})
WEIGHT_OPS = frozenset({"Conv", "ConvTranspose", "Gemm", "MatMul", "BatchNormalization"})


@dataclass(frozen=True)
class NodeInfo:
    """One ONNX node with the facts planning needs."""

    name: str
    op_type: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    out_shape: tuple[int, ...] | None
    has_weights: bool
    depthwise: bool = False


@dataclass(frozen=True)
class GraphInfo:
    """What hailoc knows about a model graph after reading it."""

    path: Path
    opset: int
    ir_version: int
    inputs: dict[str, tuple[int | str, ...]]
    outputs: dict[str, tuple[int | str, ...]]
    nodes: tuple[NodeInfo, ...]
    in_graph_normalization: tuple[str, ...]
    embedding_output: str
    final_block: tuple[str, ...]
    tensors: frozenset[str] = field(default_factory=frozenset)
    # The node that ends the spatial part of the embedding's path (global pool, GDC, ...).
    reduction: str | None = None
    layouts: dict[str, Layout] = field(default_factory=dict)
    # Canonical graphs: node -> the user's nodes it stands for, where several became one.
    merged: dict[str, tuple[str, ...]] = field(default_factory=dict)
    _index: dict[str, NodeInfo] = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        # Name lookups happen per planned node: keep them O(1) on 1000-node graphs.
        object.__setattr__(self, "_index", {n.name: n for n in self.nodes})

    @property
    def node_names(self) -> list[str]:
        """Node names in graph order."""
        return [n.name for n in self.nodes]

    def node(self, name: str) -> NodeInfo | None:
        """The node called `name`, if any."""
        return self._index.get(name)

    def carrier(self, name: str) -> str | None:
        """The canonical node that carries the user's node `name` (itself when it is kept)."""
        if name in self._index:
            return name
        return next((k for k, v in self.merged.items() if name in v), None)

    def static_batch(self, input_name: str) -> int | None:
        """The fixed batch size of an input, or None when it is symbolic."""
        dims = self.inputs.get(input_name, ())
        return dims[0] if dims and isinstance(dims[0], int) and dims[0] > 0 else None

    @property
    def weight_nodes(self) -> list[NodeInfo]:
        """Nodes that carry trainable weights, in graph order."""
        return [n for n in self.nodes if n.has_weights]


def load_onnx(
    path: Path, *, where: str | None = None, data: bytes | None = None
) -> onnx.ModelProto:
    """Load and check an ONNX file (or its bytes, already read), as one OnnxError line."""
    label = where or str(path)
    if data is None and not path.is_file():
        raise OnnxError(
            f"ONNX file {path} not found",
            where=label,
            fix="put the model there or correct the path",
        )
    try:
        model = onnx.load_from_string(data) if data is not None else onnx.load(str(path))
        onnx.checker.check_model(model)
    except Exception as exc:  # onnx raises DecodeError, ValidationError, OSError, ...
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise OnnxError(
            f"{path.name} is not a valid ONNX model ({first[:160]})",
            where=label,
            fix="re-export the model or point the manifest at the right file",
        ) from None
    return model


def _dims(value: onnx.ValueInfoProto) -> tuple[int | str, ...]:
    dims: list[int | str] = []
    for dim in value.type.tensor_type.shape.dim:
        if dim.HasField("dim_value"):
            dims.append(int(dim.dim_value))
        else:
            dims.append(dim.dim_param or "?")
    return tuple(dims)


def _static(shape: tuple[int | str, ...] | None) -> tuple[int, ...] | None:
    if shape is None or not all(isinstance(d, int) for d in shape):
        return None
    return tuple(int(d) for d in shape)


def _node_name(node: onnx.NodeProto, index: int) -> str:
    # Unnamed nodes are common in exported graphs; their first output is stable and unique.
    return node.name or (node.output[0] if node.output else f"node_{index}")


def _perm(node: onnx.NodeProto) -> tuple[int, ...] | None:
    if node.op_type != "Transpose":
        return None
    return tuple(int(v) for v in _attr(node, "perm", ()))


def _attr(node: onnx.NodeProto, name: str, default: Any) -> Any:
    for attr in node.attribute:
        if attr.name == name:
            return onnx.helper.get_attribute_value(attr)
    return default


def inspect_model(model: onnx.ModelProto, path: Path, embedding_output: str | None) -> GraphInfo:
    """Summarise a loaded model: inputs, outputs, nodes, in-graph normalization, final block."""
    graph = model.graph
    initializers = {init.name: tuple(init.dims) for init in graph.initializer}
    constants = set(initializers) | {
        out for node in graph.node if node.op_type == "Constant" for out in node.output
    }
    try:
        inferred = shape_inference.infer_shapes(model).graph
    except Exception:  # shape inference is a nicety; plans fall back to graph order
        inferred = graph
    shapes = {v.name: _dims(v) for v in (*inferred.value_info, *inferred.output, *inferred.input)}
    inputs = {v.name: _dims(v) for v in graph.input if v.name not in initializers}
    outputs = {v.name: _dims(v) for v in graph.output}

    nodes: list[NodeInfo] = []
    for index, node in enumerate(graph.node):
        has_weights = node.op_type in WEIGHT_OPS and any(i in constants for i in node.input[1:])
        depthwise = False
        if node.op_type == "Conv" and len(node.input) > 1 and node.input[1] in initializers:
            group = int(_attr(node, "group", 1))
            depthwise = group > 1 and group == initializers[node.input[1]][0]
        nodes.append(
            NodeInfo(
                name=_node_name(node, index),
                op_type=node.op_type,
                inputs=tuple(node.input),
                outputs=tuple(node.output),
                out_shape=_static(shapes.get(node.output[0])) if node.output else None,
                has_weights=has_weights,
                depthwise=depthwise,
            )
        )

    embedding = embedding_output or (next(iter(outputs)) if outputs else "")
    tensors = frozenset(t for n in nodes for t in n.outputs) | frozenset(inputs)
    layouts = propagate(
        [
            NodeView(n.op_type, n.inputs, n.outputs, _perm(node))
            for n, node in zip(nodes, graph.node, strict=True)
        ],
        inputs,
        shapes,
    )
    on_path = _ancestors(nodes, embedding)
    reduction = _reduction(on_path, shapes, layouts)
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)
    return GraphInfo(
        path=path,
        opset=int(opset),
        ir_version=int(model.ir_version),
        inputs=inputs,
        outputs=outputs,
        nodes=tuple(nodes),
        in_graph_normalization=tuple(_input_normalization(nodes, set(inputs), constants)),
        embedding_output=embedding,
        final_block=tuple(_final_block(on_path, reduction)),
        tensors=tensors,
        reduction=reduction.name if reduction else None,
        layouts=layouts,
    )


def _consumer_map(nodes: Iterable[NodeInfo]) -> dict[str, list[NodeInfo]]:
    consumers: dict[str, list[NodeInfo]] = {}
    for node in nodes:
        for tensor in node.inputs:
            consumers.setdefault(tensor, []).append(node)
    return consumers


def _input_normalization(nodes: list[NodeInfo], inputs: set[str], constants: set[str]) -> list[str]:
    """Nodes that scale or shift the raw input before the first convolution.

    Sub/Add/Mul/Div with a constant (torchvision-style Normalize, MXNet's _minusscalar and
    _mulscalar) or a BatchNormalization, reached from the input through layout-only ops.
    """
    consumers = _consumer_map(nodes)
    found: list[str] = []
    frontier = list(inputs)
    seen: set[str] = set()
    while frontier:
        tensor = frontier.pop()
        for node in consumers.get(tensor, []):
            if node.name in seen:
                continue
            seen.add(node.name)
            if node.op_type in NORMALIZING and (
                node.op_type == "BatchNormalization"
                or any(i in constants for i in node.inputs if i != tensor)
            ):
                found.append(node.name)
                frontier.extend(node.outputs)
            elif node.op_type in PASS_THROUGH:
                frontier.extend(node.outputs)
            # Anything else (Conv, Pad, ...) ends the search on this path.
    return found


def _ancestors(nodes: list[NodeInfo], tensor: str) -> list[NodeInfo]:
    producer = {out: n for n in nodes for out in n.outputs}
    keep: set[str] = set()
    stack = [tensor]
    while stack:
        node = producer.get(stack.pop())
        if node is None or node.name in keep:
            continue
        keep.add(node.name)
        stack.extend(node.inputs)
    return [n for n in nodes if n.name in keep]


def _reduction(
    path: list[NodeInfo], shapes: dict[str, Dims], layouts: dict[str, Layout]
) -> NodeInfo | None:
    """The last node on the embedding's path that turns a spatial tensor into a non-spatial
    one (under each tensor's own layout: a (1, 1, 1, 192) NHWC tensor is not spatial)."""
    found = None
    for node in path:
        spatial_in = any(is_spatial(shapes.get(i), layouts.get(i, "unknown")) for i in node.inputs)
        out = node.outputs[0] if node.outputs else ""
        out_shape = shapes.get(out)
        if (
            spatial_in
            and out_shape is not None
            and spatial_size(out_shape, layouts.get(out, "unknown")) == 1
        ):
            found = node
    return found


def _final_block(path: list[NodeInfo], reduction: NodeInfo | None) -> list[str]:
    """Weight nodes from the last spatial reduction to the embedding output.

    The reduction itself counts when it carries weights: MobileFaceNet's global depthwise
    conv (7x7 -> 1x1) is exactly where far-face signal is squeezed hardest.
    """
    if not path:
        return []
    if reduction is None:
        # Without shapes, the last weight layer is the safest reading of "final block".
        weights = [n.name for n in path if n.has_weights]
        return weights[-1:]
    start = next(i for i, n in enumerate(path) if n.name == reduction.name)
    return [n.name for n in path[start:] if n.has_weights]
