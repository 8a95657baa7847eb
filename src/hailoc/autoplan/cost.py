"""What a plan's 16-bit costs on the chip, as bytes: 16-bit weights plus 16-bit activations.

A stand-in for the FPS and contexts 16-bit costs (Hailo's 16-bit notebook: full 16-bit took
yolov8s_pose from 104 to 14 FPS): every tensor an island makes 16-bit doubles its bytes. Batch
1; a tensor whose shape is not static counts as 0 (said nowhere else: it is an estimate).
"""

from __future__ import annotations

import numpy as np

from hailoc.backends.onnxruntime.qdq_plan import render_qdq
from hailoc.inputs import BuildInputs
from hailoc.plan import PrecisionPlan


def tensor_elements(inputs: BuildInputs) -> dict[str, int]:
    """Elements per tensor (batch 1): initializers, node outputs, the graph input."""
    sizes = {
        i.name: int(np.prod(i.dims)) if i.dims else 1 for i in inputs.onnx_proto.graph.initializer
    }
    for node in inputs.graph.nodes:
        if node.out_shape is not None and node.outputs:
            sizes[node.outputs[0]] = int(np.prod(node.out_shape[1:])) if node.out_shape else 1
    shape = inputs.config.input.shape
    sizes.setdefault(inputs.config.input.name, int(np.prod(shape[1:])))
    return sizes


def plan_cost(inputs: BuildInputs, plan: PrecisionPlan, sizes: dict[str, int]) -> int:
    """Extra bytes the plan's 16-bit tensors take over 8-bit (one more byte per element)."""
    if plan.is_int8 or not plan.onnx_nodes:
        return 0
    return sum(sizes.get(t, 0) for t in render_qdq(plan, inputs.onnx_proto).tensors)
