"""What `hailoc plan` prints: the 16-bit islands of a plan and the auto search's curve."""

from __future__ import annotations

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from hailoc.autoplan import AutoResult
from hailoc.autoplan.objective import Measure
from hailoc.onnxgraph import GraphInfo
from hailoc.onnxgraph.canonical import FUSED_AFTER_WEIGHTS, SHAPE_ONLY, WEIGHT_OPS
from hailoc.plan import PrecisionPlan, ResolvedPlan
from hailoc.plan.islands import components, of_graph, plan_nodes


def island_tables(
    the_plan: PrecisionPlan, graph: GraphInfo, resolved: ResolvedPlan | None
) -> list[Table]:
    """One table per 16-bit island: each node, what it is in the island, its HN layer."""
    nodes = of_graph(graph)
    members = plan_nodes(the_plan, nodes)
    tables = []
    islands = components(nodes, members, graph.outputs)
    for number, island in enumerate(islands, 1):
        table = Table(
            title=f"island {number}: {len(island.nodes)} nodes",
            caption=f"enters at {', '.join(island.entries) or 'the graph input'}; leaves at "
            f"{', '.join(island.exits) or '-'}",
        )
        for column in ("ONNX node", "op", "in the island", "HN layer(s)"):
            table.add_column(column)
        carrier = ""
        for name in island.nodes:
            node = graph.node(name)
            op = node.op_type if node else "?"
            if op in WEIGHT_OPS:
                carrier = name
            if name in the_plan.onnx_nodes:
                role = "planned"
            elif op in FUSED_AFTER_WEIGHTS and carrier:
                role = f"fused into {carrier}"
            elif op in SHAPE_ONLY:
                role = "shape-only"
            else:
                role = "16-bit with the island"
            label = name
            if name in graph.merged:  # a canonical op: the user's nodes it stands for
                label = f"{name} (= {' + '.join(graph.merged[name])})"
            mapped = ", ".join(resolved.mapping.get(name, ())) if resolved else "(needs --hn)"
            table.add_row(label, op, role, mapped or "(folded)")
        tables.append(table)
    return tables


def print_auto(out: Console, result: AutoResult) -> None:
    """The auto search's curve, its verdict and its cost."""
    table = Table(
        title=f"{result.model}: {result.objective} ({result.eval_faces} eval faces)",
        caption=f"ranking: noise each layer adds in the {result.ranking_source} int8 model; "
        f"target {result.target}",
    )
    for column in ("16-bit layers", "16-bit bytes", result.metric, "interval", "reaches"):
        table.add_column(column, justify="right")
    for point in result.curve:
        found = Measure.from_dict(point)
        # A plan measured on part of the faces has upper bounds: below the target they rule
        # it out; above it, a glance left it open.
        bound = "<= " if found.stopped_at is not None else ""
        if found.reaches(result.target):
            verdict = "yes"
        else:
            verdict = f"open ({found.stopped_at} faces)" if found.may_reach(result.target) else "no"
        table.add_row(
            str(point["layers"]),
            f"{point.get('cost_bytes', 0):,}",
            f"{bound}{found.value:.4f}",
            f"{bound}[{found.low:.4f}, {found.high:.4f}]",
            verdict,
        )
    out.print(table)
    colour = "green" if result.reached else "red"
    out.print(f"[{colour}]{escape(result.message)}[/]", highlight=False)
    out.print(
        f"16-bit bytes {result.cost_bytes:,} (int16-all: {result.int16_all_cost_bytes:,}); "
        f"{result.evaluations} evaluations ({result.reused_evaluations} reused), "
        f"{result.seconds:.1f} s; layers: {', '.join(result.layers) or 'none'}",
        highlight=False,
    )
