"""Switch layers between 8 and 16 bit without running the quantizer again.

The model is quantized twice with the same calibration ranges: every candidate in 8-bit,
and every candidate in 16-bit. Both QDQ graphs have the same nodes; a layer's precision lives
only in the initializers of its tensors (`<t>_scale`, `<t>_zero_point`, and a weight's
`<w>_quantized`, `<w>_quantized_scale`, `<w>_quantized_zero_point`). Any layer set is the
8-bit model with those initializers taken from the 16-bit one, and every int32 bias
requantized with the scales its layer now has (input scale x weight scale), as ORT's
quantizer does. The mixed model equals what quantizing with that set gives.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np
import onnx
from onnx import numpy_helper

SUFFIXES = (
    "_scale",
    "_zero_point",
    "_quantized",
    "_quantized_scale",
    "_quantized_zero_point",
)


@dataclass(frozen=True)
class _Bias:
    """An int32 bias and the scales it is quantized with."""

    name: str  # the float bias initializer's name in the source model
    input_scale: str  # initializer of the layer's input activation scale
    weight_scale: str  # initializer of the layer's weight scale (per channel)


def _biases(model: onnx.ModelProto) -> list[_Bias]:
    dq_scale = {
        n.output[0]: n.input[1] for n in model.graph.node if n.op_type == "DequantizeLinear"
    }
    found = []
    for node in model.graph.node:
        if node.op_type not in ("Conv", "Gemm", "ConvTranspose") or len(node.input) < 3:
            continue
        bias_dq = node.input[2]
        if not bias_dq.endswith("_quantized_DequantizeLinear_Output") and bias_dq not in dq_scale:
            continue
        bias_scale = dq_scale.get(bias_dq, "")
        if not bias_scale.endswith("_quantized_scale"):
            continue
        name = bias_scale.removesuffix("_quantized_scale")
        if node.input[0] in dq_scale and node.input[1] in dq_scale:
            found.append(_Bias(name, dq_scale[node.input[0]], dq_scale[node.input[1]]))
    return found


class Toggle:
    """Mixes an all-8-bit and an all-16-bit QDQ model of the same graph."""

    def __init__(
        self,
        int8: onnx.ModelProto,
        all16: onnx.ModelProto,
        tensors_of: Mapping[str, Iterable[str]],
        float_model: onnx.ModelProto,
    ) -> None:
        self.base = int8
        self.index = {init.name: i for i, init in enumerate(int8.graph.initializer)}
        self.wide = {init.name: init for init in all16.graph.initializer}
        self.swaps: dict[str, tuple[str, ...]] = {}
        for layer, tensors in tensors_of.items():
            names = [
                t + suffix
                for t in tensors
                for suffix in SUFFIXES
                if t + suffix in self.wide and t + suffix in self.index
            ]
            self.swaps[layer] = tuple(names)
        floats = {i.name: i for i in float_model.graph.initializer}
        self.biases = [
            (b, numpy_helper.to_array(floats[b.name]).astype(np.float64))
            for b in _biases(int8)
            if b.name in floats and b.name + "_quantized" in self.index
        ]

    def model(self, layers: Iterable[str]) -> bytes:
        """The serialized QDQ model with `layers` in 16-bit and every other one in 8-bit."""
        mixed = onnx.ModelProto()
        mixed.CopyFrom(self.base)
        inits = mixed.graph.initializer
        for layer in layers:
            for name in self.swaps.get(layer, ()):
                inits[self.index[name]].CopyFrom(self.wide[name])
        for bias, values in self.biases:
            s_in = numpy_helper.to_array(inits[self.index[bias.input_scale]]).astype(np.float64)
            s_w = numpy_helper.to_array(inits[self.index[bias.weight_scale]]).astype(np.float64)
            scale = (s_in.reshape(-1) * s_w.reshape(-1)).astype(np.float32)
            wide_scale = scale.astype(np.float64) * np.ones_like(values)
            quantized = np.clip(np.round(values / wide_scale), -(2**31), 2**31 - 1)
            # Per-tensor weights (the 16-bit overrides) give one bias scale and a scalar zero
            # point, per-channel ones a scale per channel: as ORT writes them.
            zero = np.zeros((), np.int32) if scale.size == 1 else np.zeros(scale.shape, np.int32)
            for suffix, array in (
                ("_quantized", quantized.astype(np.int32)),
                ("_quantized_scale", scale),
                ("_quantized_zero_point", zero),
            ):
                name = bias.name + suffix
                inits[self.index[name]].CopyFrom(numpy_helper.from_array(array, name))
        data: bytes = mixed.SerializeToString()
        return data
