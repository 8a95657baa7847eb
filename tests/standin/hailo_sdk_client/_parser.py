"""Stand-in ONNX -> HN translation with Hailo-style layer names and original_names.

Mirrors what the real parser produces closely enough for hailoc's plan resolution:
Conv(+BN)(+activation) fuse into one `conv`/`dw` layer, Gemm/MatMul into `fc`, residual
Add into `ew_add`, shape-only ops fold into the layer that produced their input.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import onnx
from onnx import shape_inference

FUSABLE = {"BatchNormalization", "Relu", "PRelu", "LeakyRelu", "Clip", "Sigmoid", "HardSwish"}
FOLDED = {"Reshape", "Flatten", "Dropout", "Identity", "Transpose", "Squeeze", "Unsqueeze", "Cast"}
NORM_OPS = {"Sub", "Add", "Mul", "Div"}
TYPE_OF = {
    "Gemm": "fc",
    "MatMul": "fc",
    "Add": "ew_add",
    "Sub": "ew_sub",
    "Mul": "ew_mult",
    "GlobalAveragePool": "avgpool",
    "AveragePool": "avgpool",
    "MaxPool": "maxpool",
    "Concat": "concat",
    "Softmax": "softmax",
    "Resize": "resize",
    "ReduceMean": "reduce_mean",
    "ReduceMax": "reduce_max",
    "ReduceL2": "reduce_l2",
    "BatchNormalization": "batch_norm",
    "LayerNormalization": "layer_normalization",
    # Element-wise ops exporters leave unfused (TF's decomposed PReLU, ReLU6 as Min/Max): the
    # real parser makes a layer of each (issue 31's field report: ~230 layers for a TF
    # MobileFaceNet); these type names are the stand-in's (unverified).
    "Abs": "abs",
    "Neg": "ew_neg",
    "Div": "ew_div",
    "Max": "ew_max",
    "Min": "ew_min",
}
# Ops the stand-in parser knows; anything else fails as the real parser does, naming the op
# (ParsingWithRecommendationException, DFC_FIELD_NOTES section 5).
KNOWN = {"Conv", "ConvTranspose", "Constant", *FUSABLE, *FOLDED, *NORM_OPS, *TYPE_OF}


class ParsingError(Exception):
    """The stand-in's counterpart of the DFC's parsing failure."""


class UnsupportedOpError(ParsingError):
    """An op the parser cannot translate (raised as ParsingWithRecommendationException)."""


def _shape(value: onnx.ValueInfoProto) -> list[int]:
    return [d.dim_value if d.HasField("dim_value") else -1 for d in value.type.tensor_type.shape.dim]


def _nhwc(shape: list[int]) -> list[int]:
    if len(shape) == 4:
        return [-1, shape[2], shape[3], shape[1]]
    return [-1, *shape[1:]]


def translate(
    model: onnx.ModelProto,
    net_name: str,
    start_node_names: list[str] | None = None,
    end_node_names: list[str] | None = None,
    net_input_shapes: dict[str, list[int]] | None = None,
) -> dict[str, Any]:
    """Translate an ONNX model to an HN dict."""
    graph = model.graph
    inits = {i.name: i for i in graph.initializer}
    constants = set(inits) | {o for n in graph.node if n.op_type == "Constant" for o in n.output}
    inferred = shape_inference.infer_shapes(model).graph
    shapes = {v.name: _shape(v) for v in (*inferred.value_info, *inferred.output, *inferred.input)}
    for name, dims in (net_input_shapes or {}).items():
        shapes[name] = list(dims)
    # Start and end nodes are NODE names: a tensor name is not found (third-party reports of
    # `MisspellNodeError: Unable to find end node names`, DFC_FIELD_NOTES section 5).
    node_names = {n.name for n in graph.node} | {v.name for v in graph.input}
    for kind, wanted_names in (("start", start_node_names), ("end", end_node_names)):
        missing = [w for w in wanted_names or [] if w not in node_names]
        if missing:
            raise ParsingError(f"Unable to find {kind} node names: {missing}")

    consumers: dict[str, list[onnx.NodeProto]] = defaultdict(list)
    for node in graph.node:
        for tensor in node.input:
            consumers[tensor].append(node)

    counters: dict[str, int] = defaultdict(int)
    layers: dict[str, dict[str, Any]] = {}
    owner: dict[str, str] = {}  # tensor -> HN layer producing it

    def new_layer(kind: str, original: list[str], inputs: list[str], out_tensor: str,
                  params: dict[str, Any] | None = None) -> str:
        counters[kind] += 1
        name = f"{kind}{counters[kind]}"
        in_layers = [owner[t] for t in inputs if t in owner]
        layers[f"{net_name}/{name}"] = {
            "type": kind,
            "input": [f"{net_name}/{i}" for i in in_layers],
            "output": [],
            "input_shapes": [_nhwc(shapes.get(t, [])) for t in inputs if t in owner],
            "output_shapes": [_nhwc(shapes.get(out_tensor, []))],
            "original_names": original,
            "params": params or {},
        }
        for i in in_layers:
            layers[f"{net_name}/{i}"]["output"].append(f"{net_name}/{name}")
        owner[out_tensor] = name
        return name

    unsupported = sorted({n.op_type for n in graph.node if n.op_type not in KNOWN})
    if unsupported:
        raise UnsupportedOpError(
            "Parsing failed. The errors found in the graph are: "
            + "; ".join(f"UnsupportedOperationError: {op} operation is unsupported"
                        for op in unsupported))
    real_inputs = [v for v in graph.input if v.name not in inits]
    for value in real_inputs:
        counters["input_layer"] += 1
        name = f"input_layer{counters['input_layer']}"
        dims = shapes.get(value.name, [])
        # An NHWC input (a TF export, channels last, then a Transpose) is already HN-shaped.
        shaped = list(dims) if len(dims) == 4 and dims[3] in (1, 3) and dims[1] not in (1, 3) \
            else _nhwc(dims)
        layers[f"{net_name}/{name}"] = {
            "type": "input_layer", "input": [], "output": [],
            "input_shapes": [shaped],
            "output_shapes": [shaped],
            "original_names": [value.name], "params": {},
        }
        owner[value.name] = name

    absorbed: set[str] = set()
    seen_conv = False
    for node in graph.node:
        if node.name in absorbed or node.op_type == "Constant":
            continue
        data_inputs = [t for t in node.input if t and t not in constants]
        if node.op_type in FOLDED:
            src = owner.get(data_inputs[0]) if data_inputs else None
            if src is not None:
                layers[f"{net_name}/{src}"]["original_names"].append(node.name)
                owner[node.output[0]] = src
            continue
        # Input scaling before the first conv becomes the HN `normalization` layer.
        if node.op_type in NORM_OPS and not seen_conv and len(data_inputs) == 1 and any(
            t in constants for t in node.input
        ):
            src = owner.get(data_inputs[0], "")
            if src.startswith("normalization"):
                layers[f"{net_name}/{src}"]["original_names"].append(node.name)
                owner[node.output[0]] = src
            else:
                new_layer("normalization", [node.name], data_inputs, node.output[0])
            continue
        originals = [node.name]
        out = node.output[0]
        if node.op_type in ("Conv", "ConvTranspose"):
            seen_conv = True
            weight = inits.get(node.input[1])
            group = next((a.i for a in node.attribute if a.name == "group"), 1)
            kind = "deconv" if node.op_type == "ConvTranspose" else "conv"
            if weight is not None and group > 1 and group == weight.dims[0]:
                kind = "dw"
            kernel = list(weight.dims[2:]) if weight is not None else []
            params = {"kernel_shape": kernel, "groups": group}
        else:
            kind = TYPE_OF.get(node.op_type, node.op_type.lower())
            params = {}
        # Fuse a chain of single-consumer BN / activation nodes into this layer.
        if kind in ("conv", "dw", "deconv", "fc"):
            while len(consumers[out]) == 1 and consumers[out][0].op_type in FUSABLE:
                nxt = consumers[out][0]
                if kind == "fc" and nxt.op_type == "BatchNormalization":
                    # A BatchNorm1d after the fc parses as its own batch_norm layer and is
                    # fused into the fc during optimization (DFC_FIELD_NOTES section 5).
                    break
                originals.append(nxt.name)
                absorbed.add(nxt.name)
                out = nxt.output[0]
                if nxt.op_type != "BatchNormalization":
                    params["activation"] = nxt.op_type.lower()
        name = new_layer(kind, originals, data_inputs, out, params)
        for tensor in node.output:
            owner.setdefault(tensor, name)

    output_order = []
    for value in graph.output:
        src = owner.get(value.name)
        if src is None:
            raise ParsingError(f"Output {value.name} is not reachable from the inputs")
        counters["output_layer"] += 1
        name = f"output_layer{counters['output_layer']}"
        layers[f"{net_name}/{name}"] = {
            "type": "output_layer", "input": [f"{net_name}/{src}"], "output": [],
            "input_shapes": [_nhwc(shapes.get(value.name, []))],
            "output_shapes": [_nhwc(shapes.get(value.name, []))],
            "original_names": [], "params": {},
        }
        layers[f"{net_name}/{src}"]["output"].append(f"{net_name}/{name}")
        # As in a real HN: the order lists the layers that FEED the outputs (DFC_NOTES, HN).
        output_order.append(f"{net_name}/{src}")

    return {
        "name": net_name,
        "net_params": {"version": "standin", "output_layers_order": output_order},
        "layers": layers,
    }
