"""Which layer kinds can run in 16-bit on Hailo: the one table every plan consults.

Each row cites its public evidence (details and links in docs/dfc-behaviour.md); a row with
none says "unverified". There is no public per-layer-type support table: where the evidence
is only that the model zoo compiles a16_w16 on a layer type, the row says so.
"""

from __future__ import annotations

from dataclasses import dataclass

MZ = "hailo_model_zoo cfg/alls"
NB16 = "Hailo-Application-Code-Examples compilation/16bit_optimization"


@dataclass(frozen=True)
class LayerKind:
    """A family of ONNX ops / HN layer types with its 16-bit support on Hailo."""

    name: str
    onnx_ops: tuple[str, ...]
    hn_types: tuple[str, ...]
    a16: bool
    why: str = ""
    evidence: str = "unverified"


KINDS: tuple[LayerKind, ...] = (
    LayerKind(
        "conv",
        ("Conv", "ConvTranspose"),
        ("conv", "dw", "deconv"),
        True,
        evidence=f"{MZ} (a16_w16 on conv layers); {NB16}",
    ),
    LayerKind(
        "fc",
        ("Gemm", "MatMul"),
        ("fc",),
        True,
        evidence="third-party arcface HEFs compiled with a16_w16 on fc1 (DFC_FIELD_NOTES "
        "section 2 [T]); no model-zoo script puts 16-bit on fc",
    ),
    LayerKind(
        "batch_norm",
        ("BatchNormalization",),
        ("batch_norm",),
        False,
        "no Hailo script puts a16_w16 on a standalone batch_norm (after a conv or fc it is "
        "fused into that layer and 16-bit with it)",
        evidence="DFC_FIELD_NOTES sections 2 and 5 (BN1d fused into fc1; unverified)",
    ),
    LayerKind(
        "add",
        ("Add",),
        ("ew_add",),
        True,
        evidence=f"{MZ} (a16_w16 on ew_add); {NB16} (shortcut/add take their inputs' precision)",
    ),
    LayerKind(
        "elementwise",
        ("Sub", "Mul", "Div", "Max", "Min", "Abs", "Neg"),
        ("ew_sub", "ew_mult", "ew_div", "ew_max", "ew_min", "abs", "ew_neg"),
        False,
        "no Hailo script puts a16_w16 on these element-wise layers (canonical graphs rewrite "
        "the common spellings into fused activations)",
        evidence="unverified (DFC_FIELD_NOTES section 2: no public support table)",
    ),
    LayerKind("maxpool", ("MaxPool",), ("maxpool",), True, evidence=f"{MZ} (a16_w16 on maxpool)"),
    LayerKind(
        "avgpool",
        ("AveragePool", "GlobalAveragePool"),
        ("avgpool",),
        False,
        "no Hailo script puts a16_w16 on avgpool",
        evidence="DFC_FIELD_NOTES section 2 (unverified)",
    ),
    LayerKind(
        "output",
        (),
        ("output_layer",),
        True,
        evidence=f"{MZ}/generic/fast_depth.alls: quantization_param(output_layer1, "
        "precision_mode=a16_w16)",
    ),
    LayerKind(
        "concat_slice",
        ("Concat", "Slice", "Split"),
        ("concat", "slice", "feature_splitter"),
        True,
        evidence=f"{MZ} (a16_w16 on concat, slice); {NB16} (output the input's precision)",
    ),
    LayerKind(
        "format_conversion",
        (),
        ("format_conversion",),
        True,
        evidence=f"{MZ} (a16_w16 on format_conversion)",
    ),
    LayerKind(
        "input",
        (),
        ("input_layer",),
        False,
        "input layers carry no computation: 16-bit there only widens the input stream",
        evidence=f"{MZ} puts a16_w16 on input_layer; hailoc keeps it out of presets",
    ),
    LayerKind(
        "normalization",
        (),
        ("normalization",),
        False,
        "16-bit on the input normalization layer has failed with 'needs super-defuse'",
        evidence="DFC_NOTES field report (super-defuse); hailo_model_zoo cfg/alls puts a16_w16 "
        "on normalization in some scripts",
    ),
    LayerKind(
        "softmax",
        ("Softmax", "LogSoftmax"),
        ("softmax",),
        False,
        "16-bit softmax fails in the allocator (BackendAllocatorException)",
        evidence="DFC_NOTES field report",
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
        ("reduce_max", "reduce_sum", "reduce_l2", "reduce_mean"),
        False,
        "wide non-conv layer: 16-bit needs super-defuse",
        evidence="DFC_NOTES field report; hailo_model_zoo cfg/alls uses {reduce_sum*} in 16-bit",
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
