"""16-bit islands: the connected regions a precision plan makes 16-bit, closed over tensors.

Quantization happens on tensors, and the DFC works on chains of layers with precision
boundaries. A planned weight layer's island is the layer and every node downstream of it up to
the next weight layers that can be 16-bit: the activations and batch norm the Hailo parser
fuses into it, shape-only ops, and element-wise ops whose HN layer supports a16_w16
(plan/support.py; e.g. residual adds). A node that cannot be 16-bit ends the island: its
input is the island's exit. The ONNX Runtime rendering (16-bit Q/DQ on every tensor of an
island) and the DFC rendering (a16_w16 on the HN layers that carry the island's nodes) come
from the same node set, so both backends quantize the same tensors.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from hailoc.onnxgraph import GraphInfo
from hailoc.onnxgraph.canonical import FUSED_AFTER_WEIGHTS, SHAPE_ONLY, WEIGHT_OPS
from hailoc.plan.model import PrecisionPlan
from hailoc.plan.support import a16_refusal, kind_for_onnx

# Fused ops are 16-bit with the layer they are fused into, whatever their own support row
# says; shape-only ops share their input's quantization (ORT) and fold (Hailo).
FUSED = FUSED_AFTER_WEIGHTS


@dataclass(frozen=True)
class Island:
    """One connected 16-bit region: its nodes (graph order), entry and exit tensors."""

    nodes: tuple[str, ...]
    entries: tuple[str, ...]  # tensors produced outside and read inside (the producer: a8_w8_a16)
    exits: tuple[str, ...]  # tensors produced inside and read outside, or graph outputs


NodeTuple = tuple[str, str, Sequence[str], Sequence[str]]  # name, op_type, inputs, outputs


def can_be_16bit(op_type: str) -> bool:
    """Whether a node of this op may sit inside an island on its own."""
    return op_type in SHAPE_ONLY or a16_refusal(kind_for_onnx(op_type)) is None


def of_graph(graph: GraphInfo) -> list[NodeTuple]:
    """A GraphInfo's nodes as islands take them."""
    return [(n.name, n.op_type, n.inputs, n.outputs) for n in graph.nodes]


def of_onnx(model: Any) -> list[NodeTuple]:
    """An onnx.ModelProto's nodes as islands take them."""
    return [(n.name, n.op_type, list(n.input), list(n.output)) for n in model.graph.node]


def plan_nodes(plan: PrecisionPlan, nodes: Sequence[NodeTuple]) -> tuple[str, ...]:
    """Every ONNX node the plan makes 16-bit: its islands (int16-all: every node that can be)."""
    if not plan.onnx_nodes:
        return ()
    return island_nodes(
        nodes,
        plan.onnx_nodes,
        everything=plan.precision == "int16-all" and not plan.grown,
        barred=plan.barred,
    )


def island_nodes(
    nodes: Sequence[NodeTuple],
    seeds: Iterable[str],
    *,
    everything: bool = False,
    barred: Iterable[str] = (),
) -> tuple[str, ...]:
    """Names of the nodes in the islands grown from `seeds`, in graph order.

    `nodes` are (name, op_type, inputs, outputs) in graph order. `everything` (int16-all):
    every node that may be 16-bit, wherever it is. `barred` nodes stay 8-bit whatever their
    op (a DFC wall named their layer): an island ends at them as at any 8-bit node.
    """
    out = set(barred)
    readers: dict[str, int] = {}
    producer_op: dict[str, str] = {}
    consumers: dict[str, list[NodeTuple]] = {}
    for node in nodes:
        for tensor in node[2]:
            readers[tensor] = readers.get(tensor, 0) + 1
            consumers.setdefault(tensor, []).append(node)
        for tensor in node[3]:
            producer_op[tensor] = node[1]

    def joins(op: str, tensor: str) -> bool:
        """Whether a node of `op` reading `tensor` (made by a member) is a member too: fused
        as the parser fuses (a chain, each tensor read by the next op alone), or 16-bit on
        its own. Otherwise the island ends: `tensor` is an exit."""
        fused = (
            op in FUSED
            and producer_op.get(tensor) in (WEIGHT_OPS | FUSED)
            and readers.get(tensor, 0) == 1
        )
        return fused or can_be_16bit(op)

    if everything:
        chosen_all: set[str] = set()
        made_by: dict[str, str] = {}
        for name, op, inputs, outputs in nodes:
            source = made_by.get(inputs[0]) if inputs else None
            joined = source in chosen_all and joins(op, inputs[0])
            if name not in out and (can_be_16bit(op) or joined):
                chosen_all.add(name)
            for tensor in outputs:
                made_by[tensor] = name
        return tuple(n[0] for n in nodes if n[0] in chosen_all)
    chosen = set(seeds) - out
    frontier = [n for n in nodes if n[0] in chosen]
    while frontier:
        node = frontier.pop()
        for tensor in node[3]:
            for user in consumers.get(tensor, []):
                name, op = user[0], user[1]
                if name in chosen or name in out or op in WEIGHT_OPS or not joins(op, tensor):
                    continue
                chosen.add(name)
                frontier.append(user)
    return tuple(n[0] for n in nodes if n[0] in chosen)


def components(
    nodes: Sequence[NodeTuple],
    members: Iterable[str],
    graph_outputs: Iterable[str] = (),
) -> tuple[Island, ...]:
    """The connected islands of `members`, with their entry and exit tensors."""
    inside = set(members)
    by_name = {n[0]: n for n in nodes if n[0] in inside}
    producer = {t: n[0] for n in nodes for t in n[3]}
    outputs = set(graph_outputs)
    parent = {name: name for name in by_name}

    def find(name: str) -> str:
        while parent[name] != name:
            parent[name] = parent[parent[name]]
            name = parent[name]
        return name

    for name, node in by_name.items():
        for tensor in node[2]:
            source = producer.get(tensor)
            if source in by_name:
                parent[find(source)] = find(name)
    groups: dict[str, list[str]] = {}
    for node in nodes:
        if node[0] in by_name:
            groups.setdefault(find(node[0]), []).append(node[0])
    readers: dict[str, set[str]] = {}
    for node in nodes:
        for tensor in node[2]:
            readers.setdefault(tensor, set()).add(node[0])
    islands = []
    for names in groups.values():
        group = set(names)
        entries: list[str] = []
        exits: list[str] = []
        for name in names:
            node = by_name[name]
            for tensor in node[2]:
                source = producer.get(tensor)
                if source is not None and source not in group and tensor not in entries:
                    entries.append(tensor)
            for tensor in node[3]:
                if tensor in outputs or readers.get(tensor, set()) - group:
                    exits.append(tensor)
        islands.append(Island(tuple(names), tuple(entries), tuple(exits)))
    return tuple(islands)
