"""Follow each tensor's layout (NCHW, NHWC, flat) through the graph, so spatial tensors are
recognised whatever the exporter: PyTorch (NCHW throughout), TensorFlow/TFLite (Transposes to
NHWC around convolutions or before the head), MXNet (NCHW with Sub/Mul on the input).

One pass in graph order: linear in the number of nodes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

Layout = Literal["NCHW", "NHWC", "flat", "unknown"]
Dims = tuple[int | str, ...]

# Ops whose ONNX definition is channels-first on 4-D tensors.
CHANNELS_FIRST = frozenset(
    {
        "Conv",
        "ConvTranspose",
        "MaxPool",
        "AveragePool",
        "GlobalAveragePool",
        "GlobalMaxPool",
        "BatchNormalization",
        "InstanceNormalization",
        "LRN",
        "Resize",
        "Upsample",
        "DepthToSpace",
        "SpaceToDepth",
    }
)
TO_NHWC = (0, 2, 3, 1)
TO_NCHW = (0, 3, 1, 2)


@dataclass(frozen=True)
class NodeView:
    """What the layout pass needs of a node."""

    op_type: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    perm: tuple[int, ...] | None = None  # Transpose only


def _rank(shape: Dims | None) -> int | None:
    return None if shape is None else len(shape)


def input_layout(shape: Dims) -> Layout:
    """A graph input's layout from where its 3 colour channels sit."""
    if len(shape) != 4:
        return "flat" if len(shape) <= 2 else "unknown"
    if shape[1] == 3:
        return "NCHW"
    if shape[3] == 3:
        return "NHWC"
    return "unknown"


def propagate(
    nodes: Sequence[NodeView], inputs: Mapping[str, Dims], shapes: Mapping[str, Dims]
) -> dict[str, Layout]:
    """The layout of every tensor produced in the graph."""
    layout: dict[str, Layout] = {name: input_layout(dims) for name, dims in inputs.items()}
    for node in nodes:
        first: Layout = next((layout[t] for t in node.inputs if t in layout), "unknown")
        out_rank = _rank(shapes.get(node.outputs[0])) if node.outputs else None
        produced: Layout
        if out_rank is not None and out_rank <= 2:
            produced = "flat"
        elif node.op_type in CHANNELS_FIRST:
            produced = "NCHW"
        elif node.op_type == "Transpose":
            perm = node.perm or ()
            if first == "NCHW" and perm == TO_NHWC:
                produced = "NHWC"
            elif first == "NHWC" and perm == TO_NCHW:
                produced = "NCHW"
            else:
                produced = "unknown" if out_rank == 4 else first
        elif node.op_type in ("Reshape", "Flatten", "Squeeze", "Unsqueeze"):
            produced = "unknown" if out_rank not in (None, 0, 1, 2) else "flat"
        elif node.op_type in ("Gemm", "MatMul"):
            produced = "flat" if out_rank in (None, 2) else first
        else:
            # Elementwise ops, activations (PReLU and its Relu/Abs/Sub/Mul decomposition),
            # Pad, Clip, ...: the layout of their data input.
            produced = first
        for tensor in node.outputs:
            layout[tensor] = produced
    return layout


def spatial_size(shape: Dims | None, layout: Layout) -> int | None:
    """H*W of a tensor under its layout (None when unknowable); 1 for flat tensors."""
    if shape is None:
        return None
    if layout == "flat" or len(shape) <= 2:
        return 1
    if len(shape) != 4:
        return None
    dims = (shape[2], shape[3]) if layout == "NCHW" else (shape[1], shape[2])
    if layout == "unknown":
        # A 4-D tensor of unknown layout: spatial only if two non-batch dims exceed 1.
        sizes = [d for d in shape[1:] if isinstance(d, int)]
        if len(sizes) < 3:
            return None
        return 1 if sum(d > 1 for d in sizes) <= 1 else 2
    if not all(isinstance(d, int) for d in dims):
        return None
    return int(dims[0]) * int(dims[1])


def is_spatial(shape: Dims | None, layout: Layout) -> bool:
    """True when the tensor still has a spatial extent (H*W > 1)."""
    size = spatial_size(shape, layout)
    return size is not None and size > 1
