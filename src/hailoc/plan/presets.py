"""Turn a precision preset (int8, int16-final, int16-all, custom) into a PrecisionPlan."""

from __future__ import annotations

import logging

from hailoc.errors import PlanError
from hailoc.manifest import ModelConfig
from hailoc.onnxgraph import GraphInfo
from hailoc.plan.islands import island_nodes, of_graph
from hailoc.plan.model import Excluded, PrecisionPlan
from hailoc.plan.support import a16_refusal, kind_for_onnx

log = logging.getLogger(__name__)

PRESET_HELP = {
    "int8": "everything a8_w8",
    "int16-final": "a16_w16 on the final embedding block and the output layer",
    "int16-all": "a16_w16 on every weight layer that supports it, and the output layer",
    "custom": "a16_w16 on the manifest's a16_layers (ONNX or HN names)",
    "auto": "a16_w16 on the fewest layers that reach the manifest's auto target (searched)",
}


def build_plan(cfg: ModelConfig, graph: GraphInfo, precision: str | None = None) -> PrecisionPlan:
    """Build the plan for `precision` (default: the model's) over the graph's nodes."""
    chosen = precision or cfg.precision
    if chosen == "int8":
        return PrecisionPlan(cfg.name, chosen, ())
    if chosen == "int16-final":
        plan = _filtered(cfg.name, chosen, graph, list(graph.final_block), include_output=True)
        return _not_empty(plan, cfg, graph)
    if chosen == "int16-all":
        names = [n.name for n in graph.weight_nodes]
        return _not_empty(
            _filtered(cfg.name, chosen, graph, names, include_output=True), cfg, graph
        )
    if chosen == "custom":
        if not cfg.a16_layers:
            raise PlanError(
                "precision custom without a16_layers",
                where=f"models.{cfg.name}.a16_layers",
                fix="list the ONNX node or HN layer names to run in 16-bit",
            )
        onnx_names: list[str] = []
        for name in cfg.a16_layers:
            carrier = graph.carrier(name)
            if carrier is not None and carrier != name:
                # The canonical graph merged it (e.g. one op of a decomposed PReLU).
                log.info("%s: %s is part of %s in the canonical graph", cfg.name, name, carrier)
            if carrier is not None and carrier not in onnx_names:
                onnx_names.append(carrier)
        hn_names = tuple(n for n in cfg.a16_layers if graph.carrier(n) is None)
        plan = _filtered(cfg.name, chosen, graph, onnx_names, include_output=False)
        return PrecisionPlan(plan.model, chosen, plan.onnx_nodes, hn_names, False, plan.excluded)
    if chosen == "auto":
        raise PlanError(
            "precision auto is chosen by a search over the ONNX Runtime emulation",
            where="--precision",
            fix=f"run `hailoc plan {cfg.name} -p auto` (or build with -p auto)",
        )
    raise PlanError(
        f"unknown precision {chosen!r}",
        where="--precision",
        fix=f"use one of: {', '.join(PRESET_HELP)}",
    )


def _not_empty(plan: PrecisionPlan, cfg: ModelConfig, graph: GraphInfo) -> PrecisionPlan:
    """A preset that finds no layer to run in 16-bit would build the int8 model under another
    name: refuse it with the reason and what to use instead."""
    if plan.onnx_nodes:
        return plan
    if plan.excluded:
        why = "every layer it picked lacks 16-bit support: " + ", ".join(
            f"{e.name} ({e.kind})" for e in plan.excluded
        )
    elif plan.precision == "int16-final":
        why = (
            "no spatial reduction (global pool, global depthwise conv, flatten) was found on "
            f"the path to {graph.embedding_output}"
        )
    else:
        why = "the graph has no weight layers"
    return _refuse(plan, cfg, why)


def _refuse(plan: PrecisionPlan, cfg: ModelConfig, why: str) -> PrecisionPlan:
    raise PlanError(
        f"precision {plan.precision} finds no layer to run in 16-bit ({why}); it would build "
        "the int8 model",
        where=f"models.{cfg.name}",
        fix="list layers with precision: custom and a16_layers: [...] (see `hailoc models "
        f"validate {cfg.name}`), or use --precision auto",
    )


def _filtered(
    model: str, precision: str, graph: GraphInfo, names: list[str], *, include_output: bool
) -> PrecisionPlan:
    keep: list[str] = []
    refused: list[Excluded] = []
    for name in names:
        node = graph.node(name)
        op = node.op_type if node else "?"
        why = a16_refusal(kind_for_onnx(op))
        if why is None:
            keep.append(name)
        else:
            refused.append(Excluded(name, op, why))
    # A batch norm or activation fused into a planned layer (a conv, or fc1 carrying
    # BatchNorm1d) is 16-bit with it: in its island, so neither planned nor excluded.
    carried = set(island_nodes(of_graph(graph), keep)) if refused and keep else set()
    excluded = [item for item in refused if item.name not in carried]
    for item in excluded:
        log.warning("%s: %s (%s) stays 8-bit: %s", model, item.name, item.kind, item.why)
    return PrecisionPlan(model, precision, tuple(keep), (), include_output, tuple(excluded))
