"""Numpy interpreter for the stand-in's emulation: fp32 and fake-quantized (a8 / a16) runs.

Only what face embedders use: Conv (any group), Gemm/MatMul, BatchNormalization, PRelu/Relu,
elementwise ops, pooling and shape ops. Quantization: symmetric per-channel weights,
asymmetric per-tensor activations from calibrated ranges, 16-bit where the .alls says a16_w16.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import onnx
from onnx import numpy_helper

_NORM = re.compile(r"normalization\(\s*\[([^\]]*)\]\s*,\s*\[([^\]]*)\]\s*\)")
_A16 = re.compile(r"quantization_param\(\s*(\[[^\]]*\]|[\w/]+)\s*,\s*precision_mode\s*=\s*a16_w16")
_CHUNK = 8


def _attrs(node: onnx.NodeProto) -> dict[str, Any]:
    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


def _conv(x: np.ndarray, w: np.ndarray, b: np.ndarray | None, at: dict[str, Any]) -> np.ndarray:
    # Taps gathered by slicing and contracted with tensordot (BLAS): einsum over strided
    # windows is ten times slower on the suite images' numpy 1.24.
    kh, kw = w.shape[2:]
    sh, sw = at.get("strides", [1, 1])
    pt, pl, pb, pr = at.get("pads", [0, 0, 0, 0])
    group = at.get("group", 1)
    xp = np.pad(x, ((0, 0), (0, 0), (pt, pb), (pl, pr)))
    oh = (xp.shape[2] - kh) // sh + 1
    ow = (xp.shape[3] - kw) // sw + 1

    def tap(i: int, j: int, part: np.ndarray) -> np.ndarray:
        return part[:, :, i:i + sh * (oh - 1) + 1:sh, j:j + sw * (ow - 1) + 1:sw]

    def dense(part: np.ndarray, weights: np.ndarray) -> np.ndarray:
        cols = np.empty((part.shape[0], part.shape[1], kh, kw, oh, ow), dtype=np.float32)
        for i in range(kh):
            for j in range(kw):
                cols[:, :, i, j] = tap(i, j, part)
        return np.tensordot(weights, cols, axes=([1, 2, 3], [1, 2, 3])).transpose(1, 0, 2, 3)

    if group == 1:
        y = dense(xp, w)
    elif group == x.shape[1] == w.shape[0]:
        y = np.zeros((x.shape[0], x.shape[1], oh, ow), dtype=np.float32)
        for i in range(kh):
            for j in range(kw):
                y += tap(i, j, xp) * w[:, 0, i, j][None, :, None, None]
    else:
        cin, cout = x.shape[1] // group, w.shape[0] // group
        y = np.concatenate([dense(xp[:, g * cin:(g + 1) * cin], w[g * cout:(g + 1) * cout])
                            for g in range(group)], axis=1)
    if b is not None:
        y = y + b[None, :, None, None]
    return y.astype(np.float32)


def _gemm(x: np.ndarray, w: np.ndarray, b: np.ndarray | None, at: dict[str, Any]) -> np.ndarray:
    x = x.reshape(x.shape[0], -1)
    w = w.T if at.get("transB", 0) else w
    y = x @ w
    return y + b if b is not None else y


def _fake_quant(x: np.ndarray, lo: float, hi: float, bits: int) -> np.ndarray:
    lo, hi = min(lo, 0.0), max(hi, 0.0)
    levels = 2 ** bits - 1
    scale = (hi - lo) / levels if hi > lo else 1.0
    zero = np.round(-lo / scale)
    q = np.clip(np.round(x / scale) + zero, 0, levels)
    return ((q - zero) * scale).astype(np.float32)


def _quant_weights(w: np.ndarray, bits: int) -> np.ndarray:
    axes = tuple(range(1, w.ndim))
    peak = np.max(np.abs(w), axis=axes, keepdims=True) if w.ndim > 1 else np.max(np.abs(w))
    levels = 2 ** (bits - 1) - 1
    scale = np.where(peak > 1e-12, peak / levels, 1.0)
    return (np.round(w / scale) * scale).astype(np.float32)


def _normalization(script: str) -> tuple[np.ndarray, np.ndarray] | None:
    match = _NORM.search(script)
    if not match:
        return None
    mean = np.array([float(v) for v in match.group(1).split(",")], dtype=np.float32)
    std = np.array([float(v) for v in match.group(2).split(",")], dtype=np.float32)
    return mean, std


def a16_layer_names(script: str) -> list[str]:
    """HN layer names the script puts in a16_w16 (bare)."""
    names: list[str] = []
    for match in _A16.finditer(script):
        names += [n.split("/")[-1] for n in re.findall(r"[\w/]+", match.group(1))]
    return names


def _a16_nodes(script: str, hn: dict[str, Any]) -> tuple[set[str], bool]:
    layers = {k.split("/", 1)[1]: v for k, v in hn["layers"].items()}
    names = set(a16_layer_names(script))
    onnx_nodes = {o for n in names if n in layers for o in layers[n]["original_names"]}
    output = any(layers.get(n, {}).get("type") == "output_layer" for n in names)
    return onnx_nodes, output


def _forward(model: onnx.ModelProto, x_nhwc: np.ndarray, script: str,
             quant: dict[str, Any] | None, ranges: dict[str, list[float]] | None,
             only: set[str] | None = None,
             capture: dict[str, np.ndarray] | None = None) -> np.ndarray:
    """One pass; `only` limits quantization to those nodes, `capture` receives every value."""
    graph = model.graph
    params = {i.name: numpy_helper.to_array(i).astype(np.float32) for i in graph.initializer}
    norm = _normalization(script)
    x = x_nhwc.astype(np.float32)
    if norm is not None:
        x = (x - norm[0]) / norm[1]
    dims = [d.dim_value for d in graph.input[0].type.tensor_type.shape.dim]
    if not (len(dims) == 4 and dims[3] in (1, 3) and dims[1] not in (1, 3)):
        x = np.transpose(x, (0, 3, 1, 2))  # the ONNX graph takes NCHW; a TF export takes NHWC
    a16, out16 = (set(quant["a16_nodes"]), quant["a16_output"]) if quant else (set(), False)
    w4 = set(quant.get("w4_nodes", [])) if quant else set()
    values: dict[str, np.ndarray] = {graph.input[0].name: x}
    for node in graph.node:
        at = _attrs(node)
        get = lambda i: values[node.input[i]] if node.input[i] in values else params[node.input[i]]  # noqa: E731
        bits = 16 if node.name in a16 else 8
        quantized = quant is not None and (only is None or node.name in only)
        op = node.op_type
        if op == "Constant":
            values[node.output[0]] = numpy_helper.to_array(at["value"]).astype(np.float32)
            continue
        if op in ("Conv", "Gemm", "MatMul"):
            w = get(1)
            if quantized:
                w = _quant_weights(w, 4 if node.name in w4 else bits)
            b = get(2) if len(node.input) > 2 and node.input[2] else None
            y = _conv(get(0), w, b, at) if op == "Conv" else _gemm(get(0), w, b, at)
        elif op == "BatchNormalization":
            scale, bias, mean, var = (get(i) for i in range(1, 5))
            eps = at.get("epsilon", 1e-5)
            shape = (1, -1) + (1,) * (get(0).ndim - 2)
            y = (get(0) - mean.reshape(shape)) / np.sqrt(var.reshape(shape) + eps)
            y = y * scale.reshape(shape) + bias.reshape(shape)
        elif op == "PRelu":
            slope = get(1)
            slope = slope.reshape((1, -1) + (1,) * (get(0).ndim - 2)) if slope.ndim == 1 else slope
            y = np.where(get(0) >= 0, get(0), get(0) * slope)
        elif op == "Relu":
            y = np.maximum(get(0), 0)
        elif op in ("Add", "Sub", "Mul", "Div"):
            fn = {"Add": np.add, "Sub": np.subtract, "Mul": np.multiply, "Div": np.divide}[op]
            y = fn(get(0), get(1))
        elif op == "Reshape":
            shape = [int(v) for v in get(1).reshape(-1)]
            shape = [get(0).shape[0] if i == 0 and v in (-1, 0) and len(shape) > 1 else v
                     for i, v in enumerate(shape)]
            y = get(0).reshape(shape)
        elif op == "Flatten":
            y = get(0).reshape(get(0).shape[0], -1)
        elif op == "Transpose":
            y = np.transpose(get(0), at["perm"])
        elif op == "Abs":
            y = np.abs(get(0))
        elif op == "Neg":
            y = -get(0)
        elif op in ("Max", "Min"):
            y = (np.maximum if op == "Max" else np.minimum)(get(0), get(1))
        elif op == "Clip":
            lo = get(1) if len(node.input) > 1 and node.input[1] else at.get("min", -np.inf)
            hi = get(2) if len(node.input) > 2 and node.input[2] else at.get("max", np.inf)
            y = np.clip(get(0), lo, hi)
        elif op == "HardSwish":
            y = get(0) * np.clip(get(0) + 3, 0, 6) / 6
        elif op == "LeakyRelu":
            y = np.where(get(0) >= 0, get(0), get(0) * at.get("alpha", 0.01))
        elif op == "Concat":
            y = np.concatenate([get(i) for i in range(len(node.input))], axis=at["axis"])
        elif op in ("Identity", "Dropout"):
            y = get(0)
        elif op == "GlobalAveragePool":
            y = get(0).mean(axis=(2, 3), keepdims=True)
        elif op == "Sigmoid":
            y = 1 / (1 + np.exp(-get(0)))
        else:
            raise NotImplementedError(f"stand-in emulator has no {op}")
        y = y.astype(np.float32)
        if ranges is not None:
            lo, hi = ranges.setdefault(node.output[0], [np.inf, -np.inf])
            ranges[node.output[0]] = [min(lo, float(y.min())), max(hi, float(y.max()))]
        elif quantized and node.output[0] in quant["ranges"]:
            is_out = node.output[0] == graph.output[0].name
            y = _fake_quant(y, *quant["ranges"][node.output[0]],
                            16 if (is_out and out16) or node.name in a16 else 8)
        values[node.output[0]] = y
    if capture is not None:
        capture.update(values)
    return values[graph.output[0].name].reshape(len(x_nhwc), -1)


def calibrate(onnx_bytes: bytes, hn: dict[str, Any], script: str, calib: np.ndarray) -> dict[str, Any]:
    """Activation ranges over the calibration set plus the a16 layer set from the script."""
    model = onnx.load_from_string(onnx_bytes)
    ranges: dict[str, list[float]] = {}
    for start in range(0, len(calib), _CHUNK):
        _forward(model, calib[start:start + _CHUNK], script, None, ranges)
    a16, out16 = _a16_nodes(script, hn)
    return {"ranges": ranges, "a16_nodes": sorted(a16), "a16_output": out16}


def run(onnx_bytes: bytes, script: str, quant: dict[str, Any] | None, x: np.ndarray) -> np.ndarray:
    """Embeddings for NHWC faces, fp32 (quant None) or fake-quantized."""
    model = onnx.load_from_string(onnx_bytes)
    parts = [_forward(model, x[s:s + _CHUNK], script, quant, None) for s in range(0, len(x), _CHUNK)]
    return np.concatenate(parts, axis=0)


def _snr_db(reference: np.ndarray, noisy: np.ndarray) -> float:
    signal = float(np.sum(reference.astype(np.float64) ** 2))
    noise = float(np.sum((reference.astype(np.float64) - noisy) ** 2))
    return 10.0 * np.log10(signal / noise) if noise > 0 and signal > 0 else 100.0


def layer_snr(onnx_bytes: bytes, script: str, quant: dict[str, Any], x: np.ndarray,
              mode: str) -> dict[str, float]:
    """SNR in dB per weight node (ONNX name).

    simple ("partial_snr"): the node's own output, quantized as the plan says, from the fp32
    inputs it would get: one fp32 pass. advanced ("snr"): the network's output with only that
    node quantized: one pass per node. Both readings are the stand-in's (unverified).
    """
    model = onnx.load_from_string(onnx_bytes)
    weighted = [n for n in model.graph.node if n.op_type in ("Conv", "Gemm", "MatMul")]
    reference = np.concatenate([_forward(model, x[s:s + _CHUNK], script, None, None)
                                for s in range(0, len(x), _CHUNK)])
    found: dict[str, float] = {}
    if mode == "advanced":
        for node in weighted:
            noisy = np.concatenate([_forward(model, x[s:s + _CHUNK], script, quant, None, {node.name})
                                    for s in range(0, len(x), _CHUNK)])
            found[node.name] = _snr_db(reference, noisy)
        return found
    params = {i.name: numpy_helper.to_array(i).astype(np.float32) for i in model.graph.initializer}
    a16 = set(quant["a16_nodes"])
    sums: dict[str, list[float]] = {n.name: [0.0, 0.0] for n in weighted}
    for s in range(0, len(x), _CHUNK):
        values: dict[str, np.ndarray] = {}
        _forward(model, x[s:s + _CHUNK], script, None, None, capture=values)
        for node in weighted:
            at = _attrs(node)
            bits = 16 if node.name in a16 else 8
            w = _quant_weights(params[node.input[1]], bits)
            b = params.get(node.input[2]) if len(node.input) > 2 and node.input[2] else None
            inp = values[node.input[0]]
            y = _conv(inp, w, b, at) if node.op_type == "Conv" else _gemm(inp, w, b, at)
            if node.output[0] in quant["ranges"]:
                y = _fake_quant(y, *quant["ranges"][node.output[0]], bits)
            ref = values[node.output[0]].astype(np.float64)
            sums[node.name][0] += float(np.sum(ref ** 2))
            sums[node.name][1] += float(np.sum((ref - y.reshape(ref.shape)) ** 2))
    for name, (signal, noise) in sums.items():
        found[name] = 10.0 * np.log10(signal / noise) if noise > 0 and signal > 0 else 100.0
    return found
