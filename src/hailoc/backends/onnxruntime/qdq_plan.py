"""The precision plan rendered for ONNX Runtime: per-tensor 16-bit QDQ overrides."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from hailoc.errors import PlanError
from hailoc.onnxgraph.canonical import WEIGHT_OPS
from hailoc.plan import PrecisionPlan
from hailoc.plan.islands import of_onnx, plan_nodes

# Element-wise ops whose constant operands ORT quantizes like weights.
QUANTIZED_CONSTANTS = frozenset({"Mul", "Add", "Sub", "Div", "PRelu", "Max", "Min"})

PASSTHROUGH = frozenset(
    {"Reshape", "Flatten", "Squeeze", "Unsqueeze", "Transpose", "Identity", "MaxPool", "Slice"}
)


@dataclass(frozen=True)
class QdqPlan:
    """Which tensors get 16-bit Q/DQ: planned nodes' weights, inputs and outputs."""

    nodes: tuple[str, ...]
    weights: tuple[str, ...]
    activations: tuple[str, ...]

    @property
    def tensors(self) -> tuple[str, ...]:
        """Every tensor quantized to 16 bits."""
        return tuple(sorted(set(self.weights) | set(self.activations)))

    def overrides(self) -> dict[str, list[dict[str, Any]]]:
        """onnxruntime's `TensorQuantOverrides` extra option."""
        from onnxruntime.quantization import QuantType

        out: dict[str, list[dict[str, Any]]] = {}
        for name in self.weights:
            out[name] = [{"quant_type": QuantType.QInt16, "symmetric": True}]
        for name in self.activations:
            out[name] = [{"quant_type": QuantType.QUInt16}]
        return out


def render_qdq(plan: PrecisionPlan, model: Any) -> QdqPlan:
    """Map a plan's ONNX nodes to tensor names in `model` (an onnx.ModelProto): every tensor
    of the plan's 16-bit islands (plan/islands.py)."""
    if plan.hn_names:
        raise PlanError(
            f"HN layer names {', '.join(plan.hn_names)} have no meaning for ONNX Runtime",
            where=f"models.{plan.model}.a16_layers",
            fix="list ONNX node names (see `hailoc plan`), or build with --backend hailo",
        )
    wanted = set(plan.onnx_nodes)
    missing = wanted - {n.name for n in model.graph.node}
    if missing:
        raise PlanError(
            f"planned nodes not in the graph: {', '.join(sorted(missing))}",
            where=f"models.{plan.model}",
            fix="check a16_layers against `hailoc models validate`",
        )
    if not wanted:
        return QdqPlan((), (), ())
    members = set(plan_nodes(plan, of_onnx(model)))
    initializers = {i.name for i in model.graph.initializer}
    weights: set[str] = set()
    activations: set[str] = set()
    for node in model.graph.node:
        if node.name not in members:
            continue
        for index, tensor in enumerate(node.input):
            if not tensor:
                continue
            if tensor in initializers:
                # A weight layer's weights (its int32 bias stays as ORT makes it), and the
                # constants ORT quantizes beside element-wise ops (a PReLU slope, a Mul
                # factor); batch-norm statistics and Clip bounds are never quantized.
                if (
                    node.op_type in WEIGHT_OPS and index == 1
                ) or node.op_type in QUANTIZED_CONSTANTS:
                    weights.add(tensor)
            else:
                activations.add(tensor)
        activations.update(t for t in node.output if t)
    # Shape-only ops share their input's quantization in ORT (and on Hailo): a 16-bit tensor
    # stays 16-bit through them, and a planned layer fed through one (Flatten -> Gemm) gets
    # 16-bit input only if the tensor before it is 16-bit too. Close the set both ways.
    producer = {t: n for n in model.graph.node for t in n.output}
    grew = True
    while grew:
        grew = False
        for node in model.graph.node:
            if node.op_type not in PASSTHROUGH or not node.input:
                continue
            source = node.input[0]
            if source in activations:
                new = {t for t in node.output if t and t not in activations}
            elif any(t in activations for t in node.output) and source in producer:
                new = {source}
            else:
                new = set()
            activations |= new
            grew = grew or bool(new)
    return QdqPlan(tuple(sorted(wanted)), tuple(sorted(weights)), tuple(sorted(activations)))
