"""Which layer kinds can run in 16-bit on Hailo: the one table every plan consults."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class LayerKind:
    """A family of ONNX ops / HN layer types with its 16-bit support on Hailo."""

    name: str
    onnx_ops: tuple[str, ...]
    hn_types: tuple[str, ...]
    a16: bool
    why: str = ""


# Field reports behind the "no" rows are listed in DFC_NOTES (allocator, super-defuse, ...).
KINDS: tuple[LayerKind, ...] = (
    LayerKind("conv", ("Conv", "ConvTranspose"), ("conv", "dw", "deconv"), True),
    LayerKind("fc", ("Gemm", "MatMul"), ("fc",), True),
    LayerKind("batch_norm", ("BatchNormalization",), ("batch_norm",), True),
    LayerKind("elementwise", ("Add", "Sub", "Mul"), ("ew_add", "ew_sub", "ew_mult"), True),
    LayerKind(
        "pooling", ("AveragePool", "GlobalAveragePool", "MaxPool"), ("avgpool", "maxpool"), True
    ),
    LayerKind("output", (), ("output_layer",), True),
    LayerKind("input", (), ("input_layer",), False, "input layers carry no computation"),
    LayerKind(
        "normalization",
        (),
        ("normalization",),
        False,
        "16-bit on the input normalization layer needs super-defuse",
    ),
    LayerKind(
        "softmax",
        ("Softmax", "LogSoftmax"),
        ("softmax",),
        False,
        "16-bit softmax fails in the allocator (BackendAllocatorException)",
    ),
    LayerKind(
        "layer_norm",
        ("LayerNormalization", "InstanceNormalization"),
        ("layer_normalization",),
        False,
        "no 16-bit support (AccelerasUnsupportedError)",
    ),
    LayerKind(
        "reduce",
        ("ReduceMax", "ReduceSum", "ReduceL2", "ReduceMean"),
        ("reduce_max", "reduce_sum", "reduce_l2"),
        False,
        "wide non-conv layer: 16-bit needs super-defuse",
    ),
    LayerKind("resize", ("Resize", "Upsample"), ("resize",), False, "no 16-bit support"),
)

UNKNOWN_WHY = "not in hailoc's 16-bit support table (plan/support.py)"


def kind_for_onnx(op_type: str) -> LayerKind | None:
    """The kind an ONNX op belongs to, if hailoc knows it."""
    return next((k for k in KINDS if op_type in k.onnx_ops), None)


def kind_for_hn(layer_type: str) -> LayerKind | None:
    """The kind an HN layer type belongs to, if hailoc knows it."""
    return next((k for k in KINDS if layer_type in k.hn_types), None)


def a16_refusal(kind: LayerKind | None) -> str | None:
    """Why a layer of this kind cannot be 16-bit, or None when it can."""
    if kind is None:
        return UNKNOWN_WHY
    return None if kind.a16 else kind.why
