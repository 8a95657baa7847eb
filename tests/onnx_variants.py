"""Variants of the real example model for tests: baked-in normalization, broken files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import helper, numpy_helper


def with_in_graph_normalization(
    src: Path, dst: Path, mean: float = 127.0, std: float = 128.0
) -> Path:
    """Copy `src` with (x - mean) / std inserted between the input and the first node."""
    model = onnx.load(str(src))
    graph = model.graph
    raw = graph.input[0].name
    scaled = f"{raw}_normalized"
    for node in graph.node:
        node.input[:] = [scaled if name == raw else name for name in node.input]
    graph.initializer.extend(
        [
            numpy_helper.from_array(np.array(mean, dtype=np.float32), "norm_mean"),
            numpy_helper.from_array(np.array(std, dtype=np.float32), "norm_std"),
        ]
    )
    centered = f"{raw}_centered"
    graph.node.insert(0, helper.make_node("Div", [centered, "norm_std"], [scaled], name="Div_norm"))
    graph.node.insert(0, helper.make_node("Sub", [raw, "norm_mean"], [centered], name="Sub_norm"))
    onnx.checker.check_model(model)
    onnx.save(model, str(dst))
    return dst
