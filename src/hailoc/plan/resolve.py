"""Map a plan's ONNX node names to HN layer names: the only names a .alls may use."""

from __future__ import annotations

import difflib
import logging
import re

from hailoc.errors import PlanError
from hailoc.onnxgraph import GraphInfo
from hailoc.plan.hn import HnLayer, HnNetwork
from hailoc.plan.islands import of_graph, plan_nodes
from hailoc.plan.model import Excluded, PrecisionPlan, ResolvedPlan
from hailoc.plan.support import a16_refusal, kind_for_hn

log = logging.getLogger(__name__)

_SUFFIX = re.compile(r"(.*?)(\d+)")


def _nearest(hn: HnNetwork, name: str, count: int = 3) -> list[str]:
    """HN layers ranked by their best similarity to `name`, over their own and ONNX names."""

    wanted = _SUFFIX.fullmatch(name.lower())

    def score(candidate: str) -> float:
        text = difflib.SequenceMatcher(None, name.lower(), candidate.lower()).ratio()
        other = _SUFFIX.fullmatch(candidate.lower())
        if wanted and other and wanted[1] == other[1]:
            # Same op prefix: exporters number nodes in graph order, so near numbers are near.
            gap = abs(int(wanted[2]) - int(other[2]))
            return max(text, 1.0 - min(gap, 50) / 100)
        return text

    ranked = sorted(
        (
            (max(score(c) for c in (layer.name, *layer.original_names)), layer.name)
            for layer in hn.layers
        ),
        key=lambda item: -item[0],
    )
    return [layer for best, layer in ranked[:count] if best >= 0.4]


def _unknown(hn: HnNetwork, name: str, message: str, *, where: str, fix: str) -> PlanError:
    """A name that resolves to nothing, with the nearest HN layer names as suggestions."""
    near = _nearest(hn, name)
    suggestion = f"; nearest HN layers: {', '.join(near)}" if near else ""
    return PlanError(message + suggestion, where=where, fix=fix)


def carrier(layer: HnLayer, hn: HnNetwork) -> HnLayer:
    """The layer that carries `layer` after optimization: a batch_norm right after an fc is
    fused into that fc (BatchNorm1d; a16_w16 on the batch_norm itself is lost with only a
    "could not be found in scope" warning: DFC_FIELD_NOTES sections 5 and 11)."""
    if layer.type == "batch_norm" and len(layer.inputs) == 1:
        source = hn.layer(layer.inputs[0])
        if source is not None and source.type == "fc":
            return source
    return layer


def carriers(hn: HnNetwork) -> dict[str, tuple[str, ...]]:
    """ONNX node -> the HN layers that carry it after optimization (in HN order)."""
    owners: dict[str, list[str]] = {}
    for layer in hn.layers:
        for original in layer.original_names:
            owners.setdefault(original, []).append(carrier(layer, hn).name)
    return {k: tuple(dict.fromkeys(v)) for k, v in owners.items()}


def resolve_plan(
    plan: PrecisionPlan, hn: HnNetwork, graph: GraphInfo | None = None
) -> ResolvedPlan:
    """Resolve every planned layer to HN names, or raise naming the nearest HN layers.

    With `graph`, the plan's 16-bit islands are resolved (plan/islands.py): every HN layer
    that carries one of their nodes, so the .alls makes 16-bit what the QDQ model does."""
    owners = carriers(hn)
    mapping: dict[str, tuple[str, ...]] = {}
    wanted: set[str] = set()
    members = plan_nodes(plan, of_graph(graph)) if graph is not None else plan.onnx_nodes
    for node in members:
        if node not in plan.onnx_nodes:
            # An island member: carried by some HN layer, or folded into one (shape ops).
            found = owners.get(node)
            if found:
                mapping[node] = tuple(found)
                wanted.update(found)
            continue
        found = owners.get(node)
        if not found:
            raise _unknown(
                hn,
                node,
                f"ONNX node {node!r} maps to no HN layer",
                where=f"{plan.model} ({plan.precision})",
                fix="name HN layers from the parsed network, or check start/end nodes",
            )
        mapping[node] = tuple(found)
        wanted.update(found)
    for name in plan.hn_names:
        named = hn.layer(name)
        if named is None:
            raise _unknown(
                hn,
                name,
                f"{name!r} is neither an ONNX node nor an HN layer",
                where=f"models.{plan.model}.a16_layers",
                fix="use names from the parsed HN (conv53, fc1, ...) or the ONNX graph",
            )
        wanted.add(named.name)
    if plan.include_output:
        wanted.update(hn.output_layers)

    excluded: list[Excluded] = []
    ordered: list[str] = []
    for layer in hn.layers:  # HN order is topological; keep it so the .alls reads naturally
        if layer.name not in wanted:
            continue
        why = a16_refusal(kind_for_hn(layer.type))
        if why is None:
            ordered.append(layer.name)
        else:
            excluded.append(Excluded(layer.name, layer.type, why))
            log.warning(
                "%s: HN layer %s (%s) stays 8-bit: %s", plan.model, layer.name, layer.type, why
            )
    origins: dict[str, list[str]] = {}
    merged = graph.merged if graph is not None else {}
    for node, carried_by in mapping.items():
        for name in carried_by:
            for user_node in merged.get(node, (node,)):
                if user_node not in origins.setdefault(name, []):
                    origins[name].append(user_node)
    return ResolvedPlan(
        plan,
        hn.net_name,
        tuple(ordered),
        mapping,
        plan.excluded + tuple(excluded),
        hn.names,
        {k: tuple(v) for k, v in origins.items()},
        tuple(layer for layer in ordered if layer in plan.a16_w8),
    )
