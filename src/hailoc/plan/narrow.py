"""Narrow a precision plan after a DFC wall: named HN layers out of 16-bit, or a ranked prefix.

Both work on the plan's ONNX nodes, so the narrowed plan is resolved, rendered and emulated
exactly as any other: a layer leaves 16-bit by barring every ONNX node its HN layer carries
(the islands then end there, and whatever was 16-bit only through it goes too), and a prefix
keeps the first k planned weight layers of a ranking, each with the island it grows.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import replace

from hailoc.onnxgraph import GraphInfo
from hailoc.plan.hn import HnNetwork
from hailoc.plan.model import Excluded, PrecisionPlan
from hailoc.plan.resolve import carriers


def nodes_of(hn: HnNetwork, layer: str) -> tuple[str, ...]:
    """The ONNX nodes whose 16-bit request lands on HN `layer` (a batch_norm fused into an
    fc lands on the fc)."""
    return tuple(node for node, layers in carriers(hn).items() if layer in layers)


def drop_layers(
    plan: PrecisionPlan, hn: HnNetwork, layers: Iterable[str], why: str
) -> PrecisionPlan:
    """`plan` with the HN `layers` kept 8-bit, and whatever their islands forced with them."""
    barred = list(plan.barred)
    seeds = list(plan.onnx_nodes)
    hn_names = list(plan.hn_names)
    include_output = plan.include_output
    excluded = list(plan.excluded)
    gone: list[str] = []
    for name in layers:
        layer = hn.layer(name)
        if layer is None:
            continue
        gone.append(layer.name)
        if layer.type == "output_layer":
            include_output = False
        nodes = nodes_of(hn, layer.name)
        barred += [n for n in nodes if n not in barred]
        seeds = [s for s in seeds if s not in nodes]
        hn_names = [h for h in hn_names if h != layer.name]
        excluded.append(Excluded(layer.name, layer.type, why))
    return replace(
        plan,
        onnx_nodes=tuple(seeds),
        hn_names=tuple(hn_names),
        include_output=include_output,
        excluded=tuple(excluded),
        barred=tuple(barred),
        grown=True,
        a16_w8=tuple(w for w in plan.a16_w8 if w not in gone),
    )


def as_a16_w8(plan: PrecisionPlan, layer: str) -> PrecisionPlan:
    """`plan` with HN `layer` asked for as a16_w8 (16-bit activations, 8-bit weights)."""
    return replace(plan, a16_w8=(*plan.a16_w8, layer))


def weight_seeds(plan: PrecisionPlan, graph: GraphInfo) -> list[str]:
    """The plan's planned weight layers (ONNX), the units a bisection keeps or drops."""
    weights = {n.name for n in graph.weight_nodes}
    return [n for n in plan.onnx_nodes if n in weights]


def keep_prefix(plan: PrecisionPlan, ranked: Sequence[str], count: int) -> PrecisionPlan:
    """`plan` with only the first `count` of `ranked` weight layers planned (each with the
    island it grows); none: the plan becomes int8."""
    kept = set(ranked[:count])
    if not kept:
        return replace(
            plan, onnx_nodes=(), hn_names=(), include_output=False, grown=True, a16_w8=()
        )
    others = set(ranked) - kept
    return replace(
        plan, onnx_nodes=tuple(n for n in plan.onnx_nodes if n not in others), grown=True
    )
